"""Tests of compot.fim: exact FIM accumulation and high-precision spectra.

Reference values come from exact rational arithmetic (``fractions.Fraction``),
from matrices with analytically known eigenvalues (exactly orthogonal rational
matrices built from Pythagorean-triple Givens rotations), and from an
independent mpmath eigen solver at 100 digits.
"""

import json
import math
import os
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from compot import fim
from compot.plots import plot_spectra
from compot.errors import FitError


def _fim_fractions(J, w):
    """Reference ``Jᵀ diag(w) J`` in exact rational arithmetic."""
    n_rows, n = J.shape
    Jf = [[Fraction(float(x)) for x in row] for row in J]
    wf = [Fraction(float(x)) for x in w]
    return [[sum(wf[r] * Jf[r][a] * Jf[r][b] for r in range(n_rows)) for b in range(n)]
            for a in range(n)]


def _dyadic_matrix(rng, shape, lo_exp, hi_exp):
    """Random floats ``k·2**e`` (k small signed integers, some zeros), exact in float64."""
    k = rng.integers(-2**20, 2**20, size=shape).astype(np.float64)
    k[rng.random(shape) < 0.1] = 0.0
    return np.ldexp(k, rng.integers(lo_exp, hi_exp, size=shape))


def _rational_orthogonal(n):
    """Integer ``P`` and ``d`` with ``P/d`` exactly orthogonal (Givens rotations with
    Pythagorean triples (a, b, c): cos = a/c, sin = b/c)."""
    triples = [(3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25), (20, 21, 29),
               (12, 35, 37), (9, 40, 41)]
    pairs = [(0, 1), (2, 3), (4, 5), (6, 7), (1, 2), (3, 4), (5, 6)]
    P = np.eye(n, dtype=object)
    d = 1
    for (i, j), (a, b, c) in zip(pairs, triples):
        G = np.eye(n, dtype=object) * c
        G[i, i] = G[j, j] = a
        G[i, j], G[j, i] = -b, b
        P = P.dot(G)
        d *= c
    assert (P.T.dot(P) == np.eye(n, dtype=object) * d * d).all()
    return P, d


def _mpf_rel(a, b):
    """|a − b| / |b| at 100 digits; Fractions are converted at that precision."""
    with mpmath.workdps(100):
        a, b = (mpmath.mpf(x.numerator) / x.denominator if isinstance(x, Fraction)
                else mpmath.mpf(x) for x in (a, b))
        return abs(a - b) / abs(b)


def _mp_reference_eigenvalues(exact: fim.ExactFIM, dps=100):
    """Independent reference: mpmath's symmetric eigen solver on the exact entries."""
    with mpmath.workdps(dps):
        A = mpmath.matrix([[mpmath.mpf(x.numerator) / x.denominator for x in row]
                           for row in exact.to_fractions()])
        return sorted(mpmath.mp.eigsy(A, eigvals_only=True), reverse=True)


# --- exact accumulation ---------------------------------------------------------------

def test_exact_fim_equals_fraction_product():
    rng = np.random.default_rng(1)
    J = _dyadic_matrix(rng, (50, 6), -60, 40)
    J[:, 4] = 0.0  # an all-zero column
    J[7, 2] = 5e-324  # a subnormal
    w = np.ldexp(rng.integers(0, 9, 50).astype(np.float64), rng.integers(-30, 5, 50))
    w[3] = 1.0 / 3.0  # full 53-bit mantissa
    exact = fim.fisher_information_exact(J, w)
    assert exact.to_fractions() == _fim_fractions(J, w)
    ref64 = np.array([[float(x) for x in row] for row in _fim_fractions(J, w)])
    assert np.array_equal(exact.to_float64(), ref64)


def test_exact_fim_wide_exponent_range_many_primes():
    # entries from 1e-300 to 1e300 need ~4000-bit integers, i.e. ~200 primes
    rng = np.random.default_rng(2)
    J = rng.standard_normal((40, 3)) * 10.0 ** rng.uniform(-300, 300, (40, 3))
    w = rng.uniform(0.0, 2.0, 40)
    assert fim.fisher_information_exact(J, w).to_fractions() == _fim_fractions(J, w)


