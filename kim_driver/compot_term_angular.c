/*
 * compot_term_angular.c -- the angular pair-cluster leaves A[<basis>P<P>]
 * (MODEL_SPEC 3 and 10; paper App. A, Eq. 48-50), forward and backward,
 * and their coefficient table (made at refresh).
 *
 *   e(i) = sum_{s1<=s2} sum_k sum_p c[Z,(s1,s2),k,p] q_kp^(s1 s2)(i),
 *   q^(ss)   = sum_(v in l=p) A_(s,k,v)^2 - sum_{j in s} g^_k(r_ij)^2,
 *   q^(s1s2) = 2 sum_(v in l=p) A_(s1,k,v) A_(s2,k,v)   (s1 < s2),
 *   A_(s,k,v) = sum_{j in s} g^_k(r_ij) Y_v(u_ij)
 *
 * over the (P+1)^2 real harmonics Y_v of compot_real_harmonics (the
 * addition theorem: sum over v of degree l = P_l of the bond angle).  In
 * format v2 each invariant enters as q_max x(0, q/q_max): q itself while
 * |q| <= q_max, saturating beyond.
 */
#include "compot_eval.h"

#include <string.h>

/*
 * Size of the coefficient table of an A leaf (compot_angular_table_fill):
 * the coefficients spread over the (P+1)^2 functions Y_v (rows nvp long,
 * zero beyond (P+1)^2), out[(Z np + q) K + k][v] = c[Z, q, k, l(v)], then
 * the sums over l, out[S np K nvp + (Z np + q) K + k] = sum_l c[Z, q, k,
 * l]; in format v2 then 1/q_max[q][k][p]: S np K (nvp + 1) (+ np K (P+1)).
 */
size_t compot_angular_table_size(compot_model const *m, compot_node const *nd)
{
  int S = m->n_species, C = compot_nch(m), np = C * (C + 1) / 2;
  return (size_t) S * np * nd->K * (m->nvp + 1)
         + (m->version >= 2 ? (size_t) np * nd->K * (nd->P + 1) : 0);
}

void compot_angular_table_fill(compot_model const *m, compot_node *nd)
{
  int S = m->n_species, C = compot_nch(m), np = C * (C + 1) / 2, K = nd->K;
  int P1 = nd->P + 1, nvp = m->nvp, nrow = S * np * K, row, l, v, k;
  double *out = nd->tab;
  double *sums = out + (size_t) nrow * nvp, *qinv = sums + nrow;
  for (row = 0; row < nrow; ++row) {
    double const *cc = nd->c + (size_t) row * P1;
    double *o = out + (size_t) row * nvp, tot = 0.0;
    for (v = 0; v < nvp; ++v) o[v] = 0.0;
    for (l = 0; l < P1; ++l) {
      for (v = l * l; v < (l + 1) * (l + 1); ++v) o[v] = cc[l];
      tot += cc[l];
    }
    sums[row] = tot;
  }
  if (m->version >= 2)
    for (k = 0; k < np * K * P1; ++k) qinv[k] = 1.0 / nd->q_max[k];
}

/*
 * The arrays of an A leaf at one atom, kept from the value to the backward
 * step, at these offsets from the leaf's block (rows pst long):
 *   A [S K nvp], self [S K] (rounded up to 8), Y [nvp pst], grad Y
 *   [3 nvp pst], G, dG [S K pst], and in format v2 dx/du of the
 *   invariants and a flag [np K (P+1) + 1] (angular_bounded); an E[A] leaf
 *   keeps dx/du of its features there instead [np L K (P+1)]
 *   (compot_angular_kept).
 * With an aligned block the rows of 4-lane loads stay 32-byte aligned.
 * One layout for the value step, the backward step and the block size.
 */
typedef struct ang_layout {
  size_t A, self, Y, dY, G, dG, dq, end;
} ang_layout;

static ang_layout layout_of(size_t sk, size_t nvp, size_t pst, size_t ndq)
{
  ang_layout o;
  o.A = 0;
  o.self = o.A + sk * nvp;
  o.Y = o.self + ((sk + 7) & ~(size_t) 7);
  o.dY = o.Y + nvp * pst;
  o.G = o.dY + 3 * nvp * pst;
  o.dG = o.G + sk * pst;
  o.dq = o.dG + sk * pst;
  o.end = o.dq + ndq;
  return o;
}

/* Offset in its block at which an A or E[A] leaf keeps the values of its
   own (dq of the layout). */
size_t compot_angular_kept(compot_ctx const *c, compot_node const *nd)
{
  return layout_of((size_t) compot_nch(c->m) * nd->K, (size_t) c->nvp,
                   (size_t) c->pst, 0).dq;
}

/* Doubles per A leaf and atom: the layout of the largest leaf, rounded up
   to 8 (every leaf's block starts 64-byte aligned). */
