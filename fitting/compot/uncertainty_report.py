"""The uncertainty outputs of ``compot eval --uncertainty`` and ``compot validate
--uncertainty``: the covariance of a saved model from the configuration it was fitted
with, σ per configuration (JSON and a markdown report), the calibration figure on the
validation split, and derived quantities as value ± σ (:mod:`compot.uncertainty`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CompotError
from .model import Model
from .uncertainty import (QOI_UNITS, ParameterCovariance, calibration, model_qois, parameter_covariance,
                          predictive_sigma, qoi_sigma)

log = logging.getLogger(__name__)

__all__ = ["configuration_sigmas", "uncertainty_markdown", "calibration_figure",
           "calibration_markdown", "covariance_summary", "fit_calibration", "qoi_with_sigma", "format_qoi_sigma"]


def configuration_sigmas(cov: ParameterCovariance, model: Model, configs) -> list[dict]:
    """Per configuration: source, group, n_atoms, σ of the energy [eV, eV/atom], RMS and
    largest σ of the force components [eV/Å], σ of the stress [eV/Å³] (periodic cells),
    and the actual errors of the energy per atom and force RMS (the configurations carry
    DFT targets)."""
    from .evaluation import predict

    e, f = predict(model, configs)
    sig = predictive_sigma(cov, model, configs)
    out = []
    for c, ep, fp, s in zip(configs, e, f, sig):
        out.append({"source": c.source, "group": c.group, "n_atoms": c.n_atoms,
                    "sigma_energy": s["energy"], "sigma_energy_per_atom": s["energy_per_atom"],
                    "sigma_force_rms": s["force_rms"], "sigma_force_max": float(s["forces"].max()),
                    "sigma_stress": None if s["stress"] is None else s["stress"].tolist(),
                    "error_energy_per_atom": float((ep - c.energy) / c.n_atoms),
                    "error_force_rms": float(np.sqrt(np.mean((fp - c.forces) ** 2)))})
    return out


def calibration_figure(cal: dict, path, title: str) -> Path:
    """Two panels: the histogram of the force z-scores against N(0, 1) (raw and inflated),
    and σ_F against |F error| per configuration (RMS over components) with the Spearman ρ."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .plots import atomic_write_figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    k = cal["inflation_force"]
    z = cal["z_force"]
    lim = max(4.0, min(float(np.percentile(np.abs(z), 99.5)), 30.0))
    bins = np.linspace(-lim, lim, 81)
    ax1.hist(np.clip(z, -lim, lim), bins=bins, density=True, alpha=0.5, label="raw z = ΔF/σ")
    ax1.hist(np.clip(z / k, -lim, lim), bins=bins, density=True, alpha=0.5, label=f"inflated z/{k:.2f}")
    x = np.linspace(-lim, lim, 400)
    ax1.plot(x, np.exp(-x ** 2 / 2) / np.sqrt(2 * np.pi), "k-", lw=1, label="N(0, 1)")
    ax1.set_xlabel("force z-score")
    ax1.set_ylabel("density")
    ax1.legend(fontsize=7)
    s, e = cal["sigma_force_rms"], cal["error_force_rms"]
    ax2.loglog(s, e, "o", ms=4)
    lo, hi = min(s.min(), e.min()) * 0.8, max(s.max() * k, e.max()) * 1.25
    ax2.plot([lo, hi], [lo, hi], "k:", lw=1, label="error = σ")
    ax2.plot([lo, hi], [lo * k, hi * k], "r--", lw=1, label=f"error = {k:.2f} σ")
    ax2.set_xlabel("σ_F per configuration (RMS) [eV/Å]")
    ax2.set_ylabel("|F error| per configuration (RMS) [eV/Å]")
    ax2.set_title(f"Spearman ρ = {cal['spearman_force'][0]:.3f}", fontsize=9)
    ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    atomic_write_figure(fig, path)
    return Path(path)


def calibration_summary(cal: dict) -> dict:
    """The scalar part of :func:`compot.uncertainty.calibration`'s result (JSON)."""
    return {k: v for k, v in cal.items() if not isinstance(v, np.ndarray)}


def covariance_summary(cov: ParameterCovariance) -> dict:
    """:meth:`ParameterCovariance.to_json` without the eigenvalue list (JSON)."""
    return {k: v for k, v in cov.to_json().items() if k != "eigenvalues_normalised"}


def calibration_markdown(cal: dict, plot: Path | None) -> list[str]:
    """The "Calibration on the validation split" section (markdown lines): the post-hoc
    inflation factor, the z-score shares, the Spearman ρ of σ_F and |F error| per
    configuration, and the figure of :func:`calibration_figure`."""
    k = cal["inflation_force"]
    rho, p = cal["spearman_force"]
    n_free = cal["n_configurations"] - cal["n_symmetric"]
    spearman = (f"{rho:.3f} (p = {p:.2g})" if np.isfinite(rho) else
                f"not defined ({n_free} configuration(s) with free forces; it needs 3)")
    lines = ["## Calibration on the validation split", "",
             f"{cal['n_configurations']} configurations, {len(cal['z_force'])} force components "
             f"({cal['n_symmetric']} configurations whose forces are fixed by symmetry left out of the "
             "force statistics).", "",
             "| quantity | value |", "|---|---|",
             f"| RMS of force z-scores = post-hoc inflation factor | {k:.3f} |",
             f"| RMS of energy z-scores | {cal['inflation_energy']:.3f} |",
             f"| raw: share of \\|z_F\\| ≤ 1, ≤ 2 | {cal['raw_within_1']:.3f}, {cal['raw_within_2']:.3f} |",
             f"| inflated: share of \\|z_F\\| ≤ 1, ≤ 2 (normal: 0.683, 0.954) | "
             f"{cal['inflated_within_1']:.3f}, {cal['inflated_within_2']:.3f} |",
             f"| Spearman ρ of σ_F and \\|F error\\| per configuration | {spearman} |", "",
             f"The raw bound is optimistic by a factor {k:.2f} (model error is not noise); "
             f"multiply σ by {k:.2f} for calibrated force uncertainties.", ""]
    if plot:
        lines += [f"![calibration]({Path(plot).name})", ""]
    return lines


