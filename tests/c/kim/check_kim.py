"""Integration check of the compot KIM model driver through kimpy.

Needs the driver and the two test portable models installed in a KIM
collection: run tests/c/kim/run_kim_check.sh (see tests/c/README.md).
For each model, on a jittered periodic bcc cell handled the KIM way (padding
atoms as non-contributing particles, neighbour lists of paddings when the
model asks for them):

* metadata: influence distance (2 r_c with an N term, else r_c), neighbour
  list cutoff and hint, species codes, one KIM parameter per block with a
  description stating unit and role;
* energy, per-particle energies, forces (padding forces folded back onto
  their masters) and virial agree with the Python reference implementation
  (compot.io.read_model + Model.evaluate) to 1e-10;
* forces agree with central finite differences of the KIM energy;
* parameters changed through KIM (a shift, a Gaussian alpha) followed by
  Refresh give the Python result for the same change; an invalid value
  (alpha < 0) makes Refresh fail cleanly;
* WriteParameterizedModel writes a file that the Python reader reads back
  with the changed values.

Exit status 0 on success.  Usage: python check_kim.py [--params-dir DIR]
"""
import argparse
import os
import sys
import tempfile

import numpy as np

import kimpy
from kimpy import neighlist as nl

from ase.build import bulk

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = {
    "Compot_Test_Nb__MO_000000123456_000": ("nb_e_n_zbl.params", ["Nb"]),
    "Compot_Test_MoNb__MO_000000123457_000": ("mo_nb_g_times_a.params", ["Mo", "Nb"]),
}
FAILURES = []


def check(cond, what):
    print(("  ok    " if cond else "  FAIL  ") + what)
    if not cond:
        FAILURES.append(what)


class KimRunner:
    """A KIM model with one set of compute arguments and a padded cell."""

    def __init__(self, name):
        accepted, self.model = kimpy.model.create(
            kimpy.numbering.zeroBased, kimpy.length_unit.A, kimpy.energy_unit.eV,
            kimpy.charge_unit.e, kimpy.temperature_unit.K, kimpy.time_unit.ps, name)
        if not accepted:
            raise RuntimeError("units not accepted")
        self.ca = self.model.compute_arguments_create()
        self.neigh = nl.create()

    def params(self):
        out = {}
        for i in range(self.model.get_number_of_parameters()):
            dtype, extent, pname, descr = self.model.get_parameter_metadata(i)
            out[pname] = (i, extent, descr)
        return out

    def compute(self, atoms, codes, what=("energy", "forces", "virial")):
        infl = self.model.get_influence_distance()
        cutoffs, hints = self.model.get_neighbor_list_cutoffs_and_hints()
        cell = np.ascontiguousarray(atoms.cell[:], dtype=np.double)
        pbc = np.ones(3, dtype=np.intc)
        x = np.ascontiguousarray(atoms.positions, dtype=np.double)
        n = len(atoms)
        spc = np.ascontiguousarray(codes, dtype=np.intc)
        px, ps, pimage = nl.create_paddings(infl, cell, pbc, x, spc)
        npad = px.shape[0]
        self.x = np.ascontiguousarray(np.vstack([x, px.reshape(-1, 3)]), dtype=np.double)
        self.species = np.ascontiguousarray(np.concatenate([spc, ps]), dtype=np.intc)
        self.contrib = np.ascontiguousarray(
            np.concatenate([np.ones(n), np.zeros(npad)]), dtype=np.intc)
        need = np.ones(n + npad, dtype=np.intc)
        if hints[0] == 1:
            need[n:] = 0
        self.n_total = np.array([n + npad], dtype=np.intc)
        self.energy = np.zeros(1)
        self.pe = np.zeros(n + npad)
        self.forces = np.zeros((n + npad, 3))
        self.virial = np.zeros(6)
        CAN = kimpy.compute_argument_name
        self.ca.set_argument_pointer(CAN.numberOfParticles, self.n_total)
        self.ca.set_argument_pointer(CAN.particleSpeciesCodes, self.species)
        self.ca.set_argument_pointer(CAN.particleContributing, self.contrib)
        self.ca.set_argument_pointer(CAN.coordinates, self.x)
        self.ca.set_argument_pointer(CAN.partialEnergy, self.energy)
        self.ca.set_argument_pointer(CAN.partialParticleEnergy, self.pe)
        self.ca.set_argument_pointer(CAN.partialForces, self.forces)
        self.ca.set_argument_pointer(CAN.partialVirial, self.virial)
        self.neigh.build(self.x, infl, np.asarray(cutoffs, dtype=np.double), need)
        self.ca.set_callback_pointer(kimpy.compute_callback_name.GetNeighborList,
                                     nl.get_neigh_kim(), self.neigh)
        self.model.compute(self.ca)
        F = self.forces[:n].copy()
        np.add.at(F, np.asarray(pimage, dtype=int), self.forces[n:])
        return float(self.energy[0]), self.pe[:n].copy(), F, self.virial.copy()


def voigt(W):
    """3x3 -> KIM order xx yy zz yz xz xy."""
    return np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])


