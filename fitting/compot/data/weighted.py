"""Weighted training data: batches of configurations with their targets and row weights.

The loss of a fit (paper Eq. 26) is

    L = Σ_m w_E,m (E_m − Ê_m)² + Σ_m Σ_i w_F,m |F_mi − F̂_mi|²,

with w_E,m = energy_weight · g_m / N_m² (the 1/N_m² only with ``energy_per_atom``)
and w_F,m = force_weight · g_m, g_m the configuration's weight times its group's
``group_weights`` entry. Configurations of the group ``zbl_anchor`` have w_E = 0
(their energies are not targets), those of ``hot_prior`` w_F = 0 (snapshots of
the model's own hot MD with an energy bound and no forces, :mod:`compot.hot_prior`).
With ``stress_weight`` > 0 the loss also has

    Σ_m w_S,m |σ_m − σ̂_m|²,   σ̂_m = W_m / V_m,

over the six Voigt components of the stress [GPa] of every periodic configuration
that has a reference stress, w_S,m = stress_weight · g_m [GPa⁻²], 0 for the groups
of ``stress_exclude``; its rows come from the virial rows of
:meth:`compot.model.Model.linear_design`. :class:`WeightedData` holds these weights per
row; the trainer (:mod:`compot.trainer`) and the Fisher-information analysis
(:mod:`compot.analysis`) both read their rows from it, and neither changes the
model to get them.
"""

from __future__ import annotations

import logging
import math

import ase.units
import numpy as np

from ..errors import ConfigError
from ..neighbours import VOIGT_PAIRS
from .anchors import HOT_PRIOR_GROUP, ZBL_ANCHOR_GROUP, anchor_configurations
from .neighbour_store import NeighbourStore

__all__ = ["WeightedData", "GPA", "stress_weights"]

log = logging.getLogger(__name__)

#: 1 eV/Å³ in GPa (ASE's units).
GPA = 1.0 / ase.units.GPa


def stress_weights(configs, settings) -> np.ndarray:
    """Stress loss weight of each configuration, w_S,m [GPa⁻²].

    stress_weight · group weight · configuration weight, and 0 for a configuration
    without a reference stress, without a periodic cell (volume 0) or in a group of
    ``settings.stress_exclude``.

    Parameters
    ----------
    configs : list of Configuration
    settings : compot.settings.FitSettings

    Returns
    -------
    ndarray, shape (n_configurations,)
    """
    w = float(getattr(settings, "stress_weight", 0.0))
    excluded = set(getattr(settings, "stress_exclude", ()))
    out = np.zeros(len(configs))
    if w == 0.0:
        return out
    for m, c in enumerate(configs):
        if c.stress is None or c.group in excluded or c.group == ZBL_ANCHOR_GROUP:
            continue
        if not np.all(c.pbc) or abs(np.linalg.det(c.cell)) < 1e-12:
            continue
        out[m] = w * float(settings.group_weights.get(c.group, 1.0)) * c.weight
    return out


def _batches(configs, batch_atoms: int) -> list:
    """``configs`` in order, cut into batches that end once they hold ``batch_atoms`` atoms."""
    out, batch, natoms = [], [], 0
    for c in configs:
        batch.append(c)
        natoms += c.n_atoms
        if natoms >= batch_atoms:
            out.append(batch)
            batch, natoms = [], 0
    if batch:
        out.append(batch)
    return out


