"""The configuration schema (compot.settings): loader errors, defaults, and docs/fitting.md."""

import dataclasses
import re

import pytest

from compot.config import check_config, load_config
from compot.errors import ConfigError
from compot.settings import (DEFAULT_FIT, SECTIONS, DesignSettings, FitSettings, docs_tables, load_section,
                             render_docs, section_defaults)


def _block(text: str, section: str) -> str:
    m = re.search(rf"<!-- schema:{section} -->\n(.*?)<!-- /schema:{section} -->", text, re.S)
    assert m, f"docs/fitting.md has no schema block for {section}"
    return m.group(1)


def test_docs_tables_are_generated_from_the_schema(repo_root):
    text = (repo_root / "docs" / "fitting.md").read_text(encoding="utf-8")
    assert render_docs(text) == text, "docs/fitting.md is stale: run python -m compot.settings docs/fitting.md"


def test_every_key_and_default_is_in_the_docs_and_nothing_else(repo_root):
    text = (repo_root / "docs" / "fitting.md").read_text(encoding="utf-8")
    for section, cls in SECTIONS.items():
        rows = [r for r in _block(text, section).splitlines() if r.startswith("| `")]
        documented = [re.match(r"\| `(\w+)`", r).group(1) for r in rows]
        assert documented == [f.name for f in dataclasses.fields(cls)], section
        for f, row in zip(dataclasses.fields(cls), rows):
            default = row.split(" | ")[1]
            if f.metadata.get("shown"):
                assert default == f.metadata["shown"]
                continue
            assert f"`{_yaml_like(section_defaults(cls)[f.name])}`" in default, (section, f.name, default)
            if section == "fit" and f.name in DEFAULT_FIT:
                assert f"`{_yaml_like(DEFAULT_FIT[f.name])}`" in default, (f.name, default)
    assert "`eos_anchor`" in _block(text, "fit")


def _yaml_like(v) -> str:
    """An independent rendering of a default, as docs/fitting.md writes it."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return {1e4: "1e4", 1e-10: "1e-10", 1e-7: "1e-7", 1e-4: "1e-4"}.get(v, f"{v:g}")
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml_like(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_like(x) for x in v) + "]"
    return "null" if v is None else str(v)


def test_docs_tables_cover_every_section():
    assert set(docs_tables()) == set(SECTIONS) == {"model", "data", "fit", "design", "execution"}


def test_unknown_keys_name_the_file_the_key_and_the_allowed_keys(tmp_path):
    path = tmp_path / "run.yaml"
    cases = {
        "model:\n  expresion: G8\n": ("model", "expresion", "allowed: expression, cutoff, species, lattice"),
        "data:\n  trian: [x]\n": ("data", "trian", "allowed: train, test"),
        "fit:\n  max_evals: 3\n": ("fit", "max_evals", "max_evaluations"),
        "fit:\n  zbl_anchor: {r_max: 2.0, m: 3}\n": ("fit.zbl_anchor", "m", "allowed: r_min, r_max, n, weight"),
        "fit:\n  eos_anchor: {a: 3.3}\n": ("fit.eos_anchor", "a", "bulk_modulus"),
        "fit:\n  bounds: {delta: [0, 1]}\n": ("fit.bounds", "delta", "allowed: alpha, beta, gamma"),
        "design:\n  zbl_core: ZBL\n": ("design", "zbl_core", "allowed: single_terms"),
        "modle: {}\n": ("run.yaml", "modle", "allowed: model, data, fit, design, execution"),
        "execution:\n  schedular: tcp://x:1\n": ("execution", "schedular", "allowed: scheduler, workers"),
    }
    for text, fragments in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        msg = str(err.value)
        assert msg.startswith(str(path)), msg
        assert "unknown key(s)" in msg
        for fragment in fragments:
            assert fragment in msg, (fragment, msg)


@pytest.mark.parametrize("text, fragment", [
    ("model:\n  cutoff: -1\n", "cutoff must be 'auto' or a positive radius"),
    ("model:\n  lattice: sc\n", "model.lattice: expected one of auto, bcc, fcc, hcp, diamond"),
    ("data:\n  group_by: species\n", "data.group_by"),
    ("data:\n  validation_fraction: 1.0\n", "validation_fraction must be in [0, 1)"),
    ("fit:\n  max_evaluations: 2.5\n", "fit.max_evaluations: expected an integer"),
    ("fit:\n  energy_per_atom: yes please\n", "fit.energy_per_atom: expected true or false"),
    ("fit:\n  bounds: {alpha: [0, 1]}\n", "fit.bounds.alpha: expected low > 0"),
    ("fit:\n  group_weights: [1]\n", "fit.group_weights: expected a mapping"),
    ("design:\n  compositions: [G*N]\n", "design.compositions: expected values of G*G"),
    ("design:\n  processes: 0\n", "design.processes: expected >= 1"),
    ("execution:\n  workers: -1\n", "execution.workers: expected >= 0"),
])
def test_values_are_checked(tmp_path, text, fragment):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(path)


def test_defaults_and_number_conversion():
    cfg = check_config({})
    assert cfg["model"] == section_defaults(SECTIONS["model"])
    assert cfg["data"] == section_defaults(SECTIONS["data"])
    assert cfg["fit"] == DEFAULT_FIT and cfg["design"] == {}
    s = FitSettings.from_dict({**cfg["fit"], "energy_weight": "1e4", "max_evaluations": 3.0})
    assert s.energy_weight == 1e4 and s.max_evaluations == 3 and isinstance(s.max_evaluations, int)
    assert s.bounds == {"alpha": (0.005, 2.0), "beta": (1.05, 3.0), "gamma": (-3.0, 3.0), "w1": (0.2, 1.5),
                        "w": (-1.5, 1.5)}
    assert FitSettings.from_dict({"bounds": {"beta": [1.1, 2]}}).bounds["beta"] == (1.1, 2.0)
    assert load_section(DesignSettings, None, "design") == DesignSettings()
    assert check_config({"data": {"train": "a.xyz"}})["data"]["train"] == ["a.xyz"]


def test_the_shipped_configurations_load(repo_root):
    paths = sorted((repo_root / "examples").glob("*/*.yaml"))
    assert len(paths) >= 3
    for path in paths:
        cfg, base = load_config(path)
        assert base == path.parent
        FitSettings.from_dict(cfg["fit"])
        DesignSettings.from_dict(cfg["design"])
