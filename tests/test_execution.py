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


def test_streamed_fit_on_two_workers_equals_serial(client):
    """A fixed-nonlinear fit: dense, streamed in this process and streamed on a
    2-worker LocalCluster give the same energies and forces; the two streamed fits
    give the same coefficients bit for bit. Dense and streamed coefficients may differ
    along the directions at the rcond cut-off (1.4e-8 relative in 2 of 13 with numpy
    2.4 / scipy 1.17), which the predictions do not see."""
    truth = random_model("G3 + A[G3P2] + ZBL(1.0, 2.5)", seed=4)
    configs = synthetic(truth, n=6)
    truth.compute_scales([truth.system(configs)])
    configs = synthetic(truth, n=6)
    fits, preds = [], []
    for lstsq, c in (("dense", None), ("streamed", None), ("streamed", client)):
        model = truth.copy()
        settings = FitSettings(freeze=model.blocks("nonlinear"), lstsq=lstsq, batch_atoms=16)
        t = Trainer(model, configs, settings, client=c)
        assert len(t.data.systems) == 6
        t.fit()
        fits.append(model.vector(model.blocks("linear")))
        p = model.evaluate(model.system(configs), virial=False)
        preds.append(np.concatenate([p.energy_m, p.forces_nc.ravel()]))
    scale = np.max(np.abs(preds[0]))
    np.testing.assert_allclose(preds[1], preds[0], rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(fits[1], fits[0], rtol=1e-6, atol=1e-10)
    np.testing.assert_array_equal(fits[2], fits[1])          # the same merges in the same order


@pytest.fixture(scope="module")
def scheduler():
    """A 2-worker cluster started by the test; compot is given only its address."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _run(tmp_path, cfg, argv):
    import yaml
    from compot.cli import main
    path = tmp_path / f"{argv[0]}_{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / path.stem
    assert main([argv[0], str(path), "--out", str(out)] + argv[1:]) in (0, 1)
    return out


def test_fit_on_a_given_scheduler_equals_the_serial_fit(tmp_path, data_dir, scheduler):
    """compot fit --scheduler ADDRESS (streamed solves on the test's cluster) against the
    dense solve in this process: the same training errors."""
    import json
    cfg = {"model": {"expression": "E[G3L2]", "cutoff": 4.5, "species": ["Nb"]},
           "data": {"train": [str(data_dir / "nb-mvl" / "Nb_Surface.extxyz"),
                             str(data_dir / "nb-mvl" / "Nb_Elastic.extxyz")]},
           "fit": {"max_evaluations": 3, "init_points": 2, "polish_evaluations": 0, "batch_atoms": 400,
                   "hot_prior": {}}}          # its MD would amplify the solvers' last digits
    dist = _run(tmp_path, cfg, ["fit", "--scheduler", scheduler, "--nvt-steps", "10"])
    cfg["fit"]["lstsq"] = "dense"
    serial = _run(tmp_path, cfg, ["fit", "--nvt-steps", "10"])
    m_d, m_s = (json.loads((d / "metrics.json").read_text()) for d in (dist, serial))
    for split in ("train", "validation"):
        for key in ("rmse_energy_per_atom", "rmse_force"):
            assert m_d[split][key] == pytest.approx(m_s[split][key], rel=1e-7)
    assert 0.0 < m_d["train"]["rmse_force"] < 5.0


def test_design_on_a_given_scheduler_equals_one_worker(tmp_path, data_dir, scheduler, capsys):
    """Candidates as tasks on the test's 2-worker cluster and on a 1-worker LocalCluster:
    the same rows; a second run resumes every candidate."""
    import json
    cfg = {"model": {"cutoff": 4.5, "species": ["Nb"]},
           "data": {"train": [str(data_dir / "nb-mvl" / "Nb_Surface.extxyz"),
                             str(data_dir / "nb-mvl" / "Nb_Elastic.extxyz")], "validation_fraction": 0.2},
           "fit": {"max_evaluations": 2, "init_points": 1, "polish_evaluations": 0},
           "design": {"single_terms": ["G3", "E[G3L2]"], "compositions": ["G*E"], "zbl": None,
                      "fim_bits": 64, "sanity": False}}
    dist = _run(tmp_path, cfg, ["design", "--scheduler", scheduler])
    cfg["execution"] = {"workers": 1}
    one = _run(tmp_path, cfg, ["design"])
    rows = [{r["configuration"]: r for r in json.loads((d / "design.json").read_text())["rows"]} for d in (dist, one)]
    assert set(rows[0]) == set(rows[1]) == {"G3", "E[G3L2]", "G3 * E[G3L2]"}
    for conf, r in rows[0].items():
        assert r["rmse_force"] == pytest.approx(rows[1][conf]["rmse_force"], rel=1e-9)
    capsys.readouterr()
    from compot.cli import main
    assert main(["design", str(tmp_path / f"{one.name}.yaml"), "--out", str(one)]) == 0
    assert capsys.readouterr().out.count("resumed from") == 3


def test_neighbour_lists_on_disk_give_the_same_fit(tmp_path):
    """fit.neighbour_memory_mb: 0 writes every batch's neighbour lists to a scratch folder
    and reads them back per pass; a search stage and the joint solve then give the same
    parameters, bit for bit, as with every batch in memory, and the folder goes with the
    trainer."""
    import gc
    truth = random_model("E[G3L2] + A[G3P2] + ZBL(1.0, 2.5)", seed=5)
    configs = synthetic(truth, n=6)
    truth.compute_scales([truth.system(configs)])
    configs = synthetic(truth, n=6)
    params = []
    for budget in (float("inf"), 0.0):
        model = truth.copy()
        settings = FitSettings(max_evaluations=3, init_points=1, polish_evaluations=0, batch_atoms=16,
                               neighbour_memory_mb=budget)
        t = Trainer(model, configs, settings)
        store = t.data.systems
        assert store.n_on_disk == (6 if budget == 0 else 0)
        t.fit()
        params.append(dict(model.params))
        if budget == 0:
            scratch = store._scratch
            assert scratch.is_dir() and len(list(scratch.iterdir())) == 6
            del t, store
            gc.collect()
            assert not scratch.exists()
    assert params[0].keys() == params[1].keys()
    for k in params[0]:
        np.testing.assert_array_equal(params[1][k], params[0][k], err_msg=k)


def test_a_lost_workers_candidate_is_rerun(tmp_path, data_dir):
    """A worker killed (SIGKILL) while it fits a candidate: the scheduler reruns the
    candidate on a live worker (Dask's own rule for lost workers,
    ``distributed.scheduler.allowed-failures``), and the design ends with the rows of an
    undisturbed run on the same 2-worker cluster."""
    import os
    import signal
    import threading
    import time

    from distributed import Client, LocalCluster

    from compot.config import check_config
    from compot.design import run_design

    cfg = check_config({
        "model": {"cutoff": 4.5, "species": ["Nb"]},
        "data": {"train": [str(data_dir / "nb-mvl" / "Nb_Surface.extxyz"),
                           str(data_dir / "nb-mvl" / "Nb_Elastic.extxyz")], "validation_fraction": 0.2},
        "fit": {"max_evaluations": 8, "init_points": 2, "polish_evaluations": 0},
        "design": {"single_terms": ["G3", "E[G3L2]"], "compositions": [], "zbl": None,
                   "fim_bits": 64, "sanity": False}})
    quiet = lambda line: None                                          # noqa: E731
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        reference = run_design(cfg, tmp_path, tmp_path / "reference", progress=quiet, client=client)
        pids = client.run(os.getpid)                                   # worker address -> process id
        result, errors = {}, []

        def design():
            try:
                result.update(run_design(cfg, tmp_path, tmp_path / "killed", progress=quiet, client=client))
            except Exception as exc:                                   # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=design)
        thread.start()
        killed = None
        deadline = time.monotonic() + 300
        while killed is None and thread.is_alive() and time.monotonic() < deadline:
            for address, keys in client.processing().items():
                running = [k for k in keys if str(k).startswith("candidate-E_G3L2")]
                if running and address in pids:
                    os.kill(pids[address], signal.SIGKILL)
                    killed = (address, running[0])
                    break
            time.sleep(0.02)
        thread.join(600)
        assert killed is not None, "the candidate finished before a worker could be killed"
        assert not thread.is_alive() and not errors, errors
        # the scheduler saw the candidate start on the killed worker and again elsewhere
        address, key = killed
        story = client.run_on_scheduler(lambda dask_scheduler: [list(t) for t in dask_scheduler.story(key)])
        started = [t for t in story if t[2] == "processing"]
        assert len(started) >= 2, story
        assert address not in client.scheduler_info()["workers"]
    rows = [{r["configuration"]: r for r in d["rows"]} for d in (reference, result)]
    assert set(rows[1]) == set(rows[0]) == {"G3", "E[G3L2]"}
    for conf, r in rows[0].items():
        assert "error" not in rows[1][conf], rows[1][conf]
        for k in ("rmse_force", "rmse_energy_per_atom", "log10_kappa_total"):
            assert rows[1][conf][k] == pytest.approx(r[k], rel=1e-9), (conf, k)
