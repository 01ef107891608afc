"""Priors as data: configurations that anchor a fit where the DFT data says nothing.

Both priors are ordinary :class:`~compot.data.configurations.Configuration` objects
with targets, a weight and a group, trained on exactly like the DFT data
(:mod:`compot.data.weighted` gives them their row weights):

* ``zbl_anchor`` (MODEL_SPEC §9): dimers closer than the data's shortest pair
  distance whose target forces are those of the ZBL core alone, so that the fitted
  terms add no force where only the core repulsion is known to hold;
* ``eos_anchor``: perfect lattices compressed and expanded beyond the data, whose
  target energies follow the Vinet equation of state
  E(V) = E0 + 2B0V0/(B′−1)² {2 − [5 + 3B′(η−1) − 3η] exp(−3(B′−1)(η−1)/2)},
  η = (V/V0)^(1/3) [Vinet et al., J. Phys. C 19, L467 (1986)].

Their keys are :data:`compot.settings.ZBL_ANCHOR_KEYS` and
:data:`compot.settings.EOS_ANCHOR_KEYS` (YAML section ``fit``).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, reject_unknown_keys
from ..settings import EOS_ANCHOR_KEYS, ZBL_ANCHOR_KEYS
from .configurations import Configuration

__all__ = ["zbl_anchor_configurations", "eos_anchor_configurations", "anchor_configurations",
           "ZBL_ANCHOR_GROUP", "EOS_ANCHOR_GROUP", "HOT_PRIOR_GROUP"]

#: Default ``scales`` (× a0) of the EOS prior's lattices; the B2 cells take the compressed ones.
EOS_SCALES = (0.72, 0.76, 0.80, 0.84, 0.88, 0.92, 0.94, 1.06, 1.10, 1.15, 1.20, 1.25, 1.30, 1.35, 1.40)

#: Groups of the prior configurations.
ZBL_ANCHOR_GROUP = "zbl_anchor"
EOS_ANCHOR_GROUP = "eos_anchor"
#: Group of the hot-MD snapshots with energy bounds (:mod:`compot.hot_prior`).
HOT_PRIOR_GROUP = "hot_prior"


def zbl_anchor_configurations(model, anchor: dict) -> list:
    """Dimers whose target forces are those of the model's ZBL term alone.

    Parameters
    ----------
    model : compot.model.Model — its species and ZBL term(s)
    anchor : dict — ``fit.zbl_anchor``: r_min, r_max [Å] (default 1.0, 2.3) for every
        species pair, or ``ranges`` {"A-B": [r_min, r_max]} per pair (as the recipe
        derives them, :func:`compot.recipe.derive_settings`), n (14), weight (1.0);
        empty = no prior

    Returns
    -------
    list of Configuration: for every species pair, n dimers at distances in
    [r_min, r_max] along x with forces [eV/Å] of the ZBL terms alone and energy 0,
    group ``zbl_anchor`` (whose energies get weight 0, see :mod:`compot.data.weighted`).
    A pair missing from ``ranges`` gets no dimers.

    Raises
    ------
    ConfigError
        For an unknown key, or a model without a ZBL term (a prior the recipe derived,
        with ``ranges``, is then left out instead).
    """
    if not anchor:
        return []
    reject_unknown_keys("fit.zbl_anchor", anchor, ZBL_ANCHOR_KEYS)
    zbl = [n.term for n in model.layout.nodes if n.term.is_core]
    if not zbl:
        if "ranges" in anchor:
            return []
        raise ConfigError(f"fit.zbl_anchor needs a ZBL term in the expression; found {model.expression!r}")
    from ..functions import atomic_number, zbl_pair_fdf
    n = int(anchor.get("n", 14))
    weight = float(anchor.get("weight", 1.0))
    ranges = anchor.get("ranges")
    out = []
    sp = model.species
    for a in range(len(sp)):
        for b in range(a, len(sp)):
            if ranges is None:
                r_min, r_max = float(anchor.get("r_min", 1.0)), float(anchor.get("r_max", 2.3))
            else:
                span = ranges.get(f"{sp[a]}-{sp[b]}") or ranges.get(f"{sp[b]}-{sp[a]}")
                if span is None:
                    continue
                r_min, r_max = float(span[0]), float(span[1])
            za, zb = atomic_number(sp[a]), atomic_number(sp[b])
            for rk in np.linspace(r_min, r_max, n):
                de = sum(zbl_pair_fdf(np.array([rk]), np.array([za]), np.array([zb]), t.r_in, t.r_out)[1][0]
                         for t in zbl)
                forces = np.array([[de, 0.0, 0.0], [-de, 0.0, 0.0]])     # F_0 = +dE/dr x̂ (pushed apart)
                out.append(Configuration(symbols=(sp[a], sp[b]), positions=np.array([[0.0, 0, 0], [rk, 0, 0]]),
                                         cell=np.zeros((3, 3)), pbc=np.array([False] * 3), energy=0.0,
                                         forces=forces, weight=weight, group=ZBL_ANCHOR_GROUP,
                                         source=f"zbl_anchor:{sp[a]}{sp[b]}:{rk:.3f}"))
    return out


def eos_anchor_configurations(model, anchor: dict) -> list:
    """Perfect lattices with Vinet-EOS target energies.

    Parameters
    ----------
    model : compot.model.Model
    anchor : dict — ``fit.eos_anchor``: a0 [Å], e0 [eV/atom], bulk_modulus [GPa]
        (required), b_prime (4.0), lattice (bcc), scales (× a0; default 0.72–0.94 and
        1.06–1.40), weight (1.0); or, for several species, ``species: {X: {a0, e0,
        bulk_modulus, b_prime, lattice}}`` with scales and weight shared: lattices of each
        element X alone, and with ``b2`` (default true) the ordered B2 cell of every pair of
        bcc elements at the compressed scales (< 1) of the mean a0, each atom's target site
        energy (``site_energies``) that of its own element's equation of state at the
        cell's volume per atom and the cell's energy their sum (no formation energy: a
        prior against a collapse of unlike neighbours under compression, where the
        solid-solution data end); empty = no prior

    Returns
    -------
    list of Configuration, one conventional cell per scale, energy
    E(V) [eV] of the Vinet equation of state (:func:`compot.derive.vinet_energy`),
    forces 0 (perfect lattice), group ``eos_anchor``.

    Raises
    ------
    ConfigError
        For an unknown key, a missing a0/e0/bulk_modulus, an unknown lattice, a species
        the model does not have, or a model of several species without ``species``.
    """
    if not anchor:
        return []
    reject_unknown_keys("fit.eos_anchor", anchor, EOS_ANCHOR_KEYS)
    if "species" in anchor:
        per = anchor["species"]
        if not isinstance(per, dict) or not per:
            raise ConfigError(f"fit.eos_anchor.species: expected a mapping element -> {{a0, e0, bulk_modulus, ...}}, "
                              f"found {per!r}")
        out = []
        shared = {k: v for k, v in anchor.items() if k in ("scales", "weight")}
        b2 = anchor.get("b2", True)
        if not isinstance(b2, bool):
            raise ConfigError(f"fit.eos_anchor.b2: expected true or false, found {b2!r}")
        for symbol, entry in per.items():
            if symbol not in model.species:
                raise ConfigError(f"fit.eos_anchor.species: {symbol!r} is not a species of the model "
                                  f"({', '.join(model.species)})")
            if not isinstance(entry, dict):
                raise ConfigError(f"fit.eos_anchor.species.{symbol}: expected a mapping {{a0, e0, bulk_modulus, "
                                  f"...}}, found {entry!r}")
            reject_unknown_keys(f"fit.eos_anchor.species.{symbol}", entry,
                                [k for k in EOS_ANCHOR_KEYS if k != "species"])
            out += _eos_lattices(symbol, {**shared, **entry}, f"fit.eos_anchor.species.{symbol}")
        if b2:
            bcc = [s for s in per if per[s].get("lattice", "bcc") == "bcc"]
            for i, s1 in enumerate(bcc):
                for s2 in bcc[i + 1:]:
                    out += _b2_lattices(s1, s2, per[s1], per[s2], shared)
        return out
    if len(model.species) != 1:
        raise ConfigError(f"fit.eos_anchor: a model of several species ({', '.join(model.species)}) needs "
                          "`species: {{X: {{a0, e0, bulk_modulus}}, ...}}`, one equation of state per element")
    return _eos_lattices(model.species[0], anchor, "fit.eos_anchor")


def _eos_lattices(symbol: str, anchor: dict, where: str) -> list:
    """The EOS prior lattices of one element (:func:`eos_anchor_configurations`)."""
    missing = sorted({"a0", "e0", "bulk_modulus"} - set(anchor))
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)} (a0 [Å], e0 [eV/atom], bulk_modulus [GPa]); "
                          "compot fit derives all three from the training data when none is given")
    from ..derive import LATTICES, Lattice, vinet_energy

    kind = anchor.get("lattice", "bcc")
    if kind not in LATTICES:
        raise ConfigError(f"{where}.lattice: expected one of {', '.join(LATTICES)}, found {kind!r}")
    scales = anchor.get("scales") or EOS_SCALES
    lattice = Lattice(kind, float(anchor["a0"]), symbol)
    out = []
    for x in scales:
        at = lattice.atoms(lattice.a0 * float(x))
        e = float(vinet_energy(lattice.volume_per_atom(lattice.a0 * float(x)), lattice.volume_per_atom(),
                               float(anchor["e0"]), float(anchor["bulk_modulus"]),
                               float(anchor.get("b_prime", 4.0)))) * len(at)
        out.append(Configuration(symbols=tuple(at.get_chemical_symbols()), positions=at.positions,
                                 cell=at.cell.array, pbc=at.pbc, energy=e, forces=np.zeros((len(at), 3)),
                                 weight=float(anchor.get("weight", 1.0)), group=EOS_ANCHOR_GROUP,
                                 source=f"eos_anchor:{kind}:{x:.3f}a0"))
    return out


def _b2_lattices(s1: str, s2: str, e1: dict, e2: dict, shared: dict) -> list:
    """The B2 prior cells of the pair s1, s2 (:func:`eos_anchor_configurations`): cube
    edges a = x (a0_1 + a0_2)/2 at the compressed scales x, and each atom's target site
    energy its own element's Vinet energy at the cell's volume per atom (the energy
    their sum). The site targets matter more than the total: the data fix only the
    sum of an unlike pair's two site energies, and a fit without them gave B2 MoNb at
    0.825 a0 site energies of −116 and +108 eV; the grade, switching the two atoms off
    at different compressions, then left a second minimum of the E–V curve."""
    from ..derive import vinet_energy

    def site(e, v):
        return float(vinet_energy(v, float(e["a0"]) ** 3 / 2.0, float(e["e0"]), float(e["bulk_modulus"]),
                                  float(e.get("b_prime", 4.0))))

    a0 = 0.5 * (float(e1["a0"]) + float(e2["a0"]))
    scales = [float(x) for x in (shared.get("scales") or EOS_SCALES) if x < 1.0]
    out = []
    for x in scales:
        a = a0 * x
        sites = np.array([site(e1, a ** 3 / 2.0), site(e2, a ** 3 / 2.0)])
        out.append(Configuration(symbols=(s1, s2), positions=np.array([[0.0, 0.0, 0.0], [a / 2, a / 2, a / 2]]),
                                 cell=np.eye(3) * a, pbc=np.array([True] * 3), energy=float(sites.sum()),
                                 forces=np.zeros((2, 3)), weight=float(shared.get("weight", 1.0)),
                                 group=EOS_ANCHOR_GROUP, source=f"eos_anchor:B2 {s1}{s2}:{x:.3f}a0",
                                 site_energies=sites))
    return out


def anchor_configurations(model, settings) -> list:
    """Every prior of a fit: the ZBL dimers, then the EOS lattices.

    Parameters
    ----------
    model : compot.model.Model
    settings : compot.settings.FitSettings — its ``zbl_anchor`` and ``eos_anchor``
    """
    return zbl_anchor_configurations(model, settings.zbl_anchor) + eos_anchor_configurations(model, settings.eos_anchor)
