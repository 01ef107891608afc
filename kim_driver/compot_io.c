/*
 * compot_io.c -- strict reader and writer of parameter file formats v1 and
 * v2 (docs/parameter-file.md); a model is written in its own version.
 * Every parameter must appear once, with the expected name, in the
 * expected order; every error names the file and the line, what was
 * expected and what was found.
 */
#include "compot_internal.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SPECIES 64
#define MAX_TOKENS (MAX_SPECIES + 2)

typedef struct reader {
  char const *name; /* file name for messages */
  char *buf;        /* private copy of the text */
  char *cur;        /* start of the next unread line */
  int line;         /* number of the line last read */
  char *text;       /* current line, comment removed, NUL-split */
  char *raw;        /* copy of the current line before splitting */
  char *tok[MAX_TOKENS];
  int ntok; /* number of tokens on the line (may exceed MAX_TOKENS) */
} reader;

static int is_blank(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Advance to the next significant line; 0 at end of file. */
static int next_line(reader *r)
{
  while (*r->cur != '\0') {
    char *line = r->cur, *end = strchr(line, '\n'), *hash, *p;
    if (end != NULL) {
      *end = '\0';
      r->cur = end + 1;
    } else {
      r->cur = line + strlen(line);
    }
    r->line++;
    hash = strchr(line, '#');
    if (hash != NULL) *hash = '\0';
    r->text = line;
    memcpy(r->raw, line, strlen(line) + 1); /* raw has the text's size */
    r->ntok = 0;
    p = line;
    for (;;) {
      while (is_blank(*p)) ++p;
      if (*p == '\0') break;
      if (r->ntok < MAX_TOKENS) r->tok[r->ntok] = p;
      r->ntok++;
      while (*p != '\0' && !is_blank(*p)) ++p;
      if (*p == '\0') break;
      *p++ = '\0';
    }
    if (r->ntok > 0) return 1;
  }
  return 0;
}

/* True for the words strtod reads as NaN or infinity: [+-]? (nan | inf |
   infinity), any case.  They are not numbers of the format; the message
   says "not a finite number" for them, "not a number" for other text. */
static int nonfinite_word(char const *tok)
{
  static char const *const words[] = {"nan", "inf", "infinity"};
  size_t w, i;
  if (*tok == '+' || *tok == '-') ++tok;
  for (w = 0; w < sizeof words / sizeof words[0]; ++w) {
    for (i = 0; words[w][i] != '\0'; ++i)
      if (tolower((unsigned char) tok[i]) != words[w][i]) break;
    if (words[w][i] == '\0' && tok[i] == '\0') return 1;
  }
  return 0;
}

/* Parse a whole token as a finite decimal number (compot_decimal_span: no
   hexadecimal, no inf or nan).  0 = ok, 1 = not a number, 2 = not finite
   (nan, inf, or beyond the largest double). */
static int parse_double(char const *tok, double *v)
{
  char *end;
  size_t n = strlen(tok);
  if ((size_t) compot_decimal_span(tok, 1) != n)
    return nonfinite_word(tok) ? 2 : 1;
  *v = strtod(tok, &end);
  if (end != tok + n) return 1; /* a decimal comma locale in the host */
  return *v <= DBL_MAX && *v >= -DBL_MAX ? 0 : 2;
}

/* A canonical decimal integer token, 0 or [1-9][0-9]* (no sign, no leading
   zero), of at most 9 digits. */
static int parse_int_token(char const *tok, long *v)
{
  size_t n = strlen(tok), i;
  if (n == 0 || n > 9 || (tok[0] == '0' && n > 1)) return 0;
  for (i = 0; i < n; ++i)
    if (!isdigit((unsigned char) tok[i])) return 0;
  *v = strtol(tok, NULL, 10);
  return 1;
}

/* The text is ASCII: printable characters, tabs and line ends (LF, or CR
   LF).  Any other byte (>= 0x80, NUL or another control character, a CR
   not followed by LF) is an error naming its line and column. */
static int check_ascii(char const *name, char const *text, size_t len,
                       char *msg, size_t msg_size)
{
  size_t i;
  unsigned long line = 1, col = 1;
  for (i = 0; i < len; ++i, ++col) {
    unsigned char c = (unsigned char) text[i];
    if (c == '\n') {
      ++line;
      col = 0;
      continue;
    }
    if ((c >= 0x20 && c < 0x7f) || c == '\t'
        || (c == '\r' && i + 1 < len && text[i + 1] == '\n'))
      continue;
    compot_set_msg(msg, msg_size,
                   "%s:%lu: expected ASCII text (printable characters, tabs "
                   "and line ends), found byte 0x%02X at column %lu "
                   "(files written by compot 0.1.0 hold the Angstrom sign in "
                   "comments: sed -i 's/\\xC3\\x85\\xC2\\xB2/Angstrom^2/g; "
                   "s/\\xC3\\x85/Angstrom/g' FILE)",
                   name, line, (unsigned) c, col);
    return COMPOT_ERR_FORMAT;
  }
  return COMPOT_OK;
}

/* The beta of a Gaussian basis also bounds its largest exponent
   (compot_exponent_error); NULL for other blocks. */
static char const *exponent_error(compot_model const *m,
                                  compot_param const *p, double beta,
                                  char *buf, size_t n)
{
  int b;
  for (b = 0; b < m->n_bases; ++b)
    if (m->bases[b].beta != NULL && m->bases[b].beta == p->values)
      return compot_exponent_error(m, b, beta, buf, n);
  return NULL;
}

static int fail_eof(reader *r, char *msg, size_t msg_size,
                    char const *expected)
{
  compot_set_msg(msg, msg_size, "%s: file ends at line %d; expected %s",
                 r->name, r->line, expected);
  return COMPOT_ERR_FORMAT;
}

/* Read the header line "keyword args..."; checks the keyword. */
static int header_line(reader *r, char const *keyword, char const *form,
                       char *msg, size_t msg_size)
{
  if (!next_line(r)) return fail_eof(r, msg, msg_size, form);
  if (strcmp(r->tok[0], keyword) != 0) {
    compot_set_msg(msg, msg_size, "%s:%d: expected %s, found '%s'", r->name,
                   r->line, form, r->tok[0]);
    return COMPOT_ERR_FORMAT;
  }
  return COMPOT_OK;
}

/* Store and check the species symbols; message without file prefix. */
int compot_set_species(compot_model *m, char const *const *syms, int n,
                       char *msg, size_t msg_size)
{
  int s, i;
  if (n < 1 || n > MAX_SPECIES) {
    compot_set_msg(msg, msg_size,
                   "species: expected 1 to %d chemical symbols, found %d",
                   MAX_SPECIES, n);
    return COMPOT_ERR_FORMAT;
  }
  m->n_species = n;
  m->species = (char(*)[4]) calloc((size_t) n, sizeof *m->species);
  m->z = (int *) calloc((size_t) n, sizeof(int));
  if (m->species == NULL || m->z == NULL) {
    compot_set_msg(msg, msg_size, "out of memory");
    return COMPOT_ERR_MEMORY;
  }
  for (s = 0; s < n; ++s) {
    char const *sym = syms[s];
    if (strlen(sym) > 3 || (m->z[s] = compot_symbol_to_z(sym)) == 0) {
      compot_set_msg(msg, msg_size,
                     "species: expected a chemical symbol such as Nb, found "
                     "'%s'",
                     sym);
      return COMPOT_ERR_FORMAT;
    }
    for (i = 0; i < s; ++i)
      if (m->z[i] == m->z[s]) {
        compot_set_msg(msg, msg_size,
                       "species: expected distinct symbols, found '%s' twice",
                       sym);
        return COMPOT_ERR_FORMAT;
      }
    snprintf(m->species[s], sizeof m->species[s], "%s", sym);
  }
  return COMPOT_OK;
}

/* ZBL needs r_out <= r_c; message without file prefix. */
int compot_check_zbl_cutoff(compot_model const *m, char *msg,
                            size_t msg_size)
{
  int i;
  for (i = 0; i < m->n_nodes; ++i) {
    compot_node const *n = &m->nodes[i];
    if (n->kind == COMPOT_NODE_ZBL && n->r_out > m->cutoff) {
      compot_set_msg(msg, msg_size,
                     "expression: %s needs r_out <= r_c; expected r_out <= "
                     "%.17g (the cutoff), found %.17g",
                     n->spec, m->cutoff, n->r_out);
      return COMPOT_ERR_FORMAT;
    }
    if (n->rt > m->cutoff) {
      compot_set_msg(msg, msg_size,
                     "expression: %s needs r_t <= r_c; expected r_t <= "
                     "%.17g (the cutoff), found r_t = %.17g",
                     n->spec, m->cutoff, n->rt);
      return COMPOT_ERR_FORMAT;
    }
  }
  return COMPOT_OK;
}

static int read_model(compot_model *m, reader *r, char *msg, size_t msg_size)
{
  char sub[512];
  long version, n_declared;
  int err, s, i, e, expr_line, got = 0, pending, count_line;
  double v;
  char *p;

  /* 1: magic and version */
  err = header_line(r, "compot-params", "'compot-params <version>'", msg,
                    msg_size);
  if (err) return err;
  if (r->ntok != 2) {
    compot_set_msg(msg, msg_size,
                   "%s:%d: expected 'compot-params <version>' with an "
                   "integer version, found %s",
                   r->name, r->line,
                   r->ntok < 2 ? "no version" : "something else");
    return COMPOT_ERR_FORMAT;
  }
  if (!parse_int_token(r->tok[1], &version) /* "01", "+1", "1.0" too */
      || version < COMPOT_FORMAT_VERSION_MIN
      || version > COMPOT_FORMAT_VERSION) {
    compot_set_msg(msg, msg_size,
                   "%s:%d: format version %s is not supported; this reader "
                   "reads versions %d to %d",
                   r->name, r->line, r->tok[1], COMPOT_FORMAT_VERSION_MIN,
                   COMPOT_FORMAT_VERSION);
    return COMPOT_ERR_FORMAT;
  }
  m->version = (int) version;

  /* 2: expression, rest of the line */
  err = header_line(r, "expression", "'expression <text>'", msg, msg_size);
  if (err) return err;
  expr_line = r->line;
  if (r->ntok < 2) {
    compot_set_msg(msg, msg_size,
                   "%s:%d: expression: empty; expected a model such as "
                   "E[G8L4]",
                   r->name, r->line);
    return COMPOT_ERR_FORMAT;
  }
  /* the rest of the line after the keyword, blanks at both ends removed */
  {
    size_t len;
    p = r->raw;
    while (is_blank(*p)) ++p;
    p += strlen("expression");
    while (is_blank(*p)) ++p;
    len = strlen(p);
    while (len > 0 && is_blank(p[len - 1])) --len;
    m->expression = (char *) malloc(len + 1);
    if (m->expression == NULL) goto nomem;
    memcpy(m->expression, p, len);
    m->expression[len] = '\0';
  }
  err = compot_parse_expression(m, m->expression, sub, sizeof sub);
  if (err) {
    compot_set_msg(msg, msg_size, "%s:%d: %s", r->name, expr_line, sub);
    return err;
  }

  /* 3: species */
  err = header_line(r, "species", "'species <S1> [<S2> ...]'", msg, msg_size);
  if (err) return err;
  m->n_species = r->ntok - 1;
  if (m->n_species > MAX_SPECIES) {
    compot_set_msg(msg, msg_size,
                   "%s:%d: species: expected 1 to %d chemical symbols, "
                   "found %d",
                   r->name, r->line, MAX_SPECIES, m->n_species);
    return COMPOT_ERR_FORMAT;
  }
  {
    char const *syms[MAX_SPECIES];
    for (s = 0; s < m->n_species; ++s) syms[s] = r->tok[s + 1];
    err = compot_set_species(m, syms, m->n_species, sub, sizeof sub);
    if (err) {
      compot_set_msg(msg, msg_size, "%s:%d: %s", r->name, r->line, sub);
      return err;
    }
  }

  /* 4: cutoff */
  err = header_line(r, "cutoff", "'cutoff <r_c>'", msg, msg_size);
  if (err) return err;
  if (r->ntok != 2 || parse_double(r->tok[1], &v) || !(v > 0.0)) {
    compot_set_msg(msg, msg_size,
                   "%s:%d: cutoff: expected one positive finite number "
                   "r_c [Angstrom], found '%s'",
                   r->name, r->line, r->ntok > 1 ? r->tok[1] : "");
    return COMPOT_ERR_FORMAT;
  }
  m->cutoff = v;
  err = compot_check_zbl_cutoff(m, sub, sizeof sub);
  if (err) {
    compot_set_msg(msg, msg_size, "%s:%d: %s (cutoff on line %d)", r->name,
                   expr_line, sub, r->line);
    return err;
  }

  /* 5: parameter count */
  err = compot_build_params(m, sub, sizeof sub);
  if (err) {
    compot_set_msg(msg, msg_size, "%s:%d: %s", r->name, expr_line, sub);
    return err;
  }
  err = header_line(r, "parameters", "'parameters <n>'", msg, msg_size);
  if (err) return err;
  if (r->ntok != 2 || !parse_int_token(r->tok[1], &n_declared)) {
    compot_set_msg(msg, msg_size,
                   "%s:%d: parameters: expected an integer count, found '%s'",
                   r->name, r->line, r->ntok > 1 ? r->tok[1] : "");
    return COMPOT_ERR_FORMAT;
  }
  /* a species embedding (docs/parameter-file.md): an optional first
     parameter 'chemistry.rank <r>' gives every basis r neighbour
     channels; the table is rebuilt with them */
  count_line = r->line;
  pending = next_line(r);
  if (pending && strcmp(r->tok[0], "chemistry.rank") == 0 && r->ntok == 2) {
    long rank;
    if (parse_double(r->tok[1], &v) || !(v >= 1.0 && v <= m->n_species)
        || v != (double) (rank = (long) v)) {
      compot_set_msg(msg, msg_size,
                     "%s:%d: value '%s' of 'chemistry.rank' is out of range; "
                     "expected an integer rank in 1..%d (the species)",
                     r->name, r->line, r->tok[1], m->n_species);
      return COMPOT_ERR_VALUE;
    }
    compot_free_params(m);
    m->rank = (int) rank;
    err = compot_build_params(m, sub, sizeof sub);
    if (err) {
      compot_set_msg(msg, msg_size, "%s:%d: %s", r->name, expr_line, sub);
      return err;
    }
  }
  if (n_declared != m->n_values) {
    compot_set_msg(msg, msg_size,
                   "%s:%d: parameters: expected %d for '%s' with %d "
                   "species, found %ld",
                   r->name, count_line, m->n_values, m->expression,
                   m->n_species, n_declared);
    return COMPOT_ERR_FORMAT;
  }

  /* 6: the parameters, in table order */
  for (i = 0; i < m->n_params; ++i) {
    compot_param const *pp = &m->params[i];
    for (e = 0; e < pp->extent; ++e, ++got) {
      char want[128];
      char const *domain;
      int rc;
      compot_param_element_name(m, i, e, want, sizeof want);
      if (!pending && !next_line(r)) {
        compot_set_msg(msg, msg_size,
                       "%s: file ends at line %d after %d of %d parameters; "
                       "expected '%s'",
                       r->name, r->line, got, m->n_values, want);
        return COMPOT_ERR_FORMAT;
      }
      pending = 0;
      if (strcmp(r->tok[0], want) != 0) {
        compot_set_msg(msg, msg_size,
                       "%s:%d: expected parameter '%s', found '%s'", r->name,
                       r->line, want, r->tok[0]);
        return COMPOT_ERR_FORMAT;
      }
      if (r->ntok != 2) {
        compot_set_msg(msg, msg_size,
                       "%s:%d: expected '%s <value>', found %d tokens",
                       r->name, r->line, want, r->ntok);
        return COMPOT_ERR_FORMAT;
      }
      rc = parse_double(r->tok[1], &v);
      if (rc) {
        compot_set_msg(msg, msg_size, "%s:%d: value '%s' of '%s' is not %s",
                       r->name, r->line, r->tok[1], want,
                       rc == 1 ? "a number; expected a decimal number such "
                                 "as -2.5e-3"
                               : "a finite number");
        return COMPOT_ERR_FORMAT;
      }
      domain = compot_value_domain_error(pp, v);
      if (domain == NULL) domain = exponent_error(m, pp, v, sub, sizeof sub);
      if (domain == NULL && pp->values == m->g_hi) /* gamma_lo read before */
        domain = compot_grade_error(m, e, v, sub, sizeof sub);
      if (domain != NULL) {
        compot_set_msg(msg, msg_size,
                       "%s:%d: value '%s' of '%s' is out of range; expected "
                       "%s",
                       r->name, r->line, r->tok[1], want, domain);
        return COMPOT_ERR_VALUE;
      }
      if (pp->values == m->w_r_b
          && compot_window_error(m, e, v, sub, sizeof sub) != NULL) {
        compot_set_msg(msg, msg_size, "%s:%d: '%s': %s", r->name, r->line,
                       want, sub);
        return COMPOT_ERR_VALUE;
      }
      pp->values[e] = v;
    }
  }

  /* 7: end, and nothing after it */
  if (!next_line(r)) return fail_eof(r, msg, msg_size, "'end'");
  if (strcmp(r->tok[0], "end") != 0 || r->ntok != 1) {
    compot_set_msg(msg, msg_size,
                   "%s:%d: expected 'end' after %d parameters, found '%s'",
                   r->name, r->line, m->n_values, r->tok[0]);
    return COMPOT_ERR_FORMAT;
  }
  if (next_line(r)) {
    compot_set_msg(msg, msg_size,
                   "%s:%d: expected nothing after 'end', found '%s'", r->name,
                   r->line, r->tok[0]);
    return COMPOT_ERR_FORMAT;
  }
  return COMPOT_OK;

nomem:
  compot_set_msg(msg, msg_size, "%s: out of memory", r->name);
  return COMPOT_ERR_MEMORY;
}

int compot_create_from_text(compot_model **model, char const *text,
                            char const *source_name, char *msg,
                            size_t msg_size)
{
  reader r;
  compot_model *m;
  size_t n;
  int err;

  if (model == NULL || text == NULL) {
    compot_set_msg(msg, msg_size, "compot_create: NULL argument");
    return COMPOT_ERR_ARG;
  }
  *model = NULL;
  memset(&r, 0, sizeof r);
  r.name = source_name != NULL ? source_name : "<text>";
  n = strlen(text);
  err = check_ascii(r.name, text, n, msg, msg_size);
  if (err) return err;
  r.buf = (char *) malloc(n + 1);
  r.raw = (char *) malloc(n + 1);
  m = (compot_model *) calloc(1, sizeof(compot_model));
  if (r.buf == NULL || r.raw == NULL || m == NULL) {
    free(r.buf);
    free(r.raw);
    free(m);
    compot_set_msg(msg, msg_size, "%s: out of memory", r.name);
    return COMPOT_ERR_MEMORY;
  }
  memcpy(r.buf, text, n + 1);
  r.cur = r.buf;
  err = read_model(m, &r, msg, msg_size);
  free(r.buf);
  free(r.raw);
  if (!err) {
    char sub[512];
    err = compot_refresh(m, sub, sizeof sub);
    if (err) compot_set_msg(msg, msg_size, "%s: %s", r.name, sub);
  }
  if (err) {
    compot_destroy(m);
    return err;
  }
  *model = m;
  return COMPOT_OK;
}

int compot_create(compot_model **model, char const *path, char *msg,
                  size_t msg_size)
{
  FILE *fp;
  char *text = NULL;
  size_t len = 0, cap = 0;
  int err;

  if (model == NULL || path == NULL) {
    compot_set_msg(msg, msg_size, "compot_create: NULL argument");
    return COMPOT_ERR_ARG;
  }
  *model = NULL;
  fp = fopen(path, "rb");
  if (fp == NULL) {
    compot_set_msg(msg, msg_size, "%s: cannot open the parameter file: %s",
                   path, strerror(errno));
    return COMPOT_ERR_IO;
  }
  for (;;) {
    size_t got;
    if (cap - len < 4097) {
      size_t ncap = cap ? 2 * cap : 65536;
      char *t = (char *) realloc(text, ncap);
      if (t == NULL) {
        free(text);
        fclose(fp);
        compot_set_msg(msg, msg_size, "%s: out of memory", path);
        return COMPOT_ERR_MEMORY;
      }
      text = t;
      cap = ncap;
    }
    got = fread(text + len, 1, cap - len - 1, fp);
    len += got;
    if (got == 0) break;
  }
  if (ferror(fp)) {
    free(text);
    fclose(fp);
    compot_set_msg(msg, msg_size, "%s: read error", path);
    return COMPOT_ERR_IO;
  }
  fclose(fp);
  text[len] = '\0';
  err = check_ascii(path, text, len, msg, msg_size); /* NUL bytes too */
  if (err) {
    free(text);
    return err;
  }
  err = compot_create_from_text(model, text, path, msg, msg_size);
  free(text);
  return err;
}

/* ---- writer ------------------------------------------------------------- */

static char const *role_name(int role)
{
  switch (role) {
  case COMPOT_ROLE_LINEAR: return "linear";
  case COMPOT_ROLE_NONLINEAR: return "nonlinear";
  default: return "fixed";
  }
}

int compot_write_stream(compot_model const *m, FILE *fp, char const *name,
                        char *msg, size_t msg_size)
{
  int i, e, s, k, last_owner = -2000;
  int ok = 1;
  if (m == NULL || fp == NULL) {
    compot_set_msg(msg, msg_size, "compot_write: NULL argument");
    return COMPOT_ERR_ARG;
  }
  if (name == NULL) name = "<stream>";
  ok &= fprintf(fp, "# compot parameter file, format v%d\n", m->version) > 0;
  ok &= fprintf(fp, "# written by the compot C core (kim_driver/compot_io.c); "
                    "grammar in docs/parameter-file.md\n") > 0;
  ok &= fprintf(fp, "compot-params %d\n", m->version) > 0;
  ok &= fprintf(fp, "expression %s\n", m->expression) > 0;
  ok &= fprintf(fp, "species") > 0;
  for (s = 0; s < m->n_species; ++s)
    ok &= fprintf(fp, " %s", m->species[s]) > 0;
  ok &= fprintf(fp, "\n") > 0;
  ok &= fprintf(fp, "cutoff %.17g  # r_c [Angstrom]\n", m->cutoff) > 0;
  ok &= fprintf(fp, "parameters %d\n", m->n_values) > 0;
  for (i = 0; i < m->n_params && ok; ++i) {
    compot_param const *p = &m->params[i];
    /* basis b (>= 0), node (< -1: -2 - node), block w (-1), block g
       (-1000) */
    int owner;
    if (p->key[0] == 'b')
      owner = atoi(p->key + 1) - 1;
    else if (p->key[0] == 'w')
      owner = -1;
    else if (p->key[0] == 'g')
      owner = -1000;
    else if (p->key[0] == 'c')
      owner = -3000;
    else
      owner = -2 - atoi(p->key + 1);
    if (owner != last_owner) {
      if (owner == -1) {
        ok &= fprintf(fp, "# inner window, saturation width and reference "
                          "site energy (format v2)\n") > 0;
      } else if (owner == -3000) {
        ok &= fprintf(fp, "# species embedding: r neighbour channels per "
                          "basis, weights bJ.w.<s>.e<c>\n") > 0;
      } else if (owner == -1000) {
        ok &= fprintf(fp, "# extrapolation grade: mean feature vector, "
                          "whitening factor, switch range (format v2)\n") > 0;
      } else if (owner >= 0) {
        compot_basis const *B = &m->bases[owner];
        ok &= fprintf(fp, "# basis b%d: %c%d %s, used by", owner + 1,
                      B->kind == COMPOT_BASIS_GAUSSIAN ? 'G' : 'C', B->K,
                      B->kind == COMPOT_BASIS_GAUSSIAN
                          ? "even-tempered Gaussian"
                          : "Chebyshev") > 0;
        for (k = 0; k < m->n_nodes; ++k)
          if (m->nodes[k].basis == owner) ok &= fprintf(fp, " n%d", k) > 0;
        ok &= fprintf(fp, "\n") > 0;
      } else {
        ok &= fprintf(fp, "# n%d: %s\n", -2 - owner,
                      m->nodes[-2 - owner].spec) > 0;
      }
      last_owner = owner;
    }
    for (e = 0; e < p->extent && ok; ++e) {
      char nm[128];
      compot_param_element_name(m, i, e, nm, sizeof nm);
      ok &= fprintf(fp, "%s %.17g  # [%s] %s\n", nm, p->values[e], p->unit,
                    role_name(p->role)) > 0;
    }
  }
  ok &= fprintf(fp, "end\n") > 0;
  if (!ok || ferror(fp)) {
    compot_set_msg(msg, msg_size, "%s: write error", name);
    return COMPOT_ERR_IO;
  }
  return COMPOT_OK;
}

int compot_write(compot_model const *m, char const *path, char *msg,
                 size_t msg_size)
{
  FILE *fp;
  int err;
  if (m == NULL || path == NULL) {
    compot_set_msg(msg, msg_size, "compot_write: NULL argument");
    return COMPOT_ERR_ARG;
  }
  fp = fopen(path, "w");
  if (fp == NULL) {
    compot_set_msg(msg, msg_size, "%s: cannot open for writing: %s", path,
                   strerror(errno));
    return COMPOT_ERR_IO;
  }
  err = compot_write_stream(m, fp, path, msg, msg_size);
  if (fclose(fp) != 0 && !err) {
    compot_set_msg(msg, msg_size, "%s: write error on close", path);
    err = COMPOT_ERR_IO;
  }
  return err;
}
