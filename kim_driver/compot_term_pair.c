/*
 * compot_term_pair.c -- the two-body cluster functions and the linear
 * pair-cluster leaves G<K> / C<K> (MODEL_SPEC 2, 3, 5; paper Eq. 6, 47).
 *
 * Forward (step 2 of compot_compute): per basis and slot g^_k(r) and
 * g^_k'(r), in one vectorised batch per particle (v2: times c'(r) for the
 * close pairs); phi_k^(s)(i) = sum_j g^_k(r_ij) for both directions; g^'
 * (and g^ for A leaves) stays in the slot cache.  With a host exchange,
 * phi is then copied onto ghosts.  A G/C leaf is e = sum c phi.
 * Backward: leaves add lambda_k^(s)(i) = dE/dphi_k^(s)(i); after the
 * reverse exchange of lambda, every slot gets the radial term
 * T += sum_k lambda_k^(s_j)(i) g^_k'(r_ij) of both directions.
 */
#include "compot_eval.h"

#include <string.h>


/* g^_k and g^_k' once per slot, for every particle that needs basis b, in
   one batch of its slot-owning pairs (consecutive pairs and slots);
   phi_k^(s) of both particles of a slot; then the exchange of phi for N
   terms. */
COMPOT_HOT int compot_cluster_functions(compot_ctx *c, char *msg, size_t msg_size)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int const *spec = c->in->species;
  int S = compot_nch(m), b, o, p, k, t, err, w; /* S: neighbour channels */

  for (b = 0; b < m->n_bases; ++b) {
    compot_basis const *B = &m->bases[b];
    int K = B->K, SK = S * K, gauss = B->kind == COMPOT_BASIS_GAUSSIAN;
    double *phi = c->bphi[b], *gc = c->bg[b], *dgc = c->bdg[b];
    if (phi == NULL && gc == NULL) continue;
    w = 0; /* the next close slot (ws->wsl, ascending like the batches) */
    /* a term cutoff r_t < r_c (issue 13): f_c(c; r_t) of the basis's own,
       on the own pairs with r < r_t only (a prefix, compot_build_pairs);
       the cached g^, g^' of the others are never read */
    double rt = compot_basis_rt(c, B);
    for (o = 0; o < c->n_built; ++o) {
      int i = ws->order[o], p0 = ws->pstart[i], nb = ws->pmid[i] - p0, s0;
      double *g, *dg, *fi;
      double const *fc, *dfc;
      if (nb == 0 || !compot_evaluates(c, B, i)) continue;
      if (rt > 0.0) {
        s0 = ws->pslot[p0];
        for (t = 0; t < nb && ws->sr[s0 + t] < rt; ++t) continue;
        if ((nb = t) == 0) continue;
      }
      s0 = ws->pslot[p0]; /* the slots of i's own pairs are consecutive */
      g = gc != NULL ? gc + (size_t) s0 * K : c->bgv;
      dg = dgc != NULL ? dgc + (size_t) s0 * K : c->bdgv;
      fc = ws->sfc + s0;
      dfc = ws->sdfc + s0;
      if (rt > 0.0) {
        compot_cutoff_n(nb, c->sx + s0, 1.0 / rt, c->bfc, c->bdfc);
        fc = c->bfc;
        dfc = c->bdfc;
      }
      if (gauss)
        compot_gaussian_n(B, nb, c->sx + s0, fc, dfc, g, dg);
      else
        for (t = 0; t < nb; ++t)
          compot_radial_basis(B, rt > 0.0 ? rt : m->cutoff, c->sx[s0 + t],
                              fc[t], dfc[t], g + (size_t) t * K,
                              dg + (size_t) t * K);
      /* format v2, pairs closer than r_b: dg^(c(r))/dr = g^'(c) c'(r) */
      while (w < c->n_win && ws->wsl[w] < s0) ++w;
      for (; w < c->n_win && ws->wsl[w] < s0 + nb; ++w) {
        double *row = dg + (size_t) (ws->wsl[w] - s0) * K;
        for (k = 0; k < K; ++k) row[k] *= ws->wdc[w];
      }
      if (phi == NULL) continue;
      fi = phi + (size_t) i * SK;
      if (B->w != NULL) { /* species embedding: W[Z_j][c] g^ in every channel */
        int ch;
        double const *wi = B->w + (size_t) spec[i] * S;
        for (t = 0, p = p0; t < nb; ++t, ++p) {
          int j = ws->pj[p];
          double const *gt = g + (size_t) t * K, *wj = B->w + (size_t) spec[j] * S;
          for (ch = 0; ch < S; ++ch) {
            double *fs = fi + ch * K;
            for (k = 0; k < K; ++k) fs[k] += wj[ch] * gt[k];
            if (ws->ptwin[p] >= 0) {
              fs = phi + (size_t) j * SK + ch * K;
              for (k = 0; k < K; ++k) fs[k] += wi[ch] * gt[k];
            }
          }
        }
        continue;
      }
      if (S == 1 && K == 8) { /* phi(i) in registers */
        compot_v4 f0 = v4_load(fi), f1 = v4_load(fi + 4);
        for (t = 0, p = p0; t < nb; ++t, ++p) {
          double const *gt = g + (size_t) t * 8;
          compot_v4 g0 = v4_load(gt), g1 = v4_load(gt + 4);
          f0 = v4_add(f0, g0);
          f1 = v4_add(f1, g1);
          if (ws->ptwin[p] >= 0) {
            double *fj = phi + (size_t) ws->pj[p] * 8;
            v4_store(fj, v4_add(v4_load(fj), g0));
            v4_store(fj + 4, v4_add(v4_load(fj + 4), g1));
          }
        }
        v4_store(fi, f0);
        v4_store(fi + 4, f1);
        continue;
      }
      for (t = 0, p = p0; t < nb; ++t, ++p) {
        int j = ws->pj[p];
        double const *gt = g + (size_t) t * K;
        double *fs = fi + spec[j] * K;
        for (k = 0; k < K; ++k) fs[k] += gt[k];
        if (ws->ptwin[p] >= 0) {
          fs = phi + (size_t) j * SK + spec[i] * K;
          for (k = 0; k < K; ++k) fs[k] += gt[k];
        }
      }
    }
    if (B->need_rho && c->ex != NULL) {
      err = c->ex->forward(c->ex->context, phi, SK);
      if (err) {
        compot_set_msg(msg, msg_size,
                       "host exchange (forward) of the cluster functions of "
                       "basis b%d failed with error %d", b + 1, err);
        return COMPOT_ERR_INPUT;
      }
    }
  }
  /* the f_c' of the N aggregates: d f_c(c(r))/dr = f_c'(c) c'(r) */
  for (w = 0; w < c->n_win; ++w) ws->sdfc[ws->wsl[w]] *= ws->wdc[w];
  return COMPOT_OK;
}

