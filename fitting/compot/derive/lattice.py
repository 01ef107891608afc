"""Ground-state lattice of an element, cutoff, and the inner and ZBL windows from the data.

:func:`detect_lattice` classifies the lowest-energy periodic single-element cells by
common-neighbour analysis (bcc, fcc, hcp, diamond); :func:`default_cutoff` puts r_c
between its 2nd and 3rd neighbour shells; :func:`shortest_pair_distances` and
:func:`default_windows` give the inner window of every species pair and the ZBL
window (MODEL_SPEC §10). Lengths in Å, energies in eV.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..settings import LATTICES
from .records import DeriveError, neighbour_list, records, single_species

__all__ = ["Lattice", "LATTICES", "ATOMS_PER_CELL", "classify", "detect_lattice", "default_cutoff",
           "default_windows", "shortest_pair_distances"]

log = logging.getLogger(__name__)

#: Atoms per conventional cubic cell (hcp: per hexagonal cell a × a × c).
ATOMS_PER_CELL = {"bcc": 2, "fcc": 4, "diamond": 8, "hcp": 2}

#: Smallest fraction of atoms of a configuration that must have the local
#: structure of a lattice for the configuration to count as that crystal in
#: detection (thermal noise near melting leaves ~85 % of the atoms recognised).
_MIN_FRACTION_DETECT = 0.5

_SQRT2_HALF = 0.5 * (1.0 + math.sqrt(2.0))


@dataclass(frozen=True)
class Lattice:
    """A ground-state lattice of one element.

    Attributes
    ----------
    kind : {"bcc", "fcc", "hcp", "diamond"}
    a0 : float
        Lattice constant [Å]: edge of the conventional cubic cell (bcc, fcc,
        diamond) or the basal constant a (hcp).
    species : str
        Chemical symbol.
    c_over_a : float or None
        c/a of hcp (None otherwise).
    energy_per_atom : float or None
        Energy per atom of the configuration the lattice was detected on [eV/atom].
    mismatch : float or None
        Fraction of the atoms of that configuration whose local structure is
        not the lattice's (0 for a perfect crystal).
    n_configs : int
        Configurations examined.
    """

    kind: str
    a0: float
    species: str = "X"
    c_over_a: float | None = None
    energy_per_atom: float | None = None
    mismatch: float | None = None
    n_configs: int = 0

    def __post_init__(self):
        if self.kind not in LATTICES:
            raise DeriveError(f"lattice {self.kind!r}: expected one of {', '.join(LATTICES)}")
        if self.kind == "hcp" and self.c_over_a is None:
            object.__setattr__(self, "c_over_a", math.sqrt(8.0 / 3.0))

    def with_a0(self, a0: float) -> "Lattice":
        """The same lattice at another lattice constant [Å]."""
        return Lattice(self.kind, float(a0), self.species, self.c_over_a, self.energy_per_atom,
                       self.mismatch, self.n_configs)

    def volume_per_atom(self, a: float | None = None) -> float:
        """Volume per atom [Å³] at lattice constant ``a`` (default a0)."""
        a = self.a0 if a is None else a
        if self.kind == "hcp":
            return math.sqrt(3.0) / 4.0 * self.c_over_a * a ** 3
        return a ** 3 / ATOMS_PER_CELL[self.kind]

    def a_of_volume(self, v: float) -> float:
        """Lattice constant [Å] of volume per atom ``v`` [Å³]."""
        if self.kind == "hcp":
            return (4.0 * v / (math.sqrt(3.0) * self.c_over_a)) ** (1.0 / 3.0)
        return (v * ATOMS_PER_CELL[self.kind]) ** (1.0 / 3.0)

    def atoms(self, a: float | None = None, symbol: str | None = None) -> Atoms:
        """The ideal crystal: conventional cubic cell (hcp: hexagonal cell) at ``a`` (default a0)."""
        from ase.build import bulk

        a = self.a0 if a is None else a
        sym = symbol or (self.species if self.species != "X" else "Cu")
        if self.kind == "hcp":
            return bulk(sym, "hcp", a=a, c=self.c_over_a * a)
        return bulk(sym, self.kind, a=a, cubic=True)

    def supercell(self, min_atoms: int, a: float | None = None, symbol: str | None = None) -> Atoms:
        """The smallest near-cubic repetition of :meth:`atoms` with at least ``min_atoms`` atoms."""
        unit = self.atoms(a, symbol)
        lengths = unit.cell.lengths()
        best = None
        for n in itertools.product(range(1, 9), repeat=3):
            count = len(unit) * n[0] * n[1] * n[2]
            if count < min_atoms:
                continue
            ext = lengths * np.array(n)
            key = (count, ext.max() / ext.min())
            if best is None or key < best[0]:
                best = (key, n)
        return unit.repeat(best[1])

    def shells(self, n: int = 4, a: float | None = None, tol: float = 0.01) -> list[tuple[float, int]]:
        """The first ``n`` neighbour shells of the ideal crystal.

        Distances within ``tol`` (relative) of each other form one shell;
        for hcp the 12 nearest neighbours are one shell whatever c/a (six
        basal at a, six out of plane at a √(1/3 + (c/a)²/4), 10 % apart for
        Zn).

        Returns
        -------
        list of (distance [Å], number of neighbours)
            The distance of a shell is its shortest.
        """
        at = self.atoms(a)
        a_ = self.a0 if a is None else a
        i, d = neighbour_list("id", at, 2.5 * a_ * max(1.0, self.c_over_a or 1.0))
        d = np.sort(d[i == 0])
        out: list[list] = []
        if self.kind == "hcp":
            out.append([float(d[0]), 12])
            d = d[12:]
        for x in d:
            if out and x <= out[-1][0] * (1 + tol):
                out[-1][1] += 1
            else:
                out.append([float(x), 1])
        return [(float(x), int(c)) for x, c in out[:n]]

    @property
    def d_nn(self) -> float:
        """Nearest-neighbour distance [Å]."""
        return self.shells(1)[0][0]


def _cna_counts(R: np.ndarray, rc: float) -> dict:
    """Common-neighbour signatures of a centre atom with neighbour vectors R (m, 3).

    For each neighbour j: the number of common neighbours (other members of
    R within ``rc`` of j), the number of bonds (< rc) among them, and the
    number of bonds in their largest bonded cluster. Returns
    {(n_cn, n_bonds, longest): count}.
    """
    m = len(R)
    D = np.linalg.norm(R[:, None, :] - R[None, :, :], axis=2)
    bonded = (D < rc) & ~np.eye(m, dtype=bool)
    out: dict = {}
    for j in range(m):
        cn = np.flatnonzero(bonded[j])
        sub = bonded[np.ix_(cn, cn)]
        n_b = int(sub.sum()) // 2
        # largest bonded cluster, counted in bonds
        seen = np.zeros(len(cn), dtype=bool)
        longest = 0
        for start in range(len(cn)):
            if seen[start]:
                continue
            stack, members = [start], []
            seen[start] = True
            while stack:
                x = stack.pop()
                members.append(x)
                for y in np.flatnonzero(sub[x] & ~seen):
                    seen[y] = True
                    stack.append(y)
            longest = max(longest, int(sub[np.ix_(members, members)].sum()) // 2)
        key = (len(cn), n_b, longest)
        out[key] = out.get(key, 0) + 1
    return out


def _local_structure(R: np.ndarray) -> str:
    """Structure around one atom from its neighbour vectors R (sorted by length, ≥ 16 rows).

    Adaptive common-neighbour analysis (A. Stukowski, Modelling Simul. Mater.
    Sci. Eng. 20, 045021 (2012), doi:10.1088/0965-0393/20/4/045021): fcc
    (12 × 421), hcp (6 × 421 + 6 × 422) with the 12 nearest neighbours and
    r_cut = (1 + √2)/2 × their mean distance; bcc (8 × 666 + 6 × 444) with
    the 14 nearest and r_cut = (1 + √2)/2 × the mean of (2/√3) d̄_1..8 and
    d̄_9..14. Diamond (E. Maras et al., Comput. Phys. Commun. 205, 13 (2016),
    doi:10.1016/j.cpc.2016.04.001): 4 nearest neighbours well inside the next
    shell whose own 3 further neighbours form 12 second neighbours with the
    fcc signature.
    """
    r = np.linalg.norm(R, axis=1)
    if len(R) >= 12:
        c = _cna_counts(R[:12], _SQRT2_HALF * r[:12].mean())
        if c == {(4, 2, 1): 12}:
            return "fcc"
        if c == {(4, 2, 1): 6, (4, 2, 2): 6}:
            return "hcp"
    if len(R) >= 14:
        rc = _SQRT2_HALF * 0.5 * (2.0 / math.sqrt(3.0) * r[:8].mean() + r[8:14].mean())
        if _cna_counts(R[:14], rc) == {(6, 6, 6): 8, (4, 4, 4): 6}:
            return "bcc"
    if len(R) >= 16 and r[4] > 1.3 * r[3]:
        second = []
        for j in range(4):
            d = np.linalg.norm(R - R[j], axis=1)
            d[j] = np.inf
            near = [k for k in np.argsort(d)[:4] if np.linalg.norm(R[k]) > 1e-6]
            second.extend(R[near[:3]])
        second = np.array(second)
        if len(np.unique(np.round(second, 3), axis=0)) == 12:
            if _cna_counts(second, _SQRT2_HALF * np.linalg.norm(second, axis=1).mean()) == {(4, 2, 1): 12}:
                return "diamond"
    return "other"


def _hcp_c_over_a(shells: np.ndarray) -> float:
    """c/a of hcp from the 12 nearest-neighbour vectors of its atoms, shape (n, 12, 3).

    An hcp site has no inversion centre: its six basal neighbours come in
    antipodal pairs (v and −v), its six out-of-plane neighbours do not (−v
    misses the nearest of them by a/√3). The six vectors closest to having
    an antipode are the basal ones: a = their mean length; c = twice the
    mean distance of the other six from the basal plane (its normal by SVD).
    Means over neighbours and atoms, so thermal noise averages out.
    """
    a_vals, c_vals = [], []
    for R in shells:
        gap = np.linalg.norm(R[:, None, :] + R[None, :, :], axis=2)
        np.fill_diagonal(gap, np.inf)
        order = np.argsort(gap.min(axis=1))
        basal, other = R[order[:6]], R[order[6:]]
        normal = np.linalg.svd(basal)[2][2]
        a_vals.append(np.linalg.norm(basal, axis=1).mean())
        c_vals.append(2 * np.abs(other @ normal).mean())
    return float(np.mean(c_vals) / np.mean(a_vals))


def classify(atoms: Atoms) -> tuple[str, float | None, float]:
    """Lattice of one periodic single-species structure, atom by atom.

    Every atom's local structure is found by adaptive common-neighbour
    analysis (:func:`_local_structure`; robust to thermal displacements and
    to strains of several per cent, orientation-free); the structure is the
    most frequent one.

    Returns
    -------
    kind : str
        "bcc", "fcc", "hcp", "diamond", or "other".
    c_over_a : float or None
        For hcp, from its first shells (:func:`_hcp_c_over_a`).
    fraction : float
        Fraction of atoms with that local structure (1 for a perfect crystal).
    """
    n = len(atoms)
    vpa = abs(atoms.cell.volume) / n
    i, D, d = neighbour_list("iDd", atoms, 2.2 * vpa ** (1.0 / 3.0))
    counts = np.bincount(i, minlength=n)
    o = np.lexsort((d, i))
    D, d = D[o], d[o]
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    kinds = []
    hcp_shells = []
    for k in range(n):
        R = D[start[k]:start[k] + counts[k]]
        kinds.append(_local_structure(R) if len(R) >= 12 else "other")
        if kinds[-1] == "hcp":
            hcp_shells.append(R[:12])
    values, num = np.unique(kinds, return_counts=True)
    kind = str(values[np.argmax(num)])
    fraction = float(num.max()) / n
    q = _hcp_c_over_a(np.array(hcp_shells)) if kind == "hcp" else None
    return kind, q, fraction


def detect_lattice(configs, species: str, n_lowest: int = 5, energy_window: float = 0.1,
                   max_examined: int = 50) -> Lattice:
    """Ground-state lattice of one element from the data.

    The periodic configurations that contain ``species`` alone are sorted
    by energy per atom and classified atom by atom by :func:`classify`
    (adaptive common-neighbour analysis; a configuration counts when a
    majority of its atoms share one of the four structures, so slabs and
    melts are passed over), from the lowest up, until ``n_lowest`` are
    recognised or the energy exceeds the first recognised one's by
    ``energy_window`` (at most ``max_examined`` are examined), and the lattice of the lowest-energy one that is
    recognised is returned.

    Parameters
    ----------
    configs : list of Configuration or ase.Atoms (with energies)
    species : str
        Chemical symbol.
    n_lowest : int
        Recognised configurations compared (a warning names other lattices among them).
    energy_window : float
        Only configurations within this of the lowest recognised one [eV/atom].
    max_examined : int

    Returns
    -------
    Lattice
        ``a0`` from the volume per atom of that configuration, which may be
        strained or hot: :func:`equation_of_state` gives the equilibrium value.

    Raises
    ------
    DeriveError
        No periodic configuration of ``species`` alone, or none recognised.
    """
    recs = sorted(single_species(records(configs), species), key=lambda r: r.energy / r.n_atoms)
    if not recs:
        raise DeriveError(f"detect_lattice: no periodic configuration of {species} alone with an energy "
                          "in the data; expected at least one bulk crystal of the element")
    found = []
    examined = 0
    for r in recs[:max_examined]:
        e = r.energy / r.n_atoms
        if found and (e > found[0][0].energy / found[0][0].n_atoms + energy_window or len(found) >= n_lowest):
            break
        examined += 1
        kind, q, frac = classify(r.atoms())
        log.debug("detect_lattice %s: %s %.4f eV/atom: %s (c/a %s), %.0f %% of the atoms", species, r.source,
                  e, kind, q, 100 * frac)
        if kind in LATTICES and frac >= _MIN_FRACTION_DETECT:
            found.append((r, kind, q, 1.0 - frac))
    if not found:
        raise DeriveError(f"detect_lattice: none of the {examined} lowest-energy configurations of "
                          f"{species} is a {', '.join(LATTICES)} crystal (at least {_MIN_FRACTION_DETECT:.0%} of "
                          "its atoms in that local structure)")
    r, kind, q, mis = found[0]
    others = sorted({k for _, k, _, _ in found[1:] if k != kind})
    if others:
        log.warning("detect_lattice %s: the lowest-energy configuration is %s, but others within %.2f eV/atom "
                    "are %s", species, kind, energy_window, ", ".join(others))
    lat = Lattice(kind, 1.0, species, q, r.energy / r.n_atoms, mis, examined)
    return lat.with_a0(lat.a_of_volume(r.volume_per_atom))


# ------------------------------------------------------------- cutoff, windows
def default_cutoff(lattice: Lattice, fraction: float = 0.8) -> float:
    """Cutoff radius between the 2nd and 3rd neighbour shells.

    r_c = d2 + fraction (d3 − d2), with d2, d3 the 2nd and 3rd shell
    distances of the ideal ground-state lattice at a0 (shells as
    :meth:`Lattice.shells`), rounded to 0.01 Å. The cutoff must contain the
    first two shells with room for thermal motion (their atoms reach
    ~d2 + 0.2 (d3 − d2) in hot MD), while the cost of many-body terms grows
    with every neighbour inside it; 0.8 of the way to the 3rd shell keeps the
    3rd shell out at low temperature, where f_c is then < 1e-4 for it.
    For bcc Nb (a0 = 3.322 Å: shells 2.877, 3.322, 4.698 Å) this gives
    4.42 Å, the cutoff of the shipped model (4.4 Å, chosen by validation
    errors and cost: examples/nb/config.yaml).

    Parameters
    ----------
    lattice : Lattice
    fraction : float, in (0, 1)

    Returns
    -------
    float
        r_c [Å]
    """
    sh = lattice.shells(3)
    d2, d3 = sh[1][0], sh[2][0]
    return round(d2 + fraction * (d3 - d2), 2)


def default_windows(d_min: dict, d_nn: float | dict | None = None, fraction: float = 0.95,
                    width: float = 0.5) -> dict:
    """Inner window per species pair and the ZBL window, from the data.

    Rules (MODEL_SPEC §10):

    * r_b = ``fraction`` × d_min (default 0.95): the fitted terms are fully on
      for every pair distance the data contains, with 5 % to spare because the
      shortest distance of a finite thermal sample is itself a random
      extreme: the minimum of one AIMD snapshot varies by a few per cent from
      snapshot to snapshot (nb-mvl at 3000 K: 2.1–2.3 Å), so MD at the data's
      temperature reaches slightly closer than the data;
    * r_a = r_b − ``width`` (default 0.5 Å): the step of s_in is spread over
      0.5 Å so that the force it adds, ~E_fit/width, stays of the order of
      the fitted forces;
    * ZBL fully on below r_in = max over pairs of r_b (it must be fully on
      wherever any s_in < 1), and switched off at
      r_out = r_in + (d_nn − r_in)/2, halfway to the nearest-neighbour
      distance of the ground-state lattice (smallest d_nn over the elements
      when a dict): the core is then negligible at equilibrium distances,
      where the data determine the energy. Without ``d_nn``,
      r_out = r_in + ``width``.

    A pair that the data never shows (d_min infinite or missing) gets the
    mean of its elements' like-pair windows, and an unlike pair's r_b is never
    above that mean (arithmetic mixing): data sets of alloys often hold only
    relaxed or strained solid solutions (nbmotaw-mvl: Nb–Ta no closer than
    2.85 Å, within 0.1 Å of the nearest neighbours, while the elements' AIMD
    reach 2.0–2.15 Å), and the farthest r_b sets where ZBL is fully on, so a
    mixed pair the data never brought close would put the core inside the
    nearest-neighbour shell. A window at more than 0.9 d_nn (the data shows the
    pair only near equilibrium) is logged as a warning.

    Parameters
    ----------
    d_min : dict {(s1, s2): float}
        Shortest pair distances [Å], as :func:`shortest_pair_distances`.
    d_nn : float or dict {species: float}, optional
        Nearest-neighbour distance of the ground-state lattice [Å].
    fraction, width : float

    Returns
    -------
    dict
        ``{"inner": {(s1, s2): (r_a, r_b)}, "zbl": (r_in, r_out), "reach": {(s1, s2): d}}``
        [Å], windows rounded to 0.01 Å; ``reach`` is the distance each pair's window
        was derived from, r_b = ``fraction`` × reach: the pair's d_min, or the mean
        of its like pairs' d_min where that mean set r_b (capped or missing pair).
        Below it the fitted terms see no data of the pair.
    """
    inner, reach = {}, {}
    known = {k: v for k, v in d_min.items() if np.isfinite(v)}
    for pair, d in d_min.items():
        like_d = [known[(s, s)] for s in pair if (s, s) in known]
        like = [fraction * x for x in like_d]
        if np.isfinite(d):
            rb = fraction * d
            if pair[0] != pair[1] and len(like) == 2 and rb > np.mean(like):
                log.info("default_windows: %s-%s no closer than %.2f Å in the data; r_b = %.2f Å, the mean of "
                         "its like pairs' (%.2f Å from the data)", pair[0], pair[1], d, np.mean(like), rb)
                rb = float(np.mean(like))
            reach[tuple(pair)] = d if rb == fraction * d else float(np.mean(like_d))
        else:
            if not like:
                raise DeriveError(f"default_windows: no distance for the pair {pair[0]}-{pair[1]} nor for its "
                                  "like pairs in the data")
            rb = float(np.mean(like))
            reach[tuple(pair)] = float(np.mean(like_d))
            log.warning("default_windows: the data has no %s-%s pair; r_b = %.2f Å from the like pairs",
                        pair[0], pair[1], rb)
        inner[tuple(pair)] = (round(rb - width, 2), round(rb, 2))
    if not inner:
        raise DeriveError("default_windows: no species pairs given")
    if d_nn is not None:
        for pair, (_, rb) in inner.items():
            dnn = min(d_nn.get(s, np.inf) for s in pair) if isinstance(d_nn, dict) else float(d_nn)
            if rb > 0.9 * dnn:
                log.warning("default_windows: r_b = %.2f Å of %s-%s is within 10 %% of the nearest-neighbour "
                            "distance %.2f Å: the data shows this pair only near equilibrium (add AIMD or "
                            "other close contacts)", rb, pair[0], pair[1], dnn)
    r_in = max(rb for _, rb in inner.values())
    if d_nn is None:
        r_out = r_in + width
    else:
        dnn = min(d_nn.values()) if isinstance(d_nn, dict) else float(d_nn)
        if dnn <= r_in:
            raise DeriveError(f"default_windows: nearest-neighbour distance {dnn:.3f} Å is not above "
                              f"r_in = {r_in:.3f} Å")
        r_out = r_in + 0.5 * (dnn - r_in)
    return {"inner": inner, "zbl": (round(r_in, 2), round(r_out, 2)), "reach": reach}


def shortest_pair_distances(configs, species, cutoff: float = 5.0) -> dict:
    """Shortest distance of every species pair over all configurations.

    Parameters
    ----------
    configs : list of Configuration or ase.Atoms
    species : sequence of str
        Pairs (s1, s2) are formed with s1 before (or equal to) s2 in this order.
    cutoff : float
        Pairs farther apart than this [Å] are not looked at.

    Returns
    -------
    dict {(s1, s2): float}
        d_min [Å], periodic images included; ``inf`` for a pair that no
        configuration has within ``cutoff``.
    """
    species = [species] if isinstance(species, str) else list(species)
    index = {s: k for k, s in enumerate(species)}
    S = len(species)
    best = np.full((S, S), np.inf)
    for r in records(configs):
        code = np.array([index.get(s, -1) for s in r.symbols])
        if np.all(code < 0):
            continue
        i, j, d = neighbour_list("ijd", r.atoms(), cutoff)
        if not len(d):
            continue
        ci, cj = code[i], code[j]
        ok = (ci >= 0) & (cj >= 0)
        a, b = np.minimum(ci[ok], cj[ok]), np.maximum(ci[ok], cj[ok])
        np.minimum.at(best, (a, b), d[ok])
    return {(species[a], species[b]): float(best[a, b]) for a in range(S) for b in range(a, S)}
