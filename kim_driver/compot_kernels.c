/*
 * compot_kernels.c -- scalar kernels of the compot model (MODEL_SPEC.md
 * sections 1-4): cutoff function, radial basis functions, the bounded
 * exponentiated feature, the polynomial form of the Legendre addition
 * theorem, and the ZBL core repulsion.  Each function returns the value and
 * its derivative together.
 */
#include "compot_internal.h"

#include <math.h>

/*
 * Cutoff function (MODEL_SPEC 1), x = r / r_c:
 *   f_c(r) = 1 - 35 x^4 + 84 x^5 - 70 x^6 + 20 x^7 for x < 1, 0 otherwise;
 *   df_c/dr = (-140 x^3 + 420 x^4 - 420 x^5 + 140 x^6) / r_c.
 */
void compot_cutoff_fn(double r, double rc, double *fc, double *dfc)
{
  double x = r / rc, x3;
  if (x >= 1.0) {
    *fc = 0.0;
    *dfc = 0.0;
    return;
  }
  x3 = x * x * x;
  *fc = 1.0 + x3 * x * (-35.0 + x * (84.0 + x * (-70.0 + 20.0 * x)));
  *dfc = x3 * (-140.0 + x * (420.0 + x * (-420.0 + 140.0 * x))) / rc;
}

/* The same with x = r * rc_inv (rc_inv = 1 / r_c), for the pair loop. */
void compot_cutoff_fn_inv(double r, double rc_inv, double *fc, double *dfc)
{
  double x = r * rc_inv, x3;
  if (x >= 1.0) {
    *fc = 0.0;
    *dfc = 0.0;
    return;
  }
  x3 = x * x * x;
  *fc = 1.0 + x3 * x * (-35.0 + x * (84.0 + x * (-70.0 + 20.0 * x)));
  *dfc = x3 * (-140.0 + x * (420.0 + x * (-420.0 + 140.0 * x))) * rc_inv;
}

/* x(gamma, u) on |u| <= 1: expm1(gamma u)/gamma, series for |gamma| < 1e-6. */
static void xfeature_inner(double gamma, double u, double *x, double *dx)
{
  if (fabs(gamma) < 1e-6) {
    *x = u + gamma * u * u / 2.0 + gamma * gamma * u * u * u / 6.0;
    *dx = 1.0 + gamma * u + gamma * gamma * u * u / 2.0;
  } else {
    *x = expm1(gamma * u) / gamma;
    *dx = exp(gamma * u);
  }
}

/*
 * Bounded exponentiated feature (MODEL_SPEC 3):
 *   x(g, u) = (exp(g u) - 1)/g                          for |u| <= 1,
 *   x(g, u) = x(g, 1) + e^g (u-1) + g e^g (u-1)^2 / 2    for u > 1,
 *   x(g, u) = x(g,-1) + e^-g (u+1) + g e^-g (u+1)^2 / 2  for u < -1;
 * the outer branches are the 2nd-order Taylor expansions about u = +-1.
 */
void compot_xfeature(double gamma, double u, double *x, double *dx)
{
  double x1, d1, e, t;
  if (u >= -1.0 && u <= 1.0) {
    xfeature_inner(gamma, u, x, dx);
    return;
  }
  if (u > 1.0) {
    xfeature_inner(gamma, 1.0, &x1, &d1);
    e = exp(gamma);
    t = u - 1.0;
  } else {
    xfeature_inner(gamma, -1.0, &x1, &d1);
    e = exp(-gamma);
    t = u + 1.0;
  }
  *x = x1 + e * t + 0.5 * gamma * e * t * t;
  *dx = e + gamma * e * t;
}

/*
 * Radial basis functions g^_k(r) = g_k(r) f_c(r), k = 1..K, and derivatives
 * (MODEL_SPEC 2):
 *   Gaussian:  g_k = exp(-a_k r^2), a_k = alpha beta^(k-1);
 *   Chebyshev: g_k = T_(k-1)(t), t = 2 r / r_c - 1.
 * fc, dfc are f_c(r) and f_c'(r).  g[k-1], dg[k-1] receive g^_k, g^_k'.
 */
