"""The exact Fisher information matrix I = Jᵀ W J of float64 data (paper Eq. 34).

Every float64 number is a dyadic rational m·2^e, so I is an exact dyadic rational
matrix: :func:`fisher_information_exact` computes it as I = 2^F · D N D with N a
symmetric integer matrix and D = diag(2^E_a), by a multi-modular method (residues
modulo ~20-bit primes multiplied with float64 BLAS, where every partial sum is an
integer below 2⁵³, then the Chinese remainder theorem, checked modulo one more
prime). :func:`linear_map_fim` applies a fixed reparametrisation exactly. See
:mod:`compot.fim` for the whole method and its references.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from dataclasses import dataclass
from fractions import Fraction
from numbers import Integral
from typing import Sequence

import flint
import mpmath
import numpy as np
from mpmath import libmp

from ..errors import FitError

__all__ = ["ExactFIM", "fisher_information_exact", "linear_map_fim", "matrix_rows", "checked_jacobian",
           "checked_indices"]

log = logging.getLogger(__name__)

#: Rows per float64 BLAS block in the multi-modular product; with residues of
#: magnitude below p < 2**20 a block sum is bounded by 2**13 * 2**40 = 2**53 and
#: stays exact.
_ROW_BLOCK = 1 << 13
_PRIME_LIMIT = 1 << 20


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
        idx = checked_indices(indices, self.n_params, "indices")
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
        rows = matrix_rows(matrix, "matrix")
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


def matrix_rows(matrix, name: str) -> list[list]:
    """The rows of a matrix (ndarray, ``mpmath.matrix`` or nested sequence) as lists of entries.

    Raises
    ------
    FitError
        When ``matrix`` (called ``name`` in the message) is not two-dimensional.
    """
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
    J, w = checked_jacobian(J, weights)
    keep = w > 0
    J, w = J[keep], w[keep]
    n_rows, n_params = J.shape
    if n_rows == 0:
        log.info("fisher_information_exact: no row with positive weight; I = 0")
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
    log.debug("fisher_information_exact: %d x %d, %d primes for %d bits, %.3f s",
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
    rows = matrix_rows(T, "T")
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


def checked_jacobian(J, weights) -> tuple[np.ndarray, np.ndarray]:
    """J as float64, shape (n_rows, n_params), and weights, shape (n_rows,), checked.

    Raises
    ------
    FitError
        For a wrong shape, a non-finite entry or a negative weight.
    """
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


def checked_indices(indices, n: int, what: str) -> list[int]:
    """Distinct parameter indices in [0, n) as a list; FitError (naming ``what``) otherwise."""
    idx = [int(i) for i in indices]
    if not idx:
        raise FitError(f"{what}: expected at least one parameter index, got none")
    if len(set(idx)) != len(idx):
        raise FitError(f"{what}: expected distinct parameter indices, got {idx}")
    if min(idx) < 0 or max(idx) >= n:
        raise FitError(f"{what}: expected indices in [0, {n}), got {idx}")
    return idx
