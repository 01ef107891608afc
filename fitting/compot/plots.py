"""Every figure compot draws, and the one atomic figure writer.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure`` on
an Agg canvas), so drawing never touches pyplot's global state or the user's
backend, and every PNG is written by :func:`atomic_write_figure`.

* :func:`parity_plots` (:func:`parity_figure`) — model against DFT energies and
  forces, coloured by group (``compot fit``);
* :func:`plot_sanity` — one figure per physical sanity check (MODEL_SPEC §9–10);
* :func:`plot_spectra` — FIM eigenspectra in the style of paper Fig. 4(b);
* :func:`plot_design` (:func:`design_figure`) — design candidates' force error
  against κ and size, every label placed clear of the others.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import mpmath
import numpy as np

from .data.weighted import GPA
from .errors import FitError

if TYPE_CHECKING:
    from .fim import FisherSpectrum

log = logging.getLogger(__name__)

__all__ = ["atomic_write_figure", "parity_figure", "parity_plots", "plot_sanity", "plot_spectra", "design_figure",
           "plot_design"]


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


#: Marker of each split in the parity plots (the colour is the group's).
_SPLIT_MARKERS = {"train": "o", "validation": "^", "test": "s"}


def _group_colours(groups: list[str]) -> dict:
    """A distinct colour per group name: tab10 up to 10 groups, tab20 up to 20, else viridis."""
    from matplotlib import colormaps

    n = len(groups)
    if n <= 10:
        colours = [colormaps["tab10"](k) for k in range(n)]
    elif n <= 20:
        colours = [colormaps["tab20"](k) for k in range(n)]
    else:
        colours = [colormaps["viridis"](k / (n - 1)) for k in range(n)]
    return dict(zip(groups, colours))


def _wrapped(title: str, fig, fontsize: float) -> str:
    """``title`` broken into lines that fit the figure's width (about 0.55 em per character)."""
    width_pt = fig.get_figwidth() * 72.0 * 0.92
    return textwrap.fill(title, max(20, int(width_pt / (0.55 * fontsize))))


