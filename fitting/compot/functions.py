"""Scalar building blocks: cutoff, two-body bases, the bounded exponentiated
feature, ZBL and the real-harmonic polynomials of the angular term.

Each function returns value and derivative together (``*_fdf``), vectorised
over NumPy arrays. The C core (``kim_driver/``) implements the same formulas
under the same names (MODEL_SPEC §1–4 and §10 are the contract):

=========================  ============================
Python                     C (kim_driver/)
=========================  ============================
``cutoff_fdf``             ``compot_cutoff_fn``
``radial_basis_fdf``       ``compot_radial_basis``
``exp_feature_fdf``        ``compot_exp_feature``
``inner_window_fdf``       ``compot_inner_window``
``zbl_pair_fdf``           ``compot_zbl_pair``
``real_harmonics``         ``compot_real_harmonics``
=========================  ============================
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "cutoff_fdf", "gaussian_basis_fdf", "chebyshev_basis_fdf", "radial_basis_fdf",
    "exp_feature_fdf", "inner_window_fdf", "effective_distance_fdf", "zbl_pair_fdf", "atomic_number",
    "real_harmonics", "RealHarmonics",
]


def cutoff_fdf(r: np.ndarray, r_c: float) -> tuple[np.ndarray, np.ndarray]:
    """Cutoff f_c(r) = 1 − 35x⁴ + 84x⁵ − 70x⁶ + 20x⁷, x = r/r_c, 0 beyond r_c.

    MODEL_SPEC §1 (paper Eq. 41 properties: f_c(0) = 1, first three
    derivatives vanish at r_c).

    Parameters
    ----------
    r : ndarray, shape (n,) [Å]
    r_c : float [Å]

    Returns
    -------
    f, df : ndarray, shape (n,)
        value [-] and derivative df/dr [1/Å].
    """
    x = np.asarray(r, dtype=float) / r_c
    inside = x < 1.0
    x = np.where(inside, x, 1.0)
    x3 = x * x * x
    x4 = x3 * x
    f = 1.0 + x4 * (-35.0 + x * (84.0 + x * (-70.0 + 20.0 * x)))
    df = x3 * (-140.0 + x * (420.0 + x * (-420.0 + 140.0 * x))) / r_c
    return np.where(inside, f, 0.0), np.where(inside, df, 0.0)


def gaussian_basis_fdf(r: np.ndarray, fc: np.ndarray, dfc: np.ndarray, alpha: float, beta: float, K: int):
    """Even-tempered Gaussian basis ĝ_k(r) = exp(−α β^(k−1) r²) f_c(r), k = 1..K.

    MODEL_SPEC §2 (paper Eq. 54–57).

    Parameters
    ----------
    r, fc, dfc : ndarray, shape (n_pairs,)
        distances [Å], cutoff values and derivatives.
    alpha : float [1/Å²]; beta : float [-]; K : int

    Returns
    -------
    g, dg : ndarray, shape (n_pairs, K)
        ĝ_k(r) and dĝ_k/dr [1/Å].
    """
    a = alpha * beta ** np.arange(K)
    e = np.exp(-np.outer(r * r, a))
    g = e * fc[:, None]
    dg = e * (dfc[:, None] - 2.0 * np.outer(r * fc, a))
    return g, dg


def chebyshev_basis_fdf(r: np.ndarray, fc: np.ndarray, dfc: np.ndarray, r_c: float, K: int):
    """Chebyshev basis ĝ_k(r) = T_(k−1)(2r/r_c − 1) f_c(r), k = 1..K (MODEL_SPEC §2).

    Shapes and units as :func:`gaussian_basis_fdf`.
    """
    t = 2.0 * r / r_c - 1.0
    T = np.empty((r.shape[0], K))
    dT = np.empty((r.shape[0], K))
    T[:, 0] = 1.0
    dT[:, 0] = 0.0
    if K > 1:
        T[:, 1] = t
        dT[:, 1] = 1.0
    for n in range(2, K):
        T[:, n] = 2.0 * t * T[:, n - 1] - T[:, n - 2]
        dT[:, n] = 2.0 * T[:, n - 1] + 2.0 * t * dT[:, n - 1] - dT[:, n - 2]
    g = T * fc[:, None]
    dg = dT * (2.0 / r_c) * fc[:, None] + T * dfc[:, None]
    return g, dg


def radial_basis_fdf(kind: str, r, fc, dfc, r_c: float, K: int, alpha: float | None = None,
                     beta: float | None = None):
    """The two-body basis ĝ_k(r), k = 1..K, and dĝ_k/dr (the C core's
    ``compot_radial_basis``; MODEL_SPEC §2): Gaussian ('G', :func:`gaussian_basis_fdf`)
    or Chebyshev ('C', :func:`chebyshev_basis_fdf`).

    Parameters
    ----------
    kind : 'G' or 'C'
    r, fc, dfc : ndarray, shape (n_pairs,) — distances [Å], f_c(r) [-], df_c/dr [1/Å]
    r_c : float [Å]; K : int; alpha [1/Å²], beta [-] : float (Gaussian only)

    Returns
    -------
    g, dg : ndarray, shape (n_pairs, K) — [-] and [1/Å]
    """
    if kind == "G":
        return gaussian_basis_fdf(r, fc, dfc, alpha, beta, K)
    return chebyshev_basis_fdf(r, fc, dfc, r_c, K)


def exp_feature_fdf(gamma: np.ndarray, u: np.ndarray, tau: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bounded exponentiated feature x(γ, u) of MODEL_SPEC §3/§10 and ∂x/∂u
    (the C core's ``compot_exp_feature``).

    x(γ, u) = (exp(γu) − 1)/γ for |u| ≤ 1 (the series u + γu²/2 + γ²u³/6 for
    |γ| < 1e-6); equal in span to the paper's exp(γu) plus a shift (Eq. 13).
    Beyond |u| = 1, with u_b = sign(u), d = u − u_b, x′ = exp(γu_b), x″ = γx′:

    * ``tau`` None (format v1): the second-order Taylor expansion
      x(γ, u_b) + x′d + ½x″d², growing quadratically;
    * ``tau`` > 0 (format v2, docs/parameter-file.md): the saturating
      continuation x(γ, u_b) + x′T + ½x″T² with T = τ tanh(d/τ), C² at |u| = 1
      and bounded by |x − x(γ, u_b)| ≤ x′τ + |x″|τ²/2.

    Parameters
    ----------
    gamma : ndarray, broadcastable with ``u`` [-]
    u : ndarray [-] (scaled cluster function φ/φ_max, ρ/ρ_max or q/q_max)
    tau : float or None — saturation width τ [-]

    Returns
    -------
    x, dx : ndarray, broadcast shape of ``gamma`` and ``u``
    """
    gamma = np.asarray(gamma, dtype=float)
    u = np.asarray(u, dtype=float)
    gamma, u = np.broadcast_arrays(gamma, u)
    uc = np.clip(u, -1.0, 1.0)
    small = np.abs(gamma) < 1e-6
    safe_g = np.where(small, 1.0, gamma)
    x_in = np.where(small, uc + gamma * uc * uc / 2.0 + gamma * gamma * uc ** 3 / 6.0,
                    np.expm1(gamma * uc) / safe_g)
    e = np.exp(gamma * uc)
    d = u - uc  # zero inside
    if tau is None:
        return x_in + e * d + 0.5 * gamma * e * d * d, e + gamma * e * d
    th = np.tanh(d / tau)
    T = tau * th
    return x_in + e * T + 0.5 * gamma * e * T * T, (e + gamma * e * T) * (1.0 - th * th)


