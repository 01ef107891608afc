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


# ------------------------------------------------------------------------------ figures
def _configs(n, group, rng):
    from compot.data import Configuration
    out = []
    for _ in range(n):
        pos = rng.uniform(0, 6, (3, 3))
        pos[1] = pos[0] + [2.5, 0, 0]
        pos[2] = pos[0] + [0, 2.5, 0]
        out.append(Configuration(symbols=("Nb",) * 3, positions=pos, cell=np.eye(3) * 9, pbc=True,
                                 energy=rng.normal(-30, 1), forces=rng.normal(0, 1, (3, 3)), group=group))
    return out


def test_parity_plots_are_coloured_by_group_with_a_legend():
    from matplotlib.colors import to_hex

    from compot.plots import parity_figure

    rng = np.random.default_rng(0)
    train = _configs(4, "Nb_AIMD", rng) + _configs(3, "Nb_Surface", rng)
    val = _configs(2, "Nb_AIMD", rng) + _configs(1, "Nb_Surface", rng)
    splits = {name: (cs, np.array([c.energy + 0.01 for c in cs]), [c.forces + 0.1 for c in cs])
              for name, cs in (("train", train), ("validation", val))}
    for kind in ("energy", "force"):
        ax = parity_figure(splits, kind, "E[G8L4] + A[G8P4] + ZBL").axes[0]
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[:2] == ["Nb_AIMD", "Nb_Surface"]
        assert labels[2].startswith("train (RMSE") and labels[3].startswith("validation (RMSE")
        # one point set per split and group, each in its group's colour
        colours = {}
        for coll in ax.collections:
            split, group = coll.get_label().lstrip("_").split(" ")
            colours.setdefault(group, set()).add(to_hex(coll.get_facecolor()[0], keep_alpha=False))
        assert set(colours) == {"Nb_AIMD", "Nb_Surface"}
        assert all(len(c) == 1 for c in colours.values()) and colours["Nb_AIMD"] != colours["Nb_Surface"]
        n = sum(len(coll.get_offsets()) for coll in ax.collections)
        assert n == (10 if kind == "energy" else 10 * 9)


def _inside(inner, outer, tol=0.5):
    return (inner.x0 >= outer.x0 - tol and inner.x1 <= outer.x1 + tol
            and inner.y0 >= outer.y0 - tol and inner.y1 <= outer.y1 + tol)


