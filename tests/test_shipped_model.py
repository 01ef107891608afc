"""The shipped niobium model (examples/nb/model.params, fitted by `make demo`)."""

import pytest
import yaml

from compot.expression import ZBL
from compot.io import read_model
from compot.sanity import sanity_report


@pytest.fixture(scope="module")
def shipped(repo_root):
    return read_model(repo_root / "examples" / "nb" / "model.params")


def test_shipped_model_matches_its_config(shipped, repo_root):
    cfg = yaml.safe_load((repo_root / "examples" / "nb" / "config.yaml").read_text())
    assert shipped.expression == str(cfg["model"]["expression"]).strip()
    assert shipped.cutoff == cfg["model"]["cutoff"] and shipped.species == ("Nb",)
    assert shipped.n_linear + shipped.n_nonlinear <= 100
    assert any(isinstance(n.term, ZBL) for n in shipped.layout.nodes)


def test_shipped_model_passes_sanity_checks(shipped, data_dir):
    rep = sanity_report(shipped, "bcc", None, data_dir / "nb-mvl" / "Nb_Elastic.extxyz",
                        data_dir / "nb-mvl" / "Nb_Surface.extxyz")
    failed = {k: v["detail"] for k, v in rep["checks"].items() if not v["passed"]}
    assert rep["passed"], failed
    props = rep["properties"]
    assert abs(props["a0"]["relative_error"]) < 0.01
    for k in ("C11", "C12", "C44", "B"):
        assert props[k]["model"] > 0            # mechanically stable bcc
    assert abs(props["gamma(100)"]["relative_error"]) < 0.15
