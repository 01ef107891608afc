"""Read and write parameter files, format v2 (and v1) (``docs/parameter-file.md``).

The same format is read by the C core of the KIM driver and the LAMMPS plugin.
Values are written with 17 significant digits, so a round trip is exact.
Files are written atomically (temporary file in the same folder, then rename).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .errors import CompotError, ParameterFileError
from .expression import parse
from .functions import atomic_number
from .model import Model

__all__ = ["write_model", "read_model", "format_model", "atomic_write_text", "json_text", "atomic_write_json",
           "FORMAT_VERSION"]

#: the version new fits are written in (compot.recipe)
FORMAT_VERSION = 4
#: versions :func:`read_model` reads (v1 files evaluate exactly as in the first release)
READABLE_VERSIONS = (1, 2, 3, 4)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_ready(value):
    """``value`` with every non-finite float (NaN, ±inf) replaced by None, numpy
    scalars and arrays turned into Python numbers and lists, tuples into lists,
    and mapping keys into strings."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    try:                            # mpmath numbers, Fractions, ...
        return _json_ready(float(value))
    except (TypeError, ValueError):
        return str(value)


def json_text(value, indent: int | None = 1) -> str:
    """Strict JSON (RFC 8259) of ``value``: every output file of compot goes through it.

    A non-finite number (NaN, ±inf) is written as ``null``, never as the bare
    ``NaN``/``Infinity`` of Python's ``json`` module, which JSON parsers of other
    languages reject. numpy scalars and arrays become numbers and lists; any other
    object its ``float`` if it has one (mpmath numbers), else its ``str``.

    Parameters
    ----------
    value : JSON-like tree of dict, list, tuple, str, numbers, None
    indent : int or None, default 1 — as for :func:`json.dumps`

    Returns
    -------
    str — no trailing newline.
    """
    return json.dumps(_json_ready(value), indent=indent, allow_nan=False)


def atomic_write_json(path: str | os.PathLike, value, indent: int | None = 1) -> None:
    """:func:`json_text` of ``value`` written atomically to ``path``, with a final newline."""
    atomic_write_text(path, json_text(value, indent) + "\n")


def _fmt(x: float) -> str:
    return repr(float(x))


# ------------------------------------------------------------------ lexical rules
# The same rules as the C reader (kim_driver/compot_io.c); see the sections
# Grammar and Errors of docs/parameter-file.md.
MAX_SPECIES = 64
_BAD_BYTE = re.compile(rb"[^\t\n\r\x20-\x7e]|\r(?!\n)")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NONFINITE_WORD = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_ASCII_NAMES = {"Å": "Angstrom", "²": "^2", "§": "section ", "α": "alpha", "β": "beta", "γ": "gamma",
                "τ": "tau", "φ": "phi", "ρ": "rho", "θ": "theta", "≤": "<=", "≥": ">=", "–": "-", "—": "-"}


#: How to convert a file of compot 0.1.0 (``Å`` and ``Å²`` in comments); ASCII itself,
#: and the same words as the C reader's (kim_driver/compot_io.c).
_ASCII_HINT = (r"(files written by compot 0.1.0 hold the Angstrom sign in comments: "
               r"sed -i 's/\xC3\x85\xC2\xB2/Angstrom^2/g; s/\xC3\x85/Angstrom/g' FILE)")


def _ascii_text(name: str, data: bytes) -> str:
    """The text of a parameter file: printable ASCII, tabs and line ends (LF or
    CR LF) only; any other byte is a :class:`ParameterFileError` naming its line
    and column."""
    bad = _BAD_BYTE.search(data)
    if bad:
        pos = bad.start()
        line = data.count(b"\n", 0, pos) + 1
        column = pos - data.rfind(b"\n", 0, pos)
        raise ParameterFileError(f"{name}:{line}: expected ASCII text (printable characters, tabs and line ends), "
                                 f"found byte 0x{data[pos]:02X} at column {column} {_ASCII_HINT}")
    return data.decode("ascii")


def _to_ascii(text: str) -> str:
    """``text`` with the symbols of comments spelled in ASCII (Å → Angstrom) and
    any other non-ASCII character escaped, so that every reader accepts it."""
    text = "".join(_ASCII_NAMES.get(c, c) for c in text)
    return text.encode("ascii", "backslashreplace").decode("ascii")


def _number(token: str) -> tuple[float | None, str | None]:
    """(value, None) for a finite decimal number (no hexadecimal, inf or nan,
    no ``_``), else (None, what the token is not)."""
    if not _DECIMAL.fullmatch(token):
        if _NONFINITE_WORD.fullmatch(token):
            return None, "a finite number"
        return None, "a number; expected a decimal number such as -2.5e-3"
    value = float(token)
    if not math.isfinite(value):
        return None, "a finite number"
    return value, None


