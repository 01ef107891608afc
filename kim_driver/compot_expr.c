/*
 * compot_expr.c -- parser of the model expression (docs/parameter-file.md,
 * "Expression grammar"), node numbering and basis sharing.
 *
 *   expr    := product ( '+' product )*     n-ary sum, nested sums flattened
 *   product := factor ( '*' factor )*       binary, left-associative
 *   factor  := term | '(' expr ')'
 *   term    := G<K> | C<K> | E[<basis>L<L>] | N[E[<basis>L<L>]]
 *            | A[<basis>P<P>] | ZBL(<r_in>, <r_out>)
 *
 * Blanks are ignored.  Nodes are numbered in pre-order; leaves that are
 * direct children of the same sum and have the same basis specification
 * (kind and K) share one basis; bases are numbered by first use.
 */
#include "compot_internal.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct pnode {
  int kind;
  int basis_kind;
  int K, L, P;
  double r_in, r_out;
  double rt;  /* term cutoff '@r_t', 0 if none */
  int column; /* 1-based column of the term in the original text */
  int n_children;
  int cap_children;
  struct pnode **children;
} pnode;

typedef struct parser {
  char *s;   /* text without blanks, NUL-terminated */
  int *col;  /* col[i]: 1-based column of s[i] in the original text */
  int len;
  int pos;
  int depth;
  int n_terms; /* terms (leaves) parsed so far */
  char *msg;
  size_t msg_size;
} parser;

static void pnode_free(pnode *p)
{
  int i;
  if (p == NULL) return;
  for (i = 0; i < p->n_children; ++i) pnode_free(p->children[i]);
  free(p->children);
  free(p);
}

static pnode *pnode_new(int kind, int column)
{
  pnode *p = (pnode *) calloc(1, sizeof(pnode));
  if (p == NULL) return NULL;
  p->kind = kind;
  p->column = column;
  return p;
}

static int pnode_add(pnode *p, pnode *c)
{
  if (p->n_children == p->cap_children) {
    int cap = p->cap_children ? 2 * p->cap_children : 4;
    pnode **ch = (pnode **) realloc(p->children, (size_t) cap * sizeof(pnode *));
    if (ch == NULL) return COMPOT_ERR_MEMORY;
    p->children = ch;
    p->cap_children = cap;
  }
  p->children[p->n_children++] = c;
  return COMPOT_OK;
}

static int column_at(parser const *ps, int pos)
{
  if (pos < ps->len) return ps->col[pos];
  return ps->len > 0 ? ps->col[ps->len - 1] + 1 : 1;
}

/* True when a blank stood between s[pos - 1] and s[pos] in the original
   text: blanks separate tokens but never split a number or the word ZBL. */
static int blank_before(parser const *ps, int pos)
{
  return pos > 0 && pos < ps->len && ps->col[pos] != ps->col[pos - 1] + 1;
}

int compot_decimal_span(char const *s, int allow_sign)
{
  int i = 0, digits = 0;
  if (allow_sign && (s[i] == '+' || s[i] == '-')) ++i;
  while (isdigit((unsigned char) s[i])) ++i, ++digits;
  if (s[i] == '.') {
    ++i;
    while (isdigit((unsigned char) s[i])) ++i, ++digits;
  }
  if (digits == 0) return 0;
  if (s[i] == 'e' || s[i] == 'E') {
    int j = i + 1, exp_digits = 0;
    if (s[j] == '+' || s[j] == '-') ++j;
    while (isdigit((unsigned char) s[j])) ++j, ++exp_digits;
    if (exp_digits > 0) i = j;
  }
  return i;
}

/* Describe what is found at pos, for "found ..." in messages. */
static void found_at(parser const *ps, int pos, char *buf, size_t size)
{
  int n = 0;
  if (pos >= ps->len) {
    snprintf(buf, size, "end of expression");
    return;
  }
  while (pos + n < ps->len && n < 16
         && isalnum((unsigned char) ps->s[pos + n]))
    ++n;
  if (n == 0) n = 1;
  snprintf(buf, size, "'%.*s'", n, ps->s + pos);
}

