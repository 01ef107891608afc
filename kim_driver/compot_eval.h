/*
 * compot_eval.h -- state of one evaluation (compot_compute) shared by the
 * files that evaluate a model (not part of the public API).
 *
 * Who does what (MODEL_SPEC 5; the steps of compot_tree.c):
 *   compot_workspace.c   workspace growth and the one layout of the scratch
 *   compot_pairs.c       1. pairs: neighbour pairs, cache slots, effective
 *                           distances of close pairs (format v2)
 *   compot_term_pair.c   2. cluster functions phi (G/C leaves) forward and
 *                           backward
 *   compot_term_exp.c    E leaves (and the E inside N) forward and backward
 *   compot_term_nexp.c   N aggregate rho forward and backward
 *   compot_term_angular.c A leaves forward and backward
 *   compot_term_zbl.c    ZBL leaves
 *   compot_switch.c      format v2 atom switch: inner window and grade
 *   compot_tree.c        3.-6. site values and adjoints over the tree,
 *                           assembly of forces and virials, the API calls
 */
#ifndef COMPOT_EVAL_H
#define COMPOT_EVAL_H

#include "compot_internal.h"

/* Bits of compot_workspace.flag, per particle. */
enum compot_particle_flag {
  COMPOT_PF_CONTRIB = 1, /* contributing: its energy counts */
  COMPOT_PF_SECOND = 2,  /* non-contributing, within r_c of a contributing
                            particle, needs pairs (second hop of N terms) */
  COMPOT_PF_BUILT = 4,   /* its pairs are built (in ws->order) */
  COMPOT_PF_CLOSE = 8    /* format v2: has a pair closer than its r_b */
};

struct compot_workspace {
  size_t n_cap;
  int *pstart;         /* [n] first pair of particle i */
  int *pend;           /* [n] one past its last pair */
  int *pmid;           /* [n] one past its last pair that owns a slot */
  int *order;          /* [n] particles with pairs, in the order built */
  unsigned char *flag; /* [n] enum compot_particle_flag */
  size_t pair_cap;
  int *pj;      /* [np] neighbour index */
  int *ptwin;   /* [np] the pair (j, i) of pair (i, j), or -1 */
  int *pslot;   /* [np] cache slot (shared by twins); the slot holds the
                   geometry of its first direction (the pair in
                   [pstart, pmid) of its particle), the twin's is its
                   mirror image: D_ji = -D_ij */
  size_t list_cap;
  int *tj;      /* [list] positions in the host list of those inside r_c */
  double *td;   /* [4 list] D and |D|^2 of every listed neighbour */
  size_t slot_geo_cap;
  int *sj;      /* [ns] neighbour index (pairs_once) */
  double *sr;   /* [ns] per slot: distance r */
  double *su;   /* [3 ns] unit vector D / r */
  double *sfc;  /* [ns] f_c of the distance the fitted terms see */
  double *sdfc; /* [ns] its derivative (see compot_build_pairs) */
  double *sx;   /* [ns] format v2: that distance c(r) (written only when
                   some pair is closer than its r_b) */
  int *wsl;     /* [ns] format v2: the slots with r < r_b, ascending */
  double *wdc;  /* [ns] and their dc/dr */
  size_t close_cap;
  int *csl;     /* [max_pairs] slots of one atom's pairs closer than r_b */
  size_t arena_cap;
  double *arena; /* every double of the scratch (compot_scratch) */
  size_t ptr_cap;
  double **ptr;  /* per-basis pointers (compot_scratch) */
  double *grade_out; /* [n] the host's array for the extrapolation grade of
                        every contributing particle, or NULL (not owned;
                        compot_workspace_set_grade) */
};

