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

from ase.build import bulk

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))      # tests/: the one kimpy runner
from kimpy_runner import KimRunner  # noqa: E402
MODELS = {
    "Compot_Test_Nb": ("nb_e_n_zbl.params", ["Nb"]),
    "Compot_Test_MoNb": ("mo_nb_g_times_a.params", ["Mo", "Nb"]),
}
FAILURES = []


def check(cond, what):
    print(("  ok    " if cond else "  FAIL  ") + what)
    if not cond:
        FAILURES.append(what)


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
    for s in species:
        support, code = k.model.get_species_support_and_code(
            getattr(kimpy.species_name, s))
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

    E, pe, F, V = k.compute(atoms)
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
            ep = k.compute(p)[0]
            p.positions[i, a] -= 2 * h
            em = k.compute(p)[0]
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
    E2 = k.compute(atoms)[0]
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
