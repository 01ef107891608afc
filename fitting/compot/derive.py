"""Physics derived from the training data (MODEL_SPEC §10).

Everything a safe model needs to know about its material that is not a fitted
parameter — the ground-state lattice, the equation of state, the shortest
pair distances, the cutoff, the inner and ZBL windows and the temperature of
the hottest configurations — is derived here from the DFT data itself, so
that no number is typed in by hand for a new element. Every function is a
pure function of a list of configurations: :class:`compot.data.Configuration`
(as :func:`compot.data.read_dataset` returns them) or :class:`ase.Atoms`
carrying a total energy (a ``SinglePointCalculator``, as the extended-XYZ
reader attaches, or ``info["energy"]``) and, where needed, forces.

Units: energy eV, length Å, volume Å³, bulk modulus GPa, temperature K.

Functions
---------
detect_lattice(configs, species)
    ground-state lattice (bcc, fcc, hcp, diamond) and its lattice constant;
equation_of_state(configs, species, lattice)
    a0, E0, B, B' of a Vinet equation of state fitted to the data;
shortest_pair_distances(configs, species)
    d_min per species pair;
default_cutoff(lattice)
    r_c between the 2nd and 3rd neighbour shells;
default_windows(d_min, d_nn)
    inner window (r_a, r_b) per species pair and the ZBL window (r_in, r_out);
hottest_temperature(configs, model)
    temperature of the hottest configurations from the equipartition identity.

References
----------
[1] P. Vinet, J. Ferrante, J. H. Rose, J. R. Smith, "Compressibility of
    solids", J. Geophys. Res. 92, 9319 (1987), doi:10.1029/JB092iB09p09319;
    P. Vinet et al., J. Phys. C 19, L467 (1986), doi:10.1088/0022-3719/19/20/001.
[2] R. C. Tolman, "The Principles of Statistical Mechanics" (1938):
    generalised equipartition ⟨x_k ∂H/∂x_l⟩ = δ_kl k_B T; for a coordinate
    x, an integration by parts over the canonical density gives
    ⟨(∂U/∂x)²⟩ = k_B T ⟨∂²U/∂x²⟩, the "configurational temperature" of
    O. G. Jepps, G. Ayton, D. J. Evans, Phys. Rev. E 62, 4757 (2000),
    doi:10.1103/PhysRevE.62.4757.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.units import GPa as _EV_PER_A3_PER_GPA
from ase.units import kB as _KB

from .errors import CompotError

__all__ = [
    "DeriveError", "Lattice", "EquationOfState", "LATTICES",
    "detect_lattice", "equation_of_state", "shortest_pair_distances", "default_cutoff",
    "default_windows", "hottest_temperature", "temperature_estimates", "vinet_energy", "vinet_pressure",
]

log = logging.getLogger(__name__)

#: Lattices that :func:`detect_lattice` recognises.
LATTICES = ("bcc", "fcc", "hcp", "diamond")

#: 1 eV/Å³ in GPa.
EV_PER_A3_TO_GPA = 1.0 / _EV_PER_A3_PER_GPA

#: Atoms per conventional cubic cell (hcp: per hexagonal cell a × a × c).
_ATOMS_PER_CELL = {"bcc": 2, "fcc": 4, "diamond": 8, "hcp": 2}

#: Smallest fraction of atoms of a configuration that must have the local
#: structure of a lattice for the configuration to count as that crystal:
#: a majority for detection (thermal noise near melting leaves ~85 % of the
#: atoms recognised), nearly all for a cell used as it is in an equation of state.
_MIN_FRACTION_DETECT = 0.5
_MIN_FRACTION_EOS = 0.9

_SQRT2_HALF = 0.5 * (1.0 + math.sqrt(2.0))


class DeriveError(CompotError, ValueError):
    """Raised when the data cannot determine a derived quantity: no periodic
    configuration of the species, no configuration close to a known lattice,
    or too few volumes for an equation of state (the message says which)."""


# --------------------------------------------------------------- data access
@dataclass
class _Record:
    """What the derivations need of one configuration (read once)."""

    symbols: tuple
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: float | None
    forces: np.ndarray | None
    stress: np.ndarray | None
    temperature: float | None
    source: str

    @property
    def n_atoms(self) -> int:
        return len(self.symbols)

    @property
    def periodic(self) -> bool:
        return bool(np.all(self.pbc)) and abs(np.linalg.det(self.cell)) > 1e-9

    @property
    def volume_per_atom(self) -> float:
        return abs(float(np.linalg.det(self.cell))) / self.n_atoms

    def atoms(self) -> Atoms:
        return Atoms(symbols=list(self.symbols), positions=self.positions, cell=self.cell, pbc=self.pbc)


def _stored(atoms: Atoms, name: str):
    """A result stored with an ase.Atoms (calculator results never recomputed, else info/arrays)."""
    calc = atoms.calc
    if calc is not None:
        try:
            value = calc.get_property(name, atoms, allow_calculation=False)
        except Exception:  # noqa: BLE001 - any calculator failure means "not stored"
            value = None
        if value is not None:
            return value
    return atoms.info.get(name) if name != "forces" else atoms.arrays.get("forces")


def _records(configs) -> list[_Record]:
    """Configurations (compot Configuration or ase.Atoms) as records."""
    from .data import Configuration

    out = []
    for k, c in enumerate(configs):
        if isinstance(c, _Record):
            out.append(c)
        elif isinstance(c, Configuration):
            out.append(_Record(c.symbols, c.positions, c.cell, c.pbc, c.energy, c.forces, c.stress, None, c.source))
        elif isinstance(c, Atoms):
            e = _stored(c, "energy")
            f = _stored(c, "forces")
            s = _stored(c, "stress")
            if s is not None:
                s = np.asarray(s, dtype=float)
                if s.shape == (3, 3):
                    s = s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
                elif s.shape != (6,):
                    s = None
            t = c.info.get("temperature", c.info.get("T"))
            out.append(_Record(tuple(c.get_chemical_symbols()), c.get_positions(), np.array(c.cell), c.get_pbc(),
                               None if e is None else float(e), None if f is None else np.asarray(f, dtype=float),
                               s, None if t is None else float(t), c.info.get("source", f"<atoms {k}>")))
        else:
            raise TypeError(f"configuration {k}: expected compot.data.Configuration or ase.Atoms, "
                            f"found {type(c).__name__}")
    return out


def _single_species(records, species: str) -> list[_Record]:
    return [r for r in records if r.periodic and r.energy is not None and set(r.symbols) == {species}]


def _neighbour_list(quantities: str, atoms: Atoms, cutoff: float):
    if atoms.pbc.all() and abs(atoms.cell.volume) > 1e-9:
        from matscipy.neighbours import neighbour_list
        return neighbour_list(quantities, atoms, cutoff)
    from ase.neighborlist import neighbor_list
    return neighbor_list(quantities, atoms, cutoff, self_interaction=False)


# ------------------------------------------------------------------ lattices
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
        return a ** 3 / _ATOMS_PER_CELL[self.kind]

    def a_of_volume(self, v: float) -> float:
        """Lattice constant [Å] of volume per atom ``v`` [Å³]."""
        if self.kind == "hcp":
            return (4.0 * v / (math.sqrt(3.0) * self.c_over_a)) ** (1.0 / 3.0)
        return (v * _ATOMS_PER_CELL[self.kind]) ** (1.0 / 3.0)

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
        i, d = _neighbour_list("id", at, 2.5 * a_ * max(1.0, self.c_over_a or 1.0))
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
    i, D, d = _neighbour_list("iDd", atoms, 2.2 * vpa ** (1.0 / 3.0))
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
    recs = sorted(_single_species(_records(configs), species), key=lambda r: r.energy / r.n_atoms)
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
    mean of its elements' like-pair windows.

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
        ``{"inner": {(s1, s2): (r_a, r_b)}, "zbl": (r_in, r_out)}`` [Å],
        rounded to 0.01 Å.
    """
    inner = {}
    known = {k: v for k, v in d_min.items() if np.isfinite(v)}
    for pair, d in d_min.items():
        if np.isfinite(d):
            rb = fraction * d
        else:
            like = [fraction * known[(s, s)] for s in pair if (s, s) in known]
            if not like:
                raise DeriveError(f"default_windows: no distance for the pair {pair[0]}-{pair[1]} nor for its "
                                  "like pairs in the data")
            rb = float(np.mean(like))
            log.warning("default_windows: the data has no %s-%s pair; r_b = %.2f Å from the like pairs",
                        pair[0], pair[1], rb)
        inner[tuple(pair)] = (round(rb - width, 2), round(rb, 2))
    if not inner:
        raise DeriveError("default_windows: no species pairs given")
    r_in = max(rb for _, rb in inner.values())
    if d_nn is None:
        r_out = r_in + width
    else:
        dnn = min(d_nn.values()) if isinstance(d_nn, dict) else float(d_nn)
        if dnn <= r_in:
            raise DeriveError(f"default_windows: nearest-neighbour distance {dnn:.3f} Å is not above "
                              f"r_in = {r_in:.3f} Å")
        r_out = r_in + 0.5 * (dnn - r_in)
    return {"inner": inner, "zbl": (round(r_in, 2), round(r_out, 2))}


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
    for r in _records(configs):
        code = np.array([index.get(s, -1) for s in r.symbols])
        if np.all(code < 0):
            continue
        i, j, d = _neighbour_list("ijd", r.atoms(), cutoff)
        if not len(d):
            continue
        ci, cj = code[i], code[j]
        ok = (ci >= 0) & (cj >= 0)
        a, b = np.minimum(ci[ok], cj[ok]), np.maximum(ci[ok], cj[ok])
        np.minimum.at(best, (a, b), d[ok])
    return {(species[a], species[b]): float(best[a, b]) for a in range(S) for b in range(a, S)}


