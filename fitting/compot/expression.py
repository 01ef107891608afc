"""Model expressions in the paper's notation and the layout they imply.

An expression such as ``E[G8L4] + N[E[G8L4]] + ZBL(1.6, 2.4)`` or
``G10 * E[G8L4]`` (Wang et al., arXiv:2504.19372, Sec. II–III and TABLE 1)
parses into an immutable tree of terms (one class per term, :mod:`compot.terms`,
re-exported here). :func:`layout` numbers the nodes in pre-order (``n0`` is the
root), assigns basis sets with the sharing rule of MODEL_SPEC §4 (direct leaf
children of one sum with equal basis specification share a basis; product
factors never share) and lists every parameter block in the canonical order of
the parameter file format (``docs/parameter-file.md``); each term supplies its
own blocks (:meth:`compot.terms.Term.blocks`).

Grammar::

    expr    := product ('+' product)*        n-ary sum, nested sums flattened
    product := factor ('*' factor)*          binary, left-associative
    factor  := term | '(' expr ')'
    term    := leaf ['@' <r_t>] | N[E[<basis>L<L>]] | ZBL(<r_in>, <r_out>)
    leaf    := G<K> | C<K> | E[<basis>L<L>] | A[<basis>P<P>] | E[A[<basis>P<P>]L<L>]

``@<r_t>`` gives the leaf a cutoff of its own, 0 < r_t ≤ r_c (checked where the
model's r_c is known: :class:`compot.model.Model`, :func:`compot.io.read_model`):
its basis is ĝ_k(r) = g_k(r) f_c(r; r_t), so it sees only neighbours closer than r_t.

Blanks (spaces, tabs) separate tokens but never split a number or ``ZBL``.
Limits, the same in the C core: 1 <= K <= MAX_K, 1 <= L <= MAX_L,
0 <= P <= MAX_P, at most MAX_DEPTH nested parentheses, MAX_TERMS terms and
MAX_VALUES parameter values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from .errors import ExpressionError
from .terms import (ZBL, Angular, BasisSpec, Exponentiated, ExponentiatedAngular, Linear, NeighbourExponentiated,
                    ParameterBlock, Product, Sum, Term, index_labels)

__all__ = [
    "BasisSpec", "Linear", "Exponentiated", "NeighbourExponentiated", "Angular", "ExponentiatedAngular",
    "ZBL", "Sum", "Product", "Term", "parse", "layout", "Layout", "ParameterBlock", "NodeInfo",
    "count_parameters",
]


# --------------------------------------------------------------------------- parser
#: Limits of an expression and of a model's size, the same in the C core
#: (kim_driver/compot_internal.h) and documented in docs/parameter-file.md.
MAX_K = 10000            # basis size K
MAX_L = 10000            # latent size L
MAX_P = 40               # Legendre order P
MAX_DEPTH = 200          # nesting of parentheses
MAX_TERMS = 200          # terms (leaves, ZBL included)
MAX_VALUES = 1_000_000   # parameter values of a model (all blocks, all species)

# blanks (space, tab) separate tokens; numbers and ZBL are never split
_TOKEN = re.compile(r"[ \t]*(?:(?P<num>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?)"
                    r"|(?P<name>ZBL|[GCENAPL])|(?P<sym>[\[\]()+*,@]))")


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if not m or m.end() == pos:
                col = pos + 1
                while col - 1 < len(stripped) and stripped[col - 1] in " \t":
                    col += 1
                raise ExpressionError(
                    f"expression {text!r}: unexpected character {stripped[col - 1]!r} at column {col}; "
                    "expected G<K>, C<K>, E[..], N[E[..]], A[..], ZBL(..), '+', '*' or parentheses")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind), m.start(kind) + 1))
            pos = m.end()
        self.i = 0
        self.depth = 0       # parentheses open at the current token
        self.n_terms = 0     # terms (leaves) parsed so far

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "", len(self.text) + 1)

    def take(self, value: str | None = None, kind: str | None = None):
        tok = self.peek()
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            want = repr(value) if value is not None else {"num": "a number", "name": "a term"}.get(kind, kind)
            found = "end of expression" if tok[0] == "end" else repr(tok[1])
            raise ExpressionError(f"expression {self.text!r}: expected {want} at column {tok[2]}, found {found}")
        self.i += 1
        return tok

    def integer(self, what: str, minimum: int, maximum: int) -> int:
        tok = self.take(kind="num")
        digits = tok[1]
        # a length check first: int() of thousands of digits is slow or refused
        if not re.fullmatch(r"[0-9]+", digits) or len(digits) > 9 or not minimum <= int(digits) <= maximum:
            raise ExpressionError(
                f"expression {self.text!r}: at column {tok[2]}: expected {what} in {minimum}..{maximum}, "
                f"found {digits}")
        return int(digits)

    def number(self, what: str) -> float:
        tok = self.take(kind="num")
        value = float(tok[1])
        if not math.isfinite(value):
            raise ExpressionError(
                f"expression {self.text!r}: at column {tok[2]}: expected {what} (a finite number), found {tok[1]}")
        return value

    def basis(self) -> BasisSpec:
        tok = self.take(kind="name")
        if tok[1] not in ("G", "C"):
            raise ExpressionError(
                f"expression {self.text!r}: expected a basis G<K> or C<K> at column {tok[2]}, found {tok[1]!r}")
        return BasisSpec(tok[1], self.integer("basis size K", 1, MAX_K))

    def expr(self) -> Term:
        terms = [self.product()]
        while self.peek()[1] == "+":
            self.take("+")
            terms.append(self.product())
        if len(terms) == 1:
            return terms[0]
        flat: list[Term] = []
        for t in terms:
            flat.extend(t.children() if t.merges_children else (t,))
        return Sum(tuple(flat))

    def product(self) -> Term:
        left = self.factor()
        while self.peek()[1] == "*":
            self.take("*")
            left = Product(left, self.factor())
        return left

    def factor(self) -> Term:
        tok = self.peek()
        if tok[1] == "(":
            self.take("(")
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ExpressionError(f"expression {self.text!r}: at column {self.peek()[2]}: "
                                      f"parentheses nested deeper than {MAX_DEPTH}")
            inner = self.expr()
            self.take(")")
            self.depth -= 1
            return inner
        self.n_terms += 1
        if self.n_terms > MAX_TERMS:
            raise ExpressionError(f"expression {self.text!r}: at column {tok[2]}: term {self.n_terms}; "
                                  f"expected at most {MAX_TERMS} terms")
        if tok[0] != "name":
            found = "end of expression" if tok[0] == "end" else repr(tok[1])
            raise ExpressionError(
                f"expression {self.text!r}: expected a term at column {tok[2]}, found {found}; "
                "expected G<K>, C<K>, E[..], N[E[..]], A[..] or ZBL(..)")
        term = self.leaf(tok)
        if self.peek()[1] != "@":
            return term
        at = self.take("@")
        r_t = self.number("term cutoff r_t")
        if term.is_core or term.needs_rho or not r_t > 0:
            what = ("ZBL has its own window (r_in, r_out)" if term.is_core else
                    "N[E[..]] takes the model's cutoff (its second hop)" if term.needs_rho else
                    f"expected r_t > 0, found {r_t!r}")
            raise ExpressionError(f"expression {self.text!r}: at column {at[2]}: a term cutoff '@' on {term}; {what}")
        return replace(term, basis=replace(term.basis, cutoff=r_t))

    def leaf(self, tok) -> Term:
        name = tok[1]
        if name in ("G", "C"):
            return Linear(self.basis())
        self.take(kind="name")
        if name == "E":
            self.take("[")
            if self.peek()[1] == "A":
                self.take("A")
                self.take("[")
                b = self.basis()
                self.take("P")
                P = self.integer("Legendre order P", 0, MAX_P)
                self.take("]")
                self.take("L")
                L = self.integer("latent size L", 1, MAX_L)
                self.take("]")
                return ExponentiatedAngular(b, P, L)
            b = self.basis()
            self.take("L")
            L = self.integer("latent size L", 1, MAX_L)
            self.take("]")
            return Exponentiated(b, L)
        if name == "N":
            self.take("[")
            self.take("E")
            self.take("[")
            b = self.basis()
            self.take("L")
            L = self.integer("latent size L", 1, MAX_L)
            self.take("]")
            self.take("]")
            return NeighbourExponentiated(b, L)
        if name == "A":
            self.take("[")
            b = self.basis()
            self.take("P")
            P = self.integer("Legendre order P", 0, MAX_P)
            self.take("]")
            return Angular(b, P)
        if name == "ZBL":
            self.take("(")
            r_in = self.number("r_in")
            self.take(",")
            r_out = self.number("r_out")
            self.take(")")
            if not 0 < r_in < r_out:
                raise ExpressionError(
                    f"expression {self.text!r}: ZBL(r_in, r_out) needs 0 < r_in < r_out, found ({r_in}, {r_out})")
            return ZBL(r_in, r_out)
        raise ExpressionError(
            f"expression {self.text!r}: unknown term {name!r} at column {tok[2]}; "
            "expected G<K>, C<K>, E[..], N[E[..]], A[..] or ZBL(..)")


def parse(text: str) -> Term:
    """Parse an expression in the paper's notation.

    Parameters
    ----------
    text : str
        e.g. ``"E[G8L4] + N[E[G8L4]]"``, ``"G10 * E[G8L4]"``, ``"G8 + A[G8P4] + ZBL(1.6, 2.4)"``.

    Returns
    -------
    Term
        Root of the immutable term tree.

    Raises
    ------
    ExpressionError
        On a syntax error (naming the column and what was expected) or on a ZBL
        term anywhere but as a summand of the top-level sum.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"expression {text!r}: empty; expected e.g. 'E[G8L4] + N[E[G8L4]]'")
    p = _Parser(text)
    root = p.expr()
    if p.peek()[0] != "end":
        tok = p.peek()
        raise ExpressionError(f"expression {text!r}: at column {tok[2]}: expected '+', '*' or end of expression, "
                              f"found {tok[1]!r}")
    top = root.children() if root.merges_children else (root,)
    if all(t.is_core for t in top):
        raise ExpressionError(f"expression {text!r}: a model needs at least one fitted term besides ZBL")

    def check(node: Term, top_level: bool) -> None:
        if node.is_core and not top_level:
            raise ExpressionError(
                f"expression {text!r}: ZBL may only be a summand of the top-level sum, found it inside a product")
        for c in node.children():
            check(c, False)

    for t in top:
        check(t, True)
    return root


