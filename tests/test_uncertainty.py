"""compot.uncertainty: the linearised covariance Σ = s² I⁺ of the linear coefficients
against a Monte-Carlo refit, and the consistency of its energy, force, stress and
derived-quantity σ."""

import numpy as np
import pytest
import scipy.linalg
from ase.build import bulk

from compot.data import read_dataset
from compot.data.weighted import WeightedData
from compot.model import Model
from compot.settings import FitSettings
from compot.uncertainty import (UncertaintyError, calibration, parameter_covariance, predictive_sigma,
                                qoi_sigma, stress_jacobian)


def _solve(model, data, names):
    A, b = data.least_squares_rows(model, names)
    n = np.linalg.norm(A, axis=0)
    model.set_vector(names, scipy.linalg.lstsq(A / n, b, cond=1e-10, lapack_driver="gelsd")[0] / n)
    return A, b


@pytest.fixture(scope="module")
def small_fit(data_dir):
    """E[G4L2] (9 linear coefficients, α, β, γ fixed) solved on 12 Nb AIMD snapshots;
    3 other snapshots held out."""
    cfgs = read_dataset([data_dir / "nb-mvl" / "Nb_AIMD.extxyz"], species=["Nb"], min_distance=0.5)
    idx = np.random.default_rng(0).permutation(len(cfgs))
    train = [cfgs[i] for i in idx[:12]]
    test = [cfgs[i] for i in idx[12:15]]
    model = Model("E[G4L2]", ["Nb"], 4.4, {"b1.alpha": 0.4, "b1.beta": 1.5}, version=1)
    model.compute_scales([model.system(train)])
    settings = FitSettings()
    names = model.blocks("linear")
    data = WeightedData(model, train, settings)
    A, b = _solve(model, data, names)
    return model, train, test, settings, names, A, b


def test_sigma_agrees_with_a_bootstrap_of_the_linear_solve(small_fit):
    """Residual bootstrap of the linear solve (200 refits, residuals resampled with
    replacement): the spread of held-out energies and forces agrees with the
    linearised σ within a factor of 2 (measured: energies 0.90–1.01, forces' median 0.98)."""
    model, train, test, settings, names, A, b = small_fit
    cov = parameter_covariance(model, train, settings)
    assert cov.rank == 9 and cov.n_rows == A.shape[0]
    sig = predictive_sigma(cov, model, test, stress=False)
    sE = np.array([s["energy"] for s in sig])
    sF = np.concatenate([s["forces"].ravel() for s in sig])
    theta = model.vector(names)
    r = b - A @ theta
    norms = np.linalg.norm(A, axis=0)
    rng = np.random.default_rng(1)
    test_sys = model.system(test)
    E, F = [], []
    m = model.copy()
    for _ in range(200):
        x = scipy.linalg.lstsq(A / norms, A @ theta + rng.choice(r, len(r)), cond=1e-10, lapack_driver="gelsd")[0]
        m.set_vector(names, x / norms)
        p = m.evaluate(test_sys, virial=False)
        E.append(p.energy_m)
        F.append(p.forces_nc.ravel())
    ratio_e = np.std(E, axis=0) / sE
    ratio_f = np.std(F, axis=0) / sF
    assert np.all((ratio_e > 0.5) & (ratio_e < 2.0)), ratio_e
    assert 0.8 < np.median(ratio_f) < 1.25
    assert np.mean((ratio_f > 0.5) & (ratio_f < 2.0)) > 0.99


