"""How time and memory of fitting grow with the data, and design on 1 and 2 Dask workers
(issue 17; not a test).

    .venv/bin/python benchmarks/scaling_fit.py [--sizes 1 4 16 64] [--data DIR]
        [--bo-evaluations 4] [--full-up-to N] [--merge] [--skip-design]
        [--out benchmarks/results/scaling_fit.md]

The niobium data (``DIR/nb-mvl``: AIMD, elastic and surface configurations) is
replicated ``size`` times; every copy after the first has its positions moved by
Gaussian noise of σ = 0.01 Å (seeded; the targets are kept: this measures cost, not
accuracy). For each size, each measurement runs in a fresh process:

* ``fixed``: the shipped model (``examples/nb/model.params``) with every nonlinear
  parameter frozen, ``Trainer.fit`` (one joint linear solve), with ``fit.lstsq``
  ``streamed`` and ``dense``;
* ``bo``: the first Bayesian-optimisation stage of the plan of the same composition
  (``--bo-evaluations`` evaluations, no polish), streamed.

Sizes above ``--full-up-to`` run the streamed fixed fit only, without the extra
solve (the others take hours there on a small machine). ``--merge`` adds the rows to those of the existing JSON
(a row of the same fit, lstsq and size replaced), so sizes can be run one at a time;
``--skip-design`` with ``--merge`` keeps the JSON's design times.

Reported: wall time of the fit (set-up, i.e. reading, replicating and batching the
data, shown apart), its CPU time (user + system of the process: on a shared machine the
measure of work that does not move with the load), the process's peak resident memory (``ru_maxrss``), the peak of
Python/numpy allocations during the fit (``tracemalloc``, started after the set-up:
neighbour data built and cached during the fit count), what of that is still held after
the fit, and the peak of one more joint linear solve above that (what the least
squares itself allocates).

The design loop runs 8 small candidates (``--design-terms``, default G3–G6 and
E[G3L2], E[G4L2], E[G3L3], E[G4L3]; no core, no sanity checks, ``--design-evaluations``
evaluations each) on the elastic
and surface data on a LocalCluster of 1 and of 2 workers (start-up excluded).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = ("Nb_AIMD.extxyz", "Nb_Elastic.extxyz", "Nb_Surface.extxyz")


def replicated(data_dir: Path, size: int):
    """The Nb configurations ``size`` times, copies 2.. rattled by 0.01 Å."""
    import dataclasses

    import numpy as np

    from compot.data import read_dataset

    base = read_dataset([data_dir / "nb-mvl" / f for f in FILES], species=["Nb"])
    rng = np.random.default_rng(0)
    out = list(base)
    for copy in range(1, size):
        for c in base:
            out.append(dataclasses.replace(c, positions=c.positions + rng.normal(0.0, 0.01, c.positions.shape),
                                           source=f"{c.source}#copy{copy}"))
    return out


def child(kind: str, size: int, lstsq: str, data_dir: Path, bo_evaluations: int, extra_solve: bool = True) -> dict:
    import tracemalloc

    from compot.io import read_model
    from compot.settings import FitSettings
    from compot.trainer import Trainer

    t0 = time.perf_counter()
    configs = replicated(data_dir, size)
    model = read_model(ROOT / "examples" / "nb" / "model.params")
    if kind == "fixed":
        settings = FitSettings(freeze=model.blocks("nonlinear"), lstsq=lstsq)
    else:
        settings = FitSettings(lstsq=lstsq, max_evaluations=bo_evaluations, init_points=2, polish_evaluations=0)
    trainer = Trainer(model, configs, settings)
    t_data = time.perf_counter() - t0
    tracemalloc.start()
    t1 = time.perf_counter()
    c1 = time.process_time()
    if kind == "fixed":
        trainer.fit()
    else:
        si, stage = next((i, st) for i, st in enumerate(trainer.plan) if st.kind == "search")
        trainer.search(si, stage, [])
    seconds = time.perf_counter() - t1
    cpu_seconds = time.process_time() - c1
    _, traced = tracemalloc.get_traced_memory()
    # one more joint linear solve alone: what the least squares itself allocates
    held, _ = tracemalloc.get_traced_memory()      # allocated during the fit and still alive (caches)
    solve_peak = None
    if extra_solve:
        tracemalloc.reset_peak()
        trainer.solve([n for n in model.blocks("linear") if n not in trainer.frozen])
        _, solve_peak = tracemalloc.get_traced_memory()
        solve_peak = (solve_peak - held) / 2**20
    tracemalloc.stop()
    store = trainer.data.systems
    return {"kind": kind, "size": size, "lstsq": lstsq, "configurations": len(configs),
            "neighbour_memory_mb": store.in_memory_bytes / 2**20, "batches_on_disk": store.n_on_disk,
            "batches": len(store),
            "atoms": sum(c.n_atoms for c in configs), "rows": trainer.data.n_rows,
            "data_seconds": t_data, "fit_seconds": seconds, "fit_cpu_seconds": cpu_seconds, "traced_peak_mb": traced / 2**20,
            "solve_peak_mb": solve_peak, "held_after_fit_mb": held / 2**20,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


DESIGN_TERMS = ["G3", "G4", "G5", "G6", "E[G3L2]", "E[G4L2]", "E[G3L3]", "E[G4L3]"]


def design_time(workers: int, data_dir: Path, evaluations: int, terms=tuple(DESIGN_TERMS)) -> float:
    """Wall time of the design loop over the single terms ``terms`` on a LocalCluster of
    ``workers`` (its start-up excluded)."""
    from compot.config import check_config
    from compot.design import run_design
    from compot.execution import client_for

    cfg = check_config({
        "model": {"cutoff": 4.5, "species": ["Nb"]},
        "data": {"train": [str(data_dir / "nb-mvl" / f) for f in FILES[1:]], "validation_fraction": 0.2},
        "fit": {"max_evaluations": evaluations, "init_points": 4, "polish_evaluations": 0},
        "design": {"single_terms": list(terms), "compositions": [], "zbl": None,
                   "fim_bits": 64, "sanity": False}})
    with tempfile.TemporaryDirectory() as tmp, client_for(n_workers=workers) as client:
        t0 = time.perf_counter()
        run_design(cfg, Path.cwd(), Path(tmp), progress=lambda line: None, client=client)
        return time.perf_counter() - t0


def run_child(*args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "row.json"
        subprocess.run([sys.executable, __file__, "--child", *map(str, args), path], check=True,
                       capture_output=True, text=True)
        return json.loads(path.read_text())


def plot(rows: list, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from compot.plots import atomic_write_figure

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    for (kind, lstsq), style in ((("fixed", "streamed"), "o-"), (("fixed", "dense"), "s--"), (("bo", "streamed"), "^-")):
        sel = sorted((r for r in rows if r["kind"] == kind and r["lstsq"] == lstsq), key=lambda r: r["size"])
        if not sel:
            continue
        x = [r["size"] for r in sel]
        a.plot(x, [r.get("fit_cpu_seconds", float("nan")) for r in sel], style, label=f"{kind}, {lstsq}: CPU")
        a.plot(x, [r["fit_seconds"] for r in sel], style, alpha=0.5, label=f"{kind}, {lstsq}: wall")
        b.plot(x, [r["maxrss_mb"] for r in sel], style, label=f"{kind}, {lstsq}: peak RSS")
        b.plot(x, [r["traced_peak_mb"] for r in sel], style, alpha=0.5, label=f"{kind}, {lstsq}: during fit")
    for ax, label in ((a, "fit time [s]"), (b, "memory [MB]")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("data size (× the Nb data)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write_figure(fig, path)


def main(argv=None) -> int:
    from compot.data import default_data_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", nargs=7, metavar=("KIND", "SIZE", "LSTSQ", "DATA", "BO", "SOLVE", "OUT"),
                   help=argparse.SUPPRESS)
    p.add_argument("--sizes", type=int, nargs="*", default=[1, 4, 16, 64],
                   help="none with --merge: write the tables and plot of the JSON again")
    p.add_argument("--data", type=Path, default=default_data_dir(), help="data directory (default $COMPOT_DATA)")
    p.add_argument("--bo-evaluations", type=int, default=4)
    p.add_argument("--full-up-to", type=int, default=None,
                   help="sizes above this run the streamed fixed fit only")
    p.add_argument("--runs", nargs="+", choices=["fixed:streamed", "fixed:dense", "bo:streamed"], default=None,
                   help="which fits to run at every size (default: all three, the streamed fixed fit only "
                        "above --full-up-to)")
    p.add_argument("--merge", action="store_true", help="add to the rows of the existing JSON")
    p.add_argument("--skip-design", action="store_true")
    p.add_argument("--design-evaluations", type=int, default=30, help="evaluations per design candidate")
    p.add_argument("--design-terms", nargs="+", default=DESIGN_TERMS, help="the design's candidates")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scaling_fit.md")
    args = p.parse_args(argv)
    from compot.io import atomic_write_json, atomic_write_text
    if args.child:
        kind, size, lstsq, data, bo, solve, out = args.child
        atomic_write_json(out, child(kind, int(size), lstsq, Path(data), int(bo), solve == "1"))
        return 0
    json_path = args.out.with_suffix(".json")
    old = json.loads(json_path.read_text()) if args.merge and json_path.exists() else {}
    rows = old.get("rows", [])
    commands = old.get("commands", [old["command"]] if "command" in old else [])
    for size in args.sizes:
        runs = (("fixed", "streamed"), ("fixed", "dense"), ("bo", "streamed"))
        full = args.full_up_to is None or size <= args.full_up_to
        if not full:
            runs = runs[:1]
        if args.runs:
            runs = tuple(tuple(r.split(":")) for r in args.runs)
        for kind, lstsq in runs:
            r = run_child(kind, size, lstsq, args.data, args.bo_evaluations, int(full))
            print(r, flush=True)
            rows = [x for x in rows if (x["kind"], x["lstsq"], x["size"]) != (kind, lstsq, size)] + [r]
    rows.sort(key=lambda r: (r["size"], r["kind"] != "fixed", r["lstsq"] != "streamed"))
    if args.skip_design:
        design = {int(w): t for w, t in old.get("design_seconds", {}).items()}
        terms = old.get("design_terms", ["G3", "G4", "E[G3L2]", "E[G4L2]"])
        evaluations = old.get("design_evaluations", args.design_evaluations)
    else:
        design = {w: design_time(w, args.data, args.design_evaluations, args.design_terms) for w in (1, 2)}
        terms, evaluations = list(args.design_terms), args.design_evaluations
    if args.sizes or not args.skip_design:
        commands.append("nice -n 19 .venv/bin/python benchmarks/scaling_fit.py " + " ".join(sys.argv[1:]))
    cmd = "`; `".join(commands)
    md = ["# Fitting cost against data size (benchmarks/scaling_fit.py)", "",
          f"`{cmd}`; {time.strftime('%Y-%m-%d')}, a shared 2-core machine (times move with its load).", "",
          "| fit | lstsq | × data | configurations | rows | batches (on disk) | fit [s] | fit CPU [s] | set-up [s] | "
          "peak RSS [MB] | peak during fit [MB] | held after fit [MB] | peak of one solve [MB] |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['kind']} | {r['lstsq']} | {r['size']} | {r['configurations']} | {r['rows']} | "
                  f"{r.get('batches', '')} ({r.get('batches_on_disk', '')}) | "
                  f"{r['fit_seconds']:.1f} | {r.get('fit_cpu_seconds', float('nan')):.1f} | {r['data_seconds']:.1f} | {r['maxrss_mb']:.0f} | {r['traced_peak_mb']:.1f} | "
                  f"{r['held_after_fit_mb']:.1f} | "
                  f"{'not run' if r['solve_peak_mb'] is None else format(r['solve_peak_mb'], '.1f')} |")
    if design:
        md += ["", f"| design ({len(terms)} candidates: {', '.join(terms)}; {evaluations} evaluations each) "
               "| wall time [s] |", "|---|---|"]
        md += [f"| {w} worker{'s' if w > 1 else ''} | {t:.1f} |" for w, t in design.items()]
        md += ["", f"Speed-up on 2 workers: {design[1] / design[2]:.2f}×."]
    png = args.out.with_suffix(".png")
    plot(rows, png)
    md += ["", f"![scaling]({png.name})", ""]
    if args.merge and args.out.exists():  # keep the hand-written reading of the results
        old_md = args.out.read_text()
        if "\n## Reading" in old_md:
            md += ["## Reading" + old_md.split("\n## Reading", 1)[1].rstrip("\n"), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, "\n".join(md))
    atomic_write_json(json_path, {"commands": commands, "rows": rows, "design_seconds": design,
                                  "design_terms": terms, "design_evaluations": evaluations})
    return 0


if __name__ == "__main__":
    sys.exit(main())
