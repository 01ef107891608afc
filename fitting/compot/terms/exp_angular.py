"""The exponentiated angular term ``E[A[G<K>P<P>]L<L>]``: the bounded
exponentiated feature x(γ, ·) of MODEL_SPEC §3 applied to the normalised
three-body invariants of the A term (paper App. A, Eq. 48–50), as ``E[G<K>L<L>]``
(paper Eq. 13) applies it to the two-body densities.

With q_kp^(s1 s2)(i) the raw invariants of :class:`compot.terms.Angular`
(s1 ≤ s2, k = 1..K, p = 0..P) and q_max[s1 s2, k, p] their fixed scale (the
largest |q| over the fitted atoms, in formats v1 and v2):

    E_i = Σ_(s1≤s2) Σ_l Σ_k Σ_p c_(Z_i, s1s2, l, k, p) x(γ_l, q_kp^(s1 s2)(i) / q_max) (+ shift)

x is continued quadratically past |u| = 1 in format v1 and saturating in v2
(:func:`compot.functions.exp_feature_fdf`), so in v2 the features are bounded as
the A term's are. Each exponent γ_l multiplies every invariant: an embedding of
three-body densities (many-body and angular), like the nonlinear embeddings of
qSNAP and ACE. The features x(γ_l, u) enter the extrapolation grade's vector f
in the order of the ``c`` block without the centre species (l, then k, then p).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..functions import exp_feature_fdf
from .angular import Angular, q_max_block
from .base import BasisSpec, ParameterBlock, Term, index_labels

__all__ = ["ExponentiatedAngular"]


@dataclass(frozen=True)
class ExponentiatedAngular(Term):
    """Exponentiated angular model ``E[A[G<K>P<P>]L<L>]``: exponents γ_l [-]
    (nonlinear, shape (L,)), scales q_max [-] (fixed, shape (S(S+1)/2, K, P+1))
    and coefficients c [eV], shape (S, S(S+1)/2, L, K, P+1) = (centre species,
    neighbour pair s1 ≤ s2, l, k, p)."""

    basis: BasisSpec
    P: int
    L: int
    example = "E[A[G3P2]L2]"
    symbol = "E[A]"

    def __str__(self) -> str:
        return f"E[A[{self.basis}P{self.P}]L{self.L}]" + self.basis.at

    @property
    def angular(self) -> Angular:
        """The A term whose raw invariants this term exponentiates (same node, same cache)."""
        return Angular(self.basis, self.P)

    def blocks(self, node, species, pairs, version, channels=None):
        pre = f"n{node.index}"
        ls, ks, ps = index_labels(self.L), index_labels(self.basis.K), index_labels(self.P + 1, first=0)
        return [ParameterBlock(f"{pre}.gamma", "nonlinear", (self.L,), (ls,), "-",
                               f"latent exponents γ_l of {self} [l]"),
                q_max_block(self, node, pairs),
                ParameterBlock(f"{pre}.c", "linear", (len(species), len(pairs), self.L, self.basis.K, self.P + 1),
                               (species, pairs, ls, ks, ps), "eV",
                               f"coefficients c of {self} [centre species, neighbour pair s1<=s2, l, k, p]")]

    # ------------------------------------------------------------ forward
    def _x(self, ctx, node) -> tuple[np.ndarray, np.ndarray]:
        """x(γ_l, q/q_max) and ∂x/∂q, shape (n_atoms, S(S+1)/2, L, K, P+1) each (cached)."""
        def make():
            q = self.angular.moments(ctx, node).q                             # (n, npair, K, P1)
            qmax = ctx.params[f"n{node.index}.q_max"]
            gamma = ctx.params[f"n{node.index}.gamma"]
            x, dx = exp_feature_fdf(gamma[None, None, :, None, None], (q / qmax)[:, :, None], ctx.tau)
            return x, dx / qmax[None, :, None]
        return ctx.cached(node.index, "exp_angular", make)

    def features(self, ctx, node) -> np.ndarray:
        """x(γ_l, q_kp/q_max) in the columns of atom i's species, shape
        (n_atoms, S·S(S+1)/2·L·K·(P+1)) [-]."""
        x, _ = self._x(ctx, node)
        F = ctx.onehot[:, :, None, None, None, None] * x[:, None]
        return F.reshape(ctx.system.n_atoms, -1)

    def scale_maxima(self, ctx, node):
        return self.angular.q_maxima(ctx, node)

    # ----------------------------------------------------------- backward
    def vjp(self, ctx, node, a, grad, cols):
        """dV/dq = Σ_l c_lkp ∂x/∂q, then the A term's routing of invariant
        adjoints (:meth:`Angular.invariant_vjp`), in chunks of adjoint columns."""
        s = ctx.system
        c = ctx.params[f"n{node.index}.c"]                                   # (S, npair, L, K, P1)
        _, dx = self._x(ctx, node)
        dq = (c[s.species_n] * dx).sum(axis=2)                               # (n, npair, K, P1)
        V = (self.P + 1) ** 2
        chunk = max(1, int(2e7 // max(1, s.n_pairs * self.basis.K * V)))
        for lo in range(0, a.shape[1], chunk):
            hi = min(a.shape[1], lo + chunk)
            self.angular.invariant_vjp(ctx, node, dq[..., None] * a[:, None, None, None, lo:hi], grad,
                                       slice(cols.start + lo, cols.start + hi))

    def feature_vjp(self, ctx, node, A, grad, cols):
        """Column (Z, s1s2, l, k, p) has adjoint A[:, col] ∂x_l/∂q on q_kp^(s1 s2)(i)
        of atoms of species Z (:meth:`Angular.invariant_column_vjp`)."""
        s = ctx.system
        S, C = s.n_species, ctx.pairs.n_channels
        npair, L, K, P1 = C * (C + 1) // 2, self.L, self.basis.K, self.P + 1
        _, dx = self._x(ctx, node)
        A6 = A.reshape(s.n_atoms, S, npair, L, K, P1) * ctx.onehot[:, :, None, None, None, None] * dx[:, None]
        cidx = np.arange(A.shape[1]).reshape(S, npair, L, K, P1)
        # groups l within each centre species Z: the invariant axes last
        self.angular.invariant_column_vjp(
            ctx, node, A6.transpose(0, 1, 3, 2, 4, 5), cidx.transpose(0, 2, 1, 3, 4), grad, cols)
