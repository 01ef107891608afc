"""The format v2 safety layer (MODEL_SPEC §10, docs/parameter-file.md): the inner
window of each species pair, the atom switch S_i = S_pair(i) S_grade(i), the
extrapolation grade γ_i, and the switched site energy

    E_i = S_i V_fit(i) + (1 − S_i) E_ref(Z_i) + E_ZBL(i)

with its vector–Jacobian product. Format v1 models have S = 1 and E_i = V(i).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .functions import cutoff_fdf, inner_window_fdf
from .gradient import PairGradient
from .neighbours import System

__all__ = ["PairWindow", "AtomSwitch", "Grade", "pair_window", "coordination", "SafetyLayer", "RunningMoments"]


class PairWindow(NamedTuple):
    """Pairs closer than their species pair's r_b: mask, shape (n_pairs,), and the
    r_a, r_b [Å] of those pairs, shape (n_close,) each."""

    close: np.ndarray
    r_a: np.ndarray
    r_b: np.ndarray


class AtomSwitch(NamedTuple):
    """S_i [-], shape (n_atoms,), and ∂S_(i_p)/∂r_p at fixed S_grade [1/Å], shape (n_pairs,)."""

    S_n: np.ndarray
    dS_p: np.ndarray


class Grade(NamedTuple):
    """Extrapolation grade γ_i [-], the switch S_grade(i) [-] and dS_grade/dγ [-],
    shape (n_atoms,) each."""

    gamma_n: np.ndarray
    S_n: np.ndarray
    dS_n: np.ndarray


def pair_window(model, system: System) -> PairWindow:
    """The pairs of ``system`` inside their inner window's upper end r_b (format v2)."""
    s = system
    S = s.n_species
    a = np.minimum(s.species_n[s.i_p], s.channel_p)
    b = np.maximum(s.species_n[s.i_p], s.channel_p)
    pair = a * S - a * (a - 1) // 2 + (b - a)
    close = s.r_p < model.params["w.r_b"][pair]
    return PairWindow(close, model.params["w.r_a"][pair[close]], model.params["w.r_b"][pair[close]])