# --------------------------------------------------------- equation of state
def vinet_energy(v, v0: float, e0: float, bulk_modulus: float, b_prime: float):
    """Vinet energy per atom [eV/atom] at volume per atom ``v`` [Å³] (the integral of [1]'s P(V)).

    E(V) = E0 + 2 B0 V0/(B'−1)² {2 − [5 + 3B'(x−1) − 3x] exp(−3(B'−1)(x−1)/2)},
    x = (V/V0)^(1/3); B0 in GPa.
    """
    b = bulk_modulus / EV_PER_A3_TO_GPA
    x = np.cbrt(np.asarray(v, dtype=float) / v0)
    k = b_prime - 1.0
    return e0 + 2 * b * v0 / k ** 2 * (2 - (5 + 3 * b_prime * (x - 1) - 3 * x) * np.exp(-1.5 * k * (x - 1)))


def vinet_pressure(v, v0: float, bulk_modulus: float, b_prime: float):
    """Vinet pressure [GPa] at volume per atom ``v`` [Å³] ([1]):
    P = 3 B0 (1 − x)/x² exp(3(B'−1)(1 − x)/2)."""
    x = np.cbrt(np.asarray(v, dtype=float) / v0)
    return 3 * bulk_modulus * (1 - x) / x ** 2 * np.exp(1.5 * (b_prime - 1) * (1 - x))