def check_model(name, params_file, species, params_dir):
    from compot.io import read_model

    print(name)
    k = KimRunner(name)
    path = os.path.join(params_dir, params_file)
    ref = read_model(path)

    # metadata
    infl = k.model.get_influence_distance()
    cutoffs, hints = k.model.get_neighbor_list_cutoffs_and_hints()
    has_n = "N[" in ref.expression
    check(abs(infl - (2 if has_n else 1) * ref.cutoff) < 1e-15,
          f"influence distance {infl}")
    check(len(cutoffs) == 1 and abs(cutoffs[0] - ref.cutoff) < 1e-15
          and hints[0] == (0 if has_n else 1), f"neighbour list {cutoffs} hint {hints}")
    codes = {}
    for s in species:
        support, code = k.model.get_species_support_and_code(
            getattr(kimpy.species_name, s))
        codes[s] = code
        check(support and code == species.index(s), f"species {s} code {code}")
    params = k.params()
    check("b1_alpha" in params and "n0_shift" in params, "parameter names "
          + " ".join(params))
    check(all("unit" in d and "role" in d for (_, _, d) in params.values()),
          "descriptions state unit and role")

    # a jittered periodic bcc cell
    rng = np.random.default_rng(3)
    atoms = bulk("Nb", "bcc", a=3.30, cubic=True).repeat((2, 2, 2))
    atoms.positions += rng.uniform(-0.12, 0.12, atoms.positions.shape)
    sym = [species[rng.integers(len(species))] for _ in range(len(atoms))]
    atoms.set_chemical_symbols(sym)
    zc = [codes[s] for s in sym]

    E, pe, F, V = k.compute(atoms, zc)
    pr = ref.evaluate(ref.system([atoms]))
    escale = max(1.0, abs(pr.energy_m[0]))
    check(abs(E - pr.energy_m[0]) <= 1e-10 * escale,
          f"energy KIM {E:.12f} vs Python {pr.energy_m[0]:.12f}")
    check(np.max(np.abs(pe - pr.energies_n)) <= 1e-10 * escale, "per-particle energies")
    fs = max(1.0, np.max(np.abs(pr.forces_nc)))
    check(np.max(np.abs(F - pr.forces_nc)) <= 1e-10 * fs,
          f"forces (max |F| {np.max(np.abs(F)):.4f}, max diff "
          f"{np.max(np.abs(F - pr.forces_nc)):.2e})")
    vs = max(1.0, np.max(np.abs(pr.virial_mcc[0])))
    check(np.max(np.abs(V - voigt(pr.virial_mcc[0]))) <= 1e-10 * vs,
          f"virial {np.round(V, 6)}")

    # finite differences through KIM (paddings rebuilt each time)
    h, err = 1e-5, 0.0
    for i in range(0, len(atoms), 5):
        for a in range(3):
            p = atoms.copy()
            p.positions[i, a] += h
            ep = k.compute(p, zc)[0]
            p.positions[i, a] -= 2 * h
            em = k.compute(p, zc)[0]
            err = max(err, abs(-(ep - em) / (2 * h) - F[i, a]))
    check(err <= 1e-6 * fs, f"forces vs finite differences of the KIM energy ({err:.1e})")

    # parameters changed through KIM, then Refresh
    i_shift = params["n0_shift"][0]
    old = k.model.get_parameter_double(i_shift, 0)
    k.model.set_parameter(i_shift, 0, float(old + 0.25))
    i_alpha = params["b1_alpha"][0]
    alpha = k.model.get_parameter_double(i_alpha, 0)
    k.model.set_parameter(i_alpha, 0, float(alpha * 1.1))
    k.model.clear_then_refresh()
    E2 = k.compute(atoms, zc)[0]
    ref2 = ref.copy()
    shift = ref2.params["n0.shift"].copy()
    shift.ravel()[0] += 0.25
    ref2.set_block("n0.shift", shift)
    ref2.set_block("b1.alpha", np.array(alpha * 1.1))
    pr2 = ref2.evaluate(ref2.system([atoms]), forces=False, virial=False)
    check(abs(E2 - pr2.energy_m[0]) <= 1e-10 * escale,
          f"after set_parameter + refresh: KIM {E2:.12f} vs Python {pr2.energy_m[0]:.12f}")

    # WriteParameterizedModel
    with tempfile.TemporaryDirectory() as tmp:
        k.model.write_parameterized_model(tmp, "Written_Model")
        written = os.path.join(tmp, "Written_Model.params")
        check(os.path.exists(written), "WriteParameterizedModel wrote Written_Model.params")
        back = read_model(written)
        ok = all(np.array_equal(np.asarray(back.params[b]), np.asarray(ref2.params[b]))
                 for b in ref2.params)
        check(ok and back.expression == ref.expression,
              "written file reads back in Python with the changed values")

    # an invalid value makes Refresh fail without crashing; kimpy 2.1.4's
    # clear_then_refresh drops the return code, so read the KIM log
    log = "kim.log"
    start = os.path.getsize(log) if os.path.exists(log) else 0
    k.model.set_parameter(i_alpha, 0, -1.0)
    try:
        k.model.clear_then_refresh()
    except Exception:
        pass
    with open(log, errors="replace") as fh:
        fh.seek(start)
        text = fh.read()
    check("'b1.alpha') is -1; expected alpha > 0" in text
          and "Refresh() routine returned error" in text,
          "Refresh refuses alpha < 0 with the core's message in kim.log")
    k.model.set_parameter(i_alpha, 0, float(alpha))
    k.model.clear_then_refresh()
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params-dir", default=os.path.join(HERE, "..", "data"))
    args = ap.parse_args()
    for name, (pf, species) in MODELS.items():
        check_model(name, pf, species, args.params_dir)
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        return 1
    print("all KIM checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
