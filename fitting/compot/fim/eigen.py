"""Eigenvalues of an exact FIM to a requested relative precision (paper Sec. IV.2).

:func:`eigenvalues_high_precision` feeds the exact entries to the ball-arithmetic
eigenvalue solver of FLINT/Arb (python-flint) and raises the working precision
until every eigenvalue, the smallest included, is known to ``bits`` bits relative
accuracy; :func:`eigenvalues_float64` is the fast, inaccurate float64 path. See
:mod:`compot.fim` for the method and its references.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from dataclasses import dataclass
from numbers import Integral

import flint
import mpmath
import numpy as np
import scipy.linalg
from mpmath import libmp

from ..errors import FitError
from .exact import ExactFIM, checked_jacobian

__all__ = ["HighPrecisionEigenvalues", "eigenvalues_high_precision", "eigenvalues_float64", "svd_eigenvalues",
           "to_decimal_strings", "digits_for_bits"]

log = logging.getLogger(__name__)

#: Extra bits of working precision on top of ``bits`` and the condition number.
_GUARD_BITS = 64
#: Bits between the two runs of the non-rigorous (approximate) eigen solver.
_APPROX_STEP_BITS = 64


@dataclass(frozen=True, eq=False)
class HighPrecisionEigenvalues:
    """Eigenvalues of a symmetric matrix to ``bits`` bits relative accuracy.

    Attributes
    ----------
    values : tuple of mpmath.mpf, length n
        Eigenvalues, descending, each rounded to ``bits`` bits (exact ``mpf``
        values; arithmetic on them uses ``mpmath.mp.prec``). Same unit as the
        matrix.
    radii : tuple of mpmath.mpf, length n
        Bound (``certified``) or estimate (otherwise) of ``|value − λ|``
        before the final rounding to ``bits`` bits.
    resolved : tuple of bool, length n
        Whether the eigenvalue is known to ``bits`` bits relative accuracy.
        ``False`` means it could not be separated from 0 (``|λ| ≤ radius``)
        or not resolved even at ``max_bits``.
    certified : bool
        ``True`` if the radii are rigorous (Arb ball arithmetic); ``False``
        if repeated eigenvalues forced the approximate solver, whose radii
        are estimated from two runs ``64`` bits apart.
    bits : int
        Requested relative precision in bits.
    working_bits : int
        Working precision of the final solve.
    seconds : float
        Wall time of the computation [s].
    """

    values: tuple
    radii: tuple
    resolved: tuple
    certified: bool
    bits: int
    working_bits: int
    seconds: float

    @property
    def float64(self) -> np.ndarray:
        """The eigenvalues rounded to float64, shape (n,), descending."""
        return np.array([float(v) for v in self.values], dtype=np.float64)

    def to_strings(self, digits: int | None = None) -> list[str]:
        """Decimal strings of the eigenvalues (see :func:`to_decimal_strings`)."""
        return to_decimal_strings(self.values, digits if digits is not None
                                  else digits_for_bits(self.bits))


def digits_for_bits(bits: int) -> int:
    """Significant decimal digits carried by ``bits`` bits: floor(bits·log10 2), at least 1."""
    return max(1, int(bits * math.log10(2)))


def to_decimal_strings(values, digits: int = 77) -> list[str]:
    """Decimal strings with ``digits`` significant digits.

    Parameters
    ----------
    values : iterable of mpmath.mpf or float
    digits : int
        Significant digits; 77 matches 256-bit binary precision.

    Returns
    -------
    list of str
    """
    out = []
    for v in values:
        raw = v._mpf_ if hasattr(v, "_mpf_") else libmp.from_float(float(v))
        out.append(libmp.to_str(raw, digits, strip_zeros=False))
    return out


def _arb_man_exp(x) -> tuple[int, int]:
    m, e = x.mid().man_exp()
    return int(m), int(e)


def _arb_rad_man_exp(x) -> tuple[int, int]:
    m, e = x.rad().mid().man_exp()
    return int(m), int(e)


def _solve_eig(entries: list[list[tuple[int, int]]], prec: int):
    """One eigenvalue solve at ``prec`` bits.

    Returns ``(mids, rads, certified)`` with raw mpmath tuples (exact), sorted
    by midpoint descending.
    """
    n = len(entries)
    with flint.ctx.workprec(prec):
        A = flint.arb_mat(n, n)
        for a in range(n):
            for b in range(n):
                A[a, b] = flint.arb(entries[a][b])  # exact, any precision
        M = flint.acb_mat(A)
        try:
            E = M.eig()
            balls = [e.real for e in E]
            pairs = [(libmp.from_man_exp(*_arb_man_exp(b)),
                      libmp.from_man_exp(*_arb_rad_man_exp(b))) for b in balls]
            pairs.sort(key=functools.cmp_to_key(lambda s, t: libmp.mpf_cmp(t[0], s[0])))
            return [p[0] for p in pairs], [p[1] for p in pairs], True
        except ValueError:
            log.debug("eigenvalues: rigorous isolation failed at %d bits "
                         "(repeated or zero eigenvalues); using the approximate solver", prec)
            lo = [libmp.from_man_exp(*_arb_man_exp(e.real)) for e in M.eig(algorithm="approx")]
    with flint.ctx.workprec(prec + _APPROX_STEP_BITS):
        M = flint.acb_mat(A)
        hi = [libmp.from_man_exp(*_arb_man_exp(e.real)) for e in M.eig(algorithm="approx")]
    key = functools.cmp_to_key(lambda s, t: libmp.mpf_cmp(t, s))
    lo.sort(key=key)
    hi.sort(key=key)
    scale = max((libmp.mpf_abs(x) for x in hi), key=functools.cmp_to_key(libmp.mpf_cmp),
                default=libmp.fzero)
    floor = libmp.mpf_mul(scale, libmp.from_man_exp(n, -prec))
    rads = []
    for a, b in zip(lo, hi):
        d = libmp.mpf_abs(libmp.mpf_sub(a, b))
        rads.append(d if libmp.mpf_cmp(d, floor) > 0 else floor)
    return hi, rads, False


def _log2_abs(raw) -> float:
    """log2 |x| of a raw mpf tuple (``-inf`` for 0)."""
    sign, man, exp, bc = raw
    if not man:
        return -math.inf
    return exp + bc  # within 1 of the exact value; enough for choosing precision


def eigenvalues_high_precision(fim, bits: int = 256, *, max_bits: int | None = None,
                               ) -> HighPrecisionEigenvalues:
    """Eigenvalues of a symmetric (FIM) matrix to ``bits`` bits relative accuracy.

    Paper Sec. IV.2 [1]_ computes the FIM eigenvalues in 256-bit MPFR
    floating point. Here the exact matrix entries are passed to Arb's
    eigenvalue solver [2]_ and the working precision is raised (up to
    ``max_bits``) until every eigenvalue, the smallest included, carries
    ``bits`` correct bits.

    Parameters
    ----------
    fim : ExactFIM or array_like, shape (n, n)
        Symmetric matrix; an array must hold dyadic entries
        (see :meth:`ExactFIM.from_matrix`).
    bits : int
        Required relative precision of every eigenvalue [bits].
    max_bits : int, optional
        Cap on the working precision; default ``2·bits + 128``. Eigenvalues
        below about ``2**-(max_bits - bits - 64)·λ_max`` (e.g. exact zeros of
        a singular FIM) are returned with ``resolved=False`` and a radius.

    Returns
    -------
    HighPrecisionEigenvalues
        Descending eigenvalues with radii, in the matrix' unit.

    Raises
    ------
    FitError
        If ``fim`` is not a symmetric dyadic matrix or ``bits`` < 2.

    Notes
    -----
    The solve sets python-flint's global working precision for its duration
    (``flint.ctx.workprec``); do not run it concurrently in threads. Cost for
    75 × 75 at κ ≈ 1e30: about 1 s; 120 × 120: about 4 s.
    """
    t0 = time.perf_counter()
    if not isinstance(bits, Integral) or bits < 2:
        raise FitError(f"bits: expected an integer >= 2, got {bits!r}")
    bits = int(bits)
    max_bits = int(max_bits) if max_bits is not None else 2 * bits + 128
    fim = fim if isinstance(fim, ExactFIM) else ExactFIM.from_matrix(fim)
    n = fim.n_params
    if n == 0:
        return HighPrecisionEigenvalues((), (), (), True, bits, 0, 0.0)
    entries = [[fim.entry_man_exp(a, b) for b in range(n)] for a in range(n)]

    # first guess of log2 κ from the float64 rounding (sees at most ~2**52)
    f64 = fim.to_float64()
    lam64 = np.linalg.eigvalsh(f64) if np.all(np.isfinite(f64)) else np.zeros(0)
    top = float(np.max(np.abs(lam64))) if lam64.size else 0.0
    if not lam64.size:
        kappa_bits = 52
    elif top > 0:
        low = max(float(np.min(np.abs(lam64))), top * 2.0 ** -52)
        kappa_bits = int(math.ceil(math.log2(top / low)))
    else:
        kappa_bits = 0
    work = min(max_bits, bits + _GUARD_BITS + kappa_bits)
    while True:
        mids, rads, certified = _solve_eig(entries, work)
        top_l2 = max(_log2_abs(m) for m in mids)
        resolved = []
        need = work
        for m, r in zip(mids, rads):
            l2m, l2r = _log2_abs(m), _log2_abs(r)
            ok = l2m > -math.inf and (l2r == -math.inf or l2r <= l2m - bits - 2)
            resolved.append(ok)
            if ok:
                continue
            if l2m > -math.inf and libmp.mpf_cmp(r, libmp.mpf_abs(m)) < 0:
                need = max(need, bits + _GUARD_BITS + int(math.ceil(top_l2 - l2m)) + 2)
            else:  # the ball contains 0 despite the head room: most likely an
                need = max_bits  # exact zero, so go straight to the cap
        if all(resolved) or work >= max_bits:
            break
        work = min(max_bits, max(need, work + _GUARD_BITS))
        log.debug("eigenvalues: raising working precision to %d bits", work)
    values = tuple(mpmath.mp.make_mpf(libmp.mpf_pos(m, bits, "n")) for m in mids)
    radii = tuple(mpmath.mp.make_mpf(r) for r in rads)
    if not all(resolved):
        log.info("eigenvalues: %d of %d eigenvalues not resolved to %d bits at the "
                    "working precision cap of %d bits", resolved.count(False), n, bits, work)
    return HighPrecisionEigenvalues(values, radii, tuple(resolved), certified, bits, work,
                                    time.perf_counter() - t0)


def eigenvalues_float64(J, weights) -> np.ndarray:
    """FIM eigenvalues from float64 singular values, ``λ = σ²`` of ``diag(√w) J``.

    Fast but limited to about 16 significant decimal digits *relative to
    λ_max*: eigenvalues below ~1e-16·λ_max (1e-32 for the smallest singular
    values' squares in the best case) are unreliable.

    Parameters
    ----------
    J : array_like of float64, shape (n_rows, n_params)
        Jacobian (see :func:`fisher_information_exact`).
    weights : array_like of float64, shape (n_rows,)
        Non-negative loss weights.

    Returns
    -------
    numpy.ndarray of float64, shape (n_params,)
        Eigenvalues, descending; zero-padded when ``n_rows < n_params``.
    """
    J, w = checked_jacobian(J, weights)
    keep = w > 0
    return svd_eigenvalues(np.sqrt(w[keep])[:, None] * J[keep], J.shape[1])


def svd_eigenvalues(A: np.ndarray, n_params: int) -> np.ndarray:
    """Eigenvalues σ² of AᵀA from the singular values of A, shape (n_rows, k), descending,
    padded with zeros to shape (n_params,)."""
    out = np.zeros(n_params, dtype=np.float64)
    if A.size:
        s = scipy.linalg.svdvals(A)
        out[:s.size] = np.sort(s)[::-1] ** 2
    return out