# --------------------------------------------------------------------------- layout
@dataclass
class NodeInfo:
    """One node of the numbered tree."""

    index: int
    term: Term
    parent: int | None
    children: list[int] = field(default_factory=list)
    basis: int | None = None          # 0-based basis index for leaves
    has_shift: bool = False

    @property
    def is_fitted_leaf(self) -> bool:
        """A leaf with a basis and linear coefficients (not ZBL, not a composition)."""
        return self.term.basis is not None


@dataclass(frozen=True)
class BasisInfo:
    index: int
    spec: BasisSpec
    users: tuple[int, ...]


@dataclass
class Layout:
    """Numbered tree, bases and parameter blocks of an expression for given species."""

    expression: str
    root: Term
    species: tuple[str, ...]
    nodes: list[NodeInfo]
    bases: list[BasisInfo]
    blocks: list[ParameterBlock]
    version: int = 2
    rank: int | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        """Labels of the neighbour channels of every basis: the species (full
        chemistry) or ``e1 … e<r>`` (species embedding of rank r)."""
        if self.rank is None:
            return self.species
        return tuple(f"e{c + 1}" for c in range(self.rank))

    @property
    def n_linear(self) -> int:
        return sum(b.size for b in self.blocks if b.role == "linear")

    @property
    def n_nonlinear(self) -> int:
        return sum(b.size for b in self.blocks if b.role == "nonlinear")

    @property
    def has_neighbour_term(self) -> bool:
        return any(n.term.needs_rho for n in self.nodes)

    def block(self, name: str) -> ParameterBlock:
        for b in self.blocks:
            if b.name == name:
                return b
        raise KeyError(name)


