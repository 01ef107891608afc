"""MD speed through the KIM API in Debian's LAMMPS: compot vs EAM vs SNAP (µs per atom-step).

    .venv/bin/python benchmarks/md_kim.py [--model MODEL.params ...] [--cells 20] [--steps 100]

One run, one core, the same input deck for every potential: a bcc Nb lattice
(a = 3.30 Å, cells³ cubic cells, 2 atoms each: 16,000 atoms by default),
velocities at 300 K, NVE with a 1 fs time step, LAMMPS default neighbour
settings (skin 2 Å), ``kim init NAME metal`` / ``kim interactions Nb``.
Potentials:

* the shipped compot models (``examples/nb/model.params`` and the paper's
  ``examples/nb/paper_e8l4_n8l4.params``; or ``--model``), exported and installed with
  ``compot.export.export_kim`` (C model driver ``Compot_Driver``, built with ``native=True``);
* ``EAM_Dynamo_FellingerParkWilkins_2010_Nb__MO_102133002179_005`` and
  ``SNAP_LiChenZheng_2019_NbTaWMo__MO_560387080449_000`` from Debian's
  ``openkim-models`` (skipped, and said so, when not installed).

The time is LAMMPS's "Loop time" of the ``run`` (set-up excluded) divided by
atoms × steps. Absolute times depend on the machine and its load: compare the
ratios, which are measured in one run. Writes ``<out>.json`` and ``<out>.md``
(default ``benchmarks/results/md_kim``) with the command that produced them.
This is a benchmark, not a test; the project's target is compot ≤ 6× EAM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "lammps_plugin"))
from compot_lammps import cpu_name, thermo_rows  # noqa: E402

PEERS = {
    "EAM_Dynamo_FellingerParkWilkins_2010_Nb__MO_102133002179_005": "EAM (Fellinger–Park–Wilkins 2010), KIM EAM_Dynamo driver",
    "SNAP_LiChenZheng_2019_NbTaWMo__MO_560387080449_000": "SNAP NbTaWMo (Li–Chen–Zheng 2019, 2J = 6), KIM SNAP driver",
}


def driver_revision() -> str:
    """Commit of kim_driver/ and whether the driver that was built had uncommitted changes."""
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "kim_driver"], capture_output=True,
                               text=True).stdout.strip()
        return f"{rev}{' + uncommitted changes in kim_driver/' if dirty else ''}" if rev else "unknown"
    except OSError:
        return "unknown"


def run(lmp: str, name: str, a0: float, cells: int, steps: int, workdir: Path) -> dict:
    deck = f"""kim init {name} metal
