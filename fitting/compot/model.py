"""Composed pair-cluster models: parameters, site energies, forces, virial.

A :class:`Model` is an expression in the paper's notation (parsed by
:mod:`compot.expression`), a tuple of species, a cutoff radius and one array
per parameter block of the parameter file format v1. Evaluation runs on a
:class:`~compot.neighbours.System` (a batch of configurations):

* forward: per basis ĝ_k(r_p) and the two-body cluster functions
  φ_k^(s)(i) = Σ_{j∈N(i), Z_j=s} ĝ_k(r_ij) (paper Eq. 47), the neighbour
  aggregates ρ_k^(s)(i) = Σ_j f_c(r_ij) φ_k^(s)(j) where an N term needs them,
  then every node's per-atom value V(i) (MODEL_SPEC §3–4);
* backward (vector–Jacobian products): per-atom adjoints a_i = ∂E/∂V(i),
  adjoints λ_k(i) = ∂E/∂φ_k(i) per basis, pair gradients G_p = ∂E/∂D_p,
  then forces F = incidence·G and virial W = Σ_p G_p ⊗ D_p (MODEL_SPEC §5).

The trainer uses the same machinery column by column: :meth:`Model.linear_design`
returns, for a set of parameter blocks in which the model is linear, the
energy and force rows of the least-squares design matrix (MODEL_SPEC §6).

References
----------
[1] Y. Wang, M. K. Transtrum, V. Lordi, V. V. Bulatov, A. Samanta,
    arXiv:2504.19372 (2025).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ExpressionError, FitError
from .expression import (ZBL, Angular, Exponentiated, Layout, Linear, NeighbourExponentiated, Product, Sum,
                         layout, parse)
from .functions import (angular_tables, angular_weights, atomic_number, basis_fdf, cutoff_fdf,
                        effective_distance_fdf, exp_feature_fdf, inner_window_fdf, zbl_pair_fdf)
from .neighbours import System

__all__ = ["Model", "Prediction", "DEFAULT_NONLINEAR"]

#: Default starting values of nonlinear parameters (documented in docs/fitting.md).
DEFAULT_NONLINEAR = {"alpha": 0.5, "beta": 1.6, "gamma": 0.5}

#: Default saturation width τ of the bounded features of format v2 (MODEL_SPEC §10):
#: a feature runs at most τ (in units of its data maximum) past the fitted range.
DEFAULT_TAU = 0.3


@dataclass
class Prediction:
    """Model output for a batch.

    energy_m : (m,) total energies [eV]
    energies_n : (n,) site energies [eV]
    forces_nc : (n, 3) forces [eV/Å] (None if not requested)
    virial_mcc : (m, 3, 3) virial W = V σ [eV], ASE sign (tensile positive) (None if not requested)
    """

    energy_m: np.ndarray
    energies_n: np.ndarray
    forces_nc: np.ndarray | None
    virial_mcc: np.ndarray | None


class _Grad:
    """Accumulates ∂(Σ_i a_im V(i))/∂D_p for m adjoint columns."""

    def __init__(self, system: System, m: int):
        self.system = system
        self.m = m
        self.R = np.zeros((system.n_pairs, m))        # radial part: G_p = R_p û_p
        self.V = None                                 # vector part (p, 3, m)
        self.lam: dict[int, np.ndarray] = {}           # basis -> (n, S, K, m) adjoint of φ

    def add_vector(self, cols: slice, V):
        if self.V is None:
            self.V = np.zeros((self.system.n_pairs, 3, self.m))
        self.V[:, :, cols] += V

    def add_lam(self, b: int, K: int, cols: slice, lam):
        if b not in self.lam:
            self.lam[b] = np.zeros((self.system.n_atoms, self.system.n_species, K, self.m))
        self.lam[b][..., cols] += lam

    def _fold_lam(self, ctx: "_Context") -> None:
        """Turn φ adjoints into radial pair weights: R_p += Σ_k λ_k(i_p, s_p) ĝ_k'(r_p)."""
        s = self.system
        rows = s.i_p * s.n_species + s.channel_p
        for b, lam in self.lam.items():
            dg = ctx.basis(b)[1]
            lam_p = lam.reshape(s.n_atoms * s.n_species, lam.shape[2], self.m)[rows]
            self.R += np.einsum("pkm,pk->pm", lam_p, dg)
        self.lam = {}

    def finish(self, ctx: "_Context") -> np.ndarray:
        """Pair gradients G, shape (p, 3, m) [eV/Å]."""
        self._fold_lam(ctx)
        G = self.R[:, None, :] * self.system.u_pc[:, :, None]
        if self.V is not None:
            G = G + self.V
        return G

    def forces(self, ctx: "_Context") -> np.ndarray:
        """Forces of every column, shape (n, 3, m) [eV/Å], without forming G."""
        self._fold_lam(ctx)
        s = self.system
        F = np.empty((s.n_atoms, 3, self.m))
        for c in range(3):
            Gc = self.R * s.u_pc[:, c:c + 1]
            if self.V is not None:
                Gc += self.V[:, c, :]
            F[:, c, :] = s.incidence @ Gc
        return F