def test_design_labels_do_not_overlap(repo_root):
    import csv

    from matplotlib.text import Text

    from compot.plots import design_figure

    def value(v):
        if v in ("", "None"):
            return None
        if v in ("True", "False"):
            return v == "True"
        try:
            return float(v)
        except ValueError:
            return v

    with open(repo_root / "benchmarks" / "results" / "design_nb.csv", newline="") as fh:
        rows = [{k: value(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    chosen = next(r for r in rows if r["configuration"] == "A[G4P4]")
    for xkey in ("log10_kappa_total", "n_params"):
        fig = design_figure(rows, chosen, xkey)
        ax = fig.axes[0]
        renderer = fig.canvas.get_renderer()
        # a κ of ∞ (singular FIM) has no place on the κ axis: left out, counted in the legend
        finite = [r for r in rows if xkey == "n_params" or np.isfinite(r["log10_kappa_total"])]
        texts = [t for t in ax.texts if t.get_text() in {r["configuration"] for r in rows}]
        assert sorted(t.get_text() for t in texts) == sorted(r["configuration"] for r in finite)
        for t in texts:
            t.update_positions(renderer)
        boxes = [Text.get_window_extent(t, renderer) for t in texts]     # the text, without a leader line
        for i in range(len(boxes)):
            assert _inside(boxes[i], ax.get_window_extent(renderer)), texts[i].get_text()
            for j in range(i):
                assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
        assert "dual term" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_fim_spectrum_title_fits_the_figure(tmp_path):
    from compot import fim
    from compot.plots import plot_spectra

    J = np.diag(np.ldexp(1.0, [0, -5, -20, -25]))
    spec = fim.analyse(J, np.ones(4))
    title = "E[G8L4] + A[G8P4] + ZBL(2.03, 2.45): FIM eigenspectrum"
    fig = plot_spectra({"total": spec, "b1": spec}, tmp_path / "fim.png", title=title)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    assert " ".join(ax.title.get_text().split()) == title
    assert _inside(ax.title.get_window_extent(renderer), fig.bbox)
    assert _inside(ax.get_legend().get_window_extent(renderer), fig.bbox)


# ----------------------------------------------------------------------------- progress
def _trainer_info(stage, evaluation, total, name="n1 search"):
    return dict(stage=stage, n_stages=2, name=name, evaluation=evaluation, max_evaluations=total,
                loss=1.0 / evaluation, best_loss=0.5)


def test_progress_in_a_log_has_lines_with_an_eta(monkeypatch):
    import io

    import compot.progress
    from compot.progress import ProgressBars

    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(compot.progress.time, "perf_counter", lambda: next(clock))
    log = io.StringIO()
    bars = ProgressBars(stream=log, interval=3.0)
    for k in range(1, 9):              # one evaluation per second
        bars.trainer(_trainer_info(1, k, 8))
    bars.trainer(_trainer_info(2, 1, 1, "linear solve"))
    bars.close()
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    # the first step, then one line per 3 s, the last step; then the next stage
    assert [line.split(":")[0] for line in lines] == ["stage 1/2 n1 search"] * 4 + ["stage 2/2 linear solve"]
    assert [line.split(": ")[1].split(" ")[0] for line in lines[:4]] == ["1/8", "4/8", "7/8", "8/8"]
    assert "4/8 [00:03<00:04,  1.00step/s]" in lines[1]      # 3 steps in 3 s: 4 left, 4 s
    assert lines[1].endswith("loss 0.25, best 0.5 eV²/row")


def test_progress_on_a_terminal_draws_bars():
    import io

    from compot.progress import ProgressBars

    term = io.StringIO()
    with ProgressBars(stream=term, tty=True, out=term) as bars:
        for k in range(0, 11):
            bars("NVT 300 K, run 1/1", 10 * k, 100, f"{300 + k} K")
        bars.message("a line above the bar")
    text = term.getvalue()
    assert "\r" in text and "NVT 300 K, run 1/1: 100%|" in text and "100/100 [" in text
    assert "a line above the bar\n" in text


def test_nvt_check_reports_its_progress(repo_root):
    import io

    from compot.derive import Lattice
    from compot.io import read_model
    from compot.progress import ProgressBars
    from compot.sanity import nvt_check

    log = io.StringIO()
    model = read_model(repo_root / "examples" / "nb" / "model.params")
    res = nvt_check(model, Lattice("bcc", 3.323, "Nb"), 3.323, 300.0, steps=30, progress=ProgressBars(log, 0.0),
                    label="NVT Nb")
    lines = log.getvalue().splitlines()
    assert res["passed"] is True
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["0/30", "10/30", "20/30", "30/30"]
    assert all(line.startswith("NVT Nb 300 K, run 1/1: ") for line in lines)


def test_every_json_output_goes_through_the_strict_writer(repo_root):
    """json.dumps writes NaN by default: compot's modules and the benchmarks call
    compot.io.json_text / atomic_write_json instead. The trainer's checkpoint (an
    internal resume file that must round-trip exactly) and its fingerprint are the
    exceptions."""
    import re

    allowed = {"fitting/compot/io.py", "fitting/compot/trainer.py"}
    files = sorted((repo_root / "fitting" / "compot").rglob("*.py")) + sorted((repo_root / "benchmarks").glob("*.py"))
    offenders = []
    for f in files:
        rel = f.relative_to(repo_root).as_posix()
        if rel in allowed:
            continue
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bjson\.dumps?\(", line) and "allow_nan=False" not in line:
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