size_t compot_angular_stride(compot_model const *m, int pst)
{
  size_t S = (size_t) m->n_species, ndq = 0, np = S * (S + 1) / 2;
  int nd;
  if (m->version >= 2) ndq = np * m->max_K * (m->max_P + 1) + 1;
  for (nd = 0; nd < m->n_nodes; ++nd) { /* E[A]: dx/du of its features */
    compot_node const *n = &m->nodes[nd];
    size_t need = np * n->L * n->K * (n->P + 1);
    if (n->kind == COMPOT_NODE_EXPANG && need > ndq) ndq = need;
  }
  return (layout_of(S * m->max_K, (size_t) m->nvp, (size_t) pst, ndq).end + 7)
         & ~(size_t) 7;
}

/*
 * C[i nyp + j] = sum_t X[i xst + t] Y_j(t) for i < ni, j < ny, and zero for
 * ny <= j < nyp (a multiple of 4), t < nt (a multiple of 4), with Y by
 * blocks of 4 t: Y_j(t) = Y[(t - t % 4) nyp + 4 j + t % 4].  A small matrix
 * product in 2 x 4 blocks of 4-lane partial sums, the last columns one at
 * a time.
 */
static inline COMPOT_ALWAYS_INLINE void
gemm_nt(int ni, int ny, int nyp, int nt, int xst, double const *restrict X,
        double const *restrict Y, double *restrict C)
{
  int i0, j0, t, q, r;
  for (i0 = 0; i0 < ni; i0 += 2) {
    int nr = ni - i0 < 2 ? ni - i0 : 2;
    double const *x0 = X + (size_t) i0 * xst, *x1 = x0 + (nr > 1 ? xst : 0);
    for (j0 = 0; j0 + 4 <= ny; j0 += 4) {
      compot_v4 a0[4], a1[4];
      for (q = 0; q < 4; ++q) a0[q] = a1[q] = v4_set1(0.0);
      for (t = 0; t < nt; t += 4) {
        compot_v4 u0 = v4_load(x0 + t), u1 = v4_load(x1 + t);
        double const *y = Y + (size_t) t * nyp + 4 * (size_t) j0;
        for (q = 0; q < 4; ++q) {
          compot_v4 yq = v4_load(y + 4 * q);
          a0[q] = v4_madd(u0, yq, a0[q]);
          a1[q] = v4_madd(u1, yq, a1[q]);
        }
      }
      v4_store(C + (size_t) i0 * nyp + j0, v4_sum4(a0[0], a0[1], a0[2], a0[3]));
      if (nr > 1)
        v4_store(C + (size_t) (i0 + 1) * nyp + j0, v4_sum4(a1[0], a1[1], a1[2], a1[3]));
    }
    for (r = 0; r < nr; ++r)
      for (q = j0; q < nyp; ++q) C[(size_t) (i0 + r) * nyp + q] = 0.0;
    for (; j0 < ny; ++j0) {
      compot_v4 a0 = v4_set1(0.0), a1 = a0;
      for (t = 0; t < nt; t += 4) {
        compot_v4 yq = v4_load(Y + (size_t) t * nyp + 4 * (size_t) j0);
        a0 = v4_madd(v4_load(x0 + t), yq, a0);
        a1 = v4_madd(v4_load(x1 + t), yq, a1);
      }
      C[(size_t) i0 * nyp + j0] = v4_sum(a0);
      if (nr > 1) C[(size_t) (i0 + 1) * nyp + j0] = v4_sum(a1);
    }
  }
}



/*
 * g^_k(r_ij) and g^_k'(r_ij) of the n pairs of atom i by neighbour species,
 * from the slot caches: G[(s K + k) pst + t] (zero unless pair t has a
 * neighbour of species s, and for t >= n), dG likewise if not NULL.
 */