def test_exact_fim_many_rows_spot_check():
    # more rows than one BLAS block (2**13), entries spanning 1e-12 .. 1e3
    rng = np.random.default_rng(3)
    J = rng.standard_normal((20000, 5)) * 10.0 ** rng.uniform(-12, 3, (20000, 5))
    w = rng.uniform(0.5, 2.0, 20000)
    exact = fim.fisher_information_exact(J, w)
    for a, b in [(0, 0), (1, 3), (4, 2)]:
        ref = sum(Fraction(float(w[r])) * Fraction(float(J[r, a])) * Fraction(float(J[r, b]))
                  for r in range(J.shape[0]))
        assert exact.to_fractions()[a][b] == ref


def test_zero_weights_and_no_rows():
    J = np.array([[1.0, 2.0], [3.0, 4.0]])
    exact = fim.fisher_information_exact(J, [0.0, 0.5])
    assert exact.to_fractions() == [[Fraction(9, 2), Fraction(6)], [Fraction(6), Fraction(8)]]
    assert fim.fisher_information_exact(J, [0.0, 0.0]).to_fractions() == [[0, 0], [0, 0]]


def test_linear_map_fim_is_exact():
    rng = np.random.default_rng(4)
    J = _dyadic_matrix(rng, (30, 4), -20, 20)
    w = np.ones(30)
    T = rng.standard_normal((4, 3))
    T = T.astype(object)
    T[1, 2] = mpmath.mpf(2) ** -300 * 7  # an mpf entry far outside float64 exponents
    out = fim.linear_map_fim(fim.fisher_information_exact(J, w), T)
    I = _fim_fractions(J, w)
    Tf = [[Fraction(float(x)) if not hasattr(x, "_mpf_") else Fraction(7, 2**300) for x in row]
          for row in T]
    ref = [[sum(Tf[i][a] * I[i][j] * Tf[j][b] for i in range(4) for j in range(4))
            for b in range(3)] for a in range(3)]
    assert out.to_fractions() == ref


def test_input_errors():
    with pytest.raises(FitError, match="weights"):
        fim.fisher_information_exact(np.ones((3, 2)), [1.0, -1.0, 1.0])
    with pytest.raises(FitError, match="expected shape"):
        fim.fisher_information_exact(np.ones((3, 2)), np.ones(4))
    with pytest.raises(FitError, match="finite"):
        fim.fisher_information_exact(np.array([[1.0, np.nan]]), [1.0])
    with pytest.raises(FitError, match="dyadic"):
        fim.ExactFIM.from_matrix([[Fraction(1, 3)]])
    with pytest.raises(FitError, match="symmetric"):
        fim.ExactFIM.from_matrix([[1.0, 2.0], [3.0, 1.0]])
    with pytest.raises(FitError, match="blocks"):
        fim.analyse(np.eye(2), np.ones(2), blocks={"left": [0, 2]})


# --- high-precision eigenvalues -----------------------------------------------------------

def test_kappa_1e30_known_eigenvalues():
    # I = Jᵀ W J = P W Pᵀ = d² Q W Qᵀ with Q = P/d exactly orthogonal: λ_k = d² w_k exactly,
    # w_k = 2**-e_k spanning 1 .. 2**-100 ≈ 7.9e-31, so κ = 2**100 ≈ 1.27e30.
    P, d = _rational_orthogonal(8)
    J = np.array(P.T.tolist(), dtype=np.float64)
    assert (J == np.array(P.T.tolist(), dtype=object)).all()  # integers < 2**53: exact
    e = [0, 14, 29, 43, 57, 71, 86, 100]
    w = np.ldexp(1.0, [-k for k in e])
    exact = fim.fisher_information_exact(J, w)
    ev = fim.eigenvalues_high_precision(exact, bits=256)
    known = [Fraction(d * d, 2**k) for k in e]
    assert ev.certified and all(ev.resolved)
    for value, lam in zip(ev.values, known):
        assert _mpf_rel(value, lam) < 1e-70
    # independent mpmath reference on the same exact matrix
    for value, ref in zip(ev.values, _mp_reference_eigenvalues(exact)):
        assert _mpf_rel(value, ref) < 1e-50
    spec = fim.analyse(J, w)
    assert spec.condition_number == mpmath.mpf(2) ** 100
    assert spec.log10_condition_number == pytest.approx(100 * math.log10(2), abs=1e-12)


