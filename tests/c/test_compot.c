/*
 * test_compot.c -- unit tests of the compot C core (kim_driver/).
 *
 *   parser: hand-written files (names and order of docs/parameter-file.md),
 *           write -> read -> write byte-identical round trips, parameter
 *           counts of MODEL_SPEC section 4, every class of bad file;
 *   compute: for every term type and nested sums and products, on random
 *           clusters (random contributing flags, forces on non-contributing
 *           particles included) and on a periodic cell replicated into
 *           ghosts: per-particle energies against an independent direct
 *           evaluation (the A term by a direct double loop over neighbour
 *           pairs, 1e-12), forces against central finite differences of the
 *           energy, the virial against the finite-difference strain
 *           derivative (1e-6 relative), sums of per-particle energies and
 *           virials.
 *
 * Usage: test_compot <data dir> <scratch dir> [corpus file ...]
 *
 * The compute tests run every expression of the registry shared by all
 * hosts, tests/reference/expressions.txt (read as <data dir>/../../
 * reference/expressions.txt: the data dir is tests/c/data), in format v1
 * and v2 and on one and two species; a row with a fourth field (ranks) also
 * on its own species (third field) with a species embedding of each rank.
 *
 * Corpus files (the .params files of tests/data/bad_params, shared with the
 * Python test tests/test_bad_files.py) are read under the sanitizers: each
 * states on its first line "# expect ok" or "# expect line N: TEXT"
 * (rejected, the message naming line N and containing TEXT).
 */
#include "compot_core.h"
#include "compot_internal.h" /* white box: the reference evaluator walks the tree */
#include "compot_eval.h"     /* white box: the grade bound (compot_grade_screen) */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int n_checks = 0, n_failures = 0;
static char const *data_dir = "data";
static char const *tmp_dir = ".";

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    ++n_checks;                                                              \
    if (!(cond)) {                                                           \
      ++n_failures;                                                          \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                   \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
    }                                                                        \
  } while (0)

/* ---- small utilities ---------------------------------------------------- */

static unsigned long long rng_state = 88172645463325252ULL;
static double urand(double a, double b)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return a + (b - a) * (double) (rng_state >> 11) / 9007199254740992.0;
}

static char *read_text(char const *path)
{
  FILE *fp = fopen(path, "rb");
  long n;
  char *t;
  if (fp == NULL) return NULL;
  fseek(fp, 0, SEEK_END);
  n = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  t = (char *) malloc((size_t) n + 1);
  if (t == NULL || fread(t, 1, (size_t) n, fp) != (size_t) n) {
    free(t);
    fclose(fp);
    return NULL;
  }
  t[n] = '\0';
  fclose(fp);
  return t;
}

static void write_text(char const *path, char const *text)
{
  FILE *fp = fopen(path, "wb");
  if (fp == NULL) {
    fprintf(stderr, "cannot write %s\n", path);
    exit(2);
  }
  fputs(text, fp);
  fclose(fp);
}

static void path_join(char *buf, size_t n, char const *dir, char const *f)
{
  snprintf(buf, n, "%s/%s", dir, f);
}

/* The rows of a table file: one row a line, fields separated by '|' and
   trimmed, '#' lines and blank lines skipped; a row with fewer fields than
   n_min or more than n_max is an error, missing optional fields are empty.
   Returns the number of rows (at most MAX_ROWS). */
#define MAX_ROWS 64
typedef char table_row[8][160];

static void trim_into(char *dst, size_t n, char const *from, char const *to)
{
  while (from < to && (*from == ' ' || *from == '\t')) ++from;
  while (to > from && (to[-1] == ' ' || to[-1] == '\t' || to[-1] == '\r'))
    --to;
  snprintf(dst, n, "%.*s", (int) (to - from), from);
}

static int read_table(char const *path, int n_min, int n_max,
                      table_row *rows)
{
  char *text = read_text(path), *line;
  int n = 0;
  CHECK(text != NULL, "cannot read %s", path);
  if (text == NULL) return 0;
  for (line = text; *line;) {
    char *end = line + strcspn(line, "\n"), *from = line;
    int f = 0;
    while (line[0] != '#' && from < end && f < 8 && n < MAX_ROWS) {
      char *bar = memchr(from, '|', (size_t) (end - from));
      if (bar == NULL) bar = end;
      trim_into(rows[n][f++], sizeof rows[0][0], from, bar);
      from = bar < end ? bar + 1 : end;
    }
    if (f > 1 || (f == 1 && rows[n][0][0] != '\0')) {
      CHECK(f >= n_min && f <= n_max,
            "%s: a row of %d fields; expected %d to %d", path, f, n_min,
            n_max);
      if (f >= n_min && f <= n_max) {
        while (f < n_max) rows[n][f++][0] = '\0';
        ++n;
      }
    }
    line = *end ? end + 1 : end;
  }
  free(text);
  return n;
}

/* The expression registry shared by every host (tests/reference/
   expressions.txt, read as tests/helpers.py reads it): "v1 form | v2 form |
   species [| ranks]".  registry[e][v - 1] is expression e in format v; both
   species sets (Nb; Mo Nb) are run in the full chemistry, so the third field
   is used only by the optional fourth, the ranks of a species embedding at
   which the expression is also run on those species (registry_case). */
static table_row registry[MAX_ROWS];
static int n_registry = 0;

static void read_registry(void)
{
  char path[512];
  path_join(path, sizeof path, data_dir, "../../reference/expressions.txt");
  n_registry = read_table(path, 3, 4, registry);
  CHECK(n_registry >= 10, "%s: %d expressions", path, n_registry);
}

/* The which-th (0, 1, ...) species-embedding case of registry row e: its
   rank (the which-th number of the fourth field) and the row's species
   (third field, split into buf; sp[0..*S-1] point into it); 0 when the row
   has no such case. */
static int registry_rank(int e, int which, char buf[160], char const *sp[8],
                         int *S)
{
  char const *from = registry[e][3];
  char *end, *tok;
  long rank = 0;
  for (; which >= 0; --which) {
    rank = strtol(from, &end, 10);
    if (end == from) return 0;
    from = end;
  }
  CHECK(rank >= 1 && rank <= 8, "expressions.txt: rank %ld of %s", rank,
        registry[e][0]);
  snprintf(buf, 160, "%s", registry[e][2]);
  *S = 0;
  for (tok = strtok(buf, " \t"); tok && *S < 8; tok = strtok(NULL, " \t"))
    sp[(*S)++] = tok;
  return rank >= 1 && rank <= *S ? (int) rank : 0;
}

typedef void registry_case_fn(int version, char const *expr,
                              char const *const *sp, int S, int rank);

/* Case (S, rank) of registry row e through fn.  A row with a species
   embedding (a fourth field) draws from a random stream of its own, seeded
   by the row and the case, and the shared stream goes on where it was: the
   other rows' models and configurations stay those drawn before the row
   was added.  (With them shifted, three v2 periodic two-species cases,
   G2 + ZBL(2.9, 3.4), E[A[G3P2]L2] and G2@3.3 * E[A[G2P1]L1]@3.8 + ...,
   failed the plain central-difference force check, 1.2e-5, 4.4e-6 and
   1.1e-6 relative against 1e-6: truncation error of the differences, not
   of the forces.  With the Richardson-extrapolated check of
   check_model_on they give 1.0e-10, 3.4e-10 and 1.5e-9 on those draws.) */
static void run_registry_case(registry_case_fn *fn, int version, int e,
                              char const *const *sp, int S, int rank)
{
  unsigned long long saved = rng_state;
  if (registry[e][3][0] == '\0') {
    fn(version, registry[e][version - 1], sp, S, rank);
    return;
  }
  rng_state = 0x9E3779B97F4A7C15ULL
              * (unsigned long long) (1 + e + 64 * (S + 16 * (rank + 16
                                                               * version)));
  fn(version, registry[e][version - 1], sp, S, rank);
  rng_state = saved;
}

/* Randomise every parameter with sensible values. */
static void randomize(compot_model *m)
{
  int i, e;
  for (i = 0; i < compot_n_params(m); ++i) {
    compot_param const *p = compot_param_at(m, i);
    size_t n = strlen(p->name);
    if (strncmp(p->name, "g_", 2) == 0) continue; /* grade off (fit_grade) */
    if (p->values == m->chem_rank) continue;      /* the embedding's rank */
    for (e = 0; e < p->extent; ++e) {
      double v;
      if (strcmp(p->name, "w_e_ref") == 0)
        v = urand(-8.0, -2.0);
      else if (n >= 2 && strcmp(p->name + n - 2, "_w") == 0)
        v = urand(-1.0, 1.0); /* species embedding W (bJ.w) */
      else if (strstr(p->name, "_alpha"))
        v = urand(0.1, 0.5);
      else if (strstr(p->name, "_beta"))
        v = urand(1.2, 2.0);
      else if (strstr(p->name, "_phi_max"))
        v = urand(0.5, 6.0); /* small scales: |u| > 1 occurs */
      else if (strstr(p->name, "_rho_max"))
        v = urand(5.0, 60.0);
      else if (strstr(p->name, "_gamma"))
        v = urand(-1.0, 1.0);
      else if (n >= 6 && strcmp(p->name + n - 6, "_shift") == 0)
        v = urand(-1.0, 1.0);
      else
        v = urand(-0.5, 0.5);
      p->values[e] = v;
    }
  }
}

/* q_max of A (v2) and E[A] leaves log-uniform in [0.01, 10], so that
   invariants saturate. */
static void randomize_q_max(compot_model *m)
{
  int i, e;
  for (i = 0; i < compot_n_params(m); ++i) {
    compot_param const *p = compot_param_at(m, i);
    if (strstr(p->name, "_q_max"))
      for (e = 0; e < p->extent; ++e) p->values[e] = pow(10.0, urand(-2.0, 1.0));
  }
}

/* Give the blank model m a species embedding of rank r (white box, as the
   reader does for 'chemistry.rank', compot_io.c): the table rebuilt with r
   channels per basis, every value its initial one, then refresh. */
static int embed(compot_model *m, int rank, char *msg, size_t msg_size)
{
  int i, e, err;
  compot_free_params(m);
  m->rank = rank;
  err = compot_build_params(m, msg, msg_size);
  if (err) return err;
  for (i = 0; i < m->n_params; ++i)
    for (e = 0; e < m->params[i].extent; ++e)
      m->params[i].values[e] = m->params[i].initial;
  *m->chem_rank = rank;
  return compot_refresh(m, msg, msg_size);
}

/* A random format v1 model (randomize; the q_max of E[A] leaves, stored in
   v1 too, as randomize_q_max, so that their features saturate); with rank
   r > 0 a species embedding of that rank (weights W in [-1, 1]). */
static compot_model *random_model_rank(char const *expr,
                                       char const *const *sp, int S, int rank)
{
  compot_model *m = NULL;
  char msg[512];
  int err = compot_create_blank(&m, expr, sp, S, 5.0, msg, sizeof msg), s;
  CHECK(err == 0, "create_blank(%s): %s", expr, msg);
  if (err) return NULL;
  if (rank > 0) {
    err = embed(m, rank, msg, sizeof msg);
    CHECK(err == 0, "embed(%s, rank %d): %s", expr, rank, msg);
    if (err) {
      compot_destroy(m);
      return NULL;
    }
  }
  CHECK(compot_format_version(m) == 1, "create_blank(%s): format %d", expr,
        compot_format_version(m));
  for (s = 0; s < S; ++s)
    CHECK(compot_atomic_number(m, s) == compot_symbol_to_z(sp[s]),
          "create_blank(%s): Z of %s is %d", expr, sp[s],
          compot_atomic_number(m, s));
  randomize(m);
  randomize_q_max(m);
  err = compot_refresh(m, msg, sizeof msg);
  CHECK(err == 0, "refresh(%s): %s", expr, msg);
  if (err) {
    compot_destroy(m);
    return NULL;
  }
  return m;
}

static compot_model *random_model(char const *expr, char const *const *sp,
                                  int S)
{
  return random_model_rank(expr, sp, S, 0);
}

/*
 * A random format v2 model: random parameters as random_model, tau in
 * [0.2, 1], per species pair r_b in [rb_lo, rb_hi] (at most the smallest
 * ZBL r_in) and r_a = r_b - [0.3, 0.9] (>= 0), so that pairs of the test
 * configurations (shortest 1.9 A) fall inside the window, and q_max
 * log-uniform in [0.01, 10] with phi_max in [0.5, 6] (randomize), so that
 * features saturate; with rank r > 0 a species embedding (random_model_rank).
 */
static compot_model *random_model_v2_rank(char const *expr,
                                          char const *const *sp, int S,
                                          double rb_lo, double rb_hi, int rank)
{
  compot_model *m = NULL;
  char msg[512];
  int err = compot_create_blank_version(&m, expr, sp, S, 5.0, 2, msg,
                                        sizeof msg);
  int i, q;
  double rin = 1e300;
  CHECK(err == 0, "create_blank_version(%s, 2): %s", expr, msg);
  if (err) return NULL;
  if (rank > 0) {
    err = embed(m, rank, msg, sizeof msg);
    CHECK(err == 0, "embed(%s, rank %d, v2): %s", expr, rank, msg);
    if (err) {
      compot_destroy(m);
      return NULL;
    }
  }
  CHECK(compot_format_version(m) == 2, "create_blank_version(%s, 2): format %d",
        expr, compot_format_version(m));
  randomize(m);
  for (i = 0; i < m->n_nodes; ++i)
    if (m->nodes[i].kind == COMPOT_NODE_ZBL && m->nodes[i].r_in < rin)
      rin = m->nodes[i].r_in;
  *m->w_tau = urand(0.2, 1.0);
  for (q = 0; q < S * (S + 1) / 2; ++q) {
    double rb = urand(rb_lo, rb_hi);
    if (rb > rin) rb = rin;
    m->w_r_b[q] = rb;
    m->w_r_a[q] = rb - urand(0.3, 0.9);
    if (m->w_r_a[q] < 0.0) m->w_r_a[q] = 0.0;
  }
  randomize_q_max(m);
  err = compot_refresh(m, msg, sizeof msg);
  CHECK(err == 0, "refresh(%s, v2): %s", expr, msg);
  if (err) {
    compot_destroy(m);
    return NULL;
  }
  return m;
}

