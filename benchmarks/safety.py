"""Safety benchmark (MODEL_SPEC §10): a model judged where it was not fitted.

One model:

    .venv/bin/python benchmarks/safety.py MODEL.params --data PATH [PATH ...] \
        [--name NAME] [--seeds 4] [--steps 2000] [--out benchmarks/results]

Datasets, each fitted with the default recipe first:

    .venv/bin/python benchmarks/safety.py --fit NAME=PATH[,PATH ...] [NAME=... ...] \
        [--baseline NAME=F_RMSE|NAME=BASELINE/metrics.json ...] [--runs runs/safety] \
        [--name safety] [--seeds 4] [--steps 2000] [--out benchmarks/results]

For the data (any dataset path compot reads), what compot.derive finds —
ground-state lattice, Vinet a0, E0, B, B', the shortest pair distance of every
species pair, the cutoff and window rules, and the hottest temperature (from the
equipartition identity with this model's Hessian) — and then every check of
compot.sanity with ``--seeds`` independent NVT runs (the fit and design loops use
one): E–V from 0.5 to 1.5 a0, one atom pushed toward a neighbour down to 0.5 Å,
every dimer, NVT through the C core at 1.1 × the hottest temperature.

With a model: writes ``safety_<name>.json``, ``safety_<name>.md`` and one plot per
check (``safety_<name>_<check>.png``) into ``--out``.

With ``--fit``: for every NAME=PATHS (comma-separated files or folders, shell-style
patterns allowed) the default recipe ``compot fit --data PATHS --species X --out
RUNS/NAME --allow-unsafe`` (X: the species of the data; a folder whose model and
metrics exist is reused, an unfinished fit resumes from its checkpoint), then the
checks; writes one ``safety.md`` (``--name``.md; a table of every dataset: what the recipe derived,
validation errors, the first-release baseline's validation force RMSE and the ratio,
every check with its detail, NVT seeds survived and the engine that ran them; then a
section per dataset), ``safety.json`` (``--name``.json) and the plots ``safety_<NAME>_<check>.png``.
``--baseline NAME=VALUE``: a validation force RMSE [eV/Å], or the metrics.json of a
baseline fit (its config.yaml next to it is summarised in safety.md).

Exit status 1 when a check fails (with ``--fit``: also when a fit fails).
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from compot import derive
from compot.data import default_data_dir, read_dataset
from compot.io import atomic_write_json, atomic_write_text, read_model
from compot.plots import plot_sanity
from compot.sanity import failed_checks, format_sanity, sanity_report

log = logging.getLogger("safety")

#: The "done when" criterion of the issue "Safe by construction on any element".
MAX_RATIO = 1.05

#: How the first-release baselines of ``--baseline`` are produced (written into safety.md).
BASELINE_HOW = """\
The baseline is the first release's configuration, `examples/nb/config.yaml` at commit af1d2dd
(`E[G8L4] + A[G8P4] + ZBL(1.6, 2.4)`, r_c 4.4 Å, `zbl_anchor` {r_min 1.0, r_max 2.3, n 16, weight 1000},
per-atom energies with weight 1e4, `group_weights` {Nb_Elastic: 10}, a typed Nb `eos_anchor`,
30 + 20 evaluations, rcond 1e-10), with only species and data changed, fitted by the first-release
code on the same train/validation split (validation fraction 0.1, seed 0, same file order):

    git worktree add /tmp/compot_v1 af1d2dd
    PYTHONPATH=/tmp/compot_v1/fitting .venv/bin/python -m compot.cli fit CONFIG --out runs/safety_baseline/NAME
    git worktree remove /tmp/compot_v1

For the smaller lattices of Mo and W the cutoff, the ZBL window and the `zbl_anchor` range are scaled
by a0(X)/a0(Nb) (3.17/3.32 for Mo, 3.19/3.32 for W); Ta keeps Nb's numbers. The Nb `eos_anchor`
(typed Nb a0, E0, B) is dropped; `group_weights` names X_Elastic (none for mo-mlearn, a single file).
Nb's baseline is the shipped first-release figure, 0.0987 eV/Å (benchmarks/results/fit_nb.md), not refitted."""


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


