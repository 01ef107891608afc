"""Markdown report of a fit (``report.md``)."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from . import __version__
from .metrics import format_markdown_table
from .stress_check import consistency_markdown


def fit_report(model, metrics: dict, settings, cfg: dict, plots: list[Path],
               calibration: list[str] | None = None) -> str:
    """Readable summary: model, data, settings, stage history, errors, the uncertainty
    calibration on the validation split (``calibration``: the markdown lines of
    :func:`compot.uncertainty_report.fit_calibration`), plots."""
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# compot fit: `{model.expression}`", ""]
    if metrics.get("unsafe"):
        from .sanity import failed_checks
        failed = failed_checks(metrics.get("sanity", {}))
        lines += [f"**UNSAFE: this model failed {len(failed)} physical sanity check(s) (MODEL_SPEC §10); "
                  "do not use it for simulations.**", ""]
        lines += [f"- `{k}`: {v}" for k, v in failed.items()] + [""]
    lines += [f"compot {__version__}, {now}. Method: Wang et al., arXiv:2504.19372 (dual-bipartite training).", "",
             "## Model", "",
             f"- expression: `{model.expression}`",
             f"- species: {', '.join(model.species)}; cutoff r_c = {model.cutoff} Å"
             f" (influence distance {model.influence_distance} Å)",
             f"- parameters: {model.n_linear} linear + {model.n_nonlinear} nonlinear"
             f" = {model.n_linear + model.n_nonlinear}",
             "- parameter file: `model.params` (format v1, docs/parameter-file.md)", ""]
    nl = [b.name for b in model.layout.blocks if b.role == "nonlinear"]
    if nl:
        lines += ["| nonlinear parameter | value |", "|---|---|"]
        for n in nl:
            vals = model.params[n].ravel()
            lines.append(f"| `{n}` | {', '.join(f'{v:.6g}' for v in vals)} |")
        lines.append("")
    d = cfg["data"]
    lines += ["## Data", "",
              f"- training files: {', '.join(map(str, d['train']))}",
              f"- test files: {', '.join(map(str, d['test'])) or 'none'}",
              f"- validation fraction {d['validation_fraction']} (seed {d['seed']}), groups by {d['group_by']}", ""]
    for split in ("train", "validation", "test"):
        if split in metrics:
            m = metrics[split]
            lines.append(f"- {split}: {m['n_configurations']} configurations, {m['n_atoms']} atoms")
    if metrics.get("stress_check", {}).get("groups"):
        lines += ["", "### Do the stresses agree with the energies?", "",
                  "Pairs of the same atoms in strained cells: the DFT ΔE against ΔE_σ from the two stresses "
                  "(compot.stress_check); a group that disagrees can be left out of the stress loss with "
                  "`fit.stress_exclude`.", ""] + consistency_markdown(metrics["stress_check"])
    lines += ["", "## Training", "",
              f"- loss weights: energy {settings.energy_weight}, force {settings.force_weight}"
              f"{', energy per atom' if settings.energy_per_atom else ''}"
              f"{', groups ' + str(settings.group_weights) if settings.group_weights else ''}"
              f"{f', stress {settings.stress_weight} GPa⁻²' if settings.stress_weight else ''}"
              f"{', stress not fitted for ' + ', '.join(settings.stress_exclude) if settings.stress_exclude else ''}",
              f"- search box: {settings.bounds} (α searched in log space)",
              f"- {settings.max_evaluations} Bayesian-optimisation evaluations per search stage "
              f"({settings.init_points} random), seed {settings.seed}, ridge {settings.ridge}",
              f"- wall time {metrics.get('fit_seconds', 0):.1f} s", "",
              "| stage | kind | loss [eV²/row] | note |", "|---|---|---|---|"]
    for h in metrics.get("stages", []):
        note = ""
        if h.get("at_bound"):
            note = "on bound: " + ", ".join(h["at_bound"])
        elif "evaluations" in h:
            note = f"{h['evaluations']} evaluations"
        elif "sweeps" in h:
            note = f"{h['sweeps']} sweeps"
        lines.append(f"| {h['stage']} | {h['kind']} | {h['loss']:.6g} | {note} |")
    hot = metrics.get("hot_prior")
    if hot:
        from .sanity import QUENCH_TOL
        lines += ["", "### Hot-MD prior (compot.hot_prior)", "",
                  f"NVT of each element's crystal (and, for several species, of the random equiatomic "
                  f"alloy, whose e0 is the regular-solution floor of the data's binaries), {hot['steps']} fs "
                  "per run; snapshots below the "
                  "equipartition bound e0 + 3/2 k_B T by more than 3σ join the fit with that bound as "
                  f"their energy. {hot['added']} snapshots added; "
                  + ("the last round found none below the bound." if hot["converged"]
                     else "**the last round still found snapshots below the bound** (rounds exhausted)."), "",
                  "Quenched: snapshots relaxed at fixed cell; a local minimum more than "
                  f"{QUENCH_TOL * 1e3:g} meV/atom below e0 (the ground state) joins with e0 + "
                  f"{QUENCH_TOL * 1e3:g} meV/atom as its target. Quench column: each quenched energy − e0 "
                  "[eV/atom].", "",
                  "| round | cell | T [K] | bound [eV/atom] | lowest [eV/atom] | below | quenched − e0 | added |",
                  "|---|---|--:|--:|--:|--:|---|--:|"]
        for r in hot["rounds"]:
            for s, e in r["elements"].items():
                low = f"{e['lowest']:.4f}" if e.get("lowest") is not None else "-"
                quenched = ", ".join(f"{d:+.3f}" for _, d in e.get("quenched", [])) or "-"
                lines.append(f"| {r['round']} | {s} | {e['temperature']:.0f} | {e['bound']:.4f} | {low} | "
                             f"{e['below']} | {quenched} | {e['added']} |")
        lines += ["", "![hot_prior](hot_prior.png)"]
    rows = {k: metrics[k] for k in ("train", "validation", "test") if k in metrics}
    lines += ["", "## Errors", "", format_markdown_table(rows), ""]
    for split, groups in metrics.get("groups", {}).items():
        lines += [f"### {split} by group", "", format_markdown_table(groups), ""]
    lines += list(calibration or [])
    sanity_plots = [p for p in plots if Path(p).stem.startswith("sanity_")]
    other_plots = [p for p in plots if p not in sanity_plots and Path(p).stem not in ("calibration", "hot_prior")]
    if metrics.get("sanity", {}).get("checks"):
        from .sanity import format_sanity
        lines += ["## Physical sanity (MODEL_SPEC §9–10)", "", format_sanity(metrics["sanity"], markdown=True), ""]
        lines += [f"![{p.stem}]({p.name})" for p in sanity_plots] + [""]
    if other_plots:
        lines += ["## Parity plots", ""] + [f"![{p.stem}]({p.name})" for p in other_plots] + [""]
    return "\n".join(lines)
