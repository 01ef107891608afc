"""The extrapolation grade (MODEL_SPEC §10) as an MD-time warning: exposed by the
ASE calculator, and it rises far above its range on the data before the energy
of the model without its safety switch goes wrong.

The model is the shipped Nb model (format v2). "Without its safety switch" is its
fitted energy Σ_i V_fit(i) + E_ZBL, i.e. E_i with the atom switch S_i held at 1
(:meth:`compot.safety.SafetyLayer.fitted_value`): the energy that the switch hands
over to E_ref, and what a model without MODEL_SPEC §10's switch would give. The
compression, the pushed atom and the 3000 K run also use the first release's model
(format v1), which breaks in all three; its grade is measured on its own features
(:func:`_own_grade`).
"""

import numpy as np
import pytest
from ase.build import bulk

from compot.calculator import CompotCalculator
from compot.data import read_dataset
from compot.io import read_model
from compot.model import Model

A0 = 3.3226     # the shipped model's lattice constant [Å]
COMPRESSION = np.round(np.arange(1.0, 0.499, -0.025), 3)    # a/a0 of _compress


@pytest.fixture(scope="module")
def shipped(repo_root):
    return read_model(repo_root / "examples/nb/model.params")


def _grade(model, atoms):
    atoms = atoms.copy()
    atoms.calc = CompotCalculator(model)
    return atoms.calc.get_property("grade_normalised", atoms)


def _features(model, atoms_list):
    ctx = model.context(model.system(atoms_list))     # the safety layer needs its Context alive
    return ctx.safety.feature_vector()


def _own_grade(model, data_dir, floor=1e-4):
    """γ/γ_lo of ``model`` from its own feature vector f_i (the features its fitted
    energy is linear in), fitted on the Nb data as :meth:`compot.model.Model.compute_grade`
    fits a format v2 model's (mean μ, covariance C + floor·tr(C)/d·I, γ_lo the largest γ
    of the data's atoms): a function of an Atoms object, one value per atom.

    For the first release's model (format v1) this is the grade that bounds what its
    energy does. Its coefficients read as format v2 (what compute_grade needs) are a
    different model: saturating E features and bounded A invariants change f even inside
    the data (by up to 2.6 on the Nb data), and in that feature map one AIMD atom sets
    γ_lo 8.8× above the next atom and 25× above the 99.9th percentile, so such a
    "grade" of the v1 model was late for its pushed atom (γ_lo passed at 1.78 Å, after
    its false well began at 1.88 Å). On its own features γ_lo is 1.1× the next atom."""
    cfgs = read_dataset([data_dir / "nb-mvl"], species=["Nb"], min_distance=0.5)
    F = np.concatenate([_features(model, cfgs[i:i + 60]) for i in range(0, len(cfgs), 60)])
    mu, C = F.mean(axis=0), np.cov(F, rowvar=False)
    P = np.linalg.inv(C + floor * np.trace(C) / len(mu) * np.eye(len(mu)))      # = Uᵀ U

    def gamma(f):
        return np.einsum("ij,jk,ik->i", f - mu, P, f - mu)

    lo = gamma(F).max()
    return lambda atoms: gamma(_features(model, [atoms])) / lo


@pytest.fixture(scope="module")
def first_release(repo_root, data_dir):
    """The first release's Nb model (format v1, ``tests/data/nb_first_release_v1.params``,
    the recipe before MODEL_SPEC §10) and its grade on its own features (:func:`_own_grade`)."""
    v1 = read_model(repo_root / "tests/data/nb_first_release_v1.params")
    return v1, _own_grade(v1, data_dir)


def _v1_energy(model, atoms):
    return float(model.evaluate(model.system([atoms]), forces=False, virial=False).energy_m[0])


def _unswitched_energy(model, atoms):
    """Σ_i V_fit(i) + E_ZBL(i): the energy with every atom switch at 1 [eV]."""
    ctx = model.context(model.system([atoms]))
    return float(np.sum(ctx.value(0)))


