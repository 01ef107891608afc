"""Per-batch pair quantities shared by every fitted term: what the terms see of
each pair (the effective distance of format v2 and its cutoff), the two-body
basis tables ĝ_k(r_p), the cluster functions φ_k^(s)(i) (paper Eq. 47) and the
neighbour aggregates ρ_k^(s)(i) of MODEL_SPEC §3, with the backward pass of ρ.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .errors import FitError
from .functions import cutoff_fdf, effective_distance_fdf, radial_basis_fdf
from .neighbours import System
from .safety import pair_window

__all__ = ["Radial", "BasisValues", "PairBasis"]


class Radial(NamedTuple):
    """What the fitted terms see of each pair, shape (n_pairs,) each.

    r : effective distance c(r_p) [Å] (format v1: r_p)
    fc : f_c(c) [-]
    dfc : df_c/dc [1/Å]
    dc : dc/dr [-]
    """

    r: np.ndarray
    fc: np.ndarray
    dfc: np.ndarray
    dc: np.ndarray


class BasisValues(NamedTuple):
    """ĝ_k(c(r_p)) [-] and its derivative with respect to r_p [1/Å], shape (n_pairs, K) each."""

    g: np.ndarray
    dg: np.ndarray


class PairBasis:
    """Pair geometry of one batch as the fitted terms see it (cached per batch).

    Parameters
    ----------
    model : Model
    system : System
    """

    def __init__(self, model, system: System):
        self.model = model
        self.system = system
        self._radial: Radial | None = None
        self._basis: dict[int, BasisValues] = {}
        self._phi: dict[int, np.ndarray] = {}
        self._rho: dict[int, np.ndarray] = {}
        self._gather: dict[tuple[int, int], sp.csr_matrix] = {}
        self._seen: dict[int, tuple[PairBasis, np.ndarray]] = {}

    # ------------------------------------------------- neighbour channels
    @property
    def n_channels(self) -> int:
        """Neighbour channels C of every basis: S (full chemistry, one per species)
        or the rank r of the species embedding."""
        r = self.model.layout.rank
        return self.system.n_species if r is None else r

    def weights(self, b: int) -> np.ndarray | None:
        """The species embedding W of basis b, shape (S, r) [-], or None for the
        full chemistry (W = I: a neighbour of species s counts in channel s only)."""
        if self.model.layout.rank is None:
            return None
        return self.model.params[f"b{b + 1}.w"]

    def channel_weights(self, b: int) -> np.ndarray:
        """W_(Z_j c) of every pair (i, j) and channel c, shape (n_pairs, C) [-]
        (one-hot in the neighbour species for the full chemistry)."""
        s = self.system
        W = self.weights(b)
        if W is None:
            return (s.channel_p[:, None] == np.arange(s.n_species)[None, :]).astype(float)
        return W[s.channel_p]

    def gather(self, b: int, power: int = 1) -> sp.csr_matrix:
        """Sparse (n·C, p) map summing pair values, weighted by W_(Z_j c)^power,
        into (centre atom, channel); the full chemistry's is
        :attr:`compot.neighbours.System.gather_centre` for every power."""
        W = self.weights(b)
        s = self.system
        if W is None:
            return s.gather_centre
        if (b, power) not in self._gather:
            C = W.shape[1]
            rows = (s.i_p[:, None] * C + np.arange(C)[None, :]).ravel()
            cols = np.repeat(np.arange(s.n_pairs), C)
            self._gather[(b, power)] = sp.csr_matrix(((W[s.channel_p] ** power).ravel(), (rows, cols)),
                                                     shape=(s.n_atoms * C, s.n_pairs))
        return self._gather[(b, power)]

    def pick(self, b: int, arr: np.ndarray, power: int = 1) -> np.ndarray:
        """Per pair p = (i, j): Σ_c W_(Z_j c)^power arr[i, c, …], the transpose of
        :meth:`gather`; arr shape (n_atoms, C, …), result shape (n_pairs, …)."""
        s = self.system
        W = self.weights(b)
        if W is None:
            rows = s.i_p * s.n_species + s.channel_p
            return arr.reshape((s.n_atoms * s.n_species,) + arr.shape[2:])[rows]
        Wp = W[s.channel_p] ** power
        out = np.zeros((s.n_pairs,) + arr.shape[2:])
        for c in range(W.shape[1]):
            out += Wp[:, c].reshape((-1,) + (1,) * (arr.ndim - 2)) * arr[s.i_p, c]
        return out

    def pick_contract(self, b: int, arr: np.ndarray, w_pk: np.ndarray, power: int = 1) -> np.ndarray:
        """Per pair p = (i, j): Σ_c Σ_k W_(Z_j c)^power arr[i, c, k, …] w_pk[p, k], i.e.
        ``einsum("pk…,pk->p…", pick(b, arr, power), w_pk)`` without forming the
        (n_pairs, K, …) gather: one sparse (n_pairs, n·C·K) matrix of the weights times
        arr; arr shape (n_atoms, C, K, …), w_pk shape (n_pairs, K), result shape
        (n_pairs, …). The gather is n_pairs·K·m numbers; with a few hundred columns m
        it was half of a linear design's time on the NbMoTaW data."""
        s = self.system
        n, C, K = arr.shape[:3]
        rest = arr.shape[3:]
        W = self.weights(b)
        if W is None:      # one channel per pair: K entries per row
            cols = (s.i_p * C + s.channel_p)[:, None] * K + np.arange(K)[None, :]
            vals = w_pk
        else:              # every channel c: C·K entries per row
            cols = ((s.i_p[:, None, None] * C + np.arange(C)[None, :, None]) * K
                    + np.arange(K)[None, None, :])
            vals = (W[s.channel_p] ** power)[:, :, None] * w_pk[:, None, :]
        per_row = cols[0].size if s.n_pairs else 0
        M = sp.csr_matrix((vals.ravel(), cols.ravel(), per_row * np.arange(s.n_pairs + 1)),
                          shape=(s.n_pairs, n * C * K))
        return np.asarray(M @ arr.reshape(n * C * K, -1)).reshape((s.n_pairs,) + rest)

    def radial(self) -> Radial:
        """The effective distance and its cutoff (format v2: pairs closer than r_b
        are seen at c(r) ≥ r_b − 0.11 (r_b − r_a), MODEL_SPEC §10; format v1: c = r)."""
        if self._radial is None:
            s = self.system
            ones = np.ones(s.n_pairs)
            self._radial = Radial(s.r_p, s.fc_p, s.dfc_p, ones)
            if self.model.version >= 2 and s.n_pairs:
                win = pair_window(self.model, s)
                if win.close.any():
                    r, fc, dfc, dc = s.r_p.copy(), s.fc_p.copy(), s.dfc_p.copy(), ones
                    r[win.close], dc[win.close] = effective_distance_fdf(s.r_p[win.close], win.r_a, win.r_b)
                    fc[win.close], dfc[win.close] = cutoff_fdf(r[win.close], self.model.cutoff)
                    self._radial = Radial(r, fc, dfc, dc)
        return self._radial

    def basis(self, b: int) -> BasisValues:
        """Basis b's ĝ_k at every pair (MODEL_SPEC §2), with the basis's own cutoff
        r_t where its term has one (``@r_t``; f_c and the Chebyshev argument use r_t).

        Raises
        ------
        FitError
            If a Gaussian basis has α ≤ 0 or β ≤ 0.
        """
        if b not in self._basis:
            m = self.model
            spec = m.layout.bases[b].spec
            alpha = beta = None
            if spec.kind == "G":
                alpha = float(m.params[f"b{b + 1}.alpha"])
                beta = float(m.params[f"b{b + 1}.beta"])
                if not (alpha > 0 and beta > 0):
                    raise FitError(f"basis b{b + 1}: α and β must be positive, found α={alpha}, β={beta}")
            rad = self.radial()
            if spec.cutoff is not None and spec.cutoff < m.cutoff:
                # a term cutoff (A[G8P4]@4.4): f_c(c; r_t), evaluated only on the pairs
                # with c < r_t (issue 13); ĝ = ĝ' = 0 on the others, as f_c(c; r_t) = 0
                r_t = spec.cutoff
                sel = np.flatnonzero(rad.r < r_t)
                g, dg = np.zeros((rad.r.size, spec.K)), np.zeros((rad.r.size, spec.K))
                fc, dfc = cutoff_fdf(rad.r[sel], r_t)
                g[sel], dg[sel] = radial_basis_fdf(spec.kind, rad.r[sel], fc, dfc, r_t, spec.K, alpha, beta)
            else:
                fc, dfc, r_c = rad.fc, rad.dfc, m.cutoff
                if spec.cutoff is not None:   # r_t = r_c
                    r_c = spec.cutoff
                    fc, dfc = cutoff_fdf(rad.r, r_c)
                g, dg = radial_basis_fdf(spec.kind, rad.r, fc, dfc, r_c, spec.K, alpha, beta)
            self._basis[b] = BasisValues(g, dg * rad.dc[:, None])
        return self._basis[b]

    def seen(self, b: int) -> tuple["PairBasis", np.ndarray | None]:
        """The pairs the leaves of basis b see (issue 13): with a term cutoff r_t < r_c,
        this batch restricted to the pairs with c < r_t (a PairBasis of
        :meth:`compot.neighbours.System.subset_pairs`, holding the same radial
        quantities and basis values) and their indices into this batch's pairs, cached;
        otherwise ``(self, None)``. The other pairs have ĝ = ĝ' = 0 for basis b, so a
        term that runs over the returned pairs only gives the same numbers."""
        m = self.model
        spec = m.layout.bases[b].spec
        if spec.cutoff is None or not spec.cutoff < m.cutoff:
            return self, None
        if b not in self._seen:
            rad, bv = self.radial(), self.basis(b)
            sel = np.flatnonzero(rad.r < spec.cutoff)
            sub = PairBasis(m, self.system.subset_pairs(sel))
            sub._radial = Radial(*(x[sel] for x in rad))
            sub._basis[b] = BasisValues(bv.g[sel], bv.dg[sel])
            self._seen[b] = (sub, sel)
        return self._seen[b]

    def phi(self, b: int) -> np.ndarray:
        """φ_k^(s)(i) = Σ_{j∈N(i), Z_j=s} ĝ_k(r_ij), shape (n_atoms, C, K) [-]; with a
        species embedding φ_k^(c)(i) = Σ_{j∈N(i)} W_(Z_j c) ĝ_k(r_ij)."""
        if b not in self._phi:
            s = self.system
            pb, _ = self.seen(b)          # with a term cutoff, only the pairs inside it
            g = pb.basis(b).g
            self._phi[b] = (pb.gather(b) @ g).reshape(s.n_atoms, self.n_channels, g.shape[1])
        return self._phi[b]

    def rho(self, b: int) -> np.ndarray:
        """ρ_k^(s)(i) = Σ_j f_c(r_ij) φ_k^(s)(j), shape (n_atoms, S, K) [-]."""
        if b not in self._rho:
            s = self.system
            phi = self.phi(b)
            flat = phi.reshape(s.n_atoms, -1)[s.j_p] * self.radial().fc[:, None]
            self._rho[b] = (s.sum_centre @ flat).reshape(phi.shape)
        return self._rho[b]

    def rho_vjp(self, b: int, lam_rho: np.ndarray, grad, cols: slice) -> None:
        """Chain λ_ρ(i, s, k, m) = ∂/∂ρ_k^(s)(i) through ρ(i) = Σ_j f_c(c(r_ij)) φ(j)
        (MODEL_SPEC §5, μ_k(j)) into ``grad`` columns ``cols``; λ_ρ shape (n_atoms, S, K, m)."""
        s = self.system
        rad = self.radial()
        phi = self.phi(b)
        n, S, K = s.n_atoms, phi.shape[1], phi.shape[2]
        m = lam_rho.shape[-1]
        lr = lam_rho.reshape(n, S * K, m)
        # direct: ∂ρ(i)/∂r_p through f_c(r_p): R_p = Σ_{s,k} λ_ρ(i_p) φ(j_p) f_c'(r_p)
        phj = phi.reshape(n, S * K)
        R = np.zeros((s.n_pairs, m))
        for q in range(S * K):
            R += lr[s.i_p, q, :] * phj[s.j_p, q][:, None]
        grad.R[:, cols] += R * (rad.dfc * rad.dc)[:, None]
        # adjoint on φ(j): ν(j) = Σ_{p: j_p=j} λ_ρ(i_p) f_c(r_p)
        nu = np.empty((n, S * K, m))
        for q in range(S * K):
            nu[:, q, :] = s.sum_neighbour @ (lr[s.i_p, q, :] * rad.fc[:, None])
        grad.add_lam(b, K, cols, nu.reshape(n, S, K, m))
