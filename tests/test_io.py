"""Parameter file formats v2 and v1: exact round trip and clear errors."""

import numpy as np
import pytest

from compot.errors import ParameterFileError
from compot.io import format_model, read_model, write_model

from helpers import random_model


@pytest.mark.parametrize("version", [2, 1])
@pytest.mark.parametrize("expr,species", [
    ("E[G8L4] + N[E[G8L4]] + ZBL(1.6, 2.4)", ("Nb",)),
    ("G4 * (A[G3P2] + C5)", ("Nb", "Mo")),
])
def test_round_trip_is_exact(tmp_path, expr, species, version):
    m = random_model(expr, species=species, version=version)
    m.params["b1.phi_max"] = np.random.default_rng(0).uniform(0.1, 30, m.params["b1.phi_max"].shape)
    write_model(m, tmp_path / "a.params")
    m2 = read_model(tmp_path / "a.params")
    assert m2.expression == m.expression and m2.species == m.species and m2.cutoff == m.cutoff
    assert m2.version == version
    assert (f"compot-params {version}\n" in (tmp_path / "a.params").read_text())
    for k in m.params:
        assert np.array_equal(m.params[k], m2.params[k]), k
    body = lambda t: "\n".join(l for l in t.splitlines() if not l.startswith("# written"))
    assert body(format_model(m2)) == body(format_model(m))


def _good(tmp_path):
    m = random_model("E[G2L2] + ZBL(1.0, 2.0)")
    m.params["w.r_a"][:] = 0.2          # r_a <= r_b = 0.4 <= ZBL r_in
    m.params["w.r_b"][:] = 0.4
    p = tmp_path / "m.params"
    write_model(m, p)
    return p.read_text().splitlines()


def _line_of(lines, start):
    return next(i for i, l in enumerate(lines) if l.startswith(start))


@pytest.mark.parametrize("mutate,fragment", [
    (lambda L: L[:_line_of(L, "n1.c.Nb.Nb.1.2")], "file ends at line"),
    (lambda L: [l.replace("b1.beta", "b1.gamma") for l in L], "expected parameter 'b1.beta', found 'b1.gamma'"),
    (lambda L: [l.replace("parameters 33", "parameters 32") for l in L], "expected 33"),
    (lambda L: [l if not l.startswith("n1.gamma.1") else "n1.gamma.1 nan" for l in L], "not a finite number"),
    (lambda L: [l.replace("compot-params 2", "compot-params 5") for l in L], "version '5' is not supported"),
    (lambda L: [l.replace("compot-params 2", "compot-params 1") for l in L], "expected 13 for"),
    (lambda L: [l if not l.startswith("w.r_b.Nb.Nb") else "w.r_b.Nb.Nb 1.5" for l in L], "must be fully on wherever the inner window of Nb-Nb is not"),
    (lambda L: [l if not l.startswith("w.r_a.Nb.Nb") else "w.r_a.Nb.Nb 0.5" for l in L]
     + [], "needs r_a <= r_b < r_c; expected 0.5 <= r_b"),
    (lambda L: [l if not l.startswith("w.tau") else "w.tau 0" for l in L], "expected tau > 0"),
    (lambda L: [l.replace("species Nb", "species Nb Nb") for l in L], "distinct"),
    (lambda L: [l.replace("expression E[G2L2]", "expression E[G2]") for l in L], "expected 'L'"),
    (lambda L: [l.replace("expression E[G2L2] + ZBL(1, 2)", "expression E[G2L2] * ZBL(1, 2)") for l in L],
     "top-level sum"),
    (lambda L: L + ["extra 1"], "unexpected text after 'end'"),
    (lambda L: [l.replace("cutoff 4.5", "cutoff -1") for l in L], "positive"),
])
def test_bad_parameter_files(tmp_path, mutate, fragment):
    lines = _good(tmp_path)
    bad = tmp_path / "bad.params"
    bad.write_text("\n".join(mutate(lines)) + "\n")
    with pytest.raises(ParameterFileError) as exc:
        read_model(bad)
    msg = str(exc.value)
    assert str(bad) in msg and fragment in msg and "\n" not in msg


def test_missing_file(tmp_path):
    with pytest.raises(ParameterFileError, match="cannot read parameter file"):
        read_model(tmp_path / "nope.params")
