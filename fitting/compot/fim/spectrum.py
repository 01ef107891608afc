"""FIM eigenspectrum analysis: condition numbers, the significant-correlations
count and the check of the float64 path (paper Sec. IV.2, IV.3.1, TABLE 6).

:func:`analyse` computes the exact FIM of a Jacobian (:mod:`compot.fim.exact`), its
high-precision eigenvalues and those of its sub-model blocks
(:mod:`compot.fim.eigen`), and reports every eigenvalue the float64 path gets wrong.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import mpmath
import numpy as np
from mpmath import libmp

from ..errors import FitError
from .eigen import digits_for_bits, eigenvalues_high_precision, svd_eigenvalues, to_decimal_strings
from .exact import ExactFIM, checked_indices, checked_jacobian, fisher_information_exact, linear_map_fim, matrix_rows

__all__ = ["Float64Agreement", "FisherSpectrum", "analyse"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Float64Agreement:
    """How well the float64 path reproduces the high-precision eigenvalues.

    Attributes
    ----------
    relative_difference : numpy.ndarray of float64, shape (n,)
        ``|λ64_i − λ_i| / |λ_i|`` per eigenvalue (descending order; ``inf``
        where ``λ_i`` is not distinguishable from 0 but ``λ64_i`` is not 0).
    tolerance : float
        Relative difference above which an eigenvalue counts as wrong.
    wrong : tuple of int
        Indices (into the descending spectrum) of the wrong eigenvalues.
    source : str
        What the float64 path was (``"svd"`` of ``diag(√w) J`` or
        ``"eigvalsh"`` of the float64-rounded FIM).
    """

    relative_difference: np.ndarray
    tolerance: float
    wrong: tuple
    source: str

    @property
    def max_relative_difference(self) -> float:
        """Largest relative difference (0 for an empty spectrum)."""
        return float(np.max(self.relative_difference)) if self.relative_difference.size else 0.0

    def summary(self) -> str:
        """One line for logs and reports."""
        if not self.wrong:
            return (f"float64 ({self.source}) agrees with high precision to "
                    f"{self.max_relative_difference:.1e} relative on every eigenvalue")
        return (f"float64 ({self.source}) is wrong by more than {self.tolerance:g} relative "
                f"on {len(self.wrong)} of {self.relative_difference.size} eigenvalues "
                f"(indices {list(self.wrong)}; max {self.max_relative_difference:.3g})")

    def to_json(self) -> dict:
        """JSON-serialisable dict (non-finite numbers as the strings ``"inf"``/``"nan"``)."""
        return {
            "source": self.source,
            "tolerance": self.tolerance,
            "max_relative_difference": _json_float(self.max_relative_difference),
            "relative_difference": [_json_float(x) for x in self.relative_difference],
            "wrong": list(self.wrong),
            "n_wrong": len(self.wrong),
            "summary": self.summary(),
        }


def _json_float(x: float):
    x = float(x)
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf" if x < 0 else "nan")


@dataclass(frozen=True, eq=False)
class FisherSpectrum:
    """FIM eigenspectrum analysis (paper Sec. IV.2, IV.3.1, TABLE 6).

    Attributes
    ----------
    eigenvalues : tuple of mpmath.mpf, length n_params
        Descending eigenvalues, ``precision_bits`` bits relative accuracy
        (where ``eigenvalues_resolved``). Unit of the FIM.
    eigenvalue_radii : tuple of mpmath.mpf
        Error bound or estimate of each eigenvalue (see
        :class:`HighPrecisionEigenvalues`).
    eigenvalues_resolved : tuple of bool
    certified : bool
        Whether the radii are rigorous.
    eigenvalues_float64 : numpy.ndarray of float64, shape (n_params,)
        The float64 path's eigenvalues, descending.
    condition_number : mpmath.mpf
        ``κ = λ_max / λ_min``; ``inf`` if ``λ_min`` cannot be distinguished
        from 0 (singular FIM, see ``notes``).
    log10_condition_number : float
        ``log10 κ`` (``inf`` if singular).
    n_significant : int
        Number of eigenvalues with ``λ ≥ sc_ratio·λ_max`` (the "significant
        correlations" region of paper Sec. IV.3.1).
    sc_ratio : float
    precision_bits : int
        Requested relative precision of the eigenvalues.
    working_precision_bits : int
        Working precision needed to reach it.
    float64_agreement : Float64Agreement
    seconds : float
        Wall time [s] (for the top-level spectrum: everything, blocks included).
    blocks : dict of str to FisherSpectrum
        Spectra of the principal sub-matrices of the sub-models (paper's
        "left"/"right" terms); empty for a block itself.
    indices : tuple of int or None
        The parameter indices of a block; ``None`` for the full FIM.
    notes : tuple of str
        Everything a reader must know (singular FIM, unresolved eigenvalues,
        float64 disagreement, approximate radii).
    """

    eigenvalues: tuple
    eigenvalue_radii: tuple
    eigenvalues_resolved: tuple
    certified: bool
    eigenvalues_float64: np.ndarray
    condition_number: object
    log10_condition_number: float
    n_significant: int
    sc_ratio: float
    precision_bits: int
    working_precision_bits: int
    float64_agreement: Float64Agreement
    seconds: float
    blocks: dict = field(default_factory=dict)
    indices: tuple | None = None
    notes: tuple = ()

    @property
    def n_params(self) -> int:
        return len(self.eigenvalues)

    @property
    def singular(self) -> bool:
        """True if λ_min cannot be distinguished from 0 (κ = inf)."""
        return bool(mpmath.isinf(self.condition_number))

    @property
    def eigenvalues_high_as_float64(self) -> np.ndarray:
        """The high-precision eigenvalues rounded to float64, shape (n_params,)."""
        return np.array([float(v) for v in self.eigenvalues], dtype=np.float64)

    def to_json(self) -> dict:
        """JSON-serialisable summary.

        Eigenvalues and κ are decimal strings with ``floor(bits·log10 2)``
        significant digits (77 for 256 bits); ``log10_condition_number`` is
        ``None`` if the FIM is singular.
        """
        digits = digits_for_bits(self.precision_bits)
        kappa = ("inf" if self.singular
                 else to_decimal_strings([self.condition_number], digits)[0])
        return {
            "eigenvalues": to_decimal_strings(self.eigenvalues, digits),
            "eigenvalue_radii": to_decimal_strings(self.eigenvalue_radii, 6),
            "eigenvalues_resolved": list(self.eigenvalues_resolved),
            "certified": self.certified,
            "eigenvalues_float64": [float(x) for x in self.eigenvalues_float64],
            "condition_number": kappa,
            "log10_condition_number": (None if not math.isfinite(self.log10_condition_number)
                                       else self.log10_condition_number),
            "n_significant": self.n_significant,
            "sc_ratio": self.sc_ratio,
            "precision_bits": self.precision_bits,
            "working_precision_bits": self.working_precision_bits,
            "float64_agreement": self.float64_agreement.to_json(),
            "indices": None if self.indices is None else list(self.indices),
            "notes": list(self.notes),
            "seconds": self.seconds,
            "blocks": {name: b.to_json() for name, b in self.blocks.items()},
        }


def _spectrum(fim: ExactFIM, lam64: np.ndarray, bits: int, sc_ratio: float,
              tolerance: float, source: str, max_bits: int | None,
              indices: tuple | None) -> FisherSpectrum:
    t0 = time.perf_counter()
    ev = eigenvalues_high_precision(fim, bits, max_bits=max_bits)
    ctx = mpmath.MPContext()
    ctx.prec = bits + 32
    vals = [ctx.make_mpf(v._mpf_) for v in ev.values]
    rads = [ctx.make_mpf(r._mpf_) for r in ev.radii]
    notes = []
    n = len(vals)
    if n == 0:
        raise FitError("FIM spectrum: expected at least one parameter, got 0")
    lmax, lmin = vals[0], vals[-1]
    lmin_zero = (not ev.resolved[-1]) and abs(lmin) <= rads[-1]
    if lmin < 0 and not lmin_zero:
        kappa = mpmath.mp.make_mpf(libmp.finf)
        log10k = math.inf
        notes.append(f"the matrix is not positive semi-definite: λ_min = {ctx.nstr(lmin, 6)} "
                     f"± {ctx.nstr(rads[-1], 3)} < 0; κ reported as inf")
    elif lmax <= 0 or lmin <= 0 or lmin_zero:
        kappa = mpmath.mp.make_mpf(libmp.finf)
        log10k = math.inf
        notes.append(
            f"singular FIM: λ_min = {ctx.nstr(lmin, 6)} ± {ctx.nstr(rads[-1], 3)} is not "
            f"distinguishable from 0 at {ev.working_bits} working bits "
            f"(λ_max = {ctx.nstr(lmax, 6)}); κ reported as inf")
    else:
        k = lmax / lmin
        kappa = mpmath.mp.make_mpf(libmp.mpf_pos(k._mpf_, bits, "n"))
        log10k = float(ctx.log10(k))
    threshold = ctx.mpf(repr(float(sc_ratio))) * lmax if lmax > 0 else ctx.zero
    n_sig = sum(1 for v in vals if v >= threshold) if lmax > 0 else 0
    straddle = [i for i, (v, r) in enumerate(zip(vals, rads))
                if lmax > 0 and abs(v - threshold) <= r]
    if straddle:
        notes.append(f"eigenvalues {straddle} are within their error radius of the SC "
                     f"threshold {sc_ratio:g}·λ_max; n_significant may be off by {len(straddle)}")
    unresolved = [i for i, ok in enumerate(ev.resolved) if not ok]
    if unresolved:
        notes.append(f"eigenvalues {unresolved} are not resolved to {bits} bits even at "
                     f"{ev.working_bits} working bits (|λ| ≤ radius given)")
    if not ev.certified:
        notes.append("repeated or zero eigenvalues: radii are estimates from two approximate "
                     "solves 64 bits apart, not rigorous bounds")

    rel = np.empty(n, dtype=np.float64)
    for i, (v, x) in enumerate(zip(vals, lam64)):
        diff = abs(ctx.mpf(float(x)) - v)
        rel[i] = float(diff / abs(v)) if v != 0 else (0.0 if diff == 0 else math.inf)
        if not ev.resolved[i] and abs(v) <= rads[i]:
            rel[i] = 0.0 if abs(ctx.mpf(float(x))) <= rads[i] else math.inf
    wrong = tuple(int(i) for i in np.flatnonzero(~(rel <= tolerance)))
    agreement = Float64Agreement(rel, float(tolerance), wrong, source)
    if wrong:
        notes.append(agreement.summary())
        log.info("%s", agreement.summary())
    return FisherSpectrum(
        eigenvalues=ev.values, eigenvalue_radii=ev.radii, eigenvalues_resolved=ev.resolved,
        certified=ev.certified, eigenvalues_float64=np.asarray(lam64, dtype=np.float64),
        condition_number=kappa, log10_condition_number=log10k, n_significant=int(n_sig),
        sc_ratio=float(sc_ratio), precision_bits=bits, working_precision_bits=ev.working_bits,
        float64_agreement=agreement, seconds=time.perf_counter() - t0, indices=indices,
        notes=tuple(notes))


def analyse(J, weights, blocks: Mapping[str, Sequence[int]] | None = None, bits: int = 256,
            sc_ratio: float = 1e-15, *, transform=None, tolerance: float = 1e-3,
            max_bits: int | None = None) -> FisherSpectrum:
    """FIM eigenspectrum analysis of a least-squares fit (paper Sec. IV.2).

    Parameters
    ----------
    J : array_like of float64, shape (n_rows, n_params)
        Jacobian of all predictions in the loss w.r.t. the linear
        coefficients (see :func:`fisher_information_exact`).
    weights : array_like of float64, shape (n_rows,)
        Non-negative loss weights.
    blocks : mapping of str to sequence of int, optional
        Sub-models of a composition, ``{name: column indices}``; each gets the
        spectrum of its principal sub-matrix ``I[idx][:, idx]`` (the paper's
        left/right-term condition numbers, TABLE 6). With ``transform`` the
        indices refer to the new parameters.
    bits : int
        Relative precision of the eigenvalues [bits] (paper: 256).
    sc_ratio : float
        Lower edge of the "significant correlations" region, ``λ ≥
        sc_ratio·λ_max`` (paper Sec. IV.3.1: 1e-15).
    transform : array_like, shape (n_params, n_new), optional
        Fixed linear reparametrisation ``θ = T φ`` (dyadic entries, e.g.
        float64 or ``mpf``); the spectrum is then that of ``Tᵀ I T``, computed
        exactly (:func:`linear_map_fim`). The float64 path uses ``J @ T``
        rounded to float64.
    tolerance : float
        Relative difference above which a float64 eigenvalue counts as wrong.
    max_bits : int, optional
        Working-precision cap (see :func:`eigenvalues_high_precision`).

    Returns
    -------
    FisherSpectrum

    Raises
    ------
    FitError
        On malformed input (shapes, non-finite entries, negative weights,
        bad block indices).
    """
    t0 = time.perf_counter()
    J, w = checked_jacobian(J, weights)
    fim = fisher_information_exact(J, w)
    keep = w > 0
    Jf = J[keep]
    if transform is not None:
        fim = linear_map_fim(fim, transform)
        T64 = np.array([[float(x) for x in r] for r in matrix_rows(transform, "transform")],
                       dtype=np.float64)
        Jf = Jf @ T64
    scaled = np.sqrt(w[keep])[:, None] * Jf
    n = fim.n_params
    block_idx = _check_blocks(blocks, n)
    spec = _spectrum(fim, svd_eigenvalues(scaled, n), bits, sc_ratio, tolerance, "svd",
                     max_bits, None)
    sub = {name: _spectrum(fim.submatrix(idx), svd_eigenvalues(scaled[:, list(idx)], len(idx)),
                           bits, sc_ratio, tolerance, "svd", max_bits, idx)
           for name, idx in block_idx.items()}
    return _finish(spec, sub, t0)


def _finish(spec: FisherSpectrum, sub: dict, t0: float) -> FisherSpectrum:
    notes = list(spec.notes) + [f"block {name!r}: {note}" for name, b in sub.items()
                                for note in b.notes]
    out = dataclasses.replace(spec, blocks=sub, notes=tuple(notes),
                              seconds=time.perf_counter() - t0)
    log.info("FIM spectrum: n=%d, log10 κ=%s, n_significant=%d, %d bits (working %d), %.2f s",
                out.n_params, f"{out.log10_condition_number:.3f}", out.n_significant,
                out.precision_bits, out.working_precision_bits, out.seconds)
    return out


def _check_blocks(blocks, n: int) -> dict[str, tuple]:
    if blocks is None:
        return {}
    return {str(name): tuple(checked_indices(idx, n, f"blocks[{name!r}]"))
            for name, idx in blocks.items()}