/* Everything one compute call needs, gathered once. */
typedef struct compot_ctx {
  compot_model const *m;
  compot_workspace *ws;
  compot_input const *in;
  compot_exchange const *ex; /* NULL: ghosts have neighbour lists */
  int n, S;
  int want_grad;
  int n_built; /* particles with pairs (ws->order) */
  /* the distinct term cutoffs r_t < r_c of the bases, ascending (issue 13):
     every particle's own pairs [pstart, pmid) and its twins [pmid, pend)
     are each ordered by these levels (compot_build_pairs), so the pairs a
     basis with r_t sees are a prefix of both (compot_seen_pairs) */
  int nlev;
  double lev[COMPOT_MAX_TERMS];
  int n_slots;
  int max_pairs; /* most pairs of one particle */
  /* per basis, NULL if unused */
  double **bphi, **blam; /* [n S K] cluster functions and their adjoints */
  double **bg, **bdg;    /* [n_slots K] cached g^ (A leaves), g^' (gradients) */
  double **brho, **bnu;  /* [S K] rho and nu of the current atom */
  double *st, *sh;       /* [n_slots], [3 n_slots]: T and h of each slot */
  /* per-atom scratch */
  double *V, *adj; /* [n_nodes] */
  double *dedf;    /* [n_nodes S max_K] de/df of E and N leaves */
  double *fu, *fx, *fdx; /* [max_L max_K] feature batch */
  double *bgv, *bdgv;    /* [max_pairs max_K] basis batch */
  double *bfc, *bdfc;    /* [max_pairs] f_c, f_c' of a basis with a term
                            cutoff r_t < r_c (compot_cluster_functions) */
  double *angsum; /* [n_nodes ang_stride] per A leaf and atom, kept from
                     the value to the backward step (compot_angular_value) */
  double *aqbar;  /* [n_nodes ang_qbar] per owner of a shared group of A
                     and E[A] leaves: the adjoints of the group's invariants
                     at the current atom (np K (P+1)), then a flag: some
                     leaf added to them */
  size_t ang_qbar;
  double *aqs;    /* [np max_K (max_P+1)] the same of one leaf (A leaves of
                     format v2 that saturate, E[A] leaves) */
  double *bac;    /* [S K nvp] adjoints of the A sums */
  double *ceff;   /* A leaves, format v2: [np K nvp + np K] coefficients
                     times dx/du of the saturated invariants at one atom;
                     E[A] leaves (v1 and v2): dE/dq spread likewise */
  double *eaq;    /* E[A] leaves: [(np + 3 max_L) max_K (max_P+1)] raw
                     invariants at one atom, then u, x, dx of one channel
                     pair's features, else NULL */
  double tau;     /* saturation width (format v2), 0 in v1 */
  double *selfbar; /* [S K] */
  double *ascr;    /* A leaves: [4 pst] u_x, u_y, u_z of the pairs (value
                      step), rad and GV (backward) */
  size_t ang_stride;
  int pst;  /* max_pairs rounded up to a multiple of 4 */
  int nvp;  /* (max_P+1)^2 rounded up to a multiple of 4 */
  /* format v2 */
  double const *sx; /* [n_slots] distance each slot's pair is seen at by
                       the fitted terms: ws->sr, or ws->sx when some pair
                       is closer than its r_b */
  int n_win;        /* slots with r < r_b (ws->wsl, ws->wdc) */
  double *gf;       /* [dp] the grade's feature vector f of the current atom,
                       then f - mu (zero padded) */
  double *gy, *gz;  /* [dp] U (f - mu), U^T U (f - mu) */
  double *gb;       /* [d] dE/df through the grade switch at the current
                       atom (leaf backward steps add it), or NULL */
  double *cw, *cdw; /* [max_pairs] s_in and s_in' of the close pairs */
} compot_ctx;

static inline int compot_is_contrib(compot_ctx const *c, int i)
{
  return c->ws->flag[i] & COMPOT_PF_CONTRIB;
}

/* Does particle i need basis b evaluated on its pairs?  Contributing
   particles always; ghosts with lists for the second hop of N terms. */
static inline int compot_evaluates(compot_ctx const *c, compot_basis const *B,
                                   int i)
{
  return compot_is_contrib(c, i)
         || (B->need_rho && (c->ws->flag[i] & COMPOT_PF_SECOND));
}

/* The term cutoff of basis B if it is below r_c (its pairs are then a
   prefix of each part of a particle's pairs), else 0. */
static inline double compot_basis_rt(compot_ctx const *c,
                                     compot_basis const *B)
{
  return B->rt > 0.0 && B->rt < c->m->cutoff ? B->rt : 0.0;
}

/* The number of pairs (r < r_t) of particle i that the leaves of basis B
   see, and in *n_own how many of them are its own: its own pairs
   [pstart, pstart + *n_own) and its twins [pmid, pmid + n - *n_own); the
   t-th is compot_seen_pair.  Without a term cutoff every pair, in the
   order pstart .. pend - 1. */
static inline int compot_seen_pairs(compot_ctx const *c,
                                    compot_basis const *B, int i,
                                    int *n_own)
{
  compot_workspace const *ws = c->ws;
  int p0 = ws->pstart[i], pm = ws->pmid[i], pe = ws->pend[i], a, b;
  double rt = compot_basis_rt(c, B);
  if (rt == 0.0) {
    *n_own = pm - p0;
    return pe - p0;
  }
  for (a = p0; a < pm && ws->sr[ws->pslot[a]] < rt; ++a) continue;
  for (b = pm; b < pe && ws->sr[ws->pslot[b]] < rt; ++b) continue;
  *n_own = a - p0;
  return (a - p0) + (b - pm);
}

/* The directed pair of the t-th seen pair of particle i (compot_seen_pairs);
   t < n_own: its own, (i, j) is the slot's first direction */
static inline int compot_seen_pair(compot_workspace const *ws, int i,
                                   int n_own, int t)
{
  return t < n_own ? ws->pstart[i] + t : ws->pmid[i] + (t - n_own);
}

/* sum_k a[k] b[k] with four partial sums (short dependency chains; the
   block of four vectorises) */