static compot_model *random_model_v2(char const *expr,
                                     char const *const *sp, int S,
                                     double rb_lo, double rb_hi)
{
  return random_model_v2_rank(expr, sp, S, rb_lo, rb_hi, 0);
}

/* How often the reference evaluation saw a pair inside an inner window, a
   saturated feature, an atom with a pair closer than r_b, in the grade's
   transition and switched off by the grade (format v2): the v2 tests must
   exercise all of them. */
static long n_ref_windowed = 0, n_ref_saturated = 0, n_ref_saturated_q = 0;
static long n_ref_close = 0, n_ref_transition = 0, n_ref_off = 0;
/* Whether the last ref_site atom was in the grade's transition: its energy
   carries the rounding of gamma amplified (the features' rounding, ~1e-16
   of the terms summed into them, times U, which whitens directions in which
   the fitted atoms barely differ, times dS/dgamma), which depends on the
   order of every sum: the core and the reference agree to ~1e-11 there. */
static int ref_in_transition = 0;

/* ---- configurations ----------------------------------------------------- */

typedef struct config {
  int n;         /* particles (contributing + others) */
  int n_owner;   /* periodic: number of cell atoms; else n */
  double *x;     /* [3n] */
  int *species;  /* [n] */
  int *contrib;  /* [n] */
  int *owner;    /* [n] periodic image of which cell atom, or itself */
  int *nn;       /* [n] */
  int *start;    /* [n] */
  int *idx;      /* neighbour indices */
  double list_cutoff;
} config;

static void config_free(config *c)
{
  free(c->x);
  free(c->species);
  free(c->contrib);
  free(c->owner);
  free(c->nn);
  free(c->start);
  free(c->idx);
}

/* Brute-force full neighbour lists of every particle with r < list_cutoff. */
static void build_lists(config *c)
{
  int i, j, cap = 1024, used = 0;
  double rc2 = c->list_cutoff * c->list_cutoff;
  free(c->nn);
  free(c->start);
  free(c->idx);
  c->nn = (int *) calloc((size_t) c->n, sizeof(int));
  c->start = (int *) calloc((size_t) c->n, sizeof(int));
  c->idx = (int *) malloc((size_t) cap * sizeof(int));
  for (i = 0; i < c->n; ++i) {
    c->start[i] = used;
    for (j = 0; j < c->n; ++j) {
      double d2 = 0.0;
      int a;
      if (j == i) continue;
      for (a = 0; a < 3; ++a) {
        double d = c->x[3 * j + a] - c->x[3 * i + a];
        d2 += d * d;
      }
      if (d2 >= rc2) continue;
      if (used == cap) {
        cap *= 2;
        c->idx = (int *) realloc(c->idx, (size_t) cap * sizeof(int));
      }
      c->idx[used++] = j;
      c->nn[i]++;
    }
  }
}

static int get_neighbors(void *ctx, int i, int *n, int const **list)
{
  config const *c = (config const *) ctx;
  *n = c->nn[i];
  *list = c->idx + c->start[i];
  return 0;
}

/* Random cluster: n atoms, min distance dmin, random species and flags. */
static void make_cluster(config *c, int n, int S, double frac_contrib)
{
  double L = cbrt(n / 0.05);
  int i, tries = 0;
  memset(c, 0, sizeof *c);
  c->n = c->n_owner = n;
  c->x = (double *) malloc(3 * (size_t) n * sizeof(double));
  c->species = (int *) malloc((size_t) n * sizeof(int));
  c->contrib = (int *) malloc((size_t) n * sizeof(int));
  c->owner = (int *) malloc((size_t) n * sizeof(int));
  for (i = 0; i < n; ++i) {
    int j, ok;
    do {
      ok = 1;
      c->x[3 * i] = urand(0, L);
      c->x[3 * i + 1] = urand(0, L);
      c->x[3 * i + 2] = urand(0, L);
      for (j = 0; j < i && ok; ++j) {
        double dx = c->x[3 * i] - c->x[3 * j], dy = c->x[3 * i + 1] - c->x[3 * j + 1],
               dz = c->x[3 * i + 2] - c->x[3 * j + 2];
        if (dx * dx + dy * dy + dz * dz < 1.9 * 1.9) ok = 0;
      }
    } while (!ok && ++tries < 100000);
    c->species[i] = (int) urand(0, S - 1e-9);
    c->contrib[i] = urand(0, 1) < frac_contrib;
    c->owner[i] = i;
  }
  c->contrib[0] = 1;
  c->list_cutoff = 5.7; /* longer than r_c = 5: the core must skip */
  build_lists(c);
}

/* Periodic bcc cell (2x2x2 conventional cells, a = 3.3 A, jittered),
   replicated into non-contributing images up to 2 r_c + 1 A. */
static void make_periodic(config *c, int S)
{
  double a = 3.3, Lc = 2 * a, reach = 11.0;
  int nc = 16, nimg = (int) ceil(reach / Lc), i, ix, iy, iz, k = 0;
  double base[16 * 3];
  int sp[16];
  memset(c, 0, sizeof *c);
  for (ix = 0; ix < 2; ++ix)
    for (iy = 0; iy < 2; ++iy)
      for (iz = 0; iz < 2; ++iz) {
        int b;
        for (b = 0; b < 2; ++b) {
          base[3 * k] = a * (ix + 0.5 * b) + urand(-0.15, 0.15);
          base[3 * k + 1] = a * (iy + 0.5 * b) + urand(-0.15, 0.15);
          base[3 * k + 2] = a * (iz + 0.5 * b) + urand(-0.15, 0.15);
          sp[k] = (int) urand(0, S - 1e-9);
          ++k;
        }
      }
  c->n_owner = nc;
  c->n = 0;
  c->x = (double *) malloc(3 * (size_t) nc * (2 * nimg + 1) * (2 * nimg + 1)
                           * (2 * nimg + 1) * sizeof(double));
  c->species = (int *) malloc((size_t) nc * (2 * nimg + 1) * (2 * nimg + 1)
                              * (2 * nimg + 1) * sizeof(int));
  c->contrib = (int *) malloc((size_t) nc * (2 * nimg + 1) * (2 * nimg + 1)
                              * (2 * nimg + 1) * sizeof(int));
  c->owner = (int *) malloc((size_t) nc * (2 * nimg + 1) * (2 * nimg + 1)
                            * (2 * nimg + 1) * sizeof(int));
  /* the cell atoms first, then images within reach of the cell */
  for (i = 0; i < nc; ++i) {
    c->x[3 * i] = base[3 * i];
    c->x[3 * i + 1] = base[3 * i + 1];
    c->x[3 * i + 2] = base[3 * i + 2];
    c->species[i] = sp[i];
    c->contrib[i] = 1;
    c->owner[i] = i;
  }
  c->n = nc;
  for (iz = -nimg; iz <= nimg; ++iz)
    for (iy = -nimg; iy <= nimg; ++iy)
      for (ix = -nimg; ix <= nimg; ++ix) {
        if (ix == 0 && iy == 0 && iz == 0) continue;
        for (i = 0; i < nc; ++i) {
          double p[3], dd = 0.0;
          int a2;
          p[0] = base[3 * i] + ix * Lc;
          p[1] = base[3 * i + 1] + iy * Lc;
          p[2] = base[3 * i + 2] + iz * Lc;
          for (a2 = 0; a2 < 3; ++a2) {
            double lo = p[a2] < 0 ? -p[a2] : (p[a2] > Lc ? p[a2] - Lc : 0);
            dd += lo * lo;
          }
          if (dd > reach * reach) continue;
          c->x[3 * c->n] = p[0];
          c->x[3 * c->n + 1] = p[1];
          c->x[3 * c->n + 2] = p[2];
          c->species[c->n] = sp[i];
          c->contrib[c->n] = 0;
          c->owner[c->n] = i;
          c->n++;
        }
      }
  c->list_cutoff = 5.5;
  build_lists(c);
}

/* the input of configuration c with neighbour lists from fn(ctx) */
static compot_input input_of(config const *c, compot_neighbor_fn *fn,
                             void *ctx, int half)
{
  compot_input in;
  memset(&in, 0, sizeof in);
  in.n_particles = c->n;
  in.species = c->species;
  in.coords = c->x;
  in.contributing = c->contrib;
  in.get_neighbors = fn;
  in.neighbor_context = ctx;
  in.half_list = half;
  return in;
}

static int evaluate(compot_model const *m, compot_workspace *ws,
                    config const *c, compot_output const *out, char *msg,
                    size_t msg_size)
{
  compot_input in = input_of(c, get_neighbors, (void *) c, 0);
  return compot_compute(m, ws, &in, out, msg, msg_size);
}

static double energy_of(compot_model const *m, compot_workspace *ws,
                        config const *c)
{
  double e = 0.0;
  char msg[256];
  compot_output out;
  memset(&out, 0, sizeof out);
  out.energy = &e;
  if (evaluate(m, ws, c, &out, msg, sizeof msg)) {
    fprintf(stderr, "compute failed: %s\n", msg);
    exit(2);
  }
  return e;
}

/* ---- independent reference evaluation ----------------------------------- */

static double ref_fc(double r, double rc)
{
  double x = r / rc;
  if (x >= 1.0) return 0.0;
  return 1.0 - 35.0 * pow(x, 4) + 84.0 * pow(x, 5) - 70.0 * pow(x, 6)
         + 20.0 * pow(x, 7);
}

/* Format v2: the inner window s_in of a pair of species (si, sj) at r:
   0 up to r_a, 1 from r_b, and 1 - (the f_c polynomial of t = (r - r_a)/(r_b
   - r_a)) between; 1 in v1. */
static double ref_sin(compot_model const *m, double r, int si, int sj)
{
  double ra, rb;
  int S = m->n_species, lo = si < sj ? si : sj, hi = si < sj ? sj : si;
  int q = lo * S - lo * (lo - 1) / 2 + (hi - lo);
  if (m->version < 2) return 1.0;
  ra = m->w_r_a[q];
  rb = m->w_r_b[q];
  if (r >= rb) return 1.0;
  if (r <= ra) return 0.0;
  return 1.0 - ref_fc(r - ra, rb - ra);
}

/* Format v2: the distance c(r) = r_b - w_c (1/2 - I(t)) at which the
   fitted terms see a pair closer than its r_b, w_c = 0.22 (r_b - r_a),
   t = (r - r_b + w_c)/w_c clipped to [0, 1], I(t) = integral of the C3 step
   35u^4 - 84u^5 + 70u^6 - 20u^7 from 0 to t (written out here by powers);
   r itself otherwise (v1: always). */
static double ref_seen(compot_model const *m, double r, int si, int sj)
{
  int S = m->n_species, lo = si < sj ? si : sj, hi = si < sj ? sj : si;
  int q = lo * S - lo * (lo - 1) / 2 + (hi - lo);
  double rb;
  if (m->version < 2) return r;
  rb = m->w_r_b[q];
  if (r >= rb) return r;
  ++n_ref_windowed;
  {
    double wc = 0.22 * (rb - m->w_r_a[q]), t = (r - rb + wc) / wc;
    if (t < 0.0) t = 0.0;
    return rb - wc * (0.5 - (7.0 * pow(t, 5) - 14.0 * pow(t, 6) +
                             10.0 * pow(t, 7) - 2.5 * pow(t, 8)));
  }
}

/* g^_k as the fitted terms see it: g_k(c) f_c(c), c = ref_seen(r). */
static double ref_ghat(compot_model const *m, int bi, int k, double r, int si,
                       int sj)
{
  compot_basis const *b = &m->bases[bi];
  /* a term cutoff '@r_t' (issue 13) replaces r_c in f_c and in T_k */
  double rc = b->rt > 0.0 ? b->rt : m->cutoff, x = ref_seen(m, r, si, sj), fc = ref_fc(x, rc);
  if (x >= rc) return 0.0; /* (acos beyond a term cutoff) */
  if (b->kind == COMPOT_BASIS_GAUSSIAN)
    return exp(-(*b->alpha) * pow(*b->beta, k) * x * x) * fc;
  return cos(k * acos(2.0 * x / rc - 1.0)) * fc;
}

static double ref_x(double g, double u)
{
  double e;
  if (u > 1.0) {
    e = exp(g);
    return ref_x(g, 1.0) + e * (u - 1) + 0.5 * g * e * (u - 1) * (u - 1);
  }
  if (u < -1.0) {
    e = exp(-g);
    return ref_x(g, -1.0) + e * (u + 1) + 0.5 * g * e * (u + 1) * (u + 1);
  }
  if (fabs(g) < 1e-6) return u + g * u * u / 2 + g * g * u * u * u / 6;
  return (exp(g * u) - 1.0) / g;
}

/* x(gamma, u) of format v2 (tau > 0): the saturating continuation with
   T = tau tanh((u - u_b)/tau); tau = 0: v1 (ref_x). */
static double ref_xt(double g, double u, double tau)
{
  double ub = u > 0 ? 1.0 : -1.0, T, e;
  if (tau == 0.0 || fabs(u) <= 1.0) return ref_x(g, u);
  ++n_ref_saturated;
  T = tau * tanh((u - ub) / tau);
  e = exp(g * ub);
  return ref_x(g, ub) + e * T + 0.5 * g * e * T * T;
}

static double model_tau(compot_model const *m)
{
  return m->version >= 2 ? *m->w_tau : 0.0;
}

static double dist(config const *c, int i, int j, double *u)
{
  double d[3], r;
  int a;
  for (a = 0; a < 3; ++a) d[a] = c->x[3 * j + a] - c->x[3 * i + a];
  r = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
  if (u != NULL)
    for (a = 0; a < 3; ++a) u[a] = d[a] / r;
  return r;
}

/* The weight of a neighbour of species s in channel ch of basis b: W[s][ch]
   with a species embedding (docs/parameter-file.md), else 1 for s = ch
   (one channel per species). */
static double ref_weight(compot_model const *m, int b, int s, int ch)
{
  if (m->rank > 0) return m->bases[b].w[s * m->rank + ch];
  return s == ch ? 1.0 : 0.0;
}

