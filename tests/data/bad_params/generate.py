"""Write the bad-parameter-file corpus of tests/test_bad_files.py.

    .venv/bin/python tests/data/bad_params/generate.py     (rewrites *.params here)

Every file is one small valid model (format v1, or v2 for ``v2_*`` files) with
one defect. Its first line states what both readers, Python
(``compot.io.read_model``) and C (``compot_create``), must report:

    # expect line <N>: <text>     rejected, the message names line N and contains <text>
    # expect ok                   accepted (``ok_*`` files: the rules' edge cases)

N is the line of the defect; for a file that ends too early it is the number
of the last line ("file ends at line N"). Rules: docs/parameter-file.md,
sections Grammar, Limits and Errors.
"""

from __future__ import annotations

from pathlib import Path

from compot.model import Model

HERE = Path(__file__).resolve().parent

V1_EXPR = "E[G3L1] + ZBL(1.0, 2.0)"
V2_EXPR = "E[G3L1] + A[G2P1] + ZBL(1.0, 2.0)"
VALUES = {"alpha": "0.5", "beta": "1.6", "phi_max": "2.5", "rho_max": "20.0", "q_max": "30.0",
          "gamma": "0.5", "c": "0.125", "shift": "-5.0", "tau": "0.3", "r_a": "0.5", "r_b": "0.8",
          "e_ref": "-7.5", "mu": "0.25", "U": "0.5", "gamma_lo": "2.0", "gamma_hi": "4.0",
          "e_min": "-9.0", "n_min": "5.0"}


def base(version: int) -> list[str]:
    """Lines of the valid model the defects are made in (without the expect line)."""
    expr = V2_EXPR if version >= 2 else V1_EXPR
    m = Model(expr, ("Nb",), 4.0, version=version)
    names = [n for b in m.layout.blocks for n in b.element_names()]
    lines = [f"# compot bad-file corpus: base model, format v{version}",
             f"compot-params {version}", f"expression {expr}", "species Nb", "cutoff 4.0",
             f"parameters {len(names)}"]
    lines += [f"{n} {VALUES[n.split('.')[1]]}" for n in names]
    return lines + ["end"]


def at(lines: list[str], start: str) -> int:
    """0-based index of the line starting with ``start`` + ' ' (or equal to it)."""
    return next(i for i, l in enumerate(lines) if l == start or l.startswith(start + " "))


def replace(start: str, new: str):
    def f(L):
        i = at(L, start)
        return L[:i] + [new] + L[i + 1:], i
    return f


def insert_after(start: str, new: str):
    def f(L):
        i = at(L, start) + 1
        return L[:i] + [new] + L[i:], i
    return f


def delete(start: str):
    """Drop a line; the defect is then at the line that follows."""
    def f(L):
        i = at(L, start)
        return L[:i] + L[i + 1:], i
    return f


def swap(a: str, b: str):
    def f(L):
        i, j = at(L, a), at(L, b)
        L = list(L)
        L[i], L[j] = L[j], L[i]
        return L, min(i, j)
    return f


def truncate_before(start: str):
    """Keep the lines before ``start``; the defect is the end of the file."""
    def f(L):
        return L[:at(L, start)], EOF
    return f


def expr(text: str):
    return replace("expression", f"expression {text}")


def ok(f):
    def g(L):
        return f(L)[0], None
    return g


EOF = "end of file"
FIRST_65_ELEMENTS = ("H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
                     "Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb")

