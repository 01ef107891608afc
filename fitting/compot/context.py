"""Evaluation state of one model on one batch of configurations.

A :class:`Context` ties together the pair geometry (:class:`compot.pairs.PairBasis`),
the format v2 safety layer (:class:`compot.safety.SafetyLayer`) and per-node
caches, and walks the term tree: every node's value, features and
vector–Jacobian products come from its term's class (:mod:`compot.terms`).
"""

from __future__ import annotations

import weakref
from typing import Callable

import numpy as np

from .gradient import PairGradient
from .neighbours import System
from .pairs import BasisValues, PairBasis, Radial
from .safety import AtomSwitch, Grade, SafetyLayer

__all__ = ["Context", "PairGradient"]


class Context:
    """Per-batch evaluation state (parameters must not change while it is used).

    Parameters
    ----------
    model : Model
    system : System

    Attributes
    ----------
    pairs : PairBasis — effective distances, basis tables, φ and ρ
    safety : SafetyLayer — atom switch, extrapolation grade, switched site energy; it
        reaches this Context through a weak proxy, so keep the Context while using it
        (``ctx = model.context(s); ctx.safety.feature_vector()``, or the delegating
        methods ``ctx.grade()``, ``ctx.switch()``; ``model.context(s).safety.grade()``
        raises ReferenceError)
    """

    def __init__(self, model, system: System):
        self.model = model
        self.system = system
        self.params = model.params
        self.pairs = PairBasis(model, system)
        # the layer reaches back through a weak proxy: a strong Context <-> SafetyLayer cycle
        # kept every batch's arrays (basis tables, moments, gradients: hundreds of MB per
        # batch) alive until the cyclic garbage collector ran, so a fit's memory grew with
        # the number of batches
        self.safety = SafetyLayer(weakref.proxy(self))
        self._value: dict[int, np.ndarray] = {}
        self._cache: dict[tuple[int, str], object] = {}
        self._onehot: np.ndarray | None = None

    @property
    def tau(self) -> float | None:
        """Saturation width τ of format v2, None for format v1 (quadratic continuation)."""
        return float(self.params["w.tau"]) if self.model.version >= 2 else None

    @property
    def onehot(self) -> np.ndarray:
        """One-hot centre species, shape (n_atoms, S) [-]."""
        if self._onehot is None:
            self._onehot = np.eye(self.system.n_species)[self.system.species_n]
        return self._onehot

    def cached(self, idx: int, key: str, make: Callable[[], object]):
        """A per-node value computed once per batch by ``make``."""
        if (idx, key) not in self._cache:
            self._cache[(idx, key)] = make()
        return self._cache[(idx, key)]

    # ---------------------------------------------------------- pair data
    def radial(self) -> Radial:
        return self.pairs.radial()

    def basis(self, b: int) -> BasisValues:
        return self.pairs.basis(b)

    def phi(self, b: int) -> np.ndarray:
        return self.pairs.phi(b)

    def rho(self, b: int) -> np.ndarray:
        return self.pairs.rho(b)

    # ---------------------------------------------------------- tree walk
    def value(self, idx: int) -> np.ndarray:
        """V(i) of node idx (shift included where the node carries one), shape (n_atoms,) [eV]."""
        if idx not in self._value:
            node = self.model.layout.nodes[idx]
            v = node.term.value(self, node)
            if node.has_shift:
                v = v + self.params[f"n{idx}.shift"][self.system.species_n]
            self._value[idx] = v
        return self._value[idx]

    def features(self, idx: int) -> np.ndarray:
        """Per-atom features of leaf idx's coefficient block, shape (n_atoms, size of n<idx>.c) [-]."""
        node = self.model.layout.nodes[idx]
        return node.term.features(self, node)

    def vjp(self, idx: int, a: np.ndarray, grad: PairGradient, cols: slice) -> None:
        """Accumulate Σ_i a[i, m] ∂V_idx(i)/∂D_p into grad columns ``cols`` (a shape (n_atoms, m))."""
        node = self.model.layout.nodes[idx]
        node.term.vjp(self, node, a, grad, cols)

    def feature_vjp(self, idx: int, A: np.ndarray, grad: PairGradient, cols: slice) -> None:
        """Accumulate Σ_i A[i, c] ∂F_c(i)/∂D_p for every coefficient column c of leaf idx."""
        node = self.model.layout.nodes[idx]
        node.term.feature_vjp(self, node, A, grad, cols)

    # ------------------------------------------------------- safety layer
    def switch(self) -> AtomSwitch:
        return self.safety.switch()

    def grade(self) -> Grade:
        return self.safety.grade()

    def fitted_value(self) -> np.ndarray:
        return self.safety.fitted_value()

    def site_energy(self) -> np.ndarray:
        return self.safety.site_energy()

    def site_energy_vjp(self, a: np.ndarray, grad: PairGradient, cols: slice) -> None:
        self.safety.site_energy_vjp(a, grad, cols)
