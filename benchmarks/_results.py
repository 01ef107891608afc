"""Results of the benchmarks: a timing benchmark's (``fim_nb.py``, ``fit_nb.py``)
``<out>.json`` and table ``| quantity | value | target |`` in ``<out>.md``, printed too;
and what the accuracy benchmarks (``accuracy_nb.py``, ``accuracy_mo.py``,
``accuracy_nbmotaw.py``) share: their common options (:func:`accuracy_parser`), the
compot rows (:func:`compot_rows`), the table cells (:func:`fmt`) and the ending
(:func:`run_and_write`)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from compot.data import default_data_dir, default_peers_dir
from compot.errors import CompotError
from compot.evaluation import predict
from compot.io import atomic_write_json, atomic_write_text, read_model

RESULTS = Path(__file__).resolve().parent / "results"


def fmt(x, scale: float = 1.0, digits: int = 2) -> str:
    """A table cell: ``x * scale`` with ``digits`` decimals, ``—`` for None, NaN or ±inf."""
    return "—" if x is None or not math.isfinite(x) else f"{x * scale:.{digits}f}"


def write_quantity_table(out: Path, results: dict, heading: str, rows: list[str]) -> None:
    """Write ``results`` to ``out.json`` and ``heading`` (a line such as the command)
    followed by the table ``rows`` (markdown rows of three cells) to ``out.md``."""
    atomic_write_json(out.with_suffix(".json"), results)
    md = [heading, "", "| quantity | value | target |", "|---|---|---|", *rows]
    atomic_write_text(out.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(md))


class BenchmarkError(Exception):
    """A benchmark cannot run (data or peer files missing); its message says what to set."""


def accuracy_parser(name: str, description: str, *, data: Path | None = None, models=(), peers: str = "",
                    **kwargs) -> argparse.ArgumentParser:
    """The options of every accuracy benchmark ``name``: ``--model`` (compot parameter
    files, a row each; default ``models``), ``--data`` (default ``data``, else
    :func:`compot.data.default_data_dir`: ``$COMPOT_DATA``), ``--peers`` (default
    :func:`compot.data.default_peers_dir`; ``peers`` says what it must hold),
    ``--validation-fraction`` (0.1), ``--seed`` (0) and ``--out``
    (``results/<name>.json``). ``kwargs`` go to :class:`argparse.ArgumentParser`."""
    ap = argparse.ArgumentParser(description=description, **kwargs)
    ap.add_argument("--model", nargs="+" if models else "*", default=list(models),
                    help="compot parameter files, one table row each")
    ap.add_argument("--data", default=str(data or default_data_dir()),
                    help="data directory (default: under $COMPOT_DATA)")
    ap.add_argument("--peers", default=str(default_peers_dir()),
                    help=f"peer potentials{': ' + peers if peers else ''} (default $COMPOT_PEERS, else peers "
                         "next to the data)")
    ap.add_argument("--validation-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / f"{name}.json"))
    return ap


def run_and_write(name: str, run, markdown, args) -> int:
    """``run(args)`` → result dict, written to ``args.out`` (JSON) and ``markdown(result)``
    beside it (``.md``, printed too). Returns the exit status: 0, or 2 after printing a
    :class:`BenchmarkError` or :class:`~compot.errors.CompotError` as ``name: error: message``."""
    try:
        result = run(args)
    except (BenchmarkError, CompotError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    md = markdown(result)
    atomic_write_json(out, result, indent=2)
    atomic_write_text(out.with_suffix(".md"), md)
    print(md)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def compot_rows(paths, configs, metrics) -> list[dict]:
    """One result row per compot parameter file of ``paths``: its predictions on
    ``configs`` (energies, forces, stress) timed, and ``metrics(e, f, s)`` of them."""
    rows = []
    for p in paths:
        model = read_model(p)
        t0 = time.perf_counter()
        e, f, s = predict(model, configs, stress=True)
        rows.append(dict(name=f"compot `{model.expression}` ({Path(p).name})", path=str(p),
                         n_parameters=model.n_linear + model.n_nonlinear, seconds=time.perf_counter() - t0,
                         metrics=metrics(e, f, s)))
    return rows
