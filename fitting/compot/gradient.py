"""Accumulation of pair gradients G_p = ∂E/∂D_p (MODEL_SPEC §5) for several
adjoint columns at once, and the forces they give."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .neighbours import VOIGT_PAIRS, System

__all__ = ["PairGradient"]


class PairGradient:
    """Accumulates ∂(Σ_i a_im V(i))/∂D_p for m adjoint columns.

    Three parts, summed by :meth:`finish`: a radial weight R, shape (n_pairs, m)
    [eV/Å], with G_p = R_p û_p; a vector part V, shape (n_pairs, 3, m) [eV/Å]
    (angular terms); and per-basis adjoints λ_k(i) = ∂/∂φ_k^(s)(i), shape
    (n_atoms, C, K, m) [eV] (C channels: S, or the embedding rank), folded into R
    through ĝ_k'(r_p).

    Parameters
    ----------
    system : System
    m : int — number of adjoint columns
    """

    def __init__(self, system: System, m: int):
        self.system = system
        self.m = m
        self.R = np.zeros((system.n_pairs, m))
        self.V: np.ndarray | None = None
        self.lam: dict[int, np.ndarray] = {}

    def add_vector(self, cols: slice, V: np.ndarray, sel: np.ndarray | None = None) -> None:
        """Add V, shape (n_pairs, 3, len(cols)), to the vector part of ``cols``; with
        ``sel`` (pair indices, e.g. :meth:`compot.pairs.PairBasis.seen`) V holds those
        pairs only, shape (len(sel), 3, len(cols))."""
        if self.V is None:
            self.V = np.zeros((self.system.n_pairs, 3, self.m))
        if sel is None:
            self.V[:, :, cols] += V
        else:
            self.V[sel, :, cols] += V

    def add_radial(self, cols: slice, R: np.ndarray, sel: np.ndarray | None = None) -> None:
        """Add R, shape (n_pairs, len(cols)), to the radial part of ``cols``; with ``sel``
        R holds those pairs only, shape (len(sel), len(cols))."""
        if sel is None:
            self.R[:, cols] += R
        else:
            self.R[sel, cols] += R

    def add_lam(self, b: int, K: int, cols: slice, lam: np.ndarray) -> None:
        """Add φ adjoints of basis b, shape (n_atoms, S, K, len(cols))."""
        if b not in self.lam:
            self.lam[b] = np.zeros((self.system.n_atoms, lam.shape[1], K, self.m))
        self.lam[b][..., cols] += lam

    def _fold_lam(self, ctx) -> None:
        """Turn φ adjoints into radial pair weights: R_p += Σ_k λ_k(i_p, s_p) ĝ_k'(r_p)
        (with a species embedding Σ_c W_(Z_j c) Σ_k λ_k(i_p, c) ĝ_k'(r_p))."""
        for b, lam in self.lam.items():
            dg = ctx.basis(b).dg
            self.R += ctx.pairs.pick_contract(b, lam, dg)
        self.lam = {}

    def finish(self, ctx) -> np.ndarray:
        """Pair gradients G, shape (n_pairs, 3, m) [eV/Å]."""
        self._fold_lam(ctx)
        G = self.R[:, None, :] * self.system.u_pc[:, :, None]
        if self.V is not None:
            G = G + self.V
        return G

    def forces(self, ctx) -> np.ndarray:
        """Forces of every column, shape (n_atoms, 3, m) [eV/Å], without forming G."""
        self._fold_lam(ctx)
        s = self.system
        F = np.empty((s.n_atoms, 3, self.m))
        for c in range(3):
            Gc = self.R * s.u_pc[:, c:c + 1]
            if self.V is not None:
                Gc += self.V[:, c, :]
            F[:, c, :] = s.incidence @ Gc
        return F

    def forces_virials(self, ctx) -> tuple[np.ndarray, np.ndarray]:
        """Forces and virials of every column, without forming G.

        Returns
        -------
        F : ndarray, shape (n_atoms, 3, m) [eV/Å]
        W : ndarray, shape (n_configs, 6, m) [eV] — W = Σ_p G_p ⊗ D_p = V σ per configuration,
            Voigt order (xx, yy, zz, yz, xz, xy), ASE sign (tensile positive), as
            :meth:`compot.neighbours.System.virials`
        """
        self._fold_lam(ctx)
        s = self.system
        F = np.empty((s.n_atoms, 3, self.m))
        W = np.zeros((s.n_configs, 6, self.m))
        to_config = sp.csr_matrix((np.ones(s.n_pairs), (s.config_p, np.arange(s.n_pairs))),
                                  shape=(s.n_configs, s.n_pairs))
        for c in range(3):
            Gc = self.R * s.u_pc[:, c:c + 1]
            if self.V is not None:
                Gc += self.V[:, c, :]
            F[:, c, :] = s.incidence @ Gc
            for k, (a, b) in enumerate(VOIGT_PAIRS):
                if a == c:
                    W[:, k, :] = to_config @ (Gc * s.D_pc[:, b:b + 1])
        return F, W
