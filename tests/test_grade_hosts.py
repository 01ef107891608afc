"""The extrapolation grade γ_i (MODEL_SPEC §10) from every host: Python
(``CompotCalculator``), the C core through ctypes (``CCoreCalculator``, both ghost
modes) and the LAMMPS plugin (``fix pair ... compot grade 1``, and ``pair_style
compot grade``) agree to 1e-9 relative on the shipped Nb model, on a rattled crystal
(inside the data), a compressed one and a cell with one close pair."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from compot.calculator import CompotCalculator
from compot.ccore import CCoreCalculator
from compot.io import read_model

from helpers import lammps_with_atoms

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "examples/nb/model.params"


def _cells():
    out = []
    for a, rattle in ((3.32, 0.08), (2.85, 0.05)):
        at = bulk("Nb", "bcc", a=a, cubic=True).repeat(3)
        at.rattle(rattle, seed=7)
        out.append(at)
    at = bulk("Nb", "bcc", a=3.32, cubic=True).repeat(3)
    at.positions[0] = at.positions[1] + [1.1, 0.3, 0.2]          # a pair at 1.16 Å: window closed
    out.append(at)
    return out


def _python_grade(at):
    return CompotCalculator(str(MODEL)).get_property("grade", at.copy())


@pytest.mark.parametrize("mode", ["ghosts", "exchange"])
def test_c_core_grade_equals_python(mode):
    for at in _cells():
        g_py = _python_grade(at)
        g_c = CCoreCalculator(str(MODEL), mode=mode).get_property("grade", at.copy())
        assert g_py.max() > 0
        np.testing.assert_allclose(g_c, g_py, rtol=1e-9, atol=1e-12 * g_py.max())


def test_c_core_bound_on_the_grade_changes_nothing():
    """Without the grade asked for, the C core skips the d² product for atoms whose
    cheap bound (compot_grade_screen: the leading eigen-directions of U_Zᵀ U_Z) shows
    γ ≤ γ_lo; with it asked for, it computes γ for every atom. Energies, forces and
    virial agree to 1e-12 either way, on cells from inside the data to atoms in the
    grade's transition (γ between γ_lo and γ_hi) and beyond it."""
    core = CCoreCalculator(str(MODEL)).core
    rng = np.random.default_rng(3)
    lo = float(read_model(MODEL).params["g.gamma_lo"][0])
    seen = {"inside": 0, "transition": 0}
    for a, sigma in ((3.30, 0.02), (3.30, 0.12), (3.10, 0.10), (2.95, 0.15), (3.50, 0.15)):
        at = bulk("Nb", "bcc", a=a, cubic=True).repeat(3)
        at.positions += rng.normal(0.0, sigma, at.positions.shape)
        e1, pe1, f1, v1 = core.evaluate(at)
        e2, pe2, f2, v2, g = core.evaluate(at, grade=True)
        seen["inside"] += int((g <= lo).sum())
        seen["transition"] += int((g > lo).sum())
        assert e1 == pytest.approx(e2, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(pe1, pe2, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(f1, f2, rtol=1e-12, atol=1e-11)
        np.testing.assert_allclose(v1, v2, rtol=1e-12, atol=1e-11)
    assert seen["inside"] > 100 and seen["transition"] > 5, seen


@pytest.mark.integration
@pytest.mark.parametrize("style", ["fix pair trigger", "pair_style compot grade"])
def test_plugin_grade_equals_python(style, repo_root):
    if importlib.util.find_spec("lammps") is None:
        pytest.skip("needs the LAMMPS Python module (the 'lammps' extra: make setup)")
    r = subprocess.run(["make", "--no-print-directory", "-o", "setup", "plugin"], cwd=repo_root,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    from lammps import LMP_STYLE_ATOM, LMP_TYPE_VECTOR
    for at in _cells():
        lmp = lammps_with_atoms(at, ["Nb"])
        try:
            if style == "fix pair trigger":
                lmp.commands_string(f"""
                    pair_style compot
                    pair_coeff * * {MODEL} Nb
                    fix g all pair 1 compot grade 1
                    run 0
                    """)
            else:
                lmp.commands_string(f"""
                    pair_style compot grade
                    pair_coeff * * {MODEL} Nb
                    fix g all pair 1 compot grade 0
                    run 0
                    """)
            nlocal = lmp.extract_global("nlocal")
            order = np.argsort(lmp.numpy.extract_atom("id")[:nlocal])
            g = np.array(lmp.numpy.extract_fix("g", LMP_STYLE_ATOM, LMP_TYPE_VECTOR)[:nlocal])[order]
        finally:
            lmp.close()
        g_py = _python_grade(at)
        np.testing.assert_allclose(g, g_py, rtol=1e-9, atol=1e-12 * g_py.max())