void compot_radial(compot_basis const *b, double rc, double r, double fc,
                   double dfc, double *g, double *dg)
{
  int k, K = b->K;
  if (b->kind == COMPOT_BASIS_GAUSSIAN) {
    double r2 = r * r;
    for (k = 0; k < K; ++k) {
      double e = exp(-b->a[k] * r2);
      g[k] = e * fc;
      dg[k] = e * (dfc - 2.0 * b->a[k] * r * fc);
    }
  } else {
    double t = 2.0 * r / rc - 1.0, dtdr = 2.0 / rc;
    double tm2 = 1.0, tm1 = t, dm2 = 0.0, dm1 = 1.0;
    g[0] = fc;
    dg[0] = dfc;
    if (K > 1) {
      g[1] = t * fc;
      dg[1] = dtdr * fc + t * dfc;
    }
    for (k = 2; k < K; ++k) {
      double tk = 2.0 * t * tm1 - tm2;
      double dk = 2.0 * tm1 + 2.0 * t * dm1 - dm2;
      g[k] = tk * fc;
      dg[k] = dk * dtdr * fc + tk * dfc;
      tm2 = tm1;
      tm1 = tk;
      dm2 = dm1;
      dm1 = dk;
    }
  }
}

/* Number of (l, m) with 0 <= m <= l <= P; index of (l, m) is l(l+1)/2 + m. */
int compot_n_lm(int P) { return (P + 1) * (P + 2) / 2; }

/*
 * Polynomial form of the addition theorem (MODEL_SPEC 3, angular term).
 * For a unit vector u = (x, y, z):
 *   C_0 = 1, S_0 = 0, C_m = x C_(m-1) - y S_(m-1), S_m = x S_(m-1) + y C_(m-1)
 *   Q_l^m(z) = d^m P_l / dz^m:  Q_m^m = (2m-1)!!, Q_(m+1)^m = (2m+1) z Q_m^m,
 *   Q_l^m = ((2l-1) z Q_(l-1)^m - (l+m-1) Q_(l-2)^m) / (l-m),
 * so that P_l(u_a . u_b) = sum_m w_lm Q_l^m(z_a) Q_l^m(z_b)
 *   [C_m(a) C_m(b) + S_m(a) S_m(b)],  w_l0 = 1, w_lm = 2 (l-m)!/(l+m)!.
 * Output yc[lm] = Q_l^m C_m, ys[lm] = Q_l^m S_m, and, if dyc is not NULL,
 * their gradients dyc[3 lm + a], dys[3 lm + a] with x, y, z treated as
 * independent (dC_m/dx = m C_(m-1), dC_m/dy = -m S_(m-1), dS_m/dx =
 * m S_(m-1), dS_m/dy = m C_(m-1), dQ_l^m/dz = Q_l^(m+1)).  q is scratch of
 * compot_n_lm(P) doubles; P <= COMPOT_MAX_P.
 */
void compot_ylm(double const u[3], int P, double *q, double *yc, double *ys,
                double *dyc, double *dys)
{
  double cm[COMPOT_MAX_P + 2], sm[COMPOT_MAX_P + 2];
  double x = u[0], y = u[1], z = u[2], dfact = 1.0;
  int l, m;

  cm[0] = 1.0;
  sm[0] = 0.0;
  for (m = 1; m <= P; ++m) {
    cm[m] = x * cm[m - 1] - y * sm[m - 1];
    sm[m] = x * sm[m - 1] + y * cm[m - 1];
  }
  for (m = 0; m <= P; ++m) {
    if (m > 0) dfact *= (double) (2 * m - 1);
    q[m * (m + 1) / 2 + m] = dfact;
    if (m + 1 <= P) q[(m + 1) * (m + 2) / 2 + m] = (2 * m + 1) * z * dfact;
    for (l = m + 2; l <= P; ++l)
      q[l * (l + 1) / 2 + m] = ((2 * l - 1) * z * q[(l - 1) * l / 2 + m]
                                - (l + m - 1) * q[(l - 2) * (l - 1) / 2 + m])
                               / (double) (l - m);
  }
  for (l = 0; l <= P; ++l) {
    for (m = 0; m <= l; ++m) {
      int lm = l * (l + 1) / 2 + m;
      double Q = q[lm];
      yc[lm] = Q * cm[m];
      ys[lm] = Q * sm[m];
      if (dyc != NULL) {
        double dq = m < l ? q[lm + 1] : 0.0;
        double dcx = m > 0 ? m * cm[m - 1] : 0.0;
        double dcy = m > 0 ? -m * sm[m - 1] : 0.0;
        double dsx = m > 0 ? m * sm[m - 1] : 0.0;
        double dsy = m > 0 ? m * cm[m - 1] : 0.0;
        dyc[3 * lm + 0] = Q * dcx;
        dyc[3 * lm + 1] = Q * dcy;
        dyc[3 * lm + 2] = dq * cm[m];
        dys[3 * lm + 0] = Q * dsx;
        dys[3 * lm + 1] = Q * dsy;
        dys[3 * lm + 2] = dq * sm[m];
      }
    }
  }
}

