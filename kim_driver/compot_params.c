/*
 * compot_params.c -- the parameter table of a model: the single
 * description of every parameter block (name, meaning, unit, role,
 * indexing, domain, initial value) that the reader, the writer, the
 * refresh and the KIM glue iterate over; and the storage of the values and
 * of the arrays derived from them at refresh.
 */
#include "compot_internal.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* What values a block allows (compot_value_domain_error) and the value of
   a blank model (compot_create_blank). */
typedef struct domain {
  int kind;         /* enum compot_domain */
  char const *text; /* the condition, in the reader's messages */
  double initial;
} domain;

static domain const FINITE = {COMPOT_DOMAIN_FINITE, "a finite number", 0.0};
static domain const ALPHA = {COMPOT_DOMAIN_POSITIVE, "alpha > 0", 1.0};
static domain const BETA = {COMPOT_DOMAIN_ABOVE_ONE, "beta > 1", 2.0};
static domain const PHI_MAX = {
    COMPOT_DOMAIN_POSITIVE,
    "phi_max > 0 (a channel that never occurs is stored as 1)", 1.0};
static domain const RHO_MAX = {
    COMPOT_DOMAIN_POSITIVE,
    "rho_max > 0 (a channel that never occurs is stored as 1)", 1.0};
static domain const Q_MAX = {
    COMPOT_DOMAIN_POSITIVE,
    "q_max > 0 (a channel that never occurs is stored as 1)", 1.0};
static domain const GAMMA = {COMPOT_DOMAIN_FINITE, "a finite number", 1.0};
static domain const TAU = {COMPOT_DOMAIN_POSITIVE,
                           "tau > 0 (the saturation width)", 0.3};
static domain const R_A = {COMPOT_DOMAIN_NONNEGATIVE,
                           "r_a >= 0 (the inner window start)", 0.0};
/* the grade off: U = 0 */
static domain const GAMMA_LO = {
    COMPOT_DOMAIN_POSITIVE,
    "gamma_lo > 0 (the grade up to which the fitted energy is on)", 1.0};
static domain const GAMMA_HI = {COMPOT_DOMAIN_FINITE, "a finite number", 2.0};
/* the coordination term off: n_min = 0 */
static domain const N_MIN = {COMPOT_DOMAIN_NONNEGATIVE,
                             "n_min >= 0 (the data's lowest coordination)", 0.0};
/* the species embedding: its rank (checked by the reader, compot_io.c) and
   weights; the initial W is 1 (every neighbour alike) */
static domain const RANK = {COMPOT_DOMAIN_POSITIVE,
                            "an integer rank in 1..S (the species)", 1.0};
static domain const WEIGHT = {COMPOT_DOMAIN_FINITE, "a finite number", 1.0};

/* Domain of a value of block p; returns a description of the violated
   condition or NULL.  (Rules tying values together: compot_window_error,
   compot_grade_error.) */
char const *compot_value_domain_error(compot_param const *p, double v)
{
  if (!(v == v) || v > DBL_MAX || v < -DBL_MAX) return "a finite number";
  switch (p->domain) {
  case COMPOT_DOMAIN_POSITIVE: return v > 0.0 ? NULL : p->domain_text;
  case COMPOT_DOMAIN_ABOVE_ONE: return v > 1.0 ? NULL : p->domain_text;
  case COMPOT_DOMAIN_NONNEGATIVE: return v >= 0.0 ? NULL : p->domain_text;
  default: return NULL;
  }
}


typedef struct table_builder {
  compot_model *m;
  int count_only;
  int n_params;
  int n_values;
  double n_values_total; /* counting pass: in double, it may overflow int */
} table_builder;