@dataclass
class EquationOfState:
    """Equation of state of a ground-state lattice, derived from the data.

    Attributes
    ----------
    lattice : Lattice
        The ground-state lattice at the fitted a0.
    a0 : float — equilibrium lattice constant [Å]
    e0 : float — energy per atom at a0 [eV/atom] (the DFT total-energy reference)
    bulk_modulus : float — B0 [GPa]
    b_prime : float — B0' = dB/dP [-]
    v0 : float — volume per atom at a0 [Å³]
    sources : dict {quantity: str}
        How each of a0, e0, bulk_modulus and b_prime was obtained.
    uncertainty : dict {quantity: float}
        One standard deviation from the fit's covariance (same units).
    n_configs : int — configurations in the fit
    rms_residual : float — of the energies in the fit [eV/atom]
    points : dict
        Data of the fit for a plot: ``volume`` [Å³/atom], ``energy`` (static
        energy per atom, thermal and shear corrections applied) [eV/atom],
        ``kind`` ("static" | "thermal"), and, where stresses were used,
        ``pressure_volume``, ``pressure`` [GPa].
    """

    lattice: Lattice
    a0: float
    e0: float
    bulk_modulus: float
    b_prime: float
    v0: float
    sources: dict = field(default_factory=dict)
    uncertainty: dict = field(default_factory=dict)
    n_configs: int = 0
    rms_residual: float = math.nan
    points: dict = field(default_factory=dict)

    def energy(self, v):
        """Energy per atom [eV/atom] at volume per atom ``v`` [Å³]."""
        return vinet_energy(v, self.v0, self.e0, self.bulk_modulus, self.b_prime)

    def energy_at(self, a):
        """Energy per atom [eV/atom] of the lattice at lattice constant ``a`` [Å]."""
        a = np.asarray(a, dtype=float)
        return self.energy(self.lattice.volume_per_atom(1.0) * a ** 3)

    def pressure(self, v):
        """Pressure [GPa] at volume per atom ``v`` [Å³]."""
        return vinet_pressure(v, self.v0, self.bulk_modulus, self.b_prime)

    def as_anchor(self, weight: float = 1.0) -> dict:
        """The ``fit.eos_anchor`` mapping of the trainer (a0, e0, bulk_modulus, b_prime, lattice, weight)."""
        return {"a0": self.a0, "e0": self.e0, "bulk_modulus": self.bulk_modulus, "b_prime": self.b_prime,
                "lattice": self.lattice.kind, "weight": weight}


#: First-shell vectors of the Bravais lattices, in units of the cubic edge a.
def _first_shell(kind: str) -> np.ndarray:
    if kind == "bcc":
        return 0.5 * np.array(list(itertools.product((-1.0, 1.0), repeat=3)))
    if kind == "fcc":
        v = []
        for zero in range(3):
            for s1, s2 in itertools.product((-1.0, 1.0), repeat=2):
                x = [s1, s2]
                x.insert(zero, 0.0)
                v.append(x)
        return 0.5 * np.array(v)
    raise DeriveError(f"no Bravais first shell for {kind}")


_TRIPLES: dict = {}


def _ideal_triples(kind: str):
    """Ordered triples of first-shell vectors that span a primitive cell: (T, 3, 3), and their Gram matrices."""
    if kind not in _TRIPLES:
        q = _first_shell(kind)
        prim = 1.0 / _ATOMS_PER_CELL[kind]
        idx = np.array(list(itertools.permutations(range(len(q)), 3)))
        Q = q[idx]
        det = np.linalg.det(Q)
        Q = Q[np.abs(np.abs(det) - prim) < 1e-9]
        _TRIPLES[kind] = (Q, Q @ Q.transpose(0, 2, 1))
    return _TRIPLES[kind]


