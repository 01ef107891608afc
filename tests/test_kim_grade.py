"""The extrapolation grade through the KIM API: the driver's Extension "compot_grade"
(``kim_driver/compot_kim_grade.h``), called by a small C simulator
(``tests/c/kim/kim_grade.c``, built here against the installed KIM API with
``pkg-config libkim-api``) that creates the model with ``KIM_Model_Create``, computes
a configuration (energy only, then energy and forces) and reads γ_i of that compute
with ``KIM_Model_Extension``. γ_i of every contributing particle equals
``CompotCalculator`` ``results["grade"]`` to 1e-9 relative, on the shipped Nb model
(format v2) for a rattled crystal, a compressed one and a cell with one close pair;
a format v1 model reports ``formatVersion 1``, ``gradeOn 0`` and γ = 0. The program
also checks the ``KIM_SupportedExtensions`` listing and that a too small array, an
NULL array, missing compute arguments, an unknown ID and a call before any compute
are refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from compot.calculator import CompotCalculator
from compot.export import export_kim, install_kim_driver, remove_kim_item
from compot.io import read_model

from test_grade_hosts import _cells        # the cells on which Python, the C core and the plugin agree

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "examples/nb/model.params"
V1 = REPO / "tests/data/nb_first_release_v1.params"

if shutil.which("kim-api-collections-management") is None:
    pytest.skip("needs the KIM API (kim-api-collections-management)", allow_module_level=True)


def _kim_flags() -> list[str]:
    r = subprocess.run(["pkg-config", "--cflags", "--libs", "libkim-api"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("needs pkg-config and libkim-api (libkim-api-dev)")
    return r.stdout.split()


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    out = tmp_path_factory.mktemp("kimgrade") / "kim_grade"
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-Werror", f"-I{REPO / 'kim_driver'}",
           str(REPO / "tests/c/kim/kim_grade.c"), "-o", str(out), *_kim_flags()]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """KIM names of the shipped v2 model and of the first release's v1 model."""
    work = tmp_path_factory.mktemp("kimgrade_models")
    install_kim_driver(force=True)
    token = uuid.uuid4().hex[:8]
    names = {}
    try:
        for label, path in (("v2", SHIPPED), ("v1", V1)):
            name = f"CompotPytest_{token}_grade_{label}"
            export_kim(path, name, work, install=True, reinstall_driver=False)
            names[label] = name
        yield names
    finally:
        for name in names.values():
            remove_kim_item(name)


def _write_config(at, path: Path):
    """The cell's atoms (contributing, in order) then their 26 periodic images
    (padding, non-contributing): a cubic cell longer than r_c needs no more."""
    cell = at.cell.array
    assert np.all(np.diag(cell) > read_model(SHIPPED).cutoff + 0.5)
    lines = []
    shifts = [(0, 0, 0)] + [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)
                            if (i, j, k) != (0, 0, 0)]
    for s in shifts:
        flag = 1 if s == (0, 0, 0) else 0
        for sym, x in zip(at.get_chemical_symbols(), at.positions + np.array(s) @ cell):
            lines.append(f"{sym} {flag} {x[0]:.17g} {x[1]:.17g} {x[2]:.17g}")
    path.write_text(f"{len(lines)}\n" + "\n".join(lines) + "\n")


def _run(program, name, at, workdir: Path):
    cfg = workdir / "config.txt"
    _write_config(at, cfg)
    r = subprocess.run([str(program), name, str(cfg)], capture_output=True, text=True, cwd=workdir)
    log = (workdir / "kim.log").read_text(errors="replace")[-3000:] if (workdir / "kim.log").exists() else ""
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:] + log
    lines = r.stdout.splitlines()
    assert lines[2] == "checks ok", lines[:3]
    version, on = int(lines[1].split()[1]), int(lines[1].split()[3])
    rows = np.array([[float(v) for v in ln.split()] for ln in lines[3:]])
    assert rows.shape == (27 * len(at), 3)
    return version, on, rows[:, 1], rows[:, 2]


def test_kim_extension_grade_equals_python(program, installed, tmp_path):
    n_flagged = 0
    for at in _cells():
        version, on, g_energy, g_forces = _run(program, installed["v2"], at, tmp_path)
        assert (version, on) == (4, 1)
        g_py = CompotCalculator(str(SHIPPED)).get_property("grade", at.copy())
        assert g_py.max() > 0
        n = len(at)
        np.testing.assert_allclose(g_energy[:n], g_py, rtol=1e-9, atol=1e-12 * g_py.max())
        np.testing.assert_array_equal(g_forces, g_energy)             # whatever outputs were asked for
        assert not g_energy[n:].any() and not g_forces[n:].any()        # padding: 0
        n_flagged += int((g_py > read_model(SHIPPED).params["g.gamma_lo"][0]).any())
    assert n_flagged >= 2                                          # the compressed and close-pair cells


def test_kim_extension_grade_of_a_v1_model_is_zero(program, installed, tmp_path):
    version, on, g_energy, g_forces = _run(program, installed["v1"], _cells()[0], tmp_path)
    assert (version, on) == (1, 0)
    assert not g_energy.any() and not g_forces.any()