static void fail_expected(parser *ps, char const *expected)
{
  char found[40];
  found_at(ps, ps->pos, found, sizeof found);
  compot_set_msg(ps->msg, ps->msg_size,
                 "expression: at column %d: expected %s, found %s",
                 column_at(ps, ps->pos), expected, found);
}

static int peek(parser const *ps)
{
  return ps->pos < ps->len ? (unsigned char) ps->s[ps->pos] : 0;
}

static int accept_str(parser *ps, char const *lit)
{
  size_t n = strlen(lit);
  if (ps->pos + (int) n <= ps->len && strncmp(ps->s + ps->pos, lit, n) == 0) {
    ps->pos += (int) n;
    return 1;
  }
  return 0;
}

static int expect_str(parser *ps, char const *lit)
{
  char what[16];
  if (accept_str(ps, lit)) return COMPOT_OK;
  snprintf(what, sizeof what, "'%s'", lit);
  fail_expected(ps, what);
  return COMPOT_ERR_FORMAT;
}

static int parse_int(parser *ps, int min, int max, char const *what,
                     int *value)
{
  long v = 0;
  int start = ps->pos;
  while (ps->pos < ps->len && isdigit((unsigned char) ps->s[ps->pos])
         && (ps->pos == start || !blank_before(ps, ps->pos))) {
    if (v <= (long) max) v = 10 * v + (ps->s[ps->pos] - '0');
    ++ps->pos;
  }
  if (ps->pos == start) {
    ps->pos = start;
    fail_expected(ps, what);
    return COMPOT_ERR_FORMAT;
  }
  if (v < min || v > max) {
    compot_set_msg(ps->msg, ps->msg_size,
                   "expression: at column %d: expected %s in %d..%d, found %.*s",
                   column_at(ps, start), what, min, max, ps->pos - start,
                   ps->s + start);
    return COMPOT_ERR_FORMAT;
  }
  *value = (int) v;
  return COMPOT_OK;
}

/* An unsigned decimal number (compot_decimal_span) without blanks in it. */
static int parse_number(parser *ps, char const *what, double *value)
{
  double v;
  int start = ps->pos, end = ps->pos, n;
  char keep;
  while (end < ps->len && (end == start || !blank_before(ps, end))) ++end;
  keep = ps->s[end]; /* ps->s is the parser's own copy: cut it there */
  ps->s[end] = '\0';
  n = compot_decimal_span(ps->s + start, 0);
  ps->s[end] = keep;
  if (n == 0) {
    fail_expected(ps, what);
    return COMPOT_ERR_FORMAT;
  }
  keep = ps->s[start + n];
  ps->s[start + n] = '\0';
  v = strtod(ps->s + start, NULL);
  ps->s[start + n] = keep;
  ps->pos = start + n;
  if (!(v <= DBL_MAX)) {
    compot_set_msg(ps->msg, ps->msg_size,
                   "expression: at column %d: expected %s (a finite number), "
                   "found %.*s",
                   column_at(ps, start), what, ps->pos - start, ps->s + start);
    return COMPOT_ERR_FORMAT;
  }
  *value = v;
  return COMPOT_OK;
}

/* basis := 'G' <K> | 'C' <K> */
static int parse_basis(parser *ps, pnode *p)
{
  int c = peek(ps);
  if (c == 'G')
    p->basis_kind = COMPOT_BASIS_GAUSSIAN;
  else if (c == 'C')
    p->basis_kind = COMPOT_BASIS_CHEBYSHEV;
  else {
    fail_expected(ps, "a basis G<K> or C<K>");
    return COMPOT_ERR_FORMAT;
  }
  ps->pos++;
  return parse_int(ps, 1, COMPOT_MAX_K, "basis size K", &p->K);
}

static pnode *parse_expr(parser *ps);

