"""Read and write parameter files, format v1 (``docs/parameter-file.md``).

The same format is read by the C core of the KIM driver and the LAMMPS plugin.
Values are written with 17 significant digits, so a round trip is exact.
Files are written atomically (temporary file in the same folder, then rename).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .errors import CompotError, ParameterFileError
from .model import Model

__all__ = ["write_model", "read_model", "format_model", "atomic_write_text", "FORMAT_VERSION"]

FORMAT_VERSION = 1


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


def _fmt(x: float) -> str:
    return repr(float(x))


def format_model(model: Model, comment: str | None = None) -> str:
    """Text of the parameter file of ``model`` (format v1)."""
    lay = model.layout
    total = sum(b.size for b in lay.blocks)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = [f"# compot parameter file, format v{FORMAT_VERSION}",
           f"# written by compot {__version__} on {now}",
           f"# {lay.n_linear} linear + {lay.n_nonlinear} nonlinear parameters; grammar: docs/parameter-file.md"]
    if comment:
        out += [f"# {line}" for line in comment.splitlines()]
    out += [f"compot-params {FORMAT_VERSION}",
            f"expression {lay.expression}",
            "species " + " ".join(lay.species),
            f"cutoff {_fmt(model.cutoff)}                # r_c [Å]",
            f"parameters {total}"]
    current = None
    for b in lay.blocks:
        owner = b.name.split(".")[0]
        if owner != current:
            current = owner
            if owner.startswith("b"):
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
    return "\n".join(out) + "\n"


def write_model(model: Model, path: str | os.PathLike, comment: str | None = None) -> None:
    """Write ``model`` to ``path`` in format v1, atomically."""
    atomic_write_text(path, format_model(model, comment))


def read_model(path: str | os.PathLike) -> Model:
    """Read a parameter file (format v1).

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    Model

    Raises
    ------
    ParameterFileError
        Naming the file and line, what was expected and what was found: wrong
        magic word or version, bad expression, unknown/missing/misordered
        parameter, wrong count, non-finite value, text after ``end``.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterFileError(f"{path}: cannot read parameter file: {exc}") from None
    lines = []
    for no, line in enumerate(raw.splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            lines.append((no, text))
    name = str(path)
    it = iter(lines)
    last = [0]

    def nxt(expect: str):
        try:
            no, text = next(it)
        except StopIteration:
            raise ParameterFileError(f"{name}: file ends after line {last[0]}; expected {expect}") from None
        last[0] = no
        return no, text

    def keyword(key: str, expect: str):
        no, text = nxt(f"'{key} {expect}'")
        word, _, rest = text.partition(" ")
        if word != key:
            raise ParameterFileError(f"{name}:{no}: expected '{key} {expect}', found '{text}'")
        return no, rest.strip()

    no, ver = keyword("compot-params", "<version>")
    if ver != str(FORMAT_VERSION):
        raise ParameterFileError(f"{name}:{no}: format version {ver!r} is not supported; "
                                 f"this reader reads version {FORMAT_VERSION}")
    no_e, expr = keyword("expression", "<model expression>")
    no_s, spec = keyword("species", "<symbol> ...")
    species = spec.split()
    no_c, cut = keyword("cutoff", "<r_c in Å>")
    try:
        cutoff = float(cut)
    except ValueError:
        raise ParameterFileError(f"{name}:{no_c}: cutoff: expected a number in Å, found {cut!r}") from None
    if not (math.isfinite(cutoff) and cutoff > 0):
        raise ParameterFileError(f"{name}:{no_c}: cutoff: expected a positive finite radius in Å, found {cut!r}")
    try:
        model = Model(expr, species, cutoff)
    except CompotError as exc:
        raise ParameterFileError(f"{name}:{no_e}: {exc}") from None
    no_n, count = keyword("parameters", "<count>")
    expected_names = [(b, n) for b in model.layout.blocks for n in b.element_names()]
    if count != str(len(expected_names)):
        raise ParameterFileError(f"{name}:{no_n}: parameters: expected {len(expected_names)} for "
                                 f"'{model.expression}' with species {' '.join(species)}, found {count!r}")
    values: dict[str, list[float]] = {b.name: [] for b in model.layout.blocks}
    for done, (block, pname) in enumerate(expected_names):
        no, text = nxt(f"parameter '{pname}' ({done} of {len(expected_names)} read)")
        parts = text.split()
        if parts[0] != pname:
            raise ParameterFileError(f"{name}:{no}: expected parameter '{pname}', found '{parts[0]}'")
        if len(parts) != 2:
            raise ParameterFileError(f"{name}:{no}: expected '{pname} <value>', found '{text}'")
        try:
            v = float(parts[1])
        except ValueError:
            raise ParameterFileError(f"{name}:{no}: value {parts[1]!r} of '{pname}' is not a number") from None
        if not math.isfinite(v):
            raise ParameterFileError(f"{name}:{no}: value {parts[1]!r} of '{pname}' is not a finite number")
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
