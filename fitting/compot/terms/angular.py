"""The angular pair-cluster term ``A[G<K>P<P>]`` (three-body, paper App. A,
Eq. 48–50; MODEL_SPEC §3 and §10).

Invariants, for neighbour species pair s1 ≤ s2:

    q_kp^(s1 s2)(i) = Σ_{j, m ∈ N(i), j ≠ m} ĝ_k(r_ij) ĝ_k(r_im) P_p(cos θ_jim)   (s1 = s2)

(twice the sum over j of species s1 and m of species s2 when s1 ≠ s2), evaluated
through the addition theorem with the moments A_kv^(s)(i) = Σ_{j: Z_j = s} ĝ_k(r_ij) Y_v(r̂_ij)
of the real harmonics of :func:`compot.functions.real_harmonics`:
q_kp^(s1 s2) = Σ_(v of degree p) A_kv^(s1) A_kv^(s2) − δ_(s1 s2) Σ_j ĝ_k(r_ij)².
Format v2 uses the bounded invariant q_max x(0, q/q_max) (saturating past q_max).
Site energy E_i = Σ_(s1≤s2) Σ_k Σ_p c_(Z_i, s1s2, k, p) q̄_kp^(s1 s2)(i) (+ shift).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..functions import RealHarmonics, exp_feature_fdf, real_harmonics
from .base import BasisSpec, ParameterBlock, Term, index_labels

__all__ = ["Angular", "AngularMoments", "BoundedInvariants", "q_max_block"]


class AngularMoments(NamedTuple):
    """Forward quantities of an A term on a batch.

    q : ndarray, shape (n_atoms, S(S+1)/2, K, P+1) — invariants q_kp^(s1 s2)(i) [-]
    A : ndarray, shape (n_atoms, S, K, (P+1)²) — moments A_kv^(s)(i) [-]
    harmonics : RealHarmonics of the pair unit vectors, Y shape (n_pairs, (P+1)²)
    pairs : list of (s1, s2), s1 ≤ s2, in the order of q's second axis
    """

    q: np.ndarray
    A: np.ndarray
    harmonics: RealHarmonics
    pairs: list


class BoundedInvariants(NamedTuple):
    """The invariants an A term uses and their derivative with respect to q, shape
    (n_atoms, S(S+1)/2, K, P+1) each: format v2 q_max x(0, q/q_max); format v1 q and 1."""

    value: np.ndarray
    slope: np.ndarray


def q_max_block(term, node, pairs) -> ParameterBlock:
    """The block ``n<I>.q_max`` [-] of an A or E[A] ``term``: the fixed scales of the
    invariants q_kp^(s1 s2), shape (S(S+1)/2, K, P+1) (largest |q| over the fitted
    atoms, :meth:`Angular.q_maxima`)."""
    K, P1 = term.basis.K, term.P + 1
    return ParameterBlock(f"n{node.index}.q_max", "fixed", (len(pairs), K, P1),
                          (pairs, index_labels(K), index_labels(P1, first=0)), "-",
                          f"scale of q_kp of {term}: max |q| over the fitting atoms [s1<=s2, k, p]")


def _project(system, V: np.ndarray) -> np.ndarray:
    """Gradient with respect to D_p of f(û_p) given its gradient in û, V shape
    (n_pairs, 3, m): (V − (û·V) û)/r [1/Å per unit of f]."""
    radial = np.einsum("pcm,pc->pm", V, system.u_pc)
    return (V - radial[:, None, :] * system.u_pc[:, :, None]) / system.r_p[:, None, None]


@dataclass(frozen=True)
class Angular(Term):
    """Angular three-body pair-cluster model ``A[G<K>P<P>]``: coefficients c [eV],
    shape (S, S(S+1)/2, K, P+1) = (centre species, neighbour pair s1 ≤ s2, k, p)."""

    basis: BasisSpec
    P: int
    example = "A[G3P2]"
    symbol = "A"

    def __str__(self) -> str:
        return f"A[{self.basis}P{self.P}]" + self.basis.at

    def blocks(self, node, species, pairs, version, channels=None):
        pre = f"n{node.index}"
        ks, ps = index_labels(self.basis.K), index_labels(self.P + 1, first=0)
        out = [q_max_block(self, node, pairs)] if version >= 2 else []
        out.append(ParameterBlock(f"{pre}.c", "linear", (len(species), len(pairs), self.basis.K, self.P + 1),
                                  (species, pairs, ks, ps), "eV",
                                  f"coefficients c of {self} [centre species, neighbour pair s1<=s2, k, p]"))
        return out

    # ------------------------------------------------------------ forward
    def moments(self, ctx, node) -> AngularMoments:
        """The invariants q and moments A of this term on ctx's batch (cached)."""
        return ctx.cached(node.index, "moments", lambda: self._moments(ctx, node))

    def _moments(self, ctx, node) -> AngularMoments:
        pb, _ = ctx.pairs.seen(node.basis)    # with a term cutoff, the pairs inside it
        s = pb.system
        S = ctx.pairs.n_channels          # species, or channels of the embedding
        g = pb.basis(node.basis).g
        H = real_harmonics(s.u_pc, self.P)
        K, V = g.shape[1], H.Y.shape[1]
        gather = pb.gather(node.basis)
        A = (gather @ (g[:, :, None] * H.Y[:, None, :]).reshape(-1, K * V)).reshape(s.n_atoms, S, K, V)
        # the j = m terms Σ_j W_(Z_j c)² ĝ_k², removed from q^(cc) (with an embedding,
        # q^(c1c2), c1 ≠ c2, keeps its Σ_j W_c1 W_c2 ĝ_k², zero for the full chemistry)
        g2 = (pb.gather(node.basis, 2) @ (g * g)).reshape(s.n_atoms, S, K)
        pairs = [(a, b) for a in range(S) for b in range(a, S)]
        q = np.zeros((s.n_atoms, len(pairs), K, self.P + 1))
        for ip, (a, b) in enumerate(pairs):
            prod = A[:, a] * A[:, b]                                          # (n, K, V)
            for l in range(self.P + 1):
                q[:, ip, :, l] = prod[:, :, l * l:(l + 1) * (l + 1)].sum(axis=2)
            if a == b:
                q[:, ip] -= g2[:, a][:, :, None]
            else:
                q[:, ip] *= 2.0
        return AngularMoments(q, A, H, pairs)

    def bounded(self, ctx, node) -> BoundedInvariants:
        """The invariants the term uses (MODEL_SPEC §10), cached."""
        def make():
            q = self.moments(ctx, node).q
            if ctx.model.version < 2:
                return BoundedInvariants(q, np.ones_like(q))
            qmax = ctx.params[f"n{node.index}.q_max"]
            x, dx = exp_feature_fdf(0.0, q / qmax, ctx.tau)
            return BoundedInvariants(qmax * x, dx)
        return ctx.cached(node.index, "bounded", make)

    def features(self, ctx, node) -> np.ndarray:
        """The bounded invariants in the columns of atom i's species, shape
        (n_atoms, S·S(S+1)/2·K·(P+1)) [-]."""
        F = ctx.onehot[:, :, None, None, None] * self.bounded(ctx, node).value[:, None]
        return F.reshape(ctx.system.n_atoms, -1)

    def q_maxima(self, ctx, node) -> dict[str, np.ndarray]:
        """{``n<I>.q_max``: the largest |q_kp^(s1 s2)| over the batch's atoms, shape
        (S(S+1)/2, K, P+1)}, for the A and E[A] terms of node I."""
        return {f"n{node.index}.q_max": np.abs(self.moments(ctx, node).q).max(axis=0, initial=0.0)}

    def scale_maxima(self, ctx, node):
        return self.q_maxima(ctx, node) if ctx.model.version >= 2 else {}

    # ----------------------------------------------------------- backward
    def vjp(self, ctx, node, a, grad, cols):
        """Coefficients contracted, in chunks of adjoint columns so that no
        (pairs × K × harmonics × columns) array is large."""
        s = ctx.pairs.seen(node.basis)[0].system
        K = self.basis.K
        V = (self.P + 1) ** 2
        chunk = max(1, int(2e7 // max(1, s.n_pairs * K * V)))
        for lo in range(0, a.shape[1], chunk):
            hi = min(a.shape[1], lo + chunk)
            self._vjp_chunk(ctx, node, a[:, lo:hi], grad, slice(cols.start + lo, cols.start + hi))

    def _vjp_chunk(self, ctx, node, a, grad, cols):
        c = ctx.params[f"n{node.index}.c"]                                   # (S, npair, K, P1)
        dsat = self.bounded(ctx, node).slope                                   # (n, npair, K, P1)
        Lam = (c[ctx.system.species_n] * dsat)[..., None] * a[:, None, None, None, :]
        self.invariant_vjp(ctx, node, Lam, grad, cols)

    def invariant_vjp(self, ctx, node, Lam: np.ndarray, grad, cols: slice) -> None:
        """Accumulate Σ_i Σ_(q,k,p) Lam[i, q, k, p, m] ∂q_kp^(q)(i)/∂D_p into columns
        ``cols`` of ``grad``: the adjoints Lam, shape (n_atoms, S(S+1)/2, K, P+1, m),
        of the raw invariants q (not the bounded ones) routed to the pairs through
        the moments A (also used by :class:`compot.terms.ExponentiatedAngular`);
        with a term cutoff over the pairs inside it only (PairBasis.seen)."""
        pb, seen = ctx.pairs.seen(node.basis)
        s = pb.system
        S = ctx.pairs.n_channels
        mom = self.moments(ctx, node)
        Y, dY = mom.harmonics.Y, mom.harmonics.dY
        g, dg = pb.basis(node.basis)
        K, V = g.shape[1], Y.shape[1]
        m = Lam.shape[-1]
        LamV = Lam[:, :, :, mom.harmonics.degree, :]                           # (n, npair, K, V, m)
        pair_index = {}
        for ip, (x, y) in enumerate(mom.pairs):
            pair_index[(x, y)] = pair_index[(y, x)] = ip
        # B[i, s, k, v, m] = 2 Σ_s' Λ[i, pair(s, s'), k, v] A[i, s', k, v]
        B = np.zeros((s.n_atoms, S, K, V, m))
        for x in range(S):
            for y in range(S):
                B[:, x] += 2.0 * LamV[:, pair_index[(x, y)]] * mom.A[:, y][..., None]
        Bp = pb.pick(node.basis, B)                                          # (p, K, V, m)
        R = np.einsum("pkvm,pv,pk->pm", Bp, Y, dg)
        # self term −Σ_j W² ĝ²: −2 Σ_k Σ_l Λ[i, pair(s, s), k, l] W² g dg
        self_ip = np.array([pair_index[(x, x)] for x in range(S)])
        Lself = Lam.sum(axis=3)[np.arange(s.n_atoms)[:, None], self_ip[None, :]]   # (n, S, K, m)
        R -= 2.0 * pb.pick_contract(node.basis, Lself, g * dg, 2)
        grad.add_radial(cols, R, seen)
        H = np.einsum("pkvm,pk->pvm", Bp, g)
        grad.add_vector(cols, _project(s, np.einsum("pvm,pcv->pcm", H, dY)), seen)

    def feature_vjp(self, ctx, node, A, grad, cols):
        """Column by column: column (Z, s1s2, k, l) has adjoint A[:, col] on
        q_kl^(s1 s2)(i) of atoms of species Z; ∂q/∂A_kv(s1) = 2 A_kv(s2)."""
        s = ctx.system
        S, C = s.n_species, ctx.pairs.n_channels
        npair = C * (C + 1) // 2
        K, P1 = self.basis.K, self.P + 1
        dsat = self.bounded(ctx, node).slope                                   # (n, npair, K, P1)
        A6 = (A.reshape(s.n_atoms, S, npair, K, P1) * ctx.onehot[:, :, None, None, None] * dsat[:, None])[:, :, None]
        self.invariant_column_vjp(ctx, node, A6, np.arange(A.shape[1]).reshape(S, 1, npair, K, P1), grad, cols)

    def invariant_column_vjp(self, ctx, node, A6: np.ndarray, cidx: np.ndarray, grad, cols: slice) -> None:
        """Accumulate, for every column c = cidx[z, g, q, k, p], Σ_i A6[i, z, g, q, k, p]
        ∂q_kp^(q)(i)/∂D_p into column ``cols.start + c`` of ``grad``: A6 shape
        (n_atoms, S, n_groups, S(S+1)/2, K, P+1), adjoints of the raw invariants per
        column, zero unless atom i has species z (columns belong to one centre
        species, so every pair feeds one column per (g, q, k, p): the loop runs over
        those, not over the S times more columns); cidx shape (S, n_groups,
        S(S+1)/2, K, P+1), a permutation of the columns (also used by
        :class:`compot.terms.ExponentiatedAngular`); with a term cutoff over the pairs
        inside it only (PairBasis.seen)."""
        pb, seen = ctx.pairs.seen(node.basis)
        s = pb.system
        mom = self.moments(ctx, node)
        Y, dY = mom.harmonics.Y, mom.harmonics.dY
        g, dg = pb.basis(node.basis)
        K, P1 = g.shape[1], self.P + 1
        ncol = cidx.size
        R = np.zeros((s.n_pairs, ncol))
        Vg = np.zeros((s.n_pairs, 3, ncol))
        chan = s.channel_p
        Wp = pb.channel_weights(node.basis)                                    # (p, C)
        embedded = ctx.pairs.weights(node.basis) is not None
        centre = s.species_n[s.i_p]                                            # (p,)
        rows = np.arange(s.n_pairs)
        lam_all = A6.sum(axis=1)                                               # (n, G, npair, K, P1)
        for ip, (x, y) in enumerate(mom.pairs):
            sel = ((chan == x) | (chan == y)).astype(float)
            other = np.where(chan == x, y, x)
            for k in range(K):
                if embedded:   # ∂q^(xy)/∂(pair p) through A^x and A^y: W_px A^y + W_py A^x
                    Ap = Wp[:, x, None] * mom.A[s.i_p, y, k]
                    if x != y:
                        Ap = Ap + Wp[:, y, None] * mom.A[s.i_p, x, k]
                else:
                    Ap = mom.A[s.i_p, other, k]                                # (p, V)
                gdg = g[:, k] * dg[:, k]
                for z in range(A6.shape[2]):
                    for l in range(P1):
                        lam = lam_all[:, z, ip, k, l]
                        if not lam.any():
                            continue
                        col = cidx[centre, z, ip, k, l]                        # (p,)
                        js = slice(l * l, (l + 1) * (l + 1))
                        lam_p = lam[s.i_p]
                        Bv = (2.0 * lam_p * (1.0 if embedded else sel))[:, None] * Ap[:, js]
                        Rv = (Bv * Y[:, js]).sum(1) * dg[:, k]
                        if x == y:
                            Rv -= 2.0 * lam_p * (Wp[:, x] ** 2 if embedded else chan == x) * gdg
                        R[rows, col] = Rv
                        Vg[rows, :, col] = g[:, k, None] * np.einsum("pj,pcj->pc", Bv, dY[:, :, js])
        grad.add_radial(cols, R, seen)
        grad.add_vector(cols, _project(s, Vg), seen)
