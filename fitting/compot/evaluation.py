"""Predictions of a model on configurations and their error metrics (parity plots: :mod:`compot.plots`)."""

from __future__ import annotations


import numpy as np

from .metrics import error_metrics, metrics_by_group
from .model import Model
from .neighbours import VOIGT_PAIRS

__all__ = ["predict", "evaluate_split"]


def predict(model: Model, configs, batch_atoms: int = 3000, stress: bool = False):
    """Energies [eV] and forces [eV/Å] (and stresses) of ``configs``, evaluated in batches.

    Returns
    -------
    energies : ndarray, shape (n_configurations,)
    forces : list of ndarray, each shape (n_atoms, 3)
    stresses : list of (ndarray, shape (6,), or None) — only with ``stress``: σ = W/V
        [eV/Å³], Voigt order (xx, yy, zz, yz, xz, xy), ASE sign; None without a periodic cell
    """
    energies, forces, stresses = [], [], []
    batch: list = []
    natoms = 0

    def flush():
        if not batch:
            return
        sysm = model.system(batch, sources=[c.source for c in batch])
        p = model.evaluate(sysm, virial=stress)
        energies.extend(p.energy_m.tolist())
        if stress:
            for W, vol in zip(p.virial_mcc, sysm.volume_m, strict=True):
                stresses.append(np.array([W[a, b] for a, b in VOIGT_PAIRS]) / vol if vol > 0 else None)
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
    if stress:
        return np.array(energies), forces, stresses
    return np.array(energies), forces


def evaluate_split(model: Model, configs, return_stress: bool = False) -> tuple:
    """Metrics (MODEL_SPEC §7, with stress and the energy after per-species offsets) of a
    split, overall and per group, with the predicted energies and forces, and with
    ``return_stress`` the predicted stresses as a fifth element (:func:`predict`)."""
    e, f, s = predict(model, configs, stress=True)
    out = (error_metrics(configs, e, f, s), metrics_by_group(configs, e, f, s), e, f)
    return out + (s,) if return_stress else out


