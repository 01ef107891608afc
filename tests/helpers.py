"""Shared test helpers (no test collection here): the expression registry,
random models and structures, and the cross-host reference files
(``tests/reference/*.yaml``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk

from compot.functions import inner_window_fdf
from compot.model import Model

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"

# ------------------------------------------------------------------ registry
def _read_registry(path: Path):
    v1, v2, embedded = [], {}, []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            fields = [f.strip() for f in line.split("|")]
            if len(fields) not in (3, 4):
                raise ValueError(f"{path}:{n}: {len(fields)} fields; expected 3 or 4 separated by '|'")
            e1, e2, species = fields[:3]
            v1.append((e1, tuple(species.split())))
            v2[e1] = e2
            for rank in (fields[3].split() if len(fields) == 4 else ()):
                embedded.append((e1, tuple(species.split()), int(rank)))
    return v1, v2, embedded


#: The expressions every host is checked on (tests/reference/expressions.txt):
#: every term family, nested sums and products; (expression, species of a host
#: that runs one species set per expression).
#: EMBEDDED: the rows with a fourth field, once per rank: (expression, species,
#: rank) of a species embedding every host also runs (docs/parameter-file.md).
EXPRESSIONS, _V2, EMBEDDED = _read_registry(REFERENCE_DIR / "expressions.txt")


def expression_v2(expression: str) -> str:
    """The registry's format v2 form of ``expression`` (its ZBL window above the
    inner windows)."""
    return _V2[expression]


def expressions(version: int = 1) -> list[str]:
    """The registry's expressions, for format ``version``."""
    return [expression_v2(e) if version >= 2 else e for e, _ in EXPRESSIONS]


def expression_case(expression: str) -> tuple[str, tuple[str, ...]]:
    """The registry entry (expression, species) of ``expression``."""
    return next(c for c in EXPRESSIONS if c[0] == expression)


def random_model(expression: str, species=("Nb",), cutoff: float = 4.5, seed: int = 0,
                 structures=(), window=None, version: int = 2, rank: int | None = None) -> Model:
    """A model with random but sensible parameters (α 0.15–0.5 Å⁻², β 1.2–1.9,
    γ ±1, coefficients and shifts ±0.5 eV).

    With ``structures`` the scales φ_max, ρ_max (and q_max) are computed from them
    and then multiplied by 0.6–1.2, so that |u| > 1 (the continuation of x(γ, u)
    and the saturation of the A invariants) occurs too. ``window`` (r_a, r_b) [Å]
    sets the inner window of every species pair (format v2). ``rank``: a species
    embedding of that rank with random weights W in ±1.
    """
    rng = np.random.default_rng(seed)
    m = Model(expression, species, cutoff, version=version, rank=rank)
    if window is not None:
        m.params["w.r_a"] = np.full(m.params["w.r_a"].shape, float(window[0]))
        m.params["w.r_b"] = np.full(m.params["w.r_b"].shape, float(window[1]))
    for b in m.layout.blocks:
        leaf = b.name.split(".")[-1]
        if leaf == "alpha":
            m.params[b.name] = np.array(rng.uniform(0.15, 0.5))
        elif leaf == "beta":
            m.params[b.name] = np.array(rng.uniform(1.2, 1.9))
        elif leaf == "gamma":
            m.params[b.name] = rng.uniform(-1, 1, b.shape)
        elif leaf == "w":
            m.params[b.name] = rng.uniform(-1, 1, b.shape)
        elif b.role == "linear":
            m.params[b.name] = rng.uniform(-0.5, 0.5, b.shape)
    if len(structures):
        m.compute_scales([m.system(list(structures))])
        for b in m.layout.blocks:
            if b.name.endswith("_max"):
                m.params[b.name] = m.params[b.name] * rng.uniform(0.6, 1.2, b.shape)
    return m


