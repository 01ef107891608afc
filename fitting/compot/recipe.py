"""The default recipe: a model whose every safety setting comes from the data.

``compot fit --data PATH --species X --out DIR`` with no configuration file
fits :data:`DEFAULT_EXPRESSION` with:

* the cutoff r_c between the 2nd and 3rd neighbour shells of each element's
  ground-state lattice, detected from the lowest-energy periodic cell
  (:func:`compot.derive.detect_lattice`, :func:`compot.derive.default_cutoff`);
* the inner window of every species pair just below the shortest pair distance
  of the data, and the ZBL core fully on below it
  (:func:`compot.derive.default_windows`, MODEL_SPEC §10);
* the equation-of-state prior with a0, E0 and B fitted to the data
  (:func:`compot.derive.equation_of_state`), never typed in.

``fit.zbl_anchor`` given without r_min, r_max or ranges (off by default) gets the
range of every species pair from the data too: from the inner window's r_a to the
pair's shortest distance in the data, where the fitted terms would otherwise
extrapolate freely (:func:`compot.data.anchors.zbl_anchor_configurations`).

A configuration may still set any of these explicitly: ``model.cutoff`` a
number, the expression ``ZBL(r_in, r_out)`` with numbers, ``fit.eos_anchor``
with ``a0``, ``e0`` and ``bulk_modulus``. ``ZBL`` without numbers (the default)
means "the window from the data"; ``cutoff: auto`` and an ``eos_anchor`` without
a0/e0/bulk_modulus mean the same for those settings.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np

from . import derive
from .derive import EV_PER_A3_TO_GPA
from .errors import ConfigError
from .model import Model
from .io import FORMAT_VERSION
from .settings import DEFAULT_EXPRESSION, DEFAULT_FIT

__all__ = ["DEFAULT_EXPRESSION", "DEFAULT_FIT", "Recipe", "derive_settings", "build_model", "prepare", "BARE_ZBL"]

log = logging.getLogger(__name__)

#: A ``ZBL`` without a window (the window then comes from the data).
BARE_ZBL = re.compile(r"ZBL(?!\s*\()")


@dataclass
class Recipe:
    """What :func:`prepare` derived from the data, for the report and metrics.json.

    lattices : {species: derive.Lattice}; eos : {species: derive.EquationOfState}
    d_min : {(s1, s2): shortest pair distance [Å]}
    windows : {(s1, s2): (r_a, r_b) [Å]}; zbl : (r_in, r_out) [Å] or None
    cutoff : r_c [Å]; derived : names of the settings that came from the data
    """

    lattices: dict = field(default_factory=dict)
    eos: dict = field(default_factory=dict)
    d_min: dict = field(default_factory=dict)
    windows: dict = field(default_factory=dict)
    zbl: tuple | None = None
    cutoff: float = 0.0
    derived: list = field(default_factory=list)

    def e_ref(self, species: str) -> float:
        """Reference site energy of a switched-off atom [eV]: the Vinet separation
        energy E0 + 4 B0 V0/(B′ − 1)² of the element's equation of state from the data
        (the energy per atom of the crystal expanded without limit; MODEL_SPEC §10)."""
        e = self.eos[species]
        return float(e.e0 + 4.0 * (e.bulk_modulus / EV_PER_A3_TO_GPA) * e.v0 / (e.b_prime - 1.0) ** 2)

    def to_json(self) -> dict:
        pair = lambda p: f"{p[0]}-{p[1]}"
        return {
            "derived_from_data": list(self.derived),
            "cutoff": self.cutoff,
            "lattices": {s: {"kind": l.kind, "a0": l.a0, "c_over_a": l.c_over_a} for s, l in self.lattices.items()},
            "equation_of_state": {s: {"a0": e.a0, "e0": e.e0, "bulk_modulus": e.bulk_modulus, "b_prime": e.b_prime}
                                  for s, e in self.eos.items()},
            "shortest_pair_distance": {pair(p): d for p, d in self.d_min.items()},
            "inner_window": {pair(p): list(w) for p, w in self.windows.items()},
            "zbl_window": list(self.zbl) if self.zbl else None,
            "reference_site_energy": {s: self.e_ref(s) for s in self.eos},
        }


def derive_settings(model_cfg: dict, fit_cfg: dict, train, species) -> tuple[Recipe, dict]:
    """Derive the recipe's physical settings from the training data.

    Parameters
    ----------
    model_cfg : dict
        Section ``model`` (keys cutoff, lattice).
    fit_cfg : dict
        Section ``fit``; not modified.
    train : list of Configuration
        The training configurations: every derived value comes from them.
    species : sequence of str

    Returns
    -------
    recipe : Recipe
        Lattices, cutoff, windows, ZBL window and equations of state.
    fit_cfg : dict
        ``fit_cfg`` with a complete ``eos_anchor`` where it asked for one, and the
        ``zbl_anchor`` ranges per species pair where it gave none.

    Raises
    ------
    ConfigError
        A single-element data set whose ground-state lattice cannot be detected.
    """
    species = list(species)
    rec = Recipe()
    fit_cfg = dict(fit_cfg)
    lattice_cfg = model_cfg.get("lattice") or "auto"
    for s in species:
        try:
            lat = derive.detect_lattice(train, s)
        except derive.DeriveError as exc:
            if len(species) == 1:
                raise ConfigError(f"model.lattice: {exc}") from None
            log.warning("no ground-state lattice of %s in the data (%s)", s, exc)
            continue
        if lattice_cfg != "auto" and lat.kind != lattice_cfg:
            log.warning("model.lattice %s given, but the lowest-energy cell of %s in the data is %s; using %s",
                        lattice_cfg, s, lat.kind, lattice_cfg)
            lat = derive.Lattice(lattice_cfg, lat.a0, s)
        rec.lattices[s] = lat
    if not rec.lattices:
        raise ConfigError("model.lattice: no species of the data has a periodic single-element cell to detect "
                          "its ground-state lattice from")
    cutoff = model_cfg.get("cutoff", "auto")
    if cutoff in (None, "auto"):
        cutoff = max(derive.default_cutoff(l) for l in rec.lattices.values())
        rec.derived.append("cutoff")
    rec.cutoff = float(cutoff)
    rec.d_min = derive.shortest_pair_distances(train, species, cutoff=rec.cutoff)
    win = derive.default_windows(rec.d_min, {s: l.d_nn for s, l in rec.lattices.items()})
    rec.windows = win["inner"]
    reach = win["reach"]
    rec.zbl = tuple(win["zbl"])
    rec.derived += ["inner_window", "zbl_window"]
    zanchor = fit_cfg.get("zbl_anchor")
    if zanchor and not {"r_min", "r_max", "ranges"} & set(zanchor):
        # fitted terms add no force to a dimer between the inner window's r_a and the
        # distance its window came from (the pair's shortest distance in the data, or
        # its like pairs' mean where that set the window), where they extrapolate
        # (MODEL_SPEC §10)
        fit_cfg["zbl_anchor"] = {**zanchor, "ranges": {
            f"{a}-{b}": [rec.windows[(a, b)][0], d] for (a, b), d in reach.items()
            if (a, b) in rec.windows and d > rec.windows[(a, b)][0]}}
        rec.derived.append("zbl_anchor")
    anchor = fit_cfg.get("eos_anchor")
    if anchor and not {"a0", "e0", "bulk_modulus"} <= set(anchor):
        if len(species) != 1:
            per = {}
            for s in species:
                if s not in rec.lattices:
                    log.warning("fit.eos_anchor: no periodic cell of %s alone in the data; no prior for it", s)
                    continue
                try:
                    eos = derive.equation_of_state(train, s, rec.lattices[s])
                except derive.DeriveError as exc:
                    log.warning("fit.eos_anchor: no equation of state of %s from the data (%s); no prior for it",
                                s, exc)
                    continue
                rec.eos[s] = eos
                per[s] = {"a0": eos.a0, "e0": eos.e0, "bulk_modulus": eos.bulk_modulus,
                          "b_prime": eos.b_prime, "lattice": rec.lattices[s].kind}
            if per:
                fit_cfg["eos_anchor"] = {**{k: v for k, v in anchor.items() if k in ("scales", "weight", "b2")},
                                         "species": per}
                rec.derived.append("eos_anchor")
            else:
                fit_cfg.pop("eos_anchor")
        else:
            s = species[0]
            eos = derive.equation_of_state(train, s, rec.lattices[s])
            rec.eos[s] = eos
            fit_cfg["eos_anchor"] = {**anchor, "a0": eos.a0, "e0": eos.e0, "bulk_modulus": eos.bulk_modulus,
                                     "b_prime": eos.b_prime, "lattice": rec.lattices[s].kind}
            rec.derived.append("eos_anchor")
    site = fit_cfg.get("site_prior")
    if site and "e0" not in site:
        # the A <-> B transfer of an unlike pair's site energies (FitSettings.site_prior)
        # exists only with several species
        if len(species) == 1:
            fit_cfg.pop("site_prior")
        elif all(s in rec.eos for s in species):
            fit_cfg["site_prior"] = {**site, "e0": {s: rec.eos[s].e0 for s in species}}
            rec.derived.append("site_prior")
        else:
            log.warning("fit.site_prior: no equation of state of %s from the data; prior left out",
                        ", ".join(s for s in species if s not in rec.eos))
            fit_cfg.pop("site_prior")
    for s, l in rec.lattices.items():
        log.info("%s: ground-state lattice %s, a0 %.4f Å (from the data)", s, l.kind, l.a0)
    for s, e in rec.eos.items():
        log.info("%s: equation of state from the data: a0 %.4f Å, E0 %.4f eV/atom, B %.1f GPa, B' %.2f",
                 s, e.a0, e.e0, e.bulk_modulus, e.b_prime)
    log.info("cutoff %.2f Å%s; inner windows %s; ZBL window %s Å", rec.cutoff,
             " (from the data)" if "cutoff" in rec.derived else "",
             ", ".join(f"{a}-{b} [{w[0]:.2f}, {w[1]:.2f}] Å" for (a, b), w in rec.windows.items()), rec.zbl)
    return rec, fit_cfg


def build_model(expression: str, species, recipe: Recipe, rank: int | None = None) -> Model:
    """The format v2 model of ``expression`` with the recipe's cutoff and inner
    windows; a bare ``ZBL`` gets the recipe's ZBL window; ``rank``: a species
    embedding of that rank (None: the full chemistry).

    An explicit ``ZBL(r_in, r_out)`` with r_in below a derived r_b moves that window
    down to end at r_in (same width), since ZBL must be fully on wherever it acts.

    Raises
    ------
    ConfigError
        When the windows still contradict the model (e.g. r_b beyond the cutoff).
    """
    species = list(species)
    expression = BARE_ZBL.sub(f"ZBL({recipe.zbl[0]:g}, {recipe.zbl[1]:g})", expression)
    model = Model(expression, species, recipe.cutoff, rank=rank, version=FORMAT_VERSION)
    for z, sym in enumerate(species):
        if sym in recipe.eos:
            model.params["w.e_ref"][z] = recipe.e_ref(sym)
    pairs = [(species[a], species[b]) for a in range(len(species)) for b in range(a, len(species))]
    r_a = np.array([recipe.windows[p][0] for p in pairs])
    r_b = np.array([recipe.windows[p][1] for p in pairs])
    # an explicit ZBL(r_in, r_out) bounds the window: ZBL must be fully on wherever it acts
    r_in = min([n.term.r_in for n in model.layout.nodes if n.term.is_core], default=np.inf)
    if np.any(r_b > r_in):
        log.info("inner windows moved below the given ZBL r_in = %g Å", r_in)
        shift = np.maximum(r_b - r_in, 0.0)
        r_b, r_a = r_b - shift, np.maximum(r_a - shift, 0.0)
    model.params["w.r_a"] = r_a
    model.params["w.r_b"] = r_b
    problems = model.window_problems()
    if problems:
        raise ConfigError("the inner window derived from the data does not fit this model: "
                          + "; ".join(problems)
                          + " (write ZBL without numbers to derive its window too)")
    return model


def prepare(model_cfg: dict, fit_cfg: dict, train, species) -> tuple[Model, dict, Recipe]:
    """:func:`derive_settings`, then :func:`build_model` of ``model_cfg['expression']``
    (default :data:`DEFAULT_EXPRESSION`). Returns (model, completed fit settings, recipe)."""
    rec, fit_cfg = derive_settings(model_cfg, fit_cfg, train, species)
    rank = None
    if model_cfg.get("chemistry", "full") == "embedded":
        rank = int(model_cfg.get("rank", 1))
        if not 1 <= rank <= len(species):
            raise ConfigError(f"model.rank: expected 1..{len(species)} (the species {' '.join(species)}), "
                              f"found {rank}")
    return (build_model(str(model_cfg.get("expression") or DEFAULT_EXPRESSION), species, rec, rank),
            fit_cfg, rec)