static inline double compot_dot(int n, double const *a, double const *b)
{
  double s[4] = {0.0, 0.0, 0.0, 0.0}, r = 0.0;
  int k = 0, v;
  for (; k + 4 <= n; k += 4)
    for (v = 0; v < 4; ++v) s[v] += a[k + v] * b[k + v];
  for (; k < n; ++k) r += a[k] * b[k];
  return ((s[0] + s[1]) + (s[2] + s[3])) + r;
}

/* compot_workspace.c */
int compot_ws_particles(compot_workspace *ws, int n);
int compot_ws_list(compot_workspace *ws, size_t need);
int compot_ws_slots(compot_workspace *ws, size_t need);
int compot_ws_pairs(compot_workspace *ws, size_t need);
/* Size, allocate and carve every scratch array of c (after the pairs are
   built), zeroing those that accumulate. */
int compot_scratch(compot_ctx *c, char *msg, size_t msg_size);

/* compot_pairs.c: step 1 */
int compot_build_pairs(compot_ctx *c, char *msg, size_t msg_size);

/* compot_term_pair.c: phi of every basis (step 2), the G/C leaf, and the
   radial terms of phi on the slots (step 5) */
int compot_cluster_functions(compot_ctx *c, char *msg, size_t msg_size);
double compot_linear_value(compot_ctx const *c, compot_node const *nd, int i,
                           double *gf);
void compot_linear_backward(compot_ctx *c, compot_node const *nd, int i,
                            double a, double const *gb);
int compot_cluster_backward(compot_ctx *c, char *msg, size_t msg_size);

/* compot_term_exp.c: E leaves and the E of N leaves */
double compot_exp_value(compot_ctx *c, compot_node const *nd, int i,
                        double *dedf, double *gf);
void compot_exp_backward(compot_ctx *c, compot_node const *nd, int i,
                         double a, double const *dedf, double const *gb);

/* compot_term_nexp.c: rho of the current atom, and its backward */
void compot_rho_value(compot_ctx *c, int i);
void compot_rho_backward(compot_ctx *c, int i);

/* compot_term_angular.c: A leaves (mom: the block of the leaf's group
   owner with the moments, which the caller makes first with
   compot_angular_moments; blk: the leaf's own block) */
size_t compot_angular_stride(compot_model const *m, int pst);
size_t compot_angular_kept(compot_ctx const *c, compot_node const *nd);
double compot_angular_value(compot_ctx *c, compot_node const *nd, int i,
                            double const *mom, double *blk, double *gf);
void compot_angular_backward(compot_ctx *c, compot_node const *nd, int i,
                             double a, double const *sum, double const *gb);
/* ... and their parts that E[A] leaves share: the sums A, self, Y, grad Y,
   G, dG at atom i into sum; the raw invariants q from them; the backward
   step given the adjoints of the raw invariants (uses c->ceff) */
void compot_angular_moments(compot_ctx *c, compot_node const *nd, int i,
                            double *sum);
void compot_angular_invariants(compot_ctx const *c, compot_node const *nd,
                               double const *sum, double *q);
void compot_angular_invariant_backward(compot_ctx *c, compot_node const *nd,
                                       int i, double const *qbar,
                                       double const *sum);
/* leaves of a shared group (ang_shared): each adds the adjoints of its
   invariants to the group's qbar [np K (P+1)], and the owner, last, takes
   the one backward step (compot_angular_invariant_backward) */
void compot_angular_qbar(compot_ctx const *c, compot_node const *nd, int i,
                         double a, double const *blk, double const *gb,
                         double *qbar);

/* compot_term_expang.c: E[A] leaves */
double compot_expang_value(compot_ctx *c, compot_node const *nd, int i,
                           double const *mom, double *blk, double *gf);
void compot_expang_backward(compot_ctx *c, compot_node const *nd, int i,
                            double a, double const *mom, double const *blk,
                            double const *gb);
void compot_expang_qbar(compot_ctx const *c, compot_node const *nd, int i,
                        double a, double const *blk, double const *gb,
                        double *qbar);

/* compot_term_zbl.c: ZBL leaves; with grad, adds a/2 phi' u */
double compot_zbl_value(compot_ctx *c, compot_node const *nd, int i,
                        double a, int grad);

/* compot_switch.c: format v2 atom switch */
double compot_pair_switch(compot_ctx *c, int i, int *nclose);
void compot_pair_switch_gradient(compot_ctx *c, int n, double coef);
void compot_grade_delta(compot_ctx *c, int Z);
int compot_grade_screen(compot_ctx *c, int Z);
double compot_grade(compot_ctx *c, int Z);
void compot_grade_gradient(compot_ctx *c, int Z, double coef);
double compot_bounded_fit(compot_model const *m, int Z, double v, double *dv);
int compot_coordination_term(compot_ctx const *c, int i, int Z, double *gc,
                             double *dgc);
void compot_coordination_gradient(compot_ctx *c, int i, double coef);
double compot_grade_switch(compot_model const *m, int Z, double gamma,
                           double *ds);

#endif /* COMPOT_EVAL_H */
