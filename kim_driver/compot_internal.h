/*
 * compot_internal.h -- data structures shared by the files of the compot C
 * core (not part of the public API; hosts include compot_core.h only).
 */
#ifndef COMPOT_INTERNAL_H
#define COMPOT_INTERNAL_H

#include "compot_core.h"

#include <stdarg.h>
#include <stdint.h>

/* Node kinds; they mirror the Python term classes one to one. */
enum compot_node_kind {
  COMPOT_NODE_SUM = 0,     /* n-ary sum  X + Y + ...           */
  COMPOT_NODE_PRODUCT = 1, /* binary product X * Y             */
  COMPOT_NODE_LINEAR = 2,  /* G<K> / C<K>                      */
  COMPOT_NODE_EXP = 3,     /* E[<basis>L<L>]                   */
  COMPOT_NODE_NEXP = 4,    /* N[E[<basis>L<L>]]                */
  COMPOT_NODE_ANGULAR = 5, /* A[<basis>P<P>]                   */
  COMPOT_NODE_ZBL = 6,     /* ZBL(r_in, r_out)                 */
  COMPOT_NODE_EXPANG = 7   /* E[A[<basis>P<P>]L<L>]            */
};

enum compot_basis_kind {
  COMPOT_BASIS_GAUSSIAN = 0, /* G<K>: exp(-alpha beta^(k-1) r^2) f_c(r) */
  COMPOT_BASIS_CHEBYSHEV = 1 /* C<K>: T_(k-1)(2r/r_c - 1) f_c(r)        */
};

/* Limits of the expression and of the model size (docs/parameter-file.md,
   "Limits"); fitting/compot/expression.py enforces the same numbers. */
#define COMPOT_MAX_K 10000
#define COMPOT_MAX_L 10000
#define COMPOT_MAX_P 40
#define COMPOT_MAX_DEPTH 200      /* nesting of parentheses */
#define COMPOT_MAX_TERMS 200      /* terms (leaves, ZBL included) */
#define COMPOT_MAX_VALUES 1000000 /* parameter values of a model */

typedef struct compot_basis {
  int kind; /* enum compot_basis_kind */
  int K;
  double rt; /* cutoff of its leaves' '@r_t' (issue 13), 0: the model's r_c */
  /* parameters (pointers into model->values) */
  double *alpha;   /* [1] Gaussian only, else NULL */
  double *beta;    /* [1] Gaussian only, else NULL */
  double *w;       /* [S*r] species embedding W[s][c] (model rank r > 0),
                      NULL for the full chemistry (W = I) */
  double *phi_max; /* [C*K], C = compot_nch: channels */
  double *rho_max; /* [C*K] */
  /* derived in refresh */
  double *a; /* [K] a_k = alpha beta^(k-1) (Gaussian) */
  /* use, fixed at creation */
  int need_phi; /* used by a G/C, E or N leaf */
  int need_rho; /* used by an N leaf */
  int need_ang; /* used by an A leaf */
} compot_basis;

typedef struct compot_zbl {
  /* per species pair (si*S + sj), derived in refresh, as LAMMPS pair_style zbl */
  double *d;   /* [4*S*S] screening exponents d_n / a_ij */
  double *zze; /* [S*S] Z_i Z_j qqr2e */
  double *sw;  /* [5*S*S] switching coefficients sw1..sw5 */
} compot_zbl;

typedef struct compot_node {
  int kind;   /* enum compot_node_kind */
  int parent; /* -1 for the root */
  int n_children;
  int *children;
  int basis; /* index into model->bases, -1 if none */
  int K, L, P;
  double r_in, r_out; /* ZBL */
  double rt;          /* term cutoff '@r_t' of a fitted leaf, 0 if none */
  /* parameters (pointers into model->values), NULL if absent */
  double *gamma; /* [L] */
  double *q_max; /* [np K (P+1)] A leaves of format v2 and E[A] leaves,
                    np = S(S+1)/2 */
  double *c;     /* coefficients, layout of docs/parameter-file.md */
  double *shift; /* [S] */
  /* derived in refresh: the coefficient table of an E, N or A leaf, made
     by its term (compot_exp_table_fill, compot_angular_table_fill), NULL
     for other nodes */
  double *tab;
  /* format v2, fitted leaves (those with c): offset of the leaf's features
     in the feature vector f of the extrapolation grade, else -1 */
  int foff;
  /* A and E[A] leaves: the leaf whose per-atom block holds the angular
     moments this leaf reads -- the highest-numbered A or E[A] leaf on the
     same basis with the same P, evaluated first and stepped back last, so
     that the moments are made once and their backward step is taken once
     per atom (compot_tree.c) -- and whether that group has more than one
     leaf; -1 and 0 for other nodes */
  int ang_owner, ang_shared;
  compot_zbl zbl;
  char spec[64]; /* canonical text of the term, e.g. "E[G8L4]" */
} compot_node;