def test_kappa_1e30_float64_error_is_reported():
    # nearly collinear columns J[:, k] = B[:, 0] + 2**-t_k B[:, k] (exact in float64):
    # κ ≈ 1e30 from the columns, where float64 SVD loses the small eigenvalues.
    rng = np.random.default_rng(5)
    B = rng.integers(-3, 4, (40, 8)).astype(np.float64)
    t = [0, 7, 14, 21, 29, 36, 43, 50]
    J = np.column_stack([B[:, 0]] + [B[:, 0] + np.ldexp(B[:, k], -t[k]) for k in range(1, 8)])
    w = np.ldexp(1.0, rng.integers(-2, 1, 40))
    spec = fim.analyse(J, w, bits=256)
    assert 28 < spec.log10_condition_number < 33
    ref = _mp_reference_eigenvalues(fim.fisher_information_exact(J, w))
    for value, r in zip(spec.eigenvalues, ref):
        assert _mpf_rel(value, r) < 1e-50
    agreement = spec.float64_agreement
    assert agreement.relative_difference[-1] > 1e-3
    assert 7 in agreement.wrong and agreement.max_relative_difference > 1e-3
    assert agreement.relative_difference[0] < 1e-12  # the large ones are fine
    assert any("float64" in note for note in spec.notes)
    assert spec.to_json()["float64_agreement"]["n_wrong"] == len(agreement.wrong) >= 1


def test_blocks_equal_independent_submatrix_spectra():
    rng = np.random.default_rng(6)
    B = rng.integers(-3, 4, (60, 7)).astype(np.float64)
    J = B.copy()
    J[:, 3] = B[:, 2] + np.ldexp(B[:, 3], -30)  # an ill-conditioned pair inside "right"
    w = np.ones(60)
    blocks = {"left": [0, 1, 2], "right": [2, 3, 4, 5, 6]}
    spec = fim.analyse(J, w, blocks=blocks)
    assert set(spec.blocks) == {"left", "right"}
    for name, idx in blocks.items():
        block = spec.blocks[name]
        alone = fim.analyse(J[:, idx], w)  # independent: sub-Jacobian from scratch
        assert block.indices == tuple(idx)
        assert len(block.eigenvalues) == len(idx)
        for a, b in zip(block.eigenvalues, alone.eigenvalues):
            assert _mpf_rel(a, b) < 1e-70
        assert block.condition_number == alone.condition_number
        assert block.n_significant == alone.n_significant
        np.testing.assert_array_equal(block.eigenvalues_float64,
                                      fim.eigenvalues_float64(J[:, idx], w))
        for a, r in zip(block.eigenvalues, _mp_reference_eigenvalues(
                fim.fisher_information_exact(J, w).submatrix(idx))):
            assert _mpf_rel(a, r) < 1e-50
    assert spec.blocks["right"].log10_condition_number > 15


def test_diagonal_n_significant_and_condition_number():
    # J = diag(2**-k) → λ = 4**-k = 1, 2**-10, 2**-40, 2**-50, 2**-60, 2**-100
    J = np.diag(np.ldexp(1.0, [0, -5, -20, -25, -30, -50]))
    spec = fim.analyse(J, np.ones(6))
    assert [float(v) for v in spec.eigenvalues] == [2.0**-k for k in (0, 10, 40, 50, 60, 100)]
    assert spec.condition_number == mpmath.mpf(2) ** 100
    assert spec.log10_condition_number == pytest.approx(30.10299956639812, rel=1e-14)
    assert spec.n_significant == 3  # 2**-50 ≈ 8.9e-16 < 1e-15 ≤ 2**-40 ≈ 9.1e-13
    assert fim.analyse(J, np.ones(6), sc_ratio=1e-16).n_significant == 4
    assert spec.precision_bits == 256 and spec.working_precision_bits >= 256


