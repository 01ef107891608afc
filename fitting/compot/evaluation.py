"""Predictions of a model on configurations and their error metrics (parity plots: :mod:`compot.plots`)."""

from __future__ import annotations


import numpy as np

from .metrics import error_metrics, metrics_by_group
from .model import Model

__all__ = ["predict", "evaluate_split"]


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


