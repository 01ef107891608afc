"""Cross-check of the C core (kim_driver/) against the Python reference.

Builds the core as a shared library (compot.ccore, cached), and for every term type, nested sums
and products, one and two species (and the registry's species-embedding cases: a row's species at
each rank of its fourth field), writes a random Python model
(compot.model.Model, phi_max/rho_max from the data) with compot.io, reads it
with the C reader, and evaluates a jittered periodic bcc cell both ways: the
C core on the cell plus explicit ghost images, passed the way KIM does (ghost
neighbour lists) and the way LAMMPS does (half lists and an exchange between
ghosts and owners; compot.ccore builds both), and Python on the periodic
ase.Atoms.  Energies, per-atom energies, forces
(ghost forces folded back) and the virial must agree to 1e-12 (relative to
the largest value of each quantity).

Both format versions: v1 models (no window, quadratic continuation), and v2
models (E_i = S_i V_fit + (1 - S_i) E_ref + E_ZBL, docs/parameter-file.md)
with

* a random inner window per species pair (r_b in [2.75, 2.9] Å, below the
  ZBL r_in, r_a = r_b - [0.5, 1] Å: about half of the nearest neighbours,
  jittered by up to 0.25 Å per coordinate, fall inside it and are seen at
  the effective distance c(r); their atoms have S_pair < 1);
* a random saturation width tau, and every scale (phi_max, rho_max, q_max)
  set to 0.3-0.95 of its data maximum, so that E and N features and A
  invariants saturate on the atoms with the largest values;
* an extrapolation grade fitted with Model.compute_grade to the test cell
  and three jittered and strained copies, then gamma_lo and gamma_hi of
  every species set to the 30 % and 75 % quantiles of the test cell's
  grades, so that about half of the atoms are in the switch's transition
  and a quarter fully switched off; and a random E_ref per species.

Every v2 model is compared twice: with the grade off (U = 0, so S_i =
S_pair) to 1e-12, and with the grade. The grade is ill-conditioned by
design (U whitens directions in which the data barely vary, by up to
1/sqrt(floor) times the inverse mean spread), so the features' rounding,
about 1e-16 of the terms summed into them, reaches gamma, the switch and its
derivative amplified: the Python reference itself moves by up to ~1e-11
(forces, relative) when the cell is rigidly translated and its atoms
relabelled. With the grade the tolerance is therefore 10 x that floor
(measured on four translated, relabelled copies), at least 1e-12 (as for the
fitted models in tests/test_kim.py); the run prints the largest deviation in
units of the floor. The run fails if a v2 model has no pair in a window, no
atom in the grade's transition or none switched off by the grade.

Usage: python crosscheck_python.py      (exit status 0 on success; the C sources are
kim_driver/ of the repository, or $COMPOT_KIM_DRIVER)
"""
import os
import sys
import tempfile

import numpy as np
from ase.build import bulk

from compot.ccore import CoreModel, load_library
from compot.io import write_model
from compot.model import Model

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))   # tests/
from helpers import EMBEDDED, expression_v2, expressions  # noqa: E402

#: every term type, nested sums and products (tests/reference/expressions.txt);
#: format v2: the same terms, with ZBL r_in above the inner windows
EXPRESSIONS = expressions(1)
EXPRESSIONS_V2 = expressions(2)
#: how ghosts reach the core: KIM's ghost neighbour lists, LAMMPS's exchange
MODES = ("ghosts", "exchange")


