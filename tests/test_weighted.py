"""compot.data.weighted: the rows of the trainer and of the FIM, read without changing the model."""

import numpy as np
import pytest

from compot.analysis import jacobian
from compot.data.weighted import WeightedData
from compot.settings import FitSettings

from helpers import random_model
from test_trainer import synthetic


def _params(model):
    return {k: v.copy() for k, v in model.params.items()}


def test_least_squares_rows_leave_the_model_alone_and_reproduce_the_loss():
    model = random_model("E[G3L2] + G3 + ZBL(1.0, 2.5)", seed=2)
    configs = synthetic(random_model("E[G3L2] + G3 + ZBL(1.0, 2.5)", seed=5), n=3)
    settings = FitSettings(energy_weight=3.0, force_weight=0.5, zbl_anchor={"n": 3})
    data = WeightedData.for_fit(model, configs, settings)
    assert data.n_data_batches == 1 and len(data.batches) == 2          # the data, then the priors
    names = model.blocks("linear")
    before = _params(model)
    A, b = data.least_squares_rows(model, names)
    assert all(np.array_equal(before[k], v) for k, v in model.params.items())
    assert A.shape == (data.n_rows, model.vector(names).size) and b.shape == (data.n_rows,)
    r = A @ model.vector(names) - b                                        # √W (prediction − target)
    loss = 0.0
    for k, sysm in enumerate(data.systems):
        p = model.evaluate(sysm, virial=False)
        loss += np.sum(data.wE[k] * (p.energy_m - data.E[k]) ** 2)
        loss += np.sum(data.wF[k][:, None] * (p.forces_nc - data.F[k]) ** 2)
    assert abs(r @ r - loss) <= 1e-9 * loss


def test_fim_jacobian_does_not_touch_a_product_with_its_right_shift_at_zero():
    model = random_model("G3 * G2", seed=3)
    right = f"n{model.layout.nodes[0].children[1]}.shift"
    model.params[right] = np.zeros_like(model.params[right])                # a trainer would set it to 1
    configs = synthetic(random_model("G3 * G2", seed=1), n=2)
    before = _params(model)
    A, names = jacobian(model, configs)
    assert all(np.array_equal(before[k], v) for k, v in model.params.items())
    assert A.shape[1] == model.vector(names).size and np.all(np.isfinite(A))


def test_site_prior_rows_and_the_unlike_pair_transfer():
    """fit.site_prior: one row √w (E_i − e0[Z_i]) per atom of the data (not the priors),
    the rows reproduce the loss, and the prior fixes what energies and forces leave free:
    in a pair term, moving t from c[Nb, Mo] to c[Mo, Nb] (the site energies of every
    Nb–Mo pair's two atoms) changes no energy and no force."""
    from compot.data import Configuration
    from compot.trainer import Trainer
    from helpers import random_structure
    species = ("Nb", "Mo")
    truth = random_model("G3", species=species, seed=4)
    configs = []
    for k in range(3):
        at = random_structure("triclinic", species=species, seed=10 + k)
        p = truth.evaluate(truth.system([at]), virial=False)
        configs.append(Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions,
                                     cell=at.cell.array, pbc=at.pbc, energy=float(p.energy_m[0]),
                                     forces=p.forces_nc, group="synthetic", source=f"synthetic:{k}"))
    # the transfer: same energies and forces, site energies moved by ±1000 eV-ish
    moved = truth.copy()
    moved.params["n0.c"] = truth.params["n0.c"].copy()
    moved.params["n0.c"][0, 1] += 500.0
    moved.params["n0.c"][1, 0] -= 500.0
    s = truth.system([c.to_atoms() for c in configs])
    p0, p1 = truth.evaluate(s, virial=False), moved.evaluate(s, virial=False)
    np.testing.assert_allclose(p1.energy_m, p0.energy_m, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(p1.forces_nc, p0.forces_nc, atol=1e-9)
    assert np.abs(p1.energies_n - p0.energies_n).max() > 10.0

    # e0: each species' mean site energy in the truth (the transfer is what is tested)
    e0 = {sym: float(p0.energies_n[s.species_n == z].mean()) for z, sym in enumerate(species)}
    settings = FitSettings(site_prior={"weight": 1e-2, "e0": e0},
                           eos_anchor={"species": {"Nb": {"a0": 3.3, "e0": -10.0, "bulk_modulus": 170.0}},
                                       "scales": [0.9], "weight": 1e-12})   # a prior batch (no site rows)
    data = WeightedData.for_fit(moved, configs, settings)
    n_atoms = sum(c.n_atoms for c in configs)
    assert sum(len(w) for w in data.wSite) == n_atoms                    # data atoms only
    assert data.n_rows == len(configs) + 3 * n_atoms + n_atoms + sum(len(e) + 3 * len(f) for e, f in
                                                                     zip(data.E[1:], data.F[1:]))
    names = moved.blocks("linear")
    A, b = data.least_squares_rows(moved, names)
    r = A @ moved.vector(names) - b
    t = Trainer(moved, configs, settings)
    assert abs(r @ r - t.loss()) <= 1e-9 * t.loss()
    # the fit with the prior minimises data loss + prior, at most the truth's prior term
    # (its data loss is 0): the transfer of `moved` is undone
    t.solve(names)
    fit = t.model.evaluate(s, virial=False)
    np.testing.assert_allclose(fit.forces_nc, p0.forces_nc, atol=1e-3)
    prior = lambda p: float(np.sum((p.energies_n - np.where(s.species_n == 0, e0["Nb"], e0["Mo"])) ** 2))
    assert prior(fit) <= prior(p0) * (1 + 1e-9) and 100 * prior(p0) < prior(p1)
    with pytest.raises(ValueError, match=r"fit.site_prior.e0: no crystal energy per atom for Mo"):
        WeightedData.for_fit(moved, configs, FitSettings(site_prior={"weight": 1.0, "e0": {"Nb": -10.0}}))
