"""Format v4: the coordination term of the extrapolation grade (compot.safety.coordination,
compot_coordination_term in the C core). An atom with fewer neighbours than the data's
lowest coordination n_min gets γ + γ_hi (2(1 − n/n_min))³, so from n_min/2 down its fitted
energy is off whatever its features: an isolated dimer is then E_ref + E_ref + ZBL.
Tests: n itself, forces and virial against finite differences with atoms in the
transition, the C core against Python, the round trip, the dimer, and the trainer's n_min."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from compot.ccore import CCoreCalculator
from compot.data import Configuration
from compot.functions import cutoff_fdf
from compot.io import format_model, read_model
from compot.model import Model
from compot.safety import coordination
from compot.trainer import FitSettings, Trainer

from helpers import assert_c_core_matches_python, bounded_model, coordinated_model, random_structure, switched_model
from test_terms import _fd_errors

CASES = [("E[G4L2] + A[G4P2]", ("Nb",)), ("E[G3L2] + N[E[G3L2]] + A[G3P2] + ZBL(2.9, 3.4)", ("Mo", "Nb"))]


def _fn(r, rc):
    """f_n of docs/parameter-file.md, written out: 1 up to r_c/2, then 1 − 35t⁴ + 84t⁵ − 70t⁶ + 20t⁷."""
    t = np.clip((np.asarray(r) - rc / 2) / (rc / 2), 0.0, 1.0)
    return 1 - 35 * t**4 + 84 * t**5 - 70 * t**6 + 20 * t**7


def test_coordination_counts_neighbours():
    rc = 4.42
    m = Model("G4", ("Nb",), rc, version=4)
    at = bulk("Nb", "bcc", a=3.30, cubic=True).repeat(2)
    n, dn = coordination(m.system([at]), rc)
    want = 8 * _fn(3.30 * np.sqrt(3) / 2, rc) + 6 * _fn(3.30, rc)     # third shell 4.67 Å > r_c
    np.testing.assert_allclose(n, want, rtol=1e-14)
    assert 9.0 < want < 11.0
    for r in (0.9, 1.5, 2.2):                                             # below r_c/2 = 2.21 Å: 1 each
        n, dn = coordination(m.system([Atoms("Nb2", positions=[[0, 0, 0], [r, 0, 0]])]), rc)
        np.testing.assert_array_equal(n, [1.0, 1.0])
        np.testing.assert_array_equal(dn, [0.0, 0.0])
    r = 3.1
    n, dn = coordination(m.system([Atoms("Nb2", positions=[[0, 0, 0], [r, 0, 0]])]), rc)
    h = 1e-6
    assert n[0] == pytest.approx(_fn(r, rc), rel=1e-14)
    assert dn[0] == pytest.approx((_fn(r + h, rc) - _fn(r - h, rc)) / (2 * h), rel=1e-7)
    assert cutoff_fdf(np.array([r - rc / 2]), rc / 2)[0][0] == pytest.approx(n[0], rel=1e-15)


def _low_coordinated(expr, species, kind="cluster"):
    """A random switched, bounded model (helpers) in format v4 whose n_min puts atoms of a
    structure (``kind`` of helpers.random_structure: a non-periodic cluster by default,
    where some are beyond the transition) in the coordination term's transition."""
    atoms = random_structure(kind, species=species, seed=3)
    return coordinated_model(bounded_model(switched_model(expr, species, [atoms], seed=1), [atoms]), [atoms]), atoms