struct compot_model {
  int version;      /* parameter file format, 1 or 2 (MODEL_SPEC 10) */
  char *expression; /* expression text as read */
  /* species embedding (docs/parameter-file.md): rank r in 1..S, its
     value chemistry.rank (pointer into values); 0 and NULL for the full
     chemistry, one neighbour channel per species */
  int rank;
  double *chem_rank;
  int n_species;
  char (*species)[4];
  int *z; /* atomic numbers */
  double cutoff;
  int n_bases;
  compot_basis *bases;
  int n_nodes;
  compot_node *nodes;
  int n_params;
  compot_param *params;
  int n_values;
  double *values;  /* every parameter value in file order */
  double *derived; /* storage of derived arrays */
  /* format v2 (NULL in v1): saturation width and inner window per species
     pair s1 <= s2 (pointers into values) */
  double *w_tau;   /* [1] */
  double *w_r_a;   /* [np] */
  double *w_r_b;   /* [np] */
  double *w_e_ref; /* [S] reference site energy E_ref of a switched-off atom */
  double *w_e_min; /* [S] (format v3) lowest fitted site energy of the data:
                      below it V_fit saturates (compot_bounded_fit) */
  /* derived in refresh: r_a and r_b per ordered species pair (Z_i S +
     Z_j); the largest r_b (0: no pair is windowed, always so in v1) */
  double *win;     /* [2 S S] */
  double win_rb_max;
  /* derived in refresh: the coefficients of the real harmonics up to
     max_P (compot_real_harmonics_coef) */
  double *ylm_coef; /* [3 compot_n_lm(max_P)] */
  /* format v2: the extrapolation grade gamma = |U_Z (f - mu_Z)|^2 of the
     feature vector f (d entries: every fitted leaf's features for the
     centre species, leaves in node order; node foff), pointers into values */
  int grade_d;      /* d */
  double *g_mu;     /* [S d] */
  double *g_U;      /* [S d(d+1)/2] lower triangle, packed rows */
  double *g_lo;     /* [S] gamma_lo */
  double *g_hi;     /* [S] gamma_hi */
  double *g_nmin;   /* [S] (format v4) lowest coordination n of the data:
                      below it gamma grows (compot_coordination_term) */
  /* derived in refresh (compot_grade_rows_fill): U_Z by blocks of 8 rows,
     column by column (block b holds U_rc for rows r = 8b..8b+7 and
     columns c < 8b + 8 at 8 c + r - 8b, zero where c > r or r >= d;
     blocks 64-byte aligned), and whether U_Z != 0 (an unfitted grade, U
     = 0, is gamma = 0: the switch stays 1) */
  double *g_rows;   /* [S grade_rows] */
  size_t grade_rows; /* doubles per species in g_rows: 32 nb (nb + 1) */
  int grade_dp;     /* d rounded up to a multiple of 8 (nb = dp / 8) */
  int *grade_on;    /* [S] */
  /* derived in refresh (compot_grade_screen_fill): the bound of
     compot_grade_screen.  With A_Z = U_Z^T U_Z = sum_j a_j v_j v_j^T and
     a_max its largest eigenvalue, gamma = a_max |f - mu|^2 - sum_j (a_max -
     a_j) (v_j . (f - mu))^2, so stopping the sum after any k directions
     bounds gamma from above; the directions with the largest a_max - a_j
     (the data's widest) first, grade_sk of them per species (d / 4
     rounded up), each padded to dp.  g_samax[Z] = 0: no bound for Z. */
  int grade_sk;
  double *g_sv;     /* [S sk dp] v_j */
  double *g_sw;     /* [S sk] a_max - a_j */
  double *g_samax;  /* [S] a_max */
  /* structure: the ZBL terms of the top-level sum (never switched) */
  int n_zbl_root;
  int zbl_root[COMPOT_MAX_TERMS];
  int nvp;         /* (max_P + 1)^2 rounded up to a multiple of 4 */
  int has_nexp;
  int has_angular;
  int max_K;
  int max_P;
  double influence_distance;
};