def _species_error(species: list[str]) -> str | None:
    """What is wrong with the symbols of the ``species`` line, or None."""
    if not 1 <= len(species) <= MAX_SPECIES:
        return f"species: expected 1 to {MAX_SPECIES} chemical symbols, found {len(species)}"
    for i, symbol in enumerate(species):
        try:
            atomic_number(symbol)
        except ValueError:
            return f"species: expected a chemical symbol such as Nb, found '{symbol}'"
        if symbol in species[:i]:
            return f"species: expected distinct symbols, found '{symbol}' twice"
    return None


def _domain_error(model: Model, block: str, value: float, values: dict) -> str | None:
    """The rule a parameter value violates (``'alpha > 0'``), or None; the C core
    has the same rules (compot_value_domain_error, exponent_error)."""
    owner, leaf = block.split(".", 1)
    if leaf == "alpha" and not value > 0:
        return "alpha > 0"
    if leaf == "beta":
        if not value > 1:
            return "beta > 1"
        K = model.layout.bases[int(owner[1:]) - 1].spec.K
        if not math.log(values[f"{owner}.alpha"][0]) + (K - 1) * math.log(value) < math.log(sys.float_info.max):
            return f"alpha * beta^(K-1) finite (K = {K})"
    if leaf in ("phi_max", "rho_max", "q_max") and not value > 0:
        return f"{leaf} > 0 (a channel that never occurs is stored as 1)"
    if block == "w.tau" and not value > 0:
        return "tau > 0 (the saturation width)"
    if block == "w.r_a" and not value >= 0:
        return "r_a >= 0 (the inner window start)"
    if block == "g.gamma_lo" and not value > 0:
        return "gamma_lo > 0 (the grade up to which the fitted energy is on)"
    if block == "g.gamma_hi":      # gamma_lo of the same species is read before
        lo = values["g.gamma_lo"][len(values["g.gamma_hi"])]
        if not value > lo:
            return f"gamma_hi > gamma_lo = {lo!r} (the grade from which the fitted energy is off)"
    if block == "g.n_min" and not value >= 0:
        return "n_min >= 0 (the data's lowest coordination)"
    return None


def format_model(model: Model, comment: str | None = None) -> str:
    """Text of the parameter file of ``model`` (its format version, v2 for new models)."""
    lay = model.layout
    version = model.version
    total = sum(b.size for b in lay.blocks)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = [f"# compot parameter file, format v{version}",
           f"# written by compot {__version__} on {now}",
           f"# {lay.n_linear} linear + {lay.n_nonlinear} nonlinear parameters; grammar: docs/parameter-file.md"]
    if comment:
        out += [f"# {line}" for line in comment.splitlines()]
    out += [f"compot-params {version}",
            f"expression {lay.expression}",
            "species " + " ".join(lay.species),
            f"cutoff {_fmt(model.cutoff)}                # r_c [Å]",
            f"parameters {total}"]
    current = None
    for b in lay.blocks:
        owner = b.name.split(".")[0]
        if owner != current:
            current = owner
            if owner == "chemistry":
                out.append("# species embedding: r neighbour channels per basis, weights bJ.w.<s>.e<c>")
            elif owner == "w":
                out.append("# inner window per species pair, saturation width and reference site energy "
                           "(format v2, MODEL_SPEC 10)")
            elif owner == "g":
                out.append("# extrapolation grade: mean feature vector, whitening factor, switch range "
                           "(format v2, MODEL_SPEC 10)")
            elif owner.startswith("b"):
                info = lay.bases[int(owner[1:]) - 1]
                users = " ".join(f"n{u}" for u in info.users)
                out.append(f"# basis {owner}: {info.spec}, used by {users}")
            else:
                node = lay.nodes[int(owner[1:])]
                out.append(f"# node {owner}: {type(node.term).__name__} {node.term}")
        values = model.params[b.name].ravel()
        for name, v in zip(b.element_names(), values):
            out.append(f"{name} {_fmt(v)}    # [{b.unit}] {b.role}")
    out.append("end")
    return _to_ascii("\n".join(out) + "\n")   # the format is ASCII (units, comments)


def write_model(model: Model, path: str | os.PathLike, comment: str | None = None) -> None:
    """Write ``model`` to ``path`` in its format version (v2 for new models), atomically."""
    atomic_write_text(path, format_model(model, comment))