@pytest.mark.parametrize("expr,species", CASES)
def test_coordination_term_value_forces_and_virial(expr, species):
    m, atoms = _low_coordinated(expr, species)
    ctx = m.context(m.system([atoms]))
    s = ctx.system
    g = ctx.safety.grade()
    n, _ = coordination(s, m.cutoff)
    n_min, hi = m.params["g.n_min"][s.species_n], m.params["g.gamma_hi"][s.species_n]
    no_term = m.copy(version=4)
    no_term.params["g.n_min"] = np.zeros(len(species))
    ctx0 = no_term.context(no_term.system([atoms]))      # (the safety layer holds it weakly)
    g0 = ctx0.safety.grade()
    delta = np.clip(1 - n / n_min, 0, None)
    np.testing.assert_allclose(g.gamma_n, g0.gamma_n + 8 * hi * delta**3, rtol=1e-13)
    in_transition = (g.S_n > 0) & (g.S_n < 1) & (delta > 0)
    assert in_transition.sum() >= 2 and (g.S_n[delta > 0.5] == 0).all()
    assert np.any(g.S_n != g0.S_n)
    f_err, _ = _fd_errors(m, atoms)                      # (a cluster has no virial)
    assert f_err < 1e-7
    m, atoms = _low_coordinated(expr, species, "triclinic")
    ctx = m.context(m.system([atoms]))
    g = ctx.safety.grade()
    assert np.sum((g.S_n > 0) & (g.S_n < 1)) >= 2
    f_err, w_err = _fd_errors(m, atoms)
    assert f_err < 1e-7 and w_err < 1e-7


@pytest.mark.parametrize("expr,species", CASES)
def test_c_core_agrees_and_file_round_trips(expr, species, tmp_path):
    m, atoms = _low_coordinated(expr, species)
    path = tmp_path / "v4.params"
    path.write_text(format_model(m))
    m = read_model(path)
    assert m.version == 4 and "compot-params 4" in path.read_text() and "g.n_min." in path.read_text()
    assert_c_core_matches_python(m, atoms, grade=True)


def test_isolated_dimer_is_switched_off():
    """With n_min > 2 both atoms of a dimer, like or unlike, are fully off at every
    separation: the dimer's energy is 2 E_ref + ZBL, repulsive wherever ZBL is on."""
    m, _ = _low_coordinated("E[G3L2] + A[G3P2] + ZBL(2.9, 3.4)", ("Mo", "Nb"))
    m.params["g.n_min"] = np.array([2.5, 2.5])
    for pair in (("Nb", "Nb"), ("Mo", "Nb")):
        e = []
        for r in np.linspace(1.0, 2.2, 13):
            at = Atoms(pair, positions=[[0, 0, 0], [r, 0, 0]])
            at.calc = CCoreCalculator(m)
            ctx = m.context(m.system([at]))
            assert (ctx.safety.grade().S_n == 0).all()
            zbl = ctx.value(0) - ctx.safety.fitted_value()
            want = m.params["w.e_ref"][ctx.system.species_n] + zbl
            np.testing.assert_allclose(at.get_potential_energies(), want, rtol=0, atol=1e-11)
            e.append(at.get_potential_energy())
        assert np.all(np.diff(e) < 0)


def test_trainer_stores_the_lowest_coordination():
    rng = np.random.default_rng(0)
    configs = []
    for k in range(5):
        at = random_structure("cluster" if k % 2 else "triclinic", seed=k)
        configs.append(Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions,
                                     cell=at.cell.array, pbc=at.pbc, energy=float(rng.normal(-10 * len(at), 1)),
                                     forces=rng.normal(0, 0.1, (len(at), 3)), group="g", source=f"s:{k}"))
    model = Model("E[G3L2]", ("Nb",), 4.5, version=4)
    model.params["w.e_ref"] = np.array([-3.0])
    t = Trainer(model, configs, FitSettings(max_evaluations=3, init_points=2, polish_evaluations=0))
    t.fit()
    low = min(float(coordination(s, 4.5)[0].min()) for s in t.data.systems[:t.data.n_data_batches])
    assert model.params["g.n_min"][0] == low > 0
    assert t.grade_info["Nb"]["n_min"] == low
    no_term = model.copy()
    no_term.params["g.n_min"] = np.zeros(1)
    for s in t.data.systems[:t.data.n_data_batches]:        # every fitted atom keeps its γ
        ctx, ctx0 = model.context(s), no_term.context(s)
        np.testing.assert_array_equal(ctx.safety.grade().gamma_n, ctx0.safety.grade().gamma_n)
