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

from .data.weighted import WeightedData
from .model import Model
from .settings import FitSettings

log = logging.getLogger(__name__)

__all__ = ["jacobian", "paper_transform", "fim_analysis", "composition_blocks"]


def jacobian(model: Model, configs, settings: FitSettings | None = None):
    """Weighted Jacobian √W·J of energies and force components w.r.t. all linear blocks.

    The rows and weights are those of a fit with ``settings`` (priors included,
    :class:`compot.data.weighted.WeightedData`); J is exact at the model's
    parameters, which are not changed.

    Returns
    -------
    A : ndarray, shape (n_rows, n_linear) — rows = total energies then force components
    names : list of str — linear blocks in column order
    """
    settings = settings or FitSettings()
    names = model.blocks("linear")
    data = WeightedData.for_fit(model, configs, settings)
    return data.jacobian_rows(model, names), names


def _composition_root(model: Model):
    """The top-level composition, looking through a sum with a ZBL core."""
    root = model.layout.nodes[0]
    if root.term.merges_children:
        kids = [c for c in root.children if not model.layout.nodes[c].term.is_core]
        if len(kids) == 1:
            return model.layout.nodes[kids[0]]
    return root


def gauge_fixed_columns(model: Model, names: list) -> tuple[list, list]:
    """Columns kept after fixing the scale gauge of every product.

    E = (X + s_X)(Y + s_Y) is unchanged by (X, s_X)·t, (Y, s_Y)/t, so the FIM of
    all linear coefficients of a product has an exact null direction. It is
    removed by holding the right factor's shift s_Y (its column is dropped).

    Returns (kept column indices, names of the held shifts).
    """
    drop = set()
    held = []
    pos = 0
    starts = {}
    for n in names:
        starts[n] = pos
        pos += model.params[n].size
    for node in model.layout.nodes:
        if node.term.has_gauge:
            sname = f"n{node.children[1]}.shift"
            if sname in starts:
                held.append(sname)
                drop.update(range(starts[sname], starts[sname] + model.params[sname].size))
    return [i for i in range(pos) if i not in drop], held


def composition_blocks(model: Model, names: list) -> dict:
    """Column indices of each sub-model of the top-level composition.

    For a binary sum or product the blocks are called ``left`` and ``right``
    (the paper's TABLE 6); for larger sums, ``n<i> <term>``. ZBL terms own no
    columns; the root shift belongs to no block.
    """
    root = _composition_root(model)
    if not root.children:
        return {}
    offsets = []
    pos = 0
    for n in names:
        size = model.params[n].size
        offsets.append((n, list(range(pos, pos + size))))
        pos += size
    kids = [c for c in root.children if not model.layout.nodes[c].term.is_core]
    out: dict = {}
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
    if not any(n.term.paper_exponential for n in lay.nodes):
        return None
    col = {}
    pos = 0
    for n in names:
        col[n] = pos
        pos += model.params[n].size
    T = np.eye(pos)
    for node in lay.nodes:
        if not node.term.paper_exponential:
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
                 sc_ratio: float = 1e-15, progress=None) -> dict:
    """FIM spectra of a model on configurations, in both parametrisations.

    ``progress(task, done, total, note)``, if given, is called before and after each
    step (Jacobian, each spectrum; :mod:`compot.progress`).

    Returns
    -------
    dict with ``ours`` and (when the model has E/N terms) ``paper``:
    :class:`compot.fim.FisherSpectrum` objects; ``names`` of the linear blocks.
    """
    from .fim import analyse

    report = progress or (lambda *args: None)
    report("FIM", 0, 3, "Jacobian")
    A, names = jacobian(model, configs, settings)
    keep, held = gauge_fixed_columns(model, names)
    w = np.ones(A.shape[0])
    blocks = composition_blocks(model, names)
    remap = {old: new for new, old in enumerate(keep)}
    blocks = {k: [remap[i] for i in v if i in remap] for k, v in blocks.items()}
    out = {"names": names, "n_rows": A.shape[0], "gauge_held": held, "n_parameters": len(keep)}
    log.info("FIM of %d linear parameters from %d rows at %d bits%s", len(keep), A.shape[0], bits,
             f" (product gauge fixed by holding {', '.join(held)})" if held else "")
    report("FIM", 1, 3, "spectrum as stored")
    out["ours"] = analyse(A[:, keep], w, blocks=blocks or None, bits=bits, sc_ratio=sc_ratio)
    T = paper_transform(model, names)
    report("FIM", 2 if T is not None else 3, 3, "spectrum in the paper's parametrisation" if T is not None else "")
    if T is not None:
        out["paper"] = analyse(A[:, keep], w, blocks=blocks or None, bits=bits, sc_ratio=sc_ratio,
                               transform=T[np.ix_(keep, keep)])
        report("FIM", 3, 3, "")
    return out
