"""Expression parsing and parameter counts against the paper's tables."""

import pytest

from compot.errors import ExpressionError
from compot.expression import count_parameters, layout, parse

# (configuration, linear size, nonlinear size): TABLE 3, TABLE 4 and Appendix C
# (TABLE 6) of arXiv:2504.19372, plus the angular term of MODEL_SPEC §4.
PAPER_COUNTS = [
    ("G4", 5, 2), ("G6", 7, 2), ("G8", 9, 2), ("G10", 11, 2), ("G12", 13, 2), ("G14", 15, 2),
    ("G16", 17, 2), ("G18", 19, 2),
    ("C8", 9, 0), ("C16", 17, 0), ("C24", 25, 0), ("C32", 33, 0), ("C40", 41, 0),
    ("E[G4L4]", 17, 6), ("E[G4L6]", 25, 8), ("E[G4L8]", 33, 10), ("E[G6L4]", 25, 6), ("E[G6L5]", 31, 7),
    ("E[G8L4]", 33, 6), ("E[G8L5]", 41, 7), ("N[E[G6L5]]", 31, 7), ("N[E[G8L4]]", 33, 6),
    ("G4 * G4", 11, 4), ("G6 * G4", 13, 4), ("G6 * G6", 15, 4), ("G8 * G6", 17, 4), ("G8 * G8", 19, 4),
    ("G10 * G10", 23, 4),
    ("G8 * E[G4L4]", 27, 8), ("G8 * E[G4L6]", 35, 10), ("G8 * E[G4L8]", 43, 12), ("G8 * E[G6L4]", 35, 8),
    ("G8 * E[G6L5]", 41, 9), ("G8 * E[G8L4]", 43, 8), ("G8 * E[G8L5]", 51, 9), ("G10 * E[G6L5]", 43, 9),
    ("G10 * E[G8L4]", 45, 8), ("G12 * E[G8L4]", 47, 8),
    ("E[G6L5] + N[E[G6L5]]", 61, 12), ("E[G8L4] + N[E[G8L4]]", 65, 10),
    ("G8 + A[G8P4]", 49, 2),
]


@pytest.mark.parametrize("expr,n_lin,n_nonlin", PAPER_COUNTS)
def test_paper_parameter_counts(expr, n_lin, n_nonlin):
    assert count_parameters(expr) == (n_lin, n_nonlin)


def test_cli_params_json(capsys):
    from compot.cli import main
    assert main(["params", "G10 * E[G8L4]", "--json"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    assert (out["n_linear"], out["n_nonlinear"], out["n_total"]) == (45, 8, 53)
    # a bare ZBL, as in a configuration (window from the data), counts like any window
    assert main(["params", "E[G8L4] + A[G8P4] + ZBL", "--json"]) == 0
    bare = json.loads(capsys.readouterr().out)
    assert main(["params", "E[G8L4] + A[G8P4] + ZBL(1.6, 2.4)", "--json"]) == 0
    windowed = json.loads(capsys.readouterr().out)
    assert bare["expression"] == "E[G8L4] + A[G8P4] + ZBL"
    assert bare["n_total"] == windowed["n_total"] == (8 * 4 + 1) + 8 * 5 + 6   # E (+ shift), A, α β γ1..4


def test_multispecies_counts():
    # two species: S² channels for pair terms, S per shift, S·S(S+1)/2 for A
    assert count_parameters("G4", ("Nb", "Mo")) == (4 * 4 + 2, 2)
    assert count_parameters("E[G4L2]", ("Nb", "Mo")) == (4 * 2 * 4 + 2, 4)
    assert count_parameters("A[G2P1]", ("Nb", "Mo")) == (2 * 3 * 2 * 2 + 2, 2)


def test_round_trip_text():
    for expr, *_ in PAPER_COUNTS:
        assert str(parse(str(parse(expr)))) == str(parse(expr))
    assert str(parse("G8 * (E[G4L4] + N[E[G4L4]]) + ZBL(1.6, 2.4)")) == "G8 * (E[G4L4] + N[E[G4L4]]) + ZBL(1.6, 2.4)"


def test_basis_sharing_rule():
    lay = layout("E[G8L4] + N[E[G8L4]]", ("Nb",))
    assert len(lay.bases) == 1 and lay.bases[0].users == (1, 2)
    lay = layout("G8 * G8", ("Nb",))
    assert len(lay.bases) == 2            # product factors never share
    lay = layout("G8 + A[G8P4] + G6", ("Nb",))
    assert [str(b.spec) for b in lay.bases] == ["G8", "G6"]


@pytest.mark.parametrize("text,fragment", [
    ("", "empty"),
    ("Q8", "column 1"),
    ("E[G8]", "expected 'L' at column 5"),
    ("G8 +", "expected a term at column 5"),
    ("G8 * ZBL(1.0, 2.0)", "top-level sum"),
    ("ZBL(1.0, 2.0)", "at least one fitted term"),
    ("ZBL(2.0, 1.0) + G4", "r_in < r_out"),
    ("(G8", "expected ')'"),
    ("G0", "K"),
    ("E[G4L4]]", "expected '+', '*' or end of expression, found ']'"),
])
def test_expression_errors(text, fragment):
    with pytest.raises(ExpressionError, match=None) as exc:
        parse(text)
    assert fragment in str(exc.value)
    assert "\n" not in str(exc.value)
