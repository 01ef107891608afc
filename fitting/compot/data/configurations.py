"""DFT configurations: what one is and the checks it passes (reading them from files:
:mod:`compot.data.readers`; splits: :mod:`compot.data.split`).

A :class:`Configuration` is one DFT calculation: species, positions, cell,
total energy, forces and (optionally) stress, plus a fitting weight, a group
name (used for stratified splitting and per-group metrics, MODEL_SPEC §7) and
a ``source`` string ``"path:record_index"`` that every error message quotes.
Its results may sit in a file under other names than ASE's (``data.keys``,
``--keys``: :func:`resolve_keys`).

Units and conventions are ASE's throughout: positions and cell [Å] with the
lattice vectors as the rows of ``cell``, energy [eV], forces [eV/Å], stress
[eV/Å³] in Voigt order (xx, yy, zz, yz, xz, xy) with tensile stress positive
(stress = (1/V) ∂E/∂ε).

A bad configuration raises :class:`~compot.errors.DatasetError` (or
:class:`~compot.errors.SpeciesError`) with a one-line message naming the file,
the 0-based record index, what was expected and what was found.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from compot.errors import ConfigError, DatasetError, SpeciesError
from compot.settings import DATA_KEYS  # the quantities a record supplies (data.keys)

from .files import file_group

__all__ = ["Configuration", "DATA_KEYS", "describe", "resolve_keys", "validate_configuration"]

_KNOWN_SYMBOLS = frozenset(chemical_symbols[1:])


def resolve_keys(keys: dict | None, where: str = "data.keys") -> dict:
    """The name of every quantity of :data:`DATA_KEYS` in the data files.

    Parameters
    ----------
    keys : dict or None
        Quantity → name in the files, e.g. ``{"energy": "REF_energy"}``; a
        quantity not given keeps its own name.
    where : str
        Where the mapping came from, quoted in errors.

    Returns
    -------
    dict
        ``{"energy": ..., "forces": ..., "stress": ...}``.

    Raises
    ------
    ConfigError
        A quantity other than energy, forces, stress, or a name that is not a
        non-empty string.
    """
    out = {k: k for k in DATA_KEYS}
    for quantity, name in (keys or {}).items():
        if quantity not in out:
            raise ConfigError(f"{where}: unknown quantity {quantity!r}; expected one of {', '.join(DATA_KEYS)}")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}.{quantity}: expected the name of a key in the data files, found {name!r}")
        out[quantity] = name.strip()
    return out


def _where(source: str) -> str:
    """Render a ``"path:index"`` source as ``"path: record index"`` for messages."""
    path, sep, index = source.rpartition(":")
    if sep and index.isdigit():
        return f"{path}: record {index}"
    return source


def _format_indices(indices: np.ndarray, limit: int = 5) -> str:
    """Comma-separated atom indices, truncated after ``limit`` entries."""
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    if len(indices) > limit:
        shown += f", ... ({len(indices)} in total)"
    return shown


@dataclass(eq=False, kw_only=True)
class Configuration:
    """One reference DFT configuration.

    Arrays are converted to ``float64`` numpy arrays on construction, and
    shapes and finiteness are checked; a violation raises
    :class:`~compot.errors.DatasetError` naming :attr:`source`.

    Parameters
    ----------
    symbols : tuple of str, length n_atoms
        Chemical symbols.
    positions : ndarray, shape (n_atoms, 3)
        Cartesian positions [Å].
    cell : ndarray, shape (3, 3)
        Lattice vectors as rows [Å] (zeros for a non-periodic direction are
        allowed).
    pbc : ndarray of bool, shape (3,)
        Periodicity along each lattice vector.
    energy : float
        Total energy [eV].
    forces : ndarray, shape (n_atoms, 3)
        Forces [eV/Å].
    stress : ndarray, shape (6,), or None
        Stress [eV/Å³], ASE Voigt order (xx, yy, zz, yz, xz, xy), tensile
        positive; ``None`` when the source has none.
    weight : float, default 1.0
        Fitting weight of this configuration (finite, non-negative).
    group : str
        Group name: ``config_type`` from the file if present, else the file
        stem. Used for stratified splitting and per-group metrics.
    source : str
        ``"path:record_index"`` (0-based record index), quoted in errors.
    site_energies : ndarray, shape (n_atoms,), or None
        Target site energies [eV] of a prior configuration (the B2 cells of the
        equation-of-state prior, :mod:`compot.data.anchors`): rows
        √weight (E_i − target_i) in the fit, which fix how the energy of an unlike
        pair is shared between its two atoms; ``None`` for DFT data.
    description : str, default ""
        What the file says about the configuration, e.g. ``"config_type=AIMD-NVT;
        source_desc=Snapshot 7 of 40 of AIMD NVT simulation at 300 K"``
        (:func:`describe`); the ``by_block`` split finds the runs of a file from it
        (:func:`compot.data.split.detect_runs`).
    """

    symbols: tuple[str, ...]
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: float
    forces: np.ndarray
    stress: np.ndarray | None = None
    weight: float = 1.0
    group: str = "default"
    source: str = "<memory>"
    description: str = ""
    site_energies: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = _where(self.source)
        self.symbols = tuple(str(s) for s in self.symbols)
        n = len(self.symbols)
        if n == 0:
            raise DatasetError(f"{where}: configuration has no atoms; expected at least 1")
        unknown = sorted(set(self.symbols) - _KNOWN_SYMBOLS)
        if unknown:
            raise DatasetError(
                f"{where}: unknown chemical symbol(s) {unknown}; expected element symbols"
            )
        self.positions = self._array("positions", self.positions, (n, 3), "(n_atoms, 3)")
        self.cell = self._array("cell", self.cell, (3, 3), "(3, 3)")
        pbc = np.asarray(self.pbc, dtype=bool)
        if pbc.shape == ():
            pbc = np.full(3, bool(pbc))
        if pbc.shape != (3,):
            raise DatasetError(f"{where}: pbc has shape {pbc.shape}; expected (3,)")
        self.pbc = pbc

        if self.energy is None:
            raise DatasetError(f"{where}: missing energy; expected a total energy [eV], found none")
        try:
            energy = float(self.energy)
        except (TypeError, ValueError):
            raise DatasetError(
                f"{where}: energy is not a number; expected a float [eV], found {self.energy!r}"
            ) from None
        if not math.isfinite(energy):
            raise DatasetError(f"{where}: energy is {energy}; expected a finite value [eV]")
        self.energy = energy

        if self.forces is None:
            raise DatasetError(
                f"{where}: missing forces; expected shape (n_atoms, 3) = ({n}, 3) [eV/Å], "
                "found none"
            )
        self.forces = self._array("forces", self.forces, (n, 3), "(n_atoms, 3)")

        if self.stress is not None:
            self.stress = self._array("stress", _to_voigt(self.stress), (6,), "(6,)")
        if self.site_energies is not None:
            self.site_energies = self._array("site_energies", self.site_energies, (n,), "(n_atoms,)")

        weight = float(self.weight)
        if not (math.isfinite(weight) and weight >= 0.0):
            raise DatasetError(f"{where}: weight is {weight}; expected a finite value >= 0")
        self.weight = weight
        self.group = str(self.group)
        self.description = str(self.description)

    def _array(self, name: str, value, shape: tuple[int, ...], shape_doc: str) -> np.ndarray:
        """Convert ``value`` to a float array and check its shape and finiteness."""
        where = _where(self.source)
        try:
            arr = np.array(value, dtype=float)
        except (TypeError, ValueError) as exc:
            raise DatasetError(
                f"{where}: {name} is not a numeric array of shape {shape_doc} ({exc})"
            ) from None
        if arr.shape != shape:
            raise DatasetError(
                f"{where}: wrong shape of {name}; expected {shape_doc} = {shape}, found {arr.shape}"
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            kind = "NaN" if np.isnan(arr[bad]).any() else "inf"
            if arr.ndim == 2 and name in ("positions", "forces"):
                atoms = np.flatnonzero(bad.any(axis=1))
                detail = f" at atom(s) {_format_indices(atoms)}"
            else:
                detail = f" at component(s) {_format_indices(np.flatnonzero(bad.ravel()))}"
            raise DatasetError(f"{where}: {kind} in {name}{detail}; expected finite values")
        return arr

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.symbols)

    def to_atoms(self) -> Atoms:
        """The structure as an :class:`ase.Atoms` (cell and pbc set, no calculator).

        Returns
        -------
        ase.Atoms
            A new object; modifying it does not modify this configuration.
        """
        return Atoms(
            symbols=list(self.symbols),
            positions=self.positions.copy(),
            cell=self.cell.copy(),
            pbc=self.pbc.copy(),
        )

    @classmethod
    def from_atoms(
        cls, atoms: Atoms, source: str, group: str | None = None, keys: dict | None = None
    ) -> Configuration:
        """Build a configuration from an :class:`ase.Atoms` carrying DFT results.

        Under their own names, energy, forces and stress are taken from the
        attached calculator (extended XYZ and VASP readers attach a
        ``SinglePointCalculator``), falling back to ``atoms.info["energy"]``,
        ``atoms.arrays["forces"]`` and ``atoms.info["stress"]``. A quantity
        mapped to another name by ``keys`` is read from ``atoms.info`` (energy,
        stress) or ``atoms.arrays`` (forces) under that name, as extended XYZ
        keeps ``REF_energy``-style keys. Forces are read without applying
        constraints (``FixAtoms`` from selective dynamics would otherwise zero
        them). The weight is ``atoms.info["weight"]`` if present, else 1; the
        description is :func:`describe` of ``atoms.info``.

        Parameters
        ----------
        atoms : ase.Atoms
            Structure with results.
        source : str
            ``"path:record_index"``, quoted in error messages.
        group : str, optional
            Group name; default ``atoms.info["config_type"]``, else
            :func:`file_group` of the path in ``source``.
        keys : dict, optional
            Quantity → name in the record (:func:`resolve_keys`).

        Returns
        -------
        Configuration

        Raises
        ------
        DatasetError
            Missing energy or forces (the message names the key looked for and
            the record's keys that look like it), wrong shapes, NaN/inf values.
        """
        names = resolve_keys(keys)
        energy = _result(atoms, "energy", names["energy"], source)
        forces = _result(atoms, "forces", names["forces"], source)
        stress = _result(atoms, "stress", names["stress"], source, required=False)
        if group is None:
            group = atoms.info.get("config_type")
        if group is None:
            group = file_group(source.rpartition(":")[0] or source)
        return cls(
            symbols=tuple(atoms.get_chemical_symbols()),
            positions=atoms.get_positions(),
            cell=np.array(atoms.get_cell()),
            pbc=atoms.get_pbc(),
            energy=energy,
            forces=forces,
            stress=stress,
            weight=atoms.info.get("weight", 1.0),
            group=group,
            source=source,
            description=describe(atoms.info, exclude=(*names.values(), "weight")),
        )


def describe(info: dict, exclude: Iterable[str] = ()) -> str:
    """The description of a record: its text and integer entries (extended XYZ
    ``config_type``, ``source_desc``, a ``step=12`` ...) as ``"key=value"``, sorted by
    key, joined by ``"; "``. Entries that are real numbers or arrays (energy, stress,
    time) are left out, and so are the keys in ``exclude``.

    Parameters
    ----------
    info : dict
        E.g. ``ase.Atoms.info``.
    exclude : iterable of str
        Keys left out (the reference results' names, ``weight``).

    Returns
    -------
    str
        ``""`` when no entry qualifies.
    """
    skip = set(exclude)
    parts = []
    for key in sorted(info, key=str):
        value = info[key]
        if key in skip or isinstance(value, (bool, np.bool_)):
            continue
        if isinstance(value, (str, int, np.integer)):
            parts.append(f"{key}={value}")
    return "; ".join(parts)


def _result(atoms: Atoms, quantity: str, name: str, source: str, required: bool = True):
    """``quantity`` of a record stored under ``name``, or None when absent and not
    ``required``; a required one that is absent raises DatasetError naming the
    key and the record's keys that contain the quantity's name."""
    per_atom = quantity == "forces"
    value = _calc_property(atoms, name) if name == quantity else None
    if value is None:
        value = (atoms.arrays if per_atom else atoms.info).get(name)
    if value is None:
        value = (atoms.info if per_atom else atoms.arrays).get(name)
    if value is not None or not required:
        return value
    stem = quantity[:5]  # energ(y|ies), force(s), stres(s)
    seen = sorted({k for k in (*atoms.info, *atoms.arrays) if stem in k.lower()})
    hint = (f"; the record has {', '.join(seen)}: map one with data.keys or --keys {quantity}=NAME"
            if seen else "")
    mapped = f" (key {name!r})" if name != quantity else ""
    n = len(atoms)
    shape = "a total energy [eV]" if quantity == "energy" else f"shape (n_atoms, 3) = ({n}, 3) [eV/Å]"
    raise DatasetError(f"{_where(source)}: missing {quantity}{mapped}; expected {shape}, found none{hint}")


def _calc_property(atoms: Atoms, name: str):
    """A stored calculator result, or None; never triggers a calculation."""
    calc = atoms.calc
    if calc is None:
        return None
    try:
        return calc.get_property(name, atoms, allow_calculation=False)
    except Exception:  # noqa: BLE001 - any calculator failure means "not available"
        return None


def _to_voigt(stress) -> np.ndarray:
    """Stress as given (6,), (9,) or (3, 3) → Voigt (6,); other shapes pass through."""
    arr = np.array(stress, dtype=float)
    if arr.shape == (9,):
        arr = arr.reshape(3, 3)
    if arr.shape == (3, 3):
        arr = np.array([arr[0, 0], arr[1, 1], arr[2, 2], arr[1, 2], arr[0, 2], arr[0, 1]])
    return arr


def validate_configuration(
    config: Configuration,
    *,
    species: Iterable[str] | None = None,
    min_distance: float | None = 0.5,
) -> None:
    """Check species and interatomic distances of one configuration.

    Shapes and finiteness are already checked when a :class:`Configuration`
    is built; this adds the checks that depend on the model and on physics.

    Parameters
    ----------
    config : Configuration
    species : iterable of str, optional
        Allowed chemical symbols; ``None`` allows all.
    min_distance : float or None, default 0.5
        Smallest allowed distance [Å] between two atoms, periodic images
        included (an atom and its own image count); ``None`` or 0 disables.

    Raises
    ------
    SpeciesError
        A symbol is not in ``species``; the message names it, the atoms
        carrying it and the allowed species.
    DatasetError
        Two atoms are closer than ``min_distance``; the message names the
        closest pair, the image shift and their distance.
    """
    where = _where(config.source)
    if species is not None:
        allowed = sorted(set(species))
        symbols = np.array(config.symbols)
        extra = sorted(set(config.symbols) - set(allowed))
        if extra:
            atoms_idx = np.flatnonzero(np.isin(symbols, extra))
            raise SpeciesError(
                f"{where}: species {', '.join(extra)} (atom(s) {_format_indices(atoms_idx)}) "
                f"not supported; expected only {allowed}"
            )
    if min_distance:
        i, j, d, shift = _close_pairs(config.to_atoms(), float(min_distance))
        if len(d):
            k = int(np.argmin(d))
            image = (
                ""
                if not np.any(shift[k])
                else f" (periodic image {tuple(int(s) for s in shift[k])})"
            )
            raise DatasetError(
                f"{where}: atoms {i[k]} ({config.symbols[i[k]]}) and {j[k]} "
                f"({config.symbols[j[k]]}){image} are {d[k]:.4f} Å apart; expected at least "
                f"{min_distance} Å (min_distance); {len(d)} such pair(s)"
            )


def _close_pairs(atoms: Atoms, cutoff: float):
    """Pairs (i, j, distance [Å], image shift) closer than ``cutoff``, i ≤ j."""
    if abs(np.linalg.det(atoms.cell.array)) > 1e-12:
        from matscipy.neighbours import neighbour_list
    else:  # matscipy needs a non-singular cell; ASE builds a bounding box
        from ase.neighborlist import neighbor_list as neighbour_list
    i, j, d, shift = neighbour_list("ijdS", atoms, cutoff)
    # each unordered pair is listed twice; keep i < j, and for an atom close to
    # its own image the shift that is lexicographically positive
    positive = np.array([tuple(s) > (0, 0, 0) for s in shift], dtype=bool).reshape(len(i))
    keep = (i < j) | ((i == j) & positive)
    return i[keep], j[keep], d[keep], shift[keep]
