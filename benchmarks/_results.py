"""Results of the benchmarks: a timing benchmark's (``fim_nb.py``, ``fit_nb.py``)
``<out>.json`` and table ``| quantity | value | target |`` in ``<out>.md``, printed too;
and the common ending of the accuracy benchmarks (:func:`run_and_write`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from compot.evaluation import predict
from compot.io import atomic_write_json, atomic_write_text, read_model


def write_quantity_table(out: Path, results: dict, heading: str, rows: list[str]) -> None:
    """Write ``results`` to ``out.json`` and ``heading`` (a line such as the command)
    followed by the table ``rows`` (markdown rows of three cells) to ``out.md``."""
    atomic_write_json(out.with_suffix(".json"), results)
    md = [heading, "", "| quantity | value | target |", "|---|---|---|", *rows]
    atomic_write_text(out.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(md))


class BenchmarkError(Exception):
    """A benchmark cannot run (data or peer files missing); its message says what to set."""


def run_and_write(name: str, run, markdown, args) -> int:
    """``run(args)`` → result dict, written to ``args.out`` (JSON) and ``markdown(result)``
    beside it (``.md``, printed too). Returns the exit status: 0, or 2 after printing a
    :class:`BenchmarkError` as ``name: message``."""
    try:
        result = run(args)
    except BenchmarkError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    atomic_write_json(out, result, indent=2)
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(markdown(result))
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
