"""The base class of model terms, the parameter-block record and the term registry.

A model is a tree of immutable :class:`Term` objects that mirrors the paper's
notation one-to-one (``E[G8L4] + N[E[G8L4]]`` is a sum of an exponentiated and a
neighbouring-exponentiated term). Each concrete term class owns its behaviour:
the parameter blocks it adds to a layout (:meth:`Term.blocks`), its per-atom
features (the columns its linear coefficients multiply), its value, and the
vector–Jacobian products of both. The evaluation state they read (pair
distances, basis tables, cluster functions, other nodes' values) is a
:class:`compot.context.Context`; they write pair gradients into a
:class:`compot.context.PairGradient`.

Every concrete subclass is entered in :data:`REGISTRY` when it is defined, so a
test can discover all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

__all__ = ["Term", "BasisSpec", "ParameterBlock", "REGISTRY", "index_labels"]

#: Every concrete term class by class name (filled by :meth:`Term.__init_subclass__`).
REGISTRY: dict[str, type["Term"]] = {}


@dataclass(frozen=True)
class BasisSpec:
    """Two-body basis specification: ``kind`` 'G' (even-tempered Gaussian,
    nonlinear α, β) or 'C' (Chebyshev, no nonlinear parameters), size ``K``
    (MODEL_SPEC §2), and the cutoff r_t [Å] of the term that uses it
    (``A[G8P4]@4.4``; None: the model's cutoff r_c). ĝ_k(r) = g_k(r) f_c(r; r_t),
    and a Chebyshev basis takes T_(k−1)(2r/r_t − 1); leaves share a basis only
    if their specifications, cutoff included, are equal."""

    kind: str
    K: int
    cutoff: float | None = None

    def __str__(self) -> str:
        return f"{self.kind}{self.K}"

    @property
    def at(self) -> str:
        """The term's cutoff suffix in the notation: '' or '@<r_t>' (shortest round-trip decimal)."""
        return "" if self.cutoff is None else f"@{self.cutoff!r}"

    @property
    def n_nonlinear(self) -> int:
        return 2 if self.kind == "G" else 0


def index_labels(n: int, first: int = 1) -> tuple[str, ...]:
    """The labels of an index of ``n`` values in parameter names: ``"1"`` … ``"n"``
    (k, l, the grade's c: one-based, as the parameter file numbers them), or from
    ``first`` = 0 (the Legendre order p)."""
    return tuple(str(i + first) for i in range(n))


@dataclass(frozen=True)
class ParameterBlock:
    """A named array of parameters in the canonical file order.

    ``name`` is the block prefix (``b1.alpha``, ``n1.c``); element names are
    ``name`` followed by the dotted indices (``n1.c.Nb.Nb.1.3``). ``role`` is
    'linear', 'nonlinear' or 'fixed'. ``shape`` is the array shape in C order."""

    name: str
    role: str
    shape: tuple[int, ...]
    labels: tuple[tuple[str, ...], ...]
    unit: str
    description: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def element_names(self) -> list[str]:
        names = [self.name]
        for axis in self.labels:
            names = [f"{n}.{a}" for n in names for a in axis]
        return names


class Term:
    """Base class of expression nodes.

    Class attributes describe the term's role in a composition; methods are its
    behaviour. ``node`` arguments are the term's :class:`compot.expression.NodeInfo`
    (its index ``n<i>``, children, basis index, whether it carries a shift);
    ``ctx`` is the batch's :class:`compot.context.Context`.

    Attributes
    ----------
    basis : BasisSpec or None
        The two-body basis of a fitted leaf; None for ZBL, sums and products.
    is_core : bool
        A fixed core repulsion (ZBL): no parameters, never switched (MODEL_SPEC §10).
    merges_children : bool
        A sum: the children's shifts merge into its one shift, and leaf children
        with equal basis specification share one basis (MODEL_SPEC §4).
    has_gauge : bool
        A product: its value is unchanged by (X, s_X)·t, (Y, s_Y)/t.
    paper_exponential : bool
        Its coefficients multiply x(γ, u) = (exp(γu) − 1)/γ, a fixed linear map of
        the paper's exp(γu) (MODEL_SPEC §3, §7).
    needs_rho : bool
        It reads the neighbour aggregate ρ (second hop, influence 2 r_c).
    symbol : str
        The leading symbol of its notation: 'G' or 'C' (the basis kind of a
        linear term), 'E', 'N', 'A', 'ZBL', '+' or '*'.
    example : str
        A small expression containing the term, for tests.
    """

    # ``basis`` (BasisSpec or None) is a dataclass field of every fitted leaf and a
    # class attribute None of the other terms; not set here, where a dataclass
    # would take it for a field default.
    is_core: ClassVar[bool] = False
    merges_children: ClassVar[bool] = False
    has_gauge: ClassVar[bool] = False
    paper_exponential: ClassVar[bool] = False
    needs_rho: ClassVar[bool] = False
    example: ClassVar[str] = ""
    symbol: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            REGISTRY[cls.__name__] = cls

    def children(self) -> tuple["Term", ...]:
        return ()

    # ----------------------------------------------------------- layout
    def blocks(self, node, species: tuple[str, ...], pairs: tuple[str, ...], version: int,
               channels: tuple[str, ...] | None = None) -> list[ParameterBlock]:
        """The node's own parameter blocks (shift excluded; bases are shared and
        listed by the layout), in the canonical file order. ``channels`` labels the
        neighbour axes (None: the species; ``e1 … e<r>`` with a species embedding),
        ``pairs`` the pairs of channels c1 ≤ c2."""
        return []

    # -------------------------------------------------------- evaluation
    def features(self, ctx, node) -> np.ndarray:
        """Per-atom features of the node's coefficient block ``n<i>.c``, shape
        (n_atoms, size of n<i>.c) [-]; the value without shift is features @ c.ravel().

        Raises
        ------
        TypeError
            For a term without linear coefficients (ZBL, sums, products).
        """
        raise TypeError(f"{self} has no linear coefficients")

    def value(self, ctx, node) -> np.ndarray:
        """V(i) of the node without its shift, shape (n_atoms,) [eV]."""
        return self.features(ctx, node) @ ctx.params[f"n{node.index}.c"].ravel()

    def vjp(self, ctx, node, a: np.ndarray, grad, cols: slice) -> None:
        """Accumulate Σ_i a[i, m] ∂V(i)/∂D_p into columns ``cols`` of ``grad``
        (a shape (n_atoms, m) [eV/eV], D_p the pair vectors)."""
        raise NotImplementedError(type(self).__name__)

    def feature_vjp(self, ctx, node, A: np.ndarray, grad, cols: slice) -> None:
        """Accumulate, for every coefficient column c, Σ_i A[i, c] ∂F_c(i)/∂D_p
        (A shape (n_atoms, size of n<i>.c)).

        Raises
        ------
        TypeError
            For a term without linear coefficients.
        """
        raise TypeError(f"{self} has no linear coefficients")

    def scale_maxima(self, ctx, node) -> dict[str, np.ndarray]:
        """Largest |value| over the batch's atoms of each feature scale block the
        node owns (format v2 ``q_max`` of an A term); empty by default."""
        return {}

    # -------------------------------------------------- linear structure
    def affine_groups(self, child_groups: list[list[list[str]]], own: list[str], shift: list[str]) -> list[list[str]]:
        """Sets of linear blocks in each of which the node's value is affine.

        Parameters
        ----------
        child_groups : the children's groups (empty for a leaf)
        own : the leaf's coefficient and shift blocks (not frozen)
        shift : the node's shift block, if any (not frozen)
        """
        return [own]

    def design_columns(self, design, node, Phi: np.ndarray, weight: np.ndarray) -> None:
        """Fill the columns of the linear blocks below this node (its own are
        filled by the caller); nothing for a leaf. See :class:`compot.model.Model.linear_design`."""

    def design_column_vjp(self, design, node, weight: np.ndarray, grad) -> None:
        """Position gradients of the columns below this node; nothing for a leaf."""