/* G/C leaf: e = sum_s sum_k c[Z,s,k] phi_k^(s)(i); its features phi are
   copied to gf (the grade's feature vector at the leaf) unless NULL. */
double compot_linear_value(compot_ctx const *c, compot_node const *nd, int i,
                           double *gf)
{
  compot_basis const *b = &c->m->bases[nd->basis];
  int S = compot_nch(c->m), K = b->K, Z = c->in->species[i], k;
  double const *f = c->bphi[nd->basis] + (size_t) i * S * K;
  double const *cc = nd->c + (size_t) Z * S * K;
  double e = 0.0;
  for (k = 0; k < S * K; ++k) e += cc[k] * f[k];
  if (gf != NULL) memcpy(gf, f, (size_t) S * K * sizeof(double));
  return e;
}

/* G/C leaf with adjoint a: lambda(i) += a c[Z] (+ gb, the adjoints of its
   features through the grade switch, unless NULL). */
void compot_linear_backward(compot_ctx *c, compot_node const *nd, int i,
                            double a, double const *gb)
{
  int S = compot_nch(c->m), K = nd->K, Z = c->in->species[i], k;
  double *lam = c->blam[nd->basis] + (size_t) i * S * K;
  double const *cc = nd->c + (size_t) Z * S * K;
  for (k = 0; k < S * K; ++k) lam[k] += a * cc[k];
  if (gb != NULL)
    for (k = 0; k < S * K; ++k) lam[k] += gb[k];
}

