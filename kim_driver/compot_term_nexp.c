/*
 * compot_term_nexp.c -- the neighbour aggregate of N[E[...]] leaves
 * (MODEL_SPEC 3, choice; paper Eq. 16):
 *
 *   rho_k^(s)(i) = sum_(j in N(i)) f_c(r_ij) phi_k^(s)(j)
 *
 * (v2: f_c of the effective distance, compot_pairs.c), the input of the E
 * of an N leaf (compot_term_exp.c), and its backward: with nu(i) =
 * dE/drho(i), lambda(j) += nu(i) f_c(r_ij) for every neighbour j, ghosts
 * included, and the explicit f_c'(r_ij) term adds nu(i).phi(j) f_c' to the
 * slot's T.
 */
#include "compot_eval.h"

/* rho of atom i for every basis an N leaf uses, into c->brho; with
   gradients, nu = 0 in c->bnu for the leaves' backward. */
COMPOT_HOT void compot_rho_value(compot_ctx *c, int i)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int S = compot_nch(m), b, p, k; /* S: neighbour channels */

  for (b = 0; b < m->n_bases; ++b) {
    int SK = S * m->bases[b].K;
    double *rh = c->brho[b];
    if (rh == NULL) continue;

    if (SK == 8) { /* the common case, in registers */
      compot_v4 r0 = v4_set1(0.0), r1 = r0;
      for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
        double const *fj = c->bphi[b] + (size_t) ws->pj[p] * 8;
        compot_v4 fc = v4_set1(ws->sfc[ws->pslot[p]]);
        r0 = v4_madd(fc, v4_load(fj), r0);
        r1 = v4_madd(fc, v4_load(fj + 4), r1);
      }
      v4_store(rh, r0);
      v4_store(rh + 4, r1);
      continue;
    }
    for (k = 0; k < SK; ++k) rh[k] = 0.0;
    for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
      double const *fj = c->bphi[b] + (size_t) ws->pj[p] * SK;
      double fc = ws->sfc[ws->pslot[p]];
      for (k = 0; k < SK; ++k) rh[k] += fc * fj[k];
    }
  }
  if (c->want_grad)
    for (b = 0; b < m->n_bases; ++b)
      if (c->bnu[b] != NULL)
        for (k = 0; k < S * m->bases[b].K; ++k) c->bnu[b][k] = 0.0;
}

/* nu(i) (c->bnu, from the N leaves' backward) into lambda of the
   neighbours and the slots' T. */
COMPOT_HOT void compot_rho_backward(compot_ctx *c, int i)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int S = compot_nch(m), b, p, k; /* S: neighbour channels */

  for (b = 0; b < m->n_bases; ++b) {
    int SK = S * m->bases[b].K;
    double const *nu = c->bnu[b];
    if (nu == NULL) continue;
    if (SK == 8) { /* the common case, in registers */
      compot_v4 n0 = v4_load(nu), n1 = v4_load(nu + 4);
      for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
        int j = ws->pj[p], sl = ws->pslot[p];
        double const *fj = c->bphi[b] + (size_t) j * 8;
        double *lj = c->blam[b] + (size_t) j * 8;
        compot_v4 fc = v4_set1(ws->sfc[sl]);
        v4_store(lj, v4_madd(n0, fc, v4_load(lj)));
        v4_store(lj + 4, v4_madd(n1, fc, v4_load(lj + 4)));
        c->st[sl] +=
            v4_sum(v4_madd(n1, v4_load(fj + 4), v4_mul(n0, v4_load(fj)))) * ws->sdfc[sl];
      }
      continue;
    }
    for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
      int j = ws->pj[p], sl = ws->pslot[p];
      double const *fj = c->bphi[b] + (size_t) j * SK;
      double *lj = c->blam[b] + (size_t) j * SK, t;
      double fc = ws->sfc[sl];
      for (k = 0; k < SK; ++k) lj[k] += nu[k] * fc;
      t = compot_dot(SK, nu, fj) * ws->sdfc[sl];
      c->st[sl] += t;
    }
  }
}