def test_calculator_grade_matches_the_safety_layer(shipped):
    model = shipped
    at = bulk("Nb", "bcc", a=3.32, cubic=True).repeat(2)
    at.rattle(0.1, seed=4)
    at.calc = CompotCalculator(model, grade=True)
    at.get_potential_energy()
    gamma = model.context(model.system([at])).grade().gamma_n
    np.testing.assert_allclose(at.calc.results["grade"], gamma, rtol=0, atol=0)
    np.testing.assert_allclose(at.calc.results["grade_normalised"], gamma / model.params["g.gamma_lo"][0])
    assert 0 < at.calc.results["grade_normalised"].max() < 1       # a rattled crystal is inside the data
    v1 = Model("G2", ["Nb"], 4.4, version=1)
    at.calc = CompotCalculator(v1)
    assert not at.calc.get_property("grade", at).any()                # format v1: no grade


def _compress(grade, energy):
    """E–V of bcc Nb from a0 down to 0.5 a0 in steps of 0.025 a0: (the first a/a0 whose
    energy is below the previous one's, the first with γ/γ_lo > 1, the first with
    γ/γ_lo > 10, energies [eV/atom], largest γ/γ_lo per cell)."""
    xs = COMPRESSION
    cells = [bulk("Nb", "bcc", a=A0 * x, cubic=True) for x in xs]
    e = np.array([energy(c) / 2 for c in cells])
    g = np.array([grade(c).max() for c in cells])
    return (xs[int(np.argmax(np.diff(e) < 0)) + 1], xs[int(np.argmax(g > 1.0))], xs[int(np.argmax(g > 10.0))],
            e, g)


def test_grade_flags_compression_before_the_collapse(shipped, first_release):
    """Shipped model (format v4): the unswitched energy first falls under further
    compression at 0.775 a0 (−2.8 to −8.5 eV/atom); the grade leaves the data's range
    (γ/γ_lo > 1) at 0.875 a0 and is above 10 γ_lo from 0.85 a0 on.

    First release (format v1, no switch): its energy first falls at 0.675 a0 (−249
    eV/atom at 0.6 a0); its grade leaves the data's range at 0.9 a0 and is above 10 γ_lo
    from 0.875 a0 on."""
    broken, flagged, loud, e, g = _compress(lambda c: _grade(shipped, c), lambda c: _unswitched_energy(shipped, c))
    assert g[0] < 0.01 and e[COMPRESSION == broken][0] < -8.0
    assert broken == pytest.approx(0.775) and flagged == pytest.approx(0.875) and loud == pytest.approx(0.85)
    v1, grade = first_release
    broken, flagged, loud, e, g = _compress(grade, lambda c: _v1_energy(v1, c))
    assert g[0] < 0.01 and e.min() < -200
    assert broken == pytest.approx(0.675) and flagged == pytest.approx(0.9) and loud == pytest.approx(0.875)


def _push(grade, energy):
    """One atom of a 54-atom bcc cell pushed toward a nearest neighbour in steps of
    0.05 Å: (distances [Å], ``energy`` [eV], the pushed atom's γ/γ_lo from ``grade``)."""
    base = bulk("Nb", "bcc", a=A0, cubic=True).repeat(3)
    dist = base.get_distances(0, range(1, len(base)), mic=True)
    j = 1 + int(np.argmin(dist))
    u = base.get_distance(0, j, mic=True, vector=True)
    d_nn = np.linalg.norm(u)
    u /= d_nn
    ds = d_nn - 0.05 * np.arange(int((d_nn - 0.75) / 0.05))
    e, g = [], []
    for d in ds:
        at = base.copy()
        at.positions[0] += u * (d_nn - d)
        e.append(energy(at))
        g.append(grade(at)[0])
    return ds, np.array(e), np.array(g)


