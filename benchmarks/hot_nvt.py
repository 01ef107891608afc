"""Long hot NVT against the equipartition bound (compot.hot_prior).

    .venv/bin/python benchmarks/hot_nvt.py NAME=MODEL.params [NAME=... ...] --element Nb \
        --temperature 3518 [--steps 6000] [--seeds 2] [--out benchmarks/results/hot_nvt]

For every model: Langevin NVT (compot.sanity.nvt_check: C core, 1 fs, friction
0.01/fs, 128 atoms) of the element's crystal at the model's own a0 and e0
(compot.sanity.element_lattices: the bcc lattice from the model) at ``--temperature``,
``--seeds`` runs of ``--steps`` steps (seeds 0, 1, ...: those of the NVT check).
Per run: the mean potential energy per atom over the second half against the
equipartition bound e0 + 3/2 k_B T (a crystal's least mean; a liquid lies higher), the
lowest energy after 500 fs, the first time a snapshot fell 3σ below the bound
(σ = k_B T √(3/(2N))) and the check's verdict (it loses a run whose energy falls 1
eV/atom below the perfect crystal). Writes ``--out``.json and ``--out``.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from compot.hot_prior import equipartition_bound
from compot.io import atomic_write_json, atomic_write_text, read_model
from compot.sanity import element_lattices, nvt_check

RESULTS = Path(__file__).resolve().parent / "results"


def run(model, element: str, temperature: float, steps: int, seeds: int) -> dict:
    lat, a0, e0, _ = element_lattices(model, lattice="bcc", a0=None)[element]
    runs = []
    for seed in range(seeds):
        trace = []
        check = nvt_check(model, lat, a0, temperature, steps=steps, n_seeds=1, first_seed=seed,
                          observe=lambda at, e, t: trace.append((t, e)))
        t = np.array([x[0] for x in trace])
        e = np.array([x[1] for x in trace])
        bound, sigma = equipartition_bound(e0, temperature, len(lat.supercell(128, a0)))
        late = e[t >= 500.0]
        below = t[(t >= 500.0) & (e < bound - 3 * sigma)]
        half = e[t >= t.max() / 2] if len(t) else e
        runs.append({"seed": seed, "passed": check["passed"], "detail": check["detail"],
                     "mean_second_half": float(half.mean()) if len(half) else None,
                     "lowest_after_500fs": float(late.min()) if len(late) else None,
                     "first_below_fs": float(below[0]) if len(below) else None,
                     "t": t.tolist(), "energy": e.tolist()})
    return {"element": element, "a0": a0, "e0": e0, "temperature": temperature, "steps": steps,
            "bound": equipartition_bound(e0, temperature, 128)[0], "runs": runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", metavar="NAME=MODEL")
    p.add_argument("--element", required=True)
    p.add_argument("--temperature", type=float, required=True, help="[K]")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS / "hot_nvt"))
    args = p.parse_args(argv)
    out = Path(args.out)
    results = {"command": "benchmarks/hot_nvt.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "models": {}}
    for spec in args.models:
        name, path = spec.split("=", 1)
        t0 = time.perf_counter()
        results["models"][name] = {"path": path, **run(read_model(path), args.element, args.temperature,
                                                        args.steps, args.seeds),
                                   "seconds": time.perf_counter() - t0}
    md = [f"# Long hot NVT: {args.element} at {args.temperature:.0f} K", "",
          f"    .venv/bin/python {results['command']}", "", f"Run {results['date']}. Bound: e0 + 3/2 k_B T, "
          "e0 the model's perfect crystal; 'first below': the first snapshot (after 500 fs) 3σ under it.", "",
          "| model | seed | e0 [eV/atom] | bound | mean, 2nd half | lowest | first below [fs] | NVT check |",
          "|---|--:|--:|--:|--:|--:|--:|---|"]
    for name, r in results["models"].items():
        for x in r["runs"]:
            first = "—" if x["first_below_fs"] is None else f"{x['first_below_fs']:.0f}"
            md.append(f"| {name} | {x['seed']} | {r['e0']:.4f} | {r['bound']:.4f} | {x['mean_second_half']:.4f} | "
                      f"{x['lowest_after_500fs']:.4f} | {first} | "
                      f"{'pass' if x['passed'] else 'FAIL: ' + x['detail'].split(': ', 1)[-1]} |")
    atomic_write_json(out.with_suffix(".json"), results)
    atomic_write_text(out.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