/*
 * Four double lanes for the hot kernels (angular term): GCC/Clang vector
 * extension where available (AVX or 2 x SSE2 code, as the target allows),
 * else a plain array.  Lanes are combined only element-wise, so results do
 * not depend on the representation.
 */
#if defined(__GNUC__)
/* the helpers are static and inlined: no ABI is involved, whatever the
   target's vector units (GCC warns otherwise when AVX is off) */
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef double compot_v4 __attribute__((vector_size(32)));
/* (macros, not functions: no vector is passed by value, so that the
   copies of the kernels for another target (COMPOT_HOT) and the baseline
   ones share them without ABI notes) */
#define v4_load(p)                                                           \
  (__extension__({                                                           \
    compot_v4 v4_l_;                                                         \
    __builtin_memcpy(&v4_l_, (p), sizeof v4_l_);                             \
    v4_l_;                                                                   \
  }))
#define v4_store(p, v)                                                       \
  (__extension__({                                                           \
    compot_v4 v4_s_ = (v);                                                   \
    __builtin_memcpy((p), &v4_s_, sizeof v4_s_);                             \
  }))
#define v4_set1(x)                                                           \
  (__extension__({                                                           \
    double v4_x_ = (x);                                                      \
    (compot_v4){v4_x_, v4_x_, v4_x_, v4_x_};                                 \
  }))
#define v4_madd(a, b, c) ((a) * (b) + (c))
#define v4_mul(a, b) ((a) * (b))
#define v4_add(a, b) ((a) + (b))
#define v4_sub(a, b) ((a) - (b))
/* lane masks: all bits set in the lanes where |a| > 1 (false for NaN),
   combined with m4_or and tested with m4_any */
typedef long long compot_m4 __attribute__((vector_size(32)));
#define v4_outside1(a)                                                       \
  (__extension__({                                                           \
    compot_v4 v4_o_ = (a);                                                   \
    (compot_m4) ((v4_o_ > v4_set1(1.0)) | (v4_o_ < v4_set1(-1.0)));          \
  }))
#define m4_zero() ((compot_m4){0, 0, 0, 0})
#define m4_or(a, b) ((a) | (b))
#define m4_any(m)                                                            \
  (__extension__({                                                           \
    compot_m4 m4_a_ = (m);                                                   \
    ((m4_a_[0] | m4_a_[1]) | (m4_a_[2] | m4_a_[3])) != 0;                    \
  }))
#define v4_sum(a)                                                            \
  (__extension__({                                                           \
    compot_v4 v4_a_ = (a);                                                   \
    (v4_a_[0] + v4_a_[1]) + (v4_a_[2] + v4_a_[3]);                           \
  }))
/* {v4_sum(a), v4_sum(b), v4_sum(c), v4_sum(d)} with the same additions */
#if defined(__clang__)
#define v4_sum4(a, b, c, d)                                                  \
  (__extension__({                                                           \
    compot_v4 v4_a_ = (a), v4_b_ = (b), v4_c_ = (c), v4_d_ = (d);            \
    compot_v4 v4_ab_ = __builtin_shufflevector(v4_a_, v4_b_, 0, 4, 2, 6)     \
                       + __builtin_shufflevector(v4_a_, v4_b_, 1, 5, 3, 7);  \
    compot_v4 v4_cd_ = __builtin_shufflevector(v4_c_, v4_d_, 0, 4, 2, 6)     \
                       + __builtin_shufflevector(v4_c_, v4_d_, 1, 5, 3, 7);  \
    __builtin_shufflevector(v4_ab_, v4_cd_, 0, 1, 4, 5)                      \
        + __builtin_shufflevector(v4_ab_, v4_cd_, 2, 3, 6, 7);               \
  }))