def markdown(name, model_path, model, data_paths, derived, rep, seconds, seeds, steps, level=1) -> str:
    h = "#" * level
    lines = [f"{h} Safety benchmark: {name}", "",
             f"Model `{model_path}` (`{model.expression}`, species {', '.join(model.species)}, r_c {model.cutoff} Å); "
             f"data {', '.join(map(str, data_paths))}. NVT: {seeds} seed(s) × {steps} steps of 1 fs. "
             f"{seconds:.0f} s.", "", f"{h}# Derived from the data (compot.derive)", "",
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
              f"{h}# Checks (compot.sanity)", "", format_sanity(rep, markdown=True), ""]
    return "\n".join(lines)


def nvt_summary(rep) -> dict:
    """Seeds run and survived, and the engine, over every NVT check of a report."""
    runs, engines, target = [], [], None
    for c in rep["checks"].values():
        if c["plot"]["kind"] == "nvt":
            runs += c["plot"]["runs"]
            target = c["plot"].get("target")
            if c["plot"].get("engine"):
                engines.append(c["plot"]["engine"])
    hottest = max((max(r["temperature"], default=0.0) for r in runs), default=None)
    return {"seeds": len(runs), "survived": sum(r["lost"] is None for r in runs),
            "engine": ", ".join(sorted(set(engines))) or None, "target": target,
            "max_kinetic_temperature": hottest, "lost": {str(r["seed"]): r["lost"] for r in runs if r["lost"]}}


def shrink_png(path: Path, colors: int = 64) -> None:
    """Rewrite a plot with a 64-colour palette (about a third of the size; the results are committed)."""
    from PIL import Image
    tmp = path.with_name(f".{path.name}.tmp.png")
    with Image.open(path) as im:
        im.convert("RGB").quantize(colors=colors).save(tmp, optimize=True)
    tmp.replace(path)


def check_model(model, model_path, data, data_paths, name, out: Path, seeds: int, steps: int, level=1):
    """derive's numbers, every sanity check and the plots of one model: (json document, markdown, report)."""
    t0 = time.perf_counter()
    derived = derived_numbers(data, model)
    rep = sanity_report(model, "auto", data=data, n_seeds=seeds, nvt_steps=steps)
    seconds = time.perf_counter() - t0
    plots = plot_sanity(rep, out / f"safety_{name}.png", f"{name}: {model.expression}")
    for f in plots:
        shrink_png(f)
    doc = {"name": name, "model": str(model_path), "data": list(map(str, data_paths)), "seeds": seeds,
           "steps": steps, "seconds": seconds, "derived": derived, "passed": rep["passed"],
           "checks": {k: {"passed": c["passed"], "detail": c["detail"]} for k, c in rep["checks"].items()},
           "nvt": nvt_summary(rep), "elements": rep["elements"], "temperature": rep["temperature"],
           "plots": [p.name for p in plots]}
    md = markdown(name, model_path, model, data_paths, derived, rep, seconds, seeds, steps, level)
    return doc, md, rep


