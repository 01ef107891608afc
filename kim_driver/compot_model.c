/*
 * compot_model.c -- model lifecycle of the compot C core: blank models,
 * refresh (every value derived from the parameters: the domain checks and
 * the rules tying values together, then the tables of the terms), the
 * accessors and destroy.  Reading and writing files: compot_io.c; the
 * parameter table: compot_params.c.
 */
#include "compot_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void compot_set_msg(char *msg, size_t msg_size, char const *fmt, ...)
{
  va_list ap;
  if (msg == NULL || msg_size == 0) return;
  va_start(ap, fmt);
  vsnprintf(msg, msg_size, fmt, ap);
  va_end(ap);
}

/* Chemical symbols by atomic number (index 0 unused). */
static char const *const element_symbols[] = {
    "",   "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na",
    "Mg", "Al", "Si", "P",  "S",  "Cl", "Ar", "K",  "Ca", "Sc", "Ti", "V",
    "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br",
    "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag",
    "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr",
    "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu",
    "Hf", "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi",
    "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U",  "Np", "Pu", "Am",
    "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh",
    "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};

int compot_symbol_to_z(char const *symbol)
{
  int z;
  for (z = 1; z < (int) (sizeof element_symbols / sizeof element_symbols[0]);
       ++z)
    if (strcmp(symbol, element_symbols[z]) == 0) return z;
  return 0;
}

/* ---- blank models ------------------------------------------------------ */

int compot_create_blank(compot_model **model, char const *expression,
                        char const *const *species, int n_species,
                        double cutoff, char *msg, size_t msg_size)
{
  return compot_create_blank_version(model, expression, species, n_species,
                                     cutoff, 1, msg, msg_size);
}

int compot_create_blank_version(compot_model **model, char const *expression,
                                char const *const *species, int n_species,
                                double cutoff, int version, char *msg,
                                size_t msg_size)
{
  compot_model *m;
  int err, i, e;
  size_t len;
  if (model == NULL || expression == NULL || species == NULL) {
    compot_set_msg(msg, msg_size, "compot_create_blank: NULL argument");
    return COMPOT_ERR_ARG;
  }
  *model = NULL;
  if (version < COMPOT_FORMAT_VERSION_MIN || version > COMPOT_FORMAT_VERSION) {
    compot_set_msg(msg, msg_size,
                   "compot_create_blank: format version %d is not supported; "
                   "expected %d to %d",
                   version, COMPOT_FORMAT_VERSION_MIN, COMPOT_FORMAT_VERSION);
    return COMPOT_ERR_ARG;
  }
  m = (compot_model *) calloc(1, sizeof(compot_model));
  if (m == NULL) {
    compot_set_msg(msg, msg_size, "out of memory");
    return COMPOT_ERR_MEMORY;
  }
  m->version = version;
  len = strlen(expression);
  m->expression = (char *) malloc(len + 1);
  if (m->expression == NULL) {
    compot_destroy(m);
    compot_set_msg(msg, msg_size, "out of memory");
    return COMPOT_ERR_MEMORY;
  }
  memcpy(m->expression, expression, len + 1);
  err = compot_parse_expression(m, expression, msg, msg_size);
  if (!err) err = compot_set_species(m, species, n_species, msg, msg_size);
  if (!err && !(cutoff > 0.0 && cutoff < 1e300)) {
    compot_set_msg(msg, msg_size,
                   "cutoff: expected a finite r_c > 0 [Angstrom], found %g",
                   cutoff);
    err = COMPOT_ERR_VALUE;
  }
  m->cutoff = cutoff;
  if (!err) err = compot_check_zbl_cutoff(m, msg, msg_size);
  if (!err) err = compot_build_params(m, msg, msg_size);
  if (!err) {
    /* the initial values of the table (compot_params.c): alpha 1, beta 2,
       scales 1, gamma 1, coefficients 0; in format v2 tau 0.3, the inner
       window off (r_a = r_b = 0), E_ref 0 and the grade off (mu = U = 0,
       gamma_lo 1, gamma_hi 2) */
    for (i = 0; i < m->n_params; ++i) {
      compot_param const *p = &m->params[i];
      for (e = 0; e < p->extent; ++e) p->values[e] = p->initial;
    }
    err = compot_refresh(m, msg, msg_size);
  }
  if (err) {
    compot_destroy(m);
    return err;
  }
  *model = m;
  return COMPOT_OK;
}

/* ---- accessors ---------------------------------------------------------- */

char const *compot_expression(compot_model const *m) { return m->expression; }
int compot_format_version(compot_model const *m) { return m->version; }
int compot_n_species(compot_model const *m) { return m->n_species; }
char const *compot_species_symbol(compot_model const *m, int s)
{
  return (s >= 0 && s < m->n_species) ? m->species[s] : NULL;
}
int compot_atomic_number(compot_model const *m, int s)
{
  return (s >= 0 && s < m->n_species) ? m->z[s] : 0;
}
double compot_cutoff(compot_model const *m) { return m->cutoff; }
double compot_influence_distance(compot_model const *m)
{
  return m->influence_distance;
}
int compot_needs_ghost_neighbors(compot_model const *m)
{
  return m->has_nexp;
}
int compot_n_params(compot_model const *m) { return m->n_params; }
compot_param const *compot_param_at(compot_model const *m, int index)
{
  return (index >= 0 && index < m->n_params) ? &m->params[index] : NULL;
}

/* Row and column (a <= b) of entry q of the upper triangle of an n x n table,
   rows in order: (0,0) (0,1) ... (0,n-1) (1,1) ... */
static void upper_pair(int n, int q, int *a, int *b)
{
  int r = 0;
  while (q >= n - r) {
    q -= n - r;
    ++r;
  }
  *a = r;
  *b = r + q;
}

int compot_param_element_name(compot_model const *m, int index, int flat,
                              char *buf, size_t buf_size)
{
  compot_param const *p = compot_param_at(m, index);
  int idx[COMPOT_MAX_INDEX], d, rest = flat;
  size_t used;
  if (p == NULL || flat < 0 || flat >= p->extent || buf_size == 0)
    return COMPOT_ERR_ARG;
  for (d = p->n_index - 1; d >= 0; --d) {
    idx[d] = rest % p->dims[d];
    rest /= p->dims[d];
  }
  used = (size_t) snprintf(buf, buf_size, "%s", p->key);
  for (d = 0; d < p->n_index && used < buf_size; ++d) {
    int w = 0;
    switch (p->index_kind[d]) {
    case COMPOT_INDEX_SPECIES:
      w = snprintf(buf + used, buf_size - used, ".%s", m->species[idx[d]]);
      break;
    case COMPOT_INDEX_SPECIES_PAIR: {
      int a, b;
      upper_pair(m->n_species, idx[d], &a, &b);
      w = snprintf(buf + used, buf_size - used, ".%s.%s", m->species[a],
                   m->species[b]);
      break;
    }
    case COMPOT_INDEX_ONE_BASED:
      w = snprintf(buf + used, buf_size - used, ".%d", idx[d] + 1);
      break;
    case COMPOT_INDEX_CHANNEL:
      w = snprintf(buf + used, buf_size - used, ".e%d", idx[d] + 1);
      break;
    case COMPOT_INDEX_CHANNEL_PAIR: {
      int c1, c2;
      upper_pair(m->rank, idx[d], &c1, &c2);
      w = snprintf(buf + used, buf_size - used, ".e%d.e%d", c1 + 1, c2 + 1);
      break;
    }
    case COMPOT_INDEX_LOWER_TRIANGLE: { /* q = r(r+1)/2 + c, c <= r (0-based) */
      int r = 0, q = idx[d];
      while (q > r) {
        q -= r + 1;
        ++r;
      }
      w = snprintf(buf + used, buf_size - used, ".%d.%d", r + 1, q + 1);
      break;
    }
    default:
      w = snprintf(buf + used, buf_size - used, ".%d", idx[d]);
      break;
    }
    if (w < 0) return COMPOT_ERR_ARG;
    used += (size_t) w;
  }
  return used < buf_size ? COMPOT_OK : COMPOT_ERR_ARG;
}


/*
 * Format v2: the rule tying gamma_hi of species Z to gamma_lo (read
 * before it): gamma_hi > gamma_lo.  Returns NULL, or buf filled with the
 * condition ("gamma_hi > gamma_lo = 1.5").
 */
char const *compot_grade_error(compot_model const *m, int Z, double hi,
                               char *buf, size_t n)
{
  if (hi > m->g_lo[Z]) return NULL;
  snprintf(buf, n, "gamma_hi > gamma_lo = %.17g (the grade from which the "
                   "fitted energy is off)",
           m->g_lo[Z]);
  return buf;
}

/*
 * The rules that tie r_b of species pair q (s1 <= s2) to other values
 * (MODEL_SPEC 10): r_a <= r_b < r_c, and r_b <= r_in of every ZBL term (ZBL
 * fully on wherever the window is not).  Returns NULL, or buf filled with
 * "what; expected X, found Y".
 */
char const *compot_window_error(compot_model const *m, int q, double r_b,
                                char *buf, size_t n)
{
  int s1 = 0, rest = q, k;
  char pair[16];
  while (rest >= m->n_species - s1) {
    rest -= m->n_species - s1;
    ++s1;
  }
  snprintf(pair, sizeof pair, "%s-%s", m->species[s1],
           m->species[s1 + rest]);
  if (!(m->w_r_a[q] <= r_b && r_b < m->cutoff)) {
    snprintf(buf, n,
             "inner window of %s needs r_a <= r_b < r_c; expected %.15g <= "
             "r_b < %.15g, found r_b = %.15g",
             pair, m->w_r_a[q], m->cutoff, r_b);
    return buf;
  }
  for (k = 0; k < m->n_nodes; ++k) {
    compot_node const *nd = &m->nodes[k];
    if (nd->kind == COMPOT_NODE_ZBL && !(r_b <= nd->r_in)) {
      snprintf(buf, n,
               "%s must be fully on wherever the inner window of %s is not; "
               "expected r_b <= r_in = %.15g, found r_b = %.15g",
               nd->spec, pair, nd->r_in, r_b);
      return buf;
    }
  }
  return NULL;
}

/* The coefficient table of an E, N or A leaf (layout: node_table_size). */
/*
 * The rule tying beta of Gaussian basis b to its alpha (read before it)
 * and K: the largest exponent a_K = alpha beta^(K-1) is finite.  Returns
 * NULL, or buf filled with the condition.
 */
char const *compot_exponent_error(compot_model const *m, int b, double beta,
                                  char *buf, size_t n)
{
  compot_basis const *B = &m->bases[b];
  if (log(*B->alpha) + (B->K - 1) * log(beta) < log(DBL_MAX)) return NULL;
  snprintf(buf, n, "alpha * beta^(K-1) finite (K = %d)", B->K);
  return buf;
}

/* Refresh refuses element e of the block whose values start at values:
   "parameter NAME[e] ('ELEMENT') is V; expected WHY" (with show_value),
   else "parameter NAME[e] ('ELEMENT'): WHY". */
static int refuse(compot_model const *m, double const *values, int e,
                  char const *why, int show_value, char *msg, size_t msg_size)
{
  int i;
  char nm[128];
  for (i = 0; i < m->n_params - 1 && m->params[i].values != values; ++i)
    continue;
  compot_param_element_name(m, i, e, nm, sizeof nm);
  if (show_value)
    compot_set_msg(msg, msg_size,
                   "parameter %s[%d] ('%s') is %.17g; expected %s",
                   m->params[i].name, e, nm, values[e], why);
  else
    compot_set_msg(msg, msg_size, "parameter %s[%d] ('%s'): %s",
                   m->params[i].name, e, nm, why);
  return COMPOT_ERR_VALUE;
}

int compot_refresh(compot_model *m, char *msg, size_t msg_size)
{
  int i, e, b, k, S;
  if (m == NULL) {
    compot_set_msg(msg, msg_size, "compot_refresh: model is NULL");
    return COMPOT_ERR_ARG;
  }
  S = m->n_species;
  for (i = 0; i < m->n_params; ++i) {
    compot_param const *p = &m->params[i];
    for (e = 0; e < p->extent; ++e) {
      char const *want = compot_value_domain_error(p, p->values[e]);
      if (want != NULL) return refuse(m, p->values, e, want, 1, msg, msg_size);
    }
  }
  if (m->chem_rank != NULL && *m->chem_rank != (double) m->rank) {
    char why[96]; /* the channels are fixed when the model is read */
    snprintf(why, sizeof why, "%d (the rank the model was read with)",
             m->rank);
    return refuse(m, m->chem_rank, 0, why, 1, msg, msg_size);
  }
  m->win_rb_max = 0.0;
  if (m->version >= 2) {
    int np = S * (S + 1) / 2, si, sj;
    for (e = 0; e < np; ++e) {
      char why[256];
      if (compot_window_error(m, e, m->w_r_b[e], why, sizeof why) != NULL)
        return refuse(m, m->w_r_b, e, why, 0, msg, msg_size);
      if (m->w_r_b[e] > m->win_rb_max) m->win_rb_max = m->w_r_b[e];
    }
    for (si = 0; si < S; ++si)
      for (sj = 0; sj < S; ++sj) {
        int q = si <= sj ? compot_pair_index(S, si, sj)
                         : compot_pair_index(S, sj, si);
        double *w = m->win + 2 * (si * S + sj);
        w[0] = m->w_r_a[q];
        w[1] = m->w_r_b[q];
      }
    for (e = 0; e < S; ++e) {
      char why[256];
      if (compot_grade_error(m, e, m->g_hi[e], why, sizeof why) != NULL)
        return refuse(m, m->g_hi, e, why, 1, msg, msg_size);
    }
    compot_grade_rows_fill(m);
    compot_grade_screen_fill(m);
  }
  for (b = 0; b < m->n_bases; ++b) {
    compot_basis *B = &m->bases[b];
    if (B->kind != COMPOT_BASIS_GAUSSIAN) continue;
    char why[64];
    if (compot_exponent_error(m, b, *B->beta, why, sizeof why) != NULL) {
      compot_set_msg(msg, msg_size, "basis b%d: beta is %.17g; expected %s",
                     b + 1, *B->beta, why);
      return COMPOT_ERR_VALUE;
    }
    for (k = 0; k < B->K; ++k)
      B->a[k] = *B->alpha * pow(*B->beta, (double) k);
  }
  for (k = 0; k < m->n_nodes; ++k) {
    compot_node *n = &m->nodes[k];
    if (n->kind == COMPOT_NODE_EXP || n->kind == COMPOT_NODE_NEXP)
      compot_exp_table_fill(m, n);
    else if (n->kind == COMPOT_NODE_ANGULAR)
      compot_angular_table_fill(m, n);
    else if (n->kind == COMPOT_NODE_EXPANG)
      compot_expang_table_fill(m, n);
  }
  compot_real_harmonics_coef(m->max_P, m->ylm_coef);
  for (k = 0; k < m->n_nodes; ++k) {
    compot_node *n = &m->nodes[k];
    int si, sj;
    if (n->kind != COMPOT_NODE_ZBL) continue;
    for (si = 0; si < S; ++si)
      for (sj = 0; sj < S; ++sj)
        compot_zbl_setup(&n->zbl, si * S + sj, (double) m->z[si],
                         (double) m->z[sj], n->r_in, n->r_out);
  }
  m->influence_distance = m->has_nexp ? 2.0 * m->cutoff : m->cutoff;
  return COMPOT_OK;
}

void compot_destroy(compot_model *m)
{
  int i;
  if (m == NULL) return;
  for (i = 0; i < m->n_params; ++i) free((char *) m->params[i].description);
  if (m->nodes != NULL)
    for (i = 0; i < m->n_nodes; ++i) free(m->nodes[i].children);
  free(m->params);
  free(m->values);
  free(m->derived);
  free(m->grade_on);
  free(m->nodes);
  free(m->bases);
  free(m->species);
  free(m->z);
  free(m->expression);
  free(m);
}