COMPOT_HOT static void angular_radial(compot_ctx const *c, int b, int i, double *G, double *dG)
{
  compot_workspace const *ws = c->ws;
  int S = compot_nch(c->m), K = c->m->bases[b].K, pst = c->pst, na;
  double const *W = c->m->bases[b].w; /* species embedding, or NULL */
  int n = compot_seen_pairs(c, &c->m->bases[b], i, &na), nt = (n + 3) & ~3, k, t;
  size_t sk = (size_t) S * K;
  double const *gc = c->bg[b], *dgc = c->bdg[b];

#if defined(__GNUC__)
  /* the slot rows of the next atom's pairs, in the caches by the time it
     comes (those of twins sit far back, with the earlier atoms' slots) */
  if (i + 1 < c->n && (c->ws->flag[i + 1] & COMPOT_PF_BUILT)) {
    int q;
    for (q = ws->pstart[i + 1]; q < ws->pend[i + 1]; ++q) {
      size_t slot = (size_t) ws->pslot[q] * K;
      __builtin_prefetch(gc + slot);
      if (dgc != NULL) __builtin_prefetch(dgc + slot);
    }
  }
#endif
  if (S == 1 && K % 4 == 0 && W == NULL) {
    /* blocks of 4 pairs x 4 functions, transposed in registers */
    static double const zero[4] = {0.0, 0.0, 0.0, 0.0};
    int src, w;
    for (t = 0; t < nt; t += 4)
      for (src = 0; src < (dG != NULL ? 2 : 1); ++src) {
        double const *cache = src ? dgc : gc;
        double *dst = src ? dG : G;
        for (k = 0; k < K; k += 4) {
          compot_v4 r[4], col[4];
          for (w = 0; w < 4; ++w)
            r[w] = v4_load(t + w < n ? cache + (size_t) ws->pslot[compot_seen_pair(ws, i, na, t + w)] * K + k
                                     : zero);
          v4_transpose(r, col);
          for (w = 0; w < 4; ++w) v4_store(dst + (size_t) (k + w) * pst + t, col[w]);
        }
      }
    return;
  }
  memset(G, 0, sk * pst * sizeof(double));
  if (dG != NULL) memset(dG, 0, sk * pst * sizeof(double));
  for (t = 0; t < n; ++t) {
    int p = compot_seen_pair(ws, i, na, t);
    int sj = S > 1 ? c->in->species[ws->pj[p]] : 0;
    size_t slot = (size_t) ws->pslot[p] * K;
    double *g = G + (size_t) sj * K * pst + t;
    if (W != NULL) { /* species embedding: G_c = W[Z_j][c] g^ in every channel
                        (then A_c, self_c = sum G_c^2 and the backward follow) */
      int ch;
      double const *wj = W + (size_t) c->in->species[ws->pj[p]] * S;
      for (ch = 0; ch < S; ++ch) {
        g = G + (size_t) ch * K * pst + t;
        for (k = 0; k < K; ++k) g[(size_t) k * pst] = wj[ch] * gc[slot + k];
        if (dG != NULL) {
          double *dg = dG + (size_t) ch * K * pst + t;
          for (k = 0; k < K; ++k) dg[(size_t) k * pst] = wj[ch] * dgc[slot + k];
        }
      }
      continue;
    }
    for (k = 0; k < K; ++k) g[(size_t) k * pst] = gc[slot + k];
    if (dG != NULL) {
      double *dg = dG + (size_t) sj * K * pst + t;
      for (k = 0; k < K; ++k) dg[(size_t) k * pst] = dgc[slot + k];
    }
  }
}

/* q_p = f sum_(v = p^2 .. (p+1)^2 - 1) prod_v - self for p < P1; returns 1
   if some |q_p qi_p| > 1 */
static inline COMPOT_ALWAYS_INLINE int invariants(int P1, double const *prod,
                                                  double f, double self,
                                                  double const *qi,
                                                  double *qv)
{
  int p, v, sat = 0;
  for (p = 0; p < P1; ++p) {
    double sum = 0.0, u;
    for (v = 0; v < 2 * p + 1; ++v) sum += prod[p * p + v];
    qv[p] = f * sum - self;
    u = qv[p] * qi[p];
    sat |= (u > 1.0) | (u < -1.0);
  }
  return sat;
}

/*
 * invariants() of four consecutive radial channels at once (a1, a2: the
 * moments of the first, rows of nvp; self4: the self terms of the four, or
 * NULL): the products of the moments by blocks of 4 functions, transposed
 * so that the lanes are the channels, then summed over each l = p in the
 * order of invariants(), to qv[t (P+1) + p] for channel t.  Their
 * 1/q_max qi and coefficients cc are as consecutive: e = sum cc qv, and
 * returns 1 if some |qv qi| > 1.
 */
static inline COMPOT_ALWAYS_INLINE int invariants4(int P1, int nvp,
                                                  double const *a1,
                                                  double const *a2, double f,
                                                  double const *self4,
                                                  double const *qi,
                                                  double const *cc, double *qv,
                                                  double *e)
{
  int nv = P1 * P1, v, t, l, p = 0, next = 1;
  compot_v4 acc[COMPOT_MAX_P + 1];
  compot_v4 const fv = v4_set1(f);
  compot_v4 const sv = self4 != NULL ? v4_load(self4) : v4_set1(0.0);
  compot_v4 ev = v4_set1(0.0);
  compot_m4 out = m4_zero();
  for (l = 0; l < P1; ++l) acc[l] = v4_set1(0.0);
  for (v = 0; v < nv; v += 4) {
    compot_v4 r[4], col[4];
    for (t = 0; t < 4; ++t)
      r[t] = v4_mul(v4_load(a1 + (size_t) t * nvp + v),
                    v4_load(a2 + (size_t) t * nvp + v));
    v4_transpose(r, col);
    for (l = 0; l < 4 && v + l < nv; ++l) {
      if (v + l == next) { /* the first function of l = p + 1 */
        ++p;
        next = (p + 1) * (p + 1);
      }
      acc[p] = v4_add(acc[p], col[l]);
    }
  }
  for (p = 0; p < P1; ++p) {
    double q4[4];
    v4_store(q4, v4_sub(v4_mul(fv, acc[p]), sv));
    for (t = 0; t < 4; ++t) qv[t * P1 + p] = q4[t];
  }
  for (v = 0; v < 4 * P1; v += 4) { /* u = q / q_max, and c q */
    compot_v4 x = v4_load(qv + v), u = v4_mul(x, v4_load(qi + v));
    out = m4_or(out, v4_outside1(u));
    ev = v4_madd(v4_load(cc + v), x, ev);
  }
  *e = v4_sum(ev);
  return m4_any(out);
}

