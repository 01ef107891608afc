"""``compot export kim`` without the KIM API: portable-model names (no invented
KIM IDs), the folder written for kim-api-collections-management with its
``kimspec.edn``, the driver's metadata and licence, where the shipped C/C++
sources are found, and the CLI's one-line errors.

Pure Python: these run whether or not the KIM API is installed (installing
into a KIM collection and running the models is tests/test_kim.py; from a
wheel in a fresh venv, tests/test_fresh_install.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

from compot.export import (DATA_CITATIONS, DRIVER_NAME, LICENSE_ID, PAPER_CITATION, KimIdWarning, KimNameError,
                           check_kim_model_name, default_kim_model_name, export_kim, format_edn,
                           suggest_kim_model_name)
from compot.sources import SourcesNotFoundError, kim_driver_dir, lammps_plugin_dir

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "tests" / "c" / "data" / "nb_e_n_zbl.params"
KIM_ID = re.compile(r"__M[OD]_[0-9]{12}_[0-9]{3}")


# ----------------------------------------------------------- a small EDN reader
_TOKEN = re.compile(r'\s*(?:(;[^\n]*)|([{}\[\]])|"((?:[^"\\]|\\.)*)"|([^\s{}\[\]"]+))')


def parse_edn(text: str):
    """Maps, vectors, strings, numbers, true/false/nil: what kimspec.edn uses."""
    tokens = []
    pos = 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        assert m, f"EDN syntax error at {text[pos:pos + 40]!r}"
        pos = m.end()
        if m.group(1) is None:
            tokens.append(m)

    def value(i):
        m = tokens[i]
        if m.group(2) in ("{", "["):
            close = "}" if m.group(2) == "{" else "]"
            items, i = [], i + 1
            while tokens[i].group(2) != close:
                v, i = value(i)
                items.append(v)
            if close == "]":
                return items, i + 1
            assert len(items) % 2 == 0, "odd number of forms in a map"
            return dict(zip(items[::2], items[1::2])), i + 1
        if m.group(3) is not None:
            return re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), m.group(3)), i + 1
        atom = m.group(4)
        assert atom is not None, f"unexpected {m.group(0)!r}"
        return {"true": True, "false": False, "nil": None}.get(atom, atom if not re.fullmatch(r"-?[0-9.eE+-]+", atom)
                                                              else float(atom)), i + 1

    v, end = value(0)
    assert end == len(tokens), "text after the first form"
    return v


def test_format_edn_round_trips():
    spec = {"a": "x \"quoted\" \\ back", "b": ["Nb", "Mo"], "c": [{"k": "v"}], "d": 2, "e": True, "f": {}}
    assert parse_edn(format_edn(spec)) == {**spec, "d": 2.0}


# ------------------------------------------------------------------- names
def test_kim_names_are_checked():
    for good in ("Compot_Nb_1a2b3c4d", "Compot_Nb", "Compot_Nb__MO_123456789012_000"):
        assert check_kim_model_name(good) == good
    for bad in ("nb model", "Compot_Nb__MO_1_000", "1Compot", "Compot__MD_000000123456_000", "Compot___Nb", ""):
        with pytest.raises(KimNameError, match=r"expected|empty"):
            check_kim_model_name(bad)
    assert check_kim_model_name(suggest_kim_model_name("my nb-model")) == "my_nb_model"
    assert not KIM_ID.search(suggest_kim_model_name("Compot_Nb__MO_000000000001_000", 2))


def test_default_name_has_no_kim_id(tmp_path):
    text = SRC.read_text()
    name = default_kim_model_name(["Nb"], text)
    assert re.fullmatch(r"Compot_Nb_[0-9a-f]{8}", name)
    assert default_kim_model_name(["Nb"], text) == name != default_kim_model_name(["Nb"], text + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no KimIdWarning without an ID
        d = export_kim(SRC, out_dir=tmp_path)
    assert d.name == name and not KIM_ID.search((d / "CMakeLists.txt").read_text())


def test_kim_id_only_when_given_and_with_a_warning(tmp_path):
    with pytest.warns(KimIdWarning, match="must be the one OpenKIM issued"):
        d = export_kim(SRC, "Compot_Nb", tmp_path, kim_id="MO_123456789012_000")
    assert d.name == "Compot_Nb__MO_123456789012_000"
    with pytest.warns(KimIdWarning):
        export_kim(SRC, "Compot_Nb__MO_123456789012_001", tmp_path)
    for bad in ("MO_1_000", "MD_123456789012_000", "123456789012"):
        with pytest.raises(KimNameError, match="malformed"):
            export_kim(SRC, "Compot_Nb", tmp_path, kim_id=bad)


def test_export_writes_portable_model(tmp_path):
    d = export_kim(SRC, "Compot_Nb", tmp_path)
    assert d == tmp_path / "Compot_Nb"
    cmake = (d / "CMakeLists.txt").read_text()
    assert "add_kim_api_model_library" in cmake and f'DRIVER_NAME     "{DRIVER_NAME}"' in cmake
    assert "project(Compot_Nb)" in cmake
    assert (d / "Compot_Nb.params").read_bytes() == SRC.read_bytes()
    export_kim(SRC, "Compot_Nb", tmp_path)  # a re-export replaces it
    (tmp_path / "Other").mkdir()
    (tmp_path / "Other" / "notes.txt").write_text("mine")
    from compot.errors import CompotError
    with pytest.raises(CompotError, match="not a folder written by compot export"):
        export_kim(SRC, "Other", tmp_path)


# ---------------------------------------------------------- kimspec.edn, LICENSE
def test_exported_model_kimspec(tmp_path):
    uuid = "4ad03136-ed7f-4316-b586-1e94ccceb311"
    d = export_kim(REPO / "examples" / "nb" / "model.params", out_dir=tmp_path, data_citations=["mvl-nbmotaw"],
                   contributor_id=uuid)
    spec = parse_edn((d / "kimspec.edn").read_text())
    assert spec["extended-id"] == d.name and spec["kim-item-type"] == "portable-model"
    assert spec["model-driver"] == DRIVER_NAME and spec["species"] == ["Nb"]
    assert spec["kim-api-version"] == "2.2" and spec["domain"] == "openkim.org"
    assert "E[G8L4] + A[G8P4] + ZBL" in spec["title"] and "Nb" in spec["title"]
    assert "arXiv:2504.19372" in spec["description"]
    cites = spec["source-citations"]
    assert cites[0] == PAPER_CITATION and cites[1] == DATA_CITATIONS["mvl-nbmotaw"]
    assert all(c["recordtype"] in ("article", "misc") and c["title"] and c["year"] for c in cites)
    assert spec["contributor-id"] == spec["maintainer-id"] == uuid and spec["developer"] == [uuid]
    plain = parse_edn((export_kim(SRC, "Plain", tmp_path) / "kimspec.edn").read_text())
    assert "contributor-id" not in plain and plain["source-citations"] == [PAPER_CITATION]
    with pytest.raises(KimNameError, match="unknown data citation"):
        export_kim(SRC, "Plain", tmp_path, data_citations=["nowhere"])
    with pytest.raises(KimNameError, match="not a UUID"):
        export_kim(SRC, "Plain", tmp_path, contributor_id="me")


def test_driver_kimspec_and_licence():
    driver = kim_driver_dir()
    spec = parse_edn((driver / "kimspec.edn").read_text())
    assert spec["extended-id"] == DRIVER_NAME and spec["kim-item-type"] == "model-driver"
    assert f"project({DRIVER_NAME} " in (driver / "CMakeLists.txt").read_text()
    assert spec["title"] and "arXiv:2504.19372" in spec["description"]
    assert spec["source-citations"] == [PAPER_CITATION]
    assert spec["license"] == LICENSE_ID == "BSD-3-Clause"
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("BSD 3-Clause License") and "Redistribution and use in source and binary forms" in licence
    assert (driver / "LICENSE").read_text() == licence
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == LICENSE_ID


def test_no_invented_kim_ids_in_shipped_files():
    files = [REPO / "kim_driver" / n for n in ("CMakeLists.txt", "kimspec.edn", "README.md")]
    files += [REPO / "README.md", REPO / "fitting" / "compot" / "export.py", REPO / "fitting" / "compot" / "cli.py"]
    for f in files:
        for m in KIM_ID.finditer(f.read_text()):
            assert m.group(0) in ("__MO_123456789012_000",), f"{f.name}: {m.group(0)}"


# ------------------------------------------------------------------ sources
def test_sources_are_found_and_env_is_checked(monkeypatch, tmp_path):
    assert (kim_driver_dir() / "compot_kim.c").is_file()
    assert (lammps_plugin_dir() / "compotplugin.cpp").is_file()
    monkeypatch.setenv("COMPOT_KIM_DRIVER", str(tmp_path))
    with pytest.raises(SourcesNotFoundError, match="COMPOT_KIM_DRIVER=.*no CMakeLists.txt"):
        kim_driver_dir()


# ---------------------------------------------------------------------- CLI
def test_export_cli_errors_are_one_line(tmp_path):
    cli = [sys.executable, "-m", "compot.cli", "export", "kim", str(SRC), "--out", str(tmp_path)]
    r = subprocess.run(cli + ["--name", "nb model"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "not a valid KIM portable-model name" in r.stderr and "nb_model" in r.stderr
    r = subprocess.run(cli + ["--name", "EAM_Dynamo_FellingerParkWilkins_2010_Nb__MO_102133002179_005",
                              "--install"], capture_output=True, text=True)
    if "system collection" in r.stderr:  # Debian's openkim-models is installed
        assert r.returncode == 2 and "choose another name" in r.stderr
    r = subprocess.run(cli + ["--kim-id", "MO_12_000"], capture_output=True, text=True)
    assert r.returncode == 2 and "KIM ID 'MO_12_000' is malformed" in r.stderr
    bad = tmp_path / "bad.params"
    bad.write_text(SRC.read_text().replace("compot-params 1", "compot-params 5"))
    r = subprocess.run(cli[:5] + [str(bad), "--out", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "bad.params:2: format version '5' is not supported" in r.stderr


def test_export_cli_default_name_and_kim_id_warning(tmp_path):
    cli = [sys.executable, "-m", "compot.cli", "export", "kim", str(SRC), "--out", str(tmp_path)]
    r = subprocess.run(cli + ["--data-citation", "mlearn"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    name = default_kim_model_name(["Nb"], SRC.read_text())
    assert f"wrote KIM portable model {name} " in r.stdout and "warning" not in r.stderr
    assert parse_edn((tmp_path / name / "kimspec.edn").read_text())["source-citations"][1]["doi"] == \
        DATA_CITATIONS["mlearn"]["doi"]
    r = subprocess.run(cli + ["--kim-id", "MO_123456789012_000"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{name}__MO_123456789012_000" in r.stdout
    assert "warning: " in r.stderr and "must be the one OpenKIM issued" in r.stderr
