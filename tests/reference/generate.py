"""Write the cross-host reference files ``tests/reference/*.yaml`` from the Python reference.

Regenerate (only when the model's mathematics changes on purpose; every host
replays these numbers, so review the diff)::

    .venv/bin/python tests/reference/generate.py            # all cases
    .venv/bin/python tests/reference/generate.py g_c_v2     # one case

Each file holds one model (its parameter-file text inline, or the path of a
small committed parameter file with the SHA-256 of its content, comments left
out), a few structures (cell, pbc, positions, species) and, for each
structure, what ``compot.io.read_model`` + ``Model.evaluate`` give: the
energy [eV], the site energies [eV], the forces [eV/Å] and the virial
W = Σ_i r_i ⊗ ∂E/∂r_i [eV] in the order xx yy zz yz xz xy (KIM's
``partialVirial``; ASE stress = W / V). Each structure also records

* ``rounding_floor``: how far the Python reference itself moves, relative to
  each quantity as ``tests/helpers.reference_deviations`` measures it, when the
  structure is rigidly translated (only rounding changes); replays compare to
  a tolerance of max(the host's tolerance, 10 × this floor). It matters only
  where the extrapolation grade amplifies the features' rounding;
* ``census``: atoms with a pair inside the inner window, in the grade's
  transition (0 < S_grade < 1) and switched off by the grade.

Cells are in LAMMPS's restricted triclinic form (rows a = (ax, 0, 0),
b = (bx, by, 0), c = (cx, cy, cz)) so that LAMMPS hosts take them as they are;
clusters have pbc false and a zero cell.

The file format is plain YAML; numbers are written in their shortest form that
reads back to the same double (Python's repr).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

from helpers import (bounded_model, coordinated_model, parameter_digest, random_model, reference_deviations, switch_census,  # noqa: E402
                     switched_model)

from compot.io import format_model, read_model  # noqa: E402

COMMAND = ".venv/bin/python tests/reference/generate.py"


# ------------------------------------------------------------------ structures
def _species(at: Atoms, species, rng) -> Atoms:
    """Random species of ``species`` on ``at``, the first atom species[0] and the
    last species[-1] (both present)."""
    if len(species) > 1:
        syms = [species[k] for k in rng.integers(0, len(species), len(at))]
        syms[0], syms[-1] = species[0], species[-1]
        at.set_chemical_symbols(syms)
    return at


def lammps_cell(rng, lengths, tilt):
    ax, by, cz = lengths
    return np.array([[ax, 0.0, 0.0],
                     [rng.uniform(-tilt, tilt) * ax, by, 0.0],
                     [rng.uniform(-tilt, tilt) * ax, rng.uniform(-tilt, tilt) * by, cz]])


def bulk_close_pair(species, seed, close):
    """16-atom bcc cell (a = 3.3 Å, orthogonal, axes strained by ±2 %),
    rattled by 0.06 Å, with atom 1 moved to ``close`` Å from atom 0 along
    [111]: one pair far inside the nearest-neighbour shell (2.86 Å)."""
    rng = np.random.default_rng(seed)
    at = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 2, 2))
    at.set_cell(np.diag(np.diag(at.cell.array) * rng.uniform(0.98, 1.02, 3)), scale_atoms=True)
    at.positions += rng.uniform(-0.06, 0.06, at.positions.shape)
    d = at.positions[1] - at.positions[0]
    at.positions[1] = at.positions[0] + close * d / np.linalg.norm(d)
    at.wrap()
    return _species(at, species, rng)


def triclinic(species, seed):
    """16-atom bcc cell in a sheared LAMMPS-form cell (tilts up to 15 %),
    fractional coordinates rattled."""
    rng = np.random.default_rng(seed)
    base = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 2, 2))
    cell = lammps_cell(rng, 6.6 * rng.uniform(0.97, 1.03, 3), 0.15)
    frac = base.get_scaled_positions() + rng.uniform(-0.018, 0.018, (len(base), 3))
    at = Atoms("Nb16", cell=cell, pbc=True)
    at.set_scaled_positions(frac % 1.0)
    return _species(at, species, rng)


def small(species, seed):
    """2-atom sheared bcc cell, 3.3 Å: smaller than r_c (many images of each atom)."""
    rng = np.random.default_rng(seed)
    cell = lammps_cell(rng, 3.3 * rng.uniform(0.97, 1.03, 3), 0.15)
    at = Atoms("Nb2", cell=cell, pbc=True)
    at.set_scaled_positions((np.array([[0, 0, 0], [0.5, 0.5, 0.5]]) + rng.uniform(-0.03, 0.03, (2, 3))) % 1.0)
    return _species(at, species, rng)


def cluster(species, seed):
    """9 atoms of bcc (a = 3.3 Å), non-periodic, rattled by 0.15 Å."""
    rng = np.random.default_rng(seed)
    at = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 2, 2))[:9]
    at.pbc = False
    at.cell = np.zeros((3, 3))
    at.positions += rng.uniform(-0.15, 0.15, at.positions.shape)
    return _species(at, species, rng)


# ---------------------------------------------------------------------- cases
# name → what it covers, how to build the model and its structures. Inline
# models are random (tests/helpers.random_model: scales from the structures
# reduced so that features saturate, format v2 windows holding the close pair)
# or switched (helpers.switched_model: grade fitted to the structures, γ_lo/γ_hi
# at the 30 %/75 % quantiles, so that the grade acts).
NB, MONB = ("Nb",), ("Mo", "Nb")


def _structures(species, seed, close):
    return [("bulk_close_pair", bulk_close_pair(species, seed, close)),
            ("triclinic", triclinic(species, seed + 1)),
            ("small", small(species, seed + 2)),
            ("cluster", cluster(species, seed + 3))]


CASES = {
    "g_c_v2": dict(
        description="G and C terms in a sum with ZBL; format v2 window (2.0, 2.6) Å holding the close pair, "
                    "saturated features",
        covers=["G", "C", "ZBL", "sum", "v2 window"],
        expression="G4 + C5 + ZBL(2.6, 3.4)", species=NB, kind="random", window=(2.0, 2.6), close=2.3, seed=1),
    "e_n_zbl_v1": dict(
        description="E + N + ZBL in format v1, the hand-written parameter file of the C tests",
        covers=["G", "E", "N", "ZBL", "sum", "v1"],
        parameter_file="tests/c/data/nb_e_n_zbl.params", species=NB, close=2.0, seed=11),
    "g_times_a_monb_v1": dict(
        description="a product with an A term on two species in format v1, the hand-written parameter file of "
                    "the C tests",
        covers=["G", "C", "A", "product", "two species", "v1"],
        parameter_file="tests/c/data/mo_nb_g_times_a.params", species=MONB, close=2.0, seed=21),
    "e_a_zbl_v2_file": dict(
        description="E + A + ZBL in format v2 as the Python writer writes it (window 1.1-1.6 Å, a fixed "
                    "grade), the C tests' fixture",
        covers=["G", "E", "A", "ZBL", "sum", "v2 window", "v2 grade"],
        parameter_file="tests/c/data/nb_v2_e_a_zbl.params", species=NB, close=1.4, seed=31),
    "e_n_c_v2": dict(
        description="E and N on Gaussian and Chebyshev bases with ZBL, format v2 window holding the close pair, "
                    "saturated features",
        covers=["G", "C", "E", "N", "ZBL", "sum", "v2 window"],
        expression="E[G4L3] + N[E[C3L2]] + ZBL(2.6, 3.4)", species=NB, kind="random", window=(2.0, 2.6),
        close=2.3, seed=41),
    "nested_products_monb_v2": dict(
        description="nested products with a sum inside, E and N factors, two species, format v2",
        covers=["G", "C", "E", "N", "sum", "product", "two species", "v2 window"],
        expression="(G2 + C2) * (E[G2L2] * N[E[C2L1]])", species=MONB, kind="random", window=(2.0, 2.6),
        close=2.3, seed=51),
    "mixed_grade_monb_v2": dict(
        description="a product holding a sum with an A term, an N term and ZBL, two species; format v2 with "
                    "the extrapolation grade acting (atoms in its transition and switched off)",
        covers=["G", "C", "A", "N", "E", "ZBL", "sum", "product", "two species", "v2 window", "v2 grade"],
        expression="G2 * (C3 + A[G2P2]) + N[E[G2L2]] + ZBL(2.9, 3.4)", species=MONB, kind="switched",
        window=(2.3, 2.85), close=2.5, seed=61),
    "recipe_grade_v2": dict(
        description="the default recipe's composition E[G..L..] + A[G..P..] + ZBL in format v2 with the "
                    "extrapolation grade acting",
        covers=["G", "E", "A", "ZBL", "sum", "v2 window", "v2 grade"],
        expression="E[G4L3] + A[G4P2] + ZBL(2.9, 3.4)", species=NB, kind="switched", window=(2.3, 2.85),
        close=2.5, seed=71),
    "exp_angular_monb_v2": dict(
        description="the exponentiated angular term E[A[..]] in a sum with A and ZBL and as a product factor, "
                    "two species; format v2 with the extrapolation grade acting",
        covers=["G", "C", "E", "EA", "A", "ZBL", "sum", "product", "two species", "v2 window", "v2 grade"],
        expression="E[A[G3P2]L2] + A[G3P2] + G2 * E[A[C2P1]L1] + ZBL(2.9, 3.4)", species=MONB,
        kind="switched", window=(2.3, 2.85), close=2.5, seed=81),
    "bounded_recipe_v3": dict(
        description="the default recipe's composition in format v3 with the fitted site energy bounded below "
                    "(w.e_min) acting on about 40 % of the atoms, with the window and the grade acting",
        covers=["G", "E", "A", "ZBL", "sum", "v2 window", "v2 grade", "v3 bound"],
        expression="E[G4L3] + A[G4P2] + ZBL(2.9, 3.4)", species=NB, kind="switched", window=(2.3, 2.85),
        close=2.5, seed=101, bounded=True),
    "coordination_monb_v4": dict(
        description="the default recipe's composition over two species in format v4, the coordination term of "
                    "the grade (g.n_min) acting on most atoms, with the window, the grade and the v3 bound",
        covers=["G", "E", "A", "ZBL", "sum", "two species", "v2 window", "v2 grade", "v3 bound",
                "v4 coordination"],
        expression="E[G4L3] + A[G4P2] + ZBL(2.9, 3.4)", species=MONB, kind="switched", window=(2.3, 2.85),
        close=2.5, seed=111, bounded=True, coordinated=True),
    "embedded_nbmotaw_v2": dict(
        description="a species embedding of rank 2 over four species (chemistry.rank 2, random weights W) with "
                    "E, N and A on one shared Gaussian basis and its W, an E[A] factor of a product on a "
                    "Chebyshev basis with its own W, ZBL; format v2 with the extrapolation grade acting",
        covers=["G", "C", "E", "N", "A", "EA", "ZBL", "sum", "product", "four species", "embedding",
                "v2 window", "v2 grade"],
        expression="E[G3L2] + N[E[G3L2]] + A[G3P2] + G2 * E[A[C2P1]L1] + ZBL(2.9, 3.4)",
        species=("Mo", "Nb", "Ta", "W"), rank=2, kind="switched", window=(2.3, 2.85), close=2.5, seed=91),
}


# ------------------------------------------------------------------- writing
def _num(x) -> str:
    s = repr(float(x))
    if "e" in s and "." not in s:       # YAML 1.1 (PyYAML) needs the dot: 1e-05 → 1.0e-05
        s = s.replace("e", ".0e")
    return s


def _row(v) -> str:
    return "[" + ", ".join(_num(x) for x in v) + "]"


def _rows(name, arr, indent) -> list[str]:
    pad = " " * indent
    return [f"{pad}{name}:"] + [f"{pad}  - {_row(r)}" for r in np.asarray(arr, float).reshape(len(arr), -1)]


def _block_text(text, indent) -> list[str]:
    pad = " " * indent
    return [pad + line if line else "" for line in text.splitlines()]


def build(name: str, spec: dict):
    """(model, model section lines, structures) of one case."""
    species = spec["species"]
    structs = _structures(species, spec["seed"], spec["close"])
    atoms = [a for _, a in structs]
    if "parameter_file" in spec:
        path = REPO / spec["parameter_file"]
        model = read_model(path)
        digest = parameter_digest(path.read_text(encoding="utf-8"))
        section = [f"  parameter_file: {spec['parameter_file']}", f"  sha256: {digest}"]
    else:
        if spec["kind"] == "switched":
            model = switched_model(spec["expression"], species, atoms, seed=spec["seed"], window=spec["window"],
                                   rank=spec.get("rank"))
            if spec.get("bounded"):
                model = bounded_model(model, atoms)
            if spec.get("coordinated"):
                model = coordinated_model(model, atoms)
        else:
            model = random_model(spec["expression"], species, seed=spec["seed"], structures=atoms,
                                 window=spec["window"], rank=spec.get("rank"))
        text = format_model(model, comment=f"reference case {name}; {COMMAND} {name}")
        # without the writer's time stamp: regenerating an unchanged case rewrites the same file
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("# written by compot")) + "\n"
        model = read_model_text(text)
        section = ["  parameters: |"] + _block_text(text, 4)
    head = [f"  expression: {model.expression}", f"  species: [{', '.join(model.species)}]",
            f"  format: {model.version}", f"  cutoff: {_num(model.cutoff)}"]
    return model, head + section, structs


def read_model_text(text: str):
    """A model from parameter-file text (through a temporary file: the public reader)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.params"
        path.write_text(text, encoding="utf-8")
        return read_model(path)