/*
 * ZBL universal screened nuclear repulsion, as LAMMPS pair_style zbl
 * (Ziegler, Biersack, Littmark, "The Stopping and Range of Ions in Matter",
 * 1985):  E(r) = Z_i Z_j qqr2e / r * sum_n c_n exp(-d_n r / a),
 * a = 0.46850 / (Z_i^0.23 + Z_j^0.23) [Angstrom], qqr2e = 14.399645 eV A.
 * Between r_in and r_out a polynomial t^3 (sw3 + sw4 t), t = r - r_in, is
 * added, and a constant sw5 everywhere below r_out, so that the energy and
 * its first two derivatives vanish at r_out.  phi = 0 for r >= r_out.
 */
static double const zbl_c[4] = {0.02817, 0.28022, 0.50986, 0.18175};
static double const zbl_d[4] = {0.20162, 0.40290, 0.94229, 3.19980};
#define ZBL_PZBL 0.23
#define ZBL_A0 0.46850
#define ZBL_QQR2E 14.399645

static void zbl_raw(double const *d, double zze, double r, double *e,
                    double *de, double *d2e)
{
  double sum = 0.0, sum_p = 0.0, sum_pp = 0.0, rinv = 1.0 / r;
  int n;
  for (n = 0; n < 4; ++n) {
    double en = zbl_c[n] * exp(-d[n] * r);
    sum += en;
    sum_p += d[n] * en;
    sum_pp += d[n] * d[n] * en;
  }
  *e = zze * sum * rinv;
  *de = zze * (-sum_p - sum * rinv) * rinv;
  if (d2e != NULL)
    *d2e = zze * (sum_pp + 2.0 * sum_p * rinv + 2.0 * sum * rinv * rinv)
           * rinv;
}

void compot_zbl_setup(compot_zbl *z, int pair, double zi, double zj,
                      double r_in, double r_out)
{
  double ainv = (pow(zi, ZBL_PZBL) + pow(zj, ZBL_PZBL)) / ZBL_A0;
  double *d = z->d + 4 * pair, *sw = z->sw + 5 * pair;
  double tc = r_out - r_in, fc, fcp, fcpp, swa, swb;
  int n;
  for (n = 0; n < 4; ++n) d[n] = zbl_d[n] * ainv;
  z->zze[pair] = zi * zj * ZBL_QQR2E;
  zbl_raw(d, z->zze[pair], r_out, &fc, &fcp, &fcpp);
  swa = (-3.0 * fcp + tc * fcpp) / (tc * tc);
  swb = (2.0 * fcp - tc * fcpp) / (tc * tc * tc);
  sw[0] = swa;
  sw[1] = swb;
  sw[2] = swa / 3.0;
  sw[3] = swb / 4.0;
  sw[4] = -fc + (tc / 2.0) * fcp - (tc * tc / 12.0) * fcpp;
}

double compot_zbl_eval(compot_zbl const *z, int pair, double r_in,
                       double r_out, double r, double *dphi)
{
  double const *sw = z->sw + 5 * pair;
  double e, de;
  if (r >= r_out) {
    *dphi = 0.0;
    return 0.0;
  }
  zbl_raw(z->d + 4 * pair, z->zze[pair], r, &e, &de, NULL);
  e += sw[4];
  if (r > r_in) {
    double t = r - r_in;
    e += t * t * t * (sw[2] + sw[3] * t);
    de += t * t * (sw[0] + sw[1] * t);
  }
  *dphi = de;
  return e;
}
