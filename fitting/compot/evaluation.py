"""Predictions of a model on configurations, error metrics and parity plots."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .io import atomic_write_figure
from .metrics import error_metrics, metrics_by_group
from .model import Model

__all__ = ["predict", "evaluate_split", "parity_plots"]


def predict(model: Model, configs, batch_atoms: int = 3000):
    """Energies [eV] and forces [eV/Å] of ``configs``, evaluated in batches.

    Returns
    -------
    energies : ndarray, shape (n_configurations,)
    forces : list of ndarray, each shape (n_atoms, 3)
    """
    energies, forces = [], []
    batch: list = []
    natoms = 0

    def flush():
        if not batch:
            return
        p = model.evaluate(model.system(batch, sources=[c.source for c in batch]), virial=False)
        energies.extend(p.energy_m.tolist())
        o = 0
        for c in batch:
            forces.append(p.forces_nc[o:o + c.n_atoms])
            o += c.n_atoms

    for c in configs:
        batch.append(c)
        natoms += c.n_atoms
        if natoms >= batch_atoms:
            flush()
            batch, natoms = [], 0
    flush()
    return np.array(energies), forces


def evaluate_split(model: Model, configs) -> tuple[dict, dict, np.ndarray, list]:
    """Metrics (MODEL_SPEC §7) of a split, overall and per group, with predictions."""
    e, f = predict(model, configs)
    return error_metrics(configs, e, f), metrics_by_group(configs, e, f), e, f


def parity_plots(splits: dict, out_dir: str | os.PathLike, title: str) -> list[Path]:
    """Energy-per-atom and force-component parity plots (PNG, written atomically).

    Parameters
    ----------
    splits : dict name → (configs, predicted energies, predicted forces)
    out_dir : folder for ``parity_energy.png`` and ``parity_force.png``
    title : plot title (the model expression)
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    colours = {"train": "tab:blue", "validation": "tab:orange", "test": "tab:green"}
    for kind in ("energy", "force"):
        fig, ax = plt.subplots(figsize=(5.2, 5))
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
        plt.close(fig)
        paths.append(path)
    return paths
