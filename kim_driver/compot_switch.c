/*
 * compot_switch.c -- the atom switch of format v2 (MODEL_SPEC 10,
 * docs/parameter-file.md):
 *
 *   E_i = S_i V_fit(i) + (1 - S_i) E_ref(Z_i) + E_ZBL(i),
 *   S_i = S_pair(i) S_grade(i),
 *
 * S_pair the product of s_in over the atom's pairs closer than r_b, and
 * S_grade the f_c polynomial of ln(gamma/gamma_lo)/ln(gamma_hi/gamma_lo)
 * of the extrapolation grade gamma = |U_Z (f - mu_Z)|^2 of the atom's
 * feature vector f.  Here: both factors, their gradients, and the padded
 * rows of U made at refresh (compot_grade_rows_fill).
 */
#include <math.h>

#include "compot_eval.h"

/*
 * The whitening factors U_Z of the grade by blocks of 8 rows (g_rows):
 * block b (rows 8b..8b+7) starts at 32 b (b + 1) and holds its columns c <
 * 8b + 8 one after the other, 8 doubles each: U_rc at 8 c + (r - 8b), zero
 * where c > r or r >= d.  So compot_grade runs down the columns of a block
 * with 8 rows in two 4-lane accumulators, without sums across lanes.  And
 * grade_on[Z] = (U_Z != 0).
 */
void compot_grade_rows_fill(compot_model *m)
{
  int S = m->n_species, d = m->grade_d, Z, r, c;
  size_t tri = (size_t) d * (d + 1) / 2, k;
  for (Z = 0; Z < S; ++Z) {
    double const *u = m->g_U + (size_t) Z * tri;
    double *rows = m->g_rows + (size_t) Z * m->grade_rows;
    int on = 0;
    for (k = 0; k < m->grade_rows; ++k) rows[k] = 0.0;
    for (r = 0; r < d; ++r) {
      size_t b = (size_t) r / 8;
      double *blk = rows + 32 * b * (b + 1) + (size_t) (r % 8);
      for (c = 0; c <= r; ++c) {
        blk[8 * (size_t) c] = u[c];
        on |= u[c] != 0.0;
      }
      u += r + 1;
    }
    m->grade_on[Z] = on;
  }
}

/*
 * S_pair(i) = prod over the pairs of atom i closer than their r_b of
 * s_in(r_ij) (only atoms flagged COMPOT_PF_CLOSE by compot_build_pairs get
 * here); the slots, s_in and s_in' of those pairs are kept in ws->csl,
 * c->cw, c->cdw for compot_pair_switch_gradient.
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
 * c->gf): f - mu in place (zero padded to dp), y = U (f - mu) in c->gy,
 * and gamma = |y|^2.  U_Z by blocks of 8 rows (compot_grade_rows_fill):
 * per block, y_(8b..8b+7) = sum_c (f - mu)_c U_(8b..8b+7, c) down its
 * 8b + 8 columns, eight at a time into 8 independent 4-lane sums (one
 * per column modulo 4 and half block); 2 sum_b (8b + 8) = 2 dp (dp + 8) / 8
 * vector multiply-adds, d(d+1)/2 of them nonzero.
 */