def switched_model(expression: str, species, structures, seed: int = 0, window=(2.3, 2.85),
                   cutoff: float = 4.5, rank: int | None = None) -> Model:
    """A random format v2 model (:func:`random_model`) whose atom switch acts on
    ``structures``: the inner window ``window`` holds their shortest pairs, the
    grade is fitted (``Model.compute_grade``) to them and four rattled copies of
    each, then γ_lo/γ_hi of every species are moved to the 30 %/75 % quantiles
    of the structures' grades, so that some atoms are in the switch's
    transition and some switched off; E_ref random in [-8, -2] eV."""
    rng = np.random.default_rng(seed)
    m = random_model(expression, species, cutoff, seed=seed, structures=structures, window=window, rank=rank)
    m.params["w.e_ref"] = rng.uniform(-8.0, -2.0, len(species))
    data = []
    for at in structures:
        for k in range(5):
            b = at.copy()
            if k:
                b.positions += rng.uniform(-0.08, 0.08, b.positions.shape)
            data.append(m.system([b]))
    m.compute_grade(data)
    system = m.system(list(structures))
    gamma = m.context(system).grade()[0]
    for z in range(len(species)):
        g = gamma[system.species_n == z]
        if len(g) >= 3:
            lo, hi = np.quantile(g, [0.3, 0.75])
            if lo > 0 and hi > 1.2 * lo:
                m.params["g.gamma_lo"][z], m.params["g.gamma_hi"][z] = lo, hi
    return m


def bounded_model(model: Model, structures, quantile: float = 0.6) -> Model:
    """``model`` (format v2) as format v3 with its fitted site energy bounded below
    (compot.safety.SafetyLayer.bounded_fit) on ``structures``: e_min of each species
    at the ``quantile`` of V_fit over their atoms, E_ref 2 eV above it (w = 2 τ eV),
    so that the bound acts on about 1 − quantile of them."""
    m = model.copy(version=3)
    system = m.system(list(structures))
    ctx = m.context(system)             # (its safety layer holds the context weakly)
    v = ctx.fitted_value()
    for z in range(len(m.species)):
        vz = v[system.species_n == z]
        if vz.size:
            m.params["w.e_min"][z] = np.quantile(vz, quantile)
            m.params["w.e_ref"][z] = m.params["w.e_min"][z] + 2.0
    return m


