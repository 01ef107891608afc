"""YAML run configuration with sections ``model``, ``data``, ``fit``.

Unknown keys are rejected with the list of allowed ones. Example::

    model:
      expression: E[G8L4] + A[G8P4] + ZBL   # the default; ZBL window from the data
      cutoff: auto           # Å; auto: between the 2nd and 3rd shells of the data's lattice
      species: [Nb]          # optional: taken from the data when omitted
    data:
      train: [$COMPOT_DATA/nb-mvl]
      test: []
      validation_fraction: 0.1
      seed: 0
      min_distance: 0.5      # Å
      group_by: file         # file (file stem) or config_type
    fit:
      max_evaluations: 40
      seed: 0

Paths may use environment variables; ``$COMPOT_DATA`` defaults to
:func:`compot.data.default_data_dir`. Relative paths are taken relative to the
configuration file.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

from .data import default_data_dir
from .errors import ConfigError, reject_unknown_keys
from .recipe import DEFAULT_EXPRESSION, DEFAULT_FIT
from .trainer import FitSettings

__all__ = ["DEFAULTS", "load_config", "check_config", "resolve_path"]

DEFAULTS = {
    # the default recipe (compot.recipe): cutoff, inner and ZBL windows, lattice and the
    # equation-of-state prior all derived from the training data
    "model": {"expression": DEFAULT_EXPRESSION, "cutoff": "auto", "species": None, "lattice": "auto"},
    "data": {"train": [], "test": [], "validation_fraction": 0.1, "seed": 0, "min_distance": 0.5,
             "group_by": "file"},
    "fit": {},
    "design": {},
}


def check_config(cfg: dict, where: str = "config") -> dict:
    """Merge ``cfg`` into the defaults, rejecting unknown sections/keys."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping with sections model, data, fit; found {type(cfg).__name__}")
    reject_unknown_keys(where, cfg, DEFAULTS)
    out = copy.deepcopy(DEFAULTS)
    for section in ("model", "data"):
        given = cfg.get(section) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{where}: section {section!r} must be a mapping")
        reject_unknown_keys(f"{where}: {section}", given, DEFAULTS[section])
        out[section].update(given)
    fit = {**DEFAULT_FIT, **(cfg.get("fit") or {})}
    FitSettings.from_dict(fit, where=f"{where}: fit")   # validates keys and values
    out["fit"] = dict(fit)
    cut = out["model"]["cutoff"]
    if cut != "auto" and not (isinstance(cut, (int, float)) and not isinstance(cut, bool) and cut > 0):
        raise ConfigError(f"{where}: model: cutoff must be 'auto' or a positive radius in Å, found {cut!r}")
    lattices = ("auto", "bcc", "fcc", "hcp", "diamond")
    if out["model"]["lattice"] not in lattices:
        raise ConfigError(f"{where}: model: lattice must be one of {', '.join(lattices)}, "
                          f"found {out['model']['lattice']!r}")
    design = cfg.get("design") or {}
    from .design import DesignSettings
    DesignSettings.from_dict(design, where=f"{where}: design")
    out["design"] = dict(design)
    for key in ("train", "test"):
        v = out["data"][key]
        out["data"][key] = [v] if isinstance(v, str) else list(v or [])
    if out["data"]["group_by"] not in ("file", "config_type"):
        raise ConfigError(f"{where}: data: group_by must be 'file' or 'config_type', "
                          f"found {out['data']['group_by']!r}")
    vf = out["data"]["validation_fraction"]
    if not 0 <= float(vf) < 1:
        raise ConfigError(f"{where}: data: validation_fraction must be in [0, 1), found {vf!r}")
    return out


def load_config(path: str | os.PathLike | None) -> tuple[dict, Path]:
    """Read and check a YAML configuration; returns (config, folder for relative paths)."""
    if path is None:
        return check_config({}), Path.cwd()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    return check_config(raw, where=str(path)), path.parent


def resolve_path(p: str, base: Path) -> Path:
    """Expand environment variables (``$COMPOT_DATA`` defaulting to the shared
    data folder) and resolve relative paths against ``base``."""
    env = dict(os.environ)
    env.setdefault("COMPOT_DATA", str(default_data_dir()))
    text = str(p)
    for k in sorted(env, key=len, reverse=True):
        text = text.replace("${" + k + "}", env[k]).replace("$" + k, env[k])
    q = Path(text).expanduser()
    return q if q.is_absolute() else (base / q)