def parity_figure(splits: dict, kind: str, title: str):
    """A parity plot of one quantity, coloured by group, one marker per split.

    Parameters
    ----------
    splits : dict name → (configs, predicted energies, predicted forces[, predicted stresses])
        ``configs`` a list of :class:`compot.data.Configuration`; energies [eV],
        shape (n_configurations,); forces a list of arrays of shape (n_atoms, 3)
        [eV/Å]; stresses (needed for ``kind="stress"``) a list of arrays of shape
        (6,) [eV/Å³] or None. Names ``train``, ``validation``, ``test`` get the markers o, ^, s.
    kind : {"energy", "force", "stress"}
        Energy per atom [eV/atom], force components [eV/Å] or stress components [GPa]
        (of the configurations with a reference and a predicted stress).
    title : str
        Plot title (the model expression); wrapped to the figure's width.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; its legend lists every group (colour) and every split (marker,
        with its RMSE), outside the axes on the right.

    Raises
    ------
    ValueError
        ``kind`` not ``energy``, ``force`` or ``stress``.
    """
    if kind not in ("energy", "force", "stress"):
        raise ValueError(f"parity_figure: kind must be 'energy', 'force' or 'stress', found {kind!r}")
    from matplotlib.lines import Line2D

    groups = sorted({c.group for configs, *_ in splits.values() for c in configs})
    colour = _group_colours(groups)
    fig, ax = _figure((7.4, 5.0))
    lo, hi = np.inf, -np.inf
    split_handles = []
    for name, (configs, e, f, *stresses) in splits.items():
        if kind == "stress":
            s = stresses[0] if stresses else [None] * len(configs)
            have = [m for m, c in enumerate(configs) if c.stress is not None and s[m] is not None]
            configs = [configs[m] for m in have]
        if not configs:
            continue
        marker = _SPLIT_MARKERS.get(name, "D")
        if kind == "energy":
            n = np.array([c.n_atoms for c in configs], dtype=float)
            x = np.array([c.energy for c in configs]) / n
            y = np.asarray(e, dtype=float) / n
            member = np.array([c.group for c in configs])
            label = f"{name} (RMSE {np.sqrt(np.mean((x - y) ** 2)) * 1000:.1f} meV/atom)"
        elif kind == "stress":
            x = GPA * np.concatenate([c.stress for c in configs])
            y = GPA * np.concatenate([np.asarray(s[m], dtype=float) for m in have])
            member = np.concatenate([np.full(6, c.group) for c in configs])
            label = f"{name} (RMSE {np.sqrt(np.mean((x - y) ** 2)):.2f} GPa)"
        else:
            x = np.concatenate([c.forces.ravel() for c in configs])
            y = np.concatenate([np.asarray(fi, dtype=float).ravel() for fi in f])
            member = np.concatenate([np.full(3 * c.n_atoms, c.group) for c in configs])
            label = f"{name} (RMSE {np.sqrt(np.mean((x - y) ** 2)):.3f} eV/Å)"
        for g in groups:
            sel = member == g
            if sel.any():
                ax.scatter(x[sel], y[sel], s=5 if kind == "force" else 16, alpha=0.6, color=colour[g],
                           marker=marker, lw=0, rasterized=True, label=f"_{name} {g}")
        split_handles.append(Line2D([], [], ls="none", marker=marker, color="0.3", label=label))
        lo, hi = min(lo, x.min(), y.min()), max(hi, x.max(), y.max())
    if np.isfinite(lo):
        pad = 0.03 * (hi - lo)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8)
    unit = {"energy": "eV/atom", "force": "eV/Å", "stress": "GPa"}[kind]
    what = {"energy": "energy per atom", "force": "force component", "stress": "stress component"}[kind]
    ax.set_xlabel(f"DFT {what} [{unit}]")
    ax.set_ylabel(f"model {what} [{unit}]")
    ax.set_title(_wrapped(title, fig, 10), fontsize=10)
    group_handles = [Line2D([], [], ls="none", marker="o", color=colour[g], label=g) for g in groups]
    ax.legend(handles=group_handles + split_handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0.0, title="group / split", title_fontsize=7)
    fig.tight_layout()
    return fig


def parity_plots(splits: dict, out_dir: str | os.PathLike, title: str) -> list[Path]:
    """Energy-per-atom and force-component parity plots (PNG, written atomically),
    coloured by group (:func:`parity_figure`).

    Parameters
    ----------
    splits : dict name → (configs, predicted energies, predicted forces[, predicted stresses])
    out_dir : folder for ``parity_energy.png``, ``parity_force.png`` and, when some
        configuration has a reference and a predicted stress, ``parity_stress.png``
    title : plot title (the model expression)

    Returns
    -------
    list of Path — the files written.
    """
    out_dir = Path(out_dir)
    paths = []
    kinds = ["energy", "force"]
    if any(len(v) > 3 and any(c.stress is not None and s is not None for c, s in zip(v[0], v[3], strict=True))
           for v in splits.values()):
        kinds.append("stress")
    for kind in kinds:
        path = out_dir / f"parity_{kind}.png"
        atomic_write_figure(parity_figure(splits, kind, title), path)
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


