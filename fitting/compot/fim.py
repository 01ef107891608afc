"""Fisher information matrix (FIM) of a least-squares loss, in high precision.

For the weighted least-squares loss of paper Eq. (26),
``L = Σ_r w_r (y_r(θ) − ŷ_r)²``, the Fisher information with respect to the
linear coefficients θ is (paper Eq. 34, MODEL_SPEC.md §7)

.. math::  I = J^T W J, \\qquad I_{ab} = \\sum_r w_r J_{ra} J_{rb},

with ``J`` the Jacobian of every prediction in the loss (total energies and
force components) with respect to θ and ``W = diag(w)`` the loss weights.

Condition numbers of these matrices reach 10³³ (paper TABLE 6), far beyond
float64, so the paper computed the eigenvalues in 256-bit MPFR arithmetic
(Sec. IV.2). This module goes one step further and never rounds at all before
the eigenvalue problem:

1. Every float64 number is a dyadic rational ``m·2^e``, so ``I`` is an exact
   dyadic rational matrix. :func:`fisher_information_exact` computes it
   exactly as ``I = 2^F · D N D`` with ``N`` a symmetric integer matrix and
   ``D = diag(2^E_a)``. The integer product ``Mᵀ diag(W) M`` (~35 000 × 75
   integers of ~120 bits) is evaluated by a multi-modular method: residues
   modulo ~20-bit primes are multiplied with float64 BLAS, where every partial
   sum is an integer below 2⁵³ and therefore exact, and the result is
   reconstructed by the Chinese remainder theorem and checked modulo one more
   prime.
2. :func:`eigenvalues_high_precision` feeds the exact entries to the ball
   arithmetic eigenvalue solver of FLINT/Arb (python-flint). The working
   precision is raised until every eigenvalue (also the smallest) is known to
   ``bits`` bits *relative* accuracy; when all eigenvalues are simple the
   enclosures are rigorous (``certified=True``), otherwise (repeated or zero
   eigenvalues, which the rigorous isolation cannot separate) the error is
   estimated from two runs 64 bits apart (``certified=False``).

:func:`eigenvalues_float64` is the fast, inaccurate float64 path
(``λ = σ²`` of ``diag(√w) J``); :func:`analyse` compares the two and reports
every eigenvalue the float64 path gets wrong.

References
----------
.. [1] Y. Wang, M. K. Transtrum, V. Lordi, V. V. Bulatov, A. Samanta,
   "Composable and adaptive design of machine learning interatomic potentials
   guided by Fisher-information analysis", arXiv:2504.19372 (2025),
   Eqs. (9), (34), Sec. IV.2, IV.3.1 and Fig. 4(b).
.. [2] F. Johansson, "Arb: efficient arbitrary-precision midpoint-radius
   interval arithmetic", IEEE Trans. Comput. 66, 1281 (2017).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Integral
from typing import Mapping, Sequence

import flint
import mpmath
import numpy as np
import scipy.linalg
from mpmath import libmp

from .errors import FitError

__all__ = [
    "ExactFIM",
    "HighPrecisionEigenvalues",
    "Float64Agreement",
    "FisherSpectrum",
    "fisher_information_exact",
    "linear_map_fim",
    "eigenvalues_high_precision",
    "eigenvalues_float64",
    "analyse",
    "to_decimal_strings",
]

logger = logging.getLogger(__name__)

#: Rows per float64 BLAS block in the multi-modular product; with residues of
#: magnitude below p < 2**20 a block sum is bounded by 2**13 * 2**40 = 2**53 and
#: stays exact.
_ROW_BLOCK = 1 << 13
_PRIME_LIMIT = 1 << 20
#: Extra bits of working precision on top of ``bits`` and the condition number.
_GUARD_BITS = 64
#: Bits between the two runs of the non-rigorous (approximate) eigen solver.
_APPROX_STEP_BITS = 64


# ---------------------------------------------------------------------------
# Exact dyadic representation
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ExactFIM:
    """Exact symmetric dyadic matrix ``I = 2**scale_exponent · D N D``.

    Attributes
    ----------
    numerators : numpy.ndarray of object, shape (n_params, n_params)
        Symmetric matrix ``N`` of Python ``int``.
    column_exponents : numpy.ndarray of int64, shape (n_params,)
        ``E_a`` of ``D = diag(2**E_a)``.
    scale_exponent : int
        ``F``; the entry ``I_ab`` equals ``N_ab · 2**(E_a + E_b + F)`` exactly.

    Notes
    -----
    The FIM has the units of the loss divided by the product of the two
    parameters' units, e.g. ``[eV² / (unit of c_a · unit of c_b)]`` for
    energy rows with unit weights.
    """

    numerators: np.ndarray
    column_exponents: np.ndarray
    scale_exponent: int

    @property
    def n_params(self) -> int:
        """Number of parameters (matrix dimension)."""
        return int(self.numerators.shape[0])

    def entry_man_exp(self, a: int, b: int) -> tuple[int, int]:
        """Entry ``I_ab`` as ``(mantissa, exponent)``: ``I_ab = mantissa·2**exponent``."""
        return (int(self.numerators[a, b]),
                int(self.column_exponents[a]) + int(self.column_exponents[b])
                + int(self.scale_exponent))

    def to_fractions(self) -> list[list[Fraction]]:
        """Exact entries as :class:`fractions.Fraction`, shape (n_params, n_params)."""
        n = self.n_params
        return [[_man_exp_to_fraction(*self.entry_man_exp(a, b)) for b in range(n)]
                for a in range(n)]

    def to_float64(self) -> np.ndarray:
        """Entries correctly rounded to float64, shape (n_params, n_params)."""
        n = self.n_params
        out = np.empty((n, n), dtype=np.float64)
        for a in range(n):
            for b in range(n):
                out[a, b] = _man_exp_to_float(*self.entry_man_exp(a, b))
        return out

    def submatrix(self, indices: Sequence[int]) -> "ExactFIM":
        """Exact principal sub-matrix ``I[idx][:, idx]`` (e.g. one sub-model's block)."""
        idx = _check_indices(indices, self.n_params, "indices")
        return ExactFIM(self.numerators[np.ix_(idx, idx)],
                        self.column_exponents[idx].copy(), self.scale_exponent)

    @classmethod
    def from_matrix(cls, matrix) -> "ExactFIM":
        """Exact representation of a symmetric matrix of dyadic rationals.

        Parameters
        ----------
        matrix : array_like, shape (n, n)
            Entries float, int, ``mpmath.mpf`` or ``Fraction`` with a
            power-of-two denominator; must be exactly symmetric.

        Raises
        ------
        FitError
            If the matrix is not square, not symmetric, or has a non-finite
            or non-dyadic entry.
        """
        rows = _as_rows(matrix, "matrix")
        n = len(rows)
        if any(len(r) != n for r in rows):
            raise FitError(f"matrix: expected a square matrix, got rows of lengths "
                           f"{sorted({len(r) for r in rows})} for {n} rows")
        me = [[_scalar_man_exp(x, f"matrix[{a}, {b}]") for b, x in enumerate(r)]
              for a, r in enumerate(rows)]
        exps = [e for r in me for (m, e) in r if m != 0]
        low = min(exps) if exps else 0
        num = np.empty((n, n), dtype=object)
        for a in range(n):
            for b in range(n):
                m, e = me[a][b]
                num[a, b] = m << (e - low) if m else 0
        for a in range(n):
            for b in range(a + 1, n):
                if num[a, b] != num[b, a]:
                    raise FitError(f"matrix: expected a symmetric matrix, entry "
                                   f"[{a}, {b}] differs from [{b}, {a}]")
        return cls(num, np.zeros(n, dtype=np.int64), int(low))


def _man_exp_to_fraction(man: int, exp: int) -> Fraction:
    return Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)


