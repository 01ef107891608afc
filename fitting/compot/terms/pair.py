"""The linear pair-cluster term ``G<K>`` / ``C<K>`` (paper Eq. 6, MODEL_SPEC §2–3).

Site energy E_i = Σ_s Σ_k c_(Z_i s k) φ_k^(s)(i) (+ shift), with the two-body
cluster functions φ_k^(s)(i) = Σ_{j∈N(i), Z_j=s} ĝ_k(r_ij) of paper Eq. 47.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import BasisSpec, ParameterBlock, Term, index_labels

__all__ = ["Linear", "fold_channel_columns"]


def fold_channel_columns(ctx, b: int, src: np.ndarray, grad, cols: slice) -> None:
    """Radial pair weights of per-column φ adjoints: column (Z, s, l, k) gets
    src[i_p, Z, s, l, k] ĝ_k'(r_p) from every pair p whose neighbour species is s.

    Parameters
    ----------
    b : basis index
    src : ndarray, shape (n_atoms, S, C, L, K) — adjoint of φ_k^(s)(i) per column
        (C channels: S, or W_(Z_j c)-weighted with a species embedding)
    grad : PairGradient; cols : its columns, one per element of src[0]
    """
    s = ctx.system
    chan = ctx.pairs.channel_weights(b)                                             # (p, s)
    dg = ctx.basis(b).dg                                                            # (p, K)
    R = src[s.i_p] * chan[:, None, :, None, None] * dg[:, None, None, None, :]
    grad.R[:, cols] += R.reshape(s.n_pairs, -1)


@dataclass(frozen=True)
class Linear(Term):
    """Linear pair-cluster model ``G<K>``/``C<K>`` (paper Eq. 6): coefficients
    c [eV], shape (S, S, K) = (centre species, neighbour species, k)."""

    basis: BasisSpec
    example = "G3"

    @property
    def symbol(self) -> str:
        return self.basis.kind

    def __str__(self) -> str:
        return str(self.basis) + self.basis.at

    def blocks(self, node, species, pairs, version, channels=None):
        ks = index_labels(self.basis.K)
        chans = species if channels is None else channels
        return [ParameterBlock(f"n{node.index}.c", "linear", (len(species), len(chans), self.basis.K),
                               (species, chans, ks), "eV",
                               f"coefficients c of {self} [centre species, neighbour species, k]")]

    def features(self, ctx, node) -> np.ndarray:
        """φ_k^(s)(i) in the columns of atom i's species, shape (n_atoms, S·S·K) [-]."""
        phi = ctx.phi(node.basis)                                   # (n, S, K)
        F = ctx.onehot[:, :, None, None] * phi[:, None, :, :]
        return F.reshape(ctx.system.n_atoms, -1)

    def vjp(self, ctx, node, a, grad, cols):
        s = ctx.system
        c = ctx.params[f"n{node.index}.c"]                          # (S, S, K)
        lam = c[s.species_n][:, :, :, None] * a[:, None, None, :]
        grad.add_lam(node.basis, self.basis.K, cols, lam)

    def feature_vjp(self, ctx, node, A, grad, cols):
        s = ctx.system
        A5 = A.reshape(s.n_atoms, s.n_species, ctx.pairs.n_channels, 1, self.basis.K) * \
            ctx.onehot[:, :, None, None, None]
        fold_channel_columns(ctx, node.basis, A5, grad, cols)
