"""What the derivations read of a configuration: :class:`Record`, and the error they raise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..errors import CompotError

__all__ = ["DeriveError", "Record", "records", "single_species", "neighbour_list", "stored_result"]


class DeriveError(CompotError, ValueError):
    """Raised when the data cannot determine a derived quantity: no periodic
    configuration of the species, no configuration close to a known lattice,
    or too few volumes for an equation of state (the message says which)."""


@dataclass
class Record:
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


def stored_result(atoms: Atoms, name: str):
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


def records(configs) -> list[Record]:
    """Configurations (compot Configuration or ase.Atoms) as records."""
    from ..data import Configuration

    out = []
    for k, c in enumerate(configs):
        if isinstance(c, Record):
            out.append(c)
        elif isinstance(c, Configuration):
            out.append(Record(c.symbols, c.positions, c.cell, c.pbc, c.energy, c.forces, c.stress, None, c.source))
        elif isinstance(c, Atoms):
            e = stored_result(c, "energy")
            f = stored_result(c, "forces")
            s = stored_result(c, "stress")
            if s is not None:
                s = np.asarray(s, dtype=float)
                if s.shape == (3, 3):
                    s = s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
                elif s.shape != (6,):
                    s = None
            t = c.info.get("temperature", c.info.get("T"))
            out.append(Record(tuple(c.get_chemical_symbols()), c.get_positions(), np.array(c.cell), c.get_pbc(),
                               None if e is None else float(e), None if f is None else np.asarray(f, dtype=float),
                               s, None if t is None else float(t), c.info.get("source", f"<atoms {k}>")))
        else:
            raise TypeError(f"configuration {k}: expected compot.data.Configuration or ase.Atoms, "
                            f"found {type(c).__name__}")
    return out


def single_species(records, species: str) -> list[Record]:
    """The periodic records of one element that carry an energy."""
    return [r for r in records if r.periodic and r.energy is not None and set(r.symbols) == {species}]


def neighbour_list(quantities: str, atoms: Atoms, cutoff: float):
    """ASE-style neighbour list (matscipy for periodic cells, ASE otherwise) within ``cutoff`` [Å]."""
    if atoms.pbc.all() and abs(atoms.cell.volume) > 1e-9:
        from matscipy.neighbours import neighbour_list
        return neighbour_list(quantities, atoms, cutoff)
    from ase.neighborlist import neighbor_list
    return neighbor_list(quantities, atoms, cutoff, self_interaction=False)
