/*
 * compot_switch.c -- the atom switch of format v2 (MODEL_SPEC 10,
 * docs/parameter-file.md):
 *
 *   E_i = S_i V_fit(i) + (1 - S_i) E_ref(Z_i) + E_ZBL(i),
 *   S_i = S_pair(i) S_grade(i),
 *
 * S_pair the product of s_in over the atom's pairs closer than r_b, and
 * S_grade the f_c polynomial of (gamma - gamma_lo)/(gamma_hi - gamma_lo)
 * of the extrapolation grade gamma = |U_Z (f - mu_Z)|^2 of the atom's
 * feature vector f.  Here: both factors, their gradients, and the padded
 * rows of U made at refresh (compot_grade_rows_fill).
 */
#include "compot_eval.h"

/*
 * The whitening factors U_Z of the grade in padded rows (g_rows): rows r <
 * d rounded up to a multiple of 4, row r at offset sum_(r' < r) w(r'),
 * w(r) = (r + 4) & ~3 (so rows 4b..4b+3 all hold 4b+4 doubles and start
 * 32-byte aligned), U_rc for c <= r < d and zeros elsewhere; and
 * grade_on[Z] = (U_Z != 0).
 */
void compot_grade_rows_fill(compot_model *m)
{
  int S = m->n_species, d = m->grade_d, dp = m->grade_dp, Z, r, c;
  size_t tri = (size_t) d * (d + 1) / 2;
  for (Z = 0; Z < S; ++Z) {
    double const *u = m->g_U + (size_t) Z * tri;
    double *row = m->g_rows + (size_t) Z * m->grade_rows;
    int on = 0;
    for (r = 0; r < dp; ++r) {
      int w = (r + 4) & ~3;
      for (c = 0; c < w; ++c) row[c] = 0.0;
      if (r < d) {
        for (c = 0; c <= r; ++c) {
          row[c] = u[c];
          on |= u[c] != 0.0;
        }
        u += r + 1;
      }
      row += w;
    }
    m->grade_on[Z] = on;
  }
}

/*
 * S_pair(i) = prod over the pairs of atom i closer than their r_b of
 * s_in(r_ij) (only atoms flagged COMPOT_PF_CLOSE by compot_build_pairs get here); the slots,
 * s_in and s_in' of those pairs are kept in ws->csl, c->cw, c->cdw for
 * compot_pair_switch_gradient.
 */
double compot_pair_switch(compot_ctx *c, int i, int *nclose)
{
  compot_workspace *ws = c->ws;
  int const *spec = c->in->species;
  int S = c->S, zi = spec[i] * S, p, n = 0;
  double const *win = c->m->win, rb_max = c->m->win_rb_max;
  double prod = 1.0;
  for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
    int sl = ws->pslot[p];
    double const *w;
    double r = ws->sr[sl];
    if (!(r < rb_max)) continue;
    w = win + 2 * (zi + spec[ws->pj[p]]);
    if (!(r < w[1])) continue;
    compot_inner_window(r, w[0], w[1], &c->cw[n], &c->cdw[n]);
    ws->csl[n] = sl;
    prod *= c->cw[n++];
  }
  *nclose = n;
  return prod;
}

/* dE/dr_ij += coef s_in'(r_ij) prod_(other close pairs q) s_in(r_iq) for
   the close pairs of pair_switch (coef = (V_fit - E_ref) S_grade). */
void compot_pair_switch_gradient(compot_ctx *c, int n, double coef)
{
  int t, q;
  for (t = 0; t < n; ++t) {
    double others = 1.0;
    if (c->cdw[t] == 0.0) continue;
    for (q = 0; q < n; ++q)
      if (q != t) others *= c->cw[q];
    c->st[c->ws->csl[t]] += coef * c->cdw[t] * others;
  }
}

/*
 * The extrapolation grade of the current atom (species Z, features in
 * c->gf): f - mu in place, y = U (f - mu) in c->gy, and gamma = |y|^2.
 * U_Z in padded rows (refresh): rows 4b..4b+3 all hold 4b+4 doubles, so
 * they go together, 4 rows x 2 partial sums of 4 lanes (independent chains:
 * one sum per row would wait for each multiply-add); d(d+1)/2 multiply-adds
 * plus at most 3 per row.
 */