def read_model(path: str | os.PathLike) -> Model:
    """Read a parameter file (format v2 or v1).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    Model

    Raises
    ------
    ParameterFileError
        Naming the file and line, what was expected and what was found: a byte
        that is not printable ASCII, tab or line end; wrong magic word or
        version; bad expression or one beyond the limits (K, L, P, nesting,
        terms, parameter values); unknown species; a value that is not a
        finite decimal number or is out of range (α > 0, β > 1, scales > 0,
        the v2 window rules, γ_hi > γ_lo > 0); unknown/missing/misordered parameter, wrong
        count, text after ``end``. The C reader (kim_driver/compot_io.c)
        rejects exactly the same files on the same line
        (tests/test_bad_files.py).
    """
    path = Path(path)
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParameterFileError(f"{path}: cannot read parameter file: {exc}") from None
    raw = _ascii_text(name, data)
    physical = raw.split("\n")                    # LF ends a line; CR LF leaves a blank CR
    n_lines = len(physical) - (raw.endswith("\n") or not raw)
    lines = []
    for no, line in enumerate(physical, start=1):
        text = line.split("#", 1)[0].strip(" \t\r")
        if text:
            lines.append((no, text))
    it = iter(lines)

    def nxt(expect: str, progress: str = ""):
        try:
            return next(it)
        except StopIteration:
            raise ParameterFileError(f"{name}: file ends at line {n_lines}{progress}; expected {expect}") from None

    def keyword(key: str, expect: str):
        no, text = nxt(f"'{key} {expect}'")
        word, *rest = text.split(None, 1)
        if word != key:
            raise ParameterFileError(f"{name}:{no}: expected '{key} {expect}', found '{text}'")
        return no, rest[0].strip(" \t\r") if rest else ""

    no, ver = keyword("compot-params", "<version>")
    if ver not in [str(v) for v in READABLE_VERSIONS]:
        raise ParameterFileError(f"{name}:{no}: format version {ver!r} is not supported; "
                                 f"this reader reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    no_e, expr = keyword("expression", "<model expression>")
    try:
        root = parse(expr)
    except CompotError as exc:
        raise ParameterFileError(f"{name}:{no_e}: {exc}") from None
    no_s, spec = keyword("species", "<symbol> ...")
    species = spec.split()
    problem = _species_error(species)
    if problem:
        raise ParameterFileError(f"{name}:{no_s}: {problem}")
    no_c, cut = keyword("cutoff", "<r_c in Angstrom>")
    cutoff, _ = _number(cut)
    if cutoff is None or not cutoff > 0:
        raise ParameterFileError(f"{name}:{no_c}: cutoff: expected one positive finite number r_c [Angstrom], "
                                 f"found '{cut}'")
    for t in root.children() if root.merges_children else (root,):
        if t.is_core and t.r_out > cutoff:
            raise ParameterFileError(f"{name}:{no_e}: expression: {t} needs r_out <= r_c; expected r_out <= "
                                     f"{cutoff!r} (the cutoff), found {t.r_out!r} (cutoff on line {no_c})")
    try:
        model = Model(expr, species, cutoff, version=int(ver))
    except CompotError as exc:
        raise ParameterFileError(f"{name}:{no_e}: {exc}") from None
    no_n, count = keyword("parameters", "<count>")
    # a species embedding (docs/parameter-file.md, "Species embedding"): an optional
    # first parameter 'chemistry.rank <r>' sets the channels of every basis
    first = next(it, None)
    if first is not None:
        it = itertools.chain([first], it)
        parts = first[1].split()
        if parts[0] == "chemistry.rank" and len(parts) == 2:
            r, _ = _number(parts[1])
            if r is None or not (r == int(r) and 1 <= r <= len(species)):
                raise ParameterFileError(f"{name}:{first[0]}: value '{parts[1]}' of 'chemistry.rank' is out of "
                                         f"range; expected an integer rank in 1..{len(species)} (the species)")
            model = Model(expr, species, cutoff, version=int(ver), rank=int(r))
    expected_names = [(b, n) for b in model.layout.blocks for n in b.element_names()]
    if count != str(len(expected_names)):
        raise ParameterFileError(f"{name}:{no_n}: parameters: expected {len(expected_names)} for "
                                 f"'{model.expression}' with species {' '.join(species)}, found {count!r}")
    values: dict[str, list[float]] = {b.name: [] for b in model.layout.blocks}
    for done, (block, pname) in enumerate(expected_names):
        no, text = nxt(f"'{pname}'", f" after {done} of {len(expected_names)} parameters")
        parts = text.split()
        if parts[0] != pname:
            raise ParameterFileError(f"{name}:{no}: expected parameter '{pname}', found '{parts[0]}'")
        if len(parts) != 2:
            raise ParameterFileError(f"{name}:{no}: expected '{pname} <value>', found '{text}'")
        v, problem = _number(parts[1])
        if problem:
            raise ParameterFileError(f"{name}:{no}: value '{parts[1]}' of '{pname}' is not {problem}")
        problem = _domain_error(model, block.name, v, values)
        if problem:
            raise ParameterFileError(f"{name}:{no}: value '{parts[1]}' of '{pname}' is out of range; "
                                     f"expected {problem}")
        if block.name == "w.r_b":      # the window rules, checked where r_b is read (as the C reader)
            problem = model.window_error("-".join(pname.split(".")[2:]), values["w.r_a"][len(values["w.r_b"])], v)
            if problem:
                raise ParameterFileError(f"{name}:{no}: '{pname}': {problem}")
        values[block.name].append(v)
    no, text = nxt("'end'")
    if text != "end":
        raise ParameterFileError(f"{name}:{no}: expected 'end' after {len(expected_names)} parameters, found '{text}'")
    extra = next(it, None)
    if extra is not None:
        raise ParameterFileError(f"{name}:{extra[0]}: unexpected text after 'end': '{extra[1]}'")
    for bname, vals in values.items():
        model.set_block(bname, np.array(vals))
    return model
