"""Wall time and peak memory of the demo fit, and the time of one inner
evaluation (features + least squares) of the 75-parameter E[G8L4] + N[E[G8L4]]
model on all niobium data (not a test).

    .venv/bin/python benchmarks/fit_nb.py [--config examples/nb/config.yaml] [--skip-fit]

Writes benchmarks/results/fit_nb.json and fit_nb.md. Targets (2-core machine):
demo fit ≤ 10 min and ≤ 4 GB; inner evaluation ≤ 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fitting"))

from compot.data import default_data_dir, read_dataset  # noqa: E402
from compot.model import Model  # noqa: E402
from compot.trainer import FitSettings, Trainer  # noqa: E402

from _results import write_quantity_table  # noqa: E402


def inner_evaluation(repeats: int = 3) -> dict:
    configs = read_dataset([default_data_dir() / "nb-mvl"])
    model = Model("E[G8L4] + N[E[G8L4]]", ("Nb",), 5.0)
    t = Trainer(model, configs, FitSettings())
    out = {"n_configurations": len(configs), "n_atoms": sum(c.n_atoms for c in configs),
           "n_pairs": sum(s.n_pairs for s in t.data.systems), "n_rows": t.data.n_rows}
    for label, names, nonlinear in (
            ("search_E_33_columns", t.plan[0].linear, t.plan[0].nonlinear),
            ("search_N_33_columns", t.plan[1].linear, t.plan[1].nonlinear),
            ("joint_solve_65_columns", model.blocks("linear"), [])):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            if nonlinear:
                t._evaluate(type(t.plan[0])("search", label, nonlinear, names), model.vector(nonlinear))
            else:
                t.solve(names)
            times.append(time.perf_counter() - t0)
        out[label] = {"min_seconds": min(times), "all_seconds": times}
    return out


def demo_fit(config: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "compot.cli", "fit", str(config), "--out", tmp],
                              env={**os.environ, "PYTHONPATH": str(ROOT / "fitting")}, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"demo fit failed:\n{proc.stderr[-2000:]}")
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        metrics = json.loads((Path(tmp) / "metrics.json").read_text())
    return {"wall_seconds": wall, "peak_rss_gb": peak_kb / 1024 ** 2,
            "validation_rmse_force": metrics["validation"]["rmse_force"],
            "validation_rmse_energy_per_atom": metrics["validation"]["rmse_energy_per_atom"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "examples" / "nb" / "config.yaml"))
    p.add_argument("--skip-fit", action="store_true", help="only time the inner evaluation")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fit_nb"))
    args = p.parse_args(argv)
    res = {"command": " ".join([Path(sys.executable).name] + sys.argv), "machine": platform.platform(),
           "cpus": os.cpu_count(), "load_average": os.getloadavg(), "inner_evaluation": inner_evaluation()}
    if not args.skip_fit:
        res["demo_fit"] = demo_fit(Path(args.config))
    ie = res["inner_evaluation"]
    rows = [
        f"| inner evaluation, E stage (33 columns, {ie['n_rows']} rows) | {ie['search_E_33_columns']['min_seconds']:.2f} s | ≤ 1 s |",
        f"| inner evaluation, N stage (33 columns) | {ie['search_N_33_columns']['min_seconds']:.2f} s | ≤ 1 s |",
        f"| joint linear solve, all 65 linear parameters | {ie['joint_solve_65_columns']['min_seconds']:.2f} s | |"]
    if "demo_fit" in res:
        d = res["demo_fit"]
        rows += [f"| demo fit wall time | {d['wall_seconds'] / 60:.1f} min | ≤ 10 min |",
                 f"| demo fit peak memory | {d['peak_rss_gb']:.2f} GB | ≤ 4 GB |",
                 f"| demo validation force RMSE | {d['validation_rmse_force']:.4f} eV/Å | |"]
    write_quantity_table(Path(args.out), res,
                         f"Command: `{res['command']}` ({res['cpus']} CPUs, load {res['load_average'][0]:.1f})", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
