"""Exponentiated pair-cluster terms: ``E[G<K>L<L>]`` (paper Eq. 13) and the
neighbouring-exponentiated ``N[E[G<K>L<L>]]`` (paper Eq. 16), MODEL_SPEC §3.

Site energy E_i = Σ_s Σ_l Σ_k c_(Z_i s l k) x(γ_l, u_k^(s)(i)) (+ shift), with
x the bounded exponentiated feature (:func:`compot.functions.exp_feature_fdf`)
and u = φ/φ_max for E, u = ρ/ρ_max for N (ρ_k(i) = Σ_j f_c(r_ij) φ_k(j)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..functions import exp_feature_fdf
from .base import BasisSpec, ParameterBlock, Term, index_labels
from .pair import fold_channel_columns

__all__ = ["Exponentiated", "NeighbourExponentiated"]


@dataclass(frozen=True)
class _Latent(Term):
    """Shared behaviour of E and N: L latent exponents γ_l [-] (nonlinear) and
    coefficients c [eV] of shape (S, S, L, K) = (centre, neighbour species, l, k)."""

    basis: BasisSpec
    L: int
    paper_exponential = True
    #: u = <source>/<source>_max: the cluster function ``"phi"`` (E) or ``"rho"`` (N),
    #: ``ctx.phi``/``ctx.rho``, and its scale block ``b<J>.phi_max``/``b<J>.rho_max``
    source = "phi"
    #: the term's name around ``E[<basis>L<L>]``
    wrapper = "{}"

    def __str__(self) -> str:
        return self.wrapper.format(f"E[{self.basis}L{self.L}]") + self.basis.at

    def blocks(self, node, species, pairs, version, channels=None):
        pre = f"n{node.index}"
        ls, ks = index_labels(self.L), index_labels(self.basis.K)
        S = len(species)
        chans = species if channels is None else channels
        return [ParameterBlock(f"{pre}.gamma", "nonlinear", (self.L,), (ls,), "-",
                               f"latent exponents γ_l of {self} [l]"),
                ParameterBlock(f"{pre}.c", "linear", (S, len(chans), self.L, self.basis.K), (species, chans, ls, ks),
                               "eV",
                               f"coefficients c of {self} [centre species, neighbour species, l, k]")]

    def scaled(self, ctx, node) -> tuple[np.ndarray, np.ndarray]:
        """(u, scale): the scaled cluster function u, shape (n_atoms, S, K) [-], and
        its scale, shape (S, K) (φ_max for E, ρ_max for N)."""
        scale = ctx.params[f"b{node.basis + 1}.{self.source}_max"]
        return getattr(ctx, self.source)(node.basis) / scale, scale

    def _x(self, ctx, node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x(γ_l, u_k^(s)(i)) and ∂x/∂u, shape (n_atoms, S, L, K), and the scale (S, K)."""
        u, scale = self.scaled(ctx, node)
        gamma = ctx.params[f"n{node.index}.gamma"]
        x, dx = exp_feature_fdf(gamma[None, None, :, None], u[:, :, None, :], ctx.tau)
        return x, dx, scale

    def features(self, ctx, node) -> np.ndarray:
        """x(γ_l, u_k^(s)(i)) in the columns of atom i's species, shape (n_atoms, S·S·L·K) [-]."""
        x, _, _ = self._x(ctx, node)
        F = ctx.onehot[:, :, None, None, None] * x[:, None]
        return F.reshape(ctx.system.n_atoms, -1)

    def vjp(self, ctx, node, a, grad, cols):
        s = ctx.system
        c = ctx.params[f"n{node.index}.c"]                          # (S, S, L, K)
        _, dx, scale = self._x(ctx, node)
        D = (c[s.species_n] * dx).sum(axis=2) / scale                # (n, S, K)
        lam = D[:, :, :, None] * a[:, None, None, :]                 # (n, S, K, m)
        self._route(ctx, node, lam, grad, cols)

    def _route(self, ctx, node, lam: np.ndarray, grad, cols: slice) -> None:
        """Pass the adjoint of u·scale (shape (n_atoms, S, K, m)) on to the pairs."""
        raise NotImplementedError

    def feature_vjp(self, ctx, node, A, grad, cols):
        s = ctx.system
        A5 = A.reshape(s.n_atoms, s.n_species, ctx.pairs.n_channels, self.L, self.basis.K) * \
            ctx.onehot[:, :, None, None, None]
        _, dx, scale = self._x(ctx, node)
        T = A5 * (dx / scale[:, None, :])[:, None]                   # (n, Z, s, L, K)
        fold_channel_columns(ctx, node.basis, self._column_source(ctx, node, T, grad, cols), grad, cols)

    def _column_source(self, ctx, node, T: np.ndarray, grad, cols: slice) -> np.ndarray:
        """Per-column adjoint of φ given that of u·scale, T shape (n_atoms, S, S, L, K)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Exponentiated(_Latent):
    """Exponentiated pair-cluster model ``E[G<K>L<L>]`` (paper Eq. 13): u = φ/φ_max."""

    example = "E[G3L2]"
    symbol = "E"

    def _route(self, ctx, node, lam, grad, cols):
        grad.add_lam(node.basis, self.basis.K, cols, lam)

    def _column_source(self, ctx, node, T, grad, cols):
        return T


@dataclass(frozen=True)
class NeighbourExponentiated(_Latent):
    """Neighbouring-exponentiated model ``N[E[G<K>L<L>]]`` (paper Eq. 16): u = ρ/ρ_max,
    ρ_k^(s)(i) = Σ_j f_c(r_ij) φ_k^(s)(j) (two hops)."""

    needs_rho = True
    example = "N[E[G3L2]]"
    symbol = "N"
    source = "rho"
    wrapper = "N[{}]"

    def _route(self, ctx, node, lam, grad, cols):
        ctx.pairs.rho_vjp(node.basis, lam, grad, cols)

    def _column_source(self, ctx, node, T, grad, cols):
        # per column: the ρ adjoint is nonzero only at its (s, k)
        s = ctx.system
        phi = ctx.phi(node.basis)                                    # (n, s, K)
        Tp = T[s.i_p]                                                # (p, Z, s, L, K)
        rad = ctx.radial()
        ncol = T[0].size
        direct = Tp * phi[s.j_p][:, None, :, None, :] * (rad.dfc * rad.dc)[:, None, None, None, None]
        grad.R[:, cols] += direct.reshape(s.n_pairs, ncol)
        nu = s.sum_neighbour @ (Tp * rad.fc[:, None, None, None, None]).reshape(s.n_pairs, ncol)
        return nu.reshape(T.shape)                                   # (n, Z, s, L, K)