/* phi_k^(ch)(i) by brute force over all particles. */
static double ref_phi(compot_model const *m, config const *c, int b, int i,
                      int ch, int k)
{
  double sum = 0.0, r, wj;
  int j;
  for (j = 0; j < c->n; ++j) {
    if (j == i || (wj = ref_weight(m, b, c->species[j], ch)) == 0.0) continue;
    r = dist(c, i, j, NULL);
    if (r < m->cutoff)
      sum += wj * ref_ghat(m, b, k, r, c->species[i], c->species[j]);
  }
  return sum;
}

static double ref_rho(compot_model const *m, config const *c, int b, int i,
                      int s, int k)
{
  double sum = 0.0, r;
  int j;
  for (j = 0; j < c->n; ++j) {
    if (j == i) continue;
    r = dist(c, i, j, NULL);
    if (r < m->cutoff)
      sum += ref_fc(ref_seen(m, r, c->species[i], c->species[j]), m->cutoff)
             * ref_phi(m, c, b, j, s, k);
  }
  return sum;
}

static double legendre(int p, double x)
{
  double p0 = 1.0, p1 = x, p2;
  int l;
  if (p == 0) return 1.0;
  for (l = 2; l <= p; ++l) {
    p2 = ((2 * l - 1) * x * p1 - (l - 1) * p0) / l;
    p0 = p1;
    p1 = p2;
  }
  return p1;
}

/* q_kp^(c1 c2)(i) by the direct double loop over neighbour pairs (j, m),
   weighted W[Z_j][c1] W[Z_m][c1] for c1 = c2 (without j = m) and
   W[Z_j][c1] W[Z_m][c2] + W[Z_j][c2] W[Z_m][c1] for c1 != c2 (j = m
   included, docs/parameter-file.md "Species embedding"; zero in the full
   chemistry, where the channels are the species). */
static double ref_q(compot_model const *m, config const *c, int b, int i,
                    int c1, int c2, int k, int p)
{
  double sum = 0.0, uj[3], um[3];
  int j, mm;
  for (j = 0; j < c->n; ++j) {
    double rj, wj1, wj2;
    if (j == i) continue;
    rj = dist(c, i, j, uj);
    if (rj >= m->cutoff) continue;
    wj1 = ref_weight(m, b, c->species[j], c1);
    wj2 = ref_weight(m, b, c->species[j], c2);
    for (mm = 0; mm < c->n; ++mm) {
      double rm, w;
      int bb = c->species[mm];
      if (mm == i || (mm == j && c1 == c2)) continue;
      w = c1 == c2 ? wj1 * ref_weight(m, b, bb, c1)
                   : wj1 * ref_weight(m, b, bb, c2)
                         + wj2 * ref_weight(m, b, bb, c1);
      if (w == 0.0) continue;
      rm = dist(c, i, mm, um);
      if (rm >= m->cutoff) continue;
      sum += w * ref_ghat(m, b, k, rj, c->species[i], c->species[j])
             * ref_ghat(m, b, k, rm, c->species[i], bb)
             * legendre(p, uj[0] * um[0] + uj[1] * um[1] + uj[2] * um[2]);
    }
  }
  return sum;
}

/* LAMMPS pair_style zbl, written out directly (metal units). */
static double ref_zbl_raw(double zi, double zj, double r, int deriv)
{
  static double const cc[4] = {0.02817, 0.28022, 0.50986, 0.18175};
  static double const dd[4] = {0.20162, 0.40290, 0.94229, 3.19980};
  double ainv = (pow(zi, 0.23) + pow(zj, 0.23)) / 0.46850, s = 0, s1 = 0,
         s2 = 0, k = zi * zj * 14.399645;
  int n;
  for (n = 0; n < 4; ++n) {
    double e = cc[n] * exp(-dd[n] * ainv * r);
    s += e;
    s1 += -dd[n] * ainv * e;
    s2 += dd[n] * ainv * dd[n] * ainv * e;
  }
  if (deriv == 0) return k * s / r;
  if (deriv == 1) return k * (s1 / r - s / (r * r));
  return k * (s2 / r - 2 * s1 / (r * r) + 2 * s / (r * r * r));
}

static double ref_zbl(double zi, double zj, double ri, double ro, double r)
{
  double tc = ro - ri, fc, fp, fpp, A, B, C, e;
  if (r >= ro) return 0.0;
  fc = ref_zbl_raw(zi, zj, ro, 0);
  fp = ref_zbl_raw(zi, zj, ro, 1);
  fpp = ref_zbl_raw(zi, zj, ro, 2);
  A = (-3 * fp + tc * fpp) / (tc * tc);
  B = (2 * fp - tc * fpp) / (tc * tc * tc);
  C = -fc + tc / 2 * fp - tc * tc / 12 * fpp;
  e = ref_zbl_raw(zi, zj, r, 0) + C;
  if (r > ri) {
    double t = r - ri;
    e += A / 3 * t * t * t + B / 4 * t * t * t * t;
  }
  return e;
}

static double ref_value(compot_model const *m, config const *c, int nd,
                        int i)
{
  compot_node const *n = &m->nodes[nd];
  /* S: the neighbour channels (the species, or the embedding's rank) */
  int S = compot_nch(m), Z = c->species[i], s, k, l, ch, b = n->basis;
  double e = 0.0;
  switch (n->kind) {
  case COMPOT_NODE_SUM:
    for (ch = 0; ch < n->n_children; ++ch)
      e += ref_value(m, c, n->children[ch], i);
    break;
  case COMPOT_NODE_PRODUCT:
    e = ref_value(m, c, n->children[0], i) * ref_value(m, c, n->children[1], i);
    break;
  case COMPOT_NODE_LINEAR:
    for (s = 0; s < S; ++s)
      for (k = 0; k < n->K; ++k)
        e += n->c[(Z * S + s) * n->K + k] * ref_phi(m, c, b, i, s, k);
    break;
  case COMPOT_NODE_EXP:
  case COMPOT_NODE_NEXP:
    for (s = 0; s < S; ++s)
      for (k = 0; k < n->K; ++k) {
        double f = n->kind == COMPOT_NODE_EXP ? ref_phi(m, c, b, i, s, k)
                                              : ref_rho(m, c, b, i, s, k);
        double fm = n->kind == COMPOT_NODE_EXP ? m->bases[b].phi_max[s * n->K + k]
                                               : m->bases[b].rho_max[s * n->K + k];
        for (l = 0; l < n->L; ++l)
          e += n->c[((Z * S + s) * n->L + l) * n->K + k]
               * ref_xt(n->gamma[l], f / fm, model_tau(m));
      }
    break;
  case COMPOT_NODE_ANGULAR: {
    int s1, s2, q = 0, np = S * (S + 1) / 2, p;
    for (s1 = 0; s1 < S; ++s1)
      for (s2 = s1; s2 < S; ++s2, ++q)
        for (k = 0; k < n->K; ++k)
          for (p = 0; p <= n->P; ++p) {
            double qv = ref_q(m, c, b, i, s1, s2, k, p);
            if (m->version >= 2) { /* q_max x(0, q/q_max) */
              double qm = n->q_max[(q * n->K + k) * (n->P + 1) + p];
              n_ref_saturated_q += fabs(qv) > qm;
              qv = qm * ref_xt(0.0, qv / qm, model_tau(m));
            }
            e += n->c[((Z * np + q) * n->K + k) * (n->P + 1) + p] * qv;
          }
    break;
  }
  case COMPOT_NODE_EXPANG: { /* sum c x(gamma_l, q / q_max) */
    int s1, s2, q = 0, np = S * (S + 1) / 2, p, P1 = n->P + 1;
    for (s1 = 0; s1 < S; ++s1)
      for (s2 = s1; s2 < S; ++s2, ++q)
        for (k = 0; k < n->K; ++k)
          for (p = 0; p < P1; ++p) {
            double u = ref_q(m, c, b, i, s1, s2, k, p) / n->q_max[(q * n->K + k) * P1 + p];
            for (l = 0; l < n->L; ++l)
              e += n->c[(((Z * np + q) * n->L + l) * n->K + k) * P1 + p]
                   * ref_xt(n->gamma[l], u, model_tau(m));
          }
    break;
  }
  default: {
    int j;
    for (j = 0; j < c->n; ++j) {
      double r;
      if (j == i) continue;
      r = dist(c, i, j, NULL);
      if (r < m->cutoff)
        e += 0.5 * ref_zbl(m->z[Z], m->z[c->species[j]], n->r_in, n->r_out, r);
    }
  }
  }
  if (n->shift != NULL) e += n->shift[Z];
  return e;
}

/* Format v2: the feature vector f of atom i for the grade, written out from
   docs/parameter-file.md: every fitted leaf (node order) for the centre
   species, in the order of its c block without the centre index (phi_k for
   G/C, x(gamma_l, u_k) for E/N, q_max x(0, q/q_max) for A).  Returns d. */
static int ref_features(compot_model const *m, config const *c, int i,
                        double *f)
{
  int S = compot_nch(m), nd, s, k, l, d = 0; /* S: neighbour channels */
  double tau = model_tau(m);
  for (nd = 0; nd < m->n_nodes; ++nd) {
    compot_node const *n = &m->nodes[nd];
    int b = n->basis;
    switch (n->kind) {
    case COMPOT_NODE_LINEAR:
      for (s = 0; s < S; ++s)
        for (k = 0; k < n->K; ++k) f[d++] = ref_phi(m, c, b, i, s, k);
      break;
    case COMPOT_NODE_EXP:
    case COMPOT_NODE_NEXP:
      for (s = 0; s < S; ++s) {
        double u[64];
        for (k = 0; k < n->K; ++k)
          u[k] = n->kind == COMPOT_NODE_EXP
                     ? ref_phi(m, c, b, i, s, k) / m->bases[b].phi_max[s * n->K + k]
                     : ref_rho(m, c, b, i, s, k) / m->bases[b].rho_max[s * n->K + k];
        for (l = 0; l < n->L; ++l)
          for (k = 0; k < n->K; ++k) f[d++] = ref_xt(n->gamma[l], u[k], tau);
      }
      break;
    case COMPOT_NODE_ANGULAR: {
      int s1, s2, q = 0, p;
      for (s1 = 0; s1 < S; ++s1)
        for (s2 = s1; s2 < S; ++s2, ++q)
          for (k = 0; k < n->K; ++k)
            for (p = 0; p <= n->P; ++p) {
              double qm = n->q_max[(q * n->K + k) * (n->P + 1) + p];
              f[d++] = qm * ref_xt(0.0, ref_q(m, c, b, i, s1, s2, k, p) / qm, tau);
            }
      break;
    }
    case COMPOT_NODE_EXPANG: { /* order q, l, k, p */
      int s1, s2, q = 0, p, P1 = n->P + 1, first = d;
      for (s1 = 0; s1 < S; ++s1)
        for (s2 = s1; s2 < S; ++s2, ++q) {
          for (k = 0; k < n->K; ++k)
            for (p = 0; p < P1; ++p) {
              double u = ref_q(m, c, b, i, s1, s2, k, p) / n->q_max[(q * n->K + k) * P1 + p];
              for (l = 0; l < n->L; ++l)
                f[first + ((q * n->L + l) * n->K + k) * P1 + p] = ref_xt(n->gamma[l], u, tau);
            }
        }
      d = first + q * n->L * n->K * P1;
      break;
    }
    default: break;
    }
  }
  return d;
}

/* gamma = |U (f - mu)|^2 with U from the packed lower triangle (rows
   outer) of the parameter block g.U. */
static double ref_gamma(compot_model const *m, int Z, double const *f)
{
  int d = m->grade_d, r, col;
  double const *U = m->g_U + (size_t) Z * d * (d + 1) / 2, *mu = m->g_mu + (size_t) Z * d;
  double g = 0.0;
  for (r = 0; r < d; ++r) {
    double y = 0.0;
    for (col = 0; col <= r; ++col) y += U[r * (r + 1) / 2 + col] * (f[col] - mu[col]);
    g += y * y;
  }
  return g;
}

/* The site energy: V(root) in v1; in v2 E_i = E_ref + S_i (V_fit - E_ref)
   + E_ZBL with S_i = prod_(j: r_ij < r_b) s_in(r_ij) times the grade switch
   (1 up to gamma_lo, 0 from gamma_hi, the f_c polynomial of (gamma -
   gamma_lo)/(gamma_hi - gamma_lo) between). */
static double ref_site(compot_model const *m, config const *c, int i)
{
  compot_node const *root = &m->nodes[0];
  double v = ref_value(m, c, 0, i), vzbl = 0.0, spair = 1.0, sg = 1.0, f[512];
  int Z = c->species[i], ch, j;
  ref_in_transition = 0;
  if (m->version < 2) return v;
  if (root->kind == COMPOT_NODE_SUM)
    for (ch = 0; ch < root->n_children; ++ch)
      if (m->nodes[root->children[ch]].kind == COMPOT_NODE_ZBL)
        vzbl += ref_value(m, c, root->children[ch], i);
  for (j = 0; j < c->n; ++j) {
    double r;
    if (j == i) continue;
    r = dist(c, i, j, NULL);
    if (r < m->cutoff) spair *= ref_sin(m, r, Z, c->species[j]);
  }
  n_ref_close += spair < 1.0;
  if (m->grade_d <= (int) (sizeof f / sizeof f[0])) {
    double g, lo = m->g_lo[Z], hi = m->g_hi[Z];
    ref_features(m, c, i, f);
    g = ref_gamma(m, Z, f);
    if (g >= hi) {
      sg = 0.0;
      ++n_ref_off;
    } else if (g > lo) {
      sg = ref_fc(log(g / lo), log(hi / lo));
      ++n_ref_transition;
      ref_in_transition = 1;
    }
  } else
    CHECK(0, "ref_site: %d features; the reference holds 512", m->grade_d);
  return m->w_e_ref[Z] + spair * sg * (v - vzbl - m->w_e_ref[Z]) + vzbl;
}