/*
 * The A leaf of format v2 at an atom of species Z, from the sums A and
 * self of compot_angular_value: e = sum c[Z,q,k,p] q_max x(0, q_kp / q_max) with
 * the invariants q_kp themselves (q^(ss) = sum_(v in l=p) A_v^2 - self_k,
 * q^(s1s2) = 2 sum_(v in l=p) A1_v A2_v), x(0, u) = u for |u| <= 1 (the
 * term is c q) and u_b + tau tanh((u - u_b)/tau) beyond (MODEL_SPEC 10).
 * The flag after the np K (P+1) values of dq is 1 if any invariant is
 * saturated, and then dq[(q K + k)(P+1) + p] = dx/du(0, q_kp/q_max), for
 * compot_angular_backward (dq is not written while nothing saturates).  The
 * bounded invariants are the leaf's features of the grade, copied to gf
 * (order q, k, p) unless NULL.
 */
COMPOT_HOT static double angular_bounded(compot_ctx *c, compot_node const *nd,
                                         int Z, double const *A,
                                         double const *selfv, double *dq,
                                         double *gf)
{
  int S = compot_nch(c->m), K = nd->K, P1 = nd->P + 1, nvp = c->nvp, np = S * (S + 1) / 2;
  int s1, s2, k, n, p, v, any = 0;
  double const *qinv = nd->tab
                       + (size_t) c->S * np * K * (nvp + 1);
  double e = 0.0, tau = c->tau, prod[nvp], qbuf[4 * (COMPOT_MAX_P + 1)];
  for (s1 = 0; s1 < S; ++s1)
    for (s2 = s1; s2 < S; ++s2) {
      int q = compot_pair_index(S, s1, s2);
      double f = s1 == s2 ? 1.0 : 2.0;
      /* n = 4 channels at a time, then the last K % 4 one at a time: their
         n (P+1) invariants, coefficients and 1/q_max are consecutive */
      for (k = 0; k < K; k += n) {
        double const *a1 = A + (size_t) (s1 * K + k) * nvp;
        double const *a2 = A + (size_t) (s2 * K + k) * nvp;
        size_t o = ((size_t) q * K + k) * P1;
        double const *cc = nd->c + ((size_t) Z * np * K) * P1 + o;
        double const *qi = qinv + o;
        double *qv = gf != NULL ? gf + o : qbuf; /* (the features in place) */
        int sat = 0;
        if (k + 4 <= K) {
          double const *s4 = s1 == s2 ? selfv + s1 * K + k : NULL;
          double eb;
          n = 4;
          switch (P1) { /* copies with the loops unrolled */
          case 3: sat = invariants4(3, nvp, a1, a2, f, s4, qi, cc, qv, &eb); break;
          case 4: sat = invariants4(4, nvp, a1, a2, f, s4, qi, cc, qv, &eb); break;
          case 5: sat = invariants4(5, nvp, a1, a2, f, s4, qi, cc, qv, &eb); break;
          case 6: sat = invariants4(6, nvp, a1, a2, f, s4, qi, cc, qv, &eb); break;
          default: sat = invariants4(P1, nvp, a1, a2, f, s4, qi, cc, qv, &eb);
          }
          if (!sat) {
            e += eb;
            continue;
          }
        } else {
          double self = s1 == s2 ? selfv[s1 * K + k] : 0.0;
          n = 1;
          for (v = 0; v < nvp; v += 4)
            v4_store(prod + v, v4_mul(v4_load(a1 + v), v4_load(a2 + v)));
          switch (P1) { /* copies with the loops unrolled */
          case 3: sat = invariants(3, prod, f, self, qi, qv); break;
          case 4: sat = invariants(4, prod, f, self, qi, qv); break;
          case 5: sat = invariants(5, prod, f, self, qi, qv); break;
          case 6: sat = invariants(6, prod, f, self, qi, qv); break;
          case 7: sat = invariants(7, prod, f, self, qi, qv); break;
          default: sat = invariants(P1, prod, f, self, qi, qv);
          }
          if (!sat) {
            for (p = 0; p < P1; ++p) e += cc[p] * qv[p];
            continue;
          }
        }
        if (!any) { /* the first saturated invariant at this atom */
          for (v = 0; v < np * K * P1; ++v) dq[v] = 1.0;
          any = 1;
        }
        for (p = 0; p < n * P1; ++p) {
          double u = qv[p] * qi[p], x, dx;
          if (u <= 1.0 && u >= -1.0) {
            e += cc[p] * qv[p];
            continue;
          }
          compot_exp_feature(0.0, u, tau, &x, &dx);
          qv[p] = nd->q_max[o + p] * x; /* (after its last use as q) */
          e += cc[p] * qv[p];
          dq[o + p] = dx;
        }
      }
    }
  dq[(size_t) np * K * P1] = any;
  return e;
}

/*
 * A leaf: e(i) = sum_{s1<=s2} sum_k sum_p c[Z,(s1,s2),k,p] q_kp^(s1 s2)(i),
 *   q^(ss)   = sum_(v in l=p) A_(s,k,v)^2 - sum_{j in s} g_k(r_ij)^2,
 *   q^(s1s2) = 2 sum_(v in l=p) A_(s1,k,v) A_(s2,k,v)   (s1 < s2),
 * with A_(s,k,v) = sum_{j in s} g^_k(r_ij) Y_v(u_ij) over the (P+1)^2 real
 * functions Y_v of compot_real_harmonics (sum over v of degree l = P_l).  The
 * per-atom arrays (layout ang_stride, rows pst long):
 *   A [S K nvp], self [S K], Y [nvp pst], G, dG [S K pst]
 * are kept in sum for the backward step at the same atom; rows of Y beyond
 * (P+1)^2 and columns of G, dG from n to nt (n rounded up to a multiple of
 * 4: the loops over pairs of this atom stop there) are zero.
 */