#else
typedef long long compot_i4 __attribute__((vector_size(32)));
/* ab = (a0+a1, b0+b1, a2+a3, b2+b3), cd likewise */
#define v4_sum4(a, b, c, d)                                                  \
  (__extension__({                                                           \
    compot_v4 v4_a_ = (a), v4_b_ = (b), v4_c_ = (c), v4_d_ = (d);            \
    compot_i4 const v4_ev_ = {0, 4, 2, 6}, v4_od_ = {1, 5, 3, 7};            \
    compot_i4 const v4_lo_ = {0, 1, 4, 5}, v4_hi_ = {2, 3, 6, 7};            \
    compot_v4 v4_ab_ = __builtin_shuffle(v4_a_, v4_b_, v4_ev_)               \
                       + __builtin_shuffle(v4_a_, v4_b_, v4_od_);            \
    compot_v4 v4_cd_ = __builtin_shuffle(v4_c_, v4_d_, v4_ev_)               \
                       + __builtin_shuffle(v4_c_, v4_d_, v4_od_);            \
    __builtin_shuffle(v4_ab_, v4_cd_, v4_lo_)                                \
        + __builtin_shuffle(v4_ab_, v4_cd_, v4_hi_);                         \
  }))
#endif
/* c[k][l] = r[l][k]: the transpose of 4 rows of 4 lanes */
static inline void v4_transpose(compot_v4 const r[4], compot_v4 c[4])
{
#if defined(__clang__)
  compot_v4 t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 2, 6);
  compot_v4 t1 = __builtin_shufflevector(r[0], r[1], 1, 5, 3, 7);
  compot_v4 t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 2, 6);
  compot_v4 t3 = __builtin_shufflevector(r[2], r[3], 1, 5, 3, 7);
  c[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
  c[1] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
  c[2] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
  c[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
#else
  typedef long long compot_i4 __attribute__((vector_size(32)));
  compot_i4 const even = {0, 4, 2, 6}, odd = {1, 5, 3, 7};
  compot_i4 const lo = {0, 1, 4, 5}, hi = {2, 3, 6, 7};
  compot_v4 t0 = __builtin_shuffle(r[0], r[1], even), t1 = __builtin_shuffle(r[0], r[1], odd);
  compot_v4 t2 = __builtin_shuffle(r[2], r[3], even), t3 = __builtin_shuffle(r[2], r[3], odd);
  c[0] = __builtin_shuffle(t0, t2, lo);
  c[1] = __builtin_shuffle(t1, t3, lo);
  c[2] = __builtin_shuffle(t0, t2, hi);
  c[3] = __builtin_shuffle(t1, t3, hi);
#endif
}
#else
typedef struct compot_v4 {
  double x[4];
} compot_v4;
static inline compot_v4 v4_load(double const *p)
{
  compot_v4 v;
  int i;
  for (i = 0; i < 4; ++i) v.x[i] = p[i];
  return v;
}
static inline void v4_store(double *p, compot_v4 v)
{
  int i;
  for (i = 0; i < 4; ++i) p[i] = v.x[i];
}
static inline compot_v4 v4_set1(double x)
{
  compot_v4 v;
  int i;
  for (i = 0; i < 4; ++i) v.x[i] = x;
  return v;
}
static inline compot_v4 v4_madd(compot_v4 a, compot_v4 b, compot_v4 c)
{
  int i;
  for (i = 0; i < 4; ++i) c.x[i] = a.x[i] * b.x[i] + c.x[i];
  return c;
}
static inline compot_v4 v4_mul(compot_v4 a, compot_v4 b)
{
  int i;
  for (i = 0; i < 4; ++i) a.x[i] *= b.x[i];
  return a;
}
static inline compot_v4 v4_add(compot_v4 a, compot_v4 b)
{
  int i;
  for (i = 0; i < 4; ++i) a.x[i] += b.x[i];
  return a;
}
static inline compot_v4 v4_sub(compot_v4 a, compot_v4 b)
{
  int i;
  for (i = 0; i < 4; ++i) a.x[i] -= b.x[i];
  return a;
}
typedef struct compot_m4 {
  int x[4];
} compot_m4;
static inline compot_m4 v4_outside1(compot_v4 a)
{
  compot_m4 m;
  int i;
  for (i = 0; i < 4; ++i) m.x[i] = (a.x[i] > 1.0) | (a.x[i] < -1.0);
  return m;
}
static inline compot_m4 m4_zero(void)
{
  compot_m4 m = {{0, 0, 0, 0}};
  return m;
}
static inline compot_m4 m4_or(compot_m4 a, compot_m4 b)
{
  int i;
  for (i = 0; i < 4; ++i) a.x[i] |= b.x[i];
  return a;
}
static inline int m4_any(compot_m4 m)
{
  return (m.x[0] | m.x[1]) | (m.x[2] | m.x[3]);
}
static inline double v4_sum(compot_v4 a)
{
  return (a.x[0] + a.x[1]) + (a.x[2] + a.x[3]);
}
static inline void v4_transpose(compot_v4 const r[4], compot_v4 c[4])
{
  int k, l;
  for (k = 0; k < 4; ++k)
    for (l = 0; l < 4; ++l) c[k].x[l] = r[l].x[k];
}
static inline compot_v4 v4_sum4(compot_v4 a, compot_v4 b, compot_v4 c, compot_v4 d)
{
  compot_v4 r;
  r.x[0] = v4_sum(a);
  r.x[1] = v4_sum(b);
  r.x[2] = v4_sum(c);
  r.x[3] = v4_sum(d);
  return r;
}
#endif

#if defined(__GNUC__)
#define COMPOT_ALWAYS_INLINE __attribute__((always_inline))
#else
#define COMPOT_ALWAYS_INLINE
#endif

/*
 * COMPOT_HOT marks the hot kernels.  A build for the baseline of x86-64
 * (no -march: the portable default of the plugin and the KIM driver)
 * carries three copies of each, for x86-64-v4 (AVX-512), x86-64-v3 (AVX2
 * and FMA: the 4-lane kernels in one register, fused multiply-add) and the
 * baseline, and the loader picks the first the CPU runs (GCC function
 * multiversioning, an ifunc), so the portable build runs at about the
 * speed of a -march=native one.  The copies differ by rounding only (fused
 * multiply-add), as ARCH builds do.  Off with -DCOMPOT_NO_DISPATCH, with
 * compilers other than GCC >= 12 on x86-64 ELF with glibc, and when the
 * baseline already has AVX2 (-march=native on such a machine).
 */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12             \
    && defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__)        \
    && !defined(__AVX2__) && !defined(COMPOT_NO_DISPATCH)