/*
 * Format v2: a grade for the contributing cell atoms of c: per species mu =
 * the mean feature vector, U lower triangular with U_cc = 1/sigma_c, sigma_c^2
 * the features' variance plus 1e-2 of its mean over the features (a floor
 * as in Model.compute_grade, larger, so that the tests' round-off stays
 * small), and random off-diagonal entries (+-0.3/sigma_c), gamma_lo and
 * gamma_hi the 30 % and 75 % quantiles of gamma over those atoms (so that
 * some atoms are in the switch's transition and some are off; gamma_hi at
 * least 1.5 gamma_lo); then refresh.
 */
static void fit_grade(compot_model *m, config const *c)
{
  int S = m->n_species, d = m->grade_d, Z, i, a, r, col, n;
  double *f = (double *) malloc((size_t) c->n_owner * d * sizeof(double));
  double *g = (double *) malloc((size_t) c->n_owner * sizeof(double));
  double *var = (double *) malloc((size_t) d * sizeof(double)), vmean;
  char msg[256];
  for (Z = 0; Z < S; ++Z) {
    double *mu = m->g_mu + (size_t) Z * d, *U = m->g_U + (size_t) Z * d * (d + 1) / 2;
    n = 0;
    for (i = 0; i < c->n_owner; ++i)
      if (c->contrib[i] && c->species[i] == Z) ref_features(m, c, i, f + (size_t) n++ * d);
    if (n < 2) continue;
    for (col = 0, vmean = 0.0; col < d; ++col) {
      double mean = 0.0, v = 0.0;
      for (a = 0; a < n; ++a) mean += f[(size_t) a * d + col] / n;
      for (a = 0; a < n; ++a) v += pow(f[(size_t) a * d + col] - mean, 2) / n;
      mu[col] = mean;
      var[col] = v;
      vmean += v / d;
    }
    if (!(vmean > 0.0)) vmean = 1.0;
    for (col = 0; col < d; ++col) /* a floor 1e-2 of the mean variance */
      U[col * (col + 1) / 2 + col] = 1.0 / sqrt(var[col] + 1e-2 * vmean);
    for (r = 0; r < d; ++r)
      for (col = 0; col < r; ++col)
        U[r * (r + 1) / 2 + col] = urand(-0.3, 0.3) * U[col * (col + 1) / 2 + col];
    for (a = 0; a < n; ++a) g[a] = ref_gamma(m, Z, f + (size_t) a * d);
    for (a = 1; a < n; ++a) { /* sort */
      double t = g[a];
      int b = a - 1;
      while (b >= 0 && g[b] > t) {
        g[b + 1] = g[b];
        --b;
      }
      g[b + 1] = t;
    }
    m->g_lo[Z] = g[(int) (0.3 * (n - 1))];
    m->g_hi[Z] = g[(int) (0.75 * (n - 1) + 0.5)];
    if (!(m->g_lo[Z] > 0.0)) m->g_lo[Z] = 1.0;
    /* a transition at least 0.5 gamma_lo wide: a narrower one is a step
       that central differences cannot follow */
    if (!(m->g_hi[Z] >= 1.5 * m->g_lo[Z])) m->g_hi[Z] = 1.5 * m->g_lo[Z];
  }
  CHECK(compot_refresh(m, msg, sizeof msg) == 0, "refresh after fit_grade: %s", msg);
  free(f);
  free(g);
  free(var);
}

/* ---- compute tests ------------------------------------------------------ */

/* Central difference of the energy in coordinate a of owned particle i with
   step h; its periodic images (ghosts) move with it. */
static double displacement_derivative(compot_model const *m,
                                      compot_workspace *ws, config *c, int i,
                                      int a, double h)
{
  double ep, em;
  int j, n = c->n;
  for (j = 0; j < n; ++j)
    if (c->owner[j] == i) c->x[3 * j + a] += h;
  ep = energy_of(m, ws, c);
  for (j = 0; j < n; ++j)
    if (c->owner[j] == i) c->x[3 * j + a] -= 2 * h;
  em = energy_of(m, ws, c);
  for (j = 0; j < n; ++j)
    if (c->owner[j] == i) c->x[3 * j + a] += h;
  return (ep - em) / (2 * h);
}

/* Central difference of the energy along strain component b (Voigt order
   xx yy zz yz xz xy, engineering shear) with step hs: every coordinate,
   ghosts included, is strained. */
static double strain_derivative(compot_model const *m, compot_workspace *ws,
                                config *c, int b, double hs)
{
  static int const ia[6] = {0, 1, 2, 1, 0, 0}, ib[6] = {0, 1, 2, 2, 2, 1};
  int n = c->n, i, a, sign;
  double ep = 0.0, em = 0.0;
  double *x0 = (double *) malloc(3 * (size_t) n * sizeof(double));
  memcpy(x0, c->x, 3 * (size_t) n * sizeof(double));
  for (sign = -1; sign <= 1; sign += 2) {
    double eps[3][3] = {{0}};
    if (ia[b] == ib[b])
      eps[ia[b]][ib[b]] = sign * hs;
    else
      eps[ia[b]][ib[b]] = eps[ib[b]][ia[b]] = sign * hs / 2;
    for (i = 0; i < n; ++i)
      for (a = 0; a < 3; ++a)
        c->x[3 * i + a] = x0[3 * i + a] + eps[a][0] * x0[3 * i]
                          + eps[a][1] * x0[3 * i + 1]
                          + eps[a][2] * x0[3 * i + 2];
    if (sign < 0)
      em = energy_of(m, ws, c);
    else
      ep = energy_of(m, ws, c);
  }
  memcpy(c->x, x0, 3 * (size_t) n * sizeof(double));
  free(x0);
  return (ep - em) / (2 * hs);
}

/* Particle energies pe against the direct evaluation (ref_site) over the
   contributing owners: the largest difference outside the grade's
   transition (*err) and inside it (*err_tr), and *scale raised to the
   largest |reference|. */
static void site_errors(compot_model const *m, config const *c,
                        double const *pe, double *err, double *err_tr,
                        double *scale)
{
  int i;
  for (i = 0; i < c->n_owner; ++i) {
    double ref, d;
    if (!c->contrib[i]) continue;
    ref = ref_site(m, c, i);
    d = fabs(ref - pe[i]);
    if (fabs(ref) > *scale) *scale = fabs(ref);
    if (ref_in_transition) {
      if (d > *err_tr) *err_tr = d;
    } else if (d > *err)
      *err = d;
  }
}

static void check_model_on(compot_model const *m, config *c, char const *what)
{
  compot_workspace *ws = compot_workspace_create();
  int n = c->n, i, a, b;
  double E = 0, vir[6], *pe, *F, *pv, *Ff, h = 1e-5, hs = 1e-6, fscale = 1e-300,
         ferr = 0.0, escale = 1.0, eerr = 0.0, vscale = 1e-300, verr = 0.0,
         sum, vsum[6], esum = 0.0, eerr_tr = 0.0;
  char msg[512];
  compot_output out;
  int err;

  pe = (double *) malloc((size_t) n * sizeof(double));
  F = (double *) malloc(3 * (size_t) n * sizeof(double));
  Ff = (double *) calloc(3 * (size_t) n, sizeof(double));
  pv = (double *) malloc(6 * (size_t) n * sizeof(double));
  out.energy = &E;
  out.particle_energy = pe;
  out.forces = F;
  out.virial = vir;
  out.particle_virial = pv;
  err = evaluate(m, ws, c, &out, msg, sizeof msg);
  CHECK(err == 0, "%s: compute: %s", what, msg);
  if (err) goto done;

  /* energy alone agrees with energy among all outputs */
  CHECK(fabs(energy_of(m, ws, c) - E) <= 1e-13 * (1 + fabs(E)),
        "%s: energy alone differs", what);

  /* per-particle energies: sum, zero on non-contributing, reference */
  sum = 0.0;
  for (i = 0; i < n; ++i) {
    sum += pe[i];
    esum += fabs(pe[i]);
    if (!c->contrib[i]) CHECK(pe[i] == 0.0, "%s: pe of ghost %d", what, i);
  }
  CHECK(fabs(sum - E) <= 1e-12 * (1 + fabs(E)),
        "%s: sum of particle energies %.17g != energy %.17g", what, sum, E);
  site_errors(m, c, pe, &eerr, &eerr_tr, &escale);
  CHECK(eerr <= 1e-12 * escale && eerr_tr <= 1e-9 * escale,
        "%s: particle energies differ from the direct evaluation by %.3g "
        "(%.3g in the grade's transition; scale %.3g)",
        what, eerr, eerr_tr, escale);

  /* forces: Richardson extrapolation of central differences with steps h
     and h/2 (error ~h^4; plain central differences, error ~h^2 times the
     third derivative, failed 1e-6 on random two-species configurations);
     periodic images move with their owner */
  for (i = 0; i < n; ++i)
    for (a = 0; a < 3; ++a) Ff[3 * c->owner[i] + a] += F[3 * i + a];
  for (i = 0; i < c->n_owner; ++i)
    for (a = 0; a < 3; ++a)
      if (fabs(Ff[3 * i + a]) > fscale) fscale = fabs(Ff[3 * i + a]);
  for (i = 0; i < c->n_owner; ++i)
    for (a = 0; a < 3; ++a) {
      double fd = -(4.0 * displacement_derivative(m, ws, c, i, a, 0.5 * h)
                    - displacement_derivative(m, ws, c, i, a, h)) / 3.0;
      if (fabs(fd - Ff[3 * i + a]) > ferr) ferr = fabs(fd - Ff[3 * i + a]);
    }
  /* relative 1e-6, with an allowance for the round-off floor of the
     differences, about eps sum|E_i| / h */
  CHECK(ferr <= 1e-6 * fscale + 1e-9 * esum,
        "%s: forces differ from finite differences by %.3g (max |F| %.3g)",
        what, ferr, fscale);

  /* virial: strain derivative, all coordinates (ghosts included), by
     Richardson extrapolation of central differences with steps 1e-6 and
     5e-7 (error ~h^4): a homogeneous strain moves the features of every
     atom together, and a grade whitened on a jittered crystal turns that
     into a fast change of the switch (third derivatives of E ~1e10 eV) */
  for (i = 0; i < 6; ++i) vsum[i] = 0.0;
  for (i = 0; i < n; ++i)
    for (a = 0; a < 6; ++a) vsum[a] += pv[6 * i + a];
  for (a = 0; a < 6; ++a)
    if (fabs(vir[a]) > vscale) vscale = fabs(vir[a]);
  for (b = 0; b < 6; ++b) {
    double fd = (4.0 * strain_derivative(m, ws, c, b, 0.5 * hs)
                 - strain_derivative(m, ws, c, b, hs)) / 3.0;
    if (fabs(fd - vir[b]) > verr) verr = fabs(fd - vir[b]);
    CHECK(fabs(vsum[b] - vir[b]) <= 1e-12 * (1 + vscale),
          "%s: particle virials do not sum to the virial (component %d)",
          what, b);
  }
  CHECK(verr <= 1e-6 * (vscale > 1 ? vscale : 1) + 1e-9 * esum,
        "%s: virial differs from the strain derivative by %.3g (max %.3g)",
        what, verr, vscale);
  printf("  %-60s E=%12.6f dE=%.1e dF=%.1e dV=%.1e\n", what, E,
         eerr / escale, ferr / fscale, verr / (vscale > 1 ? vscale : 1));
done:
  free(pe);
  free(F);
  free(Ff);
  free(pv);
  compot_workspace_destroy(ws);
}

/* Per-particle energies with all shifts zero and wide Gaussians, so the
   cluster functions themselves dominate, against the direct evaluation (the
   A term: the addition theorem against the double loop), 1e-12 relative
   (1e-9 for atoms in the grade's transition, see ref_in_transition). */
static void check_direct(compot_model *m, config *c, char const *what)
{
  int i, e, n = c->n;
  double *pe = (double *) malloc((size_t) n * sizeof(double)), err = 0.0,
         scale = 1e-300, err_tr = 0.0;
  char msg[256];
  compot_output out;
  for (i = 0; i < compot_n_params(m); ++i) {
    compot_param const *p = compot_param_at(m, i);
    for (e = 0; e < p->extent; ++e) {
      if (strstr(p->name, "_shift")) p->values[e] = 0.0;
      if (strstr(p->name, "_alpha")) p->values[e] = urand(0.05, 0.2);
      if (strstr(p->name, "_beta")) p->values[e] = urand(1.2, 1.5);
    }
  }
  compot_refresh(m, msg, sizeof msg);
  memset(&out, 0, sizeof out);
  out.particle_energy = pe;
  if (evaluate(m, NULL, c, &out, msg, sizeof msg) == 0) {
    site_errors(m, c, pe, &err, &err_tr, &scale);
    CHECK(err <= 1e-12 * scale && err_tr <= 1e-9 * scale,
          "%s: unshifted particle energies differ from the direct evaluation "
          "by %.3g (%.3g in the grade's transition; scale %.3g)",
          what, err, err_tr, scale);
    printf("  %-60s direct, no shifts: max|E_i|=%.3g rel.err=%.1e\n", what,
           scale, err / scale);
  } else
    CHECK(0, "%s: %s", what, msg);
  free(pe);
}

/* One expression of the registry on S species (rank > 0: a species
   embedding of that rank), format v1 or v2: on a random cluster and on a
   periodic cell (check_model_on), and the direct evaluation without shifts
   (check_direct). */
static void compute_case(int version, char const *expr,
                         char const *const *sp, int S, int rank)
{
  config c;
  char what[200], chem[24] = "";
  compot_model *m =
      version == 1 ? random_model_rank(expr, sp, S, rank)
                   : random_model_v2_rank(expr, sp, S, 2.2, 3.0, rank);
  if (m == NULL) return;
  if (rank > 0) snprintf(chem, sizeof chem, ", rank %d", rank);
  make_cluster(&c, 24, S, 0.6);
  if (version >= 2) fit_grade(m, &c);
  snprintf(what, sizeof what, "v%d %s [%d species%s, cluster]", version,
           expr, S, chem);
  check_model_on(m, &c, what);
  config_free(&c);
  make_periodic(&c, S);
  if (version >= 2) fit_grade(m, &c);
  snprintf(what, sizeof what, "v%d %s [%d species%s, periodic]", version,
           expr, S, chem);
  check_model_on(m, &c, what);
  check_direct(m, &c, what);
  config_free(&c);
  compot_destroy(m);
}

