"""Safety benchmark (MODEL_SPEC §10): a model judged where it was not fitted.

    .venv/bin/python benchmarks/safety.py MODEL.params --data PATH [PATH ...] \
        [--name NAME] [--seeds 4] [--steps 2000] [--out benchmarks/results]

For the data (any dataset path compot reads), what compot.derive finds —
ground-state lattice, Vinet a0, E0, B, B', the shortest pair distance of every
species pair, the cutoff and window rules, and the hottest temperature (from the
equipartition identity with this model's Hessian) — and then every check of
compot.sanity with ``--seeds`` independent NVT runs (the fit and design loops use
one): E–V from 0.5 to 1.5 a0, one atom pushed toward a neighbour down to 0.5 Å,
every dimer, NVT through the C core at 1.1 × the hottest temperature.

Writes ``safety_<name>.json``, ``safety_<name>.md`` and one plot per check
(``safety_<name>_<check>.png``) into ``--out``. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from compot import derive
from compot.data import read_dataset
from compot.io import atomic_write_text, read_model
from compot.sanity import failed_checks, format_sanity, plot_sanity, sanity_report

log = logging.getLogger("safety")


def derived_numbers(data, model) -> dict:
    """What compot.derive gives on the data, per element and species pair."""
    species = list(model.species)
    out = {"elements": {}, "pairs": {}}
    lattices = {}
    for s in species:
        row = {}
        try:
            lat = derive.detect_lattice(data, s)
            lattices[s] = lat
            row.update(lattice=lat.kind, c_over_a=lat.c_over_a)
            eos = derive.equation_of_state(data, s, lat)
            lattices[s] = eos.lattice
            row.update(a0=eos.a0, e0=eos.e0, bulk_modulus=eos.bulk_modulus, bulk_modulus_error=eos.uncertainty
                       .get("bulk_modulus"), b_prime=eos.b_prime, eos_sources=eos.sources,
                       cutoff=derive.default_cutoff(eos.lattice))
        except derive.DeriveError as exc:
            row["error"] = str(exc)
        out["elements"][s] = row
    d_min = derive.shortest_pair_distances(data, species)
    win = derive.default_windows(d_min, {s: l.d_nn for s, l in lattices.items()} or None)
    for p, d in d_min.items():
        out["pairs"][f"{p[0]}-{p[1]}"] = {"d_min": d, "inner_window": win["inner"][p]}
    out["zbl_window"] = win["zbl"]
    try:
        out["hottest_temperature"] = derive.hottest_temperature(data, model)
    except derive.DeriveError as exc:
        out["hottest_temperature"] = None
        out["hottest_temperature_error"] = str(exc)
    return out


def markdown(name, model_path, model, data_paths, derived, rep, seconds, seeds, steps) -> str:
    lines = [f"# Safety benchmark: {name}", "",
             f"Model `{model_path}` (`{model.expression}`, species {', '.join(model.species)}, r_c {model.cutoff} Å); "
             f"data {', '.join(map(str, data_paths))}. NVT: {seeds} seed(s) × {steps} steps of 1 fs. "
             f"{seconds:.0f} s.", "", "## Derived from the data (compot.derive)", "",
             "| element | lattice | a0 [Å] | E0 [eV/atom] | B [GPa] | B' | r_c rule [Å] |", "|---|---|---|---|---|---|---|"]
    for s, r in derived["elements"].items():
        if "error" in r:
            lines.append(f"| {s} | — | | | | | {r['error']} |")
            continue
        lines.append(f"| {s} | {r['lattice']} | {r['a0']:.4f} | {r['e0']:.4f} | {r['bulk_modulus']:.1f} "
                     f"± {r['bulk_modulus_error']:.1f} | {r['b_prime']:.2f} | {r['cutoff']:.2f} |")
    lines += ["", "| pair | d_min [Å] | inner window (r_a, r_b) [Å] |", "|---|---|---|"]
    for p, r in derived["pairs"].items():
        lines.append(f"| {p} | {r['d_min']:.3f} | {tuple(r['inner_window'])} |")
    t = derived.get("hottest_temperature")
    lines += ["", f"ZBL window (r_in, r_out): {tuple(derived['zbl_window'])} Å; hottest temperature of the data "
              f"(90 % quantile of the equipartition estimates with this model): "
              f"{'%.0f K' % t if t else derived.get('hottest_temperature_error')}.", "",
              "## Checks (compot.sanity)", "", format_sanity(rep, markdown=True), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="parameter file")
    p.add_argument("--data", nargs="+", required=True, help="training data files or folders")
    p.add_argument("--name", help="result name (default: the model file's stem)")
    p.add_argument("--seeds", type=int, default=4, help="NVT runs per element (default 4)")
    p.add_argument("--steps", type=int, default=2000, help="NVT steps of 1 fs (default 2000)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    model = read_model(args.model)
    name = args.name or Path(args.model).stem
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = read_dataset(args.data, species=list(model.species))
    t0 = time.perf_counter()
    derived = derived_numbers(data, model)
    rep = sanity_report(model, "auto", data=data, n_seeds=args.seeds, nvt_steps=args.steps)
    seconds = time.perf_counter() - t0
    plots = plot_sanity(rep, out / f"safety_{name}.png", f"{name}: {model.expression}")
    doc = {"name": name, "model": str(args.model), "data": list(map(str, args.data)), "seeds": args.seeds,
           "steps": args.steps, "seconds": seconds, "derived": derived, "passed": rep["passed"],
           "checks": {k: {"passed": c["passed"], "detail": c["detail"]} for k, c in rep["checks"].items()},
           "elements": rep["elements"], "temperature": rep["temperature"]}
    atomic_write_text(out / f"safety_{name}.json", json.dumps(doc, indent=1, default=str))
    atomic_write_text(out / f"safety_{name}.md",
                      markdown(name, args.model, model, args.data, derived, rep, seconds, args.seeds, args.steps))
    print(format_sanity(rep))
    print(f"wrote {out / f'safety_{name}.json'}, {out / f'safety_{name}.md'} and {len(plots)} plots")
    return 0 if not failed_checks(rep) else 1


if __name__ == "__main__":
    sys.exit(main())