def random_model(expr, species, atoms, rng, version=1, rank=None):
    m = Model(expr, species, 5.0, version=version, rank=rank)
    if version >= 2:
        # the window first: the scales are those of the windowed functions
        npair = len(m.params["w.r_b"])
        r_b = rng.uniform(2.75, 2.9, npair)
        m.set_block("w.tau", rng.uniform(0.2, 1.0))
        m.set_block("w.r_b", r_b)
        m.set_block("w.r_a", r_b - rng.uniform(0.5, 1.0, npair))
    for b in m.layout.blocks:
        leaf = b.name.split(".")[-1]
        shape = m.params[b.name].shape
        if leaf == "alpha":
            m.set_block(b.name, rng.uniform(0.1, 0.5))
        elif leaf == "beta":
            m.set_block(b.name, rng.uniform(1.2, 2.0))
        elif leaf == "gamma":
            m.set_block(b.name, rng.uniform(-1, 1, shape))
        elif leaf == "shift":
            m.set_block(b.name, rng.uniform(-1, 1, shape))
        elif leaf == "c":
            m.set_block(b.name, rng.uniform(-0.5, 0.5, shape))
        elif leaf == "w":       # species embedding W
            m.set_block(b.name, rng.uniform(-1, 1, shape))
    m.compute_scales([m.system([atoms])])
    # scales below the data maximum: |u| > 1 occurs (v2: every channel saturates
    # on the atom with the largest value)
    lo, hi = (0.6, 1.2) if version < 2 else (0.3, 0.95)
    for b in m.layout.blocks:
        if b.name.endswith("_max"):
            m.set_block(b.name, m.params[b.name] * rng.uniform(lo, hi, m.params[b.name].shape))
    return m


def fit_grade(m, atoms, rng):
    """Fit the grade of a v2 model (Model.compute_grade, its default eigenvalue
    floor) to ``atoms`` and three jittered copies strained by -3, 0 and +3 %,
    then move gamma_lo/gamma_hi to the 30 %/75 % quantiles of the grades of
    ``atoms`` per species; returns (atoms in the transition, atoms switched off)."""
    cells = [atoms]
    for scale in (0.97, 1.0, 1.03):
        c = atoms.copy()
        c.set_cell(c.cell * scale, scale_atoms=True)
        c.positions += rng.uniform(-0.1, 0.1, c.positions.shape)
        cells.append(c)
    m.compute_grade([m.system([c]) for c in cells])
    system = m.system([atoms])
    gamma = m.context(system).grade()[0]
    for z in range(len(m.species)):
        g = gamma[system.species_n == z]
        if len(g) < 3:
            continue
        lo, hi = np.quantile(g, [0.3, 0.75])
        if lo > 0 and hi > lo:
            m.params["g.gamma_lo"][z] = lo
            m.params["g.gamma_hi"][z] = hi
    gamma = m.context(m.system([atoms])).grade()[0]
    lo = m.params["g.gamma_lo"][system.species_n]
    hi = m.params["g.gamma_hi"][system.species_n]
    return int(np.sum((gamma > lo) & (gamma < hi))), int(np.sum(gamma >= hi))


def windowed_pairs(m, atoms):
    """Number of pairs of the cell inside an inner window (r_a < r < r_b)."""
    if m.version < 2:
        return 0
    from ase.neighborlist import neighbor_list
    i, j, d = neighbor_list("ijd", atoms, float(np.max(m.params["w.r_b"])))
    sp = list(m.species)
    s = np.array([sp.index(x) for x in atoms.get_chemical_symbols()])
    lo, hi = np.minimum(s[i], s[j]), np.maximum(s[i], s[j])
    S = len(sp)
    q = lo * S - lo * (lo - 1) // 2 + (hi - lo)
    return int(np.sum((d > m.params["w.r_a"][q]) & (d < m.params["w.r_b"][q]))) // 2


def voigt(W):
    return np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])


def deviations(p, E, pe, F, V):
    """Largest deviations of (E, E_i, F, W) from the Python prediction ``p``,
    relative to the largest value of each quantity (energies at least 1 eV)."""
    return {
        "E": abs(E - p.energy_m[0]) / max(1.0, abs(p.energy_m[0])),
        "E_i": np.max(np.abs(pe - p.energies_n)) / max(1.0, np.max(np.abs(p.energies_n))),
        "F": np.max(np.abs(F - p.forces_nc)) / max(1e-300, np.max(np.abs(p.forces_nc))),
        "V": np.max(np.abs(V - voigt(p.virial_mcc[0]))) / max(1e-300, np.max(np.abs(p.virial_mcc[0]))),
    }