def coordination(system: System, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordination n_i = Σ_j f_n(r_ij) of every atom, shape (n_atoms,) [-], and
    dn_i/dr_p of each pair p = (i, j), shape (n_pairs,) [1/Å] (format v4).

    f_n(r) = f_c(max(r − r_c/2, 0); r_c/2): 1 up to half the cutoff, the f_c
    polynomial (MODEL_SPEC §1) down to 0 at r_c. A smooth neighbour count: bulk bcc
    Nb (r_c 4.42 Å) has n ≈ 10, the surfaces of the training data ≈ 5.5, an isolated
    dimer 1 at any separation below r_c/2 (C: compot_coordination_term).
    """
    h = 0.5 * cutoff
    f, df = cutoff_fdf(np.maximum(system.r_p - h, 0.0), h)
    inside = system.r_p < cutoff
    f = np.where(inside, f, 0.0)
    df = np.where(inside & (system.r_p > h), df, 0.0)
    return np.bincount(system.i_p, weights=f, minlength=system.n_atoms), df


class RunningMoments:
    """Count, mean and scatter matrix of rows given one batch at a time, per group.

    What :meth:`compot.model.Model.compute_grade` needs of the training atoms' feature
    vectors without holding them: each batch's rows of group z are reduced to their
    count n_b, mean m_b and centred scatter M_b = Σ (f − m_b)(f − m_b)ᵀ, and merged into
    the running (n, m, M) by the pairwise update of Chan, Golub & LeVeque [1] (Eq. 2.1b
    there, in its vector form)::

        δ = m_b − m,  n' = n + n_b,  m' = m + δ n_b/n',  M' = M + M_b + δ δᵀ n n_b/n'.

    Every batch is centred on its own mean, so the result equals the two-pass
    ``F.mean(axis=0)`` and ``(n − 1) · np.cov(F, rowvar=False)`` of all rows stacked, to
    rounding (the order of the sums differs), in memory of one batch plus G (d + d²)
    numbers.

    Parameters
    ----------
    n_groups : int — G
    d : int — length of a row

    Attributes
    ----------
    n : ndarray of int, shape (G,) — rows seen per group
    mean : ndarray, shape (G, d) — their mean (0 where there is none)
    scatter : ndarray, shape (G, d, d) — Σ (f − mean)(f − mean)ᵀ

    References
    ----------
    [1] T. F. Chan, G. H. Golub, R. J. LeVeque, "Algorithms for computing the sample
        variance: analysis and recommendations", Am. Stat. 37, 242 (1983),
        doi:10.1080/00031305.1983.10483115.
    """

    def __init__(self, n_groups: int, d: int):
        self.n = np.zeros(n_groups, dtype=np.int64)
        self.mean = np.zeros((n_groups, d))
        self.scatter = np.zeros((n_groups, d, d))

    def add(self, rows: np.ndarray, group_n: np.ndarray) -> None:
        """Add the rows of one batch, shape (n_rows, d), row i in group ``group_n[i]``.

        Raises
        ------
        ValueError
            If the rows are not of width d or ``group_n`` has not one entry per row.
        """
        d = self.mean.shape[1]
        if rows.ndim != 2 or rows.shape[1] != d or group_n.shape != (rows.shape[0],):
            raise ValueError(f"RunningMoments.add: expected rows of shape (n, {d}) and groups of shape (n,), "
                             f"got {rows.shape} and {group_n.shape}")
        for z in range(len(self.n)):
            F = rows[group_n == z]
            nb = len(F)
            if not nb:
                continue
            mb = F.mean(axis=0)
            X = F - mb
            n = self.n[z] + nb
            delta = mb - self.mean[z]
            self.scatter[z] += X.T @ X + np.outer(delta, delta) * (self.n[z] * nb / n)
            self.mean[z] += delta * (nb / n)
            self.n[z] = n

    def covariance(self, z: int) -> np.ndarray:
        """The sample covariance of group z (divisor n − 1, as ``np.cov``), shape (d, d);
        needs at least two rows."""
        return self.scatter[z] / (self.n[z] - 1)


class SafetyLayer:
    """Switch, grade and switched site energy of one batch (cached).

    Parameters
    ----------
    ctx : Context — the batch's evaluation state (node values, features, VJPs)
    """

    def __init__(self, ctx):
        self.ctx = ctx
        self.model = ctx.model
        self.system = ctx.system
        self._switch: AtomSwitch | None = None
        self._s_pair: np.ndarray | None = None
        self._grade: Grade | None = None
        self._features: np.ndarray | None = None
        self._dgamma_dn: np.ndarray | None = None
        self._dn_p: np.ndarray | None = None

    # ----------------------------------------------------------- switch
    def switch(self) -> AtomSwitch:
        """Atom switch S_i = S_pair(i) S_grade(i) and the derivative of its pair factor.

        S_pair(i) = Π_{j∈N(i)} s_in(r_ij) is 1 when all of atom i's pairs are at least
        r_b apart and 0 once one is closer than r_a; S_grade(i) (:meth:`grade`) is 1
        inside the fitted data's range of features and 0 far outside. Format v1: S = 1.
        """
        if self._switch is None:
            s = self.system
            S_n = np.ones(s.n_atoms)
            dS_p = np.zeros(s.n_pairs)
            if self.model.version >= 2 and s.n_pairs:
                win = pair_window(self.model, s)
                if win.close.any():
                    w, dw = inner_window_fdf(s.r_p[win.close], win.r_a, win.r_b)
                    np.multiply.at(S_n, s.i_p[win.close], w)
                    # ∂S_i/∂r_p = dw_p Π_{q≠p} w_q over the close pairs q of atom i
                    others = np.ones_like(w)
                    idx = np.flatnonzero(win.close)
                    for k, p_ in enumerate(idx):
                        same = s.i_p[idx] == s.i_p[p_]
                        same[k] = False
                        others[k] = np.prod(w[same])
                    dS_p[win.close] = dw * others
            self._s_pair = S_n
            if self.model.version >= 2:
                g = self.grade()
                S_n = S_n * g.S_n
                dS_p = dS_p * g.S_n[s.i_p]
                if self._dgamma_dn is not None and s.n_pairs:
                    # format v4: S_grade through the coordination term of γ
                    coef = self._s_pair * g.dS_n * self._dgamma_dn
                    dS_p = dS_p + coef[s.i_p] * self._dn_p
            self._switch = AtomSwitch(S_n, dS_p)
        return self._switch

    # ------------------------------------------------------------ grade
    def _leaves_with_features(self) -> list[int]:
        return [n.index for n in self.model.layout.nodes if f"n{n.index}.c" in self.model.params]

    def feature_vector(self) -> np.ndarray:
        """f_i: every fitted leaf's features of atom i for its own species (the
        columns its linear coefficients multiply), concatenated in block order,
        shape (n_atoms, d) [-]; the input of the extrapolation grade."""
        if self._features is None:
            s = self.system
            parts = []
            for idx in self._leaves_with_features():
                F = self.ctx.features(idx)
                parts.append(F.reshape(s.n_atoms, s.n_species, -1)[np.arange(s.n_atoms), s.species_n])
            self._features = np.concatenate(parts, axis=1) if parts else np.zeros((s.n_atoms, 0))
        return self._features

    def grade(self) -> Grade:
        """Extrapolation grade γ_i = |U_Z (f_i − μ_Z)|² (the Mahalanobis distance of the
        atom's features from the fitted data), S_grade(i) and dS_grade/dγ.

        S_grade = 1 for γ ≤ γ_lo, 0 for γ ≥ γ_hi, and the f_c polynomial of
        t = ln(γ/γ_lo)/ln(γ_hi/γ_lo) in between (MODEL_SPEC §10; logarithmic so that the
        hand-over starts as soon as an atom leaves the data, docs/parameter-file.md;
        C: compot_grade_switch). Since the fitted
        energy is linear in f, |V_fit − mean| ≤ σ_E √γ wherever S_grade > 0 (σ_E the
        standard deviation of the fitted site energies over the data), whatever the
        size of the coefficients. A model whose U is zero (not yet fitted) has γ = 0.

        Format v4 adds γ_hi (2Δ)³, Δ = 1 − n_i/n_min(Z), for an atom whose coordination
        n_i (:func:`coordination`) is below the data's lowest n_min > 0: such an atom
        is switched off from half the data's lowest coordination on, whatever its
        features (an isolated dimer may lie inside the ellipsoid of the data's
        features: Ta, γ = 0.7 γ_lo at 2.30 Å; docs/parameter-file.md).
        """
        if self._grade is None:
            s = self.system
            U = self.model.grade_factor()                      # (S, d, d) lower triangular
            gamma = np.zeros(s.n_atoms)
            if U.any():
                f = self.feature_vector() - self.model.params["g.mu"][s.species_n]
                for z in range(s.n_species):
                    at = s.species_n == z
                    gamma[at] = np.sum((f[at] @ U[z].T) ** 2, axis=1)
            lo = self.model.params["g.gamma_lo"][s.species_n]
            hi = self.model.params["g.gamma_hi"][s.species_n]
            if self.model.version >= 4:
                n_min = self.model.params["g.n_min"][s.species_n]
                if np.any(n_min > 0):
                    n, self._dn_p = coordination(s, self.model.cutoff)
                    low = n < n_min
                    n_low = np.where(low, n_min, 1.0)           # (no division by an n_min of 0)
                    delta = np.where(low, 1.0 - n / n_low, 0.0)
                    gamma = gamma + 8.0 * hi * delta ** 3
                    self._dgamma_dn = -24.0 * hi * delta ** 2 / n_low
            inside = (gamma > lo) & (gamma < hi)
            g_in = np.where(inside, gamma, lo)
            t = np.clip(np.log(g_in / lo) / np.log(hi / lo), 0.0, 1.0)
            fc, dfc = cutoff_fdf(t, 1.0)
            self._grade = Grade(gamma, np.where(gamma >= hi, 0.0, np.where(gamma <= lo, 1.0, fc)),
                                np.where(inside, dfc / (np.log(hi / lo) * g_in), 0.0))
        return self._grade

    def grade_gradient(self) -> np.ndarray:
        """∂γ_i/∂f_i = 2 U_Zᵀ U_Z (f_i − μ_Z), shape (n_atoms, d) [-]."""
        s = self.system
        U = self.model.grade_factor()
        f = self.feature_vector() - self.model.params["g.mu"][s.species_n]
        out = np.zeros_like(f)
        for z in range(s.n_species):
            at = s.species_n == z
            out[at] = 2.0 * (f[at] @ U[z].T) @ U[z]
        return out

    def switch_feature_gradient(self) -> np.ndarray | None:
        """∂S_i/∂f_i through the grade, S_pair(i) dS_grade/dγ · 2 U_Zᵀ U_Z (f_i − μ_Z),
        shape (n_atoms, d); None for format v1 or when no atom is in the grade's transition."""
        if self.model.version < 2:
            return None
        dS_g = self.grade().dS_n
        if not np.any(dS_g):
            return None
        self.switch()
        return self.grade_gradient() * (self._s_pair * dS_g)[:, None]

    def features_vjp(self, B: np.ndarray, a: np.ndarray, grad, cols: slice) -> None:
        """Accumulate Σ_i a[i, m] Σ_c B[i, c] ∂f_c(i)/∂D_p into ``cols`` (f of
        :meth:`feature_vector`, B shape (n_atoms, d)); rows of B that are zero cost nothing."""
        s = self.system
        S = s.n_species
        rows = np.flatnonzero(np.any(B != 0, axis=1))
        if not len(rows):
            return
        pos = 0
        for idx in self._leaves_with_features():
            size = self.model.params[f"n{idx}.c"].size
            d_leaf = size // S
            for m in range(a.shape[1]):
                A = np.zeros((s.n_atoms, S, d_leaf))
                A[rows, s.species_n[rows]] = B[rows, pos:pos + d_leaf] * a[rows, m:m + 1]
                tmp = PairGradient(s, size)
                self.ctx.feature_vjp(idx, A.reshape(s.n_atoms, size), tmp, slice(0, size))
                G = tmp.finish(self.ctx).sum(axis=2)                       # (p, 3)
                col = cols.start + m
                grad.add_vector(slice(col, col + 1), G[:, :, None])
            pos += d_leaf

    # ------------------------------------------------------ site energy
    def core_leaves(self) -> list[int]:
        """The ZBL summands of the root (never switched)."""
        return [i for i in self.model.layout.nodes[0].children if self.model.layout.nodes[i].term.is_core]

    def fitted_value(self) -> np.ndarray:
        """V_fit(i): the root's value without its ZBL summands, shape (n_atoms,) [eV]."""
        v = self.ctx.value(0)
        for i in self.core_leaves():
            v = v - self.ctx.value(i)
        return v

    def bounded_fit(self) -> tuple[np.ndarray, np.ndarray]:
        """V_b(i), the fitted value bounded below (format v3), and dV_b/dV_fit, each shape
        (n_atoms,) [eV], [-].

        With e = e_min(Z_i), the lowest fitted site energy over the fitting atoms,
        and w = τ (E_ref − e): V_b = V_fit for V_fit ≥ e, and e − w tanh((e − V_fit)/w)
        below, so no atom's fitted energy falls more than w below the lowest the data
        showed (C², monotone; off where e ≥ E_ref, and in formats v1 and v2). Without
        it an atom of a hot Mo NVT run whose closest pair was still above its inner
        window had V_fit = −99 eV at a grade of 4.4 γ_lo, where the grade switch kept
        17 % of it: |F| = 1430 eV/Å, and the run lost atoms (docs/parameter-file.md).
        """
        v = self.fitted_value()
        if self.model.version < 3:
            return v, np.ones_like(v)
        z = self.system.species_n
        lo = self.model.params["w.e_min"][z]
        w = float(self.model.params["w.tau"]) * (self.model.params["w.e_ref"][z] - lo)
        below = (v < lo) & (w > 0)
        th = np.tanh(np.where(below, lo - v, 0.0) / np.where(w > 0, w, 1.0))
        return np.where(below, lo - w * th, v), np.where(below, 1.0 - th * th, 1.0)

    def site_energy(self) -> np.ndarray:
        """Site energies E_i = S_i V_b(i) + (1 − S_i) E_ref(Z_i) + E_ZBL(i), shape (n_atoms,)
        [eV]: the fitted part (bounded below in format v3, :meth:`bounded_fit`) switched,
        the ZBL core never (MODEL_SPEC §10)."""
        if self.model.version < 2:
            return self.ctx.value(0)
        S_n = self.switch().S_n
        e_ref = self.model.params["w.e_ref"][self.system.species_n]
        zbl = self.ctx.value(0) - self.fitted_value()
        return e_ref + S_n * (self.bounded_fit()[0] - e_ref) + zbl

    def site_energy_vjp(self, a: np.ndarray, grad, cols: slice) -> None:
        """Accumulate Σ_i a[i, m] ∂E_i/∂D_p (E_i of :meth:`site_energy`) into ``cols``."""
        if self.model.version < 2:
            self.ctx.vjp(0, a, grad, cols)
            return
        S_n, dS_p = self.switch()
        core = self.core_leaves()
        v_b, dv_b = self.bounded_fit()
        # a root with ZBL summands is a sum: its fitted summands are switched, ZBL not
        for i in self.model.layout.nodes[0].children if core else [0]:
            self.ctx.vjp(i, a if i in core else a * (S_n * dv_b)[:, None], grad, cols)
        s = self.system
        dv = v_b - self.model.params["w.e_ref"][s.species_n]
        if np.any(dS_p):
            grad.R[:, cols] += (dS_p * dv[s.i_p])[:, None] * a[s.i_p]
        dS_df = self.switch_feature_gradient()
        if dS_df is not None:
            self.features_vjp(dS_df * dv[:, None], a, grad, cols)