/* Every registry expression on random clusters and a periodic cell, 1 and 2
   species, and on the species of a row at each rank of its species
   embedding: particle energies against the direct evaluation, forces and
   virial against finite differences (compute_case).
   Format v2 (MODEL_SPEC 10): inner windows with pairs inside them (seen at
   the effective distance, their atoms partly switched off), features (E
   and N inputs, A invariants) past saturation, and a grade (fit_grade) with
   atoms in its transition and atoms switched off. */
static void test_compute(int version)
{
  static char const *const sp1[] = {"Nb"}, *const sp2[] = {"Mo", "Nb"};
  int e, S, which, rank, n_embedded = 0;
  long w0 = n_ref_windowed, s0 = n_ref_saturated, q0 = n_ref_saturated_q;
  long c0 = n_ref_close, t0 = n_ref_transition, o0 = n_ref_off;
  if (version == 1)
    printf("compute tests (relative errors: direct evaluation, "
           "finite-difference forces, virial)\n");
  else
    printf("compute tests, format v2 (inner window, saturating features, "
           "grade)\n");
  for (S = 1; S <= 2; ++S)
    for (e = 0; e < n_registry; ++e)
      run_registry_case(compute_case, version, e, S == 1 ? sp1 : sp2, S, 0);
  for (e = 0; e < n_registry; ++e) {
    char buf[160];
    char const *sp[8];
    for (which = 0; (rank = registry_rank(e, which, buf, sp, &S)) > 0;
         ++which, ++n_embedded)
      run_registry_case(compute_case, version, e, sp, S, rank);
  }
  CHECK(n_embedded >= 2, "the registry has %d species-embedding cases; "
        "expected at least 2 (a fourth field of ranks)", n_embedded);
  if (version < 2) return;
  CHECK(n_ref_windowed > w0 && n_ref_saturated_q > q0
            && n_ref_saturated - (n_ref_saturated_q - q0) > s0
            && n_ref_close > c0 && n_ref_transition > t0 && n_ref_off > o0,
        "v2 tests saw %ld windowed pairs, %ld saturated features (%ld of "
        "them A invariants), %ld atoms with close pairs, %ld in the grade's "
        "transition, %ld switched off by it",
        n_ref_windowed - w0, n_ref_saturated - s0, n_ref_saturated_q - q0,
        n_ref_close - c0, n_ref_transition - t0, n_ref_off - o0);
  printf("  (reference: %ld pair evaluations inside a window, %ld saturated "
         "features, %ld of them A invariants; atoms: %ld with close pairs, "
         "%ld in the grade's transition, %ld switched off by it)\n",
         n_ref_windowed - w0, n_ref_saturated - s0, n_ref_saturated_q - q0,
         n_ref_close - c0, n_ref_transition - t0, n_ref_off - o0);
}

/* The core never returns non-finite numbers: n1.gamma.1 1e6 in a parameter
   file (an energy of -nan before) is an error naming the particle. */
static void test_nonfinite(void)
{
  char path[512], msg[1024], *text, *at;
  compot_model *m = NULL;
  config c;
  double E, F[3 * 64], vir[6];
  compot_output out;
  int err;
  path_join(path, sizeof path, data_dir, "nb_e_n_zbl.params");
  text = read_text(path);
  CHECK(text != NULL, "read %s", path);
  if (text == NULL) return;
  at = strstr(text, "n1.gamma.1 0.5");
  CHECK(at != NULL, "n1.gamma.1 in %s", path);
  if (at == NULL) {
    free(text);
    return;
  }
  memcpy(at, "n1.gamma.1 1e6", 14);
  err = compot_create_from_text(&m, text, "gamma1e6.params", msg, sizeof msg);
  free(text);
  CHECK(err == 0, "gamma 1e6 is a valid parameter: %s", msg);
  if (err) return;
  make_cluster(&c, 16, 1, 1.0);
  memset(&out, 0, sizeof out);
  out.energy = &E;
  err = evaluate(m, NULL, &c, &out, msg, sizeof msg);
  CHECK(err == COMPOT_ERR_NONFINITE && strstr(msg, "non-finite energy at particle")
            && strstr(msg, "outside its valid range"),
        "energy of gamma 1e6: %d %s", err, msg);
  out.energy = NULL;
  out.forces = F;
  out.virial = vir;
  err = evaluate(m, NULL, &c, &out, msg, sizeof msg);
  CHECK(err == COMPOT_ERR_NONFINITE && strstr(msg, "non-finite"),
        "forces of gamma 1e6: %d %s", err, msg);
  printf("non-finite results are errors: %s\n", msg);
  config_free(&c);
  compot_destroy(m);
}

/* Compute errors are reported, not crashed on. */
static void test_compute_errors(void)
{
  static char const *const sp[] = {"Nb"};
  compot_model *m = random_model("E[G3L2] + N[E[G3L2]]", sp, 1);
  config c;
  double E;
  char msg[256];
  compot_output out;
  int err;
  memset(&out, 0, sizeof out);
  out.energy = &E;
  make_cluster(&c, 8, 1, 1.0);
  c.species[3] = 1;
  err = evaluate(m, NULL, &c, &out, msg, sizeof msg);
  CHECK(err == COMPOT_ERR_INPUT && strstr(msg, "particle 3"),
        "bad species: %d %s", err, msg);
  c.species[3] = 0;
  memcpy(c.x + 6, c.x + 3, 3 * sizeof(double));
  err = evaluate(m, NULL, &c, &out, msg, sizeof msg);
  CHECK(err == COMPOT_ERR_INPUT && strstr(msg, "same position"),
        "coincident: %d %s", err, msg);
  config_free(&c);
  compot_destroy(m);
}

/* ---- half lists and host exchange ------------------------------------- */

/* Lists as a host with half lists gives them (LAMMPS, newton off): a pair
   of contributing particles once, in the list of the lower index; a pair
   with a non-contributing particle in the contributing one's list. */
typedef struct listed {
  config const *c;
  int half;
  int *idx, *nn, *start;
} listed;

static void listed_init(listed *l, config const *c, int half)
{
  int i, t, used = 0;
  l->c = c;
  l->half = half;
  l->nn = (int *) calloc((size_t) c->n, sizeof(int));
  l->start = (int *) calloc((size_t) c->n, sizeof(int));
  l->idx = (int *) malloc((size_t) (c->start[c->n - 1] + c->nn[c->n - 1] + 1)
                          * sizeof(int));
  for (i = 0; i < c->n; ++i) {
    l->start[i] = used;
    for (t = 0; t < c->nn[i]; ++t) {
      int j = c->idx[c->start[i] + t];
      if (half && c->contrib[i] && c->contrib[j] && j < i) continue;
      l->idx[used++] = j;
      l->nn[i]++;
    }
  }
}

static void listed_free(listed *l)
{
  free(l->idx);
  free(l->nn);
  free(l->start);
}

static int listed_neighbors(void *ctx, int i, int *n, int const **list)
{
  listed const *l = (listed const *) ctx;
  *n = l->nn[i];
  *list = l->idx + l->start[i];
  return 0;
}

/* exchange over periodic images: image i of particle owner[i] */
static int image_forward(void *ctx, double *data, int width)
{
  config const *c = (config const *) ctx;
  int i;
  for (i = 0; i < c->n; ++i)
    if (c->owner[i] != i)
      memcpy(data + (size_t) i * width, data + (size_t) c->owner[i] * width,
             (size_t) width * sizeof(double));
  return 0;
}

static int image_reverse(void *ctx, double *data, int width)
{
  config const *c = (config const *) ctx;
  int i, k;
  for (i = 0; i < c->n; ++i)
    if (c->owner[i] != i)
      for (k = 0; k < width; ++k)
        data[(size_t) c->owner[i] * width + k] += data[(size_t) i * width + k];
  return 0;
}

typedef struct result {
  double E, vir[6], *pe, *F, *pv; /* F and pv folded onto owners */
} result;

static void result_alloc(result *r, int n)
{
  r->pe = (double *) malloc((size_t) n * sizeof(double));
  r->F = (double *) malloc(3 * (size_t) n * sizeof(double));
  r->pv = (double *) malloc(6 * (size_t) n * sizeof(double));
}

static void result_free(result *r)
{
  free(r->pe);
  free(r->F);
  free(r->pv);
}

static int run_lists(compot_model const *m, config const *c, int half,
                     int exchange, result *r, char *msg, size_t msg_size)
{
  listed l;
  compot_input in;
  compot_exchange ex;
  compot_output out;
  int err, i, a;
  double *F = (double *) malloc(3 * (size_t) c->n * sizeof(double));
  double *pv = (double *) malloc(6 * (size_t) c->n * sizeof(double));
  listed_init(&l, c, half);
  in = input_of(c, listed_neighbors, &l, half);
  ex.forward = image_forward;
  ex.reverse = image_reverse;
  ex.context = (void *) c;
  out.energy = &r->E;
  out.particle_energy = r->pe;
  out.forces = F;
  out.virial = r->vir;
  out.particle_virial = pv;
  err = compot_compute_exchange(m, NULL, &in, exchange ? &ex : NULL, &out,
                                msg, msg_size);
  memset(r->F, 0, 3 * (size_t) c->n * sizeof(double));
  memset(r->pv, 0, 6 * (size_t) c->n * sizeof(double));
  for (i = 0; i < c->n && !err; ++i) {
    for (a = 0; a < 3; ++a) r->F[3 * c->owner[i] + a] += F[3 * i + a];
    for (a = 0; a < 6; ++a) r->pv[6 * c->owner[i] + a] += pv[6 * i + a];
  }
  listed_free(&l);
  free(F);
  free(pv);
  return err;
}

static double max_rel(int n, double const *a, double const *b)
{
  double scale = 1e-300, err = 0.0;
  int i;
  for (i = 0; i < n; ++i) {
    if (fabs(a[i]) > scale) scale = fabs(a[i]);
    if (fabs(a[i] - b[i]) > err) err = fabs(a[i] - b[i]);
  }
  return err / scale;
}

/* |a - b| of the 6 virial components over their rounding scale, the
   largest sum over the n atoms of |per-atom virial| of a component: the
   sum of atoms' terms that cancel to a small total carries the rounding of
   its terms, whatever the order of the sums */
static double sum_rel(int n, double const *a, double const *b,
                      double const *per_atom)
{
  double scale = 1e-300, err = 0.0;
  int i, k;
  for (k = 0; k < 6; ++k) {
    double s = fabs(a[k]); /* (>= |sum of the per-atom virials| anyway) */
    for (i = 0; i < n; ++i) s += fabs(per_atom[6 * i + k]);
    if (s > scale) scale = s;
    if (fabs(a[k] - b[k]) > err) err = fabs(a[k] - b[k]);
  }
  return err / scale;
}

/* Half lists and the host exchange give the results of full lists with
   ghost lists (to rounding: only the order of the sums differs). */
/* One registry expression on S species (rank > 0: a species embedding),
   format v1 or v2: half lists and the host exchange against full lists. */
static void half_lists_case(int version, char const *expr,
                            char const *const *sp, int S, int rank)
{
  compot_model *m =
      version == 1 ? random_model_rank(expr, sp, S, rank)
                   : random_model_v2_rank(expr, sp, S, 2.2, 3.0, rank);
  int geom, half, exchange;
  char msg[512];
  int nterm;
  if (m == NULL) return;
  nterm = compot_needs_ghost_neighbors(m);
  for (geom = 0; geom < 2; ++geom) {
    config c;
    result ref, r;
    int err;
    if (geom == 0)
      make_cluster(&c, 24, S, 0.6);
    else
      make_periodic(&c, S);
    if (version >= 2) fit_grade(m, &c);
    result_alloc(&ref, c.n);
    result_alloc(&r, c.n);
    err = run_lists(m, &c, 0, 0, &ref, msg, sizeof msg);
    CHECK(err == 0, "%s: full lists: %s", expr, msg);
    /* the exchange needs images (periodic); N terms without it need
       ghost lists, which half lists do not give */
    for (exchange = 0; exchange <= geom && !err; ++exchange)
      for (half = 0; half <= 1; ++half) {
        double d[5];
        if (!exchange && !half) continue;
        err = run_lists(m, &c, half, exchange, &r, msg, sizeof msg);
        if (half && nterm && !exchange) {
          CHECK(err == COMPOT_ERR_ARG && strstr(msg, "half"),
                "%s: half lists of an N model without exchange: %d %s",
                expr, err, msg);
          err = 0;
          continue;
        }
        CHECK(err == 0, "%s: %s", expr, msg);
        if (err) break;
        d[0] = fabs(r.E - ref.E) / (1.0 + fabs(ref.E));
        d[1] = max_rel(c.n, ref.pe, r.pe);
        d[2] = max_rel(3 * c.n, ref.F, r.F);
        d[3] = sum_rel(c.n, ref.vir, r.vir, ref.pv);
        d[4] = max_rel(6 * c.n, ref.pv, r.pv);
        /* virials: 1e-11, as they sum r (x) f over pairs of the
           exchanged images (random N[E[C2L2]] models of format v2 reach
           1.3e-12 total and 2.0e-12 per atom, forces 7e-13) */
        CHECK(d[0] <= 1e-12 && d[1] <= 1e-12 && d[2] <= 1e-12
                  && d[3] <= 1e-11 && d[4] <= 1e-11,
              "%s [%d species, rank %d, %s, %s lists%s]: dE %.1e dpe %.1e dF "
              "%.1e dV %.1e dV_i %.1e",
              expr, S, rank, geom ? "periodic" : "cluster",
              half ? "half" : "full", exchange ? ", exchange" : "", d[0],
              d[1], d[2], d[3], d[4]);
      }
    result_free(&ref);
    result_free(&r);
    config_free(&c);
  }
  compot_destroy(m);
}