def _overlap(a, b) -> float:
    """Area [px²] shared by two matplotlib bounding boxes."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels(fig, ax, xs, ys, labels, fontsize: float = 6.5, obstacles=()) -> list:
    """Annotate the points (xs[i], ys[i]) with labels[i], each placed where it overlaps
    no label placed before it, no marker, no obstacle ((x, y, half-width [px]) in data
    coordinates, e.g. a circle around a point), and stays inside the axes.

    Candidate positions are tried nearest first, on rings of offsets around the
    point; a label placed away from its point gets a thin leader line. Where no
    candidate is free, the one with the least overlap is taken.

    Returns
    -------
    list of matplotlib.text.Annotation, in the order of ``labels``.
    """
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    marks = []
    for x, y in zip(xs, ys):
        px, py = ax.transData.transform((x, y))
        marks.append(Bbox.from_extents(px - 4, py - 4, px + 4, py + 4))
    for x, y, half in obstacles:
        px, py = ax.transData.transform((x, y))
        marks.append(Bbox.from_extents(px - half, py - half, px + half, py + half))
    offsets = []
    for radius in (5, 11, 18, 26, 36, 48, 62):
        for angle in range(0, 360, 30):
            t = math.radians(angle)
            offsets.append((radius * 1.6 * math.cos(t), radius * math.sin(t)))
    placed, out = [], []
    order = sorted(range(len(labels)), key=lambda i: (ys[i], xs[i]))
    texts = [None] * len(labels)
    for i in order:
        best = None
        for dx, dy in offsets:
            ha = "left" if dx >= 0 else "right"
            va = "bottom" if dy >= 0 else "top"
            ann = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                              fontsize=fontsize, ha=ha, va=va)
            box = ann.get_window_extent(renderer)
            clash = sum(_overlap(box, b) for b in placed) + sum(_overlap(box, m) for m in marks)
            outside = (box.x0 < inside.x0) or (box.x1 > inside.x1) or (box.y0 < inside.y0) or (box.y1 > inside.y1)
            cost = clash + (1e6 if outside else 0.0)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, ann, box, (dx, dy))
            else:
                ann.remove()
            if cost == 0.0:
                break
        _, ann, box, (dx, dy) = best
        if math.hypot(dx, dy) > 12:
            ann.remove()
            ann = ax.annotate(labels[i], (xs[i], ys[i]), xytext=(dx, dy), textcoords="offset points",
                              fontsize=fontsize, ha="left" if dx >= 0 else "right",
                              va="bottom" if dy >= 0 else "top",
                              arrowprops=dict(arrowstyle="-", lw=0.4, color="0.5", shrinkA=0, shrinkB=3))
        placed.append(box)
        texts[i] = ann
    out.extend(texts)
    return out


def design_figure(rows: list[dict], chosen: dict | None, xkey: str = "log10_kappa_total"):
    """Validation force RMSE of the design candidates against κ or size.

    Parameters
    ----------
    rows : list of dict
        Candidates with ``configuration``, ``stage`` (``single`` or ``dual``),
        ``linear``, ``nonlinear``, ``rmse_force`` [eV/Å], ``log10_kappa_total`` and
        ``sanity_passed``; rows without a finite value on either axis are left out
        (κ = ∞, a singular FIM: the legend counts them).
    chosen : dict or None
        The chosen candidate (circled).
    xkey : {"log10_kappa_total", "n_params"}
        The x axis: log10 of the FIM condition number, or linear + nonlinear
        parameters.

    Returns
    -------
    matplotlib.figure.Figure
        Blue single terms, red dual terms, × for a candidate that fails a sanity
        check, a legend saying so, and every label placed clear of the others.
    """
    from matplotlib.lines import Line2D

    xlabel = {"log10_kappa_total": "log10 κ (FIM condition number)",
              "n_params": "number of parameters (linear + nonlinear)"}[xkey]

    def x_of(r):
        x = (r["linear"] + r["nonlinear"]) if xkey == "n_params" else r.get(xkey)
        return x if x is not None and np.isfinite(x) else None

    fig, ax = _figure((9.0, 6.0))
    shown = [r for r in rows if x_of(r) is not None and r.get("rmse_force") is not None]
    singular = [r for r in rows if xkey == "log10_kappa_total" and r.get(xkey) is not None
                and r.get("rmse_force") is not None and x_of(r) is None]
    for r in shown:
        colour = "tab:blue" if r["stage"] == "single" else "tab:red"
        marker = "o" if r.get("sanity_passed") in (True, None) else "x"
        ax.scatter(x_of(r), r["rmse_force"], c=colour, marker=marker, s=30)
    handles = [Line2D([], [], ls="none", marker="o", color="tab:blue", label="single term"),
               Line2D([], [], ls="none", marker="o", color="tab:red", label="dual term"),
               Line2D([], [], ls="none", marker="x", color="0.3", label="fails a sanity check")]
    if singular:
        handles.append(Line2D([], [], ls="none", label=f"not shown, κ = ∞: {len(singular)}"))
    if chosen and chosen.get("rmse_force") is not None and x_of(chosen) is not None:
        ax.scatter(x_of(chosen), chosen["rmse_force"], s=200, facecolors="none", edgecolors="k")
        handles.append(Line2D([], [], ls="none", marker="o", ms=12, mfc="none", color="k", label="chosen"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation force RMSE [eV/Å]")
    ax.set_title("design candidates", fontsize=10)
    ax.margins(x=0.08, y=0.08)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    if shown:
        circle = [(x_of(chosen), chosen["rmse_force"], 15)] if chosen in shown else []
        _place_labels(fig, ax, [x_of(r) for r in shown], [r["rmse_force"] for r in shown],
                      [r["configuration"] for r in shown], obstacles=circle)
    return fig


def plot_design(rows: list[dict], chosen: dict | None, out_dir: Path) -> list[Path]:
    """``design_error_vs_kappa.png`` and ``design_error_vs_size.png`` (:func:`design_figure`)
    in ``out_dir``, written atomically; returns their paths."""
    paths = []
    for xkey, name in (("log10_kappa_total", "design_error_vs_kappa.png"), ("n_params", "design_error_vs_size.png")):
        path = Path(out_dir) / name
        atomic_write_figure(design_figure(rows, chosen, xkey), path)
        paths.append(path)
    return paths


def plot_spectra(spectra: Mapping[str, "FisherSpectrum"], path, sc_ratio: float = 1e-15,
                 *, title: str | None = None):
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
        Wrapped to the figure's width.

    Returns
    -------
    matplotlib.figure.Figure
        The figure written (for inspection).
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
        ax.set_title(_wrapped(title, fig, 10), fontsize=10)
    fig.tight_layout()

    atomic_write_figure(fig, path, dpi=150)
    log.info("plot_spectra: wrote %s (%d models)", path, len(cols))
    return fig


def plot_hot_prior(report: dict, path) -> Path | None:
    """The hot-MD prior's runs (:func:`compot.hot_prior.harden`'s report): one panel per
    element, the energy per atom [eV/atom] of every round's run against time [fs], with
    the equipartition bound e0 + 3/2 k_B T; PNG written atomically to ``path``. None
    without rounds."""
    rounds = report.get("rounds") or []
    if not rounds:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .hot_prior import FRICTION

    elements = list(rounds[0]["elements"])
    fig = Figure(figsize=(4.0 * len(elements), 3.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(elements), squeeze=False)[0]
    for ax, s in zip(axes, elements):
        for r in rounds:
            e = r["elements"].get(s, {})
            if e.get("t"):
                y = np.array([np.nan if v is None else v for v in e["energy"]], dtype=float)
                ax.plot(e["t"], y, lw=1, label=f"round {r['round']}: {e['below']} below, {e['added']} added")
        bound = rounds[-1]["elements"][s]["bound"]
        ax.axhline(bound, color="k", ls="--", lw=0.8, label=f"e0 + 3/2 kT = {bound:.3f}")
        ax.axvspan(0, 5.0 / FRICTION, color="0.85", alpha=0.5, lw=0, label="thermostat relaxing (not used)")
        ax.set_title(f"{s} at {rounds[0]['elements'][s]['temperature']:.0f} K", fontsize=9)
        ax.set_xlabel("time [fs]")
        ax.set_ylabel("energy [eV/atom]")
        ax.legend(fontsize=6)
    fig.suptitle("hot-MD prior: NVT of each element's crystal (and the random alloy) per round", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    atomic_write_figure(fig, path, dpi=110)
    return path