def _species_pairs(species: tuple[str, ...]) -> list[str]:
    S = len(species)
    return [f"{species[a]}.{species[b]}" for a in range(S) for b in range(a, S)]


def layout(root: Term | str, species: tuple[str, ...] | list[str], version: int = 2,
           rank: int | None = None) -> Layout:
    """Number nodes, assign (shared) bases and list parameter blocks.

    Parameters
    ----------
    root : Term or str
        Parsed expression or its text.
    species : sequence of str
        Chemical symbols; their order indexes every species axis.
    version : int
        Parameter file format (1 or 2). Version 2 adds the block ``w`` (inner
        window per species pair and saturation width) before the bases and a
        ``q_max`` block to every A node (docs/parameter-file.md, MODEL_SPEC §10).
    rank : int or None
        None: full chemistry, one channel per neighbour species. r (1 ≤ r ≤ S):
        species embedding, r channels per basis with weights ``b<J>.w`` [S, r]
        (nonlinear): φ_k^(c)(i) = Σ_j W_(Z_j c) ĝ_k(r_ij); the file starts its
        parameters with ``chemistry.rank`` (docs/parameter-file.md, "Species
        embedding").

    Returns
    -------
    Layout

    Raises
    ------
    ExpressionError
        If the expression is invalid, ``species`` is empty or repeats a symbol, or
        ``rank`` is not in 1..S.
    """
    if isinstance(root, str):
        root = parse(root)
    species = tuple(species)
    if not species or len(set(species)) != len(species):
        raise ExpressionError(f"species {species!r}: expected one or more distinct chemical symbols")
    nodes: list[NodeInfo] = []

    def visit(term: Term, parent: int | None) -> int:
        idx = len(nodes)
        info = NodeInfo(idx, term, parent)
        nodes.append(info)
        for c in term.children():
            info.children.append(visit(c, idx))
        return idx

    visit(root, None)
    for n in nodes:
        parent_is_sum = n.parent is not None and nodes[n.parent].term.merges_children
        n.has_shift = not parent_is_sum and not n.term.is_core

    # basis assignment in pre-order with sharing among direct leaf children of a sum
    bases: list[list] = []  # [spec, users]
    for n in nodes:
        if n.term.basis is None:
            continue
        spec = n.term.basis
        shared = None
        if n.parent is not None and nodes[n.parent].term.merges_children:
            for sib in nodes[n.parent].children:
                if sib == n.index:
                    break
                s = nodes[sib]
                if s.term.basis == spec:
                    shared = s.basis
                    break
        if shared is None:
            bases.append([spec, [n.index]])
            n.basis = len(bases) - 1
        else:
            bases[shared][1].append(n.index)
            n.basis = shared
    basis_infos = [BasisInfo(i, spec, tuple(users)) for i, (spec, users) in enumerate(bases)]

    if version not in (1, 2, 3, 4):
        raise ExpressionError(f"format version {version!r}: expected 1, 2, 3 or 4")
    S = len(species)
    sp = tuple(species)
    pairs = tuple(_species_pairs(sp))
    if rank is not None and not (isinstance(rank, int) and not isinstance(rank, bool) and 1 <= rank <= S):
        raise ExpressionError(f"embedding rank {rank!r}: expected an integer in 1..{S} (the number of species)")
    chans = sp if rank is None else tuple(f"e{c + 1}" for c in range(rank))
    cpairs = pairs if rank is None else tuple(_species_pairs(chans))
    blocks: list[ParameterBlock] = []
    if rank is not None:
        blocks.append(ParameterBlock("chemistry.rank", "fixed", (), (), "-",
                                     "rank r of the species embedding: r neighbour channels per basis"))
    if version >= 2:
        blocks.append(ParameterBlock("w.tau", "fixed", (), (), "-",
                                     "saturation width τ of every bounded feature (MODEL_SPEC §10)"))
        blocks.append(ParameterBlock("w.r_a", "fixed", (len(pairs),), (pairs,), "Å",
                                     "inner window start r_a per species pair: fitted terms off below"))
        blocks.append(ParameterBlock("w.r_b", "fixed", (len(pairs),), (pairs,), "Å",
                                     "inner window end r_b per species pair: fitted terms fully on above"))
        blocks.append(ParameterBlock("w.e_ref", "fixed", (S,), (sp,), "eV",
                                     "reference site energy E_ref of a switched-off atom [centre species]"))
    if version >= 3:
        blocks.append(ParameterBlock("w.e_min", "fixed", (S,), (sp,), "eV",
                                     "lowest fitted site energy over the fitting atoms [centre species]: "
                                     "below it the fitted energy saturates (off when e_min >= E_ref)"))
    for b in basis_infos:
        name = f"b{b.index + 1}"
        ks = index_labels(b.spec.K)
        if b.spec.kind == "G":
            blocks.append(ParameterBlock(f"{name}.alpha", "nonlinear", (), (), "1/Å²",
                                         f"Gaussian exponent α of basis {name} ({b.spec}); a_k = α β^(k-1)"))
            blocks.append(ParameterBlock(f"{name}.beta", "nonlinear", (), (), "-",
                                         f"even-tempered ratio β of basis {name} ({b.spec})"))
        if rank is not None:
            blocks.append(ParameterBlock(f"{name}.w", "nonlinear", (S, rank), (sp, chans), "-",
                                         f"species embedding W of basis {name}: weight of a neighbour of "
                                         f"species s in channel c [s, c]"))
        C = len(chans)
        blocks.append(ParameterBlock(f"{name}.phi_max", "fixed", (C, b.spec.K), (chans, ks), "-",
                                     f"scale of φ_k^(s) of basis {name}: max |φ| over the fitting atoms [s, k]"))
        blocks.append(ParameterBlock(f"{name}.rho_max", "fixed", (C, b.spec.K), (chans, ks), "-",
                                     f"scale of ρ_k^(s) of basis {name}: max |ρ| over the fitting atoms [s, k]"))
    for n in nodes:
        t = n.term
        pre = f"n{n.index}"
        blocks.extend(t.blocks(n, sp, cpairs, version) if rank is None
                      else t.blocks(n, sp, cpairs, version, channels=chans))
        if n.has_shift:
            blocks.append(ParameterBlock(f"{pre}.shift", "linear", (S,), (sp,), "eV",
                                         f"site-energy shift of node {pre} ({t}) [centre species]"))
    if version >= 2:
        # extrapolation grade (MODEL_SPEC §10): per centre species, the mean μ of the
        # atom's feature vector (every fitted leaf's features, in block order) and the
        # packed lower-triangular whitening factor U (C⁻¹ = UᵀU) over the fitted data
        d = sum(b.size for b in blocks if b.name.endswith(".c")) // S
        ds = index_labels(d)
        tri = tuple(f"{r + 1}.{c + 1}" for r in range(d) for c in range(r + 1))
        blocks.append(ParameterBlock("g.mu", "fixed", (S, d), (sp, ds), "-",
                                     "mean feature vector over the fitted data [centre species, feature]"))
        blocks.append(ParameterBlock("g.U", "fixed", (S, len(tri)), (sp, tri), "-",
                                     "whitening factor U, C⁻¹ = UᵀU, packed lower triangle [centre species, row.col]"))
        blocks.append(ParameterBlock("g.gamma_lo", "fixed", (S,), (sp,), "-",
                                     "grade up to which the fitted energy is fully on [centre species]"))
        blocks.append(ParameterBlock("g.gamma_hi", "fixed", (S,), (sp,), "-",
                                     "grade from which the fitted energy is fully off [centre species]"))
    if version >= 4:
        blocks.append(ParameterBlock("g.n_min", "fixed", (S,), (sp,), "-",
                                     "lowest coordination n over the fitted data [centre species]: below "
                                     "it the grade grows, fully off at n_min/2 (0: off)"))
    text = str(root)
    total = sum(b.size for b in blocks)
    if total > MAX_VALUES:
        raise ExpressionError(f"expression {text!r} with {S} species has {total} parameter values; "
                              f"expected at most {MAX_VALUES}")
    return Layout(text, root, sp, nodes, basis_infos, blocks, version, rank)


def count_parameters(expression: str, species: tuple[str, ...] = ("X",), rank: int | None = None) -> tuple[int, int]:
    """(linear, nonlinear) parameter counts of an expression; single species by
    default, as in the paper's TABLE 3, 4 and 6; ``rank`` that of a species embedding."""
    lay = layout(parse(expression), species, rank=rank)
    return lay.n_linear, lay.n_nonlinear
