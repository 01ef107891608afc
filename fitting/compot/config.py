"""YAML run configuration with sections ``model``, ``data``, ``fit``, ``design``, ``execution``.

The keys, defaults and rules of every section are the schema of
:mod:`compot.settings` (also the source of docs/fitting.md's tables); unknown
keys are rejected with the list of allowed ones. Example::

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
      keys: {energy: REF_energy, forces: REF_forces}   # optional: names in the files
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
from .settings import DEFAULT_FIT, SECTIONS, load_section, section_defaults

__all__ = ["DEFAULTS", "load_config", "check_config", "resolve_path"]

#: Defaults of the sections ``model`` and ``data`` (compot.settings); ``fit`` starts
#: from the recipe's settings (compot.settings.DEFAULT_FIT), ``design`` from its own.
DEFAULTS = {"model": section_defaults(SECTIONS["model"]), "data": section_defaults(SECTIONS["data"]),
            "fit": {}, "design": {}, "execution": {}}


def check_config(cfg: dict, where: str = "config") -> dict:
    """Check a configuration against the schema (:mod:`compot.settings`) and fill in
    the defaults.

    Parameters
    ----------
    cfg : dict — the YAML document: sections model, data, fit, design
    where : str — the file name, which starts every error message

    Returns
    -------
    dict of section → dict: ``model`` and ``data`` complete (``data.train`` and
    ``data.test`` as lists); ``fit`` the recipe's settings (DEFAULT_FIT) updated
    with the given keys; ``design`` the given keys. Values are as written in the
    file; :class:`compot.settings.FitSettings` converts them when a fit starts.

    Raises
    ------
    ConfigError
        For an unknown section or key (naming the file, the key and the allowed
        keys) or a value that breaks its rule.
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping with sections model, data, fit; found {type(cfg).__name__}")
    reject_unknown_keys(where, cfg, SECTIONS)
    out = {}
    for section in ("model", "data", "fit", "design", "execution"):
        given = cfg.get(section) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{where}: section {section!r} must be a mapping")
        given = dict(given)
        if section == "data":
            for key in ("train", "test"):
                if key in given:
                    v = given[key]
                    given[key] = [v] if isinstance(v, str) else list(v or [])
        if section == "fit":
            given = {**DEFAULT_FIT, **given}
        load_section(SECTIONS[section], given, f"{where}: {section}")
        out[section] = {**copy.deepcopy(DEFAULTS[section]), **given}
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