class WeightedData:
    """Training batches with targets and row weights.

    Parameters
    ----------
    model : compot.model.Model — builds each batch's neighbour data (``model.system``); not changed
    configs : list of Configuration — the training data
    settings : compot.settings.FitSettings — weights, ``batch_atoms`` and
        ``neighbour_memory_mb`` (without it every batch's neighbour data is held)
    priors : list of Configuration — prior configurations (:mod:`compot.data.anchors`),
        batched after the data

    Attributes
    ----------
    batches : list of list of Configuration — at most ~``batch_atoms`` atoms each
    n_data_batches : int — batches [0, n_data_batches) hold the data, the rest the priors
    systems : sequence of compot.neighbours.System — one per batch, built once; those
        beyond ``neighbour_memory_mb`` are kept on disk and read back when indexed or
        iterated (:class:`compot.data.neighbour_store.NeighbourStore`)
    volume_m : list of ndarray, shape (n_configurations,) — cell volumes [Å³] (0: no cell)
    E : list of ndarray, shape (n_configurations,) — target energies [eV]
    F : list of ndarray, shape (n_atoms, 3) — target forces [eV/Å]
    wE : list of ndarray, shape (n_configurations,) — energy weights [eV⁻²]
    wF : list of ndarray, shape (n_atoms,) — force weights [(eV/Å)⁻²]
    S : list of ndarray, shape (n_configurations, 6) — target stresses [GPa] (0 where there is none)
    wS : list of ndarray, shape (n_configurations,) — stress weights [GPa⁻²] (:func:`stress_weights`)
    site_e0 : list of ndarray, shape (n_atoms,) — site-energy prior targets e0[Z_i] [eV]
        (``settings.site_prior``; empty arrays when off)
    wSite : list of ndarray, shape (n_atoms,) — its weights [eV⁻²] (empty for the priors' batches)
    n_rows : int — energies plus force components plus, with stress_weight > 0, six
        stress components per configuration, plus, with a site prior, one per atom
    """

    def __init__(self, model, configs, settings, priors=()):
        self.batches = _batches(configs, settings.batch_atoms)
        self.n_data_batches = len(self.batches)
        self.batches += _batches(priors, settings.batch_atoms)
        self.systems = NeighbourStore(float(getattr(settings, "neighbour_memory_mb", math.inf)) * 2**20)
        self.volume_m = []
        self.E, self.F, self.wE, self.wF = [], [], [], []
        self.S, self.wS = [], []
        self.site_e0, self.wSite = [], []
        site = dict(getattr(settings, "site_prior", None) or {})
        self.fit_site = bool(site) and float(site.get("weight", 0.0)) > 0
        self._site_weight = float(site.get("weight", 0.0)) if self.fit_site else 0.0
        if self.fit_site:
            e0 = site.get("e0") or {}
            missing = sorted(set(model.species) - set(e0))
            if missing:
                raise ConfigError(f"fit.site_prior.e0: no crystal energy per atom for {', '.join(missing)} "
                                  f"(expected {{element: eV}} for every species of the model)")
            self._site_e0_z = np.array([float(e0[s]) for s in model.species])
        for bi, b in enumerate(self.batches):
            self._append(model, b, settings, prior=bi >= self.n_data_batches)
        self._count(settings)

    def extend_priors(self, model, priors, settings) -> None:
        """Append prior configurations (e.g. :mod:`compot.hot_prior`'s) in batches of
        about ``batch_atoms`` atoms after the existing ones, building only their
        neighbour data; the data's batches, and so the grade and the lower bound the
        trainer fits on them, are unchanged."""
        for batch in _batches(priors, settings.batch_atoms):
            self.batches.append(batch)
            self._append(model, batch, settings, prior=True)
        self._count(settings, warn=False)

    def _append(self, model, b, settings, prior: bool) -> None:
        """Targets and row weights of one batch ``b`` (its neighbour data into ``systems``)."""
        sysm = model.system(b, sources=[c.source for c in b])
        species_n = sysm.species_n
        self.volume_m.append(sysm.volume_m)
        self.systems.append(sysm)
        del sysm
        self.E.append(np.array([c.energy for c in b]))
        self.F.append(np.concatenate([c.forces for c in b]))
        gw = np.array([float(settings.group_weights.get(c.group, 1.0)) * c.weight for c in b])
        we = settings.energy_weight * gw * np.array([c.group != ZBL_ANCHOR_GROUP for c in b], dtype=float)
        if settings.energy_per_atom:
            we = we / np.array([c.n_atoms for c in b], dtype=float) ** 2
        self.wE.append(we)
        # the hot prior's snapshots have an energy bound and no force targets
        wf = settings.force_weight * gw * np.array([c.group != HOT_PRIOR_GROUP for c in b], dtype=float)
        self.wF.append(np.repeat(wf, [c.n_atoms for c in b]))
        self.S.append(np.array([GPA * c.stress if c.stress is not None else np.zeros(6) for c in b]))
        self.wS.append(stress_weights(b, settings))
        if self.fit_site and not prior:    # the data's atoms, not the priors'
            self.site_e0.append(self._site_e0_z[species_n])
            self.wSite.append(np.full(len(species_n), self._site_weight))
        elif prior and any(c.site_energies is not None for c in b):
            # prior cells with site-energy targets (the B2 cells of the EOS prior): weight
            # 1 eV⁻² per atom (σ = 1 eV) times the group weight, whatever the prior's
            # energy weight; zero for the others of the batch
            self.site_e0.append(np.concatenate([c.site_energies if c.site_energies is not None
                                                else np.zeros(c.n_atoms) for c in b]))
            self.wSite.append(np.concatenate([
                np.full(c.n_atoms, float(settings.group_weights.get(c.group, 1.0))
                        if c.site_energies is not None else 0.0) for c in b]))
        else:
            self.site_e0.append(np.zeros(0))
            self.wSite.append(np.zeros(0))

    def _count(self, settings, warn: bool = True) -> None:
        """``fit_stress`` and ``n_rows`` from the batches' weights."""
        self.fit_stress = any(w.any() for w in self.wS)
        groups = {c.group for b in self.batches for c in b}
        missing = sorted(set(getattr(settings, "stress_exclude", ())) - groups)
        if missing and warn:
            log.warning("fit.stress_exclude names groups that are not in the data: %s (groups: %s)",
                        ", ".join(missing), ", ".join(sorted(groups)))
        self.n_rows = sum(len(e) for e in self.E) + 3 * sum(len(f) for f in self.F)
        if self.fit_stress:
            self.n_rows += 6 * sum(len(w) for w in self.wS)
        self.n_rows += sum(len(w) for w in self.wSite)

    def site_loss(self, k: int, energies_n: np.ndarray) -> float:
        """Σ_i w_site,i (E_i − e0[Z_i])² of batch k [eV² · eV⁻²] (0 without a site prior)."""
        if not len(self.wSite[k]):
            return 0.0
        return float(np.sum(self.wSite[k] * (energies_n - self.site_e0[k]) ** 2))

    def stress_loss(self, k: int, virial_mcc: np.ndarray) -> float:
        """Σ_m w_S,m |σ_m − W_m/V_m|² of batch k [GPa² · GPa⁻²], from predicted virials,
        shape (n_configurations, 3, 3) [eV]."""
        _, r = self._stress_rows(k, np.zeros((len(self.wS[k]), 6, 1)), virial_mcc)
        return float(r @ r)

    def _stress_rows(self, k: int, JW: np.ndarray, rest_W: np.ndarray | None):
        """Weighted stress rows of batch k: √w_S (GPA/V) JW and √w_S (σ − GPA W_rest/V) [√weight · GPa]."""
        vol = self.volume_m[k]
        scale = np.sqrt(self.wS[k]) * GPA / np.where(vol > 0, vol, 1.0)
        A = (JW * scale[:, None, None]).reshape(-1, JW.shape[2])
        if rest_W is None:
            return A, None
        rest = np.stack([rest_W[:, a, b] for a, b in VOIGT_PAIRS], axis=1)
        target = np.sqrt(self.wS[k])[:, None] * self.S[k] - scale[:, None] * rest
        return A, target.ravel()

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
        components (atom-major, x y z), then (with stress in the loss) its stress
        components (configuration-major, Voigt order) [√weight · eV per unit parameter]
        """
        rows = []
        for k, sysm in enumerate(self.systems):
            d = model.linear_design(sysm, names, virial=self.fit_stress)
            JE, JF = d.JE, d.JF
            rows.append(JE * np.sqrt(self.wE[k])[:, None])
            rows.append((JF * np.sqrt(self.wF[k])[:, None, None]).reshape(-1, JE.shape[1]))
            if self.fit_stress:
                rows.append(self._stress_rows(k, d.JW, None)[0])
            if len(self.wSite[k]):
                rows.append(d.JS * np.sqrt(self.wSite[k])[:, None])
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
        As, bs = zip(*self.least_squares_batches(model, names))
        return np.concatenate(As), np.concatenate(bs)

    def least_squares_batches(self, model, names: list, ks=None):
        """The rows of :meth:`least_squares_rows` one batch at a time (memory of one batch);
        ``ks``: only those batches (indices into :attr:`batches`, in that order).

        Yields
        ------
        (A_k, b_k) : ndarray, shape (n_rows_k, n_columns), and ndarray, shape (n_rows_k,)
            batch k's energy, force and (with stress in the loss) stress rows, in the
            order of :meth:`least_squares_rows`
        """
        rest_model = model.copy()
        rest_model.set_vector(names, np.zeros_like(model.vector(names)))
        for k in (range(len(self.batches)) if ks is None else ks):
            d = rest_model.linear_design(self.systems[k], names, virial=self.fit_stress)
            JE, JF, rest = d
            sE = np.sqrt(self.wE[k])
            sF = np.sqrt(self.wF[k])
            As = [JE * sE[:, None], (JF * sF[:, None, None]).reshape(-1, JE.shape[1])]
            bs = [(self.E[k] - rest.energy_m) * sE, ((self.F[k] - rest.forces_nc) * sF[:, None]).ravel()]
            if self.fit_stress:
                A_s, b_s = self._stress_rows(k, d.JW, rest.virial_mcc)
                As.append(A_s)
                bs.append(b_s)
            if len(self.wSite[k]):
                sS = np.sqrt(self.wSite[k])
                As.append(d.JS * sS[:, None])
                bs.append((self.site_e0[k] - rest.energies_n) * sS)
            yield np.concatenate(As), np.concatenate(bs)

    def scale_energy_weights(self, configs, factor: float) -> None:
        """Multiply the energy weight of the prior configurations ``configs`` (the objects
        given to :meth:`extend_priors`) by ``factor``."""
        ids = {id(c) for c in configs}
        for k in range(self.n_data_batches, len(self.batches)):
            for m, c in enumerate(self.batches[k]):
                if id(c) in ids:
                    self.wE[k][m] *= factor

    def subset(self, ks) -> "WeightedData":
        """The batches ``ks`` (indices into :attr:`batches`) as data of their own, sharing
        arrays with this one (their Systems read into memory); what a worker needs to
        compute their rows.

        Raises
        ------
        IndexError
            For an index outside [0, len(batches)).
        """
        ks = list(ks)
        out = object.__new__(type(self))
        for name in ("batches", "systems", "volume_m", "E", "F", "wE", "wF", "S", "wS", "site_e0", "wSite"):
            seq = getattr(self, name)
            setattr(out, name, [seq[k] for k in ks])
        out.n_data_batches = sum(1 for k in ks if k < self.n_data_batches)
        out.fit_stress, out.fit_site = self.fit_stress, self.fit_site
        out.n_rows = sum(len(e) for e in out.E) + 3 * sum(len(f) for f in out.F)
        if out.fit_stress:
            out.n_rows += 6 * sum(len(w) for w in out.wS)
        out.n_rows += sum(len(w) for w in out.wSite)
        return out
