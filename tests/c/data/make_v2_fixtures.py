"""Rewrite the format v2 fixtures of tests/c/data with the Python writer.

    .venv/bin/python tests/c/data/make_v2_fixtures.py

Each fixture is read leniently (name and value of every line), its values
are kept, blocks it lacks get fixed test values (E_ref per species and a
grade with a small dense U), and the model is written with
compot.io.write_model, so that the C reader (test_compot.c,
test_handwritten) reads exactly what the Python writer writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compot.io import write_model
from compot.model import Model

HERE = Path(__file__).resolve().parent
FIXTURES = ("nb_v2_e_a_zbl.params", "mo_nb_v2_g_times_a.params")
E_REF = {"Nb": -7.25, "Mo": -8.5}


def lenient_read(path: Path) -> tuple[dict[str, str], dict[str, float]]:
    header, values = {}, {}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or text == "end":
            continue
        key, _, rest = text.partition(" ") if " " in text else text.partition("\t")
        rest = rest.strip()
        if key in ("compot-params", "expression", "species", "cutoff", "parameters"):
            header[key] = rest
        else:
            values[key] = float(rest)
    return header, values


def grade_values(m: Model) -> dict[str, np.ndarray]:
    S, d = m.params["g.mu"].shape
    r, c = np.tril_indices(d)
    mu = np.array([[0.05 * (k + 1) * (z + 1) for k in range(d)] for z in range(S)])
    U = np.where(r == c, 1.0 / (0.5 + 0.1 * r), 0.01 * ((r + 2 * c) % 5 - 2))
    lo = np.array([2.5 + z for z in range(S)])
    return {"g.mu": mu, "g.U": np.tile(U, (S, 1)), "g.gamma_lo": lo, "g.gamma_hi": 2.0 * lo,
            "w.e_ref": np.array([E_REF[s] for s in m.species])}


def main() -> None:
    for name in FIXTURES:
        path = HERE / name
        header, values = lenient_read(path)
        m = Model(header["expression"], header["species"].split(), float(header["cutoff"]), version=2)
        fill = grade_values(m)
        for b in m.layout.blocks:
            names = b.element_names()
            if all(n in values for n in names):
                m.set_block(b.name, np.array([values[n] for n in names]).reshape(b.shape))
            elif b.name in fill:
                m.set_block(b.name, fill[b.name])
            else:
                raise SystemExit(f"{name}: no values for block {b.name}")
        write_model(m, path, comment=f"test fixture of tests/c/test_compot.c; rewritten by {Path(__file__).name}")


if __name__ == "__main__":
    main()