COMPOT_HOT void compot_angular_moments(compot_ctx *c, compot_node const *nd, int i,
                            double *sum)
{
  compot_workspace const *ws = c->ws;
  int S = compot_nch(c->m), K = nd->K, P = nd->P, P1 = P + 1, nvp = c->nvp;
  int pst = c->pst, na;
  int n = compot_seen_pairs(c, &c->m->bases[nd->basis], i, &na);
  int nt = (n + 3) & ~3, k, t;
  size_t sk = (size_t) S * K;
  ang_layout const o = layout_of(sk, (size_t) nvp, (size_t) pst, 0);
  double *A = sum + o.A, *selfv = sum + o.self, *Y = sum + o.Y;
  double *dY = sum + o.dY, *G = sum + o.G, *dG = sum + o.dG;
  double *ux = c->ascr, *uy = ux + pst, *uz = uy + pst;

  angular_radial(c, nd->basis, i, G, c->want_grad ? dG : NULL);
  for (t = 0; t < n; ++t) { /* the pairs the leaf sees (compot_seen_pairs) */
    int p = compot_seen_pair(ws, i, na, t);
    double const *u = ws->su + 3 * (size_t) ws->pslot[p];
    double sign = t < na ? 1.0 : -1.0;
    ux[t] = sign * u[0];
    uy[t] = sign * u[1];
    uz[t] = sign * u[2];
  }
  for (; t < nt; ++t) { /* finite pads (their G are zero) */
    ux[t] = 1.0;
    uy[t] = uz[t] = 0.0;
  }
  /* Y and grad Y by blocks of 4 pairs (rows nvp long; the rows from
     (P+1)^2 on stay zero, see compot_scratch) */
  for (t = 0; t < nt; t += 4)
    compot_real_harmonics(4, ux + t, uy + t, uz + t, P, c->m->ylm_coef, Y + (size_t) t * nvp,
                      c->want_grad ? dY + 3 * (size_t) t * nvp : NULL, 4);
  /* A_(s,k,v) = sum_t G_(s,k)(t) Y_v(t) (zero for v >= (P+1)^2) */
  switch (sk) { /* copies with the loop over the rows unrolled */
  case 4: gemm_nt(4, P1 * P1, nvp, nt, pst, G, Y, A); break;
  case 8: gemm_nt(8, P1 * P1, nvp, nt, pst, G, Y, A); break;
  default: gemm_nt((int) sk, P1 * P1, nvp, nt, pst, G, Y, A);
  }
  for (k = 0; k < (int) sk; ++k) { /* (the pads of G are zero) */
    double const *g = G + (size_t) k * pst;
    compot_v4 sq = v4_set1(0.0);
    for (t = 0; t < nt; t += 4) sq = v4_madd(v4_load(g + t), v4_load(g + t), sq);
    selfv[k] = v4_sum(sq);
  }
}

/* The raw invariants q[(q K + k)(P+1) + p] = q_kp^(s1 s2) (no bound) of the
   leaf at the atom whose sums compot_angular_moments left in sum (E[A]
   leaves, compot_term_expang.c). */
COMPOT_HOT void compot_angular_invariants(compot_ctx const *c, compot_node const *nd,
                               double const *sum, double *q)
{
  int S = compot_nch(c->m), K = nd->K, P1 = nd->P + 1, nvp = c->nvp, s1, s2, k, p, v;
  ang_layout const o = layout_of((size_t) S * K, (size_t) nvp, (size_t) c->pst, 0);
  double const *A = sum + o.A, *selfv = sum + o.self;
  for (s1 = 0; s1 < S; ++s1)
    for (s2 = s1; s2 < S; ++s2) {
      double f = s1 == s2 ? 1.0 : 2.0;
      for (k = 0; k < K; ++k) {
        double const *a1 = A + (size_t) (s1 * K + k) * nvp;
        double const *a2 = A + (size_t) (s2 * K + k) * nvp;
        double self = s1 == s2 ? selfv[s1 * K + k] : 0.0;
        double *qv = q + ((size_t) compot_pair_index(S, s1, s2) * K + k) * P1;
        for (p = 0; p < P1; ++p) {
          double acc = 0.0;
          for (v = p * p; v < (p + 1) * (p + 1); ++v) acc += a1[v] * a2[v];
          qv[p] = f * acc - self;
        }
      }
    }
}

