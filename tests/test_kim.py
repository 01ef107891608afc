"""compot models as KIM portable models: kimpy, ASE, KLIFF and LAMMPS agree with Python.

Every model is exported with :func:`compot.export.export_kim` and installed
into the KIM user collection under a name unique to this test session
(``CompotPytest_<token>_<label>_<n>``, no KIM ID); all of them are removed at the end.
The driver is installed once per session from ``kim_driver/``.

* kimpy (and ASE's ``KIM`` calculator): energy, site energies, forces and
  virial/stress equal the Python reference to 1e-9 relative, for every term
  type, nested sums and products, 1 and 2 species, on triclinic cells and
  cells smaller than 2 r_c; also (kimpy and LAMMPS) for format v2 models
  whose atom switch acts (pairs in the inner window, atoms in the grade's
  transition and switched off); for the registry's species-embedding cases
  (Mo Nb Ta W at rank 1 and 2), and on a 54-atom random NbMoTaW with an
  embedding of rank 1 and 2 and the atom switch acting, through kimpy and
  LAMMPS ``kim init`` against ``CompotCalculator``; forces equal a Ridders numerical derivative of
  the KIM energy (the method of KIM's ``utility_forces_numer_deriv``) on many
  random configurations;
* bad parameter files make kimpy model creation and LAMMPS ``kim init`` fail
  cleanly (exit status 1, no signal) with ``file:line: ... expected ...`` in
  kim.log;
* KLIFF 1.0.1: ``KIMModel`` lists the parameters; ``set_opt_params`` /
  ``update_model_params`` change energies exactly as the same change in
  Python; ``write_kim_model`` output re-installs and reproduces them;
  ``examples/kliff_refit.py`` recovers the fitted coefficients (along every
  direction the data determine);
* Debian LAMMPS (``/usr/bin/lmp``, ``kim init`` / ``kim interactions``):
  energy, forces and pressure tensor equal Python; ``mpirun -np 1`` and
  ``-np 2`` agree (an N-containing model); 1000 NVE steps of 432-atom bcc Nb
  conserve energy to 1e-4 eV/atom.

Tolerances: 1e-9 relative. The fitted Nb models (``examples/nb/``) have large
cancelling coefficients (|c| up to ~1e8 eV), so rounding alone moves their
results by more than that: the Python reference itself changes by ~1e-9 (E)
and ~1e-7 eV/Å (F) under a rigid translation of the structure. For them the
tolerance is 10× that change (:func:`rounding_noise`), measured on the same
structure; the printed lines (``pytest -s``) give the deviations and tolerances.
The fitted models are ``$COMPOT_TEST_NB_MODEL``, else ``examples/nb/model.params``
(and ``examples/nb/paper_e8l4_n8l4.params`` where an N term is needed), else a
quick fit made by the fixture.

Sign conventions: KIM's partialVirial is W = Σ_i r_i ⊗ ∂E/∂r_i = -Σ r⊗F;
ASE/KLIFF/compot stress σ = W/V (tensile positive); LAMMPS pressure tensor
P = -σ · 1.6021765e6 bar/(eV/Å³).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_masses, atomic_numbers

from compot.export import (DRIVER_NAME, check_kim_model_name, configurations_from_kliff, export_kim,
                           install_kim_driver, install_kim_model, remove_kim_item, write_kim_model_dir)
from compot.io import format_model, read_model
from compot.model import Model

from helpers import (EMBEDDED, EXPRESSIONS, check_against_reference, expression_case, expression_v2, in_box,
                     random_model, reference_cases, switch_census, switched_model)

pytestmark = pytest.mark.integration

if shutil.which("kim-api-collections-management") is None:
    pytest.skip("needs the KIM API (kim-api-collections-management)", allow_module_level=True)
kimpy = pytest.importorskip("kimpy")
from kimpy_runner import KimRunner  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LMP = "/usr/bin/lmp"
MPIRUN = "/usr/bin/mpirun"
NKTV2P = 1.6021765e6  # LAMMPS metal units: bar per eV/Å³
TOKEN = uuid.uuid4().hex[:8]
RTOL = 1e-9

# every term type, a nested sum (inside a product), nested products; 1 and 2 species
EN_ZBL = expression_case("E[G4L3] + N[E[G4L3]] + ZBL(1.6, 2.4)")                    # one species
A_2SP = expression_case("A[C2P2]")
NESTED = expression_case("(G2 + C2) * (E[G2L2] * N[E[C2L1]])")                      # nested products
MIXED = expression_case("G2 * (C3 + A[G2P2]) + N[E[G2L2]] + ZBL(1.2, 2.0)")         # 2 species, N, A, ZBL


# ------------------------------------------------------------------ helpers
def lammps_form_cell(rng, lengths, tilt=0.15):
    """Rows a=(ax,0,0), b=(bx,by,0), c=(cx,cy,cz): LAMMPS's triclinic form,
    tilts within ±tilt of the box lengths."""
    ax, by, cz = lengths
    return np.array([[ax, 0, 0],
                     [rng.uniform(-tilt, tilt) * ax, by, 0],
                     [rng.uniform(-tilt, tilt) * ax, rng.uniform(-tilt, tilt) * by, cz]])


def structure(kind, species, seed):
    """Perturbed bcc structures with LAMMPS-form cells.

    'triclinic': 16 atoms, sheared 2×2×2 cubic cell (6.6 Å < 2 r_c);
    'small': 2 atoms, sheared cubic cell (3.3 Å < r_c);
    'cluster': 9 atoms, non-periodic.
    """
    rng = np.random.default_rng(seed)
    if kind == "cluster":
        at = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((2, 2, 2))[:9]
        at.pbc = False
        at.cell = np.zeros((3, 3))
        at.positions += rng.uniform(-0.15, 0.15, at.positions.shape)
    else:
        reps = 2 if kind == "triclinic" else 1
        base = bulk("Nb", "bcc", a=3.3, cubic=True).repeat((reps, reps, reps))
        L = 3.3 * reps
        cell = lammps_form_cell(rng, L * rng.uniform(0.97, 1.03, 3))
        frac = base.get_scaled_positions() + rng.uniform(-0.035, 0.035, (len(base), 3)) / reps
        at = Atoms("Nb%d" % len(base), cell=cell, pbc=True)
        at.set_scaled_positions(frac % 1.0)
    if len(species) > 1:
        syms = [species[i] for i in rng.integers(0, len(species), len(at))]
        syms[0], syms[-1] = species[0], species[1]  # both species present
        at.set_chemical_symbols(syms)
    return at


def voigt(W):
    """3×3 → KIM order xx yy zz yz xz xy."""
    return np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])


def python_reference(model, atoms):
    p = model.evaluate(model.system([atoms]))
    return float(p.energy_m[0]), p.energies_n.copy(), p.forces_nc.copy(), voigt(p.virial_mcc[0])


def rounding_noise(model, atoms, n=3, seed=0):
    """Largest change of (E, F, W) of the Python reference under rigid
    translations of ``atoms`` (physically nothing changes): the floating-point
    floor of the model on this structure. A fitted model with large
    cancelling coefficients has a floor far above 1e-9; two correct
    implementations can agree no better than that."""
    rng = np.random.default_rng(seed)
    E0, _, F0, W0 = python_reference(model, atoms)
    dE = dF = dW = 0.0
    for _ in range(n):
        b = atoms.copy()
        b.translate(rng.uniform(-1.0, 1.0, 3))
        E, _, F, W = python_reference(model, b)
        dE, dF, dW = max(dE, abs(E - E0)), max(dF, np.max(np.abs(F - F0))), max(dW, np.max(np.abs(W - W0)))
    return dE, dF, dW


def rel_err(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def ridders(f, h=0.02, con=1.4, ntab=10, safe=2.0):
    """df/dt at t=0 by Ridders' extrapolation of central differences (Numerical
    Recipes ``dfridr``, as in KIM's utility_forces_numer_deriv); (value, error)."""
    a = np.zeros((ntab, ntab))
    hh = h
    a[0, 0] = (f(hh) - f(-hh)) / (2 * hh)
    err, ans = np.inf, a[0, 0]
    for i in range(1, ntab):
        hh /= con
        a[0, i] = (f(hh) - f(-hh)) / (2 * hh)
        fac = con * con
        for j in range(1, i + 1):
            a[j, i] = (a[j - 1, i] * fac - a[j - 1, i - 1]) / (fac - 1)
            fac *= con * con
            errt = max(abs(a[j, i] - a[j - 1, i]), abs(a[j, i] - a[j - 1, i - 1]))
            if errt <= err:
                err, ans = errt, a[j, i]
        if abs(a[i, i] - a[i - 1, i - 1]) >= safe * err:
            break
    return ans, err


