"""Run a fitted compot model in LAMMPS and ASE through the KIM API (``make demo-md``).

    .venv/bin/python examples/md_kim.py runs/demo/model.params \\
        [--name Compot_NbDemo] [--cells 6] [--steps 1000]

1. exports the parameter file as the KIM portable model NAME and installs the
   compot model driver (shipped with compot) and the model into the KIM user
   collection (``compot export kim --install``);
2. runs NVE molecular dynamics of bcc Nb (cells³ cubic cells, 2 atoms each;
   velocities drawn at 600 K, which equilibrate near 300 K; time step 1 fs) in
   Debian's LAMMPS with ``kim init NAME metal`` / ``kim interactions Nb`` and
   prints the total-energy drift per atom;
3. evaluates a rattled bcc cell with ASE's KIM calculator
   (``ase.calculators.kim.KIM(NAME)``) and with compot's own Python
   calculator, and prints that energy, forces and stress agree.

Exit status 0 when the drift is below 1e-4 eV/atom and the two calculators
agree to 1e-9 (relative), or to 10x compot's own rounding noise on the
structure (its change under rigid translations) for a model whose large,
cancelling coefficients put that floor higher; 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lammps_plugin"))
from compot_lammps import thermo_rows  # noqa: E402


def lammps_nve(lmp: str, name: str, a0: float, cells: int, steps: int, workdir: Path) -> tuple[np.ndarray, str]:
    """Thermo rows (step, temp, pe, ke, etotal, press) of an NVE run."""
    deck = f"""# compot model {name} in LAMMPS through the KIM API