@dataclass
class _CrystalState:
    volume: float          # per atom [Å³]
    energy: float          # per atom [eV/atom], as in the data
    correction: float      # harmonic thermal correction ½ Σ F·u / N [eV/atom] (≤ 0)
    e_dev: np.ndarray      # (3, 3) deviatoric Green strain in the crystal frame
    max_force: float       # [eV/Å]
    pressure: float | None  # −tr σ / 3 [GPa]
    source: str


def _crystal_state(r: _Record, kind: str) -> _CrystalState | None:
    """Map a periodic configuration onto a strained, thermally displaced crystal of a Bravais lattice.

    The first-shell neighbour vectors of all atoms are pooled and clustered
    (each atom contributes one to each cluster); the cluster means are the
    first-shell vectors of the strained lattice, free of thermal noise. Three
    of them that span the primitive cell (volume V/N) give the lattice basis
    P; the cell must be an integer combination of it with N sites. Then

    * displacements u_i from the lattice sites (mean removed) give the
      harmonic estimate of the thermal part of the energy, −½ Σ F_i·u_i
      (exact for a harmonic crystal, where F = −K u), so
      E_static = E + ½ Σ F_i·u_i;
    * the metric G = P Pᵀ against the ideal basis Q of the same shape gives
      the right Cauchy–Green tensor in the crystal frame, C = Q⁻¹ G Q⁻ᵀ,
      whatever the orientation of the cell; its isochoric part gives the
      deviatoric strain ê = ½ (C / det(C)^(1/3) − I).

    Returns None when the configuration is not such a crystal (slab,
    vacancy, another lattice, melt).
    """
    n = r.n_atoms
    shell = _first_shell(kind)
    n1 = len(shell)
    vpa = r.volume_per_atom
    a_est = (vpa * _ATOMS_PER_CELL[kind]) ** (1.0 / 3.0)
    d1 = a_est * np.linalg.norm(shell[0])
    atoms = r.atoms()
    i, D, d = _neighbour_list("iDd", atoms, 1.45 * d1)
    counts = np.bincount(i, minlength=n)
    if counts.min() < n1:
        return None
    o = np.lexsort((d, i))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    vecs = D[o][start[:, None] + np.arange(n1)[None, :]]          # (n, n1, 3)
    centres = vecs[0].copy()
    for _ in range(3):
        dist = np.linalg.norm(vecs[:, :, None, :] - centres[None, None, :, :], axis=3)
        assign = np.argmin(dist, axis=2)                               # (n, n1)
        if np.any(np.sort(assign, axis=1) != np.arange(n1)[None, :]):
            return None
        new = np.zeros_like(centres)
        np.add.at(new, assign.ravel(), vecs.reshape(-1, 3))
        centres = new / n
    spread = np.linalg.norm(vecs - centres[assign], axis=2).max()
    if spread > 0.35 * d1:
        return None
    triples = np.array(list(itertools.combinations(range(n1), 3)))
    dets = np.abs(np.linalg.det(centres[triples]))
    k = int(np.argmin(np.abs(dets / vpa - 1)))
    if abs(dets[k] / vpa - 1) > 0.05:
        return None
    P = centres[triples[k]]
    Pinv = np.linalg.inv(P)
    M = r.cell @ Pinv
    Mr = np.round(M)
    if np.abs(M - Mr).max() > 0.1 or round(abs(np.linalg.det(Mr))) != n:
        return None
    f = r.positions @ Pinv
    rel = f - f[0]
    site = np.round(rel)
    uf = rel - site
    uf -= uf.mean(axis=0)
    u = uf @ P
    if np.linalg.norm(u, axis=1).max() > 0.35 * d1:
        return None
    # sites must be distinct modulo the supercell
    frac = np.mod(site @ np.linalg.inv(Mr), 1.0)
    frac = np.round(frac * 1e6).astype(np.int64) % 1000000
    if len(np.unique(frac, axis=0)) != n:
        return None
    correction = 0.0
    max_force = 0.0
    if r.forces is not None:
        correction = 0.5 * float(np.sum(r.forces * u)) / n
        max_force = float(np.abs(r.forces).max())
    Q, G0 = _ideal_triples(kind)
    G = P @ P.T
    scale = np.trace(G) / np.trace(G0[0])
    t = int(np.argmin(np.linalg.norm(G[None] / scale - G0, axis=(1, 2))))
    Qi = np.linalg.inv(Q[t])
    C = Qi @ G @ Qi.T
    Cbar = C / np.linalg.det(C) ** (1.0 / 3.0)
    e_dev = 0.5 * (Cbar - np.eye(3))
    pressure = None
    if r.stress is not None:
        pressure = -float(np.mean(r.stress[:3])) * EV_PER_A3_TO_GPA
    return _CrystalState(vpa, r.energy / n, correction, e_dev, max_force, pressure, r.source)