def inner_window_fdf(r: np.ndarray, r_a: np.ndarray, r_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inner window s_in(r) of format v2 (MODEL_SPEC §10) and ds_in/dr.

    s_in = 0 for r ≤ r_a, 1 for r ≥ r_b, and the C³ step
    s_in = 35t⁴ − 84t⁵ + 70t⁶ − 20t⁷ (= 1 − the f_c polynomial of t),
    t = (r − r_a)/(r_b − r_a), in between (docs/parameter-file.md).

    Parameters
    ----------
    r, r_a, r_b : ndarray, shape (n,) [Å] — distances and each pair's window

    Returns
    -------
    s, ds : ndarray, shape (n,) — value [-] and derivative [1/Å]
    """
    r = np.asarray(r, dtype=float)
    width = r_b - r_a
    inside = (r < r_b) & (width > 0)
    safe_w = np.where(width > 0, width, 1.0)
    t = np.clip((r - r_a) / safe_w, 0.0, 1.0)
    t3 = t * t * t
    s = t3 * t * (35.0 + t * (-84.0 + t * (70.0 - 20.0 * t)))
    ds = t3 * (140.0 + t * (-420.0 + t * (420.0 - 140.0 * t))) / safe_w
    below = r < r_b
    return np.where(inside, s, np.where(below, 0.0, 1.0)), np.where(inside, ds, 0.0)


def effective_distance_fdf(r: np.ndarray, r_a: np.ndarray, r_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance c(r) at which the fitted terms of format v2 see a pair, and dc/dr.

    c(r) = r_b − w_c (1/2 − I(t)), w_c = 0.22 (r_b − r_a), t = (r − r_b + w_c)/w_c
    clipped to [0, 1], I(t) = ∫₀ᵗ S_in = 7t⁵ − 14t⁶ + 10t⁷ − 2.5t⁸: r itself for r ≥ r_b,
    monotone with dc/dr = S_in(t), and r_b − 0.11 (r_b − r_a) for r ≤ r_b − w_c
    (MODEL_SPEC §10, docs/parameter-file.md; C: compot_effective_distance). A pair closer than the data's shortest distance is
    thus seen as if it were at that distance, so fitted terms never extrapolate in r.

    Parameters
    ----------
    r, r_a, r_b : ndarray, shape (n,) [Å]

    Returns
    -------
    c, dc : ndarray, shape (n,) — [Å], [-]
    """
    r = np.asarray(r, dtype=float)
    wc = 0.22 * (r_b - r_a)
    t = np.clip((r - (r_b - wc)) / np.where(wc > 0, wc, 1.0), 0.0, 1.0)
    integral = t ** 5 * (7.0 + t * (-14.0 + t * (10.0 - 2.5 * t)))
    s, _ = inner_window_fdf(r, r_b - wc, r_b)      # dc/dr = S_in(t), the window's own step
    close = (r < r_b) & (wc > 0)
    return np.where(close, r_b - wc * (0.5 - integral), r), np.where(close, s, 1.0)


# ------------------------------------------------------------------------- ZBL
_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
    "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb "
    "Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf "
    "Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og").split()