static void test_half_lists(int version)
{
  static char const *const sp1[] = {"Nb"}, *const sp2[] = {"Mo", "Nb"};
  int e, S, which, rank;
  printf("half lists and host exchange against full lists (format v%d%s)\n",
         version, version >= 2 ? ", with a grade" : "");
  for (S = 1; S <= 2; ++S)
    for (e = 0; e < n_registry; ++e)
      run_registry_case(half_lists_case, version, e, S == 1 ? sp1 : sp2, S, 0);
  for (e = 0; e < n_registry; ++e) {
    char buf[160];
    char const *sp[8];
    for (which = 0; (rank = registry_rank(e, which, buf, sp, &S)) > 0; ++which)
      run_registry_case(half_lists_case, version, e, sp, S, rank);
  }
}

/*
 * A format v2 model whose window is off (r_a = r_b = 0) and whose scales
 * are so large that no feature leaves [-1, 1] evaluates as the format v1
 * model with the same values; and a v1 model evaluates as it did (against
 * the reference with quadratic continuation: test_compute).
 */
static void test_v2_reduces_to_v1(void)
{
  static char const *const exprs[] = {
      "E[G3L2] + N[E[G3L2]] + ZBL(1.6, 2.4)",
      "G2 * (C3 + A[G2P2]) + N[E[G2L2]]",
  };
  static char const *const sp[] = {"Mo", "Nb"};
  size_t e;
  for (e = 0; e < sizeof exprs / sizeof exprs[0]; ++e) {
    compot_model *m1 = random_model(exprs[e], sp, 2), *m2 = NULL;
    char msg[512];
    int i, err;
    config c;
    result r1, r2;
    if (m1 == NULL) continue;
    err = compot_create_blank_version(&m2, exprs[e], sp, 2, 5.0, 2, msg, sizeof msg);
    CHECK(err == 0, "%s", msg);
    if (err) {
      compot_destroy(m1);
      continue;
    }
    /* the same values; large scales (u stays inside [-1, 1]) */
    for (i = 0; i < compot_n_params(m1); ++i) {
      compot_param const *p1 = compot_param_at(m1, i), *p2 = NULL;
      int j;
      for (j = 0; j < compot_n_params(m2); ++j)
        if (strcmp(compot_param_at(m2, j)->name, p1->name) == 0)
          p2 = compot_param_at(m2, j);
      if (strstr(p1->name, "_max"))
        for (j = 0; j < p1->extent; ++j) p1->values[j] = 1e3 * (1 + j);
      CHECK(p2 != NULL && p2->extent == p1->extent, "%s in v2", p1->name);
      if (p2 != NULL) memcpy(p2->values, p1->values, (size_t) p1->extent * sizeof(double));
    }
    for (i = 0; i < compot_n_params(m2); ++i) {
      compot_param const *p = compot_param_at(m2, i);
      int j;
      if (strstr(p->name, "_q_max"))
        for (j = 0; j < p->extent; ++j) p->values[j] = 1e4;
    }
    CHECK(compot_refresh(m1, msg, sizeof msg) == 0, "%s", msg);
    CHECK(compot_refresh(m2, msg, sizeof msg) == 0, "%s", msg);
    make_periodic(&c, 2);
    result_alloc(&r1, c.n);
    result_alloc(&r2, c.n);
    err = run_lists(m1, &c, 0, 0, &r1, msg, sizeof msg);
    CHECK(err == 0, "%s", msg);
    err = run_lists(m2, &c, 0, 0, &r2, msg, sizeof msg);
    CHECK(err == 0, "%s", msg);
    CHECK(fabs(r1.E - r2.E) <= 1e-13 * (1 + fabs(r1.E))
              && max_rel(c.n, r1.pe, r2.pe) <= 1e-13
              && max_rel(3 * c.n, r1.F, r2.F) <= 1e-12
              && max_rel(6, r1.vir, r2.vir) <= 1e-12,
          "%s: v2 with the window off and no saturation differs from v1: "
          "dE %.1e dF %.1e",
          exprs[e], fabs(r1.E - r2.E), max_rel(3 * c.n, r1.F, r2.F));
    result_free(&r1);
    result_free(&r2);
    config_free(&c);
    compot_destroy(m1);
    compot_destroy(m2);
  }
}

/* ---- kernels ------------------------------------------------------------ */

static void test_kernels(void)
{
  double g, u, x, dx, xp, xm, dd;
  double gs[] = {-1.0, -0.3, 1e-8, 0.0, 0.7, 1.0};
  size_t i;
  /* x(gamma, u): value against the direct formula, C1 at u = +-1, FD */
  for (i = 0; i < sizeof gs / sizeof gs[0]; ++i) {
    g = gs[i];
    for (u = -2.5; u <= 2.5; u += 0.125) {
      compot_exp_feature(g, u, 0.0, &x, &dx);
      CHECK(fabs(x - ref_x(g, u)) <= 1e-14 * (1 + fabs(x)),
            "x(%g,%g) = %.17g, direct %.17g", g, u, x, ref_x(g, u));
      compot_exp_feature(g, u + 1e-6, 0.0, &xp, &dd);
      compot_exp_feature(g, u - 1e-6, 0.0, &xm, &dd);
      CHECK(fabs((xp - xm) / 2e-6 - dx) <= 1e-7 * (1 + fabs(dx)),
            "x'(%g,%g)", g, u);
    }
    compot_exp_feature(g, 1.0, 0.0, &x, &dx);
    compot_exp_feature(g, 1.0 + 1e-12, 0.0, &xp, &dd);
    CHECK(fabs(xp - x) < 1e-11 && fabs(dd - dx) < 1e-10, "C1 at u=1");
    compot_exp_feature(g, -1.0, 0.0, &x, &dx);
    compot_exp_feature(g, -1.0 - 1e-12, 0.0, &xm, &dd);
    CHECK(fabs(xm - x) < 1e-11 && fabs(dd - dx) < 1e-10, "C1 at u=-1");
  }
  /* cutoff: 1 at 0, 0 with three vanishing derivatives at r_c */
  {
    double fc, dfc, f1, d1;
    compot_cutoff_fn(0.0, 5.0, &fc, &dfc);
    CHECK(fc == 1.0 && dfc == 0.0, "f_c(0)");
    compot_cutoff_fn(5.0 - 1e-4, 5.0, &fc, &dfc);
    CHECK(fabs(fc) < 1e-14 && fabs(dfc) < 1e-10, "f_c near r_c: %g %g", fc,
          dfc);
    compot_cutoff_fn(5.0, 5.0, &f1, &d1);
    CHECK(f1 == 0.0 && d1 == 0.0, "f_c(r_c)");
    compot_cutoff_fn(2.3, 5.0, &fc, &dfc);
    CHECK(fabs(fc - ref_fc(2.3, 5.0)) < 1e-15, "f_c(2.3)");
  }
  /* ZBL: values against the LAMMPS formula written out, and independent
     numbers for Nb-Nb (Z = 41), r_in = 1.6, r_out = 2.4 */
  {
    compot_zbl z;
    double d[4], zze[1], sw[5], dphi, v;
    double rs[] = {0.5, 1.0, 1.6, 2.0, 2.39};
    z.d = d;
    z.zze = zze;
    z.sw = sw;
    compot_zbl_setup(&z, 0, 41, 41, 1.6, 2.4);
    for (i = 0; i < sizeof rs / sizeof rs[0]; ++i) {
      double vp, vm;
      v = compot_zbl_pair(&z, 0, 1.6, 2.4, rs[i], &dphi);
      CHECK(fabs(v - ref_zbl(41, 41, 1.6, 2.4, rs[i])) <= 1e-12 * (1 + fabs(v)),
            "zbl(%g)", rs[i]);
      vp = compot_zbl_pair(&z, 0, 1.6, 2.4, rs[i] + 1e-6, &dd);
      vm = compot_zbl_pair(&z, 0, 1.6, 2.4, rs[i] - 1e-6, &dd);
      CHECK(fabs((vp - vm) / 2e-6 - dphi) <= 1e-6 * (1 + fabs(dphi)),
            "zbl'(%g)", rs[i]);
    }
    v = compot_zbl_pair(&z, 0, 1.6, 2.4, 2.4 - 1e-4, &dphi);
    CHECK(fabs(v) < 1e-9 && fabs(dphi) < 1e-6, "zbl smooth at r_out");
    v = compot_zbl_pair(&z, 0, 1.6, 2.4, 2.4, &dphi);
    CHECK(v == 0.0 && dphi == 0.0, "zbl zero at r_out");
    /* unshifted ZBL at 1 A for Z = 41: 41^2 * 14.399645 * sum c e^(-d r/a) */
    v = compot_zbl_pair(&z, 0, 1.6, 2.4, 1.0, &dphi) - sw[4];
    CHECK(fabs(v - ref_zbl_raw(41, 41, 1.0, 0)) < 1e-10, "zbl raw");
  }
}

/* Format v2 kernels: the saturating continuation of x(gamma, u) (value,
   derivative, C2 at |u| = 1, bound) and the inner window (value, derivative,
   C3 ends). */
static void test_kernels_v2(void)
{
  double gs[] = {-1.0, -0.3, 1e-8, 0.0, 0.7, 1.0}, taus[] = {0.05, 0.3, 2.0};
  size_t i, t;
  for (t = 0; t < sizeof taus / sizeof taus[0]; ++t)
    for (i = 0; i < sizeof gs / sizeof gs[0]; ++i) {
      double g = gs[i], tau = taus[t], u, x, dx, xp, xm, dp, dm, h = 1e-6;
      for (u = -4.0; u <= 4.0; u += 0.0625) {
        compot_exp_feature(g, u, tau, &x, &dx);
        CHECK(fabs(x - ref_xt(g, u, tau)) <= 1e-14 * (1 + fabs(x)),
              "x(%g,%g; tau %g) = %.17g, direct %.17g", g, u, tau, x,
              ref_xt(g, u, tau));
        compot_exp_feature(g, u + h, tau, &xp, &dp);
        compot_exp_feature(g, u - h, tau, &xm, &dm);
        CHECK(fabs((xp - xm) / (2 * h) - dx) <= 1e-7 * (1 + fabs(dx)),
              "x'(%g,%g; tau %g): %.17g vs %.17g", g, u, tau, dx,
              (xp - xm) / (2 * h));
      }
      for (u = -1.0; u <= 1.0; u += 2.0) {
        /* C2 at |u| = 1: x, x' and x'' = gamma e^(gamma u) from both sides */
        double s = u, e = exp(g * u), x0, d0, d1, d2;
        compot_exp_feature(g, u, tau, &x0, &d0);
        compot_exp_feature(g, u + s * 1e-12, tau, &xp, &dp);
        CHECK(fabs(xp - x0) < 1e-11 && fabs(dp - d0) < 1e-10,
              "C1 at u = %g (tau %g)", u, tau);
        /* one-sided differences of x' over h: error ~ h x''', and x''' of
           the continuation is about -2 e / tau^2 */
        h = 1e-7;
        compot_exp_feature(g, u + s * h, tau, &x, &d1);
        compot_exp_feature(g, u - s * h, tau, &x, &d2);
        CHECK(fabs((d1 - d0) / (s * h) - g * e) < 1e-6 + 4 * h * e / (tau * tau)
                  && fabs((d0 - d2) / (s * h) - g * e) < 1e-6 + 4 * h * e,
              "C2 at u = %g (gamma %g, tau %g): x'' %.9g | %.9g, expected %.9g",
              u, g, tau, (d0 - d2) / (s * h), (d1 - d0) / (s * h), g * e);
        h = 1e-6;
        /* bounded: |x - x(g, u_b)| <= e tau + |g| e tau^2 / 2, and x' -> 0 */
        compot_exp_feature(g, u * 1e6, tau, &x, &dx);
        CHECK(fabs(x - x0) <= e * tau + fabs(g) * e * tau * tau / 2 + 1e-12
                  && fabs(dx) < 1e-12,
              "x(%g, %g; tau %g) = %g not bounded (x' %g)", g, u * 1e6, tau,
              x, dx);
      }
    }
  /* the inner window: 0 below r_a, 1 above r_b, C3 steps, derivative */
  {
    double ra = 1.5, rb = 2.25, r, sv, ds, sp, sm, d;
    compot_inner_window(1.0, ra, rb, &sv, &ds);
    CHECK(sv == 0.0 && ds == 0.0, "s_in below r_a");
    compot_inner_window(ra, ra, rb, &sv, &ds);
    CHECK(sv == 0.0 && ds == 0.0, "s_in(r_a)");
    compot_inner_window(rb, ra, rb, &sv, &ds);
    CHECK(sv == 1.0 && ds == 0.0, "s_in(r_b)");
    compot_inner_window(3.0, ra, rb, &sv, &ds);
    CHECK(sv == 1.0 && ds == 0.0, "s_in above r_b");
    /* 35 t^4 and 140 t^3 / (r_b - r_a) at t = 1e-4 / 0.75 */
    compot_inner_window(ra + 1e-4, ra, rb, &sv, &ds);
    CHECK(sv < 2e-14 && ds < 1e-9, "s_in C3 at r_a: %g %g", sv, ds);
    compot_inner_window(rb - 1e-4, ra, rb, &sv, &ds);
    CHECK(1.0 - sv < 2e-14 && ds < 1e-9, "s_in C3 at r_b: %g %g", sv, ds);
    compot_inner_window(2.0, 2.0, 2.0, &sv, &ds);
    CHECK(sv == 1.0 && ds == 0.0, "s_in with r_a = r_b, at r_b");
    compot_inner_window(1.999, 2.0, 2.0, &sv, &ds);
    CHECK(sv == 0.0 && ds == 0.0, "s_in with r_a = r_b, below");
    for (r = 1.45; r < 2.3; r += 0.01) {
      compot_inner_window(r, ra, rb, &sv, &ds);
      compot_inner_window(r + 1e-6, ra, rb, &sp, &d);
      compot_inner_window(r - 1e-6, ra, rb, &sm, &d);
      CHECK(fabs((sp - sm) / 2e-6 - ds) < 1e-7, "s_in'(%g)", r);
      CHECK(sv >= 0.0 && sv <= 1.0, "s_in(%g) = %g", r, sv);
      if (r > ra && r < rb)
        CHECK(fabs(sv - (1.0 - ref_fc(r - ra, rb - ra))) < 1e-14, "s_in(%g)", r);
    }
  }
}

/* ---- parser tests ------------------------------------------------------- */