def rounding_floor(m, atoms, p, n=4):
    """How far the Python reference itself moves (``deviations``) when the cell
    is rigidly translated and its atoms relabelled (a random permutation):
    nothing physical changes, only the rounding of the positions and the order
    of every sum over neighbours. Two correct implementations can agree no
    better than that. (Translation alone can miss the order: on one draw of
    v2+grade E[C3L2] it gave a force floor of 2.7e-14, the relabelling 1.4e-11,
    and the C core, which sums in its own order, deviated by 8.4e-11.)"""
    out = dict.fromkeys(("E", "E_i", "F", "V"), 0.0)
    rng = np.random.default_rng(0)
    for _ in range(n):
        perm = rng.permutation(len(atoms))
        back = np.argsort(perm)
        b = atoms[perm]
        b.translate(rng.uniform(-1.0, 1.0, 3))
        b.wrap()
        q = m.evaluate(m.system([b]))
        dev = deviations(p, q.energy_m[0], q.energies_n[back], q.forces_nc[back], voigt(q.virial_mcc[0]))
        out = {k: max(out[k], dev[k]) for k in out}
    return out


def main():
    rng = np.random.default_rng(11)
    failures = 0
    worst = 0.0          # with the grade: largest deviation / the reference's rounding floor
    so = load_library()        # kim_driver/ (or $COMPOT_KIM_DRIVER), built once and cached
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(1, species, expr, None) for species in (["Nb"], ["Mo", "Nb"]) for expr in EXPRESSIONS]
        cases += [(2, species, expr, None) for species in (["Nb"], ["Mo", "Nb"]) for expr in EXPRESSIONS_V2]
        # last, so that the other cases draw what they drew before
        cases += [(v, list(species), expression_v2(expr) if v >= 2 else expr, rank)
                  for v in (1, 2) for expr, species, rank in EMBEDDED]
        for version, species, expr, rank in cases:
            atoms = bulk("Nb", "bcc", a=3.30, cubic=True).repeat((2, 2, 2))
            jitter = 0.15 if version < 2 else 0.25
            atoms.positions += rng.uniform(-jitter, jitter, atoms.positions.shape)
            atoms.set_chemical_symbols([species[rng.integers(len(species))]
                                        for _ in range(len(atoms))])
            m = random_model(expr, species, atoms, rng, version, rank)
            nw = windowed_pairs(m, atoms)
            if version >= 2:
                m.set_block("w.e_ref", rng.uniform(-6.0, 0.0, len(species)))
                if nw == 0:
                    failures += 1
                    print(f"FAIL {expr} S={len(species)} v2: no pair inside the inner window")
            # v2: first without the grade (U = 0: the switch is S_pair), then with it
            for grade in ((False, True) if version >= 2 else (False,)):
                note = ""
                tol = dict.fromkeys(("E", "E_i", "F", "V"), 1e-12)
                if grade:
                    n_tr, n_off = fit_grade(m, atoms, rng)
                    if n_tr == 0 or n_off == 0:
                        failures += 1
                        print(f"FAIL {expr} S={len(species)} v2: grade: {n_tr} atoms in the transition, "
                              f"{n_off} switched off")
                    note = f", grade: {n_tr} in transition, {n_off} off"
                path = os.path.join(tmp, "m.params")
                write_model(m, path)
                core = CoreModel(path, library=so)
                p = m.evaluate(m.system([atoms]))
                if grade:
                    floor = rounding_floor(m, atoms, p)
                    tol = {k: max(1e-12, 10.0 * floor[k]) for k in tol}
                    note += ", tolerance " + " ".join(f"{k}={v:.0e}" for k, v in tol.items())
                label = f"v{version}{'+grade' if grade else ''}"
                for mode in MODES:
                    E, pe, F, V = core.evaluate(atoms, mode)
                    rel = deviations(p, E, pe, F, V)
                    ok = all(rel[k] <= tol[k] for k in rel)
                    if grade:
                        worst = max([worst] + [rel[k] / floor[k] for k in rel if floor[k] > 1e-13])
                    failures += not ok
                    print(f"{'ok  ' if ok else 'FAIL'} {label:8s} {expr:50s} S={len(species)}"
                          + (f" r={rank}" if rank else "") + f" {mode:8s} "
                          f"E={E:14.8f} " + " ".join(f"d{k}={v:.1e}" for k, v in rel.items())
                          + (f" ({nw} pairs in the window{note})" if version >= 2 else ""))
    print(f"with the grade, C deviates from Python by at most {worst:.1f} x Python's own rounding floor "
          f"(where that floor exceeds 1e-13)")
    print(f"{failures} failure(s)" if failures else "C core and Python agree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