# ----------------------------------------------------------------- fixtures
class KimSession:
    """Installs models under names unique to this session; removes them at the end."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.names: list[str] = []

    def name(self, label: str) -> str:
        n = len(self.names) + 1
        name = f"CompotPytest_{TOKEN}_{label}_{n}"
        self.names.append(name)
        return check_kim_model_name(name)

    def install(self, model, label: str) -> str:
        """Install a Model or a parameter file; returns the KIM name."""
        name = self.name(label)
        if isinstance(model, Model):
            path = self.workdir / f"{name}.src.params"
            path.write_text(format_model(model), encoding="utf-8")
        else:
            path = Path(model)
        export_kim(path, name, self.workdir / "models", install=True, reinstall_driver=False)
        return name

    def install_text(self, text: str, label: str) -> str:
        """Install a parameter-file text as it is (no checks): for broken files."""
        name = self.name(label)
        install_kim_model(write_kim_model_dir(text, name, self.workdir / "models"))
        return name

    def cleanup(self):
        for name in self.names:
            try:
                remove_kim_item(name)
            except Exception as exc:  # pragma: no cover - reported, never masks a test result
                print(f"could not remove KIM item {name}: {exc}", file=sys.stderr)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch working directory for the module (kim.log and kliff.log land here)."""
    d = tmp_path_factory.mktemp("kim")
    old = os.getcwd()
    os.chdir(d)
    yield d
    os.chdir(old)


@pytest.fixture(scope="module")
def kim(workdir):
    install_kim_driver(force=True)
    session = KimSession(workdir)
    yield session
    session.cleanup()


@pytest.fixture(scope="module")
def models(kim):
    """(expression, species) → (Model, KIM name) for EXPRESSIONS, installed."""
    out = {}
    for i, (expr, species) in enumerate(EXPRESSIONS):
        structs = [structure("triclinic", species, 100 + i), structure("small", species, 200 + i)]
        m = random_model(expr, species, seed=i, structures=structs)
        out[(expr, species)] = (m, kim.install(m, f"e{i}"))
    return out


