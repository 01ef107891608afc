"""Every figure compot draws, and the one atomic figure writer.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure`` on
an Agg canvas), so drawing never touches pyplot's global state or the user's
backend, and every PNG is written by :func:`atomic_write_figure`.

* :func:`parity_plots` — model against DFT energies and forces (``compot fit``);
* :func:`plot_sanity` — one figure per physical sanity check (MODEL_SPEC §9–10);
* :func:`plot_spectra` — FIM eigenspectra in the style of paper Fig. 4(b);
* :func:`plot_design` — design candidates' force error against κ and size.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import mpmath
import numpy as np

from .errors import FitError

if TYPE_CHECKING:
    from .fim import FisherSpectrum

log = logging.getLogger(__name__)

__all__ = ["atomic_write_figure", "parity_plots", "plot_sanity", "plot_spectra", "plot_design"]


def _figure(figsize: tuple):
    """A figure with one axes on an Agg canvas: (figure, axes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def atomic_write_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write a matplotlib figure to ``path`` as PNG atomically (temporary file in the
    same folder, then ``os.replace``): a reader never sees a half-written file.

    Raises
    ------
    OSError
        When the folder is missing or not writable (no temporary file is left behind).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def parity_plots(splits: dict, out_dir: str | os.PathLike, title: str) -> list[Path]:
    """Energy-per-atom and force-component parity plots (PNG, written atomically).

    Parameters
    ----------
    splits : dict name → (configs, predicted energies, predicted forces)
    out_dir : folder for ``parity_energy.png`` and ``parity_force.png``
    title : plot title (the model expression)
    """
    out_dir = Path(out_dir)
    paths = []
    colours = {"train": "tab:blue", "validation": "tab:orange", "test": "tab:green"}
    for kind in ("energy", "force"):
        fig, ax = _figure((5.2, 5))
        lo, hi = np.inf, -np.inf
        for name, (configs, e, f) in splits.items():
            if not configs:
                continue
            if kind == "energy":
                n = np.array([c.n_atoms for c in configs], dtype=float)
                x = np.array([c.energy for c in configs]) / n
                y = np.asarray(e) / n
                rmse = np.sqrt(np.mean((x - y) ** 2)) * 1000
                label = f"{name} (RMSE {rmse:.1f} meV/atom)"
            else:
                x = np.concatenate([c.forces.ravel() for c in configs])
                y = np.concatenate([fi.ravel() for fi in f])
                rmse = np.sqrt(np.mean((x - y) ** 2))
                label = f"{name} (RMSE {rmse:.3f} eV/Å)"
            ax.scatter(x, y, s=4, alpha=0.5, color=colours.get(name), label=label, rasterized=True)
            lo, hi = min(lo, x.min(), y.min()), max(hi, x.max(), y.max())
        if np.isfinite(lo):
            pad = 0.03 * (hi - lo)
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8)
        unit = "eV/atom" if kind == "energy" else "eV/Å"
        what = "energy per atom" if kind == "energy" else "force component"
        ax.set_xlabel(f"DFT {what} [{unit}]")
        ax.set_ylabel(f"model {what} [{unit}]")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        path = out_dir / f"parity_{kind}.png"
        atomic_write_figure(fig, path)
        paths.append(path)
    return paths


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def plot_sanity(rep: dict, path, title: str) -> list[Path]:
    """One figure per check (PNG, written atomically), named ``<stem>_<check>.png``
    next to ``path``; returns their paths."""
    path = Path(path)
    out = []
    for name, c in rep.get("checks", {}).items():
        p = c["plot"]
        mark = {True: "pass", False: "FAIL", None: "skipped"}[c["passed"]]
        fig, ax = _figure((6, 4))
        if p["kind"] == "nvt":
            for run in p["runs"]:
                line, = ax.plot(run["t"], run["temperature"], "-", lw=1, label=f"seed {run['seed']}"
                                + (f" lost at {run['t'][-1]:g} fs" if run["lost"] else ""))
                if run["lost"] and run["t"]:
                    ax.plot(run["t"][-1], min(run["temperature"][-1], 1.15 * p["t_max"]), "x", ms=9,
                            color=line.get_color())
            if p.get("target"):
                ax.axhline(p["target"], color="k", ls="--", lw=0.8, label=f"target {p['target']:.0f} K")
                ax.axhline(p["t_max"], color="tab:red", ls=":", lw=0.8, label="lost above")
                ax.set_ylim(0, 1.2 * p["t_max"])
            ax.legend(fontsize=7)
        else:
            x, y = np.array(p["x"]), np.array(p["y"], dtype=float)
            ax.plot(x, y, "o-" if p["kind"] == "energy_volume" else "-", ms=2)
            fin = y[np.isfinite(y)]
            if p["kind"] == "energy_volume":
                ax.axvspan(0.96, 1.04, color="tab:green", alpha=0.15, label="typical range of the data (±4 %)")
                lo = np.nanmin(fin) if len(fin) else 0
                ax.set_ylim(lo - 0.5, lo + max(5.0, min(50.0, np.nanpercentile(fin - lo, 70) * 2 if len(fin) else 5)))
                ax.legend(fontsize=7)
            else:
                if "threshold" in p:
                    ax.axvline(p["threshold"], color="tab:red", ls=":", lw=1, label=p.get("threshold_label"))
                    ax.legend(fontsize=7)
                if len(fin):
                    lo, hi = fin.min(), np.percentile(fin, 60)
                    ax.set_ylim(lo - 0.1 * abs(hi - lo) - 0.5, max(hi, lo) + abs(hi - lo) + 5)
        ax.set_xlabel(p["xlabel"])
        ax.set_ylabel(p["ylabel"])
        ax.set_title(f"{name}: {mark}\n{c['detail'][:110]}", fontsize=8)
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        f = path.parent / f"{path.stem}_{_safe(name)}.png"
        atomic_write_figure(fig, f, dpi=110)
        out.append(f)
    return out