def _man_exp_to_float(man: int, exp: int) -> float:
    """``man·2**exp`` correctly rounded to float64, also when subnormal (±inf on overflow)."""
    try:
        return float(_man_exp_to_fraction(man, exp))
    except OverflowError:
        return math.copysign(math.inf, man)


def _as_rows(matrix, name: str) -> list[list]:
    if isinstance(matrix, mpmath.matrix):
        return [[matrix[i, j] for j in range(matrix.cols)] for i in range(matrix.rows)]
    if isinstance(matrix, np.ndarray):
        if matrix.ndim != 2:
            raise FitError(f"{name}: expected a 2-d array, got shape {matrix.shape}")
        return [list(r) for r in matrix]
    try:
        rows = [list(r) for r in matrix]
    except TypeError as exc:
        raise FitError(f"{name}: expected a 2-d array-like, got {type(matrix).__name__}") from exc
    return rows


def _scalar_man_exp(x, what: str) -> tuple[int, int]:
    """Exact ``(m, e)`` with ``x = m·2**e`` for a dyadic scalar (``m`` odd or 0)."""
    if isinstance(x, (bool, np.bool_)):
        raise FitError(f"{what}: expected a number, got a boolean")
    if isinstance(x, (Integral, np.integer)):
        m, e = int(x), 0
    elif isinstance(x, (float, np.floating)):
        xf = float(x)
        if not math.isfinite(xf):
            raise FitError(f"{what}: expected a finite number, got {xf!r}")
        num, den = xf.as_integer_ratio()
        m, e = num, -(den.bit_length() - 1)
    elif hasattr(x, "_mpf_"):
        raw = x._mpf_
        if raw[1] == 0 and raw != libmp.fzero:
            raise FitError(f"{what}: expected a finite number, got {x}")
        sign, man, exp, _ = raw
        m, e = (-int(man) if sign else int(man)), int(exp)
    elif isinstance(x, Fraction):
        den = x.denominator
        if den & (den - 1):
            raise FitError(f"{what}: expected a dyadic rational (power-of-two "
                           f"denominator), got {x}")
        m, e = x.numerator, -(den.bit_length() - 1)
    else:
        raise FitError(f"{what}: expected float, int, mpf or Fraction, got {type(x).__name__}")
    if m == 0:
        return 0, 0
    tz = (m & -m).bit_length() - 1
    return m >> tz, e + tz