# name: (format version, mutation, expected text); the mutation returns the
# lines and the 0-based index of the defect (EOF: the file ends too early;
# None: a valid file); "{eof}" in the text is the number of the last line
CASES = {
    # header: magic word, version, counts
    "magic_word": (1, replace("compot-params", "compot-parameters 1"), "expected 'compot-params <version>'"),
    "version_5": (1, replace("compot-params", "compot-params 5"), "is not supported"),
    "version_leading_zero": (1, replace("compot-params", "compot-params 01"), "is not supported"),
    "version_sign": (1, replace("compot-params", "compot-params +1"), "is not supported"),
    "count_wrong": (1, replace("parameters", "parameters 14"), "parameters: expected 13"),
    "count_leading_zero": (1, replace("parameters", "parameters 013"), "parameters: expected"),
    "keyword_misspelled": (1, replace("parameters", "paramters 13"), "expected 'parameters <"),
    "only_comments": (1, truncate_before("compot-params"), "expected 'compot-params <version>'"),
    "header_truncated": (1, truncate_before("cutoff"), "expected 'cutoff <"),
    # parameter lines
    "param_missing": (1, delete("b1.phi_max.Nb.2"), "expected parameter 'b1.phi_max.Nb.2', found 'b1.phi_max.Nb.3'"),
    "param_extra": (1, insert_after("b1.beta", "b1.gamma 1.0"), "expected parameter 'b1.phi_max.Nb.1', found 'b1.gamma'"),
    "param_extra_at_end": (1, insert_after("n1.c.Nb.Nb.1.3", "n1.c.Nb.Nb.1.4 0.5"),
                           "expected 'end' after 13 parameters, found 'n1.c.Nb.Nb.1.4"),
    "param_misordered": (1, swap("b1.phi_max.Nb.1", "b1.phi_max.Nb.2"),
                         "expected parameter 'b1.phi_max.Nb.1', found 'b1.phi_max.Nb.2'"),
    "param_two_values": (1, replace("b1.alpha", "b1.alpha 0.5 0.6"), "expected 'b1.alpha <value>'"),
    "param_no_value": (1, replace("b1.alpha", "b1.alpha"), "expected 'b1.alpha <value>'"),
    # numbers: decimal and finite only
    "value_nan": (1, replace("n1.gamma.1", "n1.gamma.1 nan"), "value 'nan' of 'n1.gamma.1' is not a finite number"),
    "value_minus_inf": (1, replace("n0.shift.Nb", "n0.shift.Nb -Infinity"), "is not a finite number"),
    "value_overflow": (1, replace("n1.c.Nb.Nb.1.1", "n1.c.Nb.Nb.1.1 1e999"), "is not a finite number"),
    "value_hex_float": (1, replace("b1.alpha", "b1.alpha 0x1p-1"), "value '0x1p-1' of 'b1.alpha' is not a number"),
    "value_underscore": (1, replace("b1.phi_max.Nb.1", "b1.phi_max.Nb.1 2_5"), "is not a number"),
    "value_trailing_junk": (1, replace("b1.beta", "b1.beta 1.6x"), "is not a number"),
    "value_comma": (1, replace("n1.c.Nb.Nb.1.2", "n1.c.Nb.Nb.1.2 0,125"), "is not a number"),
    "cutoff_hex_float": (1, replace("cutoff", "cutoff 0x4p0"), "cutoff: expected one positive finite number"),
    "cutoff_nan": (1, replace("cutoff", "cutoff nan"), "cutoff: expected one positive finite number"),
    # characters: ASCII only
    "nonascii_comment": (1, insert_after("cutoff", "# r_c [\u00c5]"), "expected ASCII text"),
    "nonascii_value": (1, replace("b1.beta", "b1.beta \uff11.6"), "found byte 0xEF at column 9"),
    "nonascii_species_nbsp": (1, replace("species", "species Nb\u00a0"), "found byte 0xC2 at column 11"),
    "nonascii_expression": (1, expr("E[G3L1] \u2212 ZBL(1.0, 2.0)"), "expected ASCII text"),
    "control_formfeed": (1, replace("b1.alpha", "b1.alpha 0.5 \f# x"), "found byte 0x0C"),
    "control_lone_cr": (1, replace("b1.alpha", "b1.alpha 0.5\r# x"), "found byte 0x0D"),
    "control_nul": (1, replace("b1.alpha", "b1.alpha 0.5\0"), "found byte 0x00"),
    # value ranges
    "alpha_zero": (1, replace("b1.alpha", "b1.alpha 0"), "is out of range; expected alpha > 0"),
    "alpha_negative": (1, replace("b1.alpha", "b1.alpha -0.5"), "expected alpha > 0"),
    "beta_one": (1, replace("b1.beta", "b1.beta 1"), "is out of range; expected beta > 1"),
    "beta_below_one": (1, replace("b1.beta", "b1.beta 0.5"), "expected beta > 1"),
    "beta_overflow": (1, replace("b1.beta", "b1.beta 1e200"), "expected alpha * beta^(K-1) finite (K = 3)"),
    "phi_max_zero": (1, replace("b1.phi_max.Nb.2", "b1.phi_max.Nb.2 0"), "expected phi_max > 0"),
    "rho_max_negative": (1, replace("b1.rho_max.Nb.3", "b1.rho_max.Nb.3 -1"), "expected rho_max > 0"),
    "cutoff_zero": (1, replace("cutoff", "cutoff 0"), "cutoff: expected one positive finite number"),
    "cutoff_negative": (1, replace("cutoff", "cutoff -4.0"), "cutoff: expected one positive finite number"),
    "zbl_rout_beyond_cutoff": (1, expr("E[G3L1] + ZBL(1.0, 5.0)"), "needs r_out <= r_c"),
    "zbl_rin_ge_rout": (1, expr("E[G3L1] + ZBL(2.0, 1.0)"), "0 < r_in < r_out"),
    "zbl_number_overflow": (1, expr("E[G3L1] + ZBL(1.0, 1e999)"), "expected r_out (a finite number)"),
    # species
    "species_unknown": (1, replace("species", "species Xx"), "species: expected a chemical symbol such as Nb, found 'Xx'"),
    "species_lowercase": (1, replace("species", "species nb"), "found 'nb'"),
    "species_twice": (1, replace("species", "species Nb Nb"), "species: expected distinct symbols, found 'Nb' twice"),
    "species_none": (1, replace("species", "species"), "species: expected 1 to 64 chemical symbols, found 0"),
    "species_65": (1, replace("species", "species " + " ".join(FIRST_65_ELEMENTS.split())),
                   "species: expected 1 to 64 chemical symbols, found 65"),
    # expression: limits
    "huge_K": (1, expr("E[G99999999999L1] + ZBL(1.0, 2.0)"), "expected basis size K in 1..10000"),
    "huge_L": (1, expr("E[G3L10001] + ZBL(1.0, 2.0)"), "expected latent size L in 1..10000"),
    "huge_P": (1, expr("E[G3L1] + A[G2P41] + ZBL(1.0, 2.0)"), "expected Legendre order P in 0..40"),
    "K_zero": (1, expr("E[G0L1] + ZBL(1.0, 2.0)"), "expected basis size K in 1..10000"),
    "too_many_values": (1, expr("E[G10000L101] + ZBL(1.0, 2.0)"), "parameter values; expected at most 1000000"),
    "deep_nesting": (1, expr("(" * 201 + "E[G3L1]" + ")" * 201 + " + ZBL(1.0, 2.0)"),
                     "at column 202: parentheses nested deeper than 200"),
    "too_many_terms": (1, expr("E[G3L1]" + " * G1" * 200 + " + ZBL(1.0, 2.0)"),
                       "term 201; expected at most 200 terms"),
    # expression: syntax
    "unbalanced_bracket": (1, expr("E[G3L1 + ZBL(1.0, 2.0)"), "expected ']'"),
    "unbalanced_paren": (1, expr("(E[G3L1] + ZBL(1.0, 2.0)"), "expected ')'"),
    "extra_closing_paren": (1, expr("E[G3L1]) + ZBL(1.0, 2.0)"), "at column 8: expected '+', '*' or end of expression"),
    "unknown_term": (1, expr("E[G3L1] + Q8 + ZBL(1.0, 2.0)"),
                     "at column 11; expected G<K>, C<K>, E[..], N[E[..]], A[..]"),
    "blank_in_number": (1, expr("E[G3L1] + ZBL(1.0, 2. 0)"), "expected ')'"),
    "blank_in_K": (1, expr("E[G1 2L1] + ZBL(1.0, 2.0)"), "expected 'L'"),
    "zbl_in_product": (1, expr("E[G3L1] * ZBL(1.0, 2.0)"), "top-level sum"),
    "zbl_only": (1, expr("ZBL(1.0, 2.0)"), "at least one fitted term"),
    "zbl_hex_number": (1, expr("E[G3L1] + ZBL(0x1p0, 2.0)"), "column 16"),
    # end of file
    "truncated": (1, truncate_before("b1.phi_max.Nb.3"), "file ends at line {eof} after 4 of 13 parameters; "
                                                          "expected 'b1.phi_max.Nb.3'"),
    "no_end": (1, truncate_before("end"), "expected 'end'"),
    "text_after_end": (1, insert_after("end", "b1.alpha 0.5"), "after 'end'"),
    "end_with_word": (1, replace("end", "end now"), "expected 'end' after 13 parameters"),
    # edge cases both readers accept
    "ok_v1": (1, ok(replace("end", "end")), None),
    "ok_crlf": (1, ok(lambda L: ([l + "\r" for l in L], 0)), None),
    "ok_tabs": (1, ok(lambda L: ([l.replace(" ", "\t") if not l.startswith("#") else l for l in L], 0)), None),
    "ok_blanks_in_expression": (1, ok(expr("  E [ G 3 L 1 ]+ZBL ( 1.0 ,2.0 )  ")), None),
    "ok_number_forms": (1, ok(lambda L: (L[:at(L, "b1.alpha")] + ["b1.alpha +.5e0", "b1.beta 16E-1"]
                                         + L[at(L, "b1.beta") + 1:], 0)), None),
    "ok_largest_double": (1, ok(replace("n1.c.Nb.Nb.1.1", "n1.c.Nb.Nb.1.1 -1.7976931348623157e308")), None),
    "ok_smallest_double": (1, ok(replace("n1.c.Nb.Nb.1.1", "n1.c.Nb.Nb.1.1 4.9e-324")), None),
    "ok_underflow_to_zero": (1, ok(replace("n1.c.Nb.Nb.1.1", "n1.c.Nb.Nb.1.1 1e-999")), None),
    "ok_trailing_comment_lines": (1, ok(lambda L: (L + ["", "# the end", "   "], 0)), None),
    # format v2 (docs/parameter-file.md, "Format v2")
    "v2_ok": (2, ok(replace("end", "end")), None),
    "v2_ra_gt_rb": (2, replace("w.r_b.Nb.Nb", "w.r_b.Nb.Nb 0.4"), "needs r_a <= r_b < r_c"),
    "v2_rb_ge_rc": (2, replace("w.r_b.Nb.Nb", "w.r_b.Nb.Nb 4.0"), "needs r_a <= r_b < r_c"),
    "v2_zbl_rin_lt_rb": (2, replace("w.r_b.Nb.Nb", "w.r_b.Nb.Nb 1.5"),
                         "must be fully on wherever the inner window of Nb-Nb is not"),
    "v2_ra_negative": (2, replace("w.r_a.Nb.Nb", "w.r_a.Nb.Nb -0.1"), "expected r_a >= 0"),
    "v2_q_max_zero": (2, replace("n2.q_max.Nb.Nb.2.1", "n2.q_max.Nb.Nb.2.1 0"), "expected q_max > 0"),
    "v2_tau_zero": (2, replace("w.tau", "w.tau 0"), "expected tau > 0"),
    "v2_tau_negative": (2, replace("w.tau", "w.tau -0.3"), "expected tau > 0"),
    "v2_window_missing": (2, lambda L: (lambda i: (L[:i] + L[i + 4:], i))(at(L, "w.tau")),
                          "expected parameter 'w.tau', found 'b1.alpha'"),
    # format v2: reference energy and extrapolation grade
    "v2_e_ref_missing": (2, delete("w.e_ref.Nb"), "expected parameter 'w.e_ref.Nb', found 'b1.alpha'"),
    "v2_e_ref_nan": (2, replace("w.e_ref.Nb", "w.e_ref.Nb nan"), "value 'nan' of 'w.e_ref.Nb' is not a finite number"),
    "v2_mu_missing": (2, delete("g.mu.Nb.3"), "expected parameter 'g.mu.Nb.3', found 'g.mu.Nb.4'"),
    "v2_U_misordered": (2, swap("g.U.Nb.2.1", "g.U.Nb.2.2"), "expected parameter 'g.U.Nb.2.1', found 'g.U.Nb.2.2'"),
    "v2_U_upper_triangle": (2, replace("g.U.Nb.2.1", "g.U.Nb.1.2 0.5"),
                            "expected parameter 'g.U.Nb.2.1', found 'g.U.Nb.1.2'"),
    "v2_U_too_many": (2, insert_after("g.U.Nb.7.7", "g.U.Nb.8.1 0.5"),
                      "expected parameter 'g.gamma_lo.Nb', found 'g.U.Nb.8.1'"),
    "v2_gamma_lo_zero": (2, replace("g.gamma_lo.Nb", "g.gamma_lo.Nb 0"),
                         "value '0' of 'g.gamma_lo.Nb' is out of range; expected gamma_lo > 0"),
    "v2_gamma_lo_negative": (2, replace("g.gamma_lo.Nb", "g.gamma_lo.Nb -1.5"), "expected gamma_lo > 0"),
    "v2_gamma_hi_equal_lo": (2, replace("g.gamma_hi.Nb", "g.gamma_hi.Nb 2.0"),
                             "value '2.0' of 'g.gamma_hi.Nb' is out of range; expected gamma_hi > gamma_lo"),
    "v2_gamma_hi_below_lo": (2, replace("g.gamma_hi.Nb", "g.gamma_hi.Nb 1"), "expected gamma_hi > gamma_lo"),
    "v2_grade_truncated": (2, truncate_before("g.gamma_hi.Nb"),
                           "file ends at line {eof} after 67 of 68 parameters; expected 'g.gamma_hi.Nb'"),
    "v2_ok_grade_off": (2, ok(lambda L: ([l.replace(" 0.5", " 0") if l.startswith("g.U.") else l for l in L], 0)),
                        None),
    # format v4: the data's lowest coordination n_min, last
    "v4_ok": (4, ok(replace("end", "end")), None),
    "v4_ok_n_min_off": (4, ok(replace("g.n_min.Nb", "g.n_min.Nb 0")), None),
    "v4_n_min_negative": (4, replace("g.n_min.Nb", "g.n_min.Nb -1"),
                          "value '-1' of 'g.n_min.Nb' is out of range; expected n_min >= 0"),
    "v4_n_min_missing": (4, truncate_before("g.n_min.Nb"),
                         "file ends at line {eof} after 69 of 70 parameters; expected 'g.n_min.Nb'"),
    # a species embedding (docs/parameter-file.md, "Species embedding"): chemistry.rank first
    "rank_ok": (1, ok(lambda L: (embedded(1), 0)), None),
    "rank_zero": (1, insert_after("parameters", "chemistry.rank 0"),
                  "value '0' of 'chemistry.rank' is out of range; expected an integer rank in 1..1"),
    "rank_above_species": (1, insert_after("parameters", "chemistry.rank 2"),
                           "value '2' of 'chemistry.rank' is out of range; expected an integer rank in 1..1"),
    "rank_fraction": (1, insert_after("parameters", "chemistry.rank 0.5"), "of 'chemistry.rank' is out of range"),
    "rank_channel_names": (1, lambda L: (lambda E: (E[:at(E, "n1.c.Nb.e1.1.1")] + ["n1.c.Nb.Nb.1.1 0.125"]
                                                    + E[at(E, "n1.c.Nb.e1.1.1") + 1:], at(E, "n1.c.Nb.e1.1.1")))(
        embedded(1)), "expected parameter 'n1.c.Nb.e1.1.1', found 'n1.c.Nb.Nb.1.1'"),
}