def _static_state(r: _Record) -> _CrystalState:
    """A configuration taken as it is (non-Bravais lattices): no thermal or shear correction."""
    pressure = None if r.stress is None else -float(np.mean(r.stress[:3])) * EV_PER_A3_TO_GPA
    mf = 0.0 if r.forces is None else float(np.abs(r.forces).max())
    return _CrystalState(r.volume_per_atom, r.energy / r.n_atoms, 0.0, np.zeros((3, 3)), mf, pressure, r.source)


def equation_of_state(configs, species: str, lattice: Lattice | str | None = None, *,
                      max_shear: float = 0.03, max_correction: float = 0.2, volume_range: float = 0.2,
                      static_force: float = 0.05, use_stress: bool = True,
                      bulk_modulus: float | None = None) -> EquationOfState:
    """Vinet equation of state of the ground-state lattice, fitted to the data.

    Configurations used: periodic cells of ``species`` alone that are
    crystals of the ground-state lattice (:func:`_crystal_state`: strained
    and/or thermally displaced, any orientation, any supercell), with
    deviatoric strain |ê| ≤ ``max_shear``, volume per atom within
    ``volume_range`` (relative) of the lowest-energy one, and a harmonic
    thermal correction of at most ``max_correction`` eV/atom (≈ 1500 K;
    beyond, anharmonicity makes it unreliable). For hcp and diamond (not
    Bravais lattices) only cells with forces below ``static_force`` eV/Å are
    used, as they are (no thermal or shear correction).

    Model fitted (weighted nonlinear least squares, ``scipy.optimize.least_squares``
    with a soft-L1 loss), per configuration k:

        E_k = E_Vinet(V_k; E0, V0, B0, B') + V_k [C' Σ_i ê_ii² + 2 C44 Σ_{i<j} ê_ij²]

    E_k is the static energy per atom (DFT energy + ½ Σ F·u / N), E_Vinet is
    :func:`vinet_energy` [1], and the second term is the harmonic shear energy of a cubic
    crystal (C' = (C11 − C12)/2 and C44, fitted along; zero for hcp and
    diamond), so that the strained cells of an elastic set count at their
    volume. Thermal configurations are averaged per volume (0.2 %) and
    strain, with σ = 1 meV/atom + [their standard error² + (0.1 × the mean
    thermal correction)²]^½: the anharmonic error of the correction is
    systematic and does not shrink with their number; static cells (thermal
    correction below 5 meV/atom) count one by one with σ = 1 meV/atom, and
    every σ grows by 0.2 × the shear energy. With ``use_stress``, the mean
    stress of static cells is fitted too, P_k = P_Vinet(V_k) with
    σ = 0.5 GPa: for a cubic crystal −tr σ/3 = B tr ε to first order
    for any strain, so uniaxially strained cells determine B, which their
    energies alone cannot separate from C' (E = ½ (B + 4C'/3) ε²).

    B' is bounded to 3–7 (elemental metals lie in about 3.5–6) and kept if
    the fit determines it to ±0.5; otherwise it is held at 4.5, the middle of
    that range, and ``sources["b_prime"]`` says so. B is accepted when the
    fit determines it to 15 %. Otherwise a warning is logged and B comes,
    in this order, from ``bulk_modulus`` if given (``sources`` says
    "given"), or else a :class:`DeriveError` names what the data lacks
    (never a silent constant).

    Parameters
    ----------
    configs : list of Configuration or ase.Atoms (with energies; forces and
        stresses are used when present)
    species : str
    lattice : Lattice or str, optional
        Ground-state lattice (default: :func:`detect_lattice`); a string
        names the kind, a0 is then detected.
    max_shear, max_correction, volume_range, static_force : float
        Selection of configurations (above).
    use_stress : bool
        Fit the mean stress of static cells too.
    bulk_modulus : float, optional
        B0 [GPa] to use if the data do not determine it.

    Returns
    -------
    EquationOfState

    Raises
    ------
    DeriveError
        No usable configuration, or B not determined by the data and not given.
    """
    from scipy.optimize import least_squares

    recs = _single_species(_records(configs), species)
    if lattice is None or isinstance(lattice, str):
        det = detect_lattice(recs, species)
        if isinstance(lattice, str) and lattice != det.kind:
            log.warning("equation_of_state %s: lattice %s given, the data's lowest-energy crystal is %s",
                        species, lattice, det.kind)
            det = Lattice(lattice, det.a0, species)
        lattice = det
    kind = lattice.kind
    cubic = kind in ("bcc", "fcc")
    states = []
    for r in recs:
        if cubic:
            s = _crystal_state(r, kind)
        else:
            ck, cq, frac = classify(r.atoms())
            s = _static_state(r) if ck == kind and frac >= _MIN_FRACTION_EOS else None
            if s is not None and s.max_force > static_force:
                s = None
        if s is not None:
            states.append(s)
    if not states:
        raise DeriveError(f"equation_of_state {species}: no configuration of the data is a {kind} crystal")
    e_static = np.array([s.energy + s.correction for s in states])
    v_ref = states[int(np.argmin(e_static))].volume
    keep = [s for s in states
            if abs(s.volume / v_ref - 1) <= volume_range and -s.correction <= max_correction
            and np.abs(s.e_dev).max() <= max_shear]
    if len(keep) < 2:
        raise DeriveError(f"equation_of_state {species}: only {len(keep)} {kind} configuration(s) near "
                          f"equilibrium; expected several volumes")
    static_states = [s for s in keep if abs(s.correction) <= 0.005]
    sp = [(s.volume, s.pressure) for s in static_states if use_stress and s.pressure is not None]
    Vp = np.array([v for v, _ in sp])
    Pp = np.array([p for _, p in sp])
    # thermal states: one point per volume (0.2 %) and shear; their error is mostly systematic
    # (anharmonicity of the harmonic correction), so it does not shrink with their number
    groups: list[list[_CrystalState]] = []
    for s in sorted((s for s in keep if abs(s.correction) > 0.005), key=lambda s: s.volume):
        g = groups[-1] if groups else None
        if g and s.volume <= g[0].volume * 1.002 and np.abs(s.e_dev - g[0].e_dev).max() < 1e-3:
            g.append(s)
        else:
            groups.append([s])
    V = np.array([s.volume for s in static_states] + [np.mean([s.volume for s in g]) for g in groups])
    E = np.array([s.energy + s.correction for s in static_states]
                 + [np.mean([s.energy + s.correction for s in g]) for g in groups])
    ed = np.array([s.e_dev for s in static_states] + [np.mean([s.e_dev for s in g], axis=0) for g in groups])
    corr = np.array([s.correction for s in static_states] + [np.mean([s.correction for s in g]) for g in groups])
    sig_e = np.array([1e-3] * len(static_states)
                     + [1e-3 + math.hypot(np.std([s.energy + s.correction for s in g]) / math.sqrt(len(g)),
                                          0.1 * abs(np.mean([s.correction for s in g]))) for g in groups])
    static = np.array([True] * len(static_states) + [False] * len(groups))
    counts = [1] * len(static_states) + [len(g) for g in groups]
    normal = np.sum(np.diagonal(ed, axis1=1, axis2=2) ** 2, axis=1)
    shear = ed[:, 0, 1] ** 2 + ed[:, 0, 2] ** 2 + ed[:, 1, 2] ** 2
    sig_p = 0.5
    i0 = int(np.argmin(E))

    def unpack(x, bp_fixed):
        e0, v0, b = x[0], x[1], x[2]
        k = 3
        bp = bp_fixed
        if bp_fixed is None:
            bp, k = x[3], 4
        cp = x[k] if cubic else 0.0
        c44 = x[k + 1] if cubic else 0.0
        return e0, v0, b, bp, cp, c44

    def shear_energy(cp, c44):
        return V * (cp * normal + 2 * c44 * shear) / EV_PER_A3_TO_GPA

    def residuals(x, bp_fixed):
        e0, v0, b, bp, cp, c44 = unpack(x, bp_fixed)
        w_dev = shear_energy(cp, c44)
        out = [(vinet_energy(V, v0, e0, b, bp) + w_dev - E) / (sig_e + 0.2 * np.abs(w_dev))]
        if len(Vp):
            out.append((vinet_pressure(Vp, v0, b, bp) - Pp) / sig_p)
        return np.concatenate(out)

    def solve(bp_fixed):
        free_bp = bp_fixed is None
        x0 = [E[i0], V[i0], 150.0] + ([4.5] if free_bp else []) + ([50.0, 50.0] if cubic else [])
        lo = [-np.inf, 0.5 * V.min(), 1.0] + ([3.0] if free_bp else []) + ([0.0, 0.0] if cubic else [])
        hi = [np.inf, 2.0 * V.max(), 3000.0] + ([7.0] if free_bp else []) + ([3000.0, 3000.0] if cubic else [])
        res = least_squares(residuals, x0, bounds=(lo, hi), args=(bp_fixed,), x_scale="jac", loss="soft_l1",
                            f_scale=2.0, max_nfev=5000)
        dof = max(1, len(res.fun) - len(res.x))
        cov = np.linalg.pinv(res.jac.T @ res.jac) * max(1.0, 2 * res.cost / dof)
        return res, np.sqrt(np.clip(np.diag(cov), 0, None))

    res, err = solve(None)
    n_thermal = len(keep) - len(static_states)
    sources = {"a0": f"Vinet fit to {len(keep)} {kind} configurations ({len(static_states)} static, "
                     f"{n_thermal} thermal with harmonic correction, averaged at {len(groups)} volumes)"
                     + (f" and {len(Vp)} static pressures" if len(Vp) else ""),
               "e0": "Vinet fit (static energy per atom at V0)"}
    bp_fit, bp_err = res.x[3], err[3]
    at_bound = min(bp_fit - 3.0, 7.0 - bp_fit) < 1e-3
    if bp_err <= 0.5 and not at_bound:
        bp_fixed = None
        sources["b_prime"] = "Vinet fit"
    else:
        bp_fixed = 4.5
        why = "at the bound of 3–7" if at_bound else f"± {bp_err:.2f}"
        log.warning("equation_of_state %s: B' = %.2f (%s) is not determined by the data; held at 4.5",
                    species, bp_fit, why)
        res, err = solve(bp_fixed)
        sources["b_prime"] = (f"not determined by the data (fit: {bp_fit:.2f}, {why}); 4.5, the middle of the "
                              "range of elemental metals")
    e0, v0, b, bp, cp, c44 = unpack(res.x, bp_fixed)
    b_err = float(err[2])
    sources["bulk_modulus"] = sources["a0"].replace("Vinet fit to", "Vinet fit (± %.1f GPa) to" % b_err)
    if not b_err <= 0.15 * b:
        msg = (f"equation_of_state {species}: the data do not determine the bulk modulus (fit: {b:.0f} ± "
               f"{b_err:.0f} GPa from {len(keep)} configurations at {len(np.unique(np.round(V, 2)))} volumes, "
               f"{len(Vp)} static pressures); expected energies at 3 or more hydrostatic volumes, or stresses "
               "of strained cells")
        if bulk_modulus is None:
            raise DeriveError(msg + "; give bulk_modulus explicitly")
        log.warning("%s; using the given %.1f GPa", msg, bulk_modulus)
        b = float(bulk_modulus)
        b_err = math.nan
        sources["bulk_modulus"] = "given (the data do not determine it)"

        def refit(x):
            return residuals(np.concatenate([x[:2], [b], x[2:]]), bp_fixed)

        x0 = np.delete(res.x, 2)
        r2 = least_squares(refit, x0, x_scale="jac", loss="soft_l1", f_scale=2.0, max_nfev=5000)
        e0, v0, _, bp, cp, c44 = unpack(np.concatenate([r2.x[:2], [b], r2.x[2:]]), bp_fixed)
    lat = lattice.with_a0(lattice.a_of_volume(v0))
    unc = {"v0": float(err[1]), "e0": float(err[0]), "bulk_modulus": b_err,
           "a0": float(lat.a0 * err[1] / (3 * v0))}
    if bp_fixed is None:
        unc["b_prime"] = float(err[3])
    w_dev = shear_energy(cp, c44)
    rms = float(np.sqrt(np.mean((vinet_energy(V, v0, e0, b, bp) + w_dev - E) ** 2)))
    points = {"volume": V.tolist(), "energy": (E - w_dev).tolist(), "sigma": sig_e.tolist(), "count": counts,
              "kind": ["static" if t else "thermal" for t in static]}
    if len(Vp):
        points.update(pressure_volume=Vp.tolist(), pressure=Pp.tolist())
    eos = EquationOfState(lat, lat.a0, float(e0), float(b), float(bp), float(v0), sources, unc, len(keep), rms, points)
    if cubic:
        eos.sources["shear"] = f"C' = {cp:.0f} GPa, C44 = {c44:.0f} GPa (harmonic shear energy, fitted along)"
    log.info("equation_of_state %s (%s): a0 %.4f Å, E0 %.4f eV/atom, B %.1f ± %.1f GPa, B' %.2f; %d configurations, "
             "rms %.2g eV/atom", species, kind, eos.a0, eos.e0, eos.bulk_modulus, b_err, eos.b_prime, len(keep), rms)
    return eos


