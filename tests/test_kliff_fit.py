"""KLIFF's own loss and optimiser fit a compot KIM model (examples/kliff_fit.py).

The example exports and installs a compot model, fits its linear parameters
with KLIFF (``KIMModel`` + legacy ``Calculator`` + ``Loss.minimize``, through
the KIM API) and with compot's own trainer on the same configurations and
weights, and compares the two. Here on a small, well-conditioned model
(``E[G2L2] + N[E[G2L2]] + ZBL(1.6, 2.4)``, 9 coefficients) and three AIMD
snapshots, where both must reach the same least-squares optimum.

Needs kliff, PyTorch (``kliff.legacy.loss`` imports it) and kimpy, i.e. the
``kliff`` extra, which pins numpy<2 and ase<3.23 and so lives in a venv of its
own: skipped when torch is absent (as in the project's default venv). KIM items
go into a scratch collection (``KIM_API_CONFIGURATION_FILE``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import compot

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration

if shutil.which("kim-api-collections-management") is None:
    pytest.skip("needs the KIM API (kim-api-collections-management)", allow_module_level=True)
pytest.importorskip("torch", reason="KLIFF's loss (kliff.legacy.loss) needs PyTorch: the kliff extra")
pytest.importorskip("kliff")
pytest.importorskip("kimpy")


def test_kliff_fits_like_compot(tmp_path, data_dir):
    kim = tmp_path / "kim"
    for d in ("drivers", "models", "simulator-models"):
        (kim / d).mkdir(parents=True)
    (kim / "config").write_text(f"model-drivers-dir = {kim / 'drivers'}\nportable-models-dir = {kim / 'models'}\n"
                                f"simulator-models-dir = {kim / 'simulator-models'}\n")
    env = dict(os.environ, KIM_API_CONFIGURATION_FILE=str(kim / "config"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(compot.__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH")])))
    out = tmp_path / "kliff_fit.json"
    cmd = [sys.executable, str(REPO / "examples" / "kliff_fit.py"), str(REPO / "tests" / "c" / "data" / "nb_e_n_zbl.params"),
           "--data", str(data_dir / "nb-mvl" / "Nb_AIMD.extxyz"), "--n-configs", "3", "--json", str(out)]
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    assert "the two fits agree" in r.stdout
    res = json.loads(out.read_text())
    assert res["agree"] and res["n_coefficients"] == 9 and res["n_configurations"] == 3
    losses = res["losses"]
    assert losses["kliff fit"]["kim"] < 0.5 * losses["start"]["kim"]
    assert losses["kliff fit"]["kim"] == pytest.approx(losses["compot fit"]["kim"], rel=1e-8)
    # each host evaluates both solutions alike (KIM driver vs compot's Python)
    for k in losses:
        assert losses[k]["kim"] == pytest.approx(losses[k]["compot"], rel=1e-8)
    assert res["coefficient_difference_determined"] < 1e-7
    assert res["max_prediction_difference"] < 1e-3