def _float_man_exp(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact decomposition ``x = m · 2**e`` of a finite float64 array.

    Returns ``m`` (int64, odd or 0, ``|m| < 2**53``) and ``e`` (int64, 0 where
    ``m == 0``), both of the shape of ``x``.
    """
    frac, ex = np.frexp(x)
    m = np.ldexp(frac, 53).astype(np.int64)
    e = ex.astype(np.int64) - 53
    nz = m != 0
    low = np.where(nz, m & -m, 1)  # lowest set bit, a power of two < 2**53
    tz = np.round(np.log2(low.astype(np.float64))).astype(np.int64)
    m = m >> tz
    e = np.where(nz, e + tz, 0)
    return m, e


@functools.lru_cache(maxsize=1)
def _primes_below_limit() -> np.ndarray:
    """All primes below ``_PRIME_LIMIT``, largest first."""
    sieve = np.ones(_PRIME_LIMIT, dtype=bool)
    sieve[:2] = False
    for k in range(2, int(_PRIME_LIMIT ** 0.5) + 1):
        if sieve[k]:
            sieve[k * k::k] = False
    return np.flatnonzero(sieve)[::-1].astype(np.int64)


def _pow2_mod(p: int, max_shift: int) -> np.ndarray:
    """``2**s mod p`` for ``s = 0 .. max_shift``, int64 of shape (max_shift + 1,)."""
    out = np.empty(max_shift + 1, dtype=np.int64)
    v = 1
    for s in range(max_shift + 1):
        out[s] = v
        v = (v * 2) % p
    return out


def _product_mod_p(p: int, mant: np.ndarray, shift: np.ndarray,
                   wmant: np.ndarray, wshift: np.ndarray, pw: np.ndarray) -> np.ndarray:
    """``Mᵀ diag(W) M mod p`` with ``M = mant·2**shift``, ``W = wmant·2**wshift``.

    Returns int64 of shape (n_params, n_params) in ``[0, p)``.
    """
    # C-style remainders: |residue| < p < 2**20, products of two < 2**40
    mr = np.fmod(mant, p)
    mr *= pw[shift]
    np.fmod(mr, p, out=mr)
    wr = np.fmod(np.fmod(wmant, p) * pw[wshift], p)
    ar = mr * wr[:, None]
    np.fmod(ar, p, out=ar)
    mf = mr.astype(np.float64)
    af = ar.astype(np.float64)
    n_params = mant.shape[1]
    acc = np.zeros((n_params, n_params), dtype=np.int64)
    for start in range(0, mant.shape[0], _ROW_BLOCK):
        blk = slice(start, start + _ROW_BLOCK)
        # exact: every partial sum is an integer of magnitude < 2**13 * 2**40 = 2**53
        acc += np.fmod((af[blk].T @ mf[blk]).astype(np.int64), p)
    return np.mod(acc, p)


def _single_threaded_blas():
    """Limit BLAS to one thread (the products are small; on a loaded machine
    multi-threaded OpenBLAS made them 50× slower). No-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _crt_symmetric(residues: list[np.ndarray], primes: list[int]) -> np.ndarray:
    """Integers in ``(-P/2, P/2]`` from residues modulo ``primes`` (object array)."""
    modulus = math.prod(primes)
    total = np.zeros(residues[0].shape, dtype=object)
    for r, p in zip(residues, primes):
        q = modulus // p
        c = q * pow(q, -1, p)
        total = total + r.astype(object) * c
    total = total % modulus
    half = modulus // 2
    return np.where(total > half, total - modulus, total)


def fisher_information_exact(J, weights) -> ExactFIM:
    """Exact Fisher information ``I = Jᵀ diag(w) J`` of a least-squares loss.

    Implements paper Eq. (34) [1]_ without any rounding: float64 inputs are
    dyadic rationals, and the result is returned exactly as
    ``I = 2**F · D N D`` (see :class:`ExactFIM`).

    Parameters
    ----------
    J : array_like of float64, shape (n_rows, n_params)
        Jacobian of every prediction in the loss (total energies ``[eV]`` and
        force components ``[eV/Å]``) with respect to the linear coefficients
        ``[eV / unit of coefficient]``.
    weights : array_like of float64, shape (n_rows,)
        Non-negative loss weights ``w_r`` (``[1/eV²]`` and ``[Å²/eV²]`` for a
        dimensionless loss; unit weights for paper Eq. 26).

    Returns
    -------
    ExactFIM
        The exact FIM, shape (n_params, n_params).

    Raises
    ------
    FitError
        If the shapes do not match, an entry is non-finite, or a weight is
        negative.

    Notes
    -----
    Each column is written as integers times a common power of two,
    ``J_ra = M_ra · 2**E_a``, and each weight as ``w_r = W_r · 2**F``. The
    integer matrix ``N = Mᵀ diag(W) M`` is computed modulo enough primes
    below 2**20 that their product exceeds ``2·max|N_ab|``; each modular
    product is a float64 matrix product whose partial sums are integers below
    2**53 (exact), reduced every 2**13 rows. ``N`` is reconstructed by the
    Chinese remainder theorem and verified modulo one further prime. For
    35 000 × 75 entries spanning 1e-12..1e3 this takes about a second.
    """
    t0 = time.perf_counter()
    J, w = _check_jacobian(J, weights)
    keep = w > 0
    J, w = J[keep], w[keep]
    n_rows, n_params = J.shape
    if n_rows == 0:
        logger.info("fisher_information_exact: no row with positive weight; I = 0")
        return ExactFIM(np.full((n_params, n_params), 0, dtype=object),
                        np.zeros(n_params, dtype=np.int64), 0)

    mant, exp = _float_man_exp(J)
    nz = mant != 0
    big = np.iinfo(np.int64).max
    col_exp = np.where(nz, exp, big).min(axis=0)
    col_exp = np.where(col_exp == big, 0, col_exp)
    shift = np.where(nz, exp - col_exp[None, :], 0)
    wmant, wexp = _float_man_exp(w)
    w_low = int(wexp.min())
    wshift = wexp - w_low

    # bound on |N_ab| <= n_rows * max W * max|M_a| * max|M_b|
    mbits = np.frexp(np.abs(mant).astype(np.float64))[1].astype(np.int64) + shift
    col_bits = int(mbits.max())
    wbits = int((np.frexp(wmant.astype(np.float64))[1].astype(np.int64) + wshift).max())
    bound_bits = (n_rows - 1).bit_length() + wbits + 2 * col_bits + 2
    max_shift = int(max(shift.max(), wshift.max()))

    primes_all = _primes_below_limit()
    primes: list[int] = []
    bits = 0.0
    for p in primes_all:
        if bits > bound_bits:
            break
        primes.append(int(p))
        bits += math.log2(int(p))
    check_prime = int(primes_all[len(primes)])

    residues = []
    with _single_threaded_blas():
        for p in primes + [check_prime]:
            pw = _pow2_mod(p, max_shift)
            residues.append(_product_mod_p(p, mant, shift, wmant, wshift, pw))
    numer = _crt_symmetric(residues[:-1], primes)

    check = np.array([[int(x) % check_prime for x in row] for row in numer], dtype=np.int64)
    if not np.array_equal(check, residues[-1]) or not np.array_equal(numer, numer.T):
        raise FitError("fisher_information_exact: internal consistency check failed "
                       "(CRT reconstruction disagrees modulo the check prime); "
                       "please report this with the Jacobian that triggered it")
    logger.debug("fisher_information_exact: %d x %d, %d primes for %d bits, %.3f s",
                 n_rows, n_params, len(primes), bound_bits, time.perf_counter() - t0)
    return ExactFIM(numer, col_exp.astype(np.int64), w_low)


def linear_map_fim(fim, T) -> ExactFIM:
    """Exact FIM ``Tᵀ I T`` after a fixed linear reparametrisation ``θ = T φ``.

    Used to report the spectrum in the paper's parametrisation
    ``c_lk exp(γ_l u)`` as well as in ours (MODEL_SPEC.md §3, §7).

    Parameters
    ----------
    fim : ExactFIM or array_like, shape (n_params, n_params)
        FIM with respect to θ; an array must hold dyadic entries
        (see :meth:`ExactFIM.from_matrix`).
    T : array_like, shape (n_params, n_new)
        Jacobian ``∂θ/∂φ``. Entries must be dyadic rationals (float64,
        int, ``mpmath.mpf`` at any precision, or ``Fraction`` with a
        power-of-two denominator); the product is then exact.

    Returns
    -------
    ExactFIM
        The FIM with respect to φ, shape (n_new, n_new).

    Raises
    ------
    FitError
        If the shapes do not match or an entry of ``T`` is not dyadic.
    """
    fim = fim if isinstance(fim, ExactFIM) else ExactFIM.from_matrix(fim)
    rows = _as_rows(T, "T")
    n = fim.n_params
    if len(rows) != n:
        raise FitError(f"T: expected shape ({n}, n_new) to match the FIM, got {len(rows)} rows")
    m_new = len(rows[0]) if rows else 0
    if any(len(r) != m_new for r in rows):
        raise FitError("T: rows of different lengths")
    # G = D T, written as integers times a common power of two per column
    me = [[_scalar_man_exp(x, f"T[{i}, {j}]") for j, x in enumerate(r)]
          for i, r in enumerate(rows)]
    new_exp = np.zeros(m_new, dtype=np.int64)
    G = [[0] * m_new for _ in range(n)]
    for j in range(m_new):
        exps = [me[i][j][1] + int(fim.column_exponents[i]) for i in range(n) if me[i][j][0]]
        low = min(exps) if exps else 0
        new_exp[j] = low
        for i in range(n):
            m, e = me[i][j]
            if m:
                G[i][j] = m << (e + int(fim.column_exponents[i]) - low)
    Gf = flint.fmpz_mat(n, m_new, [x for r in G for x in r]) if n and m_new else None
    Nf = flint.fmpz_mat(n, n, [int(x) for x in fim.numerators.ravel()]) if n else None
    out = np.full((m_new, m_new), 0, dtype=object)
    if Gf is not None:
        P = Gf.transpose() * Nf * Gf
        for a in range(m_new):
            for b in range(m_new):
                out[a, b] = int(P[a, b])
    return ExactFIM(out, new_exp, fim.scale_exponent)


# ---------------------------------------------------------------------------
# Eigenvalues
# ---------------------------------------------------------------------------

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
                                  else _digits_for_bits(self.bits))