kim init {name} metal
boundary p p p
lattice bcc {a0}
region box block 0 {cells} 0 {cells} 0 {cells}
create_box 1 box
create_atoms 1 box
kim interactions Nb
mass 1 92.906
velocity all create 600.0 4928459 mom yes rot yes dist gaussian
timestep 0.001
fix 1 all nve
thermo_style custom step temp pe ke etotal press
thermo_modify format float %.10g
thermo {max(steps // 10, 1)}
run {steps}
"""
    (workdir / "in.nve").write_text(deck)
    r = subprocess.run([lmp, "-in", "in.nve", "-log", "log.lammps", "-screen", "none"], cwd=workdir,
                       capture_output=True, text=True)
    log = (workdir / "log.lammps").read_text(errors="replace") if (workdir / "log.lammps").exists() else ""
    if r.returncode != 0:
        raise RuntimeError(f"{lmp} failed (exit {r.returncode}):\n{log[-2000:]}{r.stdout[-1000:]}{r.stderr[-1000:]}")
    rows = thermo_rows(log)
    loop = next((ln for ln in log.splitlines() if ln.startswith("Loop time")), "")
    return np.array(rows), loop


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="compot parameter file of a Nb model (format v1)")
    ap.add_argument("--name", default="Compot_NbDemo", help="KIM model name (default Compot_NbDemo)")
    ap.add_argument("--out", default="runs/demo/kim", help="folder for the portable model and the LAMMPS run")
    ap.add_argument("--cells", type=int, default=6, help="bcc cubic cells per edge (default 6: 432 atoms)")
    ap.add_argument("--steps", type=int, default=1000, help="NVE steps of 1 fs (default 1000)")
    ap.add_argument("--a0", type=float, default=3.30, help="lattice constant [Å] (default 3.30)")
    ap.add_argument("--lmp", default="/usr/bin/lmp", help="LAMMPS with the KIM package (default Debian's)")
    args = ap.parse_args(argv)

    from ase.build import bulk
    from ase.calculators.kim import KIM

    from compot.calculator import CompotCalculator
    from compot.errors import CompotError
    from compot.export import export_kim
    from compot.io import read_model

    def say(line):
        print(f"[md_kim] {line}", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        export_kim(args.model, args.name, out, install=True, progress=say)
        model = read_model(args.model)
    except CompotError as exc:
        print(f"md_kim: error: {exc}", file=sys.stderr)
        return 2
    ok = True

    # 2. NVE in LAMMPS
    n_atoms = 2 * args.cells ** 3
    if os.path.exists(args.lmp):
        say(f"LAMMPS ({args.lmp}): NVE of {n_atoms}-atom bcc Nb, a = {args.a0} Å, {args.steps} steps of 1 fs, "
            f"velocities at 600 K")
        th, loop = lammps_nve(args.lmp, args.name, args.a0, args.cells, args.steps, out)
        print(f"{'step':>8s} {'T [K]':>9s} {'E_pot [eV]':>16s} {'E_tot [eV]':>16s}")
        for row in th:
            print(f"{int(row[0]):8d} {row[1]:9.2f} {row[2]:16.6f} {row[4]:16.6f}")
        drift = np.max(np.abs(th[:, 4] - th[0, 4])) / n_atoms
        end = (th[-1, 4] - th[0, 4]) / n_atoms
        T = th[len(th) // 2:, 1].mean()
        m = re.search(r"Loop time of ([0-9.eE+-]+)", loop)
        speed = f"; {float(m.group(1)) / (n_atoms * args.steps) * 1e6:.2f} µs/atom-step" if m else ""
        say(f"NVE energy drift: max |E_tot - E_tot(0)| = {drift:.2e} eV/atom, end - start = {end:+.2e} eV/atom "
            f"(<T> = {T:.0f} K{speed}) — {'OK' if drift < 1e-4 else 'TOO LARGE'} (limit 1e-4 eV/atom)")
        ok &= bool(drift < 1e-4)
    else:
        say(f"{args.lmp} not found: skipping the LAMMPS run (install Debian's lammps package)")

    # 3. ASE's KIM calculator vs compot's calculator
    atoms = bulk("Nb", "bcc", a=args.a0, cubic=True).repeat((3, 3, 3))
    atoms.rattle(0.05, seed=7)
    with tempfile.TemporaryDirectory() as tmp:  # kimpy writes kim.log into the working directory
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            a = atoms.copy()
            a.calc = KIM(args.name)
            e_kim, f_kim, s_kim = a.get_potential_energy(), a.get_forces(), a.get_stress()
        finally:
            os.chdir(cwd)
    def compot_eval(at):
        b = at.copy()
        b.calc = CompotCalculator(model)
        return b.get_potential_energy(), b.get_forces(), b.get_stress()

    e_py, f_py, s_py = compot_eval(atoms)
    # the model's floating-point floor: compot itself under rigid translations
    rng = np.random.default_rng(0)
    noise = np.zeros(3)
    for _ in range(3):
        t = atoms.copy()
        t.translate(rng.uniform(-1, 1, 3))
        e_t, f_t, s_t = compot_eval(t)
        noise = np.maximum(noise, [abs(e_t - e_py), np.max(np.abs(f_t - f_py)), np.max(np.abs(s_t - s_py))])
    dev = np.array([abs(e_kim - e_py), np.max(np.abs(f_kim - f_py)), np.max(np.abs(s_kim - s_py))])
    scale = np.array([abs(e_py), max(1.0, np.max(np.abs(f_py))), max(1e-3, np.max(np.abs(s_py)))])
    tol = np.maximum(1e-9 * scale, 10 * noise)
    match = bool(np.all(dev <= tol))
    say(f"ASE KIM('{args.name}') on {len(atoms)} rattled atoms: E = {e_kim:.10f} eV; compot: E = {e_py:.10f} eV; "
        f"relative deviations E {dev[0] / scale[0]:.1e}, F {dev[1] / scale[1]:.1e}, stress {dev[2] / scale[2]:.1e} "
        f"(compot's own rounding noise: {noise[0] / scale[0]:.1e}, {noise[1] / scale[1]:.1e}, "
        f"{noise[2] / scale[2]:.1e}) — {'matches compot' if match else 'DOES NOT MATCH compot'}")
    ok &= bool(match)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