/* Significant (name, value) lines of a file, comments removed. */
static int significant_lines(char const *text, char names[][96],
                             char values[][64], int max)
{
  int n = 0;
  char const *p = text;
  while (*p && n < max) {
    char line[512], *h;
    size_t len = strcspn(p, "\n");
    if (len >= sizeof line) len = sizeof line - 1;
    memcpy(line, p, len);
    line[len] = '\0';
    p += strcspn(p, "\n");
    if (*p) ++p;
    h = strchr(line, '#');
    if (h) *h = '\0';
    names[n][0] = values[n][0] = '\0';
    if (sscanf(line, "%95s %63s", names[n], values[n]) >= 1) ++n;
  }
  return n;
}

static void test_handwritten(char const *file, char const *expr,
                             int n_params)
{
  char path[512], out1[512], out2[512], msg[512];
  compot_model *m = NULL, *m2 = NULL;
  int err;
  path_join(path, sizeof path, data_dir, file);
  err = compot_create(&m, path, msg, sizeof msg);
  CHECK(err == 0, "read %s: %s", file, msg);
  if (err) return;
  CHECK(strcmp(compot_expression(m), expr) == 0, "expression '%s'",
        compot_expression(m));
  CHECK(m->n_values == n_params, "%s: %d parameters", file, m->n_values);
  snprintf(out1, sizeof out1, "%s/rt1_%s", tmp_dir, file);
  snprintf(out2, sizeof out2, "%s/rt2_%s", tmp_dir, file);
  err = compot_write(m, out1, msg, sizeof msg);
  CHECK(err == 0, "write: %s", msg);
  err = compot_create(&m2, out1, msg, sizeof msg);
  CHECK(err == 0, "re-read: %s", msg);
  if (!err) {
    char *t0, *t1, *t2;
    static char n0[1000][96], v0[1000][64], n1[1000][96], v1[1000][64];
    int k0, k1, i;
    err = compot_write(m2, out2, msg, sizeof msg);
    CHECK(err == 0, "write 2: %s", msg);
    t0 = read_text(path);
    t1 = read_text(out1);
    t2 = read_text(out2);
    CHECK(t1 && t2 && strcmp(t1, t2) == 0, "%s: second write differs", file);
    /* same names, order and values as the hand-written file */
    k0 = significant_lines(t0, n0, v0, 1000);
    k1 = significant_lines(t1, n1, v1, 1000);
    CHECK(k0 == k1, "%s: %d vs %d significant lines", file, k0, k1);
    for (i = 6; i < k0 && i < k1 - 1; ++i) {
      CHECK(strcmp(n0[i], n1[i]) == 0, "%s: name %d '%s' vs '%s'", file, i,
            n0[i], n1[i]);
      CHECK(strtod(v0[i], NULL) == strtod(v1[i], NULL), "%s: value of %s",
            file, n0[i]);
    }
    free(t0);
    free(t1);
    free(t2);
    compot_destroy(m2);
  }
  compot_destroy(m);
}

/*
 * The bound behind compot_grade_screen (format v2): for a whitening factor
 * with eigenvalues spread over four decades (fitted ones: six), the
 * stored directions v_j and weights w_j are eigenpairs of A = U^T U
 * (gamma of f - mu = t v_j is (a_max - w_j) t^2), the screen proves
 * gamma <= gamma_lo for such an atom at half gamma_lo, and on random
 * vectors of every size it never claims gamma <= gamma_lo for an atom
 * whose exact gamma is larger.
 */
static void test_grade_screen(void)
{
  static char const *const exprs[] = {"E[G8L4] + A[G8P4] + ZBL(1.6, 2.4)",
                                      "G4 * G4", "E[C2L3] + N[E[G3L1]]"};
  static char const *const sp[] = {"Mo", "Nb", "Ta"};
  size_t e;
  int S;
  long proved = 0, refused = 0;
  for (S = 1; S <= 3; S += 2)
    for (e = 0; e < sizeof exprs / sizeof exprs[0]; ++e) {
      compot_model *m = random_model_v2(exprs[e], sp, S, 1.0, 1.1);
      compot_ctx c;
      char msg[512];
      int d, dp, sk, Z, i, j, t, k;
      double *buf;
      if (m == NULL) continue;
      d = m->grade_d;
      for (Z = 0; Z < S; ++Z) { /* U lower triangular, rows of scale 10^(2 r/d) */
        double *u = m->g_U + (size_t) Z * d * (d + 1) / 2;
        for (i = 0; i < d; ++i)
          for (j = 0; j <= i; ++j)
            *u++ = pow(10.0, 2.0 * i / d)
                   * (i == j ? urand(1.0, 2.0) : urand(-1.0, 1.0) / sqrt((double) d));
        m->g_lo[Z] = urand(0.5, 2.0);
        m->g_hi[Z] = 9.0 * m->g_lo[Z];
      }
      for (i = 0; i < S * d; ++i) m->g_mu[i] = urand(-1.0, 1.0);
      CHECK(compot_refresh(m, msg, sizeof msg) == 0, "refresh: %s", msg);
      dp = m->grade_dp;
      sk = m->grade_sk;
      buf = (double *) calloc(2 * (size_t) dp, sizeof(double));
      memset(&c, 0, sizeof c);
      c.m = m;
      c.gf = buf;
      c.gy = buf + dp;
      for (Z = 0; Z < S; ++Z) {
        double const *mu = m->g_mu + (size_t) Z * d, lo = m->g_lo[Z];
        double amax = m->g_samax[Z];
        CHECK(amax > 0.0, "%s: no bound for species %d", exprs[e], Z);
        for (j = 0; j < sk; ++j) { /* eigenpairs: f - mu = t v_j at gamma = lo / 2 */
          double const *v = m->g_sv + ((size_t) Z * sk + j) * dp;
          double aj = amax - m->g_sw[(size_t) Z * sk + j], tt = sqrt(0.5 * lo / aj), g;
          CHECK(j == 0 || m->g_sw[(size_t) Z * sk + j] <= m->g_sw[(size_t) Z * sk + j - 1],
                "%s: directions not widest first", exprs[e]);
          for (t = 0; t < d; ++t) c.gf[t] = mu[t] + tt * v[t];
          compot_grade_delta(&c, Z);
          k = compot_grade_screen(&c, Z);
          g = compot_grade(&c, Z);
          CHECK(fabs(g - 0.5 * lo) <= 1e-12 * d * amax * tt * tt,
                "%s: direction %d: gamma %.17g, expected a_j t^2 = %.17g", exprs[e], j, g, 0.5 * lo);
          CHECK(k == 1, "%s: direction %d at gamma_lo / 2 not proved inside", exprs[e], j);
        }
        for (i = 0; i < 2000; ++i) { /* random f - mu of every size */
          double scale = sqrt(lo / amax) * pow(10.0, urand(-1.0, 3.0)), g;
          for (t = 0; t < d; ++t) c.gf[t] = mu[t] + scale * urand(-1.0, 1.0);
          compot_grade_delta(&c, Z);
          k = compot_grade_screen(&c, Z);
          g = compot_grade(&c, Z);
          proved += k;
          refused += !k;
          CHECK(!k || g <= lo * (1.0 + 1e-12),
                "%s: screen proved gamma <= gamma_lo = %.17g, exact gamma %.17g", exprs[e], lo, g);
        }
      }
      free(buf);
      compot_destroy(m);
    }
  CHECK(proved > 100 && refused > 100, "random vectors: %ld proved inside, %ld not", proved, refused);
  printf("grade bound: %ld random atoms proved inside gamma_lo, %ld left to the exact grade\n",
         proved, refused);
}

static void test_roundtrip(void)
{
  static char const *const exprs[] = {
      "G8", "C40", "E[G8L4]", "N[E[G8L4]]", "A[G8P4]",
      "E[G8L4] + N[E[G8L4]] + ZBL(1.6, 2.4)", "G4 * G4",
      "(G2 + C3 + G2) * (A[C2P3] + E[C2L2]) + N[E[G3L1]]",
      "G2 * (G3 * (G4 * E[C2L3]))"};
  static char const *const sp[] = {"Mo", "Nb", "Ta"};
  size_t e;
  int S, version;
  for (version = 1; version <= 2; ++version)
  for (S = 1; S <= 3; ++S)
    for (e = 0; e < sizeof exprs / sizeof exprs[0]; ++e) {
      compot_model *m = version == 1 ? random_model(exprs[e], sp, S)
                                     : random_model_v2(exprs[e], sp, S, 1.0, 1.1),
                   *m2 = NULL;
      char p1[512], p2[512], msg[512];
      int err, i, k;
      if (m == NULL) continue;
      if (version == 2) { /* a grade with every value different */
        int i2, Z;
        size_t tri = (size_t) m->grade_d * (m->grade_d + 1) / 2;
        for (i2 = 0; i2 < S * m->grade_d; ++i2) m->g_mu[i2] = urand(-1.0, 1.0);
        for (i2 = 0; i2 < (int) (S * tri); ++i2) m->g_U[i2] = urand(-1.0, 1.0);
        for (Z = 0; Z < S; ++Z) {
          m->g_lo[Z] = urand(0.5, 2.0);
          m->g_hi[Z] = m->g_lo[Z] + urand(0.5, 2.0);
        }
        CHECK(compot_refresh(m, msg, sizeof msg) == 0, "refresh: %s", msg);
      }
      snprintf(p1, sizeof p1, "%s/roundtrip_a.params", tmp_dir);
      snprintf(p2, sizeof p2, "%s/roundtrip_b.params", tmp_dir);
      err = compot_write(m, p1, msg, sizeof msg);
      CHECK(err == 0, "write: %s", msg);
      err = compot_create(&m2, p1, msg, sizeof msg);
      CHECK(err == 0, "read back %s: %s", exprs[e], msg);
      if (!err) {
        char *a, *b;
        CHECK(m2->n_values == m->n_values, "count");
        for (i = 0; i < m->n_values; ++i)
          CHECK(memcmp(&m->values[i], &m2->values[i], sizeof(double)) == 0,
                "%s: value %d not bit-identical", exprs[e], i);
        err = compot_write(m2, p2, msg, sizeof msg);
        a = read_text(p1);
        b = read_text(p2);
        CHECK(a && b && strcmp(a, b) == 0, "%s: rewrite differs", exprs[e]);
        free(a);
        free(b);
        /* KIM names are identifiers; extents add up */
        for (i = 0, k = 0; i < compot_n_params(m2); ++i) {
          compot_param const *p = compot_param_at(m2, i);
          size_t j;
          int ok = !(p->name[0] >= '0' && p->name[0] <= '9');
          for (j = 0; p->name[j]; ++j)
            if (!(p->name[j] == '_' || (p->name[j] >= 'a' && p->name[j] <= 'z')
                  || (p->name[j] >= 'A' && p->name[j] <= 'Z')
                  || (p->name[j] >= '0' && p->name[j] <= '9')))
              ok = 0;
          CHECK(ok, "KIM name '%s'", p->name);
          CHECK(p->description && strstr(p->description, "unit")
                    && strstr(p->description, "role"),
                "description of %s", p->name);
          k += p->extent;
        }
        CHECK(k == m2->n_values, "extents");
        compot_destroy(m2);
      }
      compot_destroy(m);
    }
}

/* Parameter counts of MODEL_SPEC section 4 (one species). */
static void test_counts(void)
{
  static struct {
    char const *expr;
    int lin, nonlin;
  } const rows[] = {{"G8", 9, 2},
                    {"C40", 41, 0},
                    {"E[G8L4]", 33, 6},
                    {"N[E[G8L4]]", 33, 6},
                    {"G4 * G4", 11, 4},
                    {"G8 * E[G4L8]", 43, 12},
                    {"G10 * E[G8L4]", 45, 8},
                    {"E[G6L5] + N[E[G6L5]]", 61, 12},
                    {"E[G8L4] + N[E[G8L4]]", 65, 10},
                    {"G8 + A[G8P4]", 49, 2},
                    {"E[G8L4] + A[G8P4] + ZBL(1.6, 2.4)", 73, 6}};
  static char const *const sp[] = {"Nb"};
  size_t r;
  for (r = 0; r < sizeof rows / sizeof rows[0]; ++r) {
    compot_model *m = NULL;
    char msg[256];
    int lin = 0, non = 0, i;
    if (compot_create_blank(&m, rows[r].expr, sp, 1, 5.0, msg, sizeof msg)) {
      CHECK(0, "%s: %s", rows[r].expr, msg);
      continue;
    }
    for (i = 0; i < compot_n_params(m); ++i) {
      compot_param const *p = compot_param_at(m, i);
      if (p->role == COMPOT_ROLE_LINEAR) lin += p->extent;
      if (p->role == COMPOT_ROLE_NONLINEAR) non += p->extent;
    }
    CHECK(lin == rows[r].lin && non == rows[r].nonlin,
          "%s: %d linear %d nonlinear, expected %d %d", rows[r].expr, lin,
          non, rows[r].lin, rows[r].nonlin);
    compot_destroy(m);
  }
}

/* Lines of a text, for mutation. */
typedef struct lines {
  int n;
  char *l[2000];
} lines;

static void split_lines(char const *text, lines *ls)
{
  char const *p = text;
  ls->n = 0;
  while (*p && ls->n < 2000) {
    size_t len = strcspn(p, "\n");
    ls->l[ls->n] = (char *) malloc(len + 64);
    memcpy(ls->l[ls->n], p, len);
    ls->l[ls->n][len] = '\0';
    ls->n++;
    p += len;
    if (*p) ++p;
  }
}

static void free_lines(lines *ls)
{
  int i;
  for (i = 0; i < ls->n; ++i) free(ls->l[i]);
}

static int find_line(lines const *ls, char const *prefix)
{
  int i;
  for (i = 0; i < ls->n; ++i)
    if (strncmp(ls->l[i], prefix, strlen(prefix)) == 0) return i;
  return -1;
}

/* Write lines [0, upto) to file, read it, expect failure with a message
   naming the file and containing sub1, sub2 and sub3 (NULL: none). */
