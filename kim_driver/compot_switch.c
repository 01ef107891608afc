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
#include <float.h>
#include <math.h>
#include <stdlib.h>

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
 * Eigen-decomposition of the symmetric n x n matrix z (row-major, replaced
 * by the eigenvectors as columns; eigenvalues in a, e scratch of n):
 * Householder reduction to tridiagonal form with the transformations
 * accumulated, then the implicit QL iteration with Wilkinson shifts (the
 * textbook tred2/tql2 pair, Wilkinson and Reinsch, Handbook for Automatic
 * Computation II, 1971).  About 4 n^3 flops, once per refresh.  Here
 * rather than LAPACK: the driver builds wherever the KIM API does, with
 * libm only.  Returns 0, or -1 when an eigenvalue needs more than 60 QL
 * steps (the caller then leaves the bound off).
 */
static int symmetric_eigen(int n, double *z, double *a, double *e)
{
  int i, j, k, l, m, iter;
  for (i = n - 1; i > 0; --i) { /* row i: Householder vector in z[i][0..i-1] */
    double h = 0.0, scale = 0.0;
    l = i - 1;
    if (l > 0) {
      for (k = 0; k <= l; ++k) scale += fabs(z[i * n + k]);
      if (scale == 0.0)
        e[i] = z[i * n + l];
      else {
        double f, g, hh;
        for (k = 0; k <= l; ++k) {
          z[i * n + k] /= scale;
          h += z[i * n + k] * z[i * n + k];
        }
        f = z[i * n + l];
        g = f >= 0.0 ? -sqrt(h) : sqrt(h);
        e[i] = scale * g;
        h -= f * g;
        z[i * n + l] = f - g;
        f = 0.0;
        for (j = 0; j <= l; ++j) {
          z[j * n + i] = z[i * n + j] / h;
          g = 0.0;
          for (k = 0; k <= j; ++k) g += z[j * n + k] * z[i * n + k];
          for (k = j + 1; k <= l; ++k) g += z[k * n + j] * z[i * n + k];
          e[j] = g / h;
          f += e[j] * z[i * n + j];
        }
        hh = f / (h + h);
        for (j = 0; j <= l; ++j) {
          f = z[i * n + j];
          e[j] = g = e[j] - hh * f;
          for (k = 0; k <= j; ++k)
            z[j * n + k] -= f * e[k] + g * z[i * n + k];
        }
      }
    } else
      e[i] = z[i * n + l];
    a[i] = h;
  }
  a[0] = 0.0;
  e[0] = 0.0;
  for (i = 0; i < n; ++i) { /* accumulate the transformations */
    if (a[i] != 0.0)
      for (j = 0; j < i; ++j) {
        double g = 0.0;
        for (k = 0; k < i; ++k) g += z[i * n + k] * z[k * n + j];
        for (k = 0; k < i; ++k) z[k * n + j] -= g * z[k * n + i];
      }
    a[i] = z[i * n + i];
    z[i * n + i] = 1.0;
    for (j = 0; j < i; ++j) z[j * n + i] = z[i * n + j] = 0.0;
  }
  for (i = 1; i < n; ++i) e[i - 1] = e[i];
  e[n - 1] = 0.0;
  for (l = 0; l < n; ++l) { /* implicit QL on the tridiagonal (a, e) */
    iter = 0;
    do {
      for (m = l; m < n - 1; ++m) {
        double dd = fabs(a[m]) + fabs(a[m + 1]);
        if (fabs(e[m]) <= DBL_EPSILON * dd) break;
      }
      if (m != l) {
        double g, r, s = 1.0, c = 1.0, p = 0.0;
        if (iter++ == 60) return -1;
        g = (a[l + 1] - a[l]) / (2.0 * e[l]);
        r = hypot(g, 1.0);
        g = a[m] - a[l] + e[l] / (g + (g >= 0.0 ? r : -r));
        for (i = m - 1; i >= l; --i) {
          double f = s * e[i], b = c * e[i];
          e[i + 1] = r = hypot(f, g);
          if (r == 0.0) {
            a[i + 1] -= p;
            e[m] = 0.0;
            break;
          }
          s = f / r;
          c = g / r;
          g = a[i + 1] - p;
          r = (a[i] - g) * s + 2.0 * c * b;
          p = s * r;
          a[i + 1] = g + p;
          g = c * r - b;
          for (k = 0; k < n; ++k) {
            f = z[k * n + i + 1];
            z[k * n + i + 1] = s * z[k * n + i] + c * f;
            z[k * n + i] = c * z[k * n + i] - s * f;
          }
        }
        if (r == 0.0 && i >= l) continue;
        a[l] -= p;
        e[l] = g;
        e[m] = 0.0;
      }
    } while (m != l);
  }
  return 0;
}