def fit_calibration(model: Model, train, validation, settings, out_dir) -> tuple[dict, list[str], Path | None]:
    """The uncertainty calibration of ``compot fit``: Σ = s² I⁺ from the training split
    with the fit's settings, :func:`compot.uncertainty.calibration` on the validation
    split, ``calibration.png`` in ``out_dir``.

    Returns
    -------
    (metrics entry, report lines, plot path or None). The entry holds ``covariance``
    (:func:`covariance_summary`) and ``calibration`` (:func:`calibration_summary`:
    ``inflation_force``, ``spearman_force`` [ρ, p], ...), or ``skipped`` with the reason
    when there is no validation split or no covariance (the fit itself is never failed
    by its calibration).
    """
    from .uncertainty import UncertaintyError

    if not validation:
        why = "no validation split (data.validation_fraction 0)"
        return {"skipped": why}, ["## Calibration on the validation split", "", f"Not computed: {why}.", ""], None
    try:
        cov = parameter_covariance(model, train, settings)
        cal = calibration(cov, model, validation)
    except UncertaintyError as exc:
        log.warning("uncertainty calibration skipped: %s", exc)
        return ({"skipped": str(exc)},
                ["## Calibration on the validation split", "", f"Not computed: {exc}.", ""], None)
    plot = calibration_figure(cal, Path(out_dir) / "calibration.png",
                              f"{model.expression}: calibration on the validation split")
    lines = calibration_markdown(cal, plot)
    lines[2:2] = [f"Linearised (Cramér–Rao) uncertainty of the linear coefficients, Σ = s² I⁺ from the "
                  f"training split (compot.uncertainty; `compot eval --uncertainty` gives σ per "
                  f"configuration): {cov.rank} of {len(cov.columns)} directions significant, "
                  f"s = {np.sqrt(cov.s2):.4g}.", ""]
    return {"covariance": covariance_summary(cov), "calibration": calibration_summary(cal)}, lines, plot


def uncertainty_markdown(model: Model, cov: ParameterCovariance, rows: list[dict], cal: dict | None,
                         plot: Path | None) -> str:
    """The report of ``compot eval --uncertainty``: the covariance, the calibration on the
    validation split and σ per configuration."""
    lines = [f"# Prediction uncertainty: {model.expression}", "",
             "Linearised (Cramér–Rao) uncertainty of the linear coefficients, Σ = s² I⁺ "
             "(compot.uncertainty): "
             f"{cov.n_rows} weighted rows, {cov.rank} of {len(cov.columns)} directions significant "
             f"(λ ≥ {cov.info.get('sc_ratio', 1e-15):.0e} λ_max of the column-normalised FIM), "
             f"s = {np.sqrt(cov.s2):.4g}. Nonlinear parameters held fixed.", ""]
    if cal:
        lines += calibration_markdown(cal, plot) + ["The σ columns below are raw.", ""]
    lines += ["## σ per configuration", "",
              "| source | atoms | σ_E [meV/atom] | ΔE [meV/atom] | σ_F RMS [eV/Å] | ΔF RMS [eV/Å] |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['source']} | {r['n_atoms']} | {1e3 * r['sigma_energy_per_atom']:.3f} | "
                     f"{1e3 * r['error_energy_per_atom']:.3f} | {r['sigma_force_rms']:.4f} | "
                     f"{r['error_force_rms']:.4f} |")
    return "\n".join(lines) + "\n"


def qoi_with_sigma(cov: ParameterCovariance, model: Model, symbol: str, kind: str, a_start: float,
                   surfaces=()) -> dict:
    """Derived quantities of :func:`compot.uncertainty.model_qois` with σ: name ->
    {value, sigma, unit}."""
    values, sig, _ = qoi_sigma(cov, model, lambda m: model_qois(m, symbol, kind, a_start, surfaces))
    return {k: {"value": values[k], "sigma": sig[k], "unit": QOI_UNITS.get(k, "J/m²")} for k in values}


def format_qoi_sigma(q: dict, dft: dict | None = None, inflation: float = 1.0) -> str:
    """One line per quantity: value ± σ (and ± k σ with the inflation factor k), DFT when known."""
    lines = []
    for k, v in q.items():
        s = f"  {k:14s} {v['value']:10.4f} ± {v['sigma']:.4f}"
        if inflation != 1.0:
            s += f" (± {inflation * v['sigma']:.4f} inflated ×{inflation:.2f})"
        s += f" {v['unit']}"
        if dft and dft.get(k) is not None:
            s += f"   DFT {dft[k]:.4f}"
        lines.append(s)
    return "\n".join(lines)