static pnode *parse_term(parser *ps)
{
  int column = column_at(ps, ps->pos);
  int c = peek(ps);
  int c1 = ps->pos + 1 < ps->len ? (unsigned char) ps->s[ps->pos + 1] : 0;
  pnode *p = NULL;
  int err = COMPOT_OK;

  if (++ps->n_terms > COMPOT_MAX_TERMS) {
    compot_set_msg(ps->msg, ps->msg_size,
                   "expression: at column %d: term %d; expected at most %d "
                   "terms",
                   column, ps->n_terms, COMPOT_MAX_TERMS);
    return NULL;
  }
  if ((c == 'G' || c == 'C') && isdigit(c1)) {
    p = pnode_new(COMPOT_NODE_LINEAR, column);
    if (p == NULL) goto nomem;
    err = parse_basis(ps, p);
  } else if (accept_str(ps, "E[")) {
    int ea = accept_str(ps, "A[");
    p = pnode_new(ea ? COMPOT_NODE_EXPANG : COMPOT_NODE_EXP, column);
    if (p == NULL) goto nomem;
    err = parse_basis(ps, p);
    if (ea && !err) err = expect_str(ps, "P");
    if (ea && !err)
      err = parse_int(ps, 0, COMPOT_MAX_P, "Legendre order P", &p->P);
    if (ea && !err) err = expect_str(ps, "]");
    if (!err) err = expect_str(ps, "L");
    if (!err) err = parse_int(ps, 1, COMPOT_MAX_L, "latent size L", &p->L);
    if (!err) err = expect_str(ps, "]");
  } else if (accept_str(ps, "N[")) {
    p = pnode_new(COMPOT_NODE_NEXP, column);
    if (p == NULL) goto nomem;
    err = expect_str(ps, "E[");
    if (!err) err = parse_basis(ps, p);
    if (!err) err = expect_str(ps, "L");
    if (!err) err = parse_int(ps, 1, COMPOT_MAX_L, "latent size L", &p->L);
    if (!err) err = expect_str(ps, "]]");
  } else if (accept_str(ps, "A[")) {
    p = pnode_new(COMPOT_NODE_ANGULAR, column);
    if (p == NULL) goto nomem;
    err = parse_basis(ps, p);
    if (!err) err = expect_str(ps, "P");
    if (!err)
      err = parse_int(ps, 0, COMPOT_MAX_P, "Legendre order P", &p->P);
    if (!err) err = expect_str(ps, "]");
  } else if (!blank_before(ps, ps->pos + 1) && !blank_before(ps, ps->pos + 2)
             && accept_str(ps, "ZBL(")) {
    p = pnode_new(COMPOT_NODE_ZBL, column);
    if (p == NULL) goto nomem;
    err = parse_number(ps, "r_in", &p->r_in);
    if (!err) err = expect_str(ps, ",");
    if (!err) err = parse_number(ps, "r_out", &p->r_out);
    if (!err) err = expect_str(ps, ")");
    if (!err && !(p->r_in > 0.0 && p->r_in < p->r_out)) {
      compot_set_msg(ps->msg, ps->msg_size,
                     "expression: ZBL(%g, %g) at column %d; expected "
                     "0 < r_in < r_out",
                     p->r_in, p->r_out, column);
      err = COMPOT_ERR_FORMAT;
    }
  } else {
    char found[40];
    found_at(ps, ps->pos, found, sizeof found);
    compot_set_msg(ps->msg, ps->msg_size,
                   "expression: unknown term %s at column %d; expected G<K>, "
                   "C<K>, E[..], N[E[..]], A[..] or ZBL(..)",
                   found, column);
    return NULL;
  }
  if (!err && accept_str(ps, "@")) { /* a term cutoff (issue 13) */
    int at = column_at(ps, ps->pos - 1);
    err = parse_number(ps, "term cutoff r_t", &p->rt);
    if (!err && (p->kind == COMPOT_NODE_ZBL || p->kind == COMPOT_NODE_NEXP
                 || !(p->rt > 0.0))) {
      compot_set_msg(ps->msg, ps->msg_size,
                     "expression: at column %d: a term cutoff '@' on %s; %s",
                     at, p->kind == COMPOT_NODE_ZBL ? "ZBL" : p->kind == COMPOT_NODE_NEXP ? "N[E[..]]" : "a term",
                     p->kind == COMPOT_NODE_ZBL ? "ZBL has its own window (r_in, r_out)"
                     : p->kind == COMPOT_NODE_NEXP ? "N[E[..]] takes the model's cutoff (its second hop)"
                                                   : "expected r_t > 0");
      err = COMPOT_ERR_FORMAT;
    }
  }
  if (err) {
    pnode_free(p);
    return NULL;
  }
  return p;

nomem:
  compot_set_msg(ps->msg, ps->msg_size, "expression: out of memory");
  return NULL;
}

