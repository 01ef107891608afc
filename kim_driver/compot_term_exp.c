/*
 * compot_term_exp.c -- the exponentiated pair-cluster leaves E[<basis>L<L>]
 * (paper Eq. 13) and the E inside N[E[...]] (Eq. 16, on rho instead of
 * phi; compot_term_nexp.c makes rho): MODEL_SPEC 3 and 10.
 *
 *   e(i) = sum_s sum_l sum_k c[Z,s,l,k] x(gamma_l, f_k^(s)(i) / f_max[s][k])
 *
 * over the neighbour channels s (species, or those of a species embedding).
 *
 * with x the bounded exponentiated feature (compot_exp_feature_v) and f
 * = phi (E) or rho (N).  The coefficient table (compot_exp_table_fill, at
 * refresh) holds gamma_l, 1/gamma_l and 1/f_max spread over the features.
 */
#include "compot_eval.h"


/* Size of the table of an E or N leaf: gamma_l and
   compot_exp_feature_ginv(gamma_l) spread over the L K features
   (l-major), then 1/f_max of the S K cluster functions (phi_max or
   rho_max): 2 L K + S K. */
size_t compot_exp_table_size(compot_model const *m, compot_node const *nd)
{
  return 2 * (size_t) nd->L * nd->K + (size_t) compot_nch(m) * nd->K;
}

void compot_exp_table_fill(compot_model const *m, compot_node *nd)
{
  int S = compot_nch(m), K = nd->K, L = nd->L, l, k;
  compot_basis const *b = &m->bases[nd->basis];
  double const *fmax = nd->kind == COMPOT_NODE_NEXP ? b->rho_max : b->phi_max;
  double *out = nd->tab;
  for (l = 0; l < L; ++l) {
    double gi = compot_exp_feature_ginv(nd->gamma[l]);
    for (k = 0; k < K; ++k) {
      out[l * K + k] = nd->gamma[l];
      out[L * K + l * K + k] = gi;
    }
  }
  for (k = 0; k < S * K; ++k) out[2 * L * K + k] = 1.0 / fmax[k];
}

/* The inputs f of the leaf at atom i: phi(i) (E) or rho(i) (N). */
static double const *leaf_input(compot_ctx const *c, compot_node const *nd,
                                int i)
{
  return nd->kind == COMPOT_NODE_NEXP
             ? c->brho[nd->basis]
             : c->bphi[nd->basis] + (size_t) i * compot_nch(c->m) * nd->K;
}

/* The L K features x(gamma_l, f_k/f_max) of one neighbour species (fs:
   its K inputs, ms: their 1/f_max) into x (c->fx unless the grade's
   feature vector takes them), dx/du into c->fdx. */
COMPOT_HOT static void features(compot_ctx *c, compot_node const *nd, double const *fs,
                     double const *ms, double *x)
{
  int K = nd->K, L = nd->L, LK = L * K, k, l;
  for (k = 0; k < K; ++k) c->fu[k] = fs[k] * ms[k];
  for (l = 1; l < L; ++l)
    for (k = 0; k < K; ++k) c->fu[l * K + k] = c->fu[k];
  compot_exp_feature_v(LK, nd->tab, nd->tab + LK, c->fu, c->tau, x, c->fdx);
}

/* E and N leaves: e = sum_s sum_l sum_k c[Z,s,l,k] x(gamma_l, f/f_max);
   with gradients, dedf[s K + k] = de/df.  All L K features of one species
   in one batch, written to gf (the grade's features at the leaf, order s,
   l, k) unless NULL. */
COMPOT_HOT double compot_exp_value(compot_ctx *c, compot_node const *nd, int i,
                        double *dedf, double *gf)
{
  int S = compot_nch(c->m), K = nd->K, L = nd->L, LK = L * K, Z = c->in->species[i];
  int s, k, l;
  double const *f = leaf_input(c, nd, i);
  double const *minv = nd->tab + 2 * LK;
  double e = 0.0;
  for (s = 0; s < S; ++s) {
    double const *cs = nd->c + (size_t) (Z * S + s) * LK;
    double const *ms = minv + s * K;
    double *x = gf != NULL ? gf + s * LK : c->fx;
    features(c, nd, f + s * K, ms, x);
    e += compot_dot(LK, cs, x);
    if (dedf != NULL) {
      double *ds = dedf + s * K;
      for (k = 0; k < K; ++k) {
        double acc = 0.0;
        for (l = 0; l < L; ++l) acc += cs[l * K + k] * c->fdx[l * K + k];
        ds[k] = acc * ms[k];
      }
    }
  }
  return e;
}

/* Format v2: the adjoints gb[s L K + l K + k] of the features x(gamma_l,
   f_sk/f_max) (through the grade switch) turned into adjoints of f:
   fbar[s K + k] += sum_l gb dx/du / f_max.  The features are recomputed
   as in compot_exp_value (only atoms in the grade's transition get here). */
static void grade_backward(compot_ctx *c, compot_node const *nd, int i,
                           double const *gb, double *fbar)
{
  int S = compot_nch(c->m), K = nd->K, L = nd->L, LK = L * K, s, k, l;
  double const *f = leaf_input(c, nd, i);
  double const *minv = nd->tab + 2 * LK;
  for (s = 0; s < S; ++s) {
    double const *ms = minv + s * K, *bs = gb + s * LK;
    features(c, nd, f + s * K, ms, c->fx);
    for (k = 0; k < K; ++k) {
      double acc = 0.0;
      for (l = 0; l < L; ++l) acc += bs[l * K + k] * c->fdx[l * K + k];
      fbar[s * K + k] += acc * ms[k];
    }
  }
}

/* E and N leaves with adjoint a: dE/df += a de/df (dedf of the value
   step) into lambda(i) (E) or nu(i) (N), plus the grade's feature
   adjoints gb unless NULL. */
COMPOT_HOT void compot_exp_backward(compot_ctx *c, compot_node const *nd, int i,
                         double a, double const *dedf, double const *gb)
{
  int k, SK = compot_nch(c->m) * nd->K;
  double *fbar = nd->kind == COMPOT_NODE_EXP
                     ? c->blam[nd->basis] + (size_t) i * SK
                     : c->bnu[nd->basis];
  for (k = 0; k < SK; ++k) fbar[k] += a * dedf[k];
  if (gb != NULL) grade_backward(c, nd, i, gb, fbar);
}