# ------------------------------------------------------------ --fit: datasets
def dataset_paths(spec: str) -> tuple[str, list[str]]:
    """NAME=PATH[,PATH ...] → (NAME, paths); shell-style patterns are expanded (sorted)."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise SystemExit(f"safety.py: --fit {spec!r}: expected NAME=PATH[,PATH ...]")
    paths = []
    for p in rest.split(","):
        found = sorted(glob.glob(p)) if glob.has_magic(p) else [p]
        if not found:
            raise SystemExit(f"safety.py: --fit {name}: nothing matches {p}")
        paths += found
    return name, paths


def read_baseline(spec: str) -> tuple[str, dict]:
    """NAME=F_RMSE or NAME=PATH/metrics.json → (NAME, {rmse_force, source, ...})."""
    name, _, value = spec.partition("=")
    try:
        return name, {"rmse_force": float(value), "source": "given"}
    except ValueError:
        pass
    path = Path(value)
    m = json.loads(path.read_text())
    out = {"rmse_force": m["validation"]["rmse_force"],
           "rmse_energy_per_atom": m["validation"]["rmse_energy_per_atom"], "source": str(path),
           "expression": m.get("expression"), "cutoff": m.get("cutoff"), "fit_seconds": m.get("fit_seconds")}
    cfg = path.with_name("config.yaml")
    if cfg.exists():
        import yaml
        c = yaml.safe_load(cfg.read_text())
        out["config"] = {"train": c["data"]["train"], **{k: c["fit"].get(k) for k in
                         ("zbl_anchor", "eos_anchor", "group_weights", "energy_weight", "max_evaluations")}}
    return name, out


def fit_dataset(name: str, paths: list[str], species: list[str], run: Path) -> dict:
    """The default recipe's fit of one dataset (reused when its model and metrics exist)."""
    exe = Path(sys.executable).with_name("compot")
    cmd = ([str(exe)] if exe.exists() else [sys.executable, "-m", "compot.cli"]) + \
        ["fit", "--data", *paths, "--species", *species, "--out", str(run), "--allow-unsafe"]
    info = {"command": " ".join(cmd), "folder": str(run), "reused": False, "returncode": 0, "wall_seconds": None}
    model_file, metrics_file, record = run / "model.params", run / "metrics.json", run / "safety_fit.json"
    done = model_file.exists() and metrics_file.exists() and "validation" in json.loads(metrics_file.read_text())
    if done:
        if record.exists():
            info.update({k: v for k, v in json.loads(record.read_text()).items() if k != "reused"})
        info["reused"] = True
        log.info("%s: reusing the fit in %s", name, run)
    else:
        run.mkdir(parents=True, exist_ok=True)
        log.info("%s: %s (log %s)", name, info["command"], run / "fit.log")
        t0 = time.perf_counter()
        with open(run / "fit.log", "a") as fh:
            info["returncode"] = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT).returncode
        info["wall_seconds"] = time.perf_counter() - t0
        atomic_write_json(record, info)
        if info["returncode"] != 0 or not model_file.exists():
            info["error"] = f"compot fit exited with status {info['returncode']}; see {run / 'fit.log'}"
            return info
    m = json.loads(metrics_file.read_text())
    info.update(fit_seconds=m.get("fit_seconds"), validation=m["validation"], train=m.get("train"),
                recipe=m.get("derived") or json.loads((run / "derived.json").read_text()),
                expression=m.get("expression"), cutoff=m.get("cutoff"))
    return info


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _f(x, fmt) -> str:
    return "—" if x is None else format(x, fmt)


def _check_cells(doc) -> dict:
    """{check kind: 'PASS/FAIL: detail'} (several species: one entry per element or pair, joined)."""
    cells: dict = {}
    for k, c in doc.get("checks", {}).items():
        base, _, label = k.partition(" ")
        mark = {True: "PASS", False: "**FAIL**", None: "SKIP"}[c["passed"]]
        cells.setdefault(base, []).append(f"{mark}{' ' + label if label else ''}: {c['detail']}")
    return {k: "<br>".join(v) for k, v in cells.items()}


def nvt_cell(nvt: dict) -> str:
    """'4/4 (max 7,100 K = 1.2 × target)': seeds survived and the hottest kinetic temperature of any run
    (sampled every 10 steps; a run is lost above 5 × the target)."""
    if not nvt or not nvt.get("seeds"):
        return "—"
    t, hot = nvt.get("target"), nvt.get("max_kinetic_temperature")
    extra = f" (max {hot:,.0f} K = {hot / t:.1f} × target)" if t and hot else ""
    return f"{nvt['survived']}/{nvt['seeds']}{extra}"