static pnode *parse_factor(parser *ps)
{
  if (peek(ps) == '(') {
    pnode *e;
    ps->pos++;
    if (++ps->depth > COMPOT_MAX_DEPTH) {
      compot_set_msg(ps->msg, ps->msg_size,
                     "expression: at column %d: parentheses nested deeper "
                     "than %d",
                     column_at(ps, ps->pos), COMPOT_MAX_DEPTH);
      return NULL;
    }
    e = parse_expr(ps);
    if (e == NULL) return NULL;
    ps->depth--;
    if (expect_str(ps, ")")) {
      pnode_free(e);
      return NULL;
    }
    return e;
  }
  return parse_term(ps);
}

static pnode *parse_product(parser *ps)
{
  pnode *left = parse_factor(ps);
  while (left != NULL && peek(ps) == '*') {
    pnode *prod, *right;
    int column = column_at(ps, ps->pos);
    ps->pos++;
    right = parse_factor(ps);
    if (right == NULL) {
      pnode_free(left);
      return NULL;
    }
    prod = pnode_new(COMPOT_NODE_PRODUCT, column);
    if (prod != NULL) {
      /* the two children fit in the first allocation of 4 */
      if (pnode_add(prod, left) == COMPOT_OK) {
        left = NULL;
        if (pnode_add(prod, right) == COMPOT_OK) {
          left = prod;
          continue;
        }
      }
    }
    pnode_free(prod);
    pnode_free(left);
    pnode_free(right);
    compot_set_msg(ps->msg, ps->msg_size, "expression: out of memory");
    return NULL;
  }
  return left;
}

/* Append t to the sum, flattening a nested sum. */
static int sum_add_flat(pnode *sum, pnode *t)
{
  if (t->kind == COMPOT_NODE_SUM) {
    int i;
    for (i = 0; i < t->n_children; ++i) {
      if (pnode_add(sum, t->children[i])) {
        /* children 0..i-1 moved already */
        memmove(t->children, t->children + i,
                (size_t) (t->n_children - i) * sizeof(pnode *));
        t->n_children -= i;
        pnode_free(t);
        return COMPOT_ERR_MEMORY;
      }
    }
    t->n_children = 0;
    pnode_free(t);
    return COMPOT_OK;
  }
  if (pnode_add(sum, t)) {
    pnode_free(t);
    return COMPOT_ERR_MEMORY;
  }
  return COMPOT_OK;
}

static pnode *parse_expr(parser *ps)
{
  pnode *first = parse_product(ps);
  pnode *sum;
  if (first == NULL || peek(ps) != '+') return first;
  sum = pnode_new(COMPOT_NODE_SUM, first->column);
  if (sum == NULL) {
    pnode_free(first);
    compot_set_msg(ps->msg, ps->msg_size, "expression: out of memory");
    return NULL;
  }
  if (sum_add_flat(sum, first)) goto nomem;
  while (peek(ps) == '+') {
    pnode *t;
    ps->pos++;
    t = parse_product(ps);
    if (t == NULL) {
      pnode_free(sum);
      return NULL;
    }
    if (sum_add_flat(sum, t)) goto nomem;
  }
  return sum;
nomem:
  pnode_free(sum);
  compot_set_msg(ps->msg, ps->msg_size, "expression: out of memory");
  return NULL;
}

/* ZBL only as the root or a direct child of a root sum. */
static int check_zbl(parser *ps, pnode const *p, pnode const *parent,
                     int is_root_sum_child)
{
  int i;
  if (p->kind == COMPOT_NODE_ZBL && parent != NULL && !is_root_sum_child) {
    compot_set_msg(ps->msg, ps->msg_size,
                   "expression: ZBL at column %d is inside a %s; expected ZBL "
                   "only as a summand of the top-level sum",
                   p->column,
                   parent->kind == COMPOT_NODE_PRODUCT ? "product"
                                                       : "nested sum");
    return COMPOT_ERR_FORMAT;
  }
  for (i = 0; i < p->n_children; ++i) {
    int err = check_zbl(ps, p->children[i], p,
                        parent == NULL && p->kind == COMPOT_NODE_SUM);
    if (err) return err;
  }
  return COMPOT_OK;
}