/* sum_k lambda_k^(s)(i) g^_k' of a neighbour of species s: the channel s
   (full chemistry), or sum_c W[s][c] sum_k lambda_k^(c)(i) g^_k' */
static double lambda_dot(compot_basis const *B, int C, int K,
                         double const *lam, int s, double const *dg)
{
  double T = 0.0;
  int ch;
  if (B->w == NULL) return compot_dot(K, lam + s * K, dg);
  for (ch = 0; ch < C; ++ch)
    T += B->w[s * C + ch] * compot_dot(K, lam + ch * K, dg);
  return T;
}

/* After the site step: the reverse exchange of lambda (N terms with a host
   exchange), then for every slot (an unordered pair, or a directed pair
   without twin) the radial term of phi, sum_k lambda_k^(s_j)(i)
   g^_k'(r_ij), of both directions, added to the slot's T. */
COMPOT_HOT int compot_cluster_backward(compot_ctx *c, char *msg, size_t msg_size)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int const *spec = c->in->species;
  int S = compot_nch(m), b, o, p, err; /* S: neighbour channels */

  for (b = 0; b < m->n_bases; ++b) {
    compot_basis const *B = &m->bases[b];
    if (!B->need_rho || c->ex == NULL) continue;
    err = c->ex->reverse(c->ex->context, c->blam[b], S * B->K);
    if (err) {
      compot_set_msg(msg, msg_size,
                     "host exchange (reverse) of the cluster function "
                     "adjoints of basis b%d failed with error %d", b + 1,
                     err);
      return COMPOT_ERR_INPUT;
    }
  }
  for (b = 0; b < m->n_bases; ++b) {
    compot_basis const *B = &m->bases[b];
    int K = B->K, SK = S * K;
    double rt = compot_basis_rt(c, B);
    if (!B->need_phi) continue;
    for (o = 0; o < c->n_built; ++o) {
      int i = ws->order[o], own = compot_evaluates(c, B, i), pe = ws->pmid[i];
      if (rt > 0.0) /* the own pairs with r < r_t (compot_cluster_functions) */
        for (pe = ws->pstart[i]; pe < ws->pmid[i] && ws->sr[ws->pslot[pe]] < rt; ++pe)
          continue;
      for (p = ws->pstart[i]; p < pe; ++p) {
        int tw = ws->ptwin[p], j = ws->pj[p], slot = ws->pslot[p];
        double const *dg = c->bdg[b] + (size_t) slot * K;
        double T = c->st[slot];
        if (K == 8 && B->w == NULL) { /* the common case, 4 lanes at a time */
          compot_v4 d0 = v4_load(dg), d1 = v4_load(dg + 4);
          if (own) {
            double const *l = c->blam[b] + (size_t) i * SK + spec[j] * 8;
            T += v4_sum(v4_madd(v4_load(l + 4), d1, v4_mul(v4_load(l), d0)));
          }
          if (tw >= 0 && compot_evaluates(c, B, j)) {
            double const *l = c->blam[b] + (size_t) j * SK + spec[i] * 8;
            T += v4_sum(v4_madd(v4_load(l + 4), d1, v4_mul(v4_load(l), d0)));
          }
        } else {
          if (own)
            T += lambda_dot(B, S, K, c->blam[b] + (size_t) i * SK, spec[j], dg);
          if (tw >= 0 && compot_evaluates(c, B, j))
            T += lambda_dot(B, S, K, c->blam[b] + (size_t) j * SK, spec[i], dg);
        }
        c->st[slot] = T;
      }
    }
  }
  return COMPOT_OK;
}
