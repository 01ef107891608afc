"""Hot NVT of a format v2 model with and without the lower bound of format v3.

    .venv/bin/python benchmarks/bound_nvt.py MODEL.params --data PATH... [--name NAME]
        [--seeds 4] [--steps 2000] [--out benchmarks/results/bound_nvt.json]

For a single-element model of format v2: the same model in format v3, its bound
``w.e_min`` set by :meth:`compot.model.Model.compute_lower_bound` over every atom of
``--data`` (the split the model was fitted on is not known here, so the bound may
sit a little lower than the trainer's), then :func:`compot.sanity.nvt_check` through
the C core with both, on the data's ground-state lattice at a0 of its equation of
state (:mod:`compot.derive`) and 1.1 × the data's hottest temperature (estimated
with the v2 model), ``--seeds`` runs of ``--steps`` steps of 1 fs, 128 atoms.
Everything else of the two models is identical, so the difference is the bound.

Results accumulate in ``--out`` (one entry per NAME, rerunning a NAME replaces it)
and the table in the same stem ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from compot import derive
from compot.data import read_dataset
from compot.io import atomic_write_json, atomic_write_text, read_model
from compot.model import Model
from compot.sanity import nvt_check

RESULTS = Path(__file__).resolve().parent / "results"


def as_bounded(model: Model, data) -> Model:
    """``model`` (format v2) in format v3 with w.e_min the lowest V_fit over ``data``."""
    m = model.copy(version=3)
    m.compute_lower_bound([m.system([c.to_atoms() for c in data[k:k + 50]]) for k in range(0, len(data), 50)])
    return m


def run(model_path: str, data_paths: list[str], seeds: int, steps: int) -> dict:
    model = read_model(model_path)
    if model.version != 2 or len(model.species) != 1:
        raise SystemExit(f"{model_path}: expected a single-element model of format v2, found format "
                         f"v{model.version} with species {' '.join(model.species)}")
    data = [c for p in data_paths for c in read_dataset(p)]
    symbol = model.species[0]
    lattice = derive.detect_lattice(data, symbol)
    eos = derive.equation_of_state(data, symbol, lattice)
    temperature = 1.1 * derive.hottest_temperature(data, model)
    bounded = as_bounded(model, data)
    out = {"model": model_path, "expression": model.expression, "data": data_paths, "lattice": eos.lattice.kind,
           "a0": eos.a0, "temperature": temperature, "seeds": seeds, "steps": steps,
           "e_min": float(bounded.params["w.e_min"][0]), "e_ref": float(bounded.params["w.e_ref"][0]),
           "tau": float(bounded.params["w.tau"])}
    for label, m in (("v2", model), ("v3", bounded)):
        t0 = time.perf_counter()
        rep = nvt_check(m, eos.lattice, eos.a0, temperature, steps=steps, n_seeds=seeds)
        runs = rep["plot"]["runs"]
        out[label] = {"passed": rep["passed"], "detail": rep["detail"], "engine": rep["plot"].get("engine"),
                      "survived": sum(r["lost"] is None for r in runs), "lost": [r["lost"] for r in runs],
                      "max_temperature": max(max(r["temperature"]) for r in runs),
                      "seconds": time.perf_counter() - t0}
        print(f"{label}: {out[label]['survived']}/{seeds} seeds kept every atom; {rep['detail']}", flush=True)
    return out


def markdown(results: dict) -> str:
    lines = ["# Hot NVT with and without the lower bound of the fitted energy (format v3)", "",
             "`benchmarks/bound_nvt.py` (docstring: what it runs). Each row: a format v2 model, and the same "
             "model in format v3 with w.e_min the lowest fitted site energy over the data's atoms; NVT of 128 "
             "atoms through the C core, Langevin, 1 fs steps, at 1.1 × the data's hottest temperature.", "",
             "| name | model | T [K] | e_min, E_ref [eV] | v2: seeds kept | v2 hottest [K] | v3: seeds kept | "
             "v3 hottest [K] | model from | command |",
             "|---|---|--:|---|--:|--:|--:|--:|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | `{r['expression']}` (`{r['model']}`) | {r['temperature']:.0f} | "
                     f"{r['e_min']:.3f}, {r['e_ref']:.3f} | {r['v2']['survived']}/{r['seeds']} | "
                     f"{r['v2']['max_temperature']:.0f} | {r['v3']['survived']}/{r['seeds']} | "
                     f"{r['v3']['max_temperature']:.0f} | {r.get('note', '')} | `{r['command']}` |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="parameter file of format v2 (one species)")
    ap.add_argument("--data", nargs="+", required=True, help="the model's training data (files or folders)")
    ap.add_argument("--name", help="row name (default: the model file's parent folder)")
    ap.add_argument("--note", default="", help="how the model was made (a cell of the table)")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--out", default=str(RESULTS / "bound_nvt.json"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    name = args.name or Path(args.model).resolve().parent.name
    results = json.loads(out.read_text()) if out.exists() else {}
    row = run(args.model, args.data, args.seeds, args.steps)
    row["note"] = args.note
    row["command"] = "python benchmarks/bound_nvt.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results[name] = row
    atomic_write_json(out, results)
    atomic_write_text(out.with_suffix(".md"), markdown(results))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