@pytest.mark.parametrize("batch_atoms", [3000, 200])
def test_streamed_covariance_equals_the_dense_one(small_fit, batch_atoms):
    """parameter_covariance accumulates the triangular factor of the rows batch by batch
    (issue 17: memory of one batch); Σ, s², the eigenvalues and the rank equal those of
    the SVD of all rows A stacked (the computation before) to rounding, in one batch
    and in three. (The dense SVD itself moves Σ by 6e-11 when A's rows are only reordered,
    on the Nb data with the shipped model.)"""
    model, train, test, settings, names, A, b = small_fit
    cov = parameter_covariance(model, train, FitSettings(batch_atoms=batch_atoms))
    r = b - A @ model.vector(names)
    norms = np.linalg.norm(A, axis=0)
    _, sv, Vt = np.linalg.svd(A / norms, full_matrices=False)
    lam = sv ** 2
    sig = lam >= 1e-15 * lam.max()
    s2 = float(r @ r) / (A.shape[0] - sig.sum())
    L = (Vt[sig].T / sv[sig]) / norms[:, None] * np.sqrt(s2)
    assert cov.n_rows == A.shape[0] and cov.rank == sig.sum()
    assert cov.s2 == pytest.approx(s2, rel=1e-12)
    np.testing.assert_allclose(cov.eigenvalues, lam[sig], rtol=1e-9)
    S = L @ L.T
    assert np.max(np.abs(cov.covariance() - S)) < 1e-9 * np.max(np.abs(S))


def test_stress_and_qoi_sigma_are_consistent(small_fit):
    """The stress rows are the derivative of the model's stress along θ, and a
    derived quantity that is an energy gets the energy's σ through qoi_sigma."""
    model, train, test, settings, names, *_ = small_fit
    cov = parameter_covariance(model, train, settings)
    at = bulk("Nb", "bcc", a=3.25, cubic=True).repeat(2)
    at.rattle(0.05, seed=3)
    J = stress_jacobian(model, at, names)
    d = np.random.default_rng(2).normal(size=model.vector(names).size) * np.abs(model.vector(names))
    m = model.copy()

    def stress(mod):
        W = mod.evaluate(mod.system([at]), forces=False).virial_mcc[0] / at.get_volume()
        return np.array([W[0, 0], W[1, 1], W[2, 2], W[1, 2], W[0, 2], W[0, 1]])

    m.set_vector(names, model.vector(names) + 1e-3 * d)
    np.testing.assert_allclose((stress(m) - stress(model)) / 1e-3, J @ d, rtol=1e-5, atol=1e-9)
    sig = predictive_sigma(cov, model, [at])[0]
    assert sig["stress"].shape == (6,) and np.all(sig["stress"] > 0)
    _, s_q, g = qoi_sigma(cov, model, lambda mod: {"E": float(mod.evaluate(mod.system([at]), forces=False,
                                                                           virial=False).energy_m[0])})
    assert s_q["E"] == pytest.approx(sig["energy"], rel=1e-6)
    assert g["E"].shape == (cov.rank,)


def test_calibration_on_held_out_snapshots(small_fit):
    """Raw σ of a 9-coefficient model is optimistic on held-out AIMD snapshots (model
    error): the inflation factor is > 1 and the inflated z-scores have unit RMS."""
    model, train, test, settings, *_ = small_fit
    cov = parameter_covariance(model, train, settings)
    cal = calibration(cov, model, test)
    assert cal["z_force"].shape == (3 * sum(c.n_atoms for c in test),)
    assert cal["inflation_force"] > 1.0
    z = cal["z_force"] / cal["inflation_force"]
    assert np.sqrt(np.mean(z ** 2)) == pytest.approx(1.0)


def test_no_data_is_an_error():
    model = Model("G2", ["Nb"], 4.4, version=1)
    with pytest.raises(UncertaintyError, match="no data rows"):
        parameter_covariance(model, [], FitSettings())