#define COMPOT_HOT                                                           \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define COMPOT_HOT
#endif

/* p rounded up to a multiple of 64 bytes (within 7 doubles) */
static inline double *compot_align64(double *p)
{
  size_t mis = (size_t) ((uintptr_t) p % 64) / sizeof(double);
  return mis ? p + (8 - mis) : p;
}

/* Neighbour channels of every basis: the species (full chemistry), or the
   rank r of the species embedding, phi_k^(c)(i) = sum_j W[Z_j][c] g^_k(r_ij). */
static inline int compot_nch(compot_model const *m)
{
  return m->rank > 0 ? m->rank : m->n_species;
}

/* Index of the species pair (s1 <= s2), s1-major. */
static inline int compot_pair_index(int S, int s1, int s2)
{
  return s1 * S - s1 * (s1 - 1) / 2 + (s2 - s1);
}

/* compot_model.c */
void compot_set_msg(char *msg, size_t msg_size, char const *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int compot_symbol_to_z(char const *symbol);
/* Format v2: the rules tying r_b of species pair q to r_a, r_c and ZBL
   r_in; NULL, or buf with "what; expected X, found Y". */
char const *compot_window_error(compot_model const *m, int q, double r_b,
                                char *buf, size_t n);
/* The rule tying beta of Gaussian basis b to alpha and K (alpha
   beta^(K-1) finite); NULL, or buf with the condition. */
char const *compot_exponent_error(compot_model const *m, int b, double beta,
                                  char *buf, size_t n);
/* Format v2: the rule tying gamma_hi of species Z to gamma_lo; NULL, or
   buf with the expected condition ("gamma_hi > gamma_lo = X"). */
char const *compot_grade_error(compot_model const *m, int Z, double hi,
                               char *buf, size_t n);

/* compot_params.c: build the parameter table and storage from the tree;
   the condition a value of block p violates ("alpha > 0"), or NULL. */
int compot_build_params(compot_model *model, char *msg, size_t msg_size);
void compot_free_params(compot_model *model);
char const *compot_value_domain_error(compot_param const *p, double v);

/* compot_io.c: the species (checked; message without file prefix) and the
   rule r_out <= r_c of ZBL terms, shared by the reader and blank models */
int compot_set_species(compot_model *m, char const *const *syms, int n,
                       char *msg, size_t msg_size);
int compot_check_zbl_cutoff(compot_model const *m, char *msg,
                            size_t msg_size);

/* compot_expr.c: parse an expression into model->nodes / model->bases
   (structure only; parameter pointers are bound later).  On error fills msg
   with "what at column c; expected ..." (no file prefix). */
int compot_parse_expression(compot_model *model, char const *text, char *msg,
                            size_t msg_size);
/* compot_expr.c: length of the longest prefix of s that is a decimal number
   of the file format, [+-]? (d+ (. d*)? | . d+) ([eE] [+-]? d+)? (the sign
   only when allow_sign), 0 if none.  No hexadecimal, inf or nan: strtod
   accepts those, the format does not. */
int compot_decimal_span(char const *s, int allow_sign);

/* compot_kernels.c: the scalar functions (value and derivative) */
void compot_cutoff_fn(double r, double rc, double *fc, double *dfc);
void compot_cutoff_n(int n, double const *r, double rc_inv, double *fc,
                     double *dfc);
void compot_exp_feature(double gamma, double u, double tau, double *x,
                        double *dx);
double compot_exp_feature_ginv(double gamma);
void compot_exp_feature_v(int n, double const *gamma, double const *ginv,
                          double const *u, double tau, double *x, double *dx);
void compot_inner_window(double r, double r_a, double r_b, double *s,
                         double *ds);
void compot_effective_distance(double r, double r_a, double r_b, double *c,
                               double *dc);
void compot_gaussian_n(compot_basis const *b, int m, double const *r,
                       double const *fc, double const *dfc, double *g,
                       double *dg);
void compot_radial_basis(compot_basis const *b, double rc, double r,
                         double fc, double dfc, double *g, double *dg);

/* compot_harmonics.c: the real harmonics of the angular term */
int compot_n_lm(int P);
void compot_real_harmonics_coef(int P, double *coef);
void compot_real_harmonics(int n, double const *ux, double const *uy,
                           double const *uz, int P, double const *coef,
                           double *Y, double *dY, int stride);

/* compot_term_zbl.c: the ZBL pair function and its coefficients */
double compot_zbl_pair(compot_zbl const *z, int pair, double r_in,
                       double r_out, double r, double *dphi);
void compot_zbl_setup(compot_zbl *z, int pair, double zi, double zj,
                      double r_in, double r_out);

/* Tables of the terms, sized by compot_build_params and made at refresh:
   compot_term_exp.c (E and N leaves), compot_term_angular.c (A leaves),
   compot_term_expang.c (E[A] leaves), compot_switch.c (the grade's padded rows) */
size_t compot_exp_table_size(compot_model const *m, compot_node const *nd);
void compot_exp_table_fill(compot_model const *m, compot_node *nd);
size_t compot_angular_table_size(compot_model const *m, compot_node const *nd);
void compot_angular_table_fill(compot_model const *m, compot_node *nd);
size_t compot_expang_table_size(compot_model const *m, compot_node const *nd);
void compot_expang_table_fill(compot_model const *m, compot_node *nd);
void compot_grade_rows_fill(compot_model *m);
void compot_grade_screen_fill(compot_model *m);

#endif /* COMPOT_INTERNAL_H */
