"""The steps shared by ``compot fit`` and ``compot design``: data, recipe, fit, checks.

A fit runs in three steps, so that the command line can close its progress line
between them:

1. :func:`prepare_fit` reads and splits the data (:func:`load_splits`), derives the
   recipe's settings from the training split (:mod:`compot.recipe`) and writes
   ``config.yaml`` and ``derived.json``;
2. :func:`train` runs the dual-bipartite trainer (resumable from ``checkpoint.json``);
3. :func:`finish_fit` writes ``model.params``, evaluates every split, runs the
   physical sanity checks (MODEL_SPEC §9–10) and writes ``metrics.json``,
   ``report.md`` and the plots.

:func:`compot.design.run_design` uses :func:`load_splits` and :func:`train` for
every candidate. Nothing here prints: progress goes to callables and ``logging``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from .config import resolve_path
from .data import read_dataset, train_validation_split
from .errors import CompotError
from .evaluation import evaluate_split
from .stress_check import stress_energy_consistency
from .io import atomic_write_json, atomic_write_text, write_model
from .model import Model
from .recipe import Recipe, derive_settings, prepare
from .settings import FitSettings
from .trainer import Trainer

log = logging.getLogger(__name__)

__all__ = ["Splits", "FitRun", "FitContext", "fit_context", "read_data", "load_splits", "property_files", "sanity_with_plots",
           "train", "prepare_fit", "finish_fit"]


@dataclass
class Splits:
    """The configurations of one run.

    train, validation, test : list of :class:`compot.data.Configuration`
    species : list of str — the model's species (given, or those of the data, sorted)
    """

    train: list
    validation: list
    test: list
    species: list


@dataclass
class FitRun:
    """State of one ``compot fit`` between its steps (see the module docstring)."""

    cfg: dict
    base: Path
    out: Path
    splits: Splits
    model: Model
    settings: FitSettings
    recipe: Recipe
    seconds: float = 0.0
    history: list = field(default_factory=list)
    hot_prior: dict = field(default_factory=dict)


def read_data(paths, base: Path, species, min_distance: float, group_by: str | None,
              keys: dict | None = None) -> list:
    """Configurations of ``paths`` (files or folders; ``$COMPOT_DATA`` and relative
    paths resolved against ``base``, see :func:`compot.config.resolve_path`); ``keys``
    names energy, forces and stress in the files (:func:`compot.data.resolve_keys`).

    Raises
    ------
    DatasetError, SpeciesError
        As :func:`compot.data.read_dataset`.
    """
    return read_dataset([resolve_path(p, base) for p in paths], species=species,
                        min_distance=min_distance, group_by=group_by, keys=keys)


def load_splits(cfg: dict, base: Path, test: bool = True) -> Splits:
    """Read ``data.train`` and (with ``test``) ``data.test`` of a checked configuration
    and split the training data into training and validation sets
    (``data.validation_fraction``, ``data.seed``, per group).

    Raises
    ------
    CompotError
        When ``data.train`` is empty; the errors of :func:`read_data`.
    """
    d = cfg["data"]
    if not d["train"]:
        raise CompotError("no training data: give --data PATH or data.train in the configuration")
    species = cfg["model"]["species"]
    keys = d.get("keys")
    train_all = read_data(d["train"], base, species, d["min_distance"], d["group_by"], keys)
    test = read_data(d["test"], base, species, d["min_distance"], d["group_by"], keys) if test and d["test"] else []
    if species is None:
        species = sorted({s for c in train_all for s in c.symbols})
    train, validation = train_validation_split(train_all, float(d["validation_fraction"]), int(d["seed"]),
                                               str(d.get("validation", "random")))
    return Splits(train, validation, test, list(species))


def property_files(paths) -> tuple:
    """Elastic and surface files among data paths (the first file whose name contains
    'elastic' or 'surface'), as (elastic, surface); None where there is none."""
    elastic = surface = None
    for p in paths:
        p = Path(p)
        files = sorted(p.glob("*.extxyz")) + sorted(p.glob("*.xyz")) if p.is_dir() else [p]
        for f in files:
            low = f.name.lower()
            if "elastic" in low and elastic is None:
                elastic = f
            if "surface" in low and surface is None:
                surface = f
    return elastic, surface


def sanity_with_plots(model: Model, lattice: str, a0: float | None, elastic, surface, out_dir=None,
                      **kwargs) -> tuple[dict, list[Path]]:
    """:func:`compot.sanity.sanity_report` and, with ``out_dir``, its plots
    (``sanity_<check>.png``); returns (report, plot paths)."""
    from .plots import plot_sanity
    from .sanity import sanity_report
    rep = sanity_report(model, lattice, a0, elastic, surface, **kwargs)
    plots = plot_sanity(rep, Path(out_dir) / "sanity.png", model.expression) if out_dir else []
    return rep, plots


def train(model: Model, configs, settings: FitSettings, checkpoint: Path | None = None,
          progress: Callable | None = None, client=None) -> tuple[Trainer, float]:
    """Fit ``model`` in place to ``configs``; returns (the trainer, wall time [s]).
    With a Dask ``client`` the batches of the linear solves run on its workers.

    Raises
    ------
    FitError
        As :class:`compot.trainer.Trainer`.
    """
    trainer = Trainer(model, configs, settings, checkpoint=checkpoint, progress=progress, client=client)
    for i, st in enumerate(trainer.plan):
        log.info("plan %d: %s (%s)", i + 1, st.name, st.kind)
    t0 = time.perf_counter()
    trainer.fit()
    return trainer, time.perf_counter() - t0


def prepare_fit(cfg: dict, base: Path, out: Path) -> FitRun:
    """Step 1 of a fit: data, recipe and model; writes ``out/config.yaml`` (with the
    species filled in) and ``out/derived.json``."""
    splits = load_splits(cfg, base)
    out.mkdir(parents=True, exist_ok=True)
    cfg["model"]["species"] = splits.species
    model, fit_cfg, recipe = prepare(cfg["model"], cfg["fit"], splits.train, splits.species)
    settings = FitSettings.from_dict(fit_cfg)
    atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    atomic_write_json(out / "derived.json", recipe.to_json(), indent=2)
    log.info("fitting %s (%d linear + %d nonlinear parameters) to %d training configurations "
             "(%d atoms); %d validation, %d test", model.expression, model.n_linear, model.n_nonlinear,
             len(splits.train), sum(c.n_atoms for c in splits.train), len(splits.validation), len(splits.test))
    log.info("search box: %s (α in log space); %d evaluations per search stage, seed %d",
             settings.bounds, settings.max_evaluations, settings.seed)
    return FitRun(cfg, base, out, splits, model, settings, recipe)


def finish_fit(run: FitRun, nvt_steps: int = 2000, nvt_seeds: int = 1, progress=None) -> tuple[dict, dict]:
    """Step 3 of a fit: writes ``model.params``, ``metrics.json``, ``report.md``, the
    parity and sanity plots; returns (metrics, failed sanity checks {name: detail}).
    ``progress(task, done, total, note)`` follows the NVT runs (:mod:`compot.progress`)."""
    from .plots import parity_plots
    from .report import fit_report
    from .sanity import failed_checks
    from .uncertainty_report import fit_calibration

    model, out, s = run.model, run.out, run.splits
    write_model(model, out / "model.params",
                comment=f"fitted by compot fit in {run.seconds:.0f} s; config {out / 'config.yaml'}")
    metrics = {"expression": model.expression, "species": list(model.species), "cutoff": model.cutoff,
               "n_linear": model.n_linear, "n_nonlinear": model.n_nonlinear, "fit_seconds": run.seconds,
               "derived": run.recipe.to_json(), "stages": run.history}
    if run.hot_prior:
        metrics["hot_prior"] = run.hot_prior
    predictions, by_group = {}, {}
    for name, cs in (("train", s.train), ("validation", s.validation), ("test", s.test)):
        if not cs:
            continue
        m, g, e, f, st = evaluate_split(model, cs, return_stress=True)
        metrics[name] = m
        by_group[name] = g
        predictions[name] = (cs, e, f, st)
    metrics["groups"] = by_group
    metrics["stress_check"] = stress_energy_consistency(s.train + s.validation + s.test)
    atomic_write_json(out / "metrics.json", metrics, indent=2)
    plots = parity_plots(predictions, out, model.expression)
    if run.hot_prior:
        from .plots import plot_hot_prior
        hot_plot = plot_hot_prior(run.hot_prior, out / "hot_prior.png")
        plots += [hot_plot] if hot_plot else []
    metrics["uncertainty"], calibration_lines, cplot = fit_calibration(model, s.train, s.validation,
                                                                        run.settings, out)
    plots += [cplot] if cplot else []
    elastic = surface = None
    if len(model.species) == 1:
        elastic, surface = property_files([resolve_path(p, run.base) for p in run.cfg["data"]["train"]])
    lattice = run.cfg["model"].get("lattice") or "auto"
    # the training and validation data, the files `compot validate` reads: the same
    # NVT temperatures and alloy floor as the hot prior's (compot.hot_prior.harden)
    sanity, splots = sanity_with_plots(model, lattice, None, elastic, surface, out, data=s.train + s.validation,
                                       nvt_steps=nvt_steps, n_seeds=nvt_seeds, progress=progress)
    metrics["sanity"] = sanity
    failed = failed_checks(sanity)
    metrics["unsafe"] = bool(failed)
    plots += splots
    atomic_write_json(out / "metrics.json", metrics, indent=2)
    atomic_write_text(out / "report.md", fit_report(model, metrics, run.settings, run.cfg, plots,
                                                    calibration=calibration_lines))
    return metrics, failed


@dataclass
class FitContext:
    """What the covariance of a saved model needs from its fit.

    train, validation : list of Configuration — the fit's splits
    settings : compot.settings.FitSettings — its loss weights and priors (recipe-derived)
    config : Path — the fit configuration read
    """

    train: list
    validation: list
    settings: object
    config: Path


def fit_context(model_path, config=None) -> FitContext:
    """The splits and fit settings of the fit that produced ``model_path``.

    Parameters
    ----------
    model_path : path of the parameter file
    config : path of the fit configuration (YAML); default ``config.yaml`` beside the
        model (``compot fit --out DIR`` writes both)

    Raises
    ------
    CompotError
        When there is no configuration; the errors of reading the data.
    """
    from .config import load_config

    path = Path(config) if config else Path(model_path).with_name("config.yaml")
    if not path.is_file():
        raise CompotError(f"uncertainty needs the configuration the model was fitted with; expected {path} "
                          "(pass --config CONFIG.yaml)")
    cfg, base = load_config(path)
    splits = load_splits(cfg, base, test=False)
    _, fit_cfg = derive_settings(cfg["model"], cfg["fit"], splits.train, splits.species)
    return FitContext(splits.train, splits.validation, FitSettings.from_dict(fit_cfg), path)
