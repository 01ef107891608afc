"""compot: composable pair-cluster interatomic potentials.

Implements Wang, Transtrum, Lordi, Bulatov, Samanta, "Composable and adaptive
design of machine learning interatomic potentials guided by Fisher-information
analysis", arXiv:2504.19372 (2025), with the choices fixed in MODEL_SPEC.md.
"""

__version__ = "0.1.0"