def _digits_for_bits(bits: int) -> int:
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
            logger.debug("eigenvalues: rigorous isolation failed at %d bits "
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
        logger.debug("eigenvalues: raising working precision to %d bits", work)
    values = tuple(mpmath.mp.make_mpf(libmp.mpf_pos(m, bits, "n")) for m in mids)
    radii = tuple(mpmath.mp.make_mpf(r) for r in rads)
    if not all(resolved):
        logger.info("eigenvalues: %d of %d eigenvalues not resolved to %d bits at the "
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
    J, w = _check_jacobian(J, weights)
    keep = w > 0
    return _svd_eigs(np.sqrt(w[keep])[:, None] * J[keep], J.shape[1])


def _svd_eigs(A: np.ndarray, n_params: int) -> np.ndarray:
    out = np.zeros(n_params, dtype=np.float64)
    if A.size:
        s = scipy.linalg.svdvals(A)
        out[:s.size] = np.sort(s)[::-1] ** 2
    return out


# ---------------------------------------------------------------------------
# Spectrum analysis
# ---------------------------------------------------------------------------

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
        digits = _digits_for_bits(self.precision_bits)
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
        logger.info("%s", agreement.summary())
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
    J, w = _check_jacobian(J, weights)
    fim = fisher_information_exact(J, w)
    keep = w > 0
    Jf = J[keep]
    if transform is not None:
        fim = linear_map_fim(fim, transform)
        T64 = np.array([[float(x) for x in r] for r in _as_rows(transform, "transform")],
                       dtype=np.float64)
        Jf = Jf @ T64
    scaled = np.sqrt(w[keep])[:, None] * Jf
    n = fim.n_params
    block_idx = _check_blocks(blocks, n)
    spec = _spectrum(fim, _svd_eigs(scaled, n), bits, sc_ratio, tolerance, "svd",
                     max_bits, None)
    sub = {name: _spectrum(fim.submatrix(idx), _svd_eigs(scaled[:, list(idx)], len(idx)),
                           bits, sc_ratio, tolerance, "svd", max_bits, idx)
           for name, idx in block_idx.items()}
    return _finish(spec, sub, t0)


def _finish(spec: FisherSpectrum, sub: dict, t0: float) -> FisherSpectrum:
    notes = list(spec.notes) + [f"block {name!r}: {note}" for name, b in sub.items()
                                for note in b.notes]
    out = dataclasses.replace(spec, blocks=sub, notes=tuple(notes),
                              seconds=time.perf_counter() - t0)
    logger.info("FIM spectrum: n=%d, log10 κ=%s, n_significant=%d, %d bits (working %d), %.2f s",
                out.n_params, f"{out.log10_condition_number:.3f}", out.n_significant,
                out.precision_bits, out.working_precision_bits, out.seconds)
    return out


def _check_jacobian(J, weights) -> tuple[np.ndarray, np.ndarray]:
    J = np.asarray(J, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if J.ndim != 2:
        raise FitError(f"J: expected shape (n_rows, n_params), got shape {J.shape}")
    if w.shape != (J.shape[0],):
        raise FitError(f"weights: expected shape ({J.shape[0]},) to match J of shape "
                       f"{J.shape}, got {w.shape}")
    if not np.all(np.isfinite(J)):
        bad = np.argwhere(~np.isfinite(J))[0]
        raise FitError(f"J: expected finite entries, got {J[tuple(bad)]} at {tuple(bad)}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        bad = int(np.flatnonzero(~(np.isfinite(w) & (w >= 0)))[0])
        raise FitError(f"weights: expected finite values >= 0, got {w[bad]} at row {bad}")
    return J, w


def _check_indices(indices, n: int, what: str) -> list[int]:
    idx = [int(i) for i in indices]
    if not idx:
        raise FitError(f"{what}: expected at least one parameter index, got none")
    if len(set(idx)) != len(idx):
        raise FitError(f"{what}: expected distinct parameter indices, got {idx}")
    if min(idx) < 0 or max(idx) >= n:
        raise FitError(f"{what}: expected indices in [0, {n}), got {idx}")
    return idx


def _check_blocks(blocks, n: int) -> dict[str, tuple]:
    if blocks is None:
        return {}
    return {str(name): tuple(_check_indices(idx, n, f"blocks[{name!r}]"))
            for name, idx in blocks.items()}


