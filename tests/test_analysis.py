"""FIM of fitted models (compot fim), the paper's parametrisation, and the design loop."""

import json

import numpy as np
import yaml

from compot.analysis import composition_blocks, fim_analysis, jacobian, paper_transform
from compot.cli import main
from compot.functions import exp_feature_fdf
from compot.io import write_model

from helpers import random_model, random_structure
from test_trainer import synthetic


def test_fim_blocks_consistent_with_full_matrix():
    model = random_model("E[G3L2] + A[G3P2] + ZBL(1.0, 2.5)", seed=3)
    configs = synthetic(model, n=4)
    model.compute_scales([model.system(configs)])
    res = fim_analysis(model, configs, bits=256)
    A, names = jacobian(model, configs)
    full = A.T @ A
    lam = np.sort(np.linalg.eigvalsh(full))[::-1]
    hp = np.array([float(x) for x in res["ours"].eigenvalues])
    # the well-resolved top of the spectrum agrees with float64
    np.testing.assert_allclose(hp[:5], lam[:5], rtol=1e-8)
    blocks = composition_blocks(model, names)
    assert set(blocks) == {"left", "right"}
    for name, idx in blocks.items():
        sub = np.sort(np.linalg.eigvalsh(full[np.ix_(idx, idx)]))[::-1]
        got = np.array([float(x) for x in res["ours"].blocks[name].eigenvalues])
        np.testing.assert_allclose(got[:3], sub[:3], rtol=1e-8)
        assert res["ours"].blocks[name].log10_condition_number <= res["ours"].log10_condition_number + 1e-9


def test_paper_parametrisation_map():
    """θ_ours = T θ_paper: our E term with c = γc′, shift = shift′ + Σc′ equals Σ c′ exp(γu) + shift′."""
    model = random_model("E[G3L2]", seed=5)
    atoms = random_structure("triclinic")
    model.compute_scales([model.system([atoms])])
    names = model.blocks("linear")
    T = paper_transform(model, names)
    rng = np.random.default_rng(0)
    theta_paper = rng.normal(size=T.shape[1])
    model.set_vector(names, T @ theta_paper)
    ctx = model.context(model.system([atoms]))
    node = model.layout.nodes[0]
    u, _ = node.term.scaled(ctx, node)
    gamma = model.params["n0.gamma"]
    c_paper = theta_paper[:6].reshape(1, 1, 2, 3)
    shift_paper = theta_paper[6]
    direct = (c_paper[0, 0][None] * np.exp(gamma[None, :, None] * u[:, 0, None, :])).sum(axis=(1, 2)) + shift_paper
    np.testing.assert_allclose(ctx.value(0), direct, rtol=1e-12)
    # and x(γ, u) of compot is (exp(γu) − 1)/γ inside the fitted range
    x, _ = exp_feature_fdf(np.array([0.7]), np.array([0.3]))
    assert abs(x[0] - np.expm1(0.21) / 0.7) < 1e-15


def test_cli_fim_writes_json_and_plot(tmp_path, capsys):
    model = random_model("G3 * E[G2L2]", seed=2)
    configs = synthetic(model, n=3)
    from ase.io import write
    from ase.calculators.singlepoint import SinglePointCalculator
    images = []
    for c in configs:
        at = c.to_atoms()
        at.calc = SinglePointCalculator(at, energy=c.energy, forces=c.forces)
        images.append(at)
    data = tmp_path / "d.extxyz"
    write(data, images)
    model.compute_scales([model.system(configs)])
    write_model(model, tmp_path / "m.params")
    assert main(["fim", str(tmp_path / "m.params"), str(data), "--out", str(tmp_path / "fim")]) == 0
    doc = json.loads((tmp_path / "fim" / "fim.json").read_text())
    for key in ("eigenvalues", "condition_number", "log10_condition_number", "n_significant", "precision_bits",
                "blocks", "seconds", "paper_parametrisation", "gauge_held"):
        assert key in doc
    assert doc["precision_bits"] == 256 and doc["gauge_held"] == ["n2.shift"]
    assert len(doc["eigenvalues"]) == model.n_linear - 1
    assert all(len(e.split("e")[0].replace("-", "").replace(".", "").lstrip("0")) >= 60 for e in doc["eigenvalues"])
    assert set(doc["blocks"]) == {"left", "right"}
    assert np.isfinite(doc["log10_condition_number"])
    assert (tmp_path / "fim" / "fim_spectrum.png").stat().st_size > 1000


def test_design_loop_small(tmp_path, data_dir, capsys):
    cfg = {
        "model": {"cutoff": 4.5, "species": ["Nb"]},
        "data": {"train": [str(data_dir / "nb-mvl" / "Nb_Surface.extxyz"), str(data_dir / "nb-mvl" / "Nb_Elastic.extxyz")],
                 "validation_fraction": 0.2},
        "fit": {"max_evaluations": 3, "init_points": 2, "polish_evaluations": 0},
        "design": {"single_terms": ["G4", "E[G3L2]", "A[G3P2]"], "compositions": ["G*E", "E+A"],
                   "processes": 2, "fim_bits": 128},
    }
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    assert main(["design", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    rows = (out / "design.csv").read_text().splitlines()
    assert rows[0].startswith("configuration,linear,nonlinear,log10_kappa_total,log10_kappa_left,log10_kappa_right")
    confs = [r.split(",")[0] for r in rows[1:]]
    assert set(confs) == {"G4", "E[G3L2]", "A[G3P2]", "E[G3L2] + A[G3P2]", "G4 * E[G3L2]"}
    summary = json.loads((out / "design.json").read_text())
    assert summary["chosen"]["configuration"] in confs and "fewest parameters" in summary["rule"]
    prod = [r for r in summary["rows"] if r["configuration"] == "G4 * E[G3L2]"][0]
    assert prod["log10_kappa_left"] is not None and prod["log10_kappa_right"] is not None
    assert (out / "design_error_vs_kappa.png").exists() and "Chosen" in (out / "design.md").read_text()
    assert "chosen:" in text
    # resumable: a second run fits nothing again
    assert main(["design", str(path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("resumed from") == 5
