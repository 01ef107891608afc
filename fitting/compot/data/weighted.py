"""Weighted training data: batches of configurations with their targets and row weights.

The loss of a fit (paper Eq. 26) is

    L = Σ_m w_E,m (E_m − Ê_m)² + Σ_m Σ_i w_F,m |F_mi − F̂_mi|²,

with w_E,m = energy_weight · g_m / N_m² (the 1/N_m² only with ``energy_per_atom``)
and w_F,m = force_weight · g_m, g_m the configuration's weight times its group's
``group_weights`` entry. Configurations of the group ``zbl_anchor`` have w_E = 0
(their energies are not targets). :class:`WeightedData` holds these weights per
row; the trainer (:mod:`compot.trainer`) and the Fisher-information analysis
(:mod:`compot.analysis`) both read their rows from it, and neither changes the
model to get them.
"""

from __future__ import annotations

import numpy as np

from .anchors import ZBL_ANCHOR_GROUP, anchor_configurations

__all__ = ["WeightedData"]


class WeightedData:
    """Training batches with targets and row weights.

    Parameters
    ----------
    model : compot.model.Model — builds each batch's neighbour data (``model.system``); not changed
    configs : list of Configuration — the training data
    settings : compot.settings.FitSettings — weights and ``batch_atoms``
    priors : list of Configuration — prior configurations (:mod:`compot.data.anchors`),
        batched after the data

    Attributes
    ----------
    batches : list of list of Configuration — at most ~``batch_atoms`` atoms each
    n_data_batches : int — batches [0, n_data_batches) hold the data, the rest the priors
    systems : list of compot.neighbours.System — one per batch
    E : list of ndarray, shape (n_configurations,) — target energies [eV]
    F : list of ndarray, shape (n_atoms, 3) — target forces [eV/Å]
    wE : list of ndarray, shape (n_configurations,) — energy weights [eV⁻²]
    wF : list of ndarray, shape (n_atoms,) — force weights [(eV/Å)⁻²]
    n_rows : int — energies plus force components
    """

    def __init__(self, model, configs, settings, priors=()):
        self.batches = []
        for k, part in enumerate((list(configs), list(priors))):
            batch, natoms = [], 0
            for c in part:
                batch.append(c)
                natoms += c.n_atoms
                if natoms >= settings.batch_atoms:
                    self.batches.append(batch)
                    batch, natoms = [], 0
            if batch:
                self.batches.append(batch)
            if k == 0:
                self.n_data_batches = len(self.batches)
        self.systems = []
        self.E, self.F, self.wE, self.wF = [], [], [], []
        for b in self.batches:
            self.systems.append(model.system(b, sources=[c.source for c in b]))
            self.E.append(np.array([c.energy for c in b]))
            self.F.append(np.concatenate([c.forces for c in b]))
            gw = np.array([float(settings.group_weights.get(c.group, 1.0)) * c.weight for c in b])
            we = settings.energy_weight * gw * np.array([c.group != ZBL_ANCHOR_GROUP for c in b], dtype=float)
            if settings.energy_per_atom:
                we = we / np.array([c.n_atoms for c in b], dtype=float) ** 2
            self.wE.append(we)
            self.wF.append(np.repeat(settings.force_weight * gw, [c.n_atoms for c in b]))
        self.n_rows = sum(len(e) for e in self.E) + 3 * sum(len(f) for f in self.F)

    @classmethod
    def for_fit(cls, model, configs, settings) -> "WeightedData":
        """The data of a fit: ``configs`` and the priors ``settings`` ask for
        (``zbl_anchor``, ``eos_anchor``).

        Raises
        ------
        ConfigError
            For a prior the model cannot have (see :mod:`compot.data.anchors`).
        """
        return cls(model, configs, settings, anchor_configurations(model, settings))

    def jacobian_rows(self, model, names: list) -> np.ndarray:
        """√W J: the weighted derivatives of every energy and force component with
        respect to the linear blocks ``names``, at the model's parameters.

        Returns
        -------
        ndarray, shape (n_rows, n_columns) — per batch its energies, then its force
        components (atom-major, x y z) [√weight · eV per unit parameter]
        """
        rows = []
        for k, sysm in enumerate(self.systems):
            JE, JF, _ = model.linear_design(sysm, names)
            rows.append(JE * np.sqrt(self.wE[k])[:, None])
            rows.append((JF * np.sqrt(self.wF[k])[:, None, None]).reshape(-1, JE.shape[1]))
        return np.concatenate(rows)

    def least_squares_rows(self, model, names: list) -> tuple[np.ndarray, np.ndarray]:
        """Weighted least-squares problem A θ ≈ b of the linear blocks ``names``.

        The model must be affine in the union of the blocks (compot.model.Model.linear_design);
        then A = √W J and b = √W (target − rest), the rest being the prediction with
        these blocks at zero, evaluated on a copy of the model (``model`` is not changed).

        Returns
        -------
        A : ndarray, shape (n_rows, n_columns)
        b : ndarray, shape (n_rows,) [√weight · eV]
        """
        rest_model = model.copy()
        rest_model.set_vector(names, np.zeros_like(model.vector(names)))
        As, bs = [], []
        for k, sysm in enumerate(self.systems):
            JE, JF, rest = rest_model.linear_design(sysm, names)
            sE = np.sqrt(self.wE[k])
            sF = np.sqrt(self.wF[k])
            As.append(JE * sE[:, None])
            bs.append((self.E[k] - rest.energy_m) * sE)
            As.append((JF * sF[:, None, None]).reshape(-1, JE.shape[1]))
            bs.append(((self.F[k] - rest.forces_nc) * sF[:, None]).ravel())
        return np.concatenate(As), np.concatenate(bs)