def test_cli_eval_uncertainty(data_dir, tmp_path, capsys):
    """compot eval --uncertainty (config.yaml beside the model, as compot fit writes it)
    gives σ per configuration and the calibration on the fit's validation split, and
    writes uncertainty.md and calibration.png."""
    import json

    from ase.io import read, write

    from compot.cli import main
    from compot.io import write_model
    from compot.trainer import Trainer

    frames = read(data_dir / "nb-mvl" / "Nb_AIMD.extxyz", "::10")          # 20 snapshots
    write(tmp_path / "aimd.extxyz", frames)
    (tmp_path / "config.yaml").write_text(
        "model:\n  species: [Nb]\n  expression: E[G4L2]\n  cutoff: 4.4\n"
        f"data:\n  train: [{tmp_path / 'aimd.extxyz'}]\n  validation_fraction: 0.2\n  seed: 0\n"
        "", encoding="utf-8")
    from compot.pipeline import fit_context
    ctx = fit_context(tmp_path / "model.params", tmp_path / "config.yaml")
    model = Model("E[G4L2]", ["Nb"], 4.4, {"b1.alpha": 0.4, "b1.beta": 1.5}, version=1)
    model.compute_scales([model.system(ctx.train)])
    Trainer(model, ctx.train, ctx.settings).solve(model.blocks("linear"))
    write_model(model, tmp_path / "model.params")
    out = tmp_path / "unc"
    assert main(["eval", str(tmp_path / "model.params"), str(tmp_path / "aimd.extxyz"), "--uncertainty",
                 "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = doc["uncertainty"]["configurations"]
    assert len(rows) == 20 and all(r["sigma_energy"] > 0 and r["sigma_force_rms"] > 0 for r in rows)
    assert doc["uncertainty"]["calibration"]["inflation_force"] > 0
    assert (out / "calibration.png").stat().st_size > 0 and "Spearman" in (out / "uncertainty.md").read_text()


def test_fit_report_has_the_calibration(data_dir, tmp_path):
    """compot fit puts the calibration on its validation split into report.md (section,
    table and calibration.png) and metrics.json (``uncertainty``: covariance and
    calibration), every number finite."""
    import json
    import re

    from ase.io import read, write

    from compot.cli import main

    frames = read(data_dir / "nb-mvl" / "Nb_AIMD.extxyz", "::8")           # 25 snapshots
    write(tmp_path / "aimd.extxyz", frames)
    (tmp_path / "config.yaml").write_text(
        "model:\n  species: [Nb]\n  expression: E[G4L2]\n  cutoff: 4.4\n"
        f"data:\n  train: [{tmp_path / 'aimd.extxyz'}]\n  validation_fraction: 0.2\n  seed: 0\n",
        encoding="utf-8")
    out = tmp_path / "run"
    assert main(["fit", str(tmp_path / "config.yaml"), "--max-evaluations", "2", "--nvt-steps", "10",
                 "--allow-unsafe", "--out", str(out)]) == 0
    unc = json.loads((out / "metrics.json").read_text())["uncertainty"]
    cal, cov = unc["calibration"], unc["covariance"]
    assert cal["n_configurations"] == 5 and cal["n_symmetric"] == 0
    numbers = [cal["inflation_force"], cal["inflation_energy"], *cal["spearman_force"], cal["raw_within_1"],
               cal["raw_within_2"], cal["inflated_within_1"], cal["inflated_within_2"], cov["s"]]
    assert all(isinstance(v, float) and np.isfinite(v) for v in numbers), numbers
    assert cal["inflation_force"] > 0 and -1 <= cal["spearman_force"][0] <= 1 and cov["rank"] > 0
    report = (out / "report.md").read_text()
    section = report.split("## Calibration on the validation split", 1)[1].split("\n## ", 1)[0]
    assert "![calibration](calibration.png)" in section and (out / "calibration.png").stat().st_size > 0
    k = float(re.search(r"^\| RMS of force z-scores = post-hoc inflation factor \| (\S+) \|$", section, re.M)[1])
    rho = float(re.search(r"^\| Spearman ρ of σ_F .* per configuration \| (\S+) \(p = (\S+)\) \|$", section, re.M)[1])
    assert k == pytest.approx(cal["inflation_force"], abs=6e-4) and rho == pytest.approx(cal["spearman_force"][0],
                                                                                          abs=6e-4)