def plot_design(rows: list[dict], chosen: dict | None, out_dir: Path) -> list[Path]:
    paths = []
    for xkey, xlabel, name in (("log10_kappa_total", "log10 κ (FIM condition number)", "design_error_vs_kappa.png"),
                               ("n_params", "number of parameters (linear + nonlinear)", "design_error_vs_size.png")):
        fig, ax = _figure((7, 5))
        for r in rows:
            x = (r["linear"] + r["nonlinear"]) if xkey == "n_params" else r.get(xkey)
            if x is None or r.get("rmse_force") is None:
                continue
            colour = "tab:blue" if r["stage"] == "single" else "tab:red"
            marker = "o" if r.get("sanity_passed") in (True, None) else "x"
            ax.scatter(x, r["rmse_force"], c=colour, marker=marker, s=30)
            ax.annotate(r["configuration"], (x, r["rmse_force"]), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
        if chosen and chosen.get("rmse_force") is not None:
            x = (chosen["linear"] + chosen["nonlinear"]) if xkey == "n_params" else chosen.get(xkey)
            if x is not None:
                ax.scatter(x, chosen["rmse_force"], s=200, facecolors="none", edgecolors="k", label="chosen")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("validation force RMSE [eV/Å]")
        ax.set_title("design candidates (blue: single term, red: dual term, x: fails sanity)", fontsize=9)
        if chosen:
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / name
        atomic_write_figure(fig, path)
        paths.append(path)
    return paths


def plot_spectra(spectra: Mapping[str, "FisherSpectrum"], path, sc_ratio: float = 1e-15,
                 *, title: str | None = None) -> None:
    """Eigenspectra side by side, in the style of paper Fig. 4(b).

    Each model is a column of horizontal ticks at ``log10(λ_i / λ_max)``;
    the "significant correlations" band ``sc_ratio ≤ λ/λ_max ≤ 1`` is shaded
    and the number of eigenvalues inside it is written above each column.
    Eigenvalues not distinguishable from 0 are drawn as triangles at the
    bottom edge.

    Parameters
    ----------
    spectra : mapping of str to FisherSpectrum
        Label → spectrum, plotted left to right in mapping order.
    path : str or os.PathLike
        PNG file to write; written atomically (temporary file + ``os.replace``).
    sc_ratio : float
        Lower edge of the shaded SC band.
    title : str, optional
    """
    if not spectra:
        raise FitError("plot_spectra: expected at least one spectrum, got none")
    fig, ax = _figure((max(4.0, 1.1 * len(spectra) + 2.0), 5.0))
    sc_log = math.log10(sc_ratio)
    lows = [sc_log]
    cols = []
    for x, (label, spec) in enumerate(spectra.items()):
        lmax = spec.eigenvalues[0] if spec.eigenvalues else mpmath.mpf(0)
        logs, zeros = [], 0
        for v, ok, r in zip(spec.eigenvalues, spec.eigenvalues_resolved,
                            spec.eigenvalue_radii):
            if lmax > 0 and v > 0 and (ok or v > r):
                logs.append(float(mpmath.log10(v / lmax)))
            else:
                zeros += 1
        cols.append((x, label, logs, zeros, spec.n_significant))
        lows.extend(logs)
    ymin = math.floor(min(lows)) - 2
    ax.axhspan(sc_log, 0.0, color="tab:green", alpha=0.15, lw=0,
               label=f"SC region: λ ≥ {sc_ratio:g}·λ_max")
    for x, label, logs, zeros, n_sig in cols:
        ax.hlines(logs, x - 0.3, x + 0.3, color="tab:blue", lw=1.2)
        if zeros:
            ax.plot([x], [ymin + 0.5], marker="v", color="tab:red", ls="none")
            ax.annotate(f"{zeros}× λ≈0", (x, ymin + 0.5), xytext=(0, 8),
                        textcoords="offset points", ha="center", fontsize=7, color="tab:red")
        ax.annotate(str(n_sig), (x, 0.0), xytext=(0, 4), textcoords="offset points",
                    ha="center", fontsize=8)
    ax.set_xticks([c[0] for c in cols])
    ax.set_xticklabels([c[1] for c in cols], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.7, len(cols) - 0.3)
    ax.set_ylim(ymin, 2.0)
    ax.set_xlabel("model")
    ax.set_ylabel("log$_{10}$(λ / λ$_{max}$)  [dimensionless]")
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()

    atomic_write_figure(fig, path, dpi=150)
    log.info("plot_spectra: wrote %s (%d models)", path, len(cols))
