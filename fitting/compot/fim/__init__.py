"""Fisher information matrix (FIM) of a least-squares loss, in high precision.

The package has three modules: :mod:`compot.fim.exact` (the exact integer
arithmetic of the FIM), :mod:`compot.fim.eigen` (its eigenvalues by FLINT/Arb) and
:mod:`compot.fim.spectrum` (condition numbers and the spectrum report,
:func:`analyse`). Their public names are importable from ``compot.fim``.

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

from .eigen import (HighPrecisionEigenvalues, eigenvalues_float64, eigenvalues_high_precision,
                    to_decimal_strings)
from .exact import ExactFIM, fisher_information_exact, linear_map_fim
from .spectrum import Float64Agreement, FisherSpectrum, analyse

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