COMPOT_HOT double compot_angular_value(compot_ctx *c, compot_node const *nd, int i,
                            double const *mom, double *blk, double *gf)
{
  int S = compot_nch(c->m), K = nd->K, nvp = c->nvp;
  int Z = c->in->species[i], np = S * (S + 1) / 2;
  int s1, s2, k, v;
  ang_layout const o = layout_of((size_t) S * K, (size_t) nvp, (size_t) c->pst, 0);
  double const *A = mom + o.A, *selfv = mom + o.self;
  double e = 0.0;

  if (c->m->version >= 2)
    return e + angular_bounded(c, nd, Z, A, selfv, blk + o.dq, gf);
  for (s1 = 0; s1 < S; ++s1)
    for (s2 = s1; s2 < S; ++s2) {
      size_t row = (size_t) (Z * np + compot_pair_index(S, s1, s2)) * K;
      double const *cc = nd->tab + row * nvp;
      double const *cs = nd->tab + (size_t) c->S * np * K * nvp + row;
      double f = s1 == s2 ? 1.0 : 2.0;
      for (k = 0; k < K; ++k) {
        double const *a1 = A + (size_t) (s1 * K + k) * nvp;
        double const *a2 = A + (size_t) (s2 * K + k) * nvp, *ck = cc + (size_t) k * nvp;
        compot_v4 acc = v4_set1(0.0);
        for (v = 0; v < nvp; v += 4)
          acc = v4_madd(v4_mul(v4_load(ck + v), v4_load(a1 + v)), v4_load(a2 + v), acc);
        e += f * v4_sum(acc);
        if (s1 == s2) e -= cs[k] * selfv[s1 * K + k];
      }
    }
  return e;
}

/* out[q] = sum_(k < sk) b[k nvp + q] X[k pst .. + 3] for q < nq (4 lanes
   of pairs; X the block's column of G or dG, b the coefficients' column v) */
static inline COMPOT_ALWAYS_INLINE void
coefficient_sums(int nq, int sk, double const *X, int pst, double const *b,
                 int nvp, compot_v4 *out)
{
  int k, q;
  for (q = 0; q < nq; ++q) out[q] = v4_set1(0.0);
  for (k = 0; k < sk; ++k) {
    compot_v4 x = v4_load(X + (size_t) k * pst);
    double const *bk = b + (size_t) k * nvp;
    for (q = 0; q < nq; ++q) out[q] = v4_madd(v4_set1(bk[q]), x, out[q]);
  }
}

/*
 * The per-pair gradients of an A leaf at one atom (compot_angular_backward):
 * for blocks of 4 of the n pairs, rad = sum_v Bd_v Y_v + 2 sum_k selfbar_k
 * G_k dG_k and GV = sum_v Bg_v grad Y_v, with Bg_v = sum_k bac_kv G_k and
 * Bd_v = sum_k bac_kv dG_k (k < sk).  Inlined with constant sk for the
 * common sizes, so that the loops over k unroll.  Two passes per block, one
 * for rad (dG, Y) and one for GV (G, grad Y): in one pass the compiler kept
 * G_k and dG_k of every k in registers across the loop over v (2 sk vectors
 * besides 12 sums), which for sk = 8 spilled sums to the stack even with
 * AVX-512's 32 registers; a pass keeps sk vectors, 4 sums and 1 (rad) or 3
 * (GV) accumulators.  Every sum adds its terms in the same order as the
 * single pass did.
 */
static inline COMPOT_ALWAYS_INLINE void
angular_pair_gradients(int n, int sk, int nv, int nvp, int pst,
                       double const *G, double const *dG, double const *Yall,
                       double const *dYall, double const *bac,
                       double const *selfbar, double *rad, double *GV)
{
  int t, k, v, q;
  for (t = 0; t < n; t += 4) {
    double const *Y = Yall + (size_t) t * nvp, *dY = dYall + 3 * (size_t) t * nvp;
    compot_v4 rd = v4_set1(0.0), gx = rd, gy = rd, gz = rd;
    for (k = 0; k < sk; ++k) {
      compot_v4 g = v4_load(G + (size_t) k * pst + t);
      compot_v4 dg = v4_load(dG + (size_t) k * pst + t);
      rd = v4_madd(v4_madd(v4_set1(2.0 * selfbar[k]), g, v4_set1(0.0)), dg,
                   rd);
    }
    /* rad: Bd_v from dG, times Y_v */
    for (v = 0; v + 4 <= nv; v += 4) {
      compot_v4 bd[4];
      coefficient_sums(4, sk, dG + t, pst, bac + v, nvp, bd);
      for (q = 0; q < 4; ++q)
        rd = v4_madd(bd[q], v4_load(Y + 4 * (size_t) (v + q)), rd);
    }
    for (; v < nv; ++v) { /* the last 1 to 3 functions, one at a time */
      compot_v4 bd;
      coefficient_sums(1, sk, dG + t, pst, bac + v, nvp, &bd);
      rd = v4_madd(bd, v4_load(Y + 4 * (size_t) v), rd);
    }
    /* GV: Bg_v from G, times grad Y_v */
    for (v = 0; v + 4 <= nv; v += 4) {
      compot_v4 bg[4];
      coefficient_sums(4, sk, G + t, pst, bac + v, nvp, bg);
      for (q = 0; q < 4; ++q) {
        double const *dx = dY + 4 * (size_t) (v + q);
        double const *dy = dx + 4 * (size_t) nv, *dz = dy + 4 * (size_t) nv;
        gx = v4_madd(bg[q], v4_load(dx), gx);
        gy = v4_madd(bg[q], v4_load(dy), gy);
        gz = v4_madd(bg[q], v4_load(dz), gz);
      }
    }
    for (; v < nv; ++v) {
      compot_v4 bg;
      double const *dx = dY + 4 * (size_t) v;
      double const *dy = dx + 4 * (size_t) nv, *dz = dy + 4 * (size_t) nv;
      coefficient_sums(1, sk, G + t, pst, bac + v, nvp, &bg);
      gx = v4_madd(bg, v4_load(dx), gx);
      gy = v4_madd(bg, v4_load(dy), gy);
      gz = v4_madd(bg, v4_load(dz), gz);
    }
    v4_store(rad + t, rd);
    v4_store(GV + t, gx);
    v4_store(GV + pst + t, gy);
    v4_store(GV + 2 * (size_t) pst + t, gz);
  }
}

