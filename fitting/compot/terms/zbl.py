"""The fixed core repulsion ``ZBL(r_in, r_out)`` (MODEL_SPEC §4 and §10).

Site energy E_i = ½ Σ_{j∈N(i)} φ_ZBL(r_ij), φ_ZBL the Ziegler–Biersack–Littmark
universal screened Coulomb repulsion switched off between r_in and r_out as in
LAMMPS ``pair_style zbl`` (:func:`compot.functions.zbl_pair_fdf`). No parameters;
never switched by the format v2 atom switch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..functions import atomic_number, zbl_pair_fdf
from .base import Term

__all__ = ["ZBL", "format_float"]


def format_float(x: float) -> str:
    """Shortest text of a float as written in expressions (``1.6``, ``2``, ``1e-05``)."""
    return repr(float(x)).rstrip("0").rstrip(".") if "e" not in repr(float(x)) else repr(float(x))


@dataclass(frozen=True)
class ZBL(Term):
    """Fixed Ziegler–Biersack–Littmark core repulsion switched off between
    ``r_in`` and ``r_out`` [Å] as LAMMPS ``pair_style zbl`` (MODEL_SPEC §4)."""

    r_in: float
    r_out: float
    is_core = True
    symbol = "ZBL"
    basis = None
    example = "G3 + ZBL(2.9, 3.4)"

    def __str__(self) -> str:
        return f"ZBL({format_float(self.r_in)}, {format_float(self.r_out)})"

    def pair_energy(self, ctx, node) -> tuple[np.ndarray, np.ndarray]:
        """φ_ZBL(r_p) [eV] and dφ/dr [eV/Å] of every pair, shape (n_pairs,) each (cached)."""
        def make():
            s = ctx.system
            z = np.array([atomic_number(x) for x in ctx.model.species], dtype=float)
            return zbl_pair_fdf(s.r_p, z[s.species_n[s.i_p]], z[s.channel_p], self.r_in, self.r_out)
        return ctx.cached(node.index, "zbl", make)

    def value(self, ctx, node):
        s = ctx.system
        e, _ = self.pair_energy(ctx, node)
        return 0.5 * np.bincount(s.i_p, weights=e, minlength=s.n_atoms)

    def vjp(self, ctx, node, a, grad, cols):
        _, de = self.pair_energy(ctx, node)
        grad.R[:, cols] += 0.5 * de[:, None] * a[ctx.system.i_p]

    def affine_groups(self, child_groups, own, shift):
        return [[]]