def atomic_number(symbol: str) -> int:
    """Atomic number of a chemical symbol; ValueError naming the symbol if unknown."""
    try:
        return _SYMBOLS.index(symbol) + 1
    except ValueError:
        raise ValueError(f"unknown chemical symbol {symbol!r}") from None


# LAMMPS pair_style zbl constants (metal units), Ziegler, Biersack, Littmark (1985).
ZBL_QQR2E = 14.399645      # e²/(4πε₀) [eV·Å]
ZBL_A0 = 0.46850           # screening length prefactor [Å]
ZBL_PZBL = 0.23
ZBL_C = (0.02817, 0.28022, 0.50986, 0.18175)
ZBL_D = (0.20162, 0.40290, 0.94229, 3.19980)


def _zbl_raw(r, zi, zj):
    """Unswitched ZBL energy and its first two r-derivatives."""
    a = ZBL_A0 / (zi ** ZBL_PZBL + zj ** ZBL_PZBL)
    pref = ZBL_QQR2E * zi * zj
    s = sum(c * np.exp(-d * r / a) for c, d in zip(ZBL_C, ZBL_D))
    ds = sum(-c * d / a * np.exp(-d * r / a) for c, d in zip(ZBL_C, ZBL_D))
    d2s = sum(c * (d / a) ** 2 * np.exp(-d * r / a) for c, d in zip(ZBL_C, ZBL_D))
    e = pref * s / r
    de = pref * (ds / r - s / r ** 2)
    d2e = pref * (d2s / r - 2.0 * ds / r ** 2 + 2.0 * s / r ** 3)
    return e, de, d2e


def zbl_pair_fdf(r: np.ndarray, zi: np.ndarray, zj: np.ndarray, r_in: float, r_out: float):
    """Switched ZBL pair energy φ(r) and dφ/dr, as LAMMPS ``pair_style zbl``
    (the C core's ``compot_zbl_pair``; MODEL_SPEC §4).

    Between r_in and r_out the switching polynomial S(t) = A t³/3 + B t⁴/4 + C,
    t = r − r_in, is added, with A, B, C such that φ, φ′ and φ″ vanish at r_out;
    below r_in the constant C is added; φ = 0 at and beyond r_out.

    Parameters
    ----------
    r : ndarray, shape (n,) [Å]
    zi, zj : ndarray, shape (n,) — atomic numbers
    r_in, r_out : float [Å]

    Returns
    -------
    e, de : ndarray, shape (n,) — [eV], [eV/Å]
    """
    r = np.asarray(r, dtype=float)
    zi = np.asarray(zi, dtype=float)
    zj = np.asarray(zj, dtype=float)
    tc = r_out - r_in
    ec, dec, d2ec = _zbl_raw(np.full_like(r, r_out), zi, zj)
    A = (-3.0 * dec + tc * d2ec) / tc ** 2
    B = (2.0 * dec - tc * d2ec) / tc ** 3
    C = -ec + 0.5 * tc * dec - tc * tc * d2ec / 12.0
    rr = np.where(r < r_out, r, r_out)
    e, de, _ = _zbl_raw(rr, zi, zj)
    t = np.clip(rr - r_in, 0.0, None)
    e = e + A * t ** 3 / 3.0 + B * t ** 4 / 4.0 + C
    de = de + A * t ** 2 + B * t ** 3
    inside = r < r_out
    return np.where(inside, e, 0.0), np.where(inside, de, 0.0)