def assert_c_core_matches_python(model: Model, atoms, grade: bool = False) -> None:
    """The C core (compot.ccore.CCoreCalculator) against the Python reference on ``atoms``:
    energy (1e-12 relative), forces (1e-10 eV/Å), site energies (1e-11 eV), stress
    (1e-12 eV/Å³) and, with ``grade``, the extrapolation grade γ (1e-11 relative)."""
    import pytest
    from compot.calculator import CompotCalculator
    from compot.ccore import CCoreCalculator
    ref, c = atoms.copy(), atoms.copy()
    ref.calc, c.calc = CompotCalculator(model, grade=grade), CCoreCalculator(model)
    assert c.get_potential_energy() == pytest.approx(ref.get_potential_energy(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(c.get_forces(), ref.get_forces(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(c.get_potential_energies(), ref.get_potential_energies(), atol=1e-11)
    if atoms.pbc.all():
        np.testing.assert_allclose(c.get_stress(), ref.get_stress(), atol=1e-12)
    if grade:
        np.testing.assert_allclose(c.calc.get_property("grade", c), ref.calc.get_property("grade", ref), rtol=1e-11)


def coordinated_model(model: Model, structures, factor: float = 1.4) -> Model:
    """``model`` in format v4 with the coordination term of the grade acting on
    ``structures``: n_min of every species ``factor`` times the median coordination
    (compot.safety.coordination) of their atoms, so that most atoms are in the term's
    transition (or, in a cluster, beyond it)."""
    from compot.safety import coordination
    m = model.copy(version=4)
    n, _ = coordination(m.system(list(structures)), m.cutoff)
    m.params["g.n_min"] = np.full(len(m.species), factor * float(np.median(n)))
    return m


def switch_census(model: Model, atoms) -> tuple[int, int, int]:
    """Atoms of ``atoms`` with a pair inside the inner window (S_pair < 1), in the
    grade's transition (0 < S_grade < 1) and switched off by the grade."""
    system = model.system([atoms])
    _, S_g, _ = model.context(system).grade()
    S = len(model.species)
    a = np.minimum(system.species_n[system.i_p], system.channel_p)
    b = np.maximum(system.species_n[system.i_p], system.channel_p)
    pair = a * S - a * (a - 1) // 2 + (b - a)
    s_in, _ = inner_window_fdf(system.r_p, model.params["w.r_a"][pair], model.params["w.r_b"][pair])
    S_pair = np.ones(system.n_atoms)
    np.multiply.at(S_pair, system.i_p, s_in)
    return int(np.sum(S_pair < 1)), int(np.sum((S_g > 0) & (S_g < 1))), int(np.sum(S_g == 0))


def random_structure(kind: str = "triclinic", species=("Nb",), seed: int = 1):
    """Perturbed bcc structures: 'triclinic' (16 atoms, sheared cell), 'small'
    (1-atom primitive cell, smaller than the cutoff), 'cluster' (non-periodic)."""
    rng = np.random.default_rng(seed)
    if kind == "small":
        at = bulk("Nb", "bcc", a=3.3)
        at.set_cell(at.cell.array + rng.uniform(-0.1, 0.1, (3, 3)), scale_atoms=True)
        return at
    at = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 2, 2))
    at.rattle(0.12, seed=seed)
    if kind == "triclinic":
        at.set_cell(at.cell.array + rng.uniform(-0.25, 0.25, (3, 3)), scale_atoms=True)
    if kind == "cluster":
        at.pbc = False
        at.cell = [0, 0, 0]
    if len(species) > 1:
        idx = rng.choice(len(at), size=len(at) // 3, replace=False)
        syms = np.array(at.get_chemical_symbols(), dtype=object)
        syms[idx] = species[1]
        at.set_chemical_symbols(list(syms))
    return at


def energy(model: Model, atoms) -> float:
    return float(model.evaluate(model.system([atoms]), forces=False, virial=False).energy_m[0])


# ------------------------------------------------------------ reference suite
def parameter_digest(text: str) -> str:
    """SHA-256 of a parameter file's content: its lines without comments, blank
    lines and surrounding white space (a rewritten time stamp changes nothing)."""
    import hashlib
    lines = (ln.split("#", 1)[0].strip() for ln in text.splitlines())
    return hashlib.sha256("\n".join(ln for ln in lines if ln).encode("utf-8")).hexdigest()


def reference_files() -> list[Path]:
    """The cross-host reference files, sorted (tests/reference/generate.py writes them)."""
    return sorted(REFERENCE_DIR.glob("*.yaml"))


class ReferenceCase:
    """One reference file: a model and its structures with the Python
    reference's energy, site energies, forces and virial.

    Attributes
    ----------
    name : str
    covers : list of str — term families and features the case exercises
    expression : str
    species : tuple of str
    version : int — parameter-file format
    cutoff : float — r_c [Å]
    text : str — the parameter file
    structures : list of dict — ``name``, ``atoms`` (ase.Atoms), ``energy``
        [eV], ``energies`` shape (n,) [eV], ``forces`` shape (n, 3) [eV/Å],
        ``virial`` shape (6,) [eV] (Σ r ⊗ ∂E/∂r, xx yy zz yz xz xy),
        ``rounding_floor`` and ``census`` (dicts)
    """

    def __init__(self, path: Path):
        import yaml
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        self.path = Path(path)
        self.name = doc["name"]
        self.covers = list(doc["covers"])
        m = doc["model"]
        self.expression = m["expression"]
        self.species = tuple(m["species"])
        self.version = int(m["format"])
        self.cutoff = float(m["cutoff"])
        if "parameter_file" in m:
            pf = REFERENCE_DIR.parent.parent / m["parameter_file"]
            self.text = pf.read_text(encoding="utf-8")
            if parameter_digest(self.text) != m["sha256"]:
                raise AssertionError(f"{path}: {m['parameter_file']} changed since the reference was generated; "
                                     f"if on purpose, run .venv/bin/python tests/reference/generate.py {self.name}")
        else:
            self.text = m["parameters"]
        self.structures = []
        for s in doc["structures"]:
            at = Atoms(s["species"], positions=np.array(s["positions"], float), cell=np.array(s["cell"], float),
                       pbc=s["pbc"])
            self.structures.append({
                "name": s["name"], "atoms": at, "energy": float(s["energy"]),
                "energies": np.array(s["energies"], float), "forces": np.array(s["forces"], float),
                "virial": np.array(s["virial"], float), "rounding_floor": dict(s["rounding_floor"]),
                "census": dict(s["census"])})

    def __repr__(self):
        return f"ReferenceCase({self.name!r})"

    def write(self, folder: Path) -> Path:
        """The parameter file written into ``folder``; its path."""
        path = Path(folder) / f"{self.name}.params"
        path.write_text(self.text, encoding="utf-8")
        return path


def reference_cases() -> list[ReferenceCase]:
    return [ReferenceCase(p) for p in reference_files()]


def reference_deviations(ref: dict, got: dict) -> dict:
    """Largest deviations of ``got`` from ``ref`` (dicts with ``energy``,
    ``energies``, ``forces``, ``virial``; any may be missing from ``got``),
    relative to the largest value of each quantity in ``ref`` (energies at
    least 1 eV)."""
    out = {}
    if "energy" in got:
        out["energy"] = abs(got["energy"] - ref["energy"]) / max(1.0, abs(ref["energy"]))
    if "energies" in got:
        out["energies"] = float(np.max(np.abs(got["energies"] - ref["energies"]))
                                / max(1.0, np.max(np.abs(ref["energies"]))))
    for q in ("forces", "virial"):
        if q in got:
            out[q] = float(np.max(np.abs(np.asarray(got[q]) - ref[q])) / max(1e-300, np.max(np.abs(ref[q]))))
    return out


def check_against_reference(structure: dict, got: dict, rtol: float, what: str) -> dict:
    """Assert that ``got`` equals the reference values of ``structure`` to
    max(``rtol``, 10 × the structure's rounding floor), quantity by quantity;
    returns the deviations."""
    dev = reference_deviations(structure, got)
    tol = {q: max(rtol, 10.0 * structure["rounding_floor"][q]) for q in dev}
    bad = {q: f"{dev[q]:.2e} > {tol[q]:.0e}" for q in dev if not dev[q] <= tol[q]}
    assert not bad, f"{what}, {structure['name']}: relative deviations {bad}"
    return dev


def in_box(atoms, margin: float):
    """A periodic copy of ``atoms`` for hosts that need a box (LAMMPS): periodic
    cells as they are; a cluster in an orthogonal box ``margin`` Å wider than
    it on every side (no atom sees an image), shifted inside."""
    if atoms.pbc.all():
        return atoms.copy()
    out = atoms.copy()
    lo, hi = out.positions.min(axis=0), out.positions.max(axis=0)
    out.positions += margin - lo
    out.cell = np.diag(hi - lo + 2 * margin)
    out.pbc = True
    return out


# ------------------------------------------------------------------- LAMMPS
#: Masses [g/mol] of the species the LAMMPS tests use.
LAMMPS_MASS = {"Nb": 92.90637, "Mo": 95.95, "Ta": 180.94788, "W": 183.84}


def lammps_with_atoms(atoms, species, newton: str = "on"):
    """A LAMMPS instance (``compot_lammps.open_lammps``) in metal units holding
    ``atoms``, already in LAMMPS's restricted triclinic frame, as atom types in the
    order of ``species`` (ids 1..n in the order of ``atoms``), with the compot
    plugin loaded; the caller sets the pair style and closes it."""
    import sys
    sys.path.insert(0, str(REFERENCE_DIR.parent.parent / "lammps_plugin"))
    from compot_lammps import load_plugin, open_lammps
    cell = atoms.cell.array
    lmp = open_lammps()
    try:
        lmp.commands_string(f"""
            units metal
            atom_style atomic
            atom_modify map array sort 0 0
            newton {newton}
            boundary p p p
            region box prism 0 {cell[0, 0]:.17g} 0 {cell[1, 1]:.17g} 0 {cell[2, 2]:.17g} {cell[1, 0]:.17g} {cell[2, 0]:.17g} {cell[2, 1]:.17g}
            create_box {len(species)} box
            """)
        for t, s in enumerate(species, 1):
            lmp.command(f"mass {t} {LAMMPS_MASS[s]}")
        types = [species.index(s) + 1 for s in atoms.get_chemical_symbols()]
        lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types,
                         [float(v) for v in atoms.positions.ravel()])
        assert lmp.get_natoms() == len(atoms)
        load_plugin(lmp)
    except BaseException:
        lmp.close()
        raise
    return lmp