def rounding_floor(model, atoms, ref, n=4):
    """Largest relative deviation (``reference_deviations``) of the Python
    reference from itself under ``n`` rigid translations of ``atoms``."""
    rng = np.random.default_rng(0)
    out = dict.fromkeys(("energy", "energies", "forces", "virial"), 0.0)
    for _ in range(n):
        b = atoms.copy()
        b.translate(rng.uniform(-1.0, 1.0, 3))
        if b.pbc.any():
            b.wrap()
        dev = reference_deviations(ref, evaluate(model, b))
        out = {k: max(out[k], dev[k]) for k in out}
    return out


def evaluate(model, atoms) -> dict:
    p = model.evaluate(model.system([atoms]))
    W = p.virial_mcc[0]
    return {"energy": float(p.energy_m[0]), "energies": np.array(p.energies_n), "forces": np.array(p.forces_nc),
            "virial": np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])}


def write_case(name: str, spec: dict) -> Path:
    model, model_lines, structs = build(name, spec)
    lines = [f"# compot cross-host reference: {spec['description']}.",
             "# Generated by tests/reference/generate.py from the Python reference; do not edit.",
             f"# Regenerate: {COMMAND} {name}",
             "# Units: Å, eV, eV/Å; virial W = sum_i r_i (x) dE/dr_i [eV], order xx yy zz yz xz xy.",
             f"name: {name}",
             f"description: {spec['description']}",
             f"covers: [{', '.join(spec['covers'])}]",
             "model:"] + model_lines + ["structures:"]
    total = np.zeros(3, int)
    for sname, at in structs:
        ref = evaluate(model, at)
        floor = rounding_floor(model, at, ref)
        census = switch_census(model, at) if model.version >= 2 else (0, 0, 0)
        total += census
        lines += [f"  - name: {sname}",
                  f"    pbc: [{', '.join('true' if p else 'false' for p in at.pbc)}]"]
        lines += _rows("cell", at.cell.array, 4)
        lines += [f"    species: [{', '.join(at.get_chemical_symbols())}]"]
        lines += _rows("positions", at.positions, 4)
        lines += [f"    census: {{window: {census[0]}, grade_transition: {census[1]}, grade_off: {census[2]}}}",
                  "    rounding_floor: {" + ", ".join(f"{k}: {_num(v)}" for k, v in floor.items()) + "}",
                  f"    energy: {_num(ref['energy'])}",
                  f"    energies: {_row(ref['energies'])}"]
        lines += _rows("forces", ref["forces"], 4)
        lines += [f"    virial: {_row(ref['virial'])}"]
    if spec.get("kind") == "switched" and not (total[1] and total[2]):
        raise RuntimeError(f"{name}: the grade does not act (atoms in its transition, switched off: {total[1:]})")
    path = HERE / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv) -> int:
    names = argv or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s) {', '.join(unknown)}; expected some of {', '.join(CASES)}", file=sys.stderr)
        return 2
    for n in names:
        print(write_case(n, CASES[n]).relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