# ------------------------------------------------------------- angular term
class RealHarmonics(NamedTuple):
    """Real harmonics of unit vectors in the layout of the C core (:func:`real_harmonics`).

    Y : ndarray, shape (n, (P+1)²) [-]
    dY : ndarray, shape (n, 3, (P+1)²) — gradients in (x, y, z) taken as independent
    degree : ndarray of int, shape ((P+1)²,) — the degree l of each column
    """

    Y: np.ndarray
    dY: np.ndarray
    degree: np.ndarray


def real_harmonics(u: np.ndarray, P: int) -> RealHarmonics:
    """P_l-normalised real solid harmonics of unit vectors and their gradients
    (the C core's ``compot_real_harmonics``: same layout, normalisation and
    recurrences, MODEL_SPEC §3 angular term).

    Column v of degree l: Y_(l²) = Q_l^0, Y_(l²+2m−1) = √w_lm Q_l^m C_m,
    Y_(l²+2m) = √w_lm Q_l^m S_m (m = 1..l), with w_lm = 2 (l−m)!/(l+m)!,
    C_m + i S_m = (x + i y)^m and Q_l^m = d^m P_l/dz^m, so that the Legendre
    addition theorem reads P_l(û_a·û_b) = Σ_(v of degree l) Y_v(û_a) Y_v(û_b).
    Recurrences: C_m = x C_(m−1) − y S_(m−1), S_m = x S_(m−1) + y C_(m−1);
    Q_m^m = (2m−1)!!, Q_(m+1)^m = (2m+1) z Q_m^m,
    Q_l^m = ((2l−1)/(l−m)) z Q_(l−1)^m − ((l+m−1)/(l−m)) Q_(l−2)^m; dQ_l^m/dz = Q_l^(m+1).
    Gradients treat x, y, z as independent (the caller projects them onto the sphere).

    Parameters
    ----------
    u : ndarray, shape (n, 3) — unit vectors [-]
    P : int — highest degree, 0 <= P <= MAX_P

    Returns
    -------
    RealHarmonics
    """
    n = u.shape[0]
    x, y, z = u[:, 0], u[:, 1], u[:, 2]
    C = [np.ones(n)]
    S = [np.zeros(n)]
    for m in range(1, P + 1):
        C.append(x * C[m - 1] - y * S[m - 1])
        S.append(x * S[m - 1] + y * C[m - 1])
    Q = {}
    dfact = 1.0
    for m in range(P + 1):
        if m > 0:
            dfact *= float(2 * m - 1)
        Q[(m, m)] = np.full(n, dfact)
        if m + 1 <= P:
            Q[(m + 1, m)] = (float(2 * m + 1) * dfact) * z
        for l in range(m + 2, P + 1):
            ca = float(2 * l - 1) / float(l - m)
            cb = float(l + m - 1) / float(l - m)
            Q[(l, m)] = (ca * z) * Q[(l - 1, m)] - cb * Q[(l - 2, m)]
    nv = (P + 1) ** 2
    Y = np.empty((n, nv))
    dY = np.zeros((n, 3, nv))
    degree = np.repeat(np.arange(P + 1), 2 * np.arange(P + 1) + 1)
    for l in range(P + 1):
        v = l * l
        Y[:, v] = Q[(l, 0)]
        if l > 0:
            dY[:, 2, v] = Q[(l, 1)]
        for m in range(1, l + 1):
            w = 2.0
            for t in range(l - m + 1, l + m + 1):
                w /= float(t)
            sw = math.sqrt(w)
            wq = sw * Q[(l, m)]
            mq = float(m) * wq
            Y[:, v + 2 * m - 1] = wq * C[m]
            Y[:, v + 2 * m] = wq * S[m]
            dY[:, 0, v + 2 * m - 1] = mq * C[m - 1]
            dY[:, 1, v + 2 * m - 1] = -(mq * S[m - 1])
            dY[:, 0, v + 2 * m] = mq * S[m - 1]
            dY[:, 1, v + 2 * m] = mq * C[m - 1]
            if m < l:
                wd = sw * Q[(l, m + 1)]
                dY[:, 2, v + 2 * m - 1] = wd * C[m]
                dY[:, 2, v + 2 * m] = wd * S[m]
    return RealHarmonics(Y, dY, degree)