double compot_grade(compot_ctx *c, int Z)
{
  compot_model const *m = c->m;
  int d = m->grade_d, dp = m->grade_dp, r, t, q;
  double const *mu = m->g_mu + (size_t) Z * d;
  double const *row = m->g_rows + (size_t) Z * m->grade_rows;
  double *fm = c->gf, *y = c->gy, g = 0.0;
  for (t = 0; t < d; ++t) fm[t] -= mu[t];
  for (; t < dp; ++t) fm[t] = 0.0;
  for (r = 0; r < dp; r += 4) {
    int w = r + 4;
    compot_v4 acc[8], yv;
    for (q = 0; q < 8; ++q) acc[q] = v4_set1(0.0);
    for (t = 0; t + 8 <= w; t += 8) {
      compot_v4 f0 = v4_load(fm + t), f1 = v4_load(fm + t + 4);
      for (q = 0; q < 4; ++q) {
        acc[q] = v4_madd(v4_load(row + (size_t) q * w + t), f0, acc[q]);
        acc[4 + q] = v4_madd(v4_load(row + (size_t) q * w + t + 4), f1, acc[4 + q]);
      }
    }
    if (t < w) {
      compot_v4 f0 = v4_load(fm + t);
      for (q = 0; q < 4; ++q)
        acc[q] = v4_madd(v4_load(row + (size_t) q * w + t), f0, acc[q]);
    }
    yv = v4_sum4(v4_add(acc[0], acc[4]), v4_add(acc[1], acc[5]),
                 v4_add(acc[2], acc[6]), v4_add(acc[3], acc[7]));
    v4_store(y + r, yv);
    g += v4_sum(v4_mul(yv, yv));
    row += (size_t) 4 * w;
  }
  return g;
}

/* Adjoints of the features through the grade switch:
   gb = coef 2 U^T U (f - mu), coef = (V_fit - E_ref) S_pair dS_grade/dgamma
   (after compot_grade at the same atom); by blocks of 4 rows as compot_grade. */
void compot_grade_gradient(compot_ctx *c, int Z, double coef)
{
  compot_model const *m = c->m;
  int d = m->grade_d, dp = m->grade_dp, r, t;
  double const *row = m->g_rows + (size_t) Z * m->grade_rows;
  double *z = c->gz;
  for (t = 0; t < dp; ++t) z[t] = 0.0;
  for (r = 0; r < dp; r += 4) {
    int w = r + 4;
    compot_v4 y0 = v4_set1(c->gy[r]), y1 = v4_set1(c->gy[r + 1]);
    compot_v4 y2 = v4_set1(c->gy[r + 2]), y3 = v4_set1(c->gy[r + 3]);
    for (t = 0; t < w; t += 4) {
      compot_v4 zt = v4_load(z + t);
      zt = v4_madd(y0, v4_load(row + t), zt);
      zt = v4_madd(y1, v4_load(row + w + t), zt);
      zt = v4_madd(y2, v4_load(row + 2 * (size_t) w + t), zt);
      zt = v4_madd(y3, v4_load(row + 3 * (size_t) w + t), zt);
      v4_store(z + t, zt);
    }
    row += (size_t) 4 * w;
  }
  for (t = 0; t < d; ++t) c->gb[t] = 2.0 * coef * z[t];
}

/* S_grade(gamma) of species Z: 1 up to gamma_lo, 0 from gamma_hi, the f_c
   polynomial of (gamma - gamma_lo)/(gamma_hi - gamma_lo) in between; its
   derivative in *ds. */
double compot_grade_switch(compot_model const *m, int Z, double gamma,
                           double *ds)
{
  double w = m->g_hi[Z] - m->g_lo[Z], fc, dfc;
  *ds = 0.0;
  if (gamma >= m->g_hi[Z]) return 0.0;
  if (!(gamma > m->g_lo[Z])) return 1.0;
  compot_cutoff_fn((gamma - m->g_lo[Z]) / w, 1.0, &fc, &dfc);
  *ds = dfc / w;
  return fc;
}
