"""Format v3: the fitted site energy bounded below at the data's lowest, e_min
(compot.safety.SafetyLayer.bounded_fit, compot_bounded_fit in the C core):
its value, forces and virial against finite differences, the C core against
Python, the bound itself far outside the data, and what the trainer stores."""

import numpy as np
import pytest
from ase.build import bulk

from compot.data import Configuration
from compot.io import format_model, read_model
from compot.model import Model
from compot.trainer import FitSettings, Trainer

from helpers import assert_c_core_matches_python, bounded_model, random_structure, switched_model
from test_terms import _fd_errors

CASES = [("E[G4L2] + A[G4P2]", ("Nb",)), ("E[G3L2] + N[E[G3L2]] + A[G3P2]", ("Mo", "Nb"))]


def _bounded(expr, species, seed=1):
    """A random switched model (helpers.switched_model) in format v3 whose bound acts
    on about 40 % of the atoms of its structure (helpers.bounded_model)."""
    atoms = random_structure("triclinic", species=species, seed=2)
    return bounded_model(switched_model(expr, species, [atoms], seed=seed), [atoms]), atoms


@pytest.mark.parametrize("expr,species", CASES)
def test_bound_value_forces_and_virial(expr, species):
    m, atoms = _bounded(expr, species)
    ctx = m.context(m.system([atoms]))
    v = ctx.safety.fitted_value()
    vb, dvb = ctx.safety.bounded_fit()
    z = ctx.system.species_n
    lo, w = m.params["w.e_min"][z], float(m.params["w.tau"]) * 2.0
    below = v < lo
    assert 0 < below.sum() < len(v)
    np.testing.assert_array_equal(vb[~below], v[~below])
    np.testing.assert_allclose(vb[below], lo[below] - w * np.tanh((lo[below] - v[below]) / w), rtol=1e-15)
    assert np.all(vb >= lo - w) and np.all((dvb > 0) & (dvb <= 1))
    f_err, w_err = _fd_errors(m, atoms)
    assert f_err < 1e-7 and w_err < 1e-7


@pytest.mark.parametrize("expr,species", CASES)
def test_c_core_agrees_and_file_round_trips(expr, species, tmp_path):
    m, atoms = _bounded(expr, species)
    path = tmp_path / "v3.params"
    path.write_text(format_model(m))
    m = read_model(path)
    assert m.version == 3 and "compot-params 3" in path.read_text()
    assert_c_core_matches_python(m, atoms)


def test_trainer_stores_the_lowest_fitted_site_energy():
    """After a fit, e_min of each species is the lowest V_fit over the data's atoms,
    so the bound leaves every fitted atom exactly as the fit left it; a crystal
    squeezed to 0.6 a0 (far outside) stays above e_min − w in every site."""
    truth = Model("E[G3L2] + A[G3P2]", ("Nb",), 4.5, version=3)
    rng = np.random.default_rng(0)
    truth.params["b1.alpha"], truth.params["b1.beta"] = np.array(0.3), np.array(1.5)
    for name in truth.blocks("linear"):
        truth.params[name] = rng.uniform(-0.5, 0.5, truth.params[name].shape)
    truth.params["n1.gamma"] = np.array([0.5, -0.5])
    configs = []
    for k in range(6):
        at = random_structure("triclinic", seed=k)
        truth.compute_scales([truth.system([at])])
        p = truth.evaluate(truth.system([at]), virial=False)
        configs.append(Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions,
                                     cell=at.cell.array, pbc=at.pbc, energy=float(p.energy_m[0]),
                                     forces=p.forces_nc, group="g", source=f"s:{k}"))
    model = Model("E[G3L2] + A[G3P2]", ("Nb",), 4.5, version=3)
    model.params["w.e_ref"] = np.array([5.0])
    t = Trainer(model, configs, FitSettings(max_evaluations=3, init_points=2, polish_evaluations=0))
    t.fit()
    low = min(float(model.context(s).fitted_value().min()) for s in t.data.systems[:t.data.n_data_batches])
    assert model.params["w.e_min"][0] == low < model.params["w.e_ref"][0]
    for s in t.data.systems[:t.data.n_data_batches]:
        ctx = model.context(s)              # (its safety layer holds the context weakly)
        np.testing.assert_array_equal(ctx.safety.bounded_fit()[0], ctx.fitted_value())
    squeezed = bulk("Nb", "bcc", a=0.6 * 3.3, cubic=True).repeat(2)
    ctx = model.context(model.system([squeezed]))
    w = float(model.params["w.tau"]) * (5.0 - low)
    assert ctx.safety.bounded_fit()[0].min() >= low - w