@pytest.fixture(scope="module")
def quick_fit_path(data_dir, tmp_path_factory):
    """A small fitted Nb model with an N term (~40 s): the fallback when the
    repository ships no fitted model."""
    out = tmp_path_factory.mktemp("quickfit")
    cmd = [sys.executable, "-m", "compot.cli", "fit", "--expression", "E[G4L2] + N[E[G4L2]] + ZBL(1.6, 2.4)",
           "--data", str(data_dir / "nb-mvl"), "--max-evaluations", "4", "--hot-prior-steps", "0", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COMPOT_DATA": str(data_dir)},
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "model.params"


def _fitted_model(kim, request, label, need_n=False):
    """(Model, KIM name) of a realistic fitted Nb model, installed:
    $COMPOT_TEST_NB_MODEL, else the shipped examples/nb/model.params, else (for
    an N-containing model) examples/nb/paper_e8l4_n8l4.params, else a quick fit."""
    cands = [os.environ.get("COMPOT_TEST_NB_MODEL"), REPO / "examples" / "nb" / "model.params"]
    if need_n:
        cands.append(REPO / "examples" / "nb" / "paper_e8l4_n8l4.params")
    for c in cands:
        if c and Path(c).is_file():
            m = read_model(c)
            if not need_n or m.layout.has_neighbour_term:
                return m, kim.install(c, label)
    path = request.getfixturevalue("quick_fit_path")
    return read_model(path), kim.install(path, label)


@pytest.fixture(scope="module")
def nb_model(kim, request):
    """The realistic fitted Nb model (MD, LAMMPS, KLIFF refit)."""
    return _fitted_model(kim, request, "nbfit")


@pytest.fixture(scope="module")
def nb_n_model(kim, request, nb_model):
    """A realistic fitted Nb model with an N[...] term (2-hop: MPI ghosts)."""
    if nb_model[0].layout.has_neighbour_term:
        return nb_model
    return _fitted_model(kim, request, "nbfitn", need_n=True)


def _kim_log_tail(start: int, path="kim.log") -> str:
    with open(path, errors="replace") as fh:
        fh.seek(start)
        return fh.read()


def _size(path="kim.log") -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


# ------------------------------------------------------------------ export
def test_export_cli_installs(kim, tmp_path):
    src = REPO / "tests" / "c" / "data" / "nb_e_n_zbl.params"
    name = kim.name("cli")
    cmd = [sys.executable, "-m", "compot.cli", "export", "kim", str(src), "--name", name, "--out", str(tmp_path),
           "--install", "--keep-driver"]
    for _ in range(2):  # the second run re-installs
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert f"installed KIM portable model {name}" in r.stdout
        assert "installing KIM portable model" in r.stderr and "kim init" in r.stderr
    k = KimRunner(name)
    at = structure("triclinic", ("Nb",), 5)
    assert abs(k.energy_of(at) - python_reference(read_model(src), at)[0]) < 1e-9 * len(at)


# ------------------------------------------------------------------- kimpy
@pytest.mark.parametrize("expr,species", EXPRESSIONS, ids=[f"{e}|{len(s)}sp" for e, s in EXPRESSIONS])
def test_kimpy_matches_python(models, expr, species):
    m, name = models[(expr, species)]
    worst = _kimpy_against_python(m, KimRunner(name), species)
    print(f"{expr} [{len(species)} sp]: relative deviations E {worst[0]:.1e}, E_i {worst[1]:.1e}, "
          f"F {worst[2]:.1e}, W {worst[3]:.1e}")


def _kimpy_against_python(m, k, species) -> np.ndarray:
    """Largest relative deviations (E, E_i, F, W) of the KIM model ``k`` from the
    Python model ``m`` on a triclinic cell, a small cell and a cluster; each at most
    RTOL."""
    assert k.model.get_influence_distance() == pytest.approx(m.influence_distance, abs=1e-14)
    worst = np.zeros(4)
    for kind, seed in (("triclinic", 1), ("small", 2), ("cluster", 3)):
        at = structure(kind, species, seed)
        E, pe, F, V = k.compute(at)
        Er, per, Fr, Vr = python_reference(m, at)
        scale = max(1.0, abs(Er))
        errs = [abs(E - Er) / scale, np.max(np.abs(pe - per)) / scale, rel_err(F, Fr), rel_err(V, Vr)]
        worst = np.maximum(worst, errs)
        assert max(errs) <= RTOL, (kind, dict(zip(("E", "E_i", "F", "W"), errs)))
    return worst


# ------------------------------------------------------ cross-host reference suite
@pytest.fixture(scope="module")
def reference_models(kim):
    """The reference files (tests/reference/*.yaml) installed as KIM portable
    models: [(ReferenceCase, KIM name)]."""
    return [(case, kim.install_text(case.text, f"ref{i}")) for i, case in enumerate(reference_cases())]


def test_kimpy_replays_reference(reference_models):
    """kimpy reproduces the energy, site energies, forces and virial of every
    reference file to 1e-9 relative (10 x the reference's rounding floor where
    the grade makes that larger)."""
    assert len(reference_models) >= 8
    for case, name in reference_models:
        k = KimRunner(name)
        for s in case.structures:
            E, pe, F, V = k.compute(s["atoms"])
            dev = check_against_reference(s, {"energy": E, "energies": pe, "forces": F, "virial": V}, RTOL,
                                          f"kimpy, {case.name}")
            print(f"kimpy {case.name}/{s['name']}: " + " ".join(f"{q} {v:.1e}" for q, v in dev.items()))


SWITCHED = [(expression_v2(e), species) for e, species in (EN_ZBL, MIXED)]


@pytest.fixture(scope="module")
def switched_models(kim):
    """Format v2 models whose atom switch acts on their structures (pairs in the
    inner window, atoms in the grade's transition and switched off;
    helpers.switched_model), installed: [(Model, KIM name, species, structures)]."""
    out = []
    for i, (expr, species) in enumerate(SWITCHED):
        structs = [structure(k, species, 300 + 10 * i + j) for j, k in enumerate(("triclinic", "small", "cluster"))]
        m = switched_model(expr, species, structs, seed=i)
        census = np.sum([switch_census(m, at) for at in structs], axis=0)
        assert np.all(census > 0), f"{expr}: close pairs, grade transition, grade off: {census}"
        out.append((m, kim.install(m, f"sw{i}"), species, structs))
    return out


def test_kimpy_matches_python_with_switched_atoms(switched_models):
    """kimpy vs Python where the format v2 atom switch acts: 1e-9 relative, or 10x
    the reference's rounding noise if larger (the grade amplifies the features'
    rounding)."""
    for m, name, species, structs in switched_models:
        k = KimRunner(name)
        for at in structs:
            E, pe, F, V = k.compute(at)
            Er, per, Fr, Vr = python_reference(m, at)
            dE, dF, dW = rounding_noise(m, at) if at.pbc.any() else (0.0, 0.0, 0.0)
            scale = max(1.0, abs(Er))
            errs = {"E": abs(E - Er) / scale, "E_i": np.max(np.abs(pe - per)) / scale,
                    "F": rel_err(F, Fr), "W": rel_err(V, Vr)}
            tol = {"E": max(RTOL, 10 * dE / scale), "E_i": max(RTOL, 10 * dE / scale),
                   "F": max(RTOL, 10 * dF), "W": max(RTOL, 10 * dW)}
            assert all(errs[q] <= tol[q] for q in errs), (m.expression, len(at), errs, tol)
            print(f"{m.expression} [{len(species)} sp, {len(at)} atoms, switch census "
                  f"{switch_census(m, at)}]: relative deviations "
                  + " ".join(f"{q} {v:.1e}" for q, v in errs.items()))


def test_kim_parameters_of_the_switch_refresh(switched_models):
    """E_ref, mu, U and gamma_hi changed through kimpy + Refresh give the Python
    result with the same change; Refresh refuses a gamma_hi below gamma_lo
    (logged in kim.log)."""
    m, name, species, structs = switched_models[0]
    k = KimRunner(name)
    idx = {k.model.get_parameter_metadata(i)[2]: i for i in range(k.model.get_number_of_parameters())}
    assert {"w_e_ref", "g_mu", "g_U", "g_gamma_lo", "g_gamma_hi"} <= set(idx)
    m2 = m.copy()
    changes = {"w_e_ref": (0, m.params["w.e_ref"][0] + 0.5), "g_mu": (3, m.params["g.mu"][0, 3] + 0.01),
               "g_U": (4, m.params["g.U"][0, 4] * 1.1), "g_gamma_hi": (0, m.params["g.gamma_hi"][0] * 1.3)}
    for pname, (flat, value) in changes.items():
        block = m2.params[pname.replace("_", ".", 1)]
        block.ravel()[flat] = value
        k.model.set_parameter(idx[pname], flat, float(value))
    k.model.clear_then_refresh()
    for at in structs:
        E, pe, F, _ = k.compute(at)
        Er, per, Fr, _ = python_reference(m2, at)
        assert abs(E - Er) <= RTOL * max(1, abs(Er)) and rel_err(F, Fr) <= RTOL, (len(at), E, Er)
    start = _size()
    k.model.set_parameter(idx["g_gamma_hi"], 0, float(m.params["g.gamma_lo"][0] * 0.5))
    try:
        k.model.clear_then_refresh()      # kimpy 2.1 does not raise; the driver logs and returns 1
    except RuntimeError:
        pass
    log = _kim_log_tail(start)
    assert "g.gamma_hi.Nb" in log and "expected gamma_hi > gamma_lo" in log, log[-2000:]


def test_ase_kim_calculator_matches_compot(models):
    from ase.calculators.kim import KIM

    from compot.calculator import CompotCalculator
    for key in [EN_ZBL, MIXED]:
        m, name = models[key]
        for kind in ("triclinic", "small"):
            at = structure(kind, key[1], 7)
            a, b = at.copy(), at.copy()
            a.calc, b.calc = KIM(name), CompotCalculator(m)
            ea, eb = a.get_potential_energy(), b.get_potential_energy()
            assert abs(ea - eb) <= RTOL * max(1, abs(eb))
            assert rel_err(a.get_forces(), b.get_forces()) <= RTOL
            assert rel_err(a.get_stress(), b.get_stress()) <= RTOL


def test_forces_equal_numerical_derivative(models):
    """Ridders derivative of the KIM energy vs KIM forces, like KIM's
    utility_forces_numer_deriv, on 24 random configurations."""
    worst = 0.0
    n_conf = 0
    for key in (EN_ZBL, A_2SP, NESTED, MIXED):
        m, name = models[key]
        k = KimRunner(name)
        for seed in range(6):
            at = structure("small" if seed % 2 == 0 else "cluster", key[1], 1000 + seed)
            if seed % 2 == 0:
                at = at.repeat((1, 1, 2)) if seed == 4 else at
            F = k.compute(at)[2]
            scale = max(1.0, np.max(np.abs(F)))
            for i in range(len(at)):
                for c in range(3):
                    def e_of(t, i=i, c=c):
                        p = at.copy()
                        p.positions[i, c] += t
                        return k.energy_of(p)
                    # first step 1e-3 Å: the features' saturating continuation is C² only at
                    # |u| = 1, and extrapolating central differences across such a join fails
                    d, err = ridders(e_of, h=1e-3)
                    dev = abs(F[i, c] + d) / scale
                    worst = max(worst, dev)
                    assert dev <= 1e-6, (key, seed, i, c, F[i, c], -d, err)
            n_conf += 1
    assert n_conf == 24
    print(f"max |F + dE/dx| / max|F| over {n_conf} configurations: {worst:.1e}")


def test_kim_parameters_refresh_and_write(models, kim, workdir):
    """Parameters changed through kimpy + Refresh give the Python result; the
    written parameterised model re-installs."""
    m, name = models[MIXED]
    k = KimRunner(name)
    idx = {k.model.get_parameter_metadata(i)[2]: i for i in range(k.model.get_number_of_parameters())}
    assert set(idx) == {b.replace(".", "_") for b in m.params}
    m2 = m.copy()
    c = m2.params["n2.c"].copy().ravel()
    c[3] += 0.125
    m2.set_block("n2.c", c)
    k.model.set_parameter(idx["n2_c"], 3, float(c[3]))
    k.model.clear_then_refresh()
    at = structure("triclinic", MIXED[1], 9)
    E, _, F, _ = k.compute(at)
    Er, _, Fr, _ = python_reference(m2, at)
    assert abs(E - Er) <= RTOL * max(1, abs(Er)) and rel_err(F, Fr) <= RTOL


# --------------------------------------------------------- bad parameter files
GOOD = (REPO / "tests" / "c" / "data" / "nb_e_n_zbl.params").read_text()


def _bad(text, token, words):
    """(text, 1-based line holding ``token`` or None, words the message must contain)."""
    line = next((i for i, ln in enumerate(text.splitlines(), 1) if token and token in ln), None)
    return text, line, words


BAD_FILES = {
    "truncated": _bad("\n".join(GOOD.splitlines()[:20]) + "\n", None, ["file ends at line 20", "expected 'n1.c"]),
    "unknownkey": _bad(GOOD.replace("n1.gamma.2 -0.75", "n1.delta.2 -0.75"), "n1.delta.2",
                       ["expected parameter 'n1.gamma.2'", "n1.delta.2"]),
    "wrongcount": _bad(GOOD.replace("parameters 19", "parameters 18"), "parameters 18",
                       ["parameters: expected 19", "found 18"]),
    "nan": _bad(GOOD.replace("n1.c.Nb.Nb.1.2 -0.125", "n1.c.Nb.Nb.1.2 nan"), "n1.c.Nb.Nb.1.2 nan",
                ["n1.c.Nb.Nb.1.2", "finite"]),
    "species": _bad(GOOD.replace("species Nb", "species Qq"), "species Qq", ["expected", "Qq"]),
    "version": _bad(GOOD.replace("compot-params 1", "compot-params 5"), "compot-params 5",
                    ["version 5", "versions 1 to 4"]),
}


@pytest.fixture(scope="module")
def bad_models(kim):
    return {label: kim.install_text(text, f"bad{label}") for label, (text, _, _) in BAD_FILES.items()}


@pytest.mark.parametrize("label", list(BAD_FILES))
def test_bad_parameter_file_fails_cleanly_in_kimpy(bad_models, label):
    name = bad_models[label]
    _, line, words = BAD_FILES[label]
    start = _size()
    with pytest.raises(RuntimeError):
        kimpy.model.create(kimpy.numbering.zeroBased, kimpy.length_unit.A, kimpy.energy_unit.eV,
                           kimpy.charge_unit.e, kimpy.temperature_unit.K, kimpy.time_unit.ps, name)
    log = _kim_log_tail(start)
    where = f"{name}.params:{line}:" if line else f"{name}.params"
    msg = [ln for ln in log.splitlines() if "compot_kim.c" in ln and where in ln]
    assert msg, log[-2000:]
    assert all(w in msg[0] for w in words), msg[0]


def test_bad_parameter_files_fail_cleanly_in_lammps(bad_models, tmp_path):
    for label, name in bad_models.items():
        d = tmp_path / label
        d.mkdir()
        (d / "in.lmp").write_text(f"kim init {name} metal\n")
        r = subprocess.run([LMP, "-in", "in.lmp", "-log", "none"], cwd=d, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 1, (label, r.returncode, r.stdout[-1000:], r.stderr[-1000:])
        assert "ERROR" in r.stdout + r.stderr and f"kim init {name}" in r.stdout + r.stderr
        log = (d / "kim.log").read_text(errors="replace")
        _, line, words = BAD_FILES[label]
        where = f"{name}.params:{line}:" if line else f"{name}.params"
        msg = [ln for ln in log.splitlines() if "compot_kim.c" in ln and where in ln]
        assert msg and all(w in msg[0] for w in words), (label, log[-2000:])


# ------------------------------------------------------- results that are not finite
#: a valid file whose energy is not finite anywhere (it gave -nan and exit status 0)
NONFINITE = GOOD.replace("n1.gamma.1 0.5", "n1.gamma.1 1e6")


@pytest.fixture(scope="module")
def nonfinite_model(kim):
    assert NONFINITE != GOOD
    return kim.install_text(NONFINITE, "nonfinite")


def test_nonfinite_result_is_a_kim_error(nonfinite_model):
    """Compute fails (LOG_ERROR and an error return) instead of returning NaN."""
    k = KimRunner(nonfinite_model)
    start = _size()
    with pytest.raises(RuntimeError):
        k.compute(structure("triclinic", ("Nb",), 7))
    log = _kim_log_tail(start)
    msg = [ln for ln in log.splitlines() if "compot_kim.c" in ln and "non-finite" in ln]
    assert msg, log[-2000:]
    assert "compot: non-finite energy at particle" in msg[0] and "outside its valid range" in msg[0], msg[0]


@pytest.mark.skipif(not os.path.exists(LMP), reason="needs Debian's LAMMPS /usr/bin/lmp")
def test_nonfinite_result_stops_lammps(nonfinite_model, tmp_path):
    """LAMMPS stops with an error (exit status 1), never prints a NaN energy."""
    at = structure("triclinic", ("Nb",), 7)
    at.wrap()
    write_lammps_data(at, ["Nb"], tmp_path / "data.lmp")
    (tmp_path / "in.lmp").write_text(f"kim init {nonfinite_model} metal\nboundary p p p\nread_data data.lmp\n"
                                     f"kim interactions Nb\nmass 1 92.90637\nthermo_style custom step pe\nrun 0\n")
    r = subprocess.run([LMP, "-in", "in.lmp", "-log", "none"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1, (r.returncode, out[-2000:])
    assert "ERROR" in out and not re.search(r"\bnan\b", out, re.IGNORECASE), out[-2000:]
    log = (tmp_path / "kim.log").read_text(errors="replace")
    assert any("compot_kim.c" in ln and "non-finite" in ln for ln in log.splitlines()), log[-2000:]


# ----------------------------------------------------------------------- KLIFF
def _kliff_configs(atoms_list):
    from kliff.dataset import Configuration
    out = []
    for i, at in enumerate(atoms_list):
        out.append(Configuration(cell=np.array(at.cell[:]), species=at.get_chemical_symbols(),
                                 coords=at.positions.copy(), PBC=[bool(p) for p in at.pbc], energy=0.0,
                                 forces=np.zeros((len(at), 3)), stress=[0.0] * 6, identifier=f"cfg{i}"))
    return out


def test_kliff_lists_and_updates_parameters(models, kim, workdir):
    pytest.importorskip("kliff")
    from kliff.legacy.calculators import Calculator
    from kliff.models import KIMModel

    expr, species = EN_ZBL
    m, name = models[(expr, species)]
    km = KIMModel(name)
    params = km.get_model_params()
    assert list(params) == [b.replace(".", "_") for b in m.params]
    for b, v in m.params.items():
        np.testing.assert_array_equal(np.asarray(params[b.replace(".", "_")]).ravel(), v.ravel())
    text = km.echo_model_params(filename=None)
    assert all(f"name: {b.replace('.', '_')}" in text for b in m.params)

    atoms = [structure("triclinic", species, 21), structure("small", species, 22)]
    rng = np.random.default_rng(5)
    new_c = m.params["n1.c"].ravel() + rng.normal(0, 0.05, m.params["n1.c"].size)
    new_shift = m.params["n0.shift"].ravel() + 0.3
    km.set_opt_params(n1_c=[[float(v)] for v in new_c], n0_shift=[[float(v)] for v in new_shift])
    m2 = m.copy()
    m2.set_block("n1.c", new_c)
    m2.set_block("n0.shift", new_shift)

    calc = Calculator(km)
    cas = calc.create(_kliff_configs(atoms), use_energy=True, use_forces=True, use_stress=True)

    def check(ref_model):
        for ca, at in zip(cas, atoms):
            res = calc.compute(ca)
            Er, _, Fr, Vr = python_reference(ref_model, at)
            assert abs(res["energy"] - Er) <= RTOL * max(1, abs(Er))
            assert rel_err(res["forces"], Fr) <= RTOL
            assert rel_err(res["stress"], Vr / at.get_volume()) <= RTOL  # KLIFF: -Σ r⊗F / V = σ

    check(m2)
    x = calc.get_opt_params()
    assert len(x) == new_c.size + new_shift.size
    x2 = x + rng.normal(0, 0.02, x.size)
    calc.update_model_params(x2)
    m3 = m.copy()
    m3.set_block("n1.c", x2[:new_c.size])
    m3.set_block("n0.shift", x2[new_c.size:])
    check(m3)

    # write_kim_model: a portable model for the same driver, which re-installs
    written = kim.name("written")
    path = workdir / "kliff_out" / written
    km.write_kim_model(path)
    assert (path / "CMakeLists.txt").is_file() and DRIVER_NAME in (path / "CMakeLists.txt").read_text()
    back = read_model(path / f"{written}.params")
    np.testing.assert_array_equal(back.params["n1.c"].ravel(), x2[:new_c.size])
    install_kim_model(path)
    k = KimRunner(written)
    for at in atoms:
        Er = python_reference(m3, at)[0]
        assert abs(k.energy_of(at) - Er) <= RTOL * max(1, abs(Er))


def test_configurations_from_kliff(data_dir):
    pytest.importorskip("kliff")
    from kliff.dataset import Dataset

    from compot.data import read_dataset
    from compot.errors import DatasetError
    path = data_dir / "nb-mvl" / "Nb_Surface.extxyz"
    ds = Dataset.from_ase(path=str(path))
    ours = configurations_from_kliff(ds)
    ref = read_dataset([path])
    assert len(ours) == len(ref) == len(ds)
    for a, b in zip(ours, ref):
        assert a.symbols == b.symbols
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell, b.cell)
        assert a.energy == b.energy
        np.testing.assert_array_equal(a.forces, b.forces)
        if b.stress is not None:
            np.testing.assert_allclose(a.stress, b.stress, rtol=1e-12, atol=1e-15)
    m = Model("G2", ("Nb",), 4.5)
    assert m.system(ours).n_atoms == sum(c.n_atoms for c in ours)
    no_energy = _kliff_configs([structure("small", ("Nb",), 1)])
    no_energy[0].energy = None
    with pytest.raises(DatasetError, match="has no energy"):
        configurations_from_kliff(no_energy)


def test_kliff_refit_example_recovers_fitted_values(nb_model, data_dir, tmp_path):
    pytest.importorskip("kliff")
    _, name = nb_model
    cmd = [sys.executable, str(REPO / "examples" / "kliff_refit.py"), "--model", name,
           "--data", str(data_dir / "nb-mvl" / "Nb_AIMD.extxyz"), "--n-configs", "2", "--targets", "model",
           "--perturb", "1e-3", "--seed", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # every direction the two configurations determine comes back (all of them for a
    # well-conditioned model; a sloppy one has directions no data determine)
    m = re.search(r"along the well-determined directions: ([0-9.eE+-]+)", r.stdout)
    assert m and float(m.group(1)) < 1e-6, r.stdout[-3000:]
    cond = float(re.search(r"condition number ([0-9.eE+-]+|inf)", r.stdout).group(1))
    if cond < 1e8:
        m = re.search(r"max relative deviation from the fitted values: ([0-9.eE+-]+)", r.stdout)
        assert float(m.group(1)) < 1e-6, r.stdout[-3000:]
    # against the DFT data: a loss no larger than the fitted model's on the subset
    cmd[cmd.index("model")] = "dft"
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"refined loss / fitted loss on these configurations: ([0-9.eE+-]+)", r.stdout)
    assert m and float(m.group(1)) <= 1 + 1e-9, r.stdout[-3000:]


# ---------------------------------------------------------------------- LAMMPS
def write_lammps_data(atoms, species, path):
    """LAMMPS data file (atom_style atomic) of a structure whose cell is in
    LAMMPS form (lower-triangular rows); types are 1-based species indices."""
    c = atoms.cell[:]
    assert abs(c[0, 1]) + abs(c[0, 2]) + abs(c[1, 2]) == 0, "cell not in LAMMPS form"
    lines = ["compot test structure", "", f"{len(atoms)} atoms", f"{len(species)} atom types", "",
             f"0 {c[0, 0]:.17g} xlo xhi", f"0 {c[1, 1]:.17g} ylo yhi", f"0 {c[2, 2]:.17g} zlo zhi",
             f"{c[1, 0]:.17g} {c[2, 0]:.17g} {c[2, 1]:.17g} xy xz yz", "", "Atoms # atomic", ""]
    for i, (s, x) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions), start=1):
        lines.append(f"{i} {species.index(s) + 1} {x[0]:.17g} {x[1]:.17g} {x[2]:.17g}")
    Path(path).write_text("\n".join(lines) + "\n")


def run_lammps(name, species, workdir, body, np_=1, timeout=600):
    masses = "\n".join(f"mass {i + 1} {atomic_masses[atomic_numbers[s]]}" for i, s in enumerate(species))
    deck = f"kim init {name} metal\nboundary p p p\n{body['setup']}\nkim interactions {' '.join(species)}\n" \
           f"{masses}\n{body['run']}\n"
    (workdir / "in.lmp").write_text(deck)
    cmd = [LMP, "-in", "in.lmp", "-log", "log.lammps", "-screen", "none"]
    if np_ > 1:
        cmd = [MPIRUN, "--allow-run-as-root", "--oversubscribe", "-np", str(np_)] + cmd
    r = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    log = (workdir / "log.lammps").read_text(errors="replace") if (workdir / "log.lammps").exists() else ""
    assert r.returncode == 0, f"lmp failed ({r.returncode}):\n{log[-3000:]}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert re.search(rf"Loop time of .* on {np_} procs", log), log[-2000:]
    return log


def lammps_single_point(name, species, atoms, workdir, np_=1):
    """Energy [eV], forces [eV/Å] (by atom id) and pressure tensor [bar]
    (xx yy zz yz xz xy) from Debian's lmp."""
    return lammps_single_points(name, species, [atoms], workdir, np_)[0]


def lammps_single_points(name, species, atoms_list, workdir, np_=1):
    """[(E, F, P)] as :func:`lammps_single_point` for each structure of
    ``atoms_list``, in one run of lmp (``clear`` and ``kim init`` again between
    structures: one process start instead of one per structure)."""
    workdir.mkdir(parents=True, exist_ok=True)
    masses = "\n".join(f"mass {i + 1} {atomic_masses[atomic_numbers[s]]}" for i, s in enumerate(species))
    runs = []
    for k, atoms in enumerate(atoms_list):
        at = atoms.copy()
        at.wrap()
        write_lammps_data(at, list(species), workdir / f"data{k}.lmp")
        again = (f"clear\nkim init {name} metal\nboundary p p p\nread_data data{k}.lmp\n"
                 f"kim interactions {' '.join(species)}\n{masses}\n") if k else ""
        runs.append(again + "thermo_style custom step pe pxx pyy pzz pyz pxz pxy\nrun 0\n"
                    f'print "RESULT {k} $(pe:%.17g) $(pxx:%.17g) $(pyy:%.17g) $(pzz:%.17g) '
                    '$(pyz:%.17g) $(pxz:%.17g) $(pxy:%.17g)"\n'
                    f"write_dump all custom forces{k}.dump id fx fy fz modify sort id format float %.17g\n")
    log = run_lammps(name, species, workdir, {"setup": "read_data data0.lmp", "run": "".join(runs)}, np_)
    out = []
    for k in range(len(atoms_list)):
        vals = [ln for ln in log.splitlines() if ln.startswith(f"RESULT {k} ")][-1].split()[2:]
        F = np.loadtxt(workdir / f"forces{k}.dump", skiprows=9, ndmin=2)[:, 1:]
        out.append((float(vals[0]), F, np.array([float(v) for v in vals[1:]])))
    return out


def lammps_reference(model, atoms):
    """Python (E, F, P [bar]) and the tolerances (E, F, P): 1e-9 relative, or 10×
    the model's rounding noise on this structure when that is larger."""
    E, _, F, V = python_reference(model, atoms)
    P = -V / atoms.get_volume() * NKTV2P
    dE, dF, dW = rounding_noise(model, atoms)
    tol = (max(RTOL * max(1.0, abs(E)), 10 * dE), max(RTOL * max(1.0, np.max(np.abs(F))), 10 * dF),
           max(RTOL * max(1.0, np.max(np.abs(P))), 10 * dW / atoms.get_volume() * NKTV2P))
    return E, F, P, tol


def check_lammps(what, got, ref):
    """Absolute deviations of (E, F, P) within the tolerances of lammps_reference."""
    (E, F, P), (Er, Fr, Pr, tol) = got, ref
    dev = (abs(E - Er), float(np.max(np.abs(F - Fr))), float(np.max(np.abs(P - Pr))))
    print(f"{what}: |dE| {dev[0]:.1e} eV (tol {tol[0]:.0e}), max |dF| {dev[1]:.1e} eV/Å (tol {tol[1]:.0e}), "
          f"max |dP| {dev[2]:.1e} bar (tol {tol[2]:.0e}); relative E {dev[0] / abs(Er):.1e}, "
          f"F {rel_err(F, Fr):.1e}, P {rel_err(P, Pr):.1e}")
    assert all(d <= t for d, t in zip(dev, tol)), (what, dev, tol)


needs_lmp = pytest.mark.skipif(not os.path.exists(LMP), reason="needs Debian's LAMMPS /usr/bin/lmp")


@needs_lmp
def test_lammps_matches_python(models, nb_model, nb_n_model, switched_models, tmp_path):
    cases = [(nb_model[0], nb_model[1], ("Nb",)),
             (nb_n_model[0], nb_n_model[1], ("Nb",)),
             (*models[MIXED], MIXED[1]),     # 2 species, N + A in a product + ZBL
             (*models[NESTED], NESTED[1])]   # nested products
    cases += [(m, name, species) for m, name, species, _ in switched_models]   # format v2 atom switch
    cases = [c for i, c in enumerate(cases) if c[1] not in [d[1] for d in cases[:i]]]
    for n, (model, name, species) in enumerate(cases):
        for kind in ("triclinic", "small"):
            at = structure(kind, species, 40 + n)
            got = lammps_single_point(name, species, at, tmp_path / f"{n}{kind}")
            check_lammps(f"LAMMPS vs Python, {model.expression} [{len(species)} sp], {kind}", got,
                         lammps_reference(model, at))


@needs_lmp
def test_lammps_kim_replays_reference(reference_models, tmp_path):
    """Debian's LAMMPS through ``kim init`` reproduces the energy, forces and
    virial (from the pressure tensor) of every reference file (clusters in a
    box wide enough that they do not see their images)."""
    for case, name in reference_models:
        boxed = [in_box(s["atoms"], 2 * case.cutoff + 1.0) for s in case.structures]
        results = lammps_single_points(name, case.species, boxed, tmp_path / case.name)
        for s, at, (E, F, P) in zip(case.structures, boxed, results):
            W = -P * at.get_volume() / NKTV2P
            dev = check_against_reference(s, {"energy": E, "forces": F, "virial": W}, RTOL,
                                          f"LAMMPS kim, {case.name}")
            print(f"LAMMPS kim {case.name}/{s['name']}: " + " ".join(f"{q} {v:.1e}" for q, v in dev.items()))


# ------------------------------------------------------- species embedding
def quaternary_alloy(seed, reps=3):
    """An equiatomic random bcc Nb-Mo-Ta-W (2 reps³ atoms, 54 by default;
    a = 3.2 Å) in a sheared LAMMPS-form cell, atoms rattled by up to 0.1 Å."""
    rng = np.random.default_rng(seed)
    base = bulk("Nb", "bcc", a=3.2, cubic=True).repeat((reps, reps, reps))
    frac = base.get_scaled_positions()
    at = Atoms(cell=lammps_form_cell(rng, 3.2 * reps * rng.uniform(0.98, 1.02, 3), tilt=0.08), pbc=True)
    for f in frac:
        at.append("Nb")
    at.set_scaled_positions(frac)
    at.positions += rng.uniform(-0.1, 0.1, at.positions.shape)
    at.wrap()
    syms = np.array(["Mo", "Nb", "Ta", "W"] * (len(at) // 4 + 1))[:len(at)]
    at.set_chemical_symbols(list(rng.permutation(syms)))
    return at


@pytest.fixture(scope="module")
def embedded_models(kim):
    """The registry's species-embedding cases (tests/reference/expressions.txt,
    a fourth field; helpers.EMBEDDED) as random models, installed:
    {(expression, species, rank): (Model, KIM name)}."""
    out = {}
    for i, (expr, species, rank) in enumerate(EMBEDDED):
        structs = [structure("triclinic", species, 500 + i), structure("small", species, 600 + i)]
        m = random_model(expr, species, seed=50 + i, structures=structs, rank=rank)
        out[(expr, species, rank)] = (m, kim.install(m, f"emb{i}"))
    return out


@pytest.mark.parametrize("expr,species,rank", EMBEDDED, ids=[f"{e}|{len(s)}sp|r{r}" for e, s, r in EMBEDDED])
def test_kimpy_matches_python_embedded(embedded_models, expr, species, rank):
    """kimpy vs Python for the registry's species-embedding cases (the same
    checks as test_kimpy_matches_python): 1e-9 relative."""
    m, name = embedded_models[(expr, species, rank)]
    assert m.rank == rank
    k = KimRunner(name)
    assert "chemistry_rank" in k.params()
    worst = _kimpy_against_python(m, k, species)
    print(f"{expr} [{len(species)} sp, rank {rank}]: relative deviations E {worst[0]:.1e}, "
          f"E_i {worst[1]:.1e}, F {worst[2]:.1e}, W {worst[3]:.1e}")


@pytest.fixture(scope="module")
def quaternary_models(kim):
    """Issue 14 (KIM on a quaternary random alloy): the registry's embedded
    expression in format v2 at each of its ranks, with the atom switch acting
    on a 54-atom random NbMoTaW (helpers.switched_model: pairs in the inner
    window, atoms in the grade's transition and switched off), installed:
    [(Model, KIM name, alloy)]."""
    out = []
    for i, (expr, species, rank) in enumerate(EMBEDDED):
        if len(species) < 4:
            continue
        alloy = quaternary_alloy(700 + i)
        m = switched_model(expression_v2(expr), species, [alloy], seed=70 + i, window=(2.3, 2.75), rank=rank)
        out.append((m, kim.install(m, f"quat{i}"), alloy))
    assert {m.rank for m, _, _ in out} >= {1, 2}
    return out


def _calculator_reference(model, atoms):
    """(E [eV], F [eV/Å], virial W = -σ V [eV] as xx yy zz yz xz xy) from
    compot.calculator.CompotCalculator (ASE stress σ = W/V)."""
    from compot.calculator import CompotCalculator
    at = atoms.copy()
    at.calc = CompotCalculator(model)
    return at.get_potential_energy(), at.get_forces(), at.get_stress() * at.get_volume()


def test_kimpy_quaternary_embedded_alloy_matches_calculator(quaternary_models):
    """The installed driver through kimpy on a 54-atom random NbMoTaW, species
    embedding of rank 1 and 2 with the atom switch acting: energy, forces and
    virial equal CompotCalculator's to 1e-9 relative."""
    for m, name, alloy in quaternary_models:
        census = switch_census(m, alloy)
        assert min(census) > 0, f"rank {m.rank}: close pairs, grade transition, grade off: {census}"
        E, _, F, V = KimRunner(name).compute(alloy)
        Er, Fr, Vr = _calculator_reference(m, alloy)
        errs = {"E": abs(E - Er) / max(1.0, abs(Er)), "F": rel_err(F, Fr), "W": rel_err(V, Vr)}
        print(f"kimpy, NbMoTaW 54 atoms, rank {m.rank} (switch census {census}): relative deviations "
              + " ".join(f"{q} {v:.1e}" for q, v in errs.items()))
        assert max(errs.values()) <= RTOL, (m.rank, errs)


@needs_lmp
def test_lammps_kim_quaternary_embedded_alloy_matches_calculator(quaternary_models, tmp_path):
    """The same through Debian's LAMMPS (``kim init``): energy, forces and the
    virial from the pressure tensor equal CompotCalculator's to 1e-9 relative."""
    for m, name, alloy in quaternary_models:
        E, F, P = lammps_single_point(name, m.species, alloy, tmp_path / f"r{m.rank}")
        W = -P * alloy.get_volume() / NKTV2P
        Er, Fr, Vr = _calculator_reference(m, alloy)
        errs = {"E": abs(E - Er) / max(1.0, abs(Er)), "F": rel_err(F, Fr), "W": rel_err(W, Vr)}
        print(f"LAMMPS kim, NbMoTaW 54 atoms, rank {m.rank}: relative deviations "
              + " ".join(f"{q} {v:.1e}" for q, v in errs.items()))
        assert max(errs.values()) <= RTOL, (m.rank, errs)


@needs_lmp
@pytest.mark.skipif(not os.path.exists(MPIRUN), reason="needs Debian's OpenMPI mpirun")
def test_lammps_mpi_one_and_two_ranks_agree(nb_n_model, tmp_path):
    model, name = nb_n_model
    assert model.layout.has_neighbour_term
    at = bulk("Nb", "bcc", a=3.30, cubic=True).repeat((6, 6, 6))
    at.rattle(0.08, seed=3)
    res = [lammps_single_point(name, ("Nb",), at, tmp_path / f"np{p}", np_=p) for p in (1, 2)]
    ref = lammps_reference(model, at)
    check_lammps("np 1 vs Python (432 atoms)", res[0], ref)
    check_lammps("np 2 vs Python (432 atoms)", res[1], ref)
    # np 1 vs np 2: only the order of summation differs, so 1e-12, or 10x the
    # model's rounding noise when its cancelling coefficients make that larger
    E1, F1, P1 = res[0]
    dE, dF, dW = rounding_noise(model, at)
    tol = (max(1e-12 * abs(E1), 10 * dE), max(1e-12 * np.max(np.abs(F1)), 10 * dF),
           max(1e-12 * np.max(np.abs(P1)), 10 * dW / at.get_volume() * NKTV2P))
    check_lammps("np 2 vs np 1", res[1], (E1, F1, P1, tol))
    # a short MD run: identical thermodynamics on 1 and 2 ranks
    etot = []
    for p in (1, 2):
        d = tmp_path / f"md{p}"
        d.mkdir()
        body = {"setup": "lattice bcc 3.30\nregion box block 0 6 0 6 0 6\ncreate_box 1 box\n"
                         "create_atoms 1 box",
                "run": "velocity all create 600.0 4928459 mom yes rot yes dist gaussian loop geom\n"
                       "timestep 0.001\nfix 1 all nve\nthermo_style custom step pe etotal\n"
                       "thermo_modify format float %.17g\nthermo 10\nrun 50"}
        log = run_lammps(name, ("Nb",), d, body, p)
        etot.append(_thermo(log))
    dev = np.max(np.abs(etot[0][:, 1:] - etot[1][:, 1:]) / np.abs(etot[0][:, 1:]))
    print(f"50 NVE steps, np 1 vs np 2: max relative deviation of pe, etotal {dev:.1e}")
    rtol = max(1e-11, 10 * dE / abs(E1))
    assert dev <= rtol, (dev, rtol)


def _thermo(log):
    rows, on = [], False
    for ln in log.splitlines():
        if ln.split()[:1] == ["Step"]:
            on = True
            continue
        if on:
            if ln.startswith("Loop time"):
                on = False
                continue
            try:
                rows.append([float(v) for v in ln.split()])
            except ValueError:
                continue
    return np.array(rows)


@needs_lmp
def test_lammps_nve_energy_conservation(nb_model, tmp_path):
    _, name = nb_model
    body = {"setup": "lattice bcc 3.30\nregion box block 0 6 0 6 0 6\ncreate_box 1 box\ncreate_atoms 1 box",
            "run": "velocity all create 600.0 4928459 mom yes rot yes dist gaussian\n"
                   "timestep 0.001\nfix 1 all nve\nthermo_style custom step temp pe etotal\n"
                   "thermo_modify format float %.15g\nthermo 10\nrun 1000"}
    log = run_lammps(name, ("Nb",), tmp_path, body)
    th = _thermo(log)
    assert len(th) == 101 and th[-1, 0] == 1000
    n = 432
    drift = np.max(np.abs(th[:, 3] - th[0, 3])) / n
    T = th[len(th) // 2:, 1].mean()
    print(f"NVE 432 atoms, 1000 x 1 fs, <T> = {T:.0f} K: max |E - E0| = {drift:.2e} eV/atom")
    assert 150 < T < 450
    assert drift < 1e-4
