"""The C core of the KIM driver (``kim_driver/``) through its own test targets.

* ``make -C tests/c check``: the C unit tests under AddressSanitizer/UBSan
  with ``-Werror``, and a warning-free ``-O3`` build of the core;
* ``make -C tests/c crosscheck``: the C core (loaded with ctypes) against the
  Python reference on every term type, 1–2 species, to 1e-12 — run with this
  interpreter (the Makefile's ``PYTHON``, default ``../../.venv/bin/python``);
* ``make -C tests/c kim-check``: driver and test models installed into the KIM
  user collection and checked through kimpy (integration: needs the KIM API).

See ``tests/c/README.md``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TESTS_C = REPO / "tests" / "c"


def _make(target: str, timeout: float, **env_vars) -> subprocess.CompletedProcess:
    if shutil.which("make") is None or shutil.which("cc") is None:
        pytest.skip("needs make and a C compiler")
    cmd = ["make", "--no-print-directory", "-C", str(TESTS_C), target]
    cmd += [f"{k}={v}" for k, v in env_vars.items()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"{' '.join(cmd)} failed (exit {r.returncode}):\n{out[-6000:]}"
    return r


def test_c_unit_tests_under_sanitizers():
    r = _make("check", timeout=600)
    tail = r.stdout.strip().splitlines()[-3:]
    assert any(line.strip().endswith("checks, 0 failures") for line in tail), "\n".join(tail)


def test_c_core_matches_python():
    r = _make("crosscheck", timeout=600, PYTHON=sys.executable)
    assert "C core and Python agree" in r.stdout
    assert "FAIL" not in r.stdout and "failure(s)" not in r.stdout, r.stdout[-3000:]
    n_ok = sum(1 for line in r.stdout.splitlines() if line.startswith("ok "))
    assert n_ok >= 14, f"expected at least 14 expressions cross-checked, found {n_ok}"


@pytest.mark.integration
def test_kim_driver_through_kimpy():
    if shutil.which("kim-api-collections-management") is None:
        pytest.skip("needs the KIM API (kim-api-collections-management)")
    pytest.importorskip("kimpy")
    r = _make("kim-check", timeout=900, PYTHON=sys.executable)
    assert "all KIM checks passed" in r.stdout, r.stdout[-3000:]
