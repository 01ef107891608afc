"""Cross-check of the C core (kim_driver/) against the Python reference.

Builds the core as a shared library (compot.ccore, cached), and for every term type, nested sums
and products, one and two species, writes a random Python model
(compot.model.Model, phi_max/rho_max from the data) with compot.io, reads it
with the C reader, and evaluates a jittered periodic bcc cell both ways: the
C core on the cell plus explicit ghost images, passed the way KIM does (ghost
neighbour lists) and the way LAMMPS does (half lists and an exchange between
ghosts and owners; compot.ccore builds both), and Python on the periodic
ase.Atoms.  Energies, per-atom energies, forces
(ghost forces folded back) and the virial must agree to 1e-12 (relative to
the largest value of each quantity).

Both format versions: v1 models (no window, quadratic continuation), and v2
models with a random inner window per species pair (r_b in [2.75, 2.9] Å,
below the ZBL r_in, r_a = r_b - [0.5, 1] Å: about half of the nearest
neighbours, jittered by up to 0.25 Å per coordinate, fall inside it; the run
fails if a model has none), a random saturation width tau, and every scale
(phi_max, rho_max, q_max) set to 0.3-0.95 of its data maximum, so that E and N
features and A invariants saturate on the atoms with the largest values.

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

EXPRESSIONS = [
    "G4", "C5", "E[G3L2]", "E[C3L2]", "N[E[G3L2]]", "N[E[C2L2]]", "A[G3P3]",
    "A[C2P2]", "G2 + ZBL(2.0, 3.2)", "G8 + A[G8P4]", "E[G4L3] + N[E[G4L3]] + ZBL(1.6, 2.4)",
    "G3 * E[G2L2]", "(G2 + C2) * (E[G2L2] * N[E[C2L1]])",
    "G2 * (C3 + A[G2P2]) + N[E[G2L2]] + ZBL(1.2, 2.0)",
]
#: format v2: the same terms, with ZBL r_in above the inner windows
EXPRESSIONS_V2 = [
    "G4", "C5", "E[G3L2]", "E[C3L2]", "N[E[G3L2]]", "N[E[C2L2]]", "A[G3P3]",
    "A[C2P2]", "G2 + ZBL(2.9, 3.4)", "G8 + A[G8P4]", "E[G4L3] + N[E[G4L3]] + ZBL(2.9, 3.6)",
    "G3 * E[G2L2]", "(G2 + C2) * (E[G2L2] * N[E[C2L1]])",
    "G2 * (C3 + A[G2P2]) + N[E[G2L2]] + ZBL(2.9, 3.4)",
]
#: how ghosts reach the core: KIM's ghost neighbour lists, LAMMPS's exchange
MODES = ("ghosts", "exchange")


def random_model(expr, species, atoms, rng, version=1):
    m = Model(expr, species, 5.0, version=version)
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
    m.compute_scales([m.system([atoms])])
    # scales below the data maximum: |u| > 1 occurs (v2: every channel saturates
    # on the atom with the largest value)
    lo, hi = (0.6, 1.2) if version < 2 else (0.3, 0.95)
    for b in m.layout.blocks:
        if b.name.endswith("_max"):
            m.set_block(b.name, m.params[b.name] * rng.uniform(lo, hi, m.params[b.name].shape))
    return m


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


def main():
    rng = np.random.default_rng(11)
    failures = 0
    so = load_library()        # kim_driver/ (or $COMPOT_KIM_DRIVER), built once and cached
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(1, species, expr) for species in (["Nb"], ["Mo", "Nb"]) for expr in EXPRESSIONS]
        cases += [(2, species, expr) for species in (["Nb"], ["Mo", "Nb"]) for expr in EXPRESSIONS_V2]
        for version, species, expr in cases:
            atoms = bulk("Nb", "bcc", a=3.30, cubic=True).repeat((2, 2, 2))
            jitter = 0.15 if version < 2 else 0.25
            atoms.positions += rng.uniform(-jitter, jitter, atoms.positions.shape)
            atoms.set_chemical_symbols([species[rng.integers(len(species))]
                                        for _ in range(len(atoms))])
            m = random_model(expr, species, atoms, rng, version)
            nw = windowed_pairs(m, atoms)
            if version >= 2 and nw == 0:
                failures += 1
                print(f"FAIL {expr} S={len(species)} v2: no pair inside the inner window")
            path = os.path.join(tmp, "m.params")
            write_model(m, path)
            core = CoreModel(path, library=so)
            p = m.evaluate(m.system([atoms]))
            for mode in MODES:
                E, pe, F, V = core.evaluate(atoms, mode)
                rel = {
                    "E": abs(E - p.energy_m[0]) / max(1.0, abs(p.energy_m[0])),
                    "E_i": np.max(np.abs(pe - p.energies_n)) / max(1.0, np.max(np.abs(p.energies_n))),
                    "F": np.max(np.abs(F - p.forces_nc)) / max(1e-300, np.max(np.abs(p.forces_nc))),
                    "V": np.max(np.abs(V - voigt(p.virial_mcc[0])))
                         / max(1e-300, np.max(np.abs(p.virial_mcc[0]))),
                }
                ok = all(r <= 1e-12 for r in rel.values())
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} v{version} {expr:52s} S={len(species)} {mode:8s} "
                      f"E={E:14.8f} " + " ".join(f"d{k}={v:.1e}" for k, v in rel.items())
                      + (f" ({nw} pairs in the window)" if version >= 2 else ""))
    print(f"{failures} failure(s)" if failures else "C core and Python agree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