def test_repeated_and_zero_eigenvalues():
    # repeated eigenvalues: rigorous isolation fails, the approximate path is used
    spec = fim.analyse(np.diag([1.0, 1.0, 2.0**-5]), np.ones(3))
    assert [float(v) for v in spec.eigenvalues] == [1.0, 1.0, 2.0**-10]
    assert not spec.certified and all(spec.eigenvalues_resolved)
    # exactly singular FIM (duplicated column): κ = inf, said so
    rng = np.random.default_rng(7)
    J = rng.standard_normal((30, 4))
    J[:, 3] = J[:, 1]
    spec = fim.analyse(J, np.ones(30))
    assert spec.singular and math.isinf(spec.log10_condition_number)
    assert not spec.eigenvalues_resolved[-1]
    assert abs(spec.eigenvalues[-1]) <= spec.eigenvalue_radii[-1]
    assert spec.eigenvalue_radii[-1] < 1e-150 * spec.eigenvalues[0]
    assert any("singular" in note for note in spec.notes)
    js = spec.to_json()
    assert js["condition_number"] == "inf" and js["log10_condition_number"] is None


def test_eigenvalues_float64_matches_eigvalsh_when_well_conditioned():
    rng = np.random.default_rng(8)
    J = rng.standard_normal((100, 5))
    w = rng.uniform(0.1, 1.0, 100)
    lam = fim.eigenvalues_float64(J, w)
    ref = np.sort(np.linalg.eigvalsh(J.T @ (w[:, None] * J)))[::-1]
    np.testing.assert_allclose(lam, ref, rtol=1e-12)
    spec = fim.analyse(J, w)
    assert not spec.float64_agreement.wrong
    np.testing.assert_allclose(spec.eigenvalues_high_as_float64, ref, rtol=1e-12)


def test_to_json_keys_and_digits():
    P, d = _rational_orthogonal(8)
    J = np.array(P.T.tolist(), dtype=np.float64)
    w = np.ldexp(1.0, [0, -14, -29, -43, -57, -71, -86, -100])
    spec = fim.analyse(J, w, blocks={"left": [0, 1, 2, 3], "right": [4, 5, 6, 7]})
    js = json.loads(json.dumps(spec.to_json()))
    keys = {"eigenvalues", "eigenvalues_float64", "condition_number", "log10_condition_number",
            "n_significant", "precision_bits", "blocks", "seconds", "float64_agreement"}
    assert keys <= set(js)
    assert keys - {"blocks"} <= set(js["blocks"]["left"])
    for s in js["eigenvalues"] + [js["condition_number"]]:
        mantissa = s.split("e")[0].replace("-", "").replace(".", "").lstrip("0")
        assert len(mantissa) >= 60
    assert mpmath.mpf(js["condition_number"]) == pytest.approx(2.0**100, rel=1e-15)
    assert js["precision_bits"] == 256 and js["n_significant"] == 4  # 2**-43 in, 2**-57 out
    with mpmath.workdps(90):
        exact = mpmath.mpf(d * d) / mpmath.mpf(2) ** 100
        assert abs(mpmath.mpf(js["eigenvalues"][-1]) - exact) <= mpmath.mpf(10) ** -70 * exact


def test_linear_map_spectrum_via_analyse_transform():
    rng = np.random.default_rng(9)
    J = rng.integers(-3, 4, (40, 4)).astype(np.float64)
    T = np.diag([1.0, 0.5, 2.0**-20, 4.0])
    T[0, 1] = 1.0
    spec = fim.analyse(J, np.ones(40), transform=T)
    direct = fim.analyse(J @ T, np.ones(40))  # J @ T is exact here
    for a, b in zip(spec.eigenvalues, direct.eigenvalues):
        assert _mpf_rel(a, b) < 1e-70


# --- plot ---------------------------------------------------------------------------------

def test_plot_spectra_writes_png(tmp_path):
    J = np.diag(np.ldexp(1.0, [0, -5, -20, -25, -30, -50]))
    a = fim.analyse(J, np.ones(6))
    rng = np.random.default_rng(10)
    Jb = rng.standard_normal((30, 4))
    Jb[:, 3] = Jb[:, 0]
    b = fim.analyse(Jb, np.ones(30))  # singular: drawn as a marker at the bottom
    path = tmp_path / "spectra.png"
    plot_spectra({"G4": a, "singular": b}, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert os.listdir(tmp_path) == ["spectra.png"]  # no temporary file left behind