/* True when the expression is ZBL alone or a sum of ZBL terms only. */
static int only_zbl(pnode const *p)
{
  int i;
  if (p->kind == COMPOT_NODE_ZBL) return 1;
  if (p->kind != COMPOT_NODE_SUM) return 0;
  for (i = 0; i < p->n_children; ++i)
    if (p->children[i]->kind != COMPOT_NODE_ZBL) return 0;
  return 1;
}

static int count_nodes(pnode const *p)
{
  int i, n = 1;
  for (i = 0; i < p->n_children; ++i) n += count_nodes(p->children[i]);
  return n;
}

static int has_basis(int kind)
{
  return kind == COMPOT_NODE_LINEAR || kind == COMPOT_NODE_EXP
         || kind == COMPOT_NODE_NEXP || kind == COMPOT_NODE_ANGULAR
         || kind == COMPOT_NODE_EXPANG;
}

static void node_spec(compot_node *n, int basis_kind)
{
  char b[24];
  snprintf(b, sizeof b, "%c%d",
           basis_kind == COMPOT_BASIS_GAUSSIAN ? 'G' : 'C', n->K);
  switch (n->kind) {
  case COMPOT_NODE_SUM: snprintf(n->spec, sizeof n->spec, "sum"); break;
  case COMPOT_NODE_PRODUCT:
    snprintf(n->spec, sizeof n->spec, "product");
    break;
  case COMPOT_NODE_LINEAR: snprintf(n->spec, sizeof n->spec, "%s", b); break;
  case COMPOT_NODE_EXP:
    snprintf(n->spec, sizeof n->spec, "E[%sL%d]", b, n->L);
    break;
  case COMPOT_NODE_NEXP:
    snprintf(n->spec, sizeof n->spec, "N[E[%sL%d]]", b, n->L);
    break;
  case COMPOT_NODE_ANGULAR:
    snprintf(n->spec, sizeof n->spec, "A[%sP%d]", b, n->P);
    break;
  case COMPOT_NODE_EXPANG:
    snprintf(n->spec, sizeof n->spec, "E[A[%sP%d]L%d]", b, n->P, n->L);
    break;
  default:
    snprintf(n->spec, sizeof n->spec, "ZBL(%g, %g)", n->r_in, n->r_out);
    break;
  }
  if (n->rt > 0.0) {
    size_t used = strlen(n->spec);
    snprintf(n->spec + used, sizeof n->spec - used, "@%g", n->rt);
  }
}

/* Pre-order numbering into model->nodes; returns the next free index or -1. */
static int number_nodes(compot_model *m, pnode const *p, int parent,
                        int next, int *basis_kinds)
{
  int i, me = next++;
  compot_node *n = &m->nodes[me];
  n->kind = p->kind;
  n->parent = parent;
  n->basis = -1;
  n->K = p->K;
  n->L = p->L;
  n->P = p->P;
  n->r_in = p->r_in;
  n->r_out = p->r_out;
  n->rt = p->rt;
  basis_kinds[me] = p->basis_kind;
  node_spec(n, p->basis_kind);
  n->n_children = p->n_children;
  if (p->n_children > 0) {
    n->children = (int *) malloc((size_t) p->n_children * sizeof(int));
    if (n->children == NULL) return -1;
  }
  for (i = 0; i < p->n_children; ++i) {
    n->children[i] = next;
    next = number_nodes(m, p->children[i], me, next, basis_kinds);
    if (next < 0) return -1;
  }
  return next;
}