/*
 * The bound of compot_grade_screen (model fields g_sv, g_sw, g_samax):
 * eigen-decomposition of A_Z = U_Z^T U_Z, its sk eigenvectors of smallest
 * eigenvalue (largest a_max - a_j) first.  a_max is raised by 1e-12 of
 * itself so that rounding in the decomposition cannot put an eigenvalue
 * above it.  Without memory for the d x d scratch, or when the QL
 * iteration does not converge, the bound is off (g_samax = 0) and every
 * atom takes the exact grade.
 */
void compot_grade_screen_fill(compot_model *m)
{
  int S = m->n_species, d = m->grade_d, dp = m->grade_dp, sk = m->grade_sk;
  int Z, r, c, k, j;
  size_t tri = (size_t) d * (d + 1) / 2;
  double *s, *a, *e;
  for (Z = 0; Z < S; ++Z) m->g_samax[Z] = 0.0;
  if (d == 0) return;
  s = (double *) malloc(((size_t) d + 2) * d * sizeof(double));
  if (s == NULL) return;
  a = s + (size_t) d * d;
  e = a + d;
  for (Z = 0; Z < S; ++Z) {
    double const *u = m->g_U + (size_t) Z * tri; /* packed rows, c <= r */
    double amax;
    if (!m->grade_on[Z]) continue;
    for (k = 0; k < d * d; ++k) s[k] = 0.0;
    for (r = 0; r < d; ++r) { /* A_ck = sum_r U_rc U_rk (c, k <= r) */
      double const *ur = u + (size_t) r * (r + 1) / 2;
      for (c = 0; c <= r; ++c)
        for (k = 0; k <= r; ++k) s[c * d + k] += ur[c] * ur[k];
    }
    if (symmetric_eigen(d, s, a, e) != 0) continue;
    amax = a[0];
    for (k = 1; k < d; ++k)
      if (a[k] > amax) amax = a[k];
    amax *= 1.0 + 1e-12;
    for (j = 0; j < sk; ++j) { /* the j-th smallest a */
      int best = 0;
      double *row = m->g_sv + ((size_t) Z * sk + j) * dp;
      for (k = 1; k < d; ++k)
        if (a[k] < a[best]) best = k;
      m->g_sw[(size_t) Z * sk + j] = amax - a[best];
      for (k = 0; k < d; ++k) row[k] = s[k * d + best];
      for (; k < dp; ++k) row[k] = 0.0;
      a[best] = HUGE_VAL; /* taken (sk <= d) */
    }
    m->g_samax[Z] = amax;
  }
  free(s);
}

/*
 * 1 if the grade of the current atom (species Z, f - mu in c->gf from
 * compot_grade_delta) is certainly at most gamma_lo, so that S_grade = 1
 * and dS_grade = 0 without the d^2 product of compot_grade: the bound
 * gamma <= a_max |f - mu|^2 - sum_(j <= k) (a_max - a_j) p_j^2, p_j =
 * v_j . (f - mu), falls with every direction added, and an atom of the
 * data's kind is inside after a few (3-4 of 72 for the Nb model at 300 K).
 * The margin 1e-10 a_max |f - mu|^2 covers rounding in the decomposition
 * and in the sums.  0: not proven (the caller takes the exact grade).
 */