COMPOT_HOT double compot_grade(compot_ctx *c, int Z)
{
  compot_model const *m = c->m;
  int d = m->grade_d, dp = m->grade_dp, b, t, q;
  double const *mu = m->g_mu + (size_t) Z * d;
  double const *blk = m->g_rows + (size_t) Z * m->grade_rows;
  double *fm = c->gf, *y = c->gy;
  compot_v4 s0 = v4_set1(0.0), s1 = s0;
  for (t = 0; t + 4 <= d; t += 4)
    v4_store(fm + t, v4_sub(v4_load(fm + t), v4_load(mu + t)));
  for (; t < d; ++t) fm[t] -= mu[t];
  for (; t < dp; ++t) fm[t] = 0.0;
  for (b = 0; b < dp / 8; ++b) {
    int w = 8 * b + 8;
    compot_v4 a[8], y0, y1;
    for (q = 0; q < 8; ++q) a[q] = v4_set1(0.0);
    for (t = 0; t < w; t += 8) {
      double const *u = blk + 8 * (size_t) t;
      for (q = 0; q < 8; ++q) {
        compot_v4 x = v4_set1(fm[t + q]);
        a[2 * (q & 3)] = v4_madd(x, v4_load(u + 8 * q), a[2 * (q & 3)]);
        a[2 * (q & 3) + 1] =
            v4_madd(x, v4_load(u + 8 * q + 4), a[2 * (q & 3) + 1]);
      }
    }
    y0 = v4_add(v4_add(a[0], a[2]), v4_add(a[4], a[6]));
    y1 = v4_add(v4_add(a[1], a[3]), v4_add(a[5], a[7]));
    v4_store(y + 8 * b, y0);
    v4_store(y + 8 * b + 4, y1);
    s0 = v4_madd(y0, y0, s0);
    s1 = v4_madd(y1, y1, s1);
    blk += 8 * (size_t) w;
  }
  return v4_sum(v4_add(s0, s1));
}

/* Adjoints of the features through the grade switch:
   gb = coef 2 U^T U (f - mu), coef = (V_fit - E_ref) S_pair dS_grade/dgamma
   (after compot_grade at the same atom): z_c = sum_r U_rc y_r down the
   columns of each block of U. */
COMPOT_HOT void compot_grade_gradient(compot_ctx *c, int Z, double coef)
{
  compot_model const *m = c->m;
  int d = m->grade_d, dp = m->grade_dp, b, t;
  double const *blk = m->g_rows + (size_t) Z * m->grade_rows;
  double *z = c->gz;
  for (t = 0; t < dp; ++t) z[t] = 0.0;
  for (b = 0; b < dp / 8; ++b) {
    int w = 8 * b + 8;
    compot_v4 y0 = v4_load(c->gy + 8 * b), y1 = v4_load(c->gy + 8 * b + 4);
    for (t = 0; t < w; ++t) {
      double const *u = blk + 8 * (size_t) t;
      z[t] += v4_sum(v4_madd(y1, v4_load(u + 4), v4_mul(y0, v4_load(u))));
    }
    blk += 8 * (size_t) w;
  }
  for (t = 0; t < d; ++t) c->gb[t] = 2.0 * coef * z[t];
}

/* Format v3: the fitted value V_fit of an atom of species Z bounded below,
   e - w tanh((e - V_fit)/w) for V_fit < e = e_min[Z], w = tau (E_ref[Z] -
   e), V_fit itself otherwise (and where w <= 0); its derivative in *dv
   (as compot.safety.SafetyLayer.bounded_fit). */
double compot_bounded_fit(compot_model const *m, int Z, double v, double *dv)
{
  double lo = m->w_e_min[Z], w = m->w_tau[0] * (m->w_e_ref[Z] - lo), th;
  *dv = 1.0;
  if (!(v < lo) || !(w > 0.0)) return v;
  th = tanh((lo - v) / w);
  *dv = 1.0 - th * th;
  return lo - w * th;
}

/* S_grade(gamma) of species Z: 1 up to gamma_lo, 0 from gamma_hi, the f_c
   polynomial of t = ln(gamma/gamma_lo)/ln(gamma_hi/gamma_lo) in between (on
   ln gamma so that the hand-over starts as soon as an atom leaves the data,
   docs/parameter-file.md); its derivative dS/dgamma in *ds. */
double compot_grade_switch(compot_model const *m, int Z, double gamma,
                           double *ds)
{
  double w, fc, dfc;
  *ds = 0.0;
  if (gamma >= m->g_hi[Z]) return 0.0;
  if (!(gamma > m->g_lo[Z])) return 1.0;
  w = log(m->g_hi[Z] / m->g_lo[Z]);
  compot_cutoff_fn(log(gamma / m->g_lo[Z]) / w, 1.0, &fc, &dfc);
  *ds = dfc / (w * gamma);
  return fc;
}
