"""Command line: end-to-end fit/eval on real data and one-line errors for bad input."""

import json

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from compot.cli import main

METRIC_KEYS = {"rmse_energy_per_atom", "rmse_force", "rmse_force_amplitude", "rmse_force_angle",
               "mae_energy_per_atom", "mae_force", "n_configurations", "n_atoms"}


def _xyz(path, atoms_list):
    write(path, atoms_list, format="extxyz")
    return path


def _atoms(symbols="Nb2", d=2.8, energy=-20.0, forces=None):
    at = Atoms(symbols, positions=[[0, 0, 0], [d, 0.3, 0.2]], cell=[8, 8, 8], pbc=True)
    f = np.zeros((len(at), 3)) if forces is None else forces
    at.calc = SinglePointCalculator(at, energy=energy, forces=f)
    return at


def test_fit_and_eval_end_to_end(tmp_path, data_dir, capsys):
    out = tmp_path / "run"
    argv = ["fit", "--expression", "G4 * G4", "--data", str(data_dir / "nb-mvl" / "Nb_Surface.extxyz"),
            str(data_dir / "nb-mvl" / "Nb_Elastic.extxyz"), "--max-evaluations", "3", "--seed", "1",
            "--nvt-steps", "20", "--hot-prior-steps", "600", "--out", str(out)]
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err
    for name in ("model.params", "metrics.json", "report.md", "parity_energy.png", "parity_force.png",
                 "sanity_energy_volume.png", "sanity_push.png", "sanity_dimer.png", "sanity_nvt.png"):
        assert (out / name).stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    report = (out / "report.md").read_text()
    failed = [k for k, c in metrics["sanity"]["checks"].items() if c["passed"] is False]
    assert metrics["unsafe"] == bool(failed)
    assert set(metrics["sanity"]["checks"]) == {"energy_volume", "push", "dimer", "nvt"}
    assert "![sanity_push](sanity_push.png)" in report
    hot = metrics["hot_prior"]                      # 600 fs: snapshots from 500 fs on (compot.hot_prior)
    assert hot["steps"] == 600 and 1 <= len(hot["rounds"]) <= 4
    assert set(hot["rounds"][0]["elements"]) == {"Nb"}
    assert hot["converged"] == (hot["rounds"][-1]["added"] == 0)
    assert "### Hot-MD prior (compot.hot_prior)" in report and "![hot_prior](hot_prior.png)" in report
    assert (out / "hot_prior.png").stat().st_size > 0
    run = hot["rounds"][0]["elements"]["Nb"]
    assert run["t"][0] == 50.0 and run["t"][-1] == 600.0 and len(run["energy"]) == 12   # every 50 fs
    assert [t for t, _ in run["quenched"]] == [550, 600]          # the recipe's 2 quenches per run
    assert "| quenched − e0 |" in report
    if failed:     # no core term, 3 evaluations on slabs and strained cells: it does fail today
        assert rc == 1 and f"FAILED {len(failed)} physical sanity check(s)" in err
        assert all(f"  {k}: " in err for k in failed) and "--allow-unsafe" in err
        assert report.startswith("# compot fit") and "**UNSAFE" in report
        assert main(argv + ["--allow-unsafe"]) == 0      # resumes from the checkpoint, accepts the model
        assert "written anyway (--allow-unsafe)" in capsys.readouterr().err
    else:
        assert rc == 0 and "UNSAFE" not in report
    assert (metrics["expression"], metrics["n_linear"], metrics["n_nonlinear"]) == ("G4 * G4", 11, 4)
    assert METRIC_KEYS <= set(metrics["train"]) and METRIC_KEYS <= set(metrics["validation"])
    assert metrics["train"]["n_configurations"] + metrics["validation"]["n_configurations"] == 134
    capsys.readouterr()
    assert main(["eval", str(out / "model.params"), str(data_dir / "nb-mvl" / "Nb_Surface.extxyz"), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert set(ev) - {"groups"} == set(metrics["train"])
    assert ev["n_configurations"] == 13 and ev["rmse_force"] > 0


def _one_line_error(capsys, argv, *fragments):
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("compot: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, (f, err)


def test_bad_data_gives_one_line_errors(tmp_path, capsys):
    good = _atoms()
    no_energy = _atoms()
    no_energy.calc = SinglePointCalculator(no_energy, forces=np.zeros((2, 3)))
    cases = {
        "missing_energy.extxyz": ([good, no_energy], ["missing_energy.extxyz", "record 1", "energy"]),
        "nan_force.extxyz": ([_atoms(forces=np.array([[0, 0, np.nan], [0, 0, 0]]))], ["nan_force.extxyz", "record 0"]),
        "close.extxyz": ([_atoms(d=0.2)], ["close.extxyz", "record 0"]),
    }
    for name, (images, fragments) in cases.items():
        path = _xyz(tmp_path / name, images)
        _one_line_error(capsys, ["fit", "--expression", "G2", "--data", str(path), "--out", str(tmp_path / "o")],
                        *fragments)
    # wrong force shape: write by hand
    bad = tmp_path / "shape.extxyz"
    bad.write_text('2\nLattice="8 0 0 0 8 0 0 0 8" Properties=species:S:1:pos:R:3:forces:R:2 energy=-1.0 pbc="T T T"\n'
                   "Nb 0 0 0 0 0\nNb 2.8 0 0 0 0\n")
    _one_line_error(capsys, ["fit", "--data", str(bad), "--out", str(tmp_path / "o")], "shape.extxyz")
    # unsupported species against a saved model
    model = tmp_path / "m.params"
    from compot.io import write_model
    from compot.model import Model
    write_model(Model("G2", ["Nb"], 4.0), model)
    w = _xyz(tmp_path / "tungsten.extxyz", [_atoms("NbW")])
    _one_line_error(capsys, ["eval", str(model), str(w)], "tungsten.extxyz", "W", "Nb")
    _one_line_error(capsys, ["eval", str(tmp_path / "none.params"), str(w)], "none.params")
    _one_line_error(capsys, ["fit", "--data", str(tmp_path / "missing.extxyz"), "--out", str(tmp_path / "o")],
                    "missing.extxyz")


def test_config_rejects_unknown_keys(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  expresion: G8\n")
    _one_line_error(capsys, ["fit", str(cfg), "--out", str(tmp_path / "o")], "expresion", "allowed: expression")
    cfg.write_text("fit:\n  max_evals: 3\n")
    _one_line_error(capsys, ["fit", str(cfg), "--out", str(tmp_path / "o")], "max_evals", "max_evaluations")
    _one_line_error(capsys, ["params", "E[G8]"], "expected 'L'")


def test_validate_runs_the_stronger_checks(tmp_path, capsys):
    from compot.io import write_model
    from compot.model import Model
    good = tmp_path / "good.params"
    bad = tmp_path / "bad.params"
    write_model(Model("G1 + ZBL(0.5, 4.0)", ("Mo",), 4.5, {"b1.alpha": 0.3, "n1.c": [[[-0.02]]]}), good)
    write_model(Model("G2", ("Mo",), 4.5, {"b1.alpha": 0.3, "b1.beta": 1.5, "n0.c": [[[-1.0, -0.5]]]}), bad)
    capsys.readouterr()
    assert main(["validate", str(good), "--temperature", "800", "--nvt-steps", "20", "--out", str(tmp_path / "v")]) == 0
    text = capsys.readouterr().out
    for name in ("energy_volume", "push", "dimer", "nvt"):
        assert f"PASS {name}:" in text
        assert (tmp_path / "v" / f"sanity_{name}.png").stat().st_size > 1000
    assert json.loads((tmp_path / "v" / "sanity.json").read_text())["passed"] is True
    assert main(["validate", str(bad), "--lattice", "bcc", "--a0", "3.1"]) == 1
    text = capsys.readouterr().out
    assert "FAIL energy_volume:" in text and "SKIP nvt: skipped: no temperature" in text
    with pytest.raises(SystemExit):
        main(["validate", str(good), "--lattice", "sc"])