class _Context:
    """Per-batch evaluation state: basis values, cluster functions, node values."""

    def __init__(self, model: "Model", system: System):
        self.model = model
        self.system = system
        self._basis: dict[int, tuple] = {}
        self._phi: dict[int, np.ndarray] = {}
        self._rho: dict[int, np.ndarray] = {}
        self._value: dict[int, np.ndarray] = {}
        self._ang: dict[int, tuple] = {}
        self._bounded_ang: dict[int, tuple] = {}
        self._switch = None
        self._s_pair = None
        self._grade = None
        self._radial = None

    # ------------------------------------------------------- pair weights
    @property
    def tau(self) -> float | None:
        """Saturation width τ of format v2, None for format v1 (quadratic continuation)."""
        return float(self.model.params["w.tau"]) if self.model.version >= 2 else None

    def _pair_window(self):
        """(mask of pairs closer than their r_b, r_a and r_b of those pairs); v2 only."""
        s = self.system
        S = s.n_species
        a = np.minimum(s.species_n[s.i_p], s.channel_p)
        b = np.maximum(s.species_n[s.i_p], s.channel_p)
        pair = a * S - a * (a - 1) // 2 + (b - a)
        close = s.r_p < self.model.params["w.r_b"][pair]
        return close, self.model.params["w.r_a"][pair[close]], self.model.params["w.r_b"][pair[close]]

    def radial(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """What the fitted terms see of each pair: the effective distance c(r_p), the
        cutoff f_c(c) and df_c/dc, and dc/dr, shape (p,) each (format v2: pairs
        closer than r_b are seen at c(r) ≥ r_b − 0.11 (r_b − r_a), MODEL_SPEC §10;
        format v1: c = r)."""
        if self._radial is None:
            s = self.system
            ones = np.ones(s.n_pairs)
            if self.model.version < 2 or not s.n_pairs:
                self._radial = (s.r_p, s.fc_p, s.dfc_p, ones)
            else:
                close, r_a, r_b = self._pair_window()
                if not close.any():
                    self._radial = (s.r_p, s.fc_p, s.dfc_p, ones)
                else:
                    r, fc, dfc, dc = s.r_p.copy(), s.fc_p.copy(), s.dfc_p.copy(), ones
                    r[close], dc[close] = effective_distance_fdf(s.r_p[close], r_a, r_b)
                    fc[close], dfc[close] = cutoff_fdf(r[close], self.model.cutoff)
                    self._radial = (r, fc, dfc, dc)
        return self._radial

    def switch(self) -> tuple[np.ndarray, np.ndarray]:
        """Atom switch S_i = S_pair(i) S_grade(i) of format v2 and the derivative of
        its pair factor, ∂S_{i_p}/∂r_p at fixed S_grade (MODEL_SPEC §10).

        S_pair(i) = Π_{j∈N(i)} s_in(r_ij) is 1 when all of atom i's pairs are at least
        r_b apart and 0 once one is closer than r_a; S_grade(i) (:meth:`grade`) is 1
        inside the fitted data's range of features and 0 far outside. Format v1: S = 1.

        Returns
        -------
        S_n : ndarray, shape (n,) [-]
        dS_p : ndarray, shape (p,) [1/Å]
        """
        if self._switch is None:
            s = self.system
            S_n = np.ones(s.n_atoms)
            dS_p = np.zeros(s.n_pairs)
            if self.model.version >= 2 and s.n_pairs:
                close, r_a, r_b = self._pair_window()
                if close.any():
                    w, dw = inner_window_fdf(s.r_p[close], r_a, r_b)
                    np.multiply.at(S_n, s.i_p[close], w)
                    # ∂S_i/∂r_p = dw_p Π_{q≠p} w_q over the close pairs q of atom i
                    others = np.ones_like(w)
                    idx = np.flatnonzero(close)
                    for k, p_ in enumerate(idx):
                        same = s.i_p[idx] == s.i_p[p_]
                        same[k] = False
                        others[k] = np.prod(w[same])
                    dS_p[close] = dw * others
            self._s_pair = S_n
            if self.model.version >= 2:
                _, S_g, _ = self.grade()
                S_n = S_n * S_g
                dS_p = dS_p * S_g[s.i_p]
            self._switch = (S_n, dS_p)
        return self._switch

    def _leaves_with_features(self) -> list[int]:
        return [n.index for n in self.model.layout.nodes if f"n{n.index}.c" in self.model.params]

    def feature_vector(self) -> np.ndarray:
        """f_i: every fitted leaf's features of atom i for its own species (the
        columns its linear coefficients multiply), concatenated in block order,
        shape (n, d) [-]; the input of the extrapolation grade."""
        s = self.system
        S = s.n_species
        parts = []
        for idx in self._leaves_with_features():
            F = self.features(idx)
            parts.append(F.reshape(s.n_atoms, S, -1)[np.arange(s.n_atoms), s.species_n])
        return np.concatenate(parts, axis=1) if parts else np.zeros((s.n_atoms, 0))

    def grade(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Extrapolation grade γ_i = |U_Z (f_i − μ_Z)|² (the Mahalanobis distance of the
        atom's features from the fitted data), the switch S_grade(i) and dS_grade/dγ.

        S_grade = 1 for γ ≤ γ_lo, 0 for γ ≥ γ_hi, and the f_c polynomial of
        t = (γ − γ_lo)/(γ_hi − γ_lo) in between (MODEL_SPEC §10). Since the fitted
        energy is linear in f, |V_fit − mean| ≤ σ_E √γ wherever S_grade > 0 (σ_E the
        standard deviation of the fitted site energies over the data), whatever the
        size of the coefficients. A model whose U is zero (not yet fitted) has γ = 0.

        Returns
        -------
        gamma_n, S_n, dS_n : ndarray, shape (n,)
        """
        if self._grade is None:
            s = self.system
            n = s.n_atoms
            U = self.model.grade_factor()                      # (S, d, d) lower triangular
            gamma = np.zeros(n)
            if U.any():
                f = self.feature_vector() - self.model.params["g.mu"][s.species_n]
                for z in range(s.n_species):
                    at = s.species_n == z
                    gamma[at] = np.sum((f[at] @ U[z].T) ** 2, axis=1)
            lo = self.model.params["g.gamma_lo"][s.species_n]
            hi = self.model.params["g.gamma_hi"][s.species_n]
            t = np.clip((gamma - lo) / (hi - lo), 0.0, 1.0)
            fc, dfc = cutoff_fdf(t, 1.0)
            inside = (gamma > lo) & (gamma < hi)
            self._grade = (gamma, np.where(gamma >= hi, 0.0, np.where(gamma <= lo, 1.0, fc)),
                           np.where(inside, dfc / (hi - lo), 0.0))
        return self._grade

    def switch_feature_gradient(self) -> np.ndarray | None:
        """∂S_i/∂f_i through the grade, S_pair(i) dS_grade/dγ · 2 U_Zᵀ U_Z (f_i − μ_Z),
        shape (n, d); None when no atom is in the grade's transition."""
        _, _, dS_g = self.grade()
        if not np.any(dS_g):
            return None
        self.switch()
        return self.grade_gradient() * (self._s_pair * dS_g)[:, None]

    def grade_gradient(self) -> np.ndarray:
        """∂γ_i/∂f_i = 2 U_Zᵀ U_Z (f_i − μ_Z), shape (n, d)."""
        s = self.system
        U = self.model.grade_factor()
        f = self.feature_vector() - self.model.params["g.mu"][s.species_n]
        out = np.zeros_like(f)
        for z in range(s.n_species):
            at = s.species_n == z
            out[at] = 2.0 * (f[at] @ U[z].T) @ U[z]
        return out

    def features_vjp(self, B: np.ndarray, a: np.ndarray, grad: "_Grad", cols: slice) -> None:
        """Accumulate Σ_i a[i, m] Σ_c B[i, c] ∂f_c(i)/∂D_p into ``cols`` (f of
        :meth:`feature_vector`, B shape (n, d)); rows of B that are zero cost nothing."""
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
                tmp = _Grad(s, size)
                self.feature_vjp(idx, A.reshape(s.n_atoms, size), tmp, slice(0, size))
                G = tmp.finish(self).sum(axis=2)                       # (p, 3)
                col = cols.start + m
                grad.add_vector(slice(col, col + 1), G[:, :, None])
            pos += d_leaf

    def _zbl_leaves(self) -> list[int]:
        return [i for i in self.model.layout.nodes[0].children
                if isinstance(self.model.layout.nodes[i].term, ZBL)]

    def fitted_value(self) -> np.ndarray:
        """V_fit(i): the root's value without its ZBL summands, shape (n,) [eV]."""
        v = self.value(0)
        for i in self._zbl_leaves():
            v = v - self.value(i)
        return v

    def site_energy(self) -> np.ndarray:
        """Site energies E_i = S_i V_fit(i) + (1 − S_i) E_ref(Z_i) + E_ZBL(i), shape (n,)
        [eV]: the fitted part switched, the ZBL core never (MODEL_SPEC §10)."""
        if self.model.version < 2:
            return self.value(0)
        S_n, _ = self.switch()
        e_ref = self.model.params["w.e_ref"][self.system.species_n]
        zbl = self.value(0) - self.fitted_value()
        return e_ref + S_n * (self.fitted_value() - e_ref) + zbl

    def site_energy_vjp(self, a: np.ndarray, grad: "_Grad", cols: slice) -> None:
        """Accumulate Σ_i a[i, m] ∂E_i/∂D_p (E_i of :meth:`site_energy`) into ``cols``."""
        if self.model.version < 2:
            self.vjp(0, a, grad, cols)
            return
        S_n, dS_p = self.switch()
        root = self.model.layout.nodes[0]
        for i in root.children if isinstance(root.term, Sum) else [0]:
            self.vjp(i, a if i in self._zbl_leaves() else a * S_n[:, None], grad, cols)
        s = self.system
        dv = self.fitted_value() - self.model.params["w.e_ref"][s.species_n]
        if np.any(dS_p):
            grad.R[:, cols] += (dS_p * dv[s.i_p])[:, None] * a[s.i_p]
        dS_df = self.switch_feature_gradient()
        if dS_df is not None:
            self.features_vjp(dS_df * dv[:, None], a, grad, cols)

    # --------------------------------------------------------------- bases
    def basis(self, b: int):
        if b not in self._basis:
            m = self.model
            spec = m.layout.bases[b].spec
            alpha = beta = None
            if spec.kind == "G":
                alpha = float(m.params[f"b{b + 1}.alpha"])
                beta = float(m.params[f"b{b + 1}.beta"])
                if not (alpha > 0 and beta > 0):
                    raise FitError(f"basis b{b + 1}: α and β must be positive, found α={alpha}, β={beta}")
            r, fc, dfc, dc = self.radial()
            g, dg = basis_fdf(spec.kind, r, fc, dfc, m.cutoff, spec.K, alpha, beta)
            self._basis[b] = (g, dg * dc[:, None])
        return self._basis[b]

    def phi(self, b: int) -> np.ndarray:
        """φ_k^(s)(i), shape (n, S, K)."""
        if b not in self._phi:
            s = self.system
            g = self.basis(b)[0]
            self._phi[b] = (s.gather_centre @ g).reshape(s.n_atoms, s.n_species, g.shape[1])
        return self._phi[b]

    def rho(self, b: int) -> np.ndarray:
        """ρ_k^(s)(i) = Σ_j f_c(r_ij) φ_k^(s)(j), shape (n, S, K)."""
        if b not in self._rho:
            s = self.system
            phi = self.phi(b)
            flat = phi.reshape(s.n_atoms, -1)[s.j_p] * self.radial()[1][:, None]
            self._rho[b] = (s.sum_centre @ flat).reshape(phi.shape)
        return self._rho[b]

    def scaled(self, node) -> tuple[np.ndarray, np.ndarray]:
        """(u, scale) for an E or N leaf: u = φ/φ_max or ρ/ρ_max, shape (n, S, K)."""
        b = node.basis
        if isinstance(node.term, NeighbourExponentiated):
            scale = self.model.params[f"b{b + 1}.rho_max"]
            return self.rho(b) / scale, scale
        scale = self.model.params[f"b{b + 1}.phi_max"]
        return self.phi(b) / scale, scale

    # ------------------------------------------------------------- features
    def features(self, idx: int) -> np.ndarray:
        """Per-atom features of a leaf's coefficient block, shape (n, size of nI.c);
        the leaf's value without shift is features @ c.ravel()."""
        node = self.model.layout.nodes[idx]
        t = node.term
        s = self.system
        S = s.n_species
        onehot = np.eye(S)[s.species_n]                         # (n, S)
        if isinstance(t, Linear):
            phi = self.phi(node.basis)                           # (n, S, K)
            F = onehot[:, :, None, None] * phi[:, None, :, :]
        elif isinstance(t, (Exponentiated, NeighbourExponentiated)):
            u, _ = self.scaled(node)
            gamma = self.model.params[f"n{idx}.gamma"]
            x, _ = exp_feature_fdf(gamma[None, None, :, None], u[:, :, None, :], self.tau)   # (n, S, L, K)
            F = onehot[:, :, None, None, None] * x[:, None]
        elif isinstance(t, Angular):
            q = self.bounded_angular(idx)[0]                     # (n, npair, K, P+1)
            F = onehot[:, :, None, None, None] * q[:, None]
        else:
            raise TypeError(t)
        return F.reshape(s.n_atoms, -1)

    def angular(self, idx: int):
        """q_kp^(s1 s2)(i) of an A leaf, shape (n, S(S+1)/2, K, P+1), and moments."""
        if idx not in self._ang:
            node = self.model.layout.nodes[idx]
            t = node.term
            s = self.system
            S = s.n_species
            g, dg = self.basis(node.basis)
            Yc, Ys, dYc, dYs, lm = angular_tables(s.u_pc, t.P)
            K, M = g.shape[1], len(lm)
            Ac = (s.gather_centre @ (g[:, :, None] * Yc[:, None, :]).reshape(-1, K * M)).reshape(s.n_atoms, S, K, M)
            As = (s.gather_centre @ (g[:, :, None] * Ys[:, None, :]).reshape(-1, K * M)).reshape(s.n_atoms, S, K, M)
            g2 = (s.gather_centre @ (g * g)).reshape(s.n_atoms, S, K)
            w = np.concatenate(angular_weights(t.P))                 # (M,)
            l_of = np.array([l for l, _ in lm])
            pairs = [(a, b) for a in range(S) for b in range(a, S)]
            q = np.zeros((s.n_atoms, len(pairs), K, t.P + 1))
            for ip, (a, b) in enumerate(pairs):
                prod = (Ac[:, a] * Ac[:, b] + As[:, a] * As[:, b]) * w          # (n, K, M)
                for l in range(t.P + 1):
                    q[:, ip, :, l] = prod[:, :, l_of == l].sum(axis=2)
                if a == b:
                    q[:, ip] -= g2[:, a][:, :, None]
                else:
                    q[:, ip] *= 2.0
            self._ang[idx] = (q, Ac, As, Yc, Ys, dYc, dYs, w, l_of, pairs)
        return self._ang[idx]

    def bounded_angular(self, idx: int) -> tuple[np.ndarray, np.ndarray]:
        """The invariants an A leaf uses and their derivative with respect to q,
        shape (n, S(S+1)/2, K, P+1) each: format v2 q_max·x(0, q/q_max) (saturating
        past q_max, MODEL_SPEC §10); format v1 q itself (derivative 1)."""
        if idx not in self._bounded_ang:
            q = self.angular(idx)[0]
            if self.model.version < 2:
                self._bounded_ang[idx] = (q, np.ones_like(q))
            else:
                qmax = self.model.params[f"n{idx}.q_max"]
                x, dx = exp_feature_fdf(0.0, q / qmax, self.tau)
                self._bounded_ang[idx] = (qmax * x, dx)
        return self._bounded_ang[idx]

    # -------------------------------------------------------------- values
    def value(self, idx: int) -> np.ndarray:
        """V(i) of node idx (shift included where the node carries one), shape (n,)."""
        if idx in self._value:
            return self._value[idx]
        lay = self.model.layout
        node = lay.nodes[idx]
        t = node.term
        s = self.system
        if isinstance(t, Sum):
            v = sum(self.value(c) for c in node.children)
        elif isinstance(t, Product):
            v = self.value(node.children[0]) * self.value(node.children[1])
        elif isinstance(t, ZBL):
            e, _ = self.zbl(t)
            v = 0.5 * np.bincount(s.i_p, weights=e, minlength=s.n_atoms)
        else:
            v = self.features(idx) @ self.model.params[f"n{idx}.c"].ravel()
        if node.has_shift:
            v = v + self.model.params[f"n{idx}.shift"][s.species_n]
        self._value[idx] = v
        return v

    def zbl(self, t: ZBL):
        s = self.system
        z = np.array([atomic_number(x) for x in self.model.species], dtype=float)
        return zbl_pair_fdf(s.r_p, z[s.species_n[s.i_p]], z[s.channel_p], t.r_in, t.r_out)

    # ---------------------------------------------------------------- VJPs
    def vjp(self, idx: int, a: np.ndarray, grad: _Grad, cols: slice) -> None:
        """Accumulate Σ_i a[i, m] ∂V_idx(i)/∂D_p into grad columns ``cols``.

        a : (n, m) adjoints, m = cols length.
        """
        lay = self.model.layout
        node = lay.nodes[idx]
        t = node.term
        s = self.system
        if isinstance(t, Sum):
            for c in node.children:
                self.vjp(c, a, grad, cols)
        elif isinstance(t, Product):
            left, right = node.children
            self.vjp(left, a * self.value(right)[:, None], grad, cols)
            self.vjp(right, a * self.value(left)[:, None], grad, cols)
        elif isinstance(t, ZBL):
            _, de = self.zbl(t)
            grad.R[:, cols] += 0.5 * de[:, None] * a[s.i_p]
        elif isinstance(t, Linear):
            c = self.model.params[f"n{idx}.c"]                  # (S, S, K)
            lam = c[s.species_n][:, :, :, None] * a[:, None, None, :]
            grad.add_lam(node.basis, t.basis.K, cols, lam)
        elif isinstance(t, (Exponentiated, NeighbourExponentiated)):
            c = self.model.params[f"n{idx}.c"]                  # (S, S, L, K)
            gamma = self.model.params[f"n{idx}.gamma"]
            u, scale = self.scaled(node)
            _, dx = exp_feature_fdf(gamma[None, None, :, None], u[:, :, None, :], self.tau)   # (n, S, L, K)
            D = (c[s.species_n] * dx).sum(axis=2) / scale        # (n, S, K)
            lam = D[:, :, :, None] * a[:, None, None, :]         # (n, S, K, m)
            if isinstance(t, Exponentiated):
                grad.add_lam(node.basis, t.basis.K, cols, lam)
            else:
                self._rho_vjp(node.basis, t.basis.K, lam, grad, cols)
        elif isinstance(t, Angular):
            self._angular_vjp(idx, a, grad, cols, columns=False)
        else:
            raise TypeError(t)

    def _rho_vjp(self, b: int, K: int, lam_rho: np.ndarray, grad: _Grad, cols: slice) -> None:
        """Chain λ_ρ(i,s,k,m) = ∂/∂ρ through ρ(i) = Σ_j f_c(c(r_ij)) φ(j)."""
        s = self.system
        _, fc, dfc, dc = self.radial()
        phi = self.phi(b)
        n, S = s.n_atoms, s.n_species
        m = lam_rho.shape[-1]
        lr = lam_rho.reshape(n, S * K, m)
        # direct: ∂ρ(i)/∂r_p through f_c(r_p): R_p = Σ_{s,k} λ_ρ(i_p) φ(j_p) f_c'(r_p)
        phj = phi.reshape(n, S * K)
        R = np.zeros((s.n_pairs, m))
        for q in range(S * K):
            R += lr[s.i_p, q, :] * phj[s.j_p, q][:, None]
        grad.R[:, cols] += R * (dfc * dc)[:, None]
        # adjoint on φ(j): ν(j) = Σ_{p: j_p=j} λ_ρ(i_p) f_c(r_p)
        nu = np.empty((n, S * K, m))
        for q in range(S * K):
            nu[:, q, :] = s.sum_neighbour @ (lr[s.i_p, q, :] * fc[:, None])
        grad.add_lam(b, K, cols, nu.reshape(n, S, K, m))

    def _angular_vjp(self, idx: int, a: np.ndarray, grad: _Grad, cols: slice, columns: bool) -> None:
        """VJP of an A leaf. With ``columns`` the adjoint a has one column per
        coefficient (feature mode, evaluated column by column: each touches one
        (k, l)); otherwise the coefficients are contracted, in chunks of adjoint
        columns so that no (pairs × K × harmonics × columns) array is large."""
        if columns:
            self._angular_feature_vjp(idx, a, grad, cols)
            return
        node = self.model.layout.nodes[idx]
        s = self.system
        K = self.basis(node.basis)[0].shape[1]
        M = self.angular(idx)[3].shape[1]
        chunk = max(1, int(2e7 // max(1, s.n_pairs * K * M)))
        for lo in range(0, a.shape[1], chunk):
            hi = min(a.shape[1], lo + chunk)
            self._angular_vjp_contracted(idx, a[:, lo:hi], grad, slice(cols.start + lo, cols.start + hi))

    def _angular_vjp_contracted(self, idx: int, a: np.ndarray, grad: _Grad, cols: slice) -> None:
        node = self.model.layout.nodes[idx]
        s = self.system
        S = s.n_species
        q, Ac, As, Yc, Ys, dYc, dYs, w, l_of, pairs = self.angular(idx)
        g, dg = self.basis(node.basis)
        K, M = g.shape[1], Yc.shape[1]
        c = self.model.params[f"n{idx}.c"]                   # (S, npair, K, P1)
        dsat = self.bounded_angular(idx)[1]                     # (n, npair, K, P1)
        Lam = (c[s.species_n] * dsat)[..., None] * a[:, None, None, None, :]   # (n, npair, K, P1, m)
        m = Lam.shape[-1]
        LamM = Lam[:, :, :, l_of, :] * w[None, None, None, :, None]         # (n, npair, K, M, m)
        pair_index = {}
        for ip, (x, y) in enumerate(pairs):
            pair_index[(x, y)] = pair_index[(y, x)] = ip
        # B^c[i, s, k, lm, m] = 2 Σ_s' Λ[i, pair(s,s'), k, lm] A^c[i, s', k, lm]
        Bc = np.zeros((s.n_atoms, S, K, M, m))
        Bs = np.zeros_like(Bc)
        for x in range(S):
            for y in range(S):
                ip = pair_index[(x, y)]
                Bc[:, x] += 2.0 * LamM[:, ip] * Ac[:, y][..., None]
                Bs[:, x] += 2.0 * LamM[:, ip] * As[:, y][..., None]
        rows = s.i_p * S + s.channel_p
        Bcp = Bc.reshape(s.n_atoms * S, K, M, m)[rows]                  # (p, K, M, m)
        Bsp = Bs.reshape(s.n_atoms * S, K, M, m)[rows]
        # radial: Σ_{k,lm} (Bc Yc + Bs Ys) dg
        R = np.einsum("pkjm,pj,pk->pm", Bcp, Yc, dg) + np.einsum("pkjm,pj,pk->pm", Bsp, Ys, dg)
        # self term −Σ_j ĝ²: −2 Σ_k Σ_l Λ[i, pair(s,s), k, l] g dg
        self_ip = np.array([pair_index[(x, x)] for x in range(S)])
        Lself = Lam.sum(axis=3)[np.arange(s.n_atoms)[:, None], self_ip[None, :]]   # (n, S, K, m)
        Lself_p = Lself.reshape(s.n_atoms * S, K, m)[rows]
        R -= 2.0 * np.einsum("pkm,pk->pm", Lself_p, g * dg)
        grad.R[:, cols] += R
        # vector: Σ_{k,lm} g (Bc dYc_proj + Bs dYs_proj)
        Hc = np.einsum("pkjm,pk->pjm", Bcp, g)
        Hs = np.einsum("pkjm,pk->pjm", Bsp, g)
        V = np.einsum("pjm,pcj->pcm", Hc, dYc) + np.einsum("pjm,pcj->pcm", Hs, dYs)
        grad.add_vector(cols, self._project(V))

    def _project(self, V: np.ndarray) -> np.ndarray:
        """Gradient of f(û) w.r.t. D from its gradient in û: (V − (û·V) û)/r, V (p, 3, m)."""
        s = self.system
        radial = np.einsum("pcm,pc->pm", V, s.u_pc)
        return (V - radial[:, None, :] * s.u_pc[:, :, None]) / s.r_p[:, None, None]

    def _angular_feature_vjp(self, idx: int, a: np.ndarray, grad: _Grad, cols: slice) -> None:
        """Column by column: column (Z, s1s2, k, l) has adjoint a[:, col] on
        q_kl^(s1 s2)(i) of atoms of species Z; ∂q/∂A^c_klm(s1) = 2 w_lm A^c_klm(s2)."""
        node = self.model.layout.nodes[idx]
        s = self.system
        S = s.n_species
        q, Ac, As, Yc, Ys, dYc, dYs, w, l_of, pairs = self.angular(idx)
        g, dg = self.basis(node.basis)
        K, P1 = g.shape[1], node.term.P + 1
        npair = len(pairs)
        ncol = a.shape[1]
        onehot = np.eye(S)[s.species_n]
        dsat = self.bounded_angular(idx)[1]                     # (n, npair, K, P1)
        A5 = a.reshape(s.n_atoms, S, npair, K, P1) * onehot[:, :, None, None, None] * dsat[:, None]
        cidx = np.arange(ncol).reshape(S, npair, K, P1)
        R = np.zeros((s.n_pairs, ncol))
        V = np.zeros((s.n_pairs, 3, ncol))
        chan = s.channel_p
        harmonics = [np.flatnonzero(l_of == l) for l in range(P1)]
        for ip, (x, y) in enumerate(pairs):
            sel = ((chan == x) | (chan == y)).astype(float)
            other = np.where(chan == x, y, x)
            for k in range(K):
                Acp = Ac[s.i_p, other, k]                    # (p, M)
                Asp = As[s.i_p, other, k]
                gdg = g[:, k] * dg[:, k]
                for z in range(S):
                    for l in range(P1):
                        lam = A5[:, z, ip, k, l]
                        if not lam.any():
                            continue
                        col = cidx[z, ip, k, l]
                        js = harmonics[l]
                        f = (2.0 * lam[s.i_p] * sel)[:, None] * w[js][None, :]
                        Bc = f * Acp[:, js]
                        Bs = f * Asp[:, js]
                        R[:, col] = ((Bc * Yc[:, js]).sum(1) + (Bs * Ys[:, js]).sum(1)) * dg[:, k]
                        if x == y:
                            R[:, col] -= 2.0 * lam[s.i_p] * (chan == x) * gdg
                        V[:, :, col] = g[:, k, None] * (np.einsum("pj,pcj->pc", Bc, dYc[:, :, js])
                                                        + np.einsum("pj,pcj->pc", Bs, dYs[:, :, js]))
        grad.R[:, cols] += R
        grad.add_vector(cols, self._project(V))

    def feature_vjp(self, idx: int, A: np.ndarray, grad: _Grad, cols: slice) -> None:
        """Accumulate, for every coefficient column c of leaf idx,
        Σ_i A[i, c] ∂F_c(i)/∂D_p (A: (n, size of nI.c))."""
        node = self.model.layout.nodes[idx]
        t = node.term
        s = self.system
        S = s.n_species
        onehot = np.eye(S)[s.species_n]
        if isinstance(t, Angular):
            self._angular_vjp(idx, A, grad, cols, columns=True)
            return
        K = t.basis.K
        L = t.L if isinstance(t, (Exponentiated, NeighbourExponentiated)) else 1
        A5 = A.reshape(s.n_atoms, S, S, L, K) * onehot[:, :, None, None, None]   # zero unless Z_i = Z
        if isinstance(t, Linear):
            T = A5[:, :, :, 0, :]                                 # (n, Z, s, K)
        else:
            gamma = self.model.params[f"n{idx}.gamma"]
            u, scale = self.scaled(node)
            _, dx = exp_feature_fdf(gamma[None, None, :, None], u[:, :, None, :], self.tau)   # (n, s, L, K)
            T = A5 * (dx / scale[:, None, :])[:, None]                              # (n, Z, s, L, K)
        ncol = A.shape[1]
        if isinstance(t, NeighbourExponentiated):
            # per column: λ_ρ nonzero only at its (s, k)
            phi = self.phi(node.basis)                                  # (n, s, K)
            Tp = T[s.i_p]                                               # (p, Z, s, L, K)
            _, fc, dfc, dc = self.radial()
            direct = Tp * phi[s.j_p][:, None, :, None, :] * (dfc * dc)[:, None, None, None, None]
            grad.R[:, cols] += direct.reshape(s.n_pairs, ncol)
            nu = (s.sum_neighbour @ (Tp * fc[:, None, None, None, None]).reshape(s.n_pairs, ncol))
            nu = nu.reshape(T.shape)                                    # (n, Z, s, L, K)
            src = nu
        else:
            src = T
        # pairs contribute to column (.., s, .., k) only when channel_p == s
        chan = (s.channel_p[:, None] == np.arange(S)[None, :]).astype(float)   # (p, s)
        dg = self.basis(node.basis)[1]                                          # (p, K)
        srcp = src[s.i_p]
        if isinstance(t, Linear):
            R = srcp * chan[:, None, :, None] * dg[:, None, None, :]
        else:
            R = srcp * chan[:, None, :, None, None] * dg[:, None, None, None, :]
        grad.R[:, cols] += R.reshape(s.n_pairs, ncol)


class Model:
    """A composed pair-cluster potential (MODEL_SPEC §1–5).

    Parameters
    ----------
    expression : str
        Paper notation, e.g. ``"E[G8L4] + N[E[G8L4]] + ZBL(1.6, 2.4)"``.
    species : sequence of str
        Chemical symbols, in the order that indexes every species axis.
    cutoff : float
        Cutoff radius r_c [Å] (fixed hyperparameter).
    params : dict, optional
        Block name → array (see :attr:`layout` ``.blocks``); missing blocks get
        defaults (α = 0.5 Å⁻², β = 1.6, γ_l spread over ±0.5, coefficients and
        shifts 0, scales 1, inner window off (r_a = r_b = 0), τ = 0.3).
    version : int
        Parameter file format whose site energy the model evaluates: 2 (default;
        inner window, saturating features and bounded angular invariants of
        MODEL_SPEC §10) or 1 (as the first release: no window, quadratic
        continuation, unbounded A invariants).

    Raises
    ------
    ExpressionError
        For an invalid expression, species list or cutoff (e.g. ZBL r_out > r_c).
    """

    def __init__(self, expression: str, species, cutoff: float, params: dict | None = None, version: int = 2):
        self.layout: Layout = layout(parse(expression), tuple(species), version)
        self.cutoff = float(cutoff)
        if not self.cutoff > 0:
            raise ExpressionError(f"cutoff {cutoff!r}: expected a positive radius in Å")
        for n in self.layout.nodes:
            if isinstance(n.term, ZBL) and n.term.r_out > self.cutoff:
                raise ExpressionError(f"{n.term}: r_out = {n.term.r_out} Å exceeds the cutoff {self.cutoff} Å")
        self.params: dict[str, np.ndarray] = {}
        for b in self.layout.blocks:
            self.params[b.name] = self._default(b)
        if params:
            for k, v in params.items():
                self.set_block(k, v)

    # ----------------------------------------------------------- metadata
    @property
    def expression(self) -> str:
        return self.layout.expression

    @property
    def species(self) -> tuple[str, ...]:
        return self.layout.species

    @property
    def version(self) -> int:
        """Parameter file format version whose site energy this model evaluates (1 or 2)."""
        return self.layout.version

    @property
    def n_linear(self) -> int:
        return self.layout.n_linear

    @property
    def n_nonlinear(self) -> int:
        return self.layout.n_nonlinear

    @property
    def influence_distance(self) -> float:
        """2 r_c with an N term (second hop), r_c otherwise [Å]."""
        return 2.0 * self.cutoff if self.layout.has_neighbour_term else self.cutoff

    def _default(self, block) -> np.ndarray:
        leaf = block.name.split(".")[-1]
        if leaf == "gamma":
            L = block.shape[0]
            return np.linspace(-0.5, 0.5, L) if L > 1 else np.array([DEFAULT_NONLINEAR["gamma"]])
        if leaf in ("alpha", "beta"):
            return np.array(DEFAULT_NONLINEAR[leaf])
        if leaf in ("phi_max", "rho_max", "q_max"):
            return np.ones(block.shape)
        if leaf == "tau":
            return np.array(DEFAULT_TAU)
        if leaf in ("gamma_lo", "gamma_hi"):      # grade off until fitted: U = 0, so γ = 0
            return np.full(block.shape, 1.0 if leaf == "gamma_lo" else 2.0)
        return np.zeros(block.shape)

    def grade_factor(self) -> np.ndarray:
        """The whitening factors U_Z of the extrapolation grade, unpacked from ``g.U``,
        shape (S, d, d), lower triangular (zeros for format v1 or an unfitted grade)."""
        if self.version < 2:
            return np.zeros((len(self.species), 0, 0))
        packed = self.params["g.U"]
        d = self.params["g.mu"].shape[1]
        U = np.zeros((packed.shape[0], d, d))
        r, c = np.tril_indices(d)
        U[:, r, c] = packed
        return U

    def compute_grade(self, systems: list[System], margin: float = 9.0, floor: float = 1e-4,
                      headroom: float = 1.0) -> dict:
        """Fit the extrapolation grade (MODEL_SPEC §10) to the atoms of ``systems``.

        Per centre species Z: μ_Z the mean and C_Z the covariance of the atoms'
        feature vectors f (:meth:`_Context.feature_vector`); C_Z + floor·tr(C_Z)/d·I
        = L Lᵀ (Cholesky) and U_Z = L⁻¹, so γ = |U(f − μ)|² is the squared
        Mahalanobis distance; γ_lo = the largest γ over the atoms (every atom the fit
        saw keeps its fitted energy), γ_hi = ``margin`` × γ_lo.

        Parameters
        ----------
        systems : list of System — the fitted configurations (priors included)
        margin : float > 1; floor : float > 0 (relative eigenvalue floor)

        Returns
        -------
        dict {species: {"d", "gamma_lo", "gamma_hi", "n_atoms"}}
        """
        if self.version < 2:
            return {}
        self.params["g.U"] = np.zeros(self.params["g.U"].shape)
        feats = [[] for _ in self.species]
        for sys_ in systems:
            ctx = _Context(self, sys_)
            f = ctx.feature_vector()
            for z in range(len(self.species)):
                feats[z].append(f[sys_.species_n == z])
        d = self.params["g.mu"].shape[1]
        r, c = np.tril_indices(d)
        out = {}
        for z, sym in enumerate(self.species):
            F = np.concatenate(feats[z]) if feats[z] else np.zeros((0, d))
            if len(F) < 2:
                continue
            mu = F.mean(axis=0)
            C = np.cov(F, rowvar=False).reshape(d, d)
            C = C + floor * max(np.trace(C) / d, 1e-300) * np.eye(d)
            L = np.linalg.cholesky(C)
            U = np.linalg.solve(L, np.eye(d))
            U = np.tril(U)
            gamma = np.sum(((F - mu) @ U.T) ** 2, axis=1)
            lo = max(headroom * float(gamma.max()), 1.0)     # > 0 even for identical atoms
            self.params["g.mu"][z] = mu
            self.params["g.U"][z] = U[r, c]
            self.params["g.gamma_lo"][z] = lo
            self.params["g.gamma_hi"][z] = margin * lo
            out[sym] = {"d": d, "gamma_lo": lo, "gamma_hi": margin * lo, "n_atoms": len(F)}
        return out

    def window_error(self, pair: str, r_a: float, r_b: float) -> str | None:
        """The format v2 rules tying the inner window [r_a, r_b] of species pair
        ``pair`` (``"Nb-Mo"``) to r_c and to every ZBL r_in (docs/parameter-file.md;
        the C reader's compot_window_error), as a message, or None when they hold."""
        if not r_a <= r_b < self.cutoff:
            return (f"inner window of {pair} needs r_a <= r_b < r_c; expected {r_a!r} <= r_b < {self.cutoff!r}, "
                    f"found r_b = {r_b!r}")
        for node in self.layout.nodes:
            if isinstance(node.term, ZBL) and not r_b <= node.term.r_in:
                return (f"{node.term} must be fully on wherever the inner window of {pair} is not; "
                        f"expected r_b <= r_in = {node.term.r_in!r}, found r_b = {r_b!r}")
        return None

    def window_problems(self) -> list[str]:
        """:meth:`window_error` of every species pair's window, empty when all hold
        (always for format v1)."""
        if self.version < 2:
            return []
        pairs = self.layout.block("w.r_a").labels[0]
        errors = (self.window_error(p.replace(".", "-"), ra, rb)
                  for p, ra, rb in zip(pairs, self.params["w.r_a"], self.params["w.r_b"]))
        return [e for e in errors if e]

    def set_block(self, name: str, value) -> None:
        """Set a parameter block, checking its shape; KeyError/ValueError name the block."""
        if name not in self.params:
            raise KeyError(f"unknown parameter block {name!r}; expected one of {', '.join(self.params)}")
        arr = np.array(value, dtype=float)
        want = self.layout.block(name).shape
        if arr.shape != want:
            if arr.size == int(np.prod(want)):
                arr = arr.reshape(want)
            else:
                raise ValueError(f"parameter block {name!r}: expected shape {want}, found {arr.shape}")
        self.params[name] = arr

    def copy(self) -> "Model":
        return Model(self.expression, self.species, self.cutoff, {k: v.copy() for k, v in self.params.items()},
                     self.version)

    def blocks(self, role: str | None = None, under: int | None = None) -> list[str]:
        """Block names with a role ('linear', 'nonlinear', 'fixed'), optionally
        restricted to node ``under`` and its descendants (with their bases)."""
        names = [b.name for b in self.layout.blocks if role is None or b.role == role]
        if under is None:
            return names
        sub = set(self.subtree(under))
        bases = {self.layout.nodes[i].basis for i in sub if self.layout.nodes[i].basis is not None}
        keep = {f"n{i}" for i in sub} | {f"b{b + 1}" for b in bases}
        return [n for n in names if n.split(".")[0] in keep]

    def subtree(self, idx: int) -> list[int]:
        out = [idx]
        for c in self.layout.nodes[idx].children:
            out.extend(self.subtree(c))
        return out

    def vector(self, names: list[str]) -> np.ndarray:
        return np.concatenate([self.params[n].ravel() for n in names]) if names else np.zeros(0)

    def set_vector(self, names: list[str], x: np.ndarray) -> None:
        pos = 0
        for n in names:
            size = self.params[n].size
            self.params[n] = np.asarray(x[pos:pos + size], dtype=float).reshape(self.params[n].shape)
            pos += size
        if pos != len(x):
            raise ValueError(f"expected {pos} values for blocks {names}, found {len(x)}")

    # --------------------------------------------------------- evaluation
    def system(self, atoms_list, sources=None) -> System:
        """Neighbour data of a batch of configurations for this model's cutoff."""
        return System.from_atoms(atoms_list, self.species, self.cutoff, sources)

    def context(self, system: System) -> _Context:
        return _Context(self, system)

    def evaluate(self, system: System, forces: bool = True, virial: bool = True) -> Prediction:
        """Energies, forces and virial of every configuration of a batch.

        Parameters
        ----------
        system : System
        forces, virial : bool — whether to compute them

        Returns
        -------
        Prediction
        """
        ctx = _Context(self, system)
        e_n = ctx.site_energy()
        e_m = system.sum_config @ e_n
        F = W = None
        if forces or virial:
            grad = _Grad(system, 1)
            ctx.site_energy_vjp(np.ones((system.n_atoms, 1)), grad, slice(0, 1))
            G = grad.finish(ctx)[:, :, 0]
            if forces:
                F = system.forces(G)
            if virial:
                W = system.virials(G)
        return Prediction(e_m, e_n, F, W)

    def compute_scales(self, systems: list[System], bases: list[int] | None = None) -> None:
        """Set φ_max and ρ_max of the given bases (all by default) to the largest
        |φ_k^(s)(i)|, |ρ_k^(s)(i)| over the atoms of ``systems`` (MODEL_SPEC §3),
        and, in format v2, q_max of the A leaves on those bases to the largest
        |q_kp^(s1 s2)(i)| (MODEL_SPEC §10); a channel that never occurs gets scale 1."""
        bases = range(len(self.layout.bases)) if bases is None else bases
        for b in bases:
            spec = self.layout.bases[b].spec
            S = len(self.species)
            pmax = np.zeros((S, spec.K))
            rmax = np.zeros((S, spec.K))
            need_rho = any(isinstance(self.layout.nodes[i].term, NeighbourExponentiated)
                           for i in self.layout.bases[b].users)
            for sys_ in systems:
                ctx = _Context(self, sys_)
                pmax = np.maximum(pmax, np.abs(ctx.phi(b)).max(axis=0, initial=0.0))
                if need_rho:
                    rmax = np.maximum(rmax, np.abs(ctx.rho(b)).max(axis=0, initial=0.0))
            self.params[f"b{b + 1}.phi_max"] = np.where(pmax > 0, pmax, 1.0)
            self.params[f"b{b + 1}.rho_max"] = np.where(rmax > 0, rmax, 1.0)
            if self.version < 2:
                continue
            for i in self.layout.bases[b].users:
                if not isinstance(self.layout.nodes[i].term, Angular):
                    continue
                qmax = np.zeros(self.params[f"n{i}.q_max"].shape)
                for sys_ in systems:
                    q = _Context(self, sys_).angular(i)[0]
                    qmax = np.maximum(qmax, np.abs(q).max(axis=0, initial=0.0))
                self.params[f"n{i}.q_max"] = np.where(qmax > 0, qmax, 1.0)

    # ----------------------------------------------------------- training
    def linear_design(self, system: System, names: list[str], forces: bool = True):
        """Rows of the least-squares problem for linear blocks ``names``.

        The model must be linear in the union of those blocks (no two in the two
        factors of one product). Then, for every configuration m and atom i,
        E_m = Σ_c Jᴱ_mc θ_c + rest_m and F_i = Σ_c Jᶠ_ic θ_c + rest_i, with θ the
        blocks' values in order.

        Parameters
        ----------
        system : System
        names : list of str — linear block names (``n1.c``, ``n0.shift``)
        forces : bool — also return force rows

        Returns
        -------
        JE : ndarray, shape (m, n_cols) [eV per unit θ]
        JF : ndarray, shape (n, 3, n_cols) or None [eV/Å per unit θ]
        pred : Prediction at the current parameters (to form ``rest``)
        """
        ctx = _Context(self, system)
        offsets = {}
        pos = 0
        for n in names:
            offsets[n] = slice(pos, pos + self.params[n].size)
            pos += self.params[n].size
        Phi = np.zeros((system.n_atoms, pos))
        self._columns(ctx, 0, names, offsets, Phi, np.ones(system.n_atoms))
        # format v2 atom switch (MODEL_SPEC §10): E_i = S_i V_fit(i) + (1 − S_i) E_ref + E_ZBL,
        # so every column is S_i Φ(i); E_ref and ZBL are in the rest
        S_n, dS_p = ctx.switch()
        Phi_fit = Phi
        if self.version >= 2:
            Phi = Phi * S_n[:, None]
        JE = system.sum_config @ Phi
        pred_e = ctx.site_energy()
        JF = None
        G1 = None
        if forces:
            grad = _Grad(system, pos + 1)
            self._column_vjp(ctx, 0, names, offsets, S_n, grad)
            if np.any(dS_p):
                grad.R[:, :pos] += dS_p[:, None] * Phi_fit[system.i_p]
            dS_df = ctx.switch_feature_gradient()
            if dS_df is not None:
                # Φ_c(i) ∂S_i/∂D through the grade: one feature VJP per column
                ctx.features_vjp(dS_df, Phi_fit, grad, slice(0, pos))
            ctx.site_energy_vjp(np.ones((system.n_atoms, 1)), grad, slice(pos, pos + 1))
            Fall = grad.forces(ctx)
            JF = Fall[:, :, :pos]
            G1 = Fall[:, :, pos]
        pred = Prediction(system.sum_config @ pred_e, pred_e, G1, None)
        return JE, JF, pred

    def _columns(self, ctx, idx, names, offsets, Phi, weight):
        """Fill Φ[:, cols] with the per-atom features of the active blocks under
        node idx, each multiplied by ``weight`` (the product of the other factors)."""
        node = self.layout.nodes[idx]
        t = node.term
        cname = f"n{idx}.c"
        if cname in names:
            Phi[:, offsets[cname]] = ctx.features(idx) * weight[:, None]
        sname = f"n{idx}.shift"
        if sname in names:
            Phi[:, offsets[sname]] = np.eye(len(self.species))[ctx.system.species_n] * weight[:, None]
        if isinstance(t, Sum):
            for c in node.children:
                self._columns(ctx, c, names, offsets, Phi, weight)
        elif isinstance(t, Product):
            left, right = node.children
            self._columns(ctx, left, names, offsets, Phi, weight * ctx.value(right))
            self._columns(ctx, right, names, offsets, Phi, weight * ctx.value(left))

    def _column_vjp(self, ctx, idx, names, offsets, weight, grad):
        """Gradient of Σ_i Φ_c(i) for every active column c (see :meth:`_columns`)."""
        node = self.layout.nodes[idx]
        t = node.term
        cname = f"n{idx}.c"
        if cname in names:
            cols = offsets[cname]
            A = np.repeat(weight[:, None], cols.stop - cols.start, axis=1)
            ctx.feature_vjp(idx, A, grad, cols)
        if isinstance(t, Sum):
            for c in node.children:
                self._column_vjp(ctx, c, names, offsets, weight, grad)
        elif isinstance(t, Product):
            left, right = node.children
            for this, other in ((left, right), (right, left)):
                active = [n for n in names if n in self.blocks("linear", under=this)]
                if not active:
                    continue
                self._column_vjp(ctx, this, names, offsets, weight * ctx.value(other), grad)
                # the other factor's value varies with positions: Σ_i Φ_this,c(i) w(i) ∂V_other(i)
                sub = np.zeros((ctx.system.n_atoms, grad.m))
                self._columns(ctx, this, names, offsets, sub, weight)
                used = [offsets[n] for n in active]
                lo, hi = min(s.start for s in used), max(s.stop for s in used)
                ctx.vjp(other, sub[:, lo:hi], grad, slice(lo, hi))