COMPOT_HOT int compot_grade_screen(compot_ctx *c, int Z)
{
  compot_model const *m = c->m;
  int dp = m->grade_dp, sk = m->grade_sk, j, t;
  double amax = m->g_samax[Z], bound, lo, rest;
  double const *fm = c->gf, *v = m->g_sv + (size_t) Z * sk * dp;
  double const *w = m->g_sw + (size_t) Z * sk;
  compot_v4 s0 = v4_set1(0.0), s1 = s0;
  if (!(amax > 0.0)) return 0;
  for (t = 0; t < dp; t += 8) {
    compot_v4 x0 = v4_load(fm + t), x1 = v4_load(fm + t + 4);
    s0 = v4_madd(x0, x0, s0);
    s1 = v4_madd(x1, x1, s1);
  }
  rest = v4_sum(v4_add(s0, s1));
  bound = amax * rest;
  lo = m->g_lo[Z] - 1e-10 * bound;
  for (j = 0; bound > lo; ++j, v += dp) {
    double p;
    /* the directions left can take off at most w_j |rest of f - mu|^2:
       not enough, the atom is outside (or near) and gets the exact grade */
    if (j == sk || bound - w[j] * rest > lo) return 0;
    s0 = s1 = v4_set1(0.0);
    for (t = 0; t < dp; t += 8) {
      s0 = v4_madd(v4_load(fm + t), v4_load(v + t), s0);
      s1 = v4_madd(v4_load(fm + t + 4), v4_load(v + t + 4), s1);
    }
    p = v4_sum(v4_add(s0, s1));
    bound -= w[j] * p * p;
    rest -= p * p;
  }
  return 1;
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

/* f - mu of the current atom (species Z, features in c->gf) in place,
   zero padded to dp: the input of compot_grade_screen and compot_grade. */
COMPOT_HOT void compot_grade_delta(compot_ctx *c, int Z)
{
  compot_model const *m = c->m;
  int d = m->grade_d, dp = m->grade_dp, t;
  double const *mu = m->g_mu + (size_t) Z * d;
  double *fm = c->gf;
  for (t = 0; t + 4 <= d; t += 4)
    v4_store(fm + t, v4_sub(v4_load(fm + t), v4_load(mu + t)));
  for (; t < d; ++t) fm[t] -= mu[t];
  for (; t < dp; ++t) fm[t] = 0.0;
}

/*
 * The extrapolation grade of the current atom (species Z, f - mu in
 * c->gf from compot_grade_delta): y = U (f - mu) in c->gy,
 * and gamma = |y|^2.  U_Z by blocks of 8 rows (compot_grade_rows_fill):
 * per block, y_(8b..8b+7) = sum_c (f - mu)_c U_(8b..8b+7, c) down its
 * 8b + 8 columns, eight at a time into 8 independent 4-lane sums (one
 * per column modulo 4 and half block); 2 sum_b (8b + 8) = 2 dp (dp + 8) / 8
 * vector multiply-adds, d(d+1)/2 of them nonzero.
 */
COMPOT_HOT double compot_grade(compot_ctx *c, int Z)
{
  compot_model const *m = c->m;
  int dp = m->grade_dp, b, t, q;
  double const *blk = m->g_rows + (size_t) Z * m->grade_rows;
  double *fm = c->gf, *y = c->gy;
  compot_v4 s0 = v4_set1(0.0), s1 = s0;
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

/*
 * Format v4: the coordination n = sum_j f_n(r_ij) of atom i (species Z) over
 * its pairs closer than r_c, with f_n(r) = f_c(max(r - r_c/2, 0); r_c/2) (1
 * up to r_c/2, the f_c polynomial down to 0 at r_c).  Below the data's
 * lowest, n_min[Z] > 0, the grade grows by *gc = gamma_hi (2 Delta)^3,
 * Delta = 1 - n/n_min (C2 at n_min; gamma >= gamma_hi, i.e. the fitted
 * energy fully off, from n = n_min/2 on: an isolated dimer or an atom
 * pulled out of the crystal, which the Mahalanobis distance of the
 * features may still take for data), with *dgc = d gc/dn; returns 1 then,
 * else 0 (*gc = *dgc = 0).  As compot.safety.SafetyLayer.coordination.
 */
int compot_coordination_term(compot_ctx const *c, int i, int Z, double *gc,
                             double *dgc)
{
  compot_workspace const *ws = c->ws;
  double rc = c->m->cutoff, h = 0.5 * rc, hinv = 1.0 / h, nmin = c->m->g_nmin[Z];
  double n = 0.0, del;
  int p;
  *gc = *dgc = 0.0;
  /* (f_n >= 0: the sum only grows, so the loop stops once it reaches n_min,
     about halfway through the pairs of a bulk atom) */
  for (p = ws->pstart[i]; p < ws->pend[i] && n < nmin; ++p) {
    double r = ws->sr[ws->pslot[p]], t;
    if (!(r < rc)) continue;
    if (r <= h) {
      n += 1.0;
      continue;
    }
    t = (r - h) * hinv; /* f_c(r - h; h) of compot_cutoff_fn, inline */
    n += 1.0 + t * t * t * t * (-35.0 + t * (84.0 + t * (-70.0 + 20.0 * t)));
  }
  if (!(n < nmin)) return 0;
  del = 1.0 - n / nmin;
  *gc = 8.0 * c->m->g_hi[Z] * del * del * del;
  *dgc = -24.0 * c->m->g_hi[Z] * del * del / nmin;
  return 1;
}

/* dE/dr_ij += coef f_n'(r_ij) over the pairs of atom i (coef = (V_fit -
   E_ref) S_pair dS_grade/dgamma d gc/dn, after compot_coordination_term). */
void compot_coordination_gradient(compot_ctx *c, int i, double coef)
{
  compot_workspace const *ws = c->ws;
  double rc = c->m->cutoff, h = 0.5 * rc;
  int p;
  for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
    int sl = ws->pslot[p];
    double r = ws->sr[sl], f, df;
    if (!(r < rc) || r <= h) continue;
    compot_cutoff_fn(r - h, h, &f, &df);
    c->st[sl] += coef * df;
  }
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
