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
 * backward step recomputes x and dx/du from the sums the value step left
 * in the leaf's angular block (as compot_term_exp.c's grade step does).
 */
#include "compot_eval.h"

/* Size of the table of an E[A] leaf: gamma_l and
   compot_exp_feature_ginv(gamma_l) (L each), then 1/q_max of the np K
   (P+1) invariants. */
size_t compot_expang_table_size(compot_model const *m, compot_node const *nd)
{
  size_t np = (size_t) compot_nch(m) * (compot_nch(m) + 1) / 2; /* channel pairs */
  return 2 * (size_t) nd->L + np * nd->K * (nd->P + 1);
}

void compot_expang_table_fill(compot_model const *m, compot_node *nd)
{
  int S = compot_nch(m), L = nd->L, l;
  size_t k, nq = (size_t) (S * (S + 1) / 2) * nd->K * (nd->P + 1);
  double *out = nd->tab;
  for (l = 0; l < L; ++l) {
    out[l] = nd->gamma[l];
    out[L + l] = compot_exp_feature_ginv(nd->gamma[l]);
  }
  for (k = 0; k < nq; ++k) out[2 * L + k] = 1.0 / nd->q_max[k];
}

/* x(gamma_l, u) and dx/du of the table's exponent l */
static void feature(compot_ctx const *c, compot_node const *nd, int l,
                    double u, double *x, double *dx)
{
  compot_exp_feature_v(1, nd->tab + l, nd->tab + nd->L + l, &u, c->tau, x,
                       dx);
}

/* E[A] leaf at atom i: the sums of the angular moments into sum (the
   leaf's angular block, kept for the backward step), the raw invariants
   into c->eaq, the value; the features x to gf (order q, l, k, p) unless
   NULL. */
double compot_expang_value(compot_ctx *c, compot_node const *nd, int i,
                           double *sum, double *gf)
{
  int S = compot_nch(c->m), K = nd->K, L = nd->L, P1 = nd->P + 1, np = S * (S + 1) / 2;
  int Z = c->in->species[i], q, l, k, p;
  size_t nkp = (size_t) K * P1;
  double const *qinv = nd->tab + 2 * L;
  double *qv = c->eaq, e = 0.0;

  compot_angular_moments(c, nd, i, sum);
  compot_angular_invariants(c, nd, sum, qv);
  for (q = 0; q < np; ++q)
    for (l = 0; l < L; ++l) {
      size_t row = (size_t) q * L + l;
      double const *cc = nd->c + ((size_t) Z * np * L + row) * nkp;
      double const *qq = qv + (size_t) q * nkp, *qi = qinv + (size_t) q * nkp;
      for (k = 0; k < K; ++k)
        for (p = 0; p < P1; ++p) {
          size_t o = (size_t) k * P1 + p;
          double x, dx;
          feature(c, nd, l, qq[o] * qi[o], &x, &dx);
          e += cc[o] * x;
          if (gf != NULL) gf[row * nkp + o] = x;
        }
    }
  return e;
}

/* E[A] leaf at atom i with adjoint a (and, format v2, the adjoints gb of
   its grade features unless NULL): dE/dq_kp = sum_l (a c_lkp + gb_lkp)
   dx/du(gamma_l, q_kp/q_max) / q_max, then the A leaf's backward step
   through its sums (compot_angular_invariant_backward). */
void compot_expang_backward(compot_ctx *c, compot_node const *nd, int i,
                            double a, double const *sum, double const *gb)
{
  int S = compot_nch(c->m), K = nd->K, L = nd->L, P1 = nd->P + 1, np = S * (S + 1) / 2;
  int Z = c->in->species[i], q, l;
  size_t nkp = (size_t) K * P1, o;
  double const *qinv = nd->tab + 2 * L;
  double *qv = c->eaq, *qbar = c->eaq + (size_t) np * nkp;

  compot_angular_invariants(c, nd, sum, qv);
  for (o = 0; o < (size_t) np * nkp; ++o) qbar[o] = 0.0;
  for (q = 0; q < np; ++q)
    for (l = 0; l < L; ++l) {
      size_t row = (size_t) q * L + l;
      double const *cc = nd->c + ((size_t) Z * np * L + row) * nkp;
      double const *qq = qv + (size_t) q * nkp, *qi = qinv + (size_t) q * nkp;
      double const *bb = gb != NULL ? gb + row * nkp : NULL;
      double *qb = qbar + (size_t) q * nkp;
      for (o = 0; o < nkp; ++o) {
        double x, dx, w = a * cc[o] + (bb != NULL ? bb[o] : 0.0);
        if (w == 0.0) continue;
        feature(c, nd, l, qq[o] * qi[o], &x, &dx);
        qb[o] += w * dx * qi[o];
      }
    }
  compot_angular_invariant_backward(c, nd, i, qbar, sum);
}