/*
 * Backward of an A leaf at atom i with adjoint a.  With the adjoints
 * bac = dE/dA and selfbar of the self terms, pair t (i, j) gets
 *   dE/dD_ij = [sum_v Bd_v(t) Y_v(t) + 2 sum_k selfbar_k g^_k g^_k'] u
 *            + (GV - (u.GV) u) / r,   GV = sum_v Bg_v(t) grad Y_v(t),
 * with Bg_v(t) = sum_(s,k) bac_(s,k,v) G_(s,k)(t) and Bd likewise with dG.
 * The loops run over blocks of 4 pairs (the lanes) and 4 functions v
 * (angular_pair_gradients), with Y and grad Y stored by blocks of 4 pairs
 * in the value step.  The first line is radial and goes to the slot's T,
 * the second to h.  Format v2: gb, unless NULL, holds adjoints of the
 * leaf's features (the bounded invariants, through the grade switch), added
 * to the coefficients: dE/dq_kp = (a c_kp + gb_kp) dx/du.
 */
static void angular_sums_backward(compot_ctx *c, compot_node const *nd, int i,
                                  double a, double const *rows,
                                  double const *mom);

/* Adds to qbar[(q K + k)(P+1) + p] the adjoints dE/dq_kp of the invariants
   of an A leaf of format v2 at atom i of species Z whose invariants
   saturate (the flag in dq) or whose features have adjoints gb: (a c + gb)
   dx/du, or scale c dx/du (dq NULL: scale c). */
static void add_qbar(compot_ctx const *c, compot_node const *nd, int Z,
                     double a, double scale, double const *dq,
                     double const *gb, double *qbar)
{
  int S = compot_nch(c->m), K = nd->K, P1 = nd->P + 1;
  int np = S * (S + 1) / 2, o, n = np * K * P1;
  int sat = dq != NULL && dq[n] != 0.0;
  double const *cc = nd->c + (size_t) Z * n;
  for (o = 0; o < n; ++o) {
    double ce = gb != NULL ? a * cc[o] + gb[o] : scale * cc[o];
    qbar[o] += sat ? ce * dq[o] : ce;
  }
}

COMPOT_HOT void compot_angular_backward(compot_ctx *c, compot_node const *nd, int i,
                             double a, double const *sum, double const *gb)
{
  int S = compot_nch(c->m), K = nd->K, P1 = nd->P + 1, nvp = c->nvp;
  int Z = c->in->species[i], np = S * (S + 1) / 2;
  ang_layout const o = layout_of((size_t) S * K, (size_t) nvp, (size_t) c->pst, 0);

  if (c->m->version >= 2) {
    /* saturated invariants (angular_bounded): dE/dq = a c dx/du; with
       feature adjoints gb, (a c + gb) dx/du */
    double const *dq = sum + o.dq;
    if (dq[(size_t) np * K * P1] != 0.0 || gb != NULL) {
      memset(c->aqs, 0, (size_t) np * K * P1 * sizeof(double));
      add_qbar(c, nd, Z, a, a, dq, gb, c->aqs);
      compot_angular_invariant_backward(c, nd, i, c->aqs, sum);
      return;
    }
  }
  angular_sums_backward(c, nd, i, a, NULL, sum);
}

/* A leaf of a shared group (compot_internal.h, ang_owner) at atom i with
   adjoint a: adds the adjoints of its invariants (a c, times dx/du where
   they saturate, and the adjoints gb of its features) to the group's qbar,
   which its owner steps back through (compot_angular_invariant_backward). */
void compot_angular_qbar(compot_ctx const *c, compot_node const *nd, int i,
                         double a, double const *blk, double const *gb,
                         double *qbar)
{
  add_qbar(c, nd, c->in->species[i], a, a,
           c->m->version >= 2 ? blk + compot_angular_kept(c, nd) : NULL, gb,
           qbar);
}

/*
 * The backward step of an A leaf at atom i given the adjoints
 * qbar[(q K + k)(P+1) + p] = dE/dq_kp of its raw invariants, through the
 * sums that compot_angular_moments left in sum: qbar spread over the
 * functions v of degree l = p as the coefficients of the table are (rows np
 * K nvp, then their np K sums, in c->ceff), then angular_sums_backward.
 * E[A] leaves and the owners of shared groups.
 */
