"""``compot export kim`` without the KIM API: portable-model names, the folder
written for kim-api-collections-management, and the CLI's one-line errors.

Pure Python: these run whether or not the KIM API is installed (installing
into a KIM collection and running the models is tests/test_kim.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from compot.export import DRIVER_NAME, KimNameError, check_kim_model_name, export_kim, suggest_kim_model_name

REPO = Path(__file__).resolve().parent.parent


def test_kim_names_are_checked():
    assert check_kim_model_name("Compot_Nb__MO_000000000001_000")
    for bad in ("Compot_Nb", "Compot Nb__MO_000000000001_000", "Compot_Nb__MO_1_000",
                "1Compot__MO_000000000001_000", "Compot__MD_000000123456_000", "Compot___Nb__MO_000000000001_000"):
        with pytest.raises(KimNameError, match=r"expected <Prefix>__MO_<12 digits>_<3 digits>, e\.g\. \w+__MO_"):
            check_kim_model_name(bad)
    assert check_kim_model_name(suggest_kim_model_name("my nb-model"))


def test_export_writes_portable_model(tmp_path):
    src = REPO / "tests" / "c" / "data" / "nb_e_n_zbl.params"
    d = export_kim(src, "Compot_Nb__MO_000000000001_000", tmp_path)
    assert d == tmp_path / "Compot_Nb__MO_000000000001_000"
    cmake = (d / "CMakeLists.txt").read_text()
    assert "add_kim_api_model_library" in cmake and f'DRIVER_NAME     "{DRIVER_NAME}"' in cmake
    assert "project(Compot_Nb__MO_000000000001_000)" in cmake
    assert (d / "Compot_Nb__MO_000000000001_000.params").read_bytes() == src.read_bytes()
    export_kim(src, "Compot_Nb__MO_000000000001_000", tmp_path)  # a re-export replaces it
    (tmp_path / "Other__MO_000000000001_000").mkdir()
    (tmp_path / "Other__MO_000000000001_000" / "notes.txt").write_text("mine")
    from compot.errors import CompotError
    with pytest.raises(CompotError, match="not a folder written by compot export"):
        export_kim(src, "Other__MO_000000000001_000", tmp_path)


def test_export_cli_errors_are_one_line(tmp_path):
    src = REPO / "tests" / "c" / "data" / "nb_e_n_zbl.params"
    cli = [sys.executable, "-m", "compot.cli", "export", "kim", str(src), "--out", str(tmp_path)]
    r = subprocess.run(cli + ["--name", "nb model"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "not a valid KIM portable-model name" in r.stderr and "nb_model__MO_000000000001_000" in r.stderr
    r = subprocess.run(cli + ["--name", "EAM_Dynamo_FellingerParkWilkins_2010_Nb__MO_102133002179_005",
                              "--install"], capture_output=True, text=True)
    if "system collection" in r.stderr:  # Debian's openkim-models is installed
        assert r.returncode == 2 and "choose another name" in r.stderr
    bad = tmp_path / "bad.params"
    bad.write_text(src.read_text().replace("compot-params 1", "compot-params 3"))
    r = subprocess.run(cli[:5] + [str(bad), "--name", "Compot_Nb__MO_000000000001_000", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "bad.params:2: format version '3' is not supported" in r.stderr