def embedded(version: int) -> list[str]:
    """The base model with a species embedding of rank 1 (weights b1.w.Nb.e1)."""
    expr = V2_EXPR if version >= 2 else V1_EXPR
    m = Model(expr, ("Nb",), 4.0, version=version, rank=1)
    names = [n for b in m.layout.blocks for n in b.element_names()]
    values = dict(VALUES, rank="1", w="0.7")
    lines = [f"# compot bad-file corpus: base model with a species embedding, format v{version}",
             f"compot-params {version}", f"expression {expr}", "species Nb", "cutoff 4.0",
             f"parameters {len(names)}"]
    lines += [f"{n} {values[n.split('.')[1]]}" for n in names]
    return lines + ["end"]


def main() -> None:
    for old in HERE.glob("*.params"):
        old.unlink()
    for name, (version, mutate, text) in CASES.items():
        lines, index = mutate(base(version))
        if text is None:
            head = "# expect ok"
        else:
            # the expect line comes first: line i of the model is line i + 2 of the file
            line = len(lines) + 1 if index == EOF else index + 2
            head = f"# expect line {line}: {text.replace('{eof}', str(line))}"
        eol = "\r\n" if name == "ok_crlf" else "\n"
        body = [l[:-1] if name == "ok_crlf" else l for l in lines]
        (HERE / f"{name}.params").write_bytes((eol.join([head] + body) + eol).encode("utf-8"))


if __name__ == "__main__":
    main()
