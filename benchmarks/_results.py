"""Results of a timing benchmark (``fim_nb.py``, ``fit_nb.py``): ``<out>.json`` and
a table ``| quantity | value | target |`` in ``<out>.md``, which is printed too."""

from __future__ import annotations

from pathlib import Path

from compot.io import atomic_write_json, atomic_write_text


def write_quantity_table(out: Path, results: dict, heading: str, rows: list[str]) -> None:
    """Write ``results`` to ``out.json`` and ``heading`` (a line such as the command)
    followed by the table ``rows`` (markdown rows of three cells) to ``out.md``."""
    atomic_write_json(out.with_suffix(".json"), results)
    md = [heading, "", "| quantity | value | target |", "|---|---|---|", *rows]
    atomic_write_text(out.with_suffix(".md"), "\n".join(md) + "\n")
    print("\n".join(md))