boundary p p p
lattice bcc {a0}
region box block 0 {cells} 0 {cells} 0 {cells}
create_box 1 box
create_atoms 1 box
kim interactions Nb
mass 1 92.906
velocity all create 300.0 4928459 mom yes rot yes dist gaussian
timestep 0.001
fix 1 all nve
thermo_style custom step temp pe etotal press
thermo_modify format float %.10g
thermo {steps}
run {steps}
"""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "in.lmp").write_text(deck)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([lmp, "-in", "in.lmp", "-log", "log.lammps", "-screen", "none"], cwd=workdir,
                       capture_output=True, text=True, env=env)
    log = (workdir / "log.lammps").read_text(errors="replace") if (workdir / "log.lammps").exists() else ""
    if r.returncode != 0:
        raise RuntimeError(f"{name}: {lmp} failed (exit {r.returncode}):\n{log[-2000:]}{r.stderr[-1000:]}")
    m = re.search(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms", log)
    pair = re.search(r"^Pair\s*\|\s*([0-9.eE+-]+)", log, re.MULTILINE)
    rows = thermo_rows(log)
    seconds, procs, n_steps, n_atoms = float(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4))
    return {"loop_seconds": seconds, "procs": procs, "steps": n_steps, "atoms": n_atoms,
            "pair_seconds": float(pair.group(1)) if pair else None,
            "us_per_atom_step": seconds / (n_atoms * n_steps) * 1e6,
            "pe0_per_atom": rows[0][2] / n_atoms if rows else None,
            "etotal_drift_per_atom": (rows[-1][3] - rows[0][3]) / n_atoms if rows else None}


def main(argv=None) -> int:
    shipped = [REPO / "examples" / "nb" / "model.params", REPO / "examples" / "nb" / "paper_e8l4_n8l4.params"]
    defaults = [str(p) for p in shipped if p.exists()]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=defaults,
                    help="compot Nb model(s) (default: the shipped examples/nb models: "
                    + ", ".join(os.path.relpath(d, REPO) for d in defaults) + ")")
    ap.add_argument("--cells", type=int, default=20, help="cubic bcc cells per edge (default 20: 16,000 atoms)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of every potential, interleaved; the fastest counts (default 1)")
    ap.add_argument("--a0", type=float, default=3.30)
    ap.add_argument("--lmp", default="/usr/bin/lmp", help="LAMMPS with the KIM package (Debian's)")
    ap.add_argument("--keep", action="store_true", help="keep the compot models installed afterwards "
                    "(as Compot_NbBench<i>)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "md_kim"),
                    help="output stem: writes STEM.json and STEM.md")
    args = ap.parse_args(argv)

    from compot.export import export_kim, find_kim_item, remove_kim_item
    from compot.io import read_model

    driver_rev = driver_revision()
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO)] + sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="compot-md-kim-") as tmp:
        tmp = Path(tmp)
        entries, names = [], []
        for i, path in enumerate(args.model):
            model = read_model(path)
            name = f"Compot_NbBench{i + 1}"
            # the driver built for this machine (-march=native), as in the published tables
            export_kim(path, name, tmp / "models", install=True, reinstall_driver=(i == 0), native=True,
                       progress=lambda s: print(f"[md_kim] {s}", flush=True))
            names.append(name)
            entries.append((name, f"compot {model.expression} ({model.n_linear + model.n_nonlinear} parameters, "
                                  f"r_c = {model.cutoff} Å; {os.path.relpath(path, REPO)}), KIM C driver"))
        skipped = []
        for name, label in PEERS.items():
            if find_kim_item(name) is None:
                skipped.append(name)
                print(f"[md_kim] {name} is not installed (Debian package openkim-models): skipped", flush=True)
            else:
                entries.append((name, label))
        best = {}
        for rep in range(args.repeat):
            for name, label in entries:
                print(f"[md_kim] {name}: {2 * args.cells ** 3} atoms, {args.steps} steps "
                      f"(run {rep + 1}/{args.repeat}) ...", flush=True)
                res = run(args.lmp, name, args.a0, args.cells, args.steps, tmp / name)
                res.update(model=name, description=label)
                print(f"[md_kim]   {res['us_per_atom_step']:.3f} µs/atom-step (loop {res['loop_seconds']:.2f} s)",
                      flush=True)
                runs = best.get(name, {}).get("all_us_per_atom_step", []) + [res["us_per_atom_step"]]
                if name not in best or res["us_per_atom_step"] < best[name]["us_per_atom_step"]:
                    best[name] = res
                best[name]["all_us_per_atom_step"] = runs
        rows = [best[name] for name, _ in entries]
        if not args.keep:
            for name in names:
                remove_kim_item(name)
    eam = next((r for r in rows if r["model"].startswith("EAM_")), None)
    for r in rows:
        r["ratio_to_eam"] = r["us_per_atom_step"] / eam["us_per_atom_step"] if eam else None
    lmp_version = subprocess.run([args.lmp, "-h"], capture_output=True, text=True).stdout.splitlines()
    lmp_version = next((ln.strip() for ln in lmp_version if ln.startswith("Large-scale") or "LAMMPS (" in ln),
                       args.lmp)
    doc = {"command": command, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "cpu": cpu_name(), "lammps": f"{args.lmp}: {lmp_version}", "kim_driver": driver_rev,
           "cores": 1, "repeat": args.repeat,
           "load_average": os.getloadavg(), "nproc": os.cpu_count(),
           "system": f"bcc Nb, a = {args.a0} Å, {args.cells}^3 cubic cells ({2 * args.cells ** 3} atoms), "
                     f"{args.steps} NVE steps of 1 fs from 300 K",
           "compot_models": [os.path.relpath(p, REPO) if Path(p).resolve().is_relative_to(REPO) else str(p)
                             for p in args.model], "rows": rows, "skipped": skipped,
           "target": "compot <= 6x EAM (us/atom-step)"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from compot.io import json_text
    out.with_suffix(".json").write_text(json_text(doc, indent=2) + "\n")
    lines = ["# MD speed through the KIM API in LAMMPS", "",
             f"{doc['system']}; one core ({doc['cpu']}, {doc['nproc']} cores, load average "
             f"{doc['load_average'][0]:.1f} at the end); {doc['lammps']}; {doc['date']}; fastest of "
             f"{args.repeat} interleaved run(s) per potential; compot driver built from {driver_rev}.", "",
             f"Command: `{command}`", "",
             "| potential | KIM model | µs/atom-step | × EAM | pair share of loop |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        share = f"{r['pair_seconds'] / r['loop_seconds']:.0%}" if r["pair_seconds"] else "–"
        ratio = f"{r['ratio_to_eam']:.1f}" if r["ratio_to_eam"] else "–"
        lines.append(f"| {r['description']} | `{r['model']}` | {r['us_per_atom_step']:.3f} | {ratio} | {share} |")
    if skipped:
        lines += ["", "Not installed (skipped): " + ", ".join(f"`{s}`" for s in skipped)]
    for r in rows:
        if r["model"] in names and r["ratio_to_eam"]:
            verdict = "meets" if r["ratio_to_eam"] <= 6 else "misses"
            lines += ["", f"{r['description'].split(' (')[0]}: compot / EAM = {r['ratio_to_eam']:.1f}, "
                          f"{verdict} the target ≤ 6×."]
    lines += ["", "Absolute times depend on the machine and its load; the ratios come from one run."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
