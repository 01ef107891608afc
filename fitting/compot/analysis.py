"""Fisher-information analysis of a fitted model (paper Sec. IV.2, Eq. 34;
MODEL_SPEC §7).

The FIM with respect to the converged linear coefficients is I = Jᵀ W J, J the
Jacobian of every prediction in the loss (total energies and force
components) with respect to the linear coefficients and W the loss weights.
J is exact at the fitted parameters for sums and products alike (a product
is affine in each factor's coefficients). Its spectrum is reported for the
parameters as stored and for the paper's parametrisation c′ exp(γu) of the
exponentiated terms, related to ours, c (exp(γu) − 1)/γ, by the fixed linear
map c = γ c′, shift = shift′ + Σ c′ (the constant moves into the nearest
shift above the term).
"""

from __future__ import annotations

import logging

import numpy as np

from .expression import Exponentiated, NeighbourExponentiated, Product, Sum, ZBL
from .model import Model
from .trainer import FitSettings, Trainer

log = logging.getLogger(__name__)

__all__ = ["jacobian", "paper_transform", "fim_analysis", "composition_blocks"]


def jacobian(model: Model, configs, settings: FitSettings | None = None):
    """Weighted Jacobian √W·J of energies and force components w.r.t. all linear blocks.

    Returns
    -------
    A : ndarray, shape (n_rows, n_linear) — rows = total energies then force components
    names : list of str — linear blocks in column order
    """
    settings = settings or FitSettings()
    names = model.blocks("linear")
    trainer = Trainer(model, configs, settings)
    A, _ = trainer._system_rows(names)
    return A, names


def composition_blocks(model: Model, names: list) -> dict:
    """Column indices of each sub-model of the top-level composition.

    For a binary sum or product the blocks are called ``left`` and ``right``
    (the paper's TABLE 6); for larger sums, ``n<i> <term>``. ZBL terms own no
    columns; the root shift belongs to no block.
    """
    root = model.layout.nodes[0]
    if not isinstance(root.term, (Sum, Product)):
        return {}
    offsets = []
    pos = 0
    for n in names:
        size = model.params[n].size
        offsets.append((n, list(range(pos, pos + size))))
        pos += size
    kids = [c for c in root.children if not isinstance(model.layout.nodes[c].term, ZBL)]
    out = {}
    for k, c in enumerate(kids):
        under = set(model.blocks("linear", under=c))
        cols = [i for n, idx in offsets if n in under for i in idx]
        label = ("left", "right")[k] if len(kids) == 2 else f"n{c} {model.layout.nodes[c].term}"
        out[label] = cols
    return out


def paper_transform(model: Model, names: list) -> np.ndarray | None:
    """T with θ_ours = T θ_paper for the exponentiated terms (None if the model has none).

    c[.., l, k] = γ_l c′[.., l, k]; shift[Z] = shift′[Z] + Σ c′[Z, ..] of every E/N
    term below that shift.
    """
    lay = model.layout
    if not any(isinstance(n.term, (Exponentiated, NeighbourExponentiated)) for n in lay.nodes):
        return None
    col = {}
    pos = 0
    for n in names:
        col[n] = pos
        pos += model.params[n].size
    T = np.eye(pos)
    for node in lay.nodes:
        if not isinstance(node.term, (Exponentiated, NeighbourExponentiated)):
            continue
        cname = f"n{node.index}.c"
        if cname not in col:
            continue
        gamma = model.params[f"n{node.index}.gamma"]
        shape = model.params[cname].shape                       # (S, S, L, K)
        anc = node.index
        while not lay.nodes[anc].has_shift:
            anc = lay.nodes[anc].parent
        sname = f"n{anc}.shift"
        for flat in range(int(np.prod(shape))):
            z, _, l, _ = np.unravel_index(flat, shape)
            j = col[cname] + flat
            T[j, j] = gamma[l]
            if sname in col:
                T[col[sname] + z, j] = 1.0
    return T


def fim_analysis(model: Model, configs, bits: int = 256, settings: FitSettings | None = None,
                 sc_ratio: float = 1e-15) -> dict:
    """FIM spectra of a model on configurations, in both parametrisations.

    Returns
    -------
    dict with ``ours`` and (when the model has E/N terms) ``paper``:
    :class:`compot.fim.FisherSpectrum` objects; ``names`` of the linear blocks.
    """
    from .fim import analyse

    A, names = jacobian(model, configs, settings)
    w = np.ones(A.shape[0])
    blocks = composition_blocks(model, names)
    out = {"names": names, "n_rows": A.shape[0]}
    log.info("FIM of %d linear parameters from %d rows at %d bits", A.shape[1], A.shape[0], bits)
    out["ours"] = analyse(A, w, blocks=blocks or None, bits=bits, sc_ratio=sc_ratio)
    T = paper_transform(model, names)
    if T is not None:
        out["paper"] = analyse(A, w, blocks=blocks or None, bits=bits, sc_ratio=sc_ratio, transform=T)
    return out
