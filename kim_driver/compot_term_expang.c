/*
 * compot_term_expang.c -- the exponentiated angular leaves
 * E[A[<basis>P<P>]L<L>]: the bounded exponentiated feature x(gamma, u) of
 * MODEL_SPEC 3 (compot_exp_feature) applied to the normalised invariants of
 * the angular term (compot_term_angular.c), forward, backward and table.
 *
 *   e(i) = sum_{s1<=s2} sum_l sum_k sum_p c[Z,(s1,s2),l,k,p]
 *                                   x(gamma_l, q_kp^(s1 s2)(i) / q_max[s1 s2][k][p])
 *
 * with q the raw invariants of the A leaf (compot_angular_invariants) and
 * q_max a fixed scale stored in formats v1 and v2; x is continued
 * quadratically past |u| = 1 in v1 and saturating in v2, so that in v2 the
 * features are bounded as the A leaf's are.  The grade's features of the
 * leaf are the x, in the order (pair, l, k, p) of its c block.  The
 * backward step takes dx/du as the value step kept it in the leaf's block
 * (compot_angular_kept).
 */
#include "compot_eval.h"

#include <string.h>

/* Size of the table of an E[A] leaf: gamma_l and
   compot_exp_feature_ginv(gamma_l), each repeated over the K (P+1)
   invariants of one channel pair (L K (P+1) each, so that the features of a
   channel pair are one call of compot_exp_feature_v), then 1/q_max of the np
   K (P+1) invariants. */
size_t compot_expang_table_size(compot_model const *m, compot_node const *nd)
{
  size_t np = (size_t) compot_nch(m) * (compot_nch(m) + 1) / 2; /* channel pairs */
  size_t nkp = (size_t) nd->K * (nd->P + 1);
  return 2 * (size_t) nd->L * nkp + np * nkp;
}

void compot_expang_table_fill(compot_model const *m, compot_node *nd)
{
  int S = compot_nch(m), L = nd->L, l;
  size_t nkp = (size_t) nd->K * (nd->P + 1), lk = (size_t) L * nkp, o;
  size_t nq = (size_t) (S * (S + 1) / 2) * nkp, k;
  double *out = nd->tab;
  for (l = 0; l < L; ++l) {
    double g = nd->gamma[l], gi = compot_exp_feature_ginv(g);
    for (o = 0; o < nkp; ++o) {
      out[(size_t) l * nkp + o] = g;
      out[lk + (size_t) l * nkp + o] = gi;
    }
  }
  for (k = 0; k < nq; ++k) out[2 * lk + k] = 1.0 / nd->q_max[k];
}

/* The features of channel pair q at the current atom: u = q_kp / q_max for
   every (l, k, p) into u, then x(gamma_l, u) and dx/du into x, dx (each L
   K (P+1) long, order l, k, p), in one call. */
static void pair_features(compot_ctx const *c, compot_node const *nd,
                          double const *qq, double const *qi, double *u,
                          double *x, double *dx)
{
  size_t nkp = (size_t) nd->K * (nd->P + 1), lk = (size_t) nd->L * nkp, l, o;
  for (l = 0; l < (size_t) nd->L; ++l)
    for (o = 0; o < nkp; ++o) u[l * nkp + o] = qq[o] * qi[o];
  compot_exp_feature_v((int) lk, nd->tab, nd->tab + lk, u, c->tau, x, dx);
}

/* Scratch of pair_features after the np max_K (max_P+1) invariants in
   c->eaq (compot_workspace.c sizes it). */
static double *feature_scratch(compot_ctx const *c, int np)
{
  return c->eaq + (size_t) np * c->m->max_K * ((size_t) c->m->max_P + 1);
}

/* E[A] leaf at atom i: the raw invariants from the angular moments in mom
   (into c->eaq), the value, and dx/du of the features kept in the leaf's
   block blk for the backward step; the features x to gf (order q, l, k,
   p) unless NULL. */
double compot_expang_value(compot_ctx *c, compot_node const *nd, int i,
                           double const *mom, double *blk, double *gf)
{
  int S = compot_nch(c->m), L = nd->L, np = S * (S + 1) / 2;
  int Z = c->in->species[i], q;
  size_t nkp = (size_t) nd->K * (nd->P + 1), lk = (size_t) L * nkp, o;
  double const *qinv = nd->tab + 2 * lk;
  double *qv = c->eaq, *u = feature_scratch(c, np), *x = u + lk;
  double *kept = blk + compot_angular_kept(c, nd);
  double e = 0.0;

  compot_angular_invariants(c, nd, mom, qv);
  for (q = 0; q < np; ++q) {
    /* coefficients of rows (q, l), l < L: consecutive, order l, k, p */
    double const *cc = nd->c + ((size_t) Z * np + q) * lk;
    pair_features(c, nd, qv + (size_t) q * nkp, qinv + (size_t) q * nkp, u, x,
                  c->want_grad ? kept + (size_t) q * lk : x + lk);
    for (o = 0; o < lk; ++o) e += cc[o] * x[o];
    if (gf != NULL)
      for (o = 0; o < lk; ++o) gf[(size_t) q * lk + o] = x[o];
  }
  return e;
}

/* Adds to qbar the adjoints dE/dq_kp of the raw invariants of an E[A]
   leaf at atom i with adjoint a (and, format v2, the adjoints gb of its
   grade features unless NULL): sum_l (a c_lkp + gb_lkp) dx/du(gamma_l,
   q_kp/q_max) / q_max with dx/du as the value step kept it in blk. */
void compot_expang_qbar(compot_ctx const *c, compot_node const *nd, int i,
                        double a, double const *blk, double const *gb,
                        double *qbar)
{
  int S = compot_nch(c->m), L = nd->L, np = S * (S + 1) / 2;
  int Z = c->in->species[i], q, l;
  size_t nkp = (size_t) nd->K * (nd->P + 1), lk = (size_t) L * nkp, o;
  double const *qinv = nd->tab + 2 * lk;
  double const *kept = blk + compot_angular_kept(c, nd);

  for (q = 0; q < np; ++q) {
    double const *cc = nd->c + ((size_t) Z * np + q) * lk;
    double const *qi = qinv + (size_t) q * nkp, *dx = kept + (size_t) q * lk;
    double const *bb = gb != NULL ? gb + (size_t) q * lk : NULL;
    double *qb = qbar + (size_t) q * nkp;
    for (l = 0; l < L; ++l)
      for (o = 0; o < nkp; ++o) {
        size_t r = (size_t) l * nkp + o;
        double w = a * cc[r] + (bb != NULL ? bb[r] : 0.0);
        qb[o] += w * dx[r] * qi[o];
      }
  }
}

/* E[A] leaf at atom i with adjoint a and feature adjoints gb: its
   compot_expang_qbar, then the A leaf's backward step through the moments
   in mom (compot_angular_invariant_backward). */
void compot_expang_backward(compot_ctx *c, compot_node const *nd, int i,
                            double a, double const *mom, double const *blk,
                            double const *gb)
{
  int S = compot_nch(c->m);
  memset(c->aqs, 0, (size_t) (S * (S + 1) / 2) * nd->K * (nd->P + 1) * sizeof(double));
  compot_expang_qbar(c, nd, i, a, blk, gb, c->aqs);
  compot_angular_invariant_backward(c, nd, i, c->aqs, mom);
}