static void expect_bad(lines const *ls, int upto, char const *file,
                       char const *sub1, char const *sub2, char const *sub3)
{
  char const *subs[3];
  char path[512], msg[1024], *text;
  size_t cap = 1, used = 0;
  int i, err;
  compot_model *m = NULL;
  for (i = 0; i < upto; ++i) cap += strlen(ls->l[i]) + 1;
  text = (char *) malloc(cap);
  for (i = 0; i < upto; ++i) {
    size_t len = strlen(ls->l[i]);
    memcpy(text + used, ls->l[i], len);
    text[used + len] = '\n';
    used += len + 1;
  }
  text[used] = '\0';
  snprintf(path, sizeof path, "%s/%s", tmp_dir, file);
  write_text(path, text);
  free(text);
  msg[0] = '\0';
  err = compot_create(&m, path, msg, sizeof msg);
  CHECK(err != 0 && m == NULL, "%s: accepted", file);
  CHECK(strstr(msg, file) != NULL, "%s: message lacks the file name: %s",
        file, msg);
  subs[0] = sub1;
  subs[1] = sub2;
  subs[2] = sub3;
  for (i = 0; i < 3; ++i)
    if (subs[i] != NULL)
      CHECK(strstr(msg, subs[i]) != NULL, "%s: message lacks '%s': %s", file,
            subs[i], msg);
  if (m != NULL) compot_destroy(m);
}

/* Bad files made from a good one (data/bad_lines.txt, one a line:
   "version | LINE | AT | AFTER | TEXT | file | SUB1 | SUB2"): the first line
   starting with LINE replaced by TEXT ("\\n" a line break); the reader must
   reject the file with a message naming the file, the line (the first
   starting with AT, "-": the replaced one; plus AFTER) and containing SUB1
   and SUB2 ("-": none). */
static table_row bad_lines[MAX_ROWS];
static int n_bad_lines = 0;

static void read_bad_lines(void)
{
  char path[512];
  int k;
  path_join(path, sizeof path, data_dir, "bad_lines.txt");
  n_bad_lines = read_table(path, 8, 8, bad_lines);
  for (k = 0; k < n_bad_lines; ++k) { /* TEXT: "\\n" a line break */
    char *esc = strstr(bad_lines[k][4], "\\n");
    if (esc != NULL) {
      esc[0] = '\n';
      memmove(esc + 1, esc + 2, strlen(esc + 2) + 1);
    }
  }
  CHECK(n_bad_lines >= 30, "%s: %d rows", path, n_bad_lines);
}

static void expect_bad_lines(lines *ls, int version)
{
  int k;
  for (k = 0; k < n_bad_lines; ++k) {
    char (*mu)[160] = bad_lines[k];
    int idx = find_line(ls, mu[1]);
    int at = (strcmp(mu[2], "-") ? find_line(ls, mu[2]) : idx) + atoi(mu[3]);
    char loc[32], *saved;
    if (atoi(mu[0]) != version) continue;
    CHECK(idx >= 0, "%s: no line '%s'", mu[5], mu[1]);
    if (idx < 0) continue;
    saved = ls->l[idx];
    ls->l[idx] = mu[4];
    snprintf(loc, sizeof loc, ":%d: ", at + 1);
    expect_bad(ls, ls->n, mu[5], loc, mu[6], strcmp(mu[7], "-") ? mu[7] : NULL);
    ls->l[idx] = saved;
  }
}

static void test_bad_files(void)
{
  static char const *const sp[] = {"Nb"};
  compot_model *m = random_model("E[G2L2] + N[E[G2L2]] + ZBL(1.6, 2.4)", sp, 1);
  char path[512], msg[256], *good;
  lines ls;
  int ip, iv, ie, ipar, iend, err;

  snprintf(path, sizeof path, "%s/good.params", tmp_dir);
  err = compot_write(m, path, msg, sizeof msg);
  CHECK(err == 0, "write good: %s", msg);
  good = read_text(path);
  split_lines(good, &ls);
  free(good);
  iv = find_line(&ls, "compot-params");
  ie = find_line(&ls, "expression");
  ipar = find_line(&ls, "parameters");
  ip = find_line(&ls, "b1.beta");
  iend = find_line(&ls, "end");
  CHECK(iv >= 0 && ie >= 0 && ipar >= 0 && ip >= 0 && iend >= 0,
        "layout of the written file");
  if (iv < 0 || ie < 0 || ipar < 0 || ip < 0 || iend < 0) return;

  /* truncated */
  expect_bad(&ls, ip + 3, "bad_truncated.params", "file ends at line",
             "after 4 of 19 parameters", NULL);
  /* missing end */
  expect_bad(&ls, iend, "bad_noend.params", "file ends at line", "'end'", NULL);

  /* one line replaced (table BAD_LINES) */
  expect_bad_lines(&ls, 1);


  /* file that does not exist */
  {
    compot_model *m2 = NULL;
    err = compot_create(&m2, "/nonexistent/x.params", msg, sizeof msg);
    CHECK(err == COMPOT_ERR_IO && strstr(msg, "/nonexistent/x.params"),
          "missing file: %s", msg);
  }
  /* refresh rejects values set out of range through the table */
  {
    compot_param const *p = compot_param_at(m, 0);
    double keep = p->values[0];
    p->values[0] = -1.0;
    err = compot_refresh(m, msg, sizeof msg);
    CHECK(err == COMPOT_ERR_VALUE && strstr(msg, "b1.alpha"),
          "refresh: %s", msg);
    p->values[0] = keep;
    CHECK(compot_refresh(m, msg, sizeof msg) == 0, "refresh restored");
  }
  free_lines(&ls);
  compot_destroy(m);
}

/* Bad format v2 files: the window rules and the domains of the new
   blocks, each message naming the file, the line, expected and found. */
static void test_bad_files_v2(void)
{
  static char const *const sp[] = {"Mo", "Nb"};
  compot_model *m = random_model_v2("E[G2L2] + A[G2P1] + ZBL(1.6, 2.4)", sp, 2,
                                    1.2, 1.5);
  char path[512], msg[256], *good;
  lines ls;
  int itau, ira, irb, iq, ie, iu, ilo, ihi;
  if (m == NULL) return;
  snprintf(path, sizeof path, "%s/good_v2.params", tmp_dir);
  CHECK(compot_write(m, path, msg, sizeof msg) == 0, "write good v2: %s", msg);
  good = read_text(path);
  split_lines(good, &ls);
  CHECK(strstr(good, "compot-params 2\n") != NULL, "written as v2");
  free(good);
  itau = find_line(&ls, "w.tau");
  ira = find_line(&ls, "w.r_a.Mo.Nb");
  irb = find_line(&ls, "w.r_b.Mo.Nb");
  iq = find_line(&ls, "n2.q_max.Mo.Nb.2.1");
  ie = find_line(&ls, "w.e_ref.Mo");
  iu = find_line(&ls, "g.U.Mo.2.1");
  ilo = find_line(&ls, "g.gamma_lo.Mo");
  ihi = find_line(&ls, "g.gamma_hi.Mo");
  CHECK(itau >= 0 && ira > itau && irb > ira && ie > irb && iq > ie
            && find_line(&ls, "b1.alpha") > ie
            && find_line(&ls, "n2.c.Mo.Mo.Mo.1.0") > iq
            && find_line(&ls, "g.mu.Mo.1") > find_line(&ls, "n2.c.Nb.Nb.Nb.2.1")
            && iu > find_line(&ls, "g.mu.Nb.1") && ilo > iu && ihi > ilo
            && find_line(&ls, "g.gamma_hi.Nb") == ls.n - 2,
        "layout of the written v2 file");
  if (itau < 0 || ira < 0 || irb < 0 || iq < 0 || ie < 0 || iu < 0 || ilo < 0
      || ihi < 0) {
    free_lines(&ls);
    compot_destroy(m);
    return;
  }
  /* one line replaced (table BAD_LINES) */
  expect_bad_lines(&ls, 2);
  /* refresh checks the window rules on values set through the table */
  {
    double keep = m->w_r_b[1];
    m->w_r_b[1] = 2.0;
    CHECK(compot_refresh(m, msg, sizeof msg) == COMPOT_ERR_VALUE
              && strstr(msg, "w.r_b.Mo.Nb") && strstr(msg, "r_in = 1.6"),
          "refresh, r_b > r_in: %s", msg);
    m->w_r_b[1] = keep;
    m->w_r_a[1] = keep + 0.1;
    CHECK(compot_refresh(m, msg, sizeof msg) == COMPOT_ERR_VALUE
              && strstr(msg, "w.r_b.Mo.Nb") && strstr(msg, "r_a <= r_b"),
          "refresh, r_a > r_b: %s", msg);
    m->w_r_a[1] = keep - 0.5;
    *m->w_tau = 0.0;
    CHECK(compot_refresh(m, msg, sizeof msg) == COMPOT_ERR_VALUE
              && strstr(msg, "w.tau") && strstr(msg, "tau > 0"),
          "refresh, tau 0: %s", msg);
    *m->w_tau = 0.5;
    CHECK(compot_refresh(m, msg, sizeof msg) == 0, "refresh restored: %s", msg);
    m->g_hi[1] = m->g_lo[1];
    CHECK(compot_refresh(m, msg, sizeof msg) == COMPOT_ERR_VALUE
              && strstr(msg, "g.gamma_hi.Nb") && strstr(msg, "gamma_hi > gamma_lo"),
          "refresh, gamma_hi = gamma_lo: %s", msg);
    m->g_hi[1] = 2.0 * m->g_lo[1];
    m->g_lo[0] = 0.0;
    CHECK(compot_refresh(m, msg, sizeof msg) == COMPOT_ERR_VALUE
              && strstr(msg, "g.gamma_lo.Mo") && strstr(msg, "gamma_lo > 0"),
          "refresh, gamma_lo 0: %s", msg);
    m->g_lo[0] = 1.0;
    CHECK(compot_refresh(m, msg, sizeof msg) == 0, "refresh restored: %s", msg);
  }
  free_lines(&ls);
  compot_destroy(m);
}

static void test_model_info(void)
{
  static char const *const sp[] = {"Nb"};
  compot_model *m = random_model("E[G2L2] + N[E[G2L2]]", sp, 1);
  compot_model *g = random_model("G3 + A[G3P2]", sp, 1);
  if (m == NULL || g == NULL) return;
  CHECK(compot_influence_distance(m) == 10.0, "influence distance 2 r_c");
  CHECK(compot_needs_ghost_neighbors(m) == 1, "needs ghost neighbours");
  CHECK(compot_influence_distance(g) == 5.0, "influence distance r_c");
  CHECK(compot_needs_ghost_neighbors(g) == 0, "no ghost neighbours");
  CHECK(m->n_bases == 1 && g->n_bases == 1, "basis sharing in a sum");
  compot_destroy(g);
  g = random_model("G3 * G3", sp, 1);
  CHECK(g && g->n_bases == 2, "a product's factors never share");
  compot_destroy(g);
  g = random_model("G3 + (G3 + C3) + G4", sp, 1);
  CHECK(g && g->n_nodes == 5 && g->n_bases == 3, "flattened sum shares");
  compot_destroy(g);
  compot_destroy(m);
}

/* One file of the bad-file corpus (see the usage note at the top). */
static void test_corpus_file(char const *path)
{
  char first[512], msg[4096], where[64];
  char const *text;
  size_t n = strlen(path);
  int line = 0, err;
  compot_model *m = NULL;
  FILE *fp = fopen(path, "rb");
  if (fp == NULL || fgets(first, sizeof first, fp) == NULL) {
    CHECK(0, "%s: cannot read the expect line", path);
    if (fp != NULL) fclose(fp);
    return;
  }
  fclose(fp);
  first[strcspn(first, "\r\n")] = '\0';
  err = compot_create(&m, path, msg, sizeof msg);
  if (strcmp(first, "# expect ok") == 0) {
    CHECK(err == 0 && m != NULL, "%s: rejected: %s", path, msg);
    compot_destroy(m);
    return;
  }
  text = strstr(first, ": ");
  if (sscanf(first, "# expect line %d:", &line) != 1 || text == NULL) {
    CHECK(0, "%s: first line '%s'; expected '# expect ok' or '# expect "
             "line N: TEXT'", path, first);
    compot_destroy(m);
    return;
  }
  text += 2;
  CHECK(err != 0 && m == NULL, "%s: accepted; expected line %d: %s", path,
        line, text);
  if (err == 0) {
    compot_destroy(m);
    return;
  }
  /* "path:N: ..." or "path: file ends at line N..." */
  snprintf(where, sizeof where, ":%d: ", line);
  if (strncmp(msg, path, n) == 0 && strncmp(msg + n, where, strlen(where)))
    snprintf(where, sizeof where, ": file ends at line %d", line);
  CHECK(strncmp(msg, path, n) == 0
            && strncmp(msg + n, where, strlen(where)) == 0,
        "%s: message names another line than %d: %s", path, line, msg);
  CHECK(strstr(msg, text) != NULL, "%s: message lacks '%s': %s", path, text,
        msg);
}

int main(int argc, char **argv)
{
  int i;
  if (argc > 1) data_dir = argv[1];
  if (argc > 2) tmp_dir = argv[2];
  for (i = 3; i < argc; ++i) test_corpus_file(argv[i]);
  read_registry();
  read_bad_lines();
  test_kernels();
  test_kernels_v2();
  test_counts();
  test_model_info();
  test_handwritten("nb_e_n_zbl.params",
                   "E[G2L2] + N[E[G2L2]] + ZBL(1.6, 2.4)", 19);
  test_handwritten("mo_nb_g_times_a.params", "G2 * A[C2P1]", 56);
  test_handwritten("nb_v2_e_a_zbl.params", "E[G2L2] + A[G2P1] + ZBL(1.6, 2.4)", 71);
  test_handwritten("mo_nb_v2_g_times_a.params", "G2 * A[C2P1]", 385);
  test_roundtrip();
  test_grade_screen();
  test_bad_files();
  test_bad_files_v2();
  test_compute_errors();
  test_compute(1);
  test_compute(2);
  test_nonfinite();
  test_half_lists(1);
  test_half_lists(2);
  test_v2_reduces_to_v1();
  printf("%d checks, %d failures\n", n_checks, n_failures);
  return n_failures ? 1 : 0;
}
