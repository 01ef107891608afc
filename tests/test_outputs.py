"""Output files: strict JSON (null, never NaN) from every writer."""

import json
import math

import numpy as np
import pytest

from compot.cli import main
from compot.io import atomic_write_json, json_text


def _strict(text: str):
    """json.loads that refuses the non-standard NaN, Infinity and -Infinity."""
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_json_text_writes_null_for_non_finite_numbers(tmp_path):
    value = {"nan": math.nan, "inf": [np.inf, -np.inf, np.float64(2.5)], "array": np.arange(3),
             "nested": ({"x": np.float32("nan")},), "flag": np.bool_(True), 3: np.int64(4)}
    expected = {"nan": None, "inf": [None, None, 2.5], "array": [0, 1, 2], "nested": [{"x": None}],
                "flag": True, "3": 4}
    assert _strict(json_text(value)) == expected
    atomic_write_json(tmp_path / "a.json", value)
    text = (tmp_path / "a.json").read_text()
    assert text.endswith("\n") and _strict(text) == expected


def test_committed_benchmark_json_is_strict(repo_root):
    files = sorted((repo_root / "benchmarks" / "results").glob("*.json"))
    assert files
    for f in files:
        _strict(f.read_text())


def test_eval_json_is_strict_when_the_angle_rmse_is_undefined(repo_root, data_dir, capsys):
    # the Nb elastic cells have zero reference forces: the force-angle RMSE is undefined
    capsys.readouterr()
    assert main(["eval", str(repo_root / "examples" / "nb" / "model.params"),
                 str(data_dir / "nb-mvl" / "Nb_Elastic.extxyz"), "--json"]) == 0
    ev = _strict(capsys.readouterr().out)
    assert ev["rmse_force_angle"] is None and ev["rmse_force"] >= 0
    assert ev["groups"]["Nb_Elastic"]["rmse_force_angle"] is None