static char *dup_printf(char const *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static char *dup_printf(char const *fmt, ...)
{
  va_list ap;
  int n;
  char *s;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  s = (char *) malloc((size_t) n + 1);
  if (s == NULL) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t) n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* Add the block <owner><i>.<field> (<owner>.<field> when i < 0; the C
   name is the key with '_' for '.', e.g. b1.alpha and b1_alpha); returns a
   pointer to its values (NULL when counting). */
static double *add_block(table_builder *tb, char owner, int i_owner,
                         char const *field, char const *unit, int role,
                         domain const *dom, int n_index, int const *dims,
                         int const *kinds, char *description)
{
  int extent = 1, i;
  compot_param *p;
  char *dot;
  if (tb->count_only) {
    double total = 1.0; /* in double: the size limit is checked after it */
    for (i = 0; i < n_index; ++i) total *= dims[i];
    free(description);
    tb->n_params++;
    tb->n_values_total += total;
    return NULL;
  }
  for (i = 0; i < n_index; ++i) extent *= dims[i];
  p = &tb->m->params[tb->n_params++];
  if (owner == 'c') /* the species embedding, chemistry.rank */
    snprintf(p->key, sizeof p->key, "chemistry.%s", field);
  else if (i_owner < 0)
    snprintf(p->key, sizeof p->key, "%c.%s", owner, field);
  else
    snprintf(p->key, sizeof p->key, "%c%d.%s", owner, i_owner, field);
  snprintf(p->name, sizeof p->name, "%s", p->key);
  dot = strchr(p->name, '.');
  if (dot) *dot = '_';
  p->unit = unit;
  p->role = role;
  p->values = tb->m->values + tb->n_values;
  p->extent = extent;
  p->n_index = n_index;
  for (i = 0; i < n_index; ++i) {
    p->dims[i] = dims[i];
    p->index_kind[i] = kinds[i];
  }
  p->description = description;
  p->domain = dom->kind;
  p->domain_text = dom->text;
  p->initial = dom->initial;
  tb->n_values += extent;
  return p->values;
}

static char const *species_list(compot_model const *m, char *buf, size_t n)
{
  int s;
  size_t used = 0;
  buf[0] = '\0';
  for (s = 0; s < m->n_species && used + 5 < n; ++s) {
    int w = snprintf(buf + used, n - used, "%s%s", s ? " " : "",
                     m->species[s]);
    if (w < 0) break;
    used += (size_t) w;
  }
  return buf;
}

static char const *basis_users(compot_model const *m, int b, char *buf,
                               size_t n)
{
  int k;
  size_t used = 0;
  buf[0] = '\0';
  for (k = 0; k < m->n_nodes && used + 8 < n; ++k) {
    if (m->nodes[k].basis == b) {
      int w = snprintf(buf + used, n - used, "%sn%d", used ? " " : "", k);
      if (w < 0) break;
      used += (size_t) w;
    }
  }
  return buf;
}

/* The block nI.q_max of an A leaf (format v2) or an E[A] leaf: the fixed
   scale of the angular cluster functions q_kp^(s1 s2); use says what the
   leaf does with it. */
static double *add_q_max_block(table_builder *tb, compot_node const *n, int k,
                               int npair, char const *sp, char const *use)
{
  int const kinds[3] = {tb->m->rank > 0 ? COMPOT_INDEX_CHANNEL_PAIR
                                        : COMPOT_INDEX_SPECIES_PAIR,
                        COMPOT_INDEX_ONE_BASED, COMPOT_INDEX_ZERO_BASED};
  int const dims[3] = {npair, n->K, n->P + 1};
  return add_block(
      tb, 'n', k, "q_max", "1", COMPOT_ROLE_FIXED, &Q_MAX, 3, dims, kinds,
      dup_printf("node n%d %s: scale q_max[s1,s2][k][p] > 0 of the "
                 "angular cluster function q_kp^(s1 s2) (largest |q| "
                 "over the fitting data); %s; unit 1; role fixed "
                 "(not fitted); flat index (q*%d + (k-1))*%d + p, q = "
                 "index of the pair s1 <= s2 (s1 outer) over species "
                 "(%s), k = 1..%d, p = 0..%d",
                 k, n->spec, use, n->K, n->P + 1, sp, n->K, n->P));
}

static int node_has_shift(compot_model const *m, int k)
{
  int parent = m->nodes[k].parent;
  return parent < 0 || m->nodes[parent].kind != COMPOT_NODE_SUM;
}

/* Number of features of one centre species of a fitted leaf (its c block
   without the centre index), 0 for other nodes. */
static double leaf_features(compot_model const *m, compot_node const *n)
{
  int S = compot_nch(m); /* neighbour channels */
  switch (n->kind) {
  case COMPOT_NODE_LINEAR: return (double) S * n->K;
  case COMPOT_NODE_EXP:
  case COMPOT_NODE_NEXP: return (double) S * n->L * n->K;
  case COMPOT_NODE_ANGULAR:
    return (double) (S * (S + 1) / 2) * n->K * (n->P + 1);
  case COMPOT_NODE_EXPANG:
    return (double) (S * (S + 1) / 2) * n->L * n->K * (n->P + 1);
  default: return 0.0;
  }
}

/*
 * Block g (format v2, always last): the extrapolation grade per centre
 * species, over the d features of the fitted leaves.  The sizes are counted
 * in double (d(d+1)/2 of a model beyond the size limit overflows int; the
 * limit is checked after the counting pass).
 */
static void add_grade_blocks(table_builder *tb, char const *sp)
{
  compot_model *m = tb->m;
  int S = m->n_species, k, dims[2];
  int const kinds_s[1] = {COMPOT_INDEX_SPECIES};
  int const kinds_sd[2] = {COMPOT_INDEX_SPECIES, COMPOT_INDEX_ONE_BASED};
  int const kinds_st[2] = {COMPOT_INDEX_SPECIES, COMPOT_INDEX_LOWER_TRIANGLE};
  double d = 0.0, *v;
  for (k = 0; k < m->n_nodes; ++k) d += leaf_features(m, &m->nodes[k]);
  if (tb->count_only) {
    tb->n_params += m->version >= 4 ? 5 : 4;
    tb->n_values_total += S * d + S * (0.5 * d * (d + 1.0)) + (m->version >= 4 ? 3.0 : 2.0) * S;
    return;
  }
  m->grade_d = (int) d;
  dims[0] = S;
  dims[1] = m->grade_d;
  v = add_block(
      tb, 'g', -1, "mu", "1", COMPOT_ROLE_FIXED, &FINITE, 2, dims, kinds_sd,
      dup_printf("extrapolation grade: mean mu[Z][c] of the feature vector "
                 "f of the atoms of species Z over the fitted data; f = "
                 "every fitted leaf's features for the centre species "
                 "(phi_k for G/C, x(gamma_l, u_k) for E/N, the bounded q for "
                 "A; leaves in node order, each in the order of its c block "
                 "without the centre index), d = %d (format v2); unit 1; "
                 "role fixed (not fitted); flat index Z*%d + (c-1), Z in "
                 "species order (%s)",
                 m->grade_d, m->grade_d, sp));
  if (v) m->g_mu = v;
  dims[1] = m->grade_d * (m->grade_d + 1) / 2;
  v = add_block(
      tb, 'g', -1, "U", "1", COMPOT_ROLE_FIXED, &FINITE, 2, dims, kinds_st,
      dup_printf("extrapolation grade: whitening factor U[Z][r][c], c <= r, "
                 "lower triangular with C_Z^-1 = U^T U (C_Z the covariance "
                 "of f over the fitted data); grade gamma = |U (f - mu)|^2; "
                 "U = 0: grade off (format v2); unit 1; role fixed (not "
                 "fitted); flat index Z*%d + r(r-1)/2 + (c-1), r, c = "
                 "1..%d, Z in species order (%s)",
                 dims[1], m->grade_d, sp));
  if (v) m->g_U = v;
  v = add_block(
      tb, 'g', -1, "gamma_lo", "1", COMPOT_ROLE_FIXED, &GAMMA_LO, 1, dims,
      kinds_s,
      dup_printf("extrapolation grade: gamma_lo[Z] > 0 up to which the "
                 "fitted energy of an atom of species Z is fully on; "
                 "between gamma_lo and gamma_hi the switch is the f_c "
                 "polynomial of ln(gamma/gamma_lo)/ln(gamma_hi/gamma_lo) "
                 "(format v2); unit 1; role fixed (not fitted); flat index "
                 "Z in species order (%s)",
                 sp));
  if (v) m->g_lo = v;
  v = add_block(
      tb, 'g', -1, "gamma_hi", "1", COMPOT_ROLE_FIXED, &GAMMA_HI, 1, dims,
      kinds_s,
      dup_printf("extrapolation grade: gamma_hi[Z] > gamma_lo[Z] from which "
                 "the fitted energy of an atom of species Z is fully off "
                 "(E_ref instead; format v2); unit 1; role fixed (not "
                 "fitted); flat index Z in species order (%s)",
                 sp));
  if (v) m->g_hi = v;
  if (m->version >= 4) {
    v = add_block(
        tb, 'g', -1, "n_min", "1", COMPOT_ROLE_FIXED, &N_MIN, 1, dims,
        kinds_s,
        dup_printf("extrapolation grade: n_min[Z] >= 0, the lowest "
                   "coordination n = sum_j f_c(max(r_ij - r_c/2, 0); r_c/2) "
                   "of an atom of species Z over the fitted data; below it "
                   "the grade grows by gamma_hi (2 (1 - n/n_min))^3, so an "
                   "atom with half of it is fully switched off (0: off; "
                   "format v4); unit 1; role fixed (not fitted); flat index "
                   "Z in species order (%s)",
                   sp));
    if (v) m->g_nmin = v;
  }
}

/* The coefficient block nI.c of a fitted leaf: its indexing (returned
   number of indices, dims, kinds) and description; NULL (no block) for
   other nodes. */
static char *c_block_layout(compot_model const *m, int k, int npair,
                            char const *sp, int *n_index, int *dims,
                            int *kinds)
{
  compot_node const *n = &m->nodes[k];
  int S = compot_nch(m), K = n->K, L = n->L, P1 = n->P + 1, i = 0;
  if (leaf_features(m, n) == 0.0) return NULL;
  dims[i] = m->n_species;
  kinds[i++] = COMPOT_INDEX_SPECIES;
  if (n->kind == COMPOT_NODE_ANGULAR || n->kind == COMPOT_NODE_EXPANG) {
    dims[i] = npair;
    kinds[i++] = m->rank > 0 ? COMPOT_INDEX_CHANNEL_PAIR
                             : COMPOT_INDEX_SPECIES_PAIR;
  } else {
    dims[i] = S;
    kinds[i++] = m->rank > 0 ? COMPOT_INDEX_CHANNEL : COMPOT_INDEX_SPECIES;
  }
  if (n->kind != COMPOT_NODE_LINEAR && n->kind != COMPOT_NODE_ANGULAR) {
    dims[i] = L;
    kinds[i++] = COMPOT_INDEX_ONE_BASED;
  }
  dims[i] = K;
  kinds[i++] = COMPOT_INDEX_ONE_BASED;
  if (n->kind == COMPOT_NODE_ANGULAR || n->kind == COMPOT_NODE_EXPANG) {
    dims[i] = P1;
    kinds[i++] = COMPOT_INDEX_ZERO_BASED;
  }
  *n_index = i;
  switch (n->kind) {
  case COMPOT_NODE_LINEAR:
    return dup_printf(
        "node n%d %s: coefficients c[Z][s][k] of phi_k^(s)(i) "
        "(basis b%d) in the value of the node at a centre atom i "
        "of species Z; unit eV; role linear; flat index "
        "(Z*%d + s)*%d + (k-1), Z and s in species order (%s), "
        "k = 1..%d",
        k, n->spec, n->basis + 1, S, K, sp, K);
  case COMPOT_NODE_EXP:
  case COMPOT_NODE_NEXP:
    return dup_printf(
        "node n%d %s: coefficients c[Z][s][l][k] of "
        "x(gamma_l, %s) (basis b%d) in the value of the node at "
        "a centre atom of species Z; unit eV; role linear; flat "
        "index ((Z*%d + s)*%d + (l-1))*%d + (k-1), Z and s in "
        "species order (%s), l = 1..%d, k = 1..%d",
        k, n->spec,
        n->kind == COMPOT_NODE_NEXP ? "rho_k^(s)/rho_max[s][k]"
                                    : "phi_k^(s)/phi_max[s][k]",
        n->basis + 1, S, L, K, sp, L, K);
  case COMPOT_NODE_ANGULAR:
    return dup_printf(
        "node n%d %s: coefficients c[Z][s1,s2][k][p] of the "
        "angular cluster function q_kp^(s1 s2)(i) = sum over "
        "j of species s1, m != j of species s2 of "
        "g_k(r_ij) g_k(r_im) P_p(cos theta_jim) (both orders for "
        "s1 < s2; basis b%d) at a centre atom of species Z; unit "
        "eV; role linear; flat index ((Z*%d + q)*%d + (k-1))*%d "
        "+ p, q = index of the pair s1 <= s2 (s1 outer) over "
        "species (%s), k = 1..%d, p = 0..%d",
        k, n->spec, n->basis + 1, npair, K, P1, sp, K, n->P);
  case COMPOT_NODE_EXPANG:
    return dup_printf(
        "node n%d %s: coefficients c[Z][s1,s2][l][k][p] of "
        "x(gamma_l, q_kp^(s1 s2)(i)/q_max[s1,s2][k][p]), q the "
        "angular cluster function of A[..] (basis b%d), at a "
        "centre atom of species Z; unit eV; role linear; flat "
        "index (((Z*%d + q)*%d + (l-1))*%d + (k-1))*%d + p, q = "
        "index of the pair s1 <= s2 (s1 outer) over species "
        "(%s), l = 1..%d, k = 1..%d, p = 0..%d",
        k, n->spec, n->basis + 1, npair, L, K, P1, sp, L, K, n->P);
  default: return NULL;
  }
}

static int build_table(table_builder *tb)
{
  compot_model *m = tb->m;
  int S = m->n_species, b, k, C = compot_nch(m);
  int npair = S * (S + 1) / 2, ncp = C * (C + 1) / 2; /* species, channels */
  char sp[512], users[256], chs[512];
  int const kinds_sk[2] = {m->rank > 0 ? COMPOT_INDEX_CHANNEL
                                       : COMPOT_INDEX_SPECIES,
                           COMPOT_INDEX_ONE_BASED};
  int const kinds_sc[2] = {COMPOT_INDEX_SPECIES, COMPOT_INDEX_CHANNEL};
  int const kinds_s[1] = {COMPOT_INDEX_SPECIES};
  int const kinds_q[1] = {COMPOT_INDEX_SPECIES_PAIR};
  int const dims_s[1] = {S}, dims_q[1] = {npair};
  double *v;

  species_list(m, sp, sizeof sp);
  snprintf(chs, sizeof chs, "%s", sp);
  if (m->rank > 0) { /* the species embedding: rank first, channels e1..er */
    size_t used = 0;
    for (k = 0; k < C && used + 8 < sizeof chs; ++k)
      used += (size_t) snprintf(chs + used, sizeof chs - used, "%se%d",
                                k ? " " : "", k + 1);
    v = add_block(
        tb, 'c', -1, "rank", "1", COMPOT_ROLE_FIXED, &RANK, 0, NULL, NULL,
        dup_printf("rank r = %d of the species embedding: every basis has r "
                   "neighbour channels, phi_k^(c)(i) = sum over neighbours "
                   "j of W[Z_j][c] g_k(r_ij) (and so rho and the angular "
                   "moments); unit 1; role fixed (set when the model is "
                   "read); scalar",
                   m->rank));
    if (v) m->chem_rank = v;
  }
  if (m->version >= 2) { /* block w (format v2): always first */
    v = add_block(
        tb, 'w', -1, "tau", "1", COMPOT_ROLE_FIXED, &TAU, 0, NULL, NULL,
        dup_printf("saturation width tau > 0 of every bounded feature: "
                   "beyond |u| = 1 the features x(gamma, u) of the E and N "
                   "leaves and x(0, q/q_max) of the A leaves continue as "
                   "x(gamma, u_b) + x' T + x'' T^2/2, T = tau "
                   "tanh((u - u_b)/tau) (format v2); unit 1; role fixed "
                   "(not fitted); scalar"));
    if (v) m->w_tau = v;
    v = add_block(
        tb, 'w', -1, "r_a", "Angstrom", COMPOT_ROLE_FIXED, &R_A, 1, dims_q,
        kinds_q,
        dup_printf("inner window start r_a per species pair: every fitted "
                   "term sees a pair through f_c(r) s_in(r), s_in = 0 for "
                   "r <= r_a, 1 for r >= r_b, a C3 step in between; 0 <= "
                   "r_a <= r_b (format v2); unit Angstrom; role fixed (not "
                   "fitted); flat index q = index of the pair s1 <= s2 (s1 "
                   "outer) over species (%s)",
                   sp));
    if (v) m->w_r_a = v;
    v = add_block(
        tb, 'w', -1, "r_b", "Angstrom", COMPOT_ROLE_FIXED, &FINITE, 1, dims_q,
        kinds_q,
        dup_printf("inner window end r_b per species pair: fitted terms see "
                   "the pair fully for r >= r_b; r_a <= r_b < r_c, and r_b "
                   "<= r_in of a ZBL term (format v2); unit Angstrom; role "
                   "fixed (not fitted); flat index q = index of the pair "
                   "s1 <= s2 (s1 outer) over species (%s)",
                   sp));
    if (v) m->w_r_b = v;
    v = add_block(
        tb, 'w', -1, "e_ref", "eV", COMPOT_ROLE_FIXED, &FINITE, 1, dims_s,
        kinds_s,
        dup_printf("reference site energy E_ref[Z] of an atom of species Z "
                   "whose fitted energy is switched off: E_i = S_i V_fit(i) "
                   "+ (1 - S_i) E_ref + E_ZBL(i), S_i the product of the "
                   "inner windows s_in of the atom's pairs closer than r_b "
                   "and of the grade switch (format v2); unit eV; role fixed "
                   "(not fitted); flat index Z in species order (%s)",
                   sp));
    if (v) m->w_e_ref = v;
    if (m->version >= 3) {
      v = add_block(
          tb, 'w', -1, "e_min", "eV", COMPOT_ROLE_FIXED, &FINITE, 1, dims_s,
          kinds_s,
          dup_printf("lowest fitted site energy e_min[Z] over the fitting "
                     "atoms of species Z: below it the fitted energy "
                     "continues as e_min - w tanh((e_min - V_fit)/w), w = "
                     "tau (E_ref - e_min), and is used in place of V_fit "
                     "(off where e_min >= E_ref; format v3); unit eV; role "
                     "fixed (not fitted); flat index Z in species order (%s)",
                     sp));
      if (v) m->w_e_min = v;
    }
  }
  for (b = 0; b < m->n_bases; ++b) {
    compot_basis *B = &m->bases[b];
    int const dims[2] = {C, B->K}, dims_w[2] = {S, C};
    char bspec[24];
    snprintf(bspec, sizeof bspec, "%c%d",
             B->kind == COMPOT_BASIS_GAUSSIAN ? 'G' : 'C', B->K);
    basis_users(m, b, users, sizeof users);
    if (B->kind == COMPOT_BASIS_GAUSSIAN) {
      v = add_block(
          tb, 'b', b + 1, "alpha", "1/Angstrom^2", COMPOT_ROLE_NONLINEAR,
          &ALPHA, 0, NULL, NULL,
          dup_printf("basis b%d (%s even-tempered Gaussian, used by %s): "
                     "alpha of the exponents a_k = alpha*beta^(k-1) in "
                     "g_k(r) = exp(-a_k r^2) f_c(r); unit 1/Angstrom^2; "
                     "role nonlinear; scalar",
                     b + 1, bspec, users));
      if (v) B->alpha = v;
      v = add_block(
          tb, 'b', b + 1, "beta", "1", COMPOT_ROLE_NONLINEAR, &BETA, 0, NULL,
          NULL,
          dup_printf("basis b%d (%s even-tempered Gaussian, used by %s): "
                     "ratio beta of the exponents a_k = alpha*beta^(k-1); "
                     "unit 1 (dimensionless); role nonlinear; scalar",
                     b + 1, bspec, users));
      if (v) B->beta = v;
    }
    if (m->rank > 0) {
      v = add_block(
          tb, 'b', b + 1, "w", "1", COMPOT_ROLE_NONLINEAR, &WEIGHT, 2, dims_w,
          kinds_sc,
          dup_printf("basis b%d (%s, used by %s): species embedding "
                     "W[s][c], the weight of a neighbour of species s in "
                     "channel c: phi_k^(c)(i) = sum over neighbours j of "
                     "W[Z_j][c] g_k(r_ij); unit 1; role nonlinear; flat "
                     "index s*%d + (c-1), s in species order (%s), c = "
                     "1..%d",
                     b + 1, bspec, users, C, sp, C));
      if (v) B->w = v;
    }
    v = add_block(
        tb, 'b', b + 1, "phi_max", "1", COMPOT_ROLE_FIXED, &PHI_MAX, 2, dims,
        kinds_sk,
        dup_printf("basis b%d (%s, used by %s): scale phi_max[s][k] of the "
                   "cluster function phi_k^(s)(i) = sum over neighbours j of "
                   "species s of g_k(r_ij) (largest |phi| over the fitting "
                   "data); unit 1; role fixed (not fitted); flat index "
                   "s*%d + (k-1), s = neighbour species in order (%s), "
                   "k = 1..%d",
                   b + 1, bspec, users, B->K, chs, B->K));
    if (v) B->phi_max = v;
    v = add_block(
        tb, 'b', b + 1, "rho_max", "1", COMPOT_ROLE_FIXED, &RHO_MAX, 2, dims,
        kinds_sk,
        dup_printf("basis b%d (%s, used by %s): scale rho_max[s][k] of the "
                   "neighbour aggregate rho_k^(s)(i) = sum over neighbours j "
                   "of f_c(r_ij) phi_k^(s)(j) (largest |rho| over the fitting "
                   "data); unit 1; role fixed (not fitted); flat index "
                   "s*%d + (k-1), s in order (%s), k = 1..%d",
                   b + 1, bspec, users, B->K, chs, B->K));
    if (v) B->rho_max = v;
  }

  for (k = 0; k < m->n_nodes; ++k) {
    compot_node *n = &m->nodes[k];
    int n_index, dims[COMPOT_MAX_INDEX], kinds[COMPOT_MAX_INDEX];
    char *description;
    if (n->kind == COMPOT_NODE_EXP || n->kind == COMPOT_NODE_NEXP
        || n->kind == COMPOT_NODE_EXPANG) {
      int const kinds_l[1] = {COMPOT_INDEX_ONE_BASED};
      v = add_block(
          tb, 'n', k, "gamma", "1", COMPOT_ROLE_NONLINEAR, &GAMMA, 1, &n->L,
          kinds_l,
          dup_printf("node n%d %s: exponents gamma_l of the bounded "
                     "exponentiated feature x(gamma_l, u) = "
                     "(exp(gamma_l u) - 1)/gamma_l for |u| <= 1 (%s "
                     "outside); unit 1; role nonlinear; flat index "
                     "l-1, l = 1..%d",
                     k, n->spec,
                     m->version >= 2 ? "saturating with width w.tau"
                                     : "2nd-order Taylor",
                     n->L));
      if (v) n->gamma = v;
    }
    /* q_max: in both formats for E[A] (it normalises the input of
       x(gamma, .)), from format v2 on for A */
    if (n->kind == COMPOT_NODE_ANGULAR && m->version >= 2) {
      v = add_q_max_block(tb, n, k, ncp, chs,
                          "the leaf uses q_max x(0, q/q_max), q itself "
                          "while |q| <= q_max and saturating beyond "
                          "(format v2)");
      if (v) n->q_max = v;
    } else if (n->kind == COMPOT_NODE_EXPANG) {
      v = add_q_max_block(tb, n, k, ncp, chs,
                          "the leaf uses x(gamma_l, q/q_max)");
      if (v) n->q_max = v;
    }
    description = c_block_layout(m, k, ncp, chs, &n_index, dims, kinds);
    if (description != NULL) {
      v = add_block(tb, 'n', k, "c", "eV", COMPOT_ROLE_LINEAR, &FINITE,
                    n_index, dims, kinds, description);
      if (v) n->c = v;
    }
    if (node_has_shift(m, k)) {
      v = add_block(
          tb, 'n', k, "shift", "eV", COMPOT_ROLE_LINEAR, &FINITE, 1, dims_s,
          kinds_s,
          dup_printf("node n%d %s: shift s[Z] added to the value of the "
                     "node at a centre atom of species Z%s; unit eV%s; role "
                     "linear; flat index Z in species order (%s)",
                     k, n->spec, k == 0 ? " (the site energy)" : "",
                     m->nodes[k].parent >= 0 ? " (nominal inside a product)"
                                             : "",
                     sp));
      if (v) n->shift = v;
    }
  }
  if (m->version >= 2) add_grade_blocks(tb, sp);
  return COMPOT_OK;
}

/* Size of the coefficient table of node n, made at refresh by its term
   (compot_term_exp.c, compot_term_angular.c); 0 for other nodes. */
static size_t node_table_size(compot_model const *m, compot_node const *n)
{
  if (n->kind == COMPOT_NODE_EXP || n->kind == COMPOT_NODE_NEXP)
    return compot_exp_table_size(m, n);
  if (n->kind == COMPOT_NODE_ANGULAR) return compot_angular_table_size(m, n);
  if (n->kind == COMPOT_NODE_EXPANG) return compot_expang_table_size(m, n);
  return 0;
}

/* Undo compot_build_params (the reader rebuilds the table when the file
   declares a species embedding, chemistry.rank). */
void compot_free_params(compot_model *m)
{
  int i, b;
  for (i = 0; i < m->n_params; ++i) free((char *) m->params[i].description);
  free(m->params);
  free(m->values);
  free(m->derived);
  free(m->grade_on);
  m->params = NULL;
  m->values = m->derived = NULL;
  m->grade_on = NULL;
  m->n_params = m->n_values = 0;
  m->chem_rank = NULL;
  for (b = 0; b < m->n_bases; ++b) m->bases[b].w = NULL;
}

static int is_angular(compot_node const *n)
{
  return n->kind == COMPOT_NODE_ANGULAR || n->kind == COMPOT_NODE_EXPANG;
}

/* ang_owner and ang_shared of every node (compot_internal.h): the A and
   E[A] leaves on one basis with one P see the same pairs and have the same
   moments, which the highest-numbered of them makes for all. */
static void angular_groups(compot_model *m)
{
  int k, j;
  for (k = 0; k < m->n_nodes; ++k) {
    compot_node *n = &m->nodes[k];
    n->ang_owner = -1;
    n->ang_shared = 0;
    if (!is_angular(n)) continue;
    n->ang_owner = k;
    for (j = 0; j < m->n_nodes; ++j) {
      compot_node const *o = &m->nodes[j];
      if (j == k || !is_angular(o) || o->basis != n->basis || o->P != n->P)
        continue;
      n->ang_shared = 1;
      if (j > n->ang_owner) n->ang_owner = j;
    }
  }
}

/* The table, the values (zero) and the derived arrays of a model whose
   tree is parsed and whose species are set. */
int compot_build_params(compot_model *m, char *msg, size_t msg_size)
{
  table_builder tb;
  int S = m->n_species, b, k, i;
  size_t n_derived = 0;
  double *d;

  memset(&tb, 0, sizeof tb);
  tb.m = m;
  tb.count_only = 1;
  build_table(&tb);
  if (tb.n_values_total > COMPOT_MAX_VALUES) {
    compot_set_msg(msg, msg_size,
                   "expression: %s with %d species has %.0f parameter "
                   "values; expected at most %d",
                   m->expression, S, tb.n_values_total, COMPOT_MAX_VALUES);
    return COMPOT_ERR_FORMAT;
  }
  tb.n_values = (int) tb.n_values_total;
  m->params = (compot_param *) calloc((size_t) tb.n_params + 1,
                                      sizeof(compot_param));
  m->values = (double *) calloc((size_t) tb.n_values + 1, sizeof(double));
  m->nvp = ((m->max_P + 1) * (m->max_P + 1) + 3) & ~3;
  angular_groups(m);
  for (b = 0; b < m->n_bases; ++b) n_derived += (size_t) m->bases[b].K;
  n_derived += 2 * (size_t) S * S;
  n_derived += 3 * (size_t) compot_n_lm(m->max_P);
  for (k = 0; k < m->n_nodes; ++k) {
    if (m->nodes[k].kind == COMPOT_NODE_ZBL) n_derived += 10 * (size_t) S * S;
    n_derived += node_table_size(m, &m->nodes[k]) + 8; /* (aligned) */
  }
  if (m->version >= 2) { /* g_rows: the padded rows of U (see refresh) */
    size_t dd = 0, r;
    for (k = 0; k < m->n_nodes; ++k)
      dd += (size_t) leaf_features(m, &m->nodes[k]);
    m->grade_dp = (int) ((dd + 7) & ~(size_t) 7);
    r = (size_t) m->grade_dp / 8; /* blocks of 8 rows */
    m->grade_rows = 32 * r * (r + 1);
    n_derived += (size_t) S * m->grade_rows + 8;
    m->grade_sk = (int) ((dd + 3) / 4);
    n_derived += (size_t) S * m->grade_sk * (m->grade_dp + 1) + S + 8;
    m->grade_on = (int *) calloc((size_t) S, sizeof(int));
    if (m->grade_on == NULL) {
      compot_set_msg(msg, msg_size, "out of memory building parameter table");
      return COMPOT_ERR_MEMORY;
    }
  }
  m->derived = (double *) calloc(n_derived + 8, sizeof(double));
  if (m->params == NULL || m->values == NULL || m->derived == NULL) {
    compot_set_msg(msg, msg_size, "out of memory building parameter table");
    return COMPOT_ERR_MEMORY;
  }
  m->n_params = tb.n_params;
  m->n_values = tb.n_values;
  tb.count_only = 0;
  tb.n_params = 0;
  tb.n_values = 0;
  build_table(&tb);
  for (i = 0; i < m->n_params; ++i) {
    if (m->params[i].description == NULL) {
      compot_set_msg(msg, msg_size, "out of memory building parameter table");
      return COMPOT_ERR_MEMORY;
    }
  }
  d = m->derived;
  for (b = 0; b < m->n_bases; ++b) {
    m->bases[b].a = d;
    d += m->bases[b].K;
  }
  m->win = d;
  d += 2 * S * S;
  m->ylm_coef = d;
  d += 3 * (size_t) compot_n_lm(m->max_P);
  if (m->version >= 2) {
    m->g_rows = compot_align64(d);
    d = m->g_rows + (size_t) S * m->grade_rows;
    m->g_sv = compot_align64(d);
    d = m->g_sv + (size_t) S * m->grade_sk * m->grade_dp;
    m->g_sw = d;
    d += (size_t) S * m->grade_sk;
    m->g_samax = d;
    d += S;
  }
  /* the features of the grade: fitted leaves in node order */
  m->n_zbl_root = 0;
  for (k = 0, i = 0; k < m->n_nodes; ++k) {
    compot_node *n = &m->nodes[k];
    n->foff = -1;
    if (m->version >= 2 && leaf_features(m, n) > 0) {
      n->foff = i;
      i += (int) leaf_features(m, n);
    }
    if (n->kind == COMPOT_NODE_ZBL && n->parent == 0
        && m->nodes[0].kind == COMPOT_NODE_SUM)
      m->zbl_root[m->n_zbl_root++] = k;
  }
  for (k = 0; k < m->n_nodes; ++k) {
    compot_node *n = &m->nodes[k];
    size_t nt = node_table_size(m, n);
    if (nt > 0) {
      /* 64-byte aligned: rows of 4-lane loads stay aligned */
      n->tab = compot_align64(d);
      d = n->tab + nt;
    }
    if (n->kind != COMPOT_NODE_ZBL) continue;
    n->zbl.d = d;
    d += 4 * S * S;
    n->zbl.zze = d;
    d += S * S;
    n->zbl.sw = d;
    d += 5 * S * S;
  }
  return COMPOT_OK;
}