def test_grade_of_a_pushed_atom(shipped, first_release):
    """Shipped model (format v4): its unswitched energy has a false well from 2.08 Å in
    (118 eV below the crystal at 1.93 Å); the pushed atom's grade passes γ_lo at 2.13 Å
    (the data's shortest distance is 2.03 Å), one step before, is 4.2 γ_lo where the
    energy turns down and above γ_hi = 9 γ_lo (fitted energy off) from 2.03 Å in, and
    levels off near 70 γ_lo, where the features saturate.

    First release (format v1, no window): its energy has a false well from 1.88 Å in
    (it falls from there, to 28 eV below the crystal at 1.18 Å). Its grade, on its own
    features (:func:`_own_grade`), passes γ_lo at 2.03 Å, the data's shortest distance,
    0.15 Å before the well begins, and is 4.4 γ_lo where the energy turns down."""
    ds, e, g = _push(lambda at: _grade(shipped, at), lambda at: _unswitched_energy(shipped, at))
    turn = int(np.argmax(np.diff(e) < 0))                   # last distance before the energy falls
    assert g[0] < 0.01 and ds[turn] == pytest.approx(2.127, abs=1e-3) and e.min() < e[0] - 100
    assert ds[int(np.argmax(g > 1.0))] == pytest.approx(2.127, abs=1e-3) and g[turn + 1] > 4.0
    assert np.all(g[ds < 2.03] > 9.0) and 60.0 < g[-1] < 80.0
    v1, grade = first_release
    ds, e, g = _push(grade, lambda at: _v1_energy(v1, at))
    turn = int(np.argmax(np.diff(e) < 0))                   # last distance before the energy falls
    flagged = int(np.argmax(g > 1.0))
    assert ds[turn] == pytest.approx(1.877, abs=1e-3) and e.min() < e[0] - 25
    assert g[0] < 0.01 and ds[flagged] == pytest.approx(2.027, abs=1e-3)
    assert flagged < turn and g[turn] > 4.0


@pytest.mark.slow
# ASE's fixcm=True Langevin, deprecated in 3.28, is kept: it is the documented trajectory
@pytest.mark.filterwarnings("ignore:The implementation of `fixcm=True`:FutureWarning")
def test_grade_flags_a_3000K_run_before_it_collapses(repo_root, first_release):
    """The first release's Nb model (format v1, ``tests/data/nb_first_release_v1.params``,
    the recipe before MODEL_SPEC §10) in Langevin NVT at 3000 K, 128 atoms, seed 2,
    through the C core: near step 2620 a pair closes, the energy turns down (a false
    well) and the run collapses (−11 eV/atom at d_min 1.1 Å, then +115 eV/atom). Its
    grade on its own features (:func:`_own_grade`, fitted on the Nb data, which holds
    3000 K AIMD) stays inside the data's range (< γ_lo; 0.2–0.85 γ_lo over the run) until
    then, passes γ_lo 9 fs before the energy turns down and is above 10 γ_lo before the
    energy has fallen 0.5 eV/atom. The warning is short (a collision); the inner window
    of format v2 (r_b = 2.03 Å) acts on the same pair from 2.03 Å on."""
    from ase import units
    from ase.md.langevin import Langevin

    from compot.ccore import CCoreCalculator
    from compot.sanity import thermalize

    path = repo_root / "tests/data/nb_first_release_v1.params"
    grade = first_release[1]
    at = bulk("Nb", "bcc", a=3.32, cubic=True).repeat(4)
    thermalize(at, 3000, np.random.default_rng(2))
    at.calc = CCoreCalculator(str(path))
    dyn = Langevin(at, 1 * units.fs, temperature_K=3000, friction=0.02, rng=np.random.default_rng(2))
    before = []
    for _ in range(51):                                   # 2550 steps, the grade every 50
        dyn.run(50)
        before.append(grade(at).max())
    e, g = [], []
    for _ in range(150):
        dyn.run(1)
        e.append(at.get_potential_energy() / len(at))
        g.append(grade(at).max())
        if e[-1] < -11.0:
            break
    e, g = np.array(e), np.array(g)
    assert e[-1] < -11.0, "the first-release model should collapse in this run"
    assert max(before) < 1.0 and g[:40].max() < 1.0        # inside the data's range until then
    e_peak = int(np.argmax(e[40:])) + 40                  # the energy turns down after its last maximum
    flagged = int(np.argmax(g > 1.0))
    loud = int(np.argmax(g > 10.0))
    fallen = int(np.argmax(e < e[e_peak] - 0.5))
    assert flagged + 5 <= e_peak and loud < fallen < len(e) - 1
