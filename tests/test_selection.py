"""compot.selection: information matching (package information-matching) and the
D-optimal baseline, on a synthetic pool with a known answer and end to end on a small
Nb model."""

import importlib.util
import json

import numpy as np
import pytest

from compot.selection import (PoolInformation, SelectionError, d_optimal, information_matching,
                              parse_precision, qoi_fim)

# find_spec, not importorskip: importing information_matching changes the process's
# multiprocessing reducer (compot.selection._convex_opt restores it), which would
# break every later test that starts worker processes (Dask)
if importlib.util.find_spec("information_matching") is None:
    pytest.skip("information-matching is not installed (pip install 'compot[selection]')",
                allow_module_level=True)


def _pool():
    """Six candidates in 3 parameters: 0–2 each see one axis (information 1 each),
    3 sees axes 0 and 1 with information 4 each, 4 and 5 are weak copies of 0."""
    B = [np.diag([1.0, 0, 0]), np.diag([0, 1.0, 0]), np.diag([0, 0, 1.0]), np.diag([2.0, 2.0, 0]),
         np.diag([0.1, 0, 0]), np.diag([0.1, 0, 0])]
    return PoolInformation(B, np.zeros((3, 3)), 1.0, np.eye(3))


def test_information_matching_solves_the_programme():
    """Target: information 2 along axis 0 and 1, none along axis 2. The cheapest weights
    are w_3 = 0.5 (information 4 × 0.5 = 2 on both axes), nothing else."""
    info = _pool()
    target = np.diag([2.0, 2.0, 0.0])
    res = information_matching(info, target, weight_bound=1.0)
    w = res["weights"]
    assert res["selected"] == [3]
    assert w[3] == pytest.approx(0.5, rel=1e-3)
    M = sum(wi * info.fim(i) for i, wi in enumerate(w))
    assert np.linalg.eigvalsh(M - target).min() > -1e-6


def test_information_matching_reports_infeasible_targets():
    info = _pool()
    with pytest.raises(SelectionError, match="infeasible"):
        information_matching(info, np.diag([0, 0, 50.0]), weight_bound=1.0)


def test_d_optimal_prefers_information_and_complements():
    info = _pool()
    assert d_optimal(info, 2) == [3, 2]
    assert d_optimal(info, 1, start=[3]) == [3, 2]


def test_qoi_fim_and_precision():
    g = {"a0": np.array([1.0, 0, 0]), "B": np.array([0, 2.0, 0])}
    eps = parse_precision("a0=0.5, B=10%", ["a0", "B"], {"a0": 3.3, "B": 170.0})
    assert eps == pytest.approx({"a0": 0.5, "B": 17.0})
    I_q = qoi_fim(g, eps, 2.0)
    np.testing.assert_allclose(np.diag(I_q), [(1 / 2 / 0.5) ** 2, (2 / 2 / 17) ** 2, 0])
    assert parse_precision("0.1", ["a0", "B"]) == {"a0": 0.1, "B": 0.1}
    for bad, msg in (("a0=-1,B=1", "positive"), ("1,2,3", "3 values"), ("C66=1", "not a target")):
        with pytest.raises(SelectionError, match=msg):
            parse_precision(bad, ["a0", "B"])


def test_compot_select_end_to_end(repo_root, data_dir, tmp_path, capsys):
    """`compot select` on the shipped Nb model with the elastic and surface cells as the
    pool (6 s): the selection meets every target precision (the programme's guarantee,
    to the solver's accuracy), its file reads back with the weights, the D-optimal
    baseline has the same size, and a precision tighter than the pool allows is refused."""
    from compot.cli import main
    from compot.data import read_configurations

    nb = data_dir / "nb-mvl"
    args = ["select", str(repo_root / "examples/nb/config.yaml"), "--pool", str(nb / "Nb_Elastic.extxyz"),
            str(nb / "Nb_Surface.extxyz"), "--model", str(repo_root / "examples/nb/model.params"),
            "--targets", "a0,C11,C44"]
    out = tmp_path / "sel"
    assert main(args + ["--precision", "a0=0.03,C11=200,C44=100", "--out", str(out)]) == 0
    doc = json.loads((out / "selection.json").read_text())
    im = doc["information_matching"]
    assert 0 < im["n_selected"] < doc["n_pool"]
    for t, eps in doc["precision"].items():
        assert doc["sigma_pool"][t] <= eps
        assert doc["predicted_sigma"]["information_matching"][t] <= eps * (1 + 1e-3)
    selected = read_configurations(out / "selected.extxyz", species=["Nb"])
    assert len(selected) == im["n_selected"]
    w = np.array([c.weight for c in selected])
    assert np.all((w > 0) & (w <= 1 + 1e-9))
    assert w.sum() == pytest.approx(im["sum_weights"], rel=1e-9)
    assert len(read_configurations(out / "d_optimal.extxyz", species=["Nb"])) == im["n_selected"]
    assert "| C44 |" in (out / "selection.md").read_text()

    capsys.readouterr()
    assert main(args + ["--precision", "a0=0.001,C11=200,C44=100", "--out", str(tmp_path / "tight")]) == 2
    assert "tighter than the whole pool's σ for a0" in capsys.readouterr().err