def summary_table(rows: list[dict]) -> list[str]:
    kinds = ["energy_volume", "push", "dimer", "nvt"]
    head = ["dataset", "species", "lattice, a0 (EOS) [Å]", "r_c [Å]", "inner window [Å]", "ZBL window [Å]",
            "val. F RMSE [eV/Å]", "val. E RMSE [meV/atom]", "baseline F RMSE [eV/Å]", "F ratio",
            "E–V 0.5–1.5 a0", "push", "dimers", "NVT (1.1 × hottest T)", "NVT seeds survived", "NVT engine",
            "fit / checks [s]", "done"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        fit, rec = r["fit"], r["fit"].get("recipe") or {}
        lat = "<br>".join(f"{s}: {l['kind']} {rec.get('equation_of_state', {}).get(s, l)['a0']:.4f}"
                          for s, l in rec.get("lattices", {}).items())
        win = "<br>".join(f"{p}: [{w[0]:.2f}, {w[1]:.2f}]" for p, w in rec.get("inner_window", {}).items())
        zbl = "[%.2f, %.2f]" % tuple(rec["zbl_window"]) if rec.get("zbl_window") else "—"
        val = fit.get("validation") or {}
        f, e = val.get("rmse_force"), val.get("rmse_energy_per_atom")
        base = r.get("baseline", {}).get("rmse_force")
        ratio = f / base if f is not None and base else None
        checks = _check_cells(r)
        nvt = r.get("nvt") or {}
        t_fit = fit.get("wall_seconds") or fit.get("fit_seconds")
        times = f"{_f(t_fit, '.0f')} / {_f(r.get('seconds'), '.0f')}"
        lines.append("| " + " | ".join(_cell(x) for x in [
            r["name"], ", ".join(r["species"]), lat or "—", _f(fit.get("cutoff"), ".3f"), win or "—", zbl,
            _f(f, ".4f"), _f(e and 1e3 * e, ".2f"), _f(base, ".4f"), _f(ratio, ".3f"),
            *[checks.get(k, "—") for k in kinds],
            nvt_cell(nvt), nvt.get("engine") or "—", times,
            {True: "yes", False: "**no**"}[r["done"]]]) + " |")
    return lines


def fit_mode(args, out: Path) -> int:
    baselines = dict(read_baseline(b) for b in args.baseline or [])
    runs = Path(args.runs)
    rows, sections, status = [], [], 0
    t_all = time.perf_counter()
    for spec in args.fit:
        name, paths = dataset_paths(spec)
        data = read_dataset(paths)
        species = sorted({s for c in data for s in c.symbols})
        row = {"name": name, "data": paths, "species": species, "baseline": baselines.get(name, {})}
        row["fit"] = fit_dataset(name, paths, species, runs / name)
        if "error" in row["fit"]:
            log.error("%s: %s", name, row["fit"]["error"])
            row["done"], status = False, 1
            rows.append(row)
            continue
        model_path = runs / name / "model.params"
        model = read_model(model_path)
        doc, md, rep = check_model(model, model_path, data, paths, name, out, args.seeds, args.steps, level=2)
        row.update(doc)
        row["data"], row["name"] = paths, name
        f, base = row["fit"]["validation"]["rmse_force"], row["baseline"].get("rmse_force")
        row["force_ratio"] = f / base if base else None
        nvt = row["nvt"]
        # without a baseline (a new dataset) only the checks decide
        row["done"] = bool(not failed_checks(rep) and nvt["seeds"] and nvt["survived"] == nvt["seeds"]
                           and (base is None or row["force_ratio"] <= MAX_RATIO))
        if failed_checks(rep):
            status = 1
        rows.append(row)
        sections.append(md)
        print(f"{name}: " + format_sanity(rep).replace("\n", f"\n{name}: "), flush=True)
        write_fit_results(args, out, rows, sections, time.perf_counter() - t_all)
    write_fit_results(args, out, rows, sections, time.perf_counter() - t_all)
    print("\n".join(summary_table(rows)))
    stem = args.name or "safety"
    print(f"wrote {out / f'{stem}.md'}, {out / f'{stem}.json'} and the plots safety_<dataset>_<check>.png")
    return status


def write_fit_results(args, out: Path, rows, sections, seconds) -> None:
    """safety.md and safety.json of every dataset so far (written after each, atomically)."""
    cmd = " ".join(["benchmarks/safety.py", *sys.argv[1:]]).replace(str(default_data_dir().resolve()), "$COMPOT_DATA")
    lines = ["# Safety benchmark: the default recipe on every dataset", "",
             f"`{cmd}` ({seconds / 60:.0f} min). For each dataset the default recipe (`compot fit --data PATHS "
             f"--species X --out {args.runs}/NAME --allow-unsafe`, no configuration: every setting derived from "
             f"the training data, docs/fitting.md), then every check of compot.sanity on the whole dataset with "
             f"{args.seeds} NVT seeds × {args.steps} steps of 1 fs. Done when every check passes, NVT survives "
             f"in every seed, and the validation force RMSE is within {100 * (MAX_RATIO - 1):.0f} % of the "
             f"first release's configuration on the same split (F ratio ≤ {MAX_RATIO}; a dataset without a "
             f"baseline: the checks alone).", "",
             *summary_table(rows), "",
             "Lattice and a0: the ground-state lattice the recipe detected and the a0 of its Vinet equation of "
             "state (training split); r_c, inner and ZBL windows: as derived by the recipe and used in the model. "
             "NVT seeds survived: with the hottest kinetic temperature any run reached (every 10 steps; "
             "a run is lost above 5 × the target, at a pair closer than 1 Å or at a non-finite energy). "
             "Fit time: wall time of `compot fit` when this script ran it (recorded in NAME/safety_fit.json and "
             "kept when the fit is reused), else the optimisation time of its metrics.json; checks: "
             "compot.derive on the whole dataset plus every sanity check.", "",
             "## Baselines", "", BASELINE_HOW, "",
             "| dataset | source | expression | r_c [Å] | zbl_anchor | group_weights | eos_anchor | "
             "val. F RMSE [eV/Å] | val. E RMSE [meV/atom] |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = r.get("baseline") or {}
        c = b.get("config") or {}
        e = b.get("rmse_energy_per_atom")
        lines.append("| " + " | ".join(_cell(x) for x in [
            r["name"], f"`{b['source']}`" if b.get("source") not in (None, "given") else b.get("source", "—"),
            b.get("expression") or "—", _f(b.get("cutoff"), ".3f"), c.get("zbl_anchor") or "—",
            c.get("group_weights") or "—", c.get("eos_anchor") or "—", _f(b.get("rmse_force"), ".4f"),
            _f(e and 1e3 * e, ".2f")]) + " |")
    lines += ["", *sections]
    stem = args.name or "safety"
    atomic_write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    doc = {"command": cmd, "seeds": args.seeds, "steps": args.steps, "max_ratio": MAX_RATIO, "seconds": seconds,
           "baseline_how": BASELINE_HOW, "datasets": {r["name"]: r for r in rows}}
    atomic_write_json(out / f"{stem}.json", doc)


# ---------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", help="parameter file (or --fit)")
    p.add_argument("--data", nargs="+", help="training data files or folders of MODEL")
    p.add_argument("--name", help="result name (default: the model file's stem; with --fit: safety, "
                   "for NAME.md and NAME.json)")
    p.add_argument("--fit", nargs="+", metavar="NAME=PATHS",
                   help="datasets to fit with the default recipe and check: NAME=PATH[,PATH ...]")
    p.add_argument("--baseline", nargs="+", metavar="NAME=VALUE",
                   help="first-release baseline of a dataset: validation F RMSE [eV/Å] or a fit's metrics.json")
    p.add_argument("--runs", default="runs/safety", help="fit folders of --fit (default runs/safety)")
    p.add_argument("--seeds", type=int, default=4, help="NVT runs per element (default 4)")
    p.add_argument("--steps", type=int, default=2000, help="NVT steps of 1 fs (default 2000)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args(argv)
    if bool(args.model) == bool(args.fit) or (args.model and not args.data):
        p.error("give either MODEL --data PATH ... or --fit NAME=PATHS ...")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.fit:
        return fit_mode(args, out)
    model = read_model(args.model)
    name = args.name or Path(args.model).stem
    data = read_dataset(args.data, species=list(model.species))
    doc, md, rep = check_model(model, args.model, data, args.data, name, out, args.seeds, args.steps)
    atomic_write_json(out / f"safety_{name}.json", doc)
    atomic_write_text(out / f"safety_{name}.md", md)
    print(format_sanity(rep))
    print(f"wrote {out / f'safety_{name}.json'}, {out / f'safety_{name}.md'} and {len(doc['plots'])} plots")
    return 0 if not failed_checks(rep) else 1


if __name__ == "__main__":
    sys.exit(main())
