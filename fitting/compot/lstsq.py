"""Memory-bounded linear least squares: a streaming QR (TSQR) of weighted row batches.

The trainer's linear solve (:meth:`compot.trainer.Trainer.solve`) minimises
‖A θ − b‖² with A = √W J of shape (n_rows, k), n_rows growing with the data and k
(the linear coefficients, ~10²) fixed. Instead of holding A, each batch of rows
[A_j | b_j] is reduced to the triangular factor of its QR decomposition, and factors
are merged by the QR of their stack (Demmel, Grigori, Hoemmen, Langou, "Communication-
optimal parallel and sequential QR and LU factorizations", SIAM J. Sci. Comput. 34,
A206 (2012), doi:10.1137/080731992). What is kept is one matrix

    R̃ = [[R, c], [0, ρ]],  shape (k + 1, k + 1),

with A = Q R, c = Qᵀ b and ρ² the residual of the unconstrained fit, so peak memory is
that of one batch plus (k + 1)² numbers, whatever the number of configurations.

The solve then applies the trainer's semantics to R instead of A, which are the same
problem: A and R have the same column norms and the same singular values and right
singular vectors (A = (Q U) S Vᵀ), and uᵢᵀ b = (Uᵢ)ᵀ c. So the column scaling (unit
norms, columns with norm ≤ 1e-14 · max set to 0), the ridge (√ridge I stacked under
the scaled matrix) and the truncation (singular values below rcond · σ_max dropped,
LAPACK gelsd) act identically; the loss is ‖R θ − c‖² + ρ². Normal equations
(AᵀA) are not used: they square the condition number, and the fits' design matrices
have condition numbers near 1e14.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

__all__ = ["reduce_rows", "merge", "StreamedQR", "solve_reduced", "solve_scaled", "DEAD_COLUMN"]

#: a column whose norm is at most DEAD_COLUMN × the largest column norm gets coefficient 0
DEAD_COLUMN = 1e-14


def reduce_rows(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The triangular factor of [A | b].

    Parameters
    ----------
    A : ndarray, shape (n_rows, k)
    b : ndarray, shape (n_rows,)

    Returns
    -------
    ndarray, shape (k + 1, k + 1) — upper triangular R̃ with R̃ᵀR̃ = [A | b]ᵀ[A | b]
    (rows of zeros below when n_rows < k + 1)

    Raises
    ------
    ValueError
        If b does not have one entry per row of A.
    """
    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    if A.ndim != 2 or b.shape != (A.shape[0],):
        raise ValueError(f"reduce_rows: expected A of shape (n, k) and b of shape (n,), "
                         f"got {A.shape} and {b.shape}")
    k1 = A.shape[1] + 1
    if A.shape[0] == 0:
        return np.zeros((k1, k1))
    R = np.linalg.qr(np.column_stack([A, b]), mode="r")
    if R.shape[0] < k1:
        R = np.vstack([R, np.zeros((k1 - R.shape[0], k1))])
    return R


def merge(R1: np.ndarray, R2: np.ndarray) -> np.ndarray:
    """The factor of two stacked row sets from their factors: R of [R1; R2].

    Parameters
    ----------
    R1, R2 : ndarray, shape (k + 1, k + 1)

    Returns
    -------
    ndarray, shape (k + 1, k + 1)

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    if R1.shape != R2.shape:
        raise ValueError(f"merge: factors of shapes {R1.shape} and {R2.shape}")
    return np.linalg.qr(np.vstack([R1, R2]), mode="r")


class StreamedQR:
    """Accumulates R̃ of [A | b] from row batches given one at a time.

    Parameters
    ----------
    k : int — number of columns of A
    """

    def __init__(self, k: int):
        self.k = int(k)
        self.R = np.zeros((self.k + 1, self.k + 1))
        self.n_rows = 0

    def add(self, A: np.ndarray, b: np.ndarray) -> None:
        """Add rows A θ ≈ b, shapes (n, k) and (n,). Raises ValueError on a wrong width."""
        if A.ndim != 2 or A.shape[1] != self.k:
            raise ValueError(f"StreamedQR.add: expected rows of width {self.k}, got shape {A.shape}")
        self.add_factor(reduce_rows(A, b))
        self.n_rows += A.shape[0]

    def add_factor(self, R: np.ndarray) -> None:
        """Add the factor of a batch reduced elsewhere (:func:`reduce_rows`), shape (k + 1, k + 1)."""
        self.R = merge(self.R, R)


def solve_reduced(R_aug: np.ndarray, rcond: float = 1e-10, ridge: float = 0.0) -> tuple[np.ndarray, float]:
    """Least-squares solution from the factor of [A | b], as the trainer solves A θ ≈ b.

    Columns scaled to unit norm (norms ≤ DEAD_COLUMN · max: coefficient 0), optional
    ridge ‖√ridge x‖² on the scaled coefficients, singular values below rcond · σ_max of
    the scaled (and ridge-augmented) matrix dropped (minimum-norm solution, gelsd).

    Parameters
    ----------
    R_aug : ndarray, shape (k + 1, k + 1) — :func:`reduce_rows` / :class:`StreamedQR`
    rcond : float — relative singular value cut-off
    ridge : float — Tikhonov weight, ≥ 0

    Returns
    -------
    theta : ndarray, shape (k,)
    loss : float — ‖A θ − b‖² [units of b²]
    """
    k = R_aug.shape[1] - 1
    R, c, rho = R_aug[:k, :k], R_aug[:k, k], R_aug[k, k]
    theta = solve_scaled(R, c, rcond, ridge)
    r = R @ theta - c
    return theta, float(r @ r + rho * rho)


def solve_scaled(A: np.ndarray, b: np.ndarray, rcond: float = 1e-10, ridge: float = 0.0) -> np.ndarray:
    """min ‖A θ − b‖² with unit-norm column scaling, ridge and rcond truncation
    (the semantics of :func:`solve_reduced`, applied to A itself or to its factor R).

    Parameters
    ----------
    A : ndarray, shape (n, k)
    b : ndarray, shape (n,)
    rcond, ridge : float — as in :func:`solve_reduced`

    Returns
    -------
    theta : ndarray, shape (k,)
    """
    k = A.shape[1]
    norms = np.linalg.norm(A, axis=0)
    # a column that is ~0 on all training data (a basis function sampled only in its far
    # tail) gets coefficient 0 instead of an astronomically large one
    dead = norms <= DEAD_COLUMN * norms.max(initial=0.0)
    norms[dead] = np.inf
    As = A / norms
    if ridge > 0:
        As = np.vstack([As, math.sqrt(ridge) * np.eye(k)])
        b = np.concatenate([b, np.zeros(k)])
    x, *_ = scipy.linalg.lstsq(As, b, cond=rcond, lapack_driver="gelsd")
    return x / norms
