"""compot.data.weighted: the rows of the trainer and of the FIM, read without changing the model."""

import numpy as np

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