COMPOT_HOT void compot_angular_invariant_backward(compot_ctx *c, compot_node const *nd,
                                       int i, double const *qbar,
                                       double const *sum)
{
  int S = compot_nch(c->m), K = nd->K, P1 = nd->P + 1, nvp = c->nvp;
  int np = S * (S + 1) / 2, q, k, p, v;
  double *sums = c->ceff + (size_t) np * K * nvp;
  for (q = 0; q < np; ++q)
    for (k = 0; k < K; ++k) {
      double const *qb = qbar + ((size_t) q * K + k) * P1;
      double *row = c->ceff + ((size_t) q * K + k) * nvp, tot = 0.0;
      for (v = 0; v < nvp; ++v) row[v] = 0.0;
      for (p = 0; p < P1; ++p) {
        for (v = p * p; v < (p + 1) * (p + 1); ++v) row[v] = qb[p];
        tot += qb[p];
      }
      sums[q * K + k] = tot;
    }
  angular_sums_backward(c, nd, i, 1.0, c->ceff, sum);
}

/* The rest of the backward step of an A leaf at atom i with adjoint a:
   coefficient rows from the table, or from rows unless NULL, then the
   adjoints of the sums (the moments in sum) and the pair gradients. */
COMPOT_HOT static void angular_sums_backward(compot_ctx *c, compot_node const *nd, int i,
                                  double a, double const *rows,
                                  double const *sum)
{
  compot_workspace *ws = c->ws;
  int S = compot_nch(c->m), K = nd->K, P = nd->P, P1 = P + 1, nvp = c->nvp;
  int Z = c->in->species[i], np = S * (S + 1) / 2, pst = c->pst, na;
  int n = compot_seen_pairs(c, &c->m->bases[nd->basis], i, &na), s1, s2, k, t, v;
  int nv = P1 * P1;
  int sk = S * K;
  ang_layout const o = layout_of((size_t) sk, (size_t) nvp, (size_t) pst, 0);
  double const *A = sum + o.A, *Yall = sum + o.Y, *dYall = sum + o.dY;
  double const *G = sum + o.G, *dG = sum + o.dG;
  double *rad = c->ascr, *GV = rad + pst;
  double *bac = c->bac;
  double const *tab = nd->tab;

  memset(bac, 0, (size_t) sk * nvp * sizeof(double));
  memset(c->selfbar, 0, (size_t) sk * sizeof(double));
  for (s1 = 0; s1 < S; ++s1)
    for (s2 = s1; s2 < S; ++s2) {
      size_t row = (size_t) (Z * np + compot_pair_index(S, s1, s2)) * K;
      size_t erow = (size_t) compot_pair_index(S, s1, s2) * K;
      double const *cc = rows != NULL ? rows + erow * nvp : tab + row * nvp;
      double const *cs = rows != NULL ? rows + (size_t) np * K * nvp + erow
                                      : tab + (size_t) c->S * np * K * nvp + row;
      compot_v4 ta = v4_set1(2.0 * a);
      /* s1 == s2: d(c A^2)/dA = 2 c A; s1 < s2: d(2 c A1 A2) = 2 c A2, 2 c A1 */
      for (k = 0; k < K; ++k) {
        size_t o1 = (size_t) (s1 * K + k) * nvp, o2 = (size_t) (s2 * K + k) * nvp;
        double const *ck = cc + (size_t) k * nvp;
        for (v = 0; v < nvp; v += 4) {
          compot_v4 cv = v4_mul(ta, v4_load(ck + v));
          v4_store(bac + o1 + v, v4_madd(cv, v4_load(A + o2 + v), v4_load(bac + o1 + v)));
          if (s1 != s2)
            v4_store(bac + o2 + v, v4_madd(cv, v4_load(A + o1 + v), v4_load(bac + o2 + v)));
        }
        if (s1 == s2) c->selfbar[s1 * K + k] -= a * cs[k];
      }
    }
  switch (sk) {
  case 4:
    angular_pair_gradients(n, 4, nv, nvp, pst, G, dG, Yall, dYall, bac, c->selfbar, rad, GV);
    break;
  case 8:
    angular_pair_gradients(n, 8, nv, nvp, pst, G, dG, Yall, dYall, bac, c->selfbar, rad, GV);
    break;
  default:
    angular_pair_gradients(n, sk, nv, nvp, pst, G, dG, Yall, dYall, bac, c->selfbar, rad, GV);
  }
  for (t = 0; t < n; ++t) {
    int p = compot_seen_pair(ws, i, na, t), sl = ws->pslot[p];
    double const *u = ws->su + 3 * (size_t) sl; /* (the projection is
                                                   even in u) */
    double g0 = GV[t], g1 = GV[pst + t], g2 = GV[2 * pst + t];
    double rinv = 1.0 / ws->sr[sl], ug = u[0] * g0 + u[1] * g1 + u[2] * g2;
    double sign = t >= na ? -1.0 : 1.0, *h = c->sh + 3 * sl;
    c->st[sl] += rad[t];
    h[0] += sign * (g0 - ug * u[0]) * rinv;
    h[1] += sign * (g1 - ug * u[1]) * rinv;
    h[2] += sign * (g2 - ug * u[2]) * rinv;
  }
}