# ---------------------------------------------------------------- temperature
def _force_fn(model):
    """A function list[Atoms] → list of (n, 3) force arrays for a compot Model or an ASE calculator."""
    if hasattr(model, "evaluate") and hasattr(model, "system"):
        def forces(atoms_list):
            p = model.evaluate(model.system(atoms_list), forces=True, virial=False)
            counts = np.cumsum([0] + [len(a) for a in atoms_list])
            return [p.forces_nc[counts[k]:counts[k + 1]] for k in range(len(atoms_list))]
        return forces

    def forces_calc(atoms_list):
        out = []
        for a in atoms_list:
            b = a.copy()
            b.calc = model
            out.append(b.get_forces())
        return out
    return forces_calc


def temperature_estimates(configs, model, n_probes: int = 2, h: float = 0.01, seed: int = 0,
                          min_participation: float = 0.3, batch: int = 16,
                          max_configs: int | None = 120) -> list[dict]:
    """Per-configuration temperature from the equipartition identity.

    For a canonical ensemble, integrating ∂/∂x (e^(−U/kT)) by parts gives,
    for every Cartesian coordinate x ([2]),

        ⟨F_x²⟩ = k_B T ⟨∂²U/∂x²⟩,

    with no harmonic approximation. Per configuration the estimate is
    T = Σ_{i,α} F_iα² / (k_B tr H), with the DFT forces F and the trace of
    the Hessian H of the fitted ``model`` over all 3N coordinates. The trace
    comes from Hutchinson's estimator, tr H = E[sᵀ H s] for random ±1
    vectors s, with sᵀ H s = −sᵀ [F(x + h s) − F(x − h s)]/(2h) by central
    differences of the model's forces (step ``h`` [Å], ``n_probes`` vectors,
    2 ``n_probes`` force evaluations per configuration). On nb-mvl (54
    atoms) one configuration gives T to ±15 % (the scatter of Σ F² itself;
    two probes add no visible noise to it).

    Configurations are skipped when their forces are all zero (relaxed or
    symmetric cells) or concentrated on few atoms (participation ratio
    (Σ|F_i|²)² / (N Σ|F_i|⁴) < ``min_participation``: an unrelaxed defect or
    surface, not a thermal state). An explicit ``temperature`` (or ``T``)
    in ``atoms.info`` is used as it is (``method`` "info").

    Parameters
    ----------
    configs : list of Configuration or ase.Atoms
    model : compot Model (``evaluate``/``system``) or an ASE calculator
    n_probes, h, seed : Hutchinson probes, finite-difference step [Å], random seed
    min_participation : float
    batch : int — configurations evaluated together (Model only)
    max_configs : int or None
        At most this many configurations (a random subset, ``seed``) get a
        curvature; quantiles of the estimates stay unbiased, at a fraction of
        the cost (None: all).

    Returns
    -------
    list of dict
        One per configuration used: ``source``, ``temperature`` [K],
        ``method`` ("equipartition" | "info"), ``mean_force2`` [eV²/Å²],
        ``mean_curvature`` (tr H / 3N) [eV/Å²].
    """
    rng = np.random.default_rng(seed)
    force = _force_fn(model)
    out = []
    jobs = []
    for r in _records(configs):
        if r.temperature is not None:
            out.append({"source": r.source, "temperature": float(r.temperature), "method": "info"})
            continue
        if r.forces is None or r.energy is None:
            continue
        f2 = np.sum(r.forces ** 2, axis=1)
        if f2.sum() <= 1e-12:
            continue
        if f2.sum() ** 2 / (r.n_atoms * np.sum(f2 ** 2)) < min_participation:
            continue
        jobs.append(r)
    if max_configs is not None and len(jobs) > max_configs:
        keep = np.sort(rng.choice(len(jobs), size=max_configs, replace=False))
        jobs = [jobs[k] for k in keep]
    jobs = [(r, rng.choice([-1.0, 1.0], size=(n_probes, r.n_atoms, 3))) for r in jobs]
    for start in range(0, len(jobs), max(1, batch)):
        chunk = jobs[start:start + batch]
        displaced = []
        for r, probes in chunk:
            base = r.atoms()
            for s in probes:
                for sign in (1.0, -1.0):
                    at = base.copy()
                    at.positions += sign * h * s
                    displaced.append(at)
        fs = force(displaced)
        k = 0
        for r, probes in chunk:
            quad = []
            for s in probes:
                quad.append(-float(np.sum(s * (fs[k] - fs[k + 1]))) / (2 * h))
                k += 2
            c = float(np.mean(quad)) / (3 * r.n_atoms)
            mf2 = float(np.sum(r.forces ** 2) / (3 * r.n_atoms))
            if c <= 0:
                log.debug("temperature_estimates: %s: non-positive mean curvature %.3g eV/Å²; skipped", r.source, c)
                continue
            out.append({"source": r.source, "temperature": mf2 / (_KB * c), "method": "equipartition",
                        "mean_force2": mf2, "mean_curvature": c})
    return out