int compot_parse_expression(compot_model *m, char const *text, char *msg,
                            size_t msg_size)
{
  parser ps;
  pnode *root;
  size_t n = strlen(text), i;
  int *basis_kinds = NULL;
  int err = COMPOT_OK, k;

  memset(&ps, 0, sizeof ps);
  ps.msg = msg;
  ps.msg_size = msg_size;
  ps.s = (char *) malloc(n + 1);
  ps.col = (int *) malloc((n + 1) * sizeof(int));
  if (ps.s == NULL || ps.col == NULL) {
    free(ps.s);
    free(ps.col);
    compot_set_msg(msg, msg_size, "expression: out of memory");
    return COMPOT_ERR_MEMORY;
  }
  for (i = 0; i < n; ++i) {
    if (text[i] == ' ' || text[i] == '\t') continue;
    ps.s[ps.len] = text[i];
    ps.col[ps.len] = (int) i + 1;
    ps.len++;
  }
  ps.s[ps.len] = '\0';

  if (ps.len == 0) {
    compot_set_msg(msg, msg_size,
                   "expression: empty; expected a model such as E[G8L4]");
    free(ps.s);
    free(ps.col);
    return COMPOT_ERR_FORMAT;
  }
  root = parse_expr(&ps);
  if (root != NULL && ps.pos < ps.len) {
    fail_expected(&ps, "'+', '*' or end of expression");
    pnode_free(root);
    root = NULL;
  }
  if (root != NULL && check_zbl(&ps, root, NULL, 0)) {
    pnode_free(root);
    root = NULL;
  }
  if (root != NULL && only_zbl(root)) {
    compot_set_msg(ps.msg, ps.msg_size,
                   "expression: a model needs at least one fitted term "
                   "besides ZBL; found only ZBL terms");
    pnode_free(root);
    root = NULL;
  }
  free(ps.s);
  free(ps.col);
  if (root == NULL) return COMPOT_ERR_FORMAT;

  m->n_nodes = count_nodes(root);
  m->nodes = (compot_node *) calloc((size_t) m->n_nodes, sizeof(compot_node));
  basis_kinds = (int *) calloc((size_t) m->n_nodes, sizeof(int));
  m->bases =
      (compot_basis *) calloc((size_t) m->n_nodes, sizeof(compot_basis));
  if (m->nodes == NULL || basis_kinds == NULL || m->bases == NULL
      || number_nodes(m, root, -1, 0, basis_kinds) < 0) {
    pnode_free(root);
    free(basis_kinds);
    compot_set_msg(msg, msg_size, "expression: out of memory");
    return COMPOT_ERR_MEMORY;
  }
  pnode_free(root);

  /* basis sharing, in pre-order */
  m->n_bases = 0;
  for (k = 0; k < m->n_nodes && !err; ++k) {
    compot_node *nd = &m->nodes[k];
    int shared = -1;
    if (!has_basis(nd->kind)) continue;
    if (nd->parent >= 0 && m->nodes[nd->parent].kind == COMPOT_NODE_SUM) {
      compot_node const *par = &m->nodes[nd->parent];
      int c;
      for (c = 0; c < par->n_children && par->children[c] != k; ++c) {
        compot_node const *sib = &m->nodes[par->children[c]];
        if (has_basis(sib->kind) && sib->basis >= 0
            && basis_kinds[par->children[c]] == basis_kinds[k]
            && sib->K == nd->K && sib->rt == nd->rt) {
          shared = sib->basis;
          break;
        }
      }
    }
    if (shared < 0) {
      shared = m->n_bases++;
      m->bases[shared].kind = basis_kinds[k];
      m->bases[shared].K = nd->K;
      m->bases[shared].rt = nd->rt;
    }
    nd->basis = shared;
    if (nd->kind == COMPOT_NODE_LINEAR || nd->kind == COMPOT_NODE_EXP
        || nd->kind == COMPOT_NODE_NEXP)
      m->bases[shared].need_phi = 1;
    if (nd->kind == COMPOT_NODE_NEXP) m->bases[shared].need_rho = 1;
    if (nd->kind == COMPOT_NODE_ANGULAR || nd->kind == COMPOT_NODE_EXPANG)
      m->bases[shared].need_ang = 1;
    if (nd->kind == COMPOT_NODE_NEXP) m->has_nexp = 1;
    if (nd->kind == COMPOT_NODE_ANGULAR || nd->kind == COMPOT_NODE_EXPANG) {
      m->has_angular = 1;
      if (nd->P > m->max_P) m->max_P = nd->P;
    }
    if (nd->K > m->max_K) m->max_K = nd->K;
  }
  free(basis_kinds);
  return err;
}
