"""Adaptive design loop (paper Fig. 1, Sec. IV.3–IV.4, TABLE 6; MODEL_SPEC §8).

1. Scan single-term configurations (linear G and C models of growing basis
   size K, exponentiated E[G<K>L<L>], neighbouring N[E[...]], angular
   A[G<K>P<P>]), each with the ZBL core, with one trainer and one split.
2. Compose dual-term models from the best single terms: G*G, G*E, E+N, G+A, E+A.
3. Judge every candidate by the four validation RMSEs together with the FIM
   condition number κ (total and per term) and the number of eigenvalues in
   the significant-correlations region, plus the physical sanity checks.
4. Choose by the stated rule (the paper's rule of thumb): among the candidates
   that pass the sanity checks (all, if none does), those whose validation
   force RMSE is within ``tolerance`` of the best are "similar"; of these the
   one with the fewest parameters wins, ties broken by the lowest log10 κ.

Every finished candidate is stored in ``DIR/candidates/`` (JSON + parameter
file), so an interrupted design resumes where it stopped; candidates run as
Dask tasks (:mod:`compot.execution`), a lost worker's candidate rerun by the scheduler.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from pathlib import Path

from .expression import Angular, Linear, NeighbourExponentiated, parse
from .settings import DEFAULT_SINGLE_TERMS, DesignSettings

log = logging.getLogger(__name__)

__all__ = ["DesignSettings", "run_design", "DEFAULT_SINGLE_TERMS", "choose"]

COLUMNS = ["configuration", "linear", "nonlinear", "log10_kappa_total", "log10_kappa_left", "log10_kappa_right",
           "n_significant", "rmse_energy_per_atom", "rmse_force", "rmse_force_amplitude", "rmse_force_angle",
           "sanity_passed", "fit_seconds", "stage"]


def _safe(expr: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in expr).strip("_")


def _with_zbl(expr: str, zbl: str | None) -> str:
    return f"{expr} + {zbl}" if zbl else expr


def evaluate_candidate(job: dict) -> dict:
    """Fit one candidate and evaluate it (runs in a worker process)."""
    import numpy as np

    from .analysis import fim_analysis
    from .evaluation import evaluate_split
    from .io import write_model
    from .pipeline import train as fit_model
    from .recipe import build_model
    from .sanity import sanity_report
    from .settings import FitSettings

    np.seterr(over="ignore", under="ignore")
    train, val = job["train"], job["validation"]
    settings = FitSettings.from_dict(job["fit"])
    model = build_model(job["expression"], job["species"], job["recipe"])
    _, seconds = fit_model(model, train, settings)
    metrics, _, _, _ = evaluate_split(model, val if val else train)
    row = {"configuration": job["configuration"], "expression": model.expression, "stage": job["stage"],
           "linear": model.n_linear, "nonlinear": model.n_nonlinear, "fit_seconds": seconds}
    row.update({k: metrics[k] for k in ("rmse_energy_per_atom", "rmse_force", "rmse_force_amplitude",
                                        "rmse_force_angle")})
    try:
        fim = fim_analysis(model, train, bits=job["fim_bits"], settings=settings)["ours"]
        row["log10_kappa_total"] = fim.log10_condition_number
        row["n_significant"] = fim.n_significant
        blocks = fim.blocks
        row["log10_kappa_left"] = blocks["left"].log10_condition_number if "left" in blocks else None
        row["log10_kappa_right"] = blocks["right"].log10_condition_number if "right" in blocks else None
    except Exception as exc:  # noqa: BLE001 - a failed analysis must not lose the fit; recorded in the row
        row.update(log10_kappa_total=None, n_significant=None, log10_kappa_left=None, log10_kappa_right=None,
                   fim_error=f"{type(exc).__name__}: {exc}")
    row["sanity_passed"] = None
    if job["sanity"]:
        rep = sanity_report(model, job.get("lattice", "auto"), data=train, n_seeds=1,
                            nvt_steps=job.get("nvt_steps", 2000))
        row["sanity_passed"] = bool(rep["passed"])
        row["sanity_failed"] = [k for k, v in rep["checks"].items() if v["passed"] is False]
    path = Path(job["out"]) / "candidates" / f"{_safe(job['configuration'])}.params"
    write_model(model, path)
    row["params_file"] = str(path)
    for k, v in list(row.items()):
        if isinstance(v, float) and not math.isfinite(v):
            row[k] = None if math.isnan(v) else v
    return row


def compose(rows: list[dict], kinds: list) -> list[str]:
    """Dual-term configurations from the best single terms of each family."""
    def best(family):
        cands = [r for r in rows if r["stage"] == "single" and family(parse(r["configuration"]))]
        cands.sort(key=lambda r: r["rmse_force"])
        return [parse(r["configuration"]) for r in cands]

    G = best(lambda t: t.symbol == "G")
    E = best(lambda t: t.symbol == "E")
    A = best(lambda t: t.symbol == "A")
    out = []
    if "G*G" in kinds and G:
        out.append(f"{G[0]} * {G[1] if len(G) > 1 else G[0]}")
    if "G*E" in kinds and G and E:
        out.append(f"{G[0]} * {E[0]}")
    if "E+N" in kinds and E:
        out.append(f"{E[0]} + {NeighbourExponentiated(E[0].basis, E[0].L)}")
    if "G+A" in kinds and A:
        out.append(f"{Linear(A[0].basis)} + {A[0]}")
    if "E+A" in kinds and E and A:
        out.append(f"{E[0]} + {Angular(E[0].basis, A[0].P)}")
    seen, uniq = set(), []
    for c in out:
        if c not in seen:
            seen.add(c)
            uniq.append(c)
    return uniq


def choose(rows: list[dict], tolerance: float) -> tuple[dict | None, str]:
    """Apply the selection rule; returns (row, the rule as a sentence)."""
    ok = [r for r in rows if r.get("rmse_force") is not None]
    if not ok:
        return None, "no candidate finished"
    sane = [r for r in ok if r.get("sanity_passed")]
    pool = sane or ok
    best_f = min(r["rmse_force"] for r in pool)
    similar = [r for r in pool if r["rmse_force"] <= (1 + tolerance) * best_f]
    similar.sort(key=lambda r: (r["linear"] + r["nonlinear"],
                                r["log10_kappa_total"] if r.get("log10_kappa_total") is not None else math.inf))
    rule = (f"among the {'candidates passing the physical sanity checks' if sane else 'candidates (none passed the sanity checks)'}"
            f", those with validation force RMSE within {100 * tolerance:.0f} % of the best "
            f"({best_f:.4f} eV/Å) are similar ({len(similar)}); the one with the fewest parameters "
            "wins, ties broken by the lowest log10 κ (paper Sec. IV.3: prefer the smallest basis and the lowest κ)")
    return similar[0], rule


def _fmt(v, digits=4):
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def table_markdown(rows: list[dict]) -> str:
    head = ("| configuration | linear | nonlinear | log10 κ total | left | right | SC | E RMSE [meV/atom] | "
            "F RMSE [eV/Å] | \\|F\\| RMSE [eV/Å] | angle RMSE [rad] | sane |")
    out = [head, "|" + "---|" * 12]
    for r in rows:
        e = r.get("rmse_energy_per_atom")
        out.append(f"| `{r['configuration']}` | {r['linear']} | {r['nonlinear']} | {_fmt(r.get('log10_kappa_total'))} "
                   f"| {_fmt(r.get('log10_kappa_left'))} | {_fmt(r.get('log10_kappa_right'))} "
                   f"| {_fmt(r.get('n_significant'))} | {_fmt(None if e is None else 1000 * e)} "
                   f"| {_fmt(r.get('rmse_force'))} | {_fmt(r.get('rmse_force_amplitude'))} "
                   f"| {_fmt(r.get('rmse_force_angle'))} | {_fmt(r.get('sanity_passed'))} |")
    return "\n".join(out)


def run_design(cfg: dict, base: Path, out: Path, progress=print, steps=None, client=None) -> dict:
    """Run the adaptive loop described in the module docstring.

    Parameters
    ----------
    cfg : checked configuration (sections model, data, fit, design)
    base : folder relative paths of the configuration refer to
    out : output folder (``design.csv``, ``design.md``, plots, ``candidates/``)
    progress : callable(str) receiving one line per event
    steps : callable(task, done, total, note), optional — candidates finished of
        each stage, for a progress bar with an ETA (:mod:`compot.progress`); the note
        names the last candidate and how many run
    client : distributed.Client, optional — where the candidates run, one task each;
        default: :func:`compot.execution.client_for` of ``cfg["execution"]`` (a
        LocalCluster of ``design.processes`` workers unless ``execution.workers``), closed
        at the end

    Returns
    -------
    dict with ``rows``, ``chosen`` and ``rule``.
    """
    from .io import atomic_write_json, atomic_write_text
    from .pipeline import load_splits
    from .plots import plot_design
    from .recipe import derive_settings

    ds = DesignSettings.from_dict(cfg.get("design") or {})
    if client is None:
        from .execution import client_for
        ex = cfg.get("execution") or {}
        with client_for(ex.get("scheduler"), ex.get("workers") or ds.processes) as own:
            return run_design(cfg, base, out, progress, steps, own)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    d = cfg["data"]
    splits = load_splits(cfg, base, test=False)
    species, train, val = splits.species, splits.train, splits.validation
    recipe, fit_cfg = derive_settings(cfg["model"], cfg["fit"], train, species)
    atomic_write_json(out / "derived.json", recipe.to_json(), indent=2)
    (out / "candidates").mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    rows: list[dict] = []

    def job(conf: str, stage: str) -> dict:
        return {"configuration": conf, "expression": _with_zbl(conf, ds.zbl), "stage": stage,
                "species": species, "recipe": recipe, "fit": dict(fit_cfg),
                "train": train, "validation": val, "fim_bits": ds.fim_bits, "sanity": ds.sanity,
                "lattice": recipe.lattices[species[0]].kind if species[0] in recipe.lattices else "bcc",
                "out": str(out)}

    def run_stage(confs: list[str], stage: str) -> None:
        todo = []
        for c in confs:
            done = out / "candidates" / f"{_safe(c)}.json"
            if done.exists():
                rows.append(json.loads(done.read_text()))
                progress(f"[{stage}] {c}: resumed from {done}")
            else:
                todo.append(c)
        if not todo:
            return
        if steps:
            steps(f"design: {stage} terms", 0, len(todo), f"{min(len(todo), n_workers)} running")
        from distributed import as_completed

        # pure=False: a candidate is fitted again when asked again (the files in candidates/ are
        # the cache); a worker lost mid-candidate has the task rerun elsewhere by the scheduler
        futures = {client.submit(evaluate_candidate, job(c, stage), key=f"candidate-{_safe(c)}-{stage}",
                                 pure=False): c for c in todo}
        try:
            for k, fut in enumerate(as_completed(futures), start=1):
                c = futures[fut]
                try:
                    row = fut.result()
                except Exception as exc:  # noqa: BLE001 - one failed candidate must not stop the design
                    row = {"configuration": c, "stage": stage, "error": f"{type(exc).__name__}: {exc}",
                           "linear": None, "nonlinear": None, "rmse_force": None}
                    progress(f"[{stage} {k}/{len(todo)}] {c}: FAILED {row['error']}")
                else:
                    kappa = row.get("log10_kappa_total")
                    progress(f"[{stage} {k}/{len(todo)}] {c}: {row['linear']}+{row['nonlinear']} params, "
                             f"F RMSE {row['rmse_force']:.4f} eV/Å, E RMSE {1000 * row['rmse_energy_per_atom']:.2f} "
                             f"meV/atom, log10 κ {kappa if kappa is None else round(kappa, 2)}, "
                             f"sanity {_fmt(row.get('sanity_passed'))}  ({time.perf_counter() - t_start:.0f} s)")
                atomic_write_json(out / "candidates" / f"{_safe(c)}.json", row)
                rows.append(row)
                if steps:
                    running = sum(1 for f in futures if f.status == "pending")
                    steps(f"design: {stage} terms", k, len(todo), f"{c}; {min(running, n_workers)} running")
        finally:
            for fut in futures:
                fut.cancel()

    progress(f"design: {len(ds.single_terms)} single terms, then {', '.join(ds.compositions)}; "
             f"core {ds.zbl}; {n_workers} Dask workers; {len(train)} training / {len(val)} validation configurations")
    run_stage(ds.single_terms, "single")
    duals = compose([r for r in rows if r.get("rmse_force") is not None], ds.compositions)
    run_stage(duals, "dual")
    rows = [r for r in rows if r.get("linear") is not None] + [r for r in rows if r.get("linear") is None]
    chosen, rule = choose(rows, ds.tolerance)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    atomic_write_text(out / "design.csv", buf.getvalue())
    plots = plot_design([r for r in rows if r.get("linear") is not None], chosen, out)
    seconds = time.perf_counter() - t_start
    md = [f"# compot design on {', '.join(map(str, d['train']))}", "",
          f"Every candidate carries the core `{ds.zbl}`; one split ({len(train)} training, {len(val)} validation "
          f"configurations), one trainer ({cfg['fit'] or 'default settings'}); RMSEs on the validation set; κ of the "
          f"FIM w.r.t. the linear parameters on the training set ({ds.fim_bits}-bit eigenvalues); "
          f"wall time {seconds / 60:.1f} min.", "",
          table_markdown(rows), "",
          f"**Chosen:** `{chosen['configuration'] if chosen else '—'}`.", "", f"Rule: {rule}.", ""]
    md += [f"![{p.stem}]({p.name})" for p in plots]
    atomic_write_text(out / "design.md", "\n".join(md) + "\n")
    summary = {"rows": rows, "chosen": chosen, "rule": rule, "seconds": seconds}
    atomic_write_json(out / "design.json", summary)
    return summary
