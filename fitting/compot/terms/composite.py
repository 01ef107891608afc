"""Compositions: the n-ary sum ⊕ (paper Eq. 21–22) and the binary product ⊗
(paper Eq. 23–25), MODEL_SPEC §4.

A sum's value is the sum of its children's plus one shift; a product's is the
product of its two children's values (each factor with its own shift) plus a
shift. Their behaviour is the chain rule over the children's values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Term

__all__ = ["Sum", "Product"]


def _str_in(t: Term, context: str) -> str:
    if t.merges_children and context in ("sum", "product"):
        return f"({t})" if context == "product" else str(t)
    return str(t)


@dataclass(frozen=True)
class Sum(Term):
    """n-ary sum ⊕ (paper Eq. 21–22): E_i = Σ_t E_i^t + s, one shift in total."""

    terms: tuple[Term, ...]
    merges_children = True
    symbol = "+"
    basis = None
    example = "G3 + A[G3P2] + N[E[G3L2]]"

    def children(self) -> tuple[Term, ...]:
        return self.terms

    def __str__(self) -> str:
        return " + ".join(_str_in(t, "sum") for t in self.terms)

    def value(self, ctx, node):
        return sum(ctx.value(c) for c in node.children)

    def vjp(self, ctx, node, a, grad, cols):
        for c in node.children:
            ctx.vjp(c, a, grad, cols)

    def affine_groups(self, child_groups, own, shift):
        n = max(len(g) for g in child_groups)
        return [sum((g[min(k, len(g) - 1)] for g in child_groups), []) + shift for k in range(n)]

    def design_columns(self, design, node, Phi, weight):
        for c in node.children:
            design.columns(c, Phi, weight)

    def design_column_vjp(self, design, node, weight, grad):
        for c in node.children:
            design.column_vjp(c, weight, grad)


@dataclass(frozen=True)
class Product(Term):
    """Binary product ⊗ (paper Eq. 23–25): E_i = (E_i^X + s_X)(E_i^Y + s_Y) + s."""

    left: Term
    right: Term
    has_gauge = True
    symbol = "*"
    basis = None
    example = "E[G3L2] * (A[G2P2] + N[E[G2L2]])"

    def children(self) -> tuple[Term, ...]:
        return (self.left, self.right)

    def __str__(self) -> str:
        right = str(self.right)
        if self.right.children():
            right = f"({right})"
        return f"{_str_in(self.left, 'product')} * {right}"

    def value(self, ctx, node):
        left, right = node.children
        return ctx.value(left) * ctx.value(right)

    def vjp(self, ctx, node, a, grad, cols):
        left, right = node.children
        ctx.vjp(left, a * ctx.value(right)[:, None], grad, cols)
        ctx.vjp(right, a * ctx.value(left)[:, None], grad, cols)

    def affine_groups(self, child_groups, own, shift):
        return [g + shift for g in child_groups[0] + child_groups[1]]

    def design_columns(self, design, node, Phi, weight):
        left, right = node.children
        ctx = design.ctx
        design.columns(left, Phi, weight * ctx.value(right))
        design.columns(right, Phi, weight * ctx.value(left))

    def design_column_vjp(self, design, node, weight, grad):
        ctx = design.ctx
        left, right = node.children
        for this, other in ((left, right), (right, left)):
            active = design.active_under(this)
            if not active:
                continue
            design.column_vjp(this, weight * ctx.value(other), grad)
            # the other factor's value varies with positions: Σ_i Φ_this,c(i) w(i) ∂V_other(i)
            sub = np.zeros((ctx.system.n_atoms, grad.m))
            design.columns(this, sub, weight)
            used = [design.offsets[n] for n in active]
            lo, hi = min(s.start for s in used), max(s.stop for s in used)
            ctx.vjp(other, sub[:, lo:hi], grad, slice(lo, hi))