def hottest_temperature(configs, model, quantile: float = 0.9, **kwargs) -> float:
    """Temperature of the hottest configurations of the data [K].

    The ``quantile`` (default 0.9) of the per-configuration estimates of
    :func:`temperature_estimates` (equipartition: ⟨F_x²⟩ = k_B T ⟨∂²U/∂x²⟩,
    DFT forces, Hessian diagonal of the fitted ``model``). A high quantile
    rather than the maximum: a single estimate scatters by ~±15 % for 54
    atoms, and the maximum over hundreds of configurations would be an
    outlier of that scatter. On nb-mvl (AIMD at 300, 1000 and 3000 K, a
    third of its thermal configurations at 3000 K) it gives about 3100 K.

    Parameters
    ----------
    configs : list of Configuration or ase.Atoms
    model : compot Model or ASE calculator
        Any model fitted to the data (its curvature, not its energy, is used).
    quantile : float in (0, 1]
    **kwargs : passed to :func:`temperature_estimates`

    Raises
    ------
    DeriveError
        No configuration with thermal forces (nor a temperature in its info).
    """
    est = temperature_estimates(configs, model, **kwargs)
    if not est:
        raise DeriveError("hottest_temperature: no configuration with thermal forces (or an info "
                          "'temperature') in the data; give the temperature explicitly")
    t = np.array([e["temperature"] for e in est])
    value = float(np.quantile(t, quantile))
    if value < 100.0:
        log.warning("hottest_temperature: %.0f K; the data has no thermal (MD) configurations to speak of", value)
    log.info("hottest_temperature: %d configurations, median %.0f K, %.0f %% quantile %.0f K, max %.0f K",
             len(t), np.median(t), 100 * quantile, value, t.max())
    return value
