"""Python and C accept exactly the same parameter files.

Every file of the corpus ``tests/data/bad_params/`` (written by its
``generate.py``) states on its first line what both readers must do:
``# expect line N: TEXT`` — the Python reader (:func:`compot.io.read_model`)
and the C reader (``compot_create`` of ``kim_driver/``, built as a shared
library by :mod:`compot.ccore`) both reject the file, both messages name the
file and line N (``path:N:``, or ``path: file ends at line N``) and both
contain TEXT; ``# expect ok`` — both accept it. The rules are those of
docs/parameter-file.md (Grammar, Limits, Errors).
"""

from __future__ import annotations

import ctypes as ct
import os
import re
from pathlib import Path

import pytest

from compot.errors import ParameterFileError
from compot.io import read_model, write_model

from helpers import random_model

CORPUS = Path(__file__).resolve().parent / "data" / "bad_params"
FILES = sorted(CORPUS.glob("*.params"))
_EXPECT = re.compile(r"# expect (?:ok|line (\d+): (.+))")
_WHERE = re.compile(r":(\d+): |: file ends at line (\d+)[;, ]")


def _expectation(path: Path) -> tuple[int | None, str | None]:
    """(line, text) a reader must report, or (None, None) for a valid file."""
    first = path.read_bytes().split(b"\n", 1)[0].decode("ascii").rstrip("\r")
    m = _EXPECT.fullmatch(first)
    assert m, f"{path.name}: first line {first!r}; expected '# expect ok' or '# expect line N: TEXT'"
    return (int(m.group(1)), m.group(2)) if m.group(1) else (None, None)


@pytest.fixture(scope="session")
def core():
    """The C core as a shared library (built once and cached by compot.ccore)."""
    from compot.ccore import load_library
    return load_library()


def c_read(core, path: Path) -> str | None:
    """None if the C reader accepts ``path``, else its message."""
    handle = ct.c_void_p()
    msg = ct.create_string_buffer(4096)
    if core.compot_create(ct.byref(handle), os.fsencode(path), msg, len(msg)) == 0:
        core.compot_destroy(handle)
        return None
    return msg.value.decode("ascii", "backslashreplace")


def py_read(path: Path) -> str | None:
    """None if the Python reader accepts ``path``, else its message (any other
    exception, e.g. RecursionError or MemoryError, fails the test)."""
    try:
        read_model(path)
    except ParameterFileError as exc:
        return str(exc)
    return None


def _line_of(msg: str, path: Path) -> int:
    assert msg.startswith(str(path)), f"message does not start with the file name: {msg}"
    m = _WHERE.match(msg, len(str(path)))
    assert m, f"message names no line: {msg}"
    return int(m.group(1) or m.group(2))


@pytest.fixture(scope="session")
def v2_ready(core) -> bool:
    """Both readers read format v2 (accept the corpus' valid v2 file)."""
    path = CORPUS / "v2_ok.params"
    return py_read(path) is None and c_read(core, path) is None


def test_corpus_is_complete():
    names = {p.stem for p in FILES}
    for want in ("magic_word", "version_5", "param_missing", "param_extra", "param_misordered", "value_nan",
                 "value_minus_inf", "value_hex_float", "nonascii_comment", "nonascii_value", "alpha_zero",
                 "beta_below_one", "phi_max_zero", "huge_K", "huge_L", "huge_P", "deep_nesting",
                 "unbalanced_bracket", "species_unknown", "cutoff_zero", "zbl_rout_beyond_cutoff", "truncated",
                 "text_after_end", "v2_ra_gt_rb", "v2_rb_ge_rc", "v2_zbl_rin_lt_rb", "v2_q_max_zero",
                 "v2_tau_zero", "v2_e_ref_missing", "v2_U_upper_triangle", "v2_gamma_lo_zero",
                 "v2_gamma_hi_equal_lo"):
        assert want in names, f"{want}.params missing from {CORPUS}; run generate.py there"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_both_readers_agree(path, core, v2_ready, request):
    if path.stem.startswith("v2_") and not v2_ready:
        request.applymarker(pytest.mark.xfail(reason="v2 reader in progress", strict=False))
    line, text = _expectation(path)
    py_msg, c_msg = py_read(path), c_read(core, path)
    if line is None:
        assert py_msg is None, f"Python rejects a valid file: {py_msg}"
        assert c_msg is None, f"C rejects a valid file: {c_msg}"
        return
    assert py_msg is not None, f"Python accepts {path.name}; expected line {line}: {text}"
    assert c_msg is not None, f"C accepts {path.name}; expected line {line}: {text}"
    for reader, msg in (("Python", py_msg), ("C", c_msg)):
        assert "\n" not in msg, f"{reader}: message of more than one line: {msg!r}"
        assert _line_of(msg, path) == line, f"{reader} names another line than {line}: {msg}"
        assert text in msg, f"{reader}: message lacks {text!r}: {msg}"


@pytest.mark.parametrize("version", [1, 2, 3])
def test_written_files_are_ascii_and_read_by_both(tmp_path, core, v2_ready, version, request):
    """The Python writer spells units and comments in ASCII (Å → Angstrom), so
    its files, even with a non-ASCII comment, pass both strict readers."""
    if version >= 2 and not v2_ready:
        request.applymarker(pytest.mark.xfail(reason="v2 reader in progress", strict=False))
    m = random_model("E[G3L2] + A[G2P1] + ZBL(1.0, 2.0)", species=("Nb", "Mo"), version=version)
    if version >= 2:
        m.params["w.r_a"][:] = 0.5
        m.params["w.r_b"][:] = 0.8
    path = tmp_path / "m.params"
    write_model(m, path, comment="fitted at 300 K to Nb–Mo data, r_c = 4.5 Å, α ≤ β² §")
    path.read_bytes().decode("ascii")
    assert py_read(path) is None
    assert c_read(core, path) is None


@pytest.mark.parametrize("path", sorted(CORPUS.glob("nonascii_*.params")), ids=lambda p: p.stem)
def test_nonascii_message_is_the_same_and_says_how_to_convert(path, core):
    """A non-ASCII byte: both readers give the same one-line ASCII message, with
    the sed command that converts a file of compot 0.1.0 (Å in comments)."""
    py_msg, c_msg = py_read(path), c_read(core, path)
    assert py_msg == c_msg
    py_msg.encode("ascii")
    assert r"(files written by compot 0.1.0 hold the Angstrom sign in comments: sed -i " in py_msg
    assert py_msg.endswith(r"'s/\xC3\x85\xC2\xB2/Angstrom^2/g; s/\xC3\x85/Angstrom/g' FILE)")
