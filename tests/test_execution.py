"""Memory-bounded least squares (compot.lstsq) and the Dask execution layer (compot.execution)."""

import numpy as np
import pytest

from compot.lstsq import StreamedQR, solve_reduced, solve_scaled
from compot.trainer import FitSettings, Trainer

from test_trainer import synthetic
from helpers import random_model


def test_streamed_qr_equals_dense_solve_on_ill_conditioned_rows():
    """Columns spanning 12 decades (condition ~1e12): the factor of 7 batches gives the
    dense solve's truncated-SVD solution, with and without ridge, and its loss."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(700, 12)) * np.logspace(0, -12, 12)
    A[:, 11] = A[:, 10] + 1e-13 * rng.normal(size=700)      # nearly dependent
    b = rng.normal(size=700)
    for ridge in (0.0, 1e-6):
        q = StreamedQR(12)
        for part in np.array_split(np.arange(700), 7):
            q.add(A[part], b[part])
        theta, loss = solve_reduced(q.R, 1e-10, ridge)
        dense = solve_scaled(A, b, 1e-10, ridge)
        np.testing.assert_allclose(A @ theta, A @ dense, rtol=0, atol=1e-10 * np.linalg.norm(A @ dense))
        r = A @ dense - b
        assert loss == pytest.approx(float(r @ r), rel=1e-10)
    assert q.n_rows == 700


@pytest.fixture(scope="module")
def client():
    from compot.execution import client_for
    with client_for(n_workers=2) as c:
        yield c


def test_streamed_fit_on_two_workers_equals_serial(client):
    """A fixed-nonlinear fit: dense, streamed in this process and streamed on a
    2-worker LocalCluster give the same coefficients."""
    truth = random_model("G3 + A[G3P2] + ZBL(1.0, 2.5)", seed=4)
    configs = synthetic(truth, n=6)
    truth.compute_scales([truth.system(configs)])
    configs = synthetic(truth, n=6)
    fits = []
    for lstsq, c in (("dense", None), ("streamed", None), ("streamed", client)):
        model = truth.copy()
        settings = FitSettings(freeze=model.blocks("nonlinear"), lstsq=lstsq, batch_atoms=16)
        t = Trainer(model, configs, settings, client=c)
        assert len(t.data.systems) == 6
        t.fit()
        fits.append(model.vector(model.blocks("linear")))
    np.testing.assert_allclose(fits[1], fits[0], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fits[2], fits[1], rtol=1e-8, atol=1e-10)
