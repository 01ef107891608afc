/*
 * compot_kernels.c -- the scalar functions of the compot model
 * (MODEL_SPEC.md sections 1-3 and 10): cutoff function, inner window,
 * radial basis functions and the bounded exponentiated feature, on one
 * argument or vectorised over many.  Each function returns the value and
 * its derivative together.  (The real harmonics of the angular term are
 * in compot_harmonics.c, the ZBL pair function in compot_term_zbl.c.)
 */
#include "compot_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* f_c and f_c' on n distances (the loop vectorises). */
COMPOT_HOT void compot_cutoff_n(int n, double const *r, double rc_inv, double *fc,
                     double *dfc)
{
  int i;
  for (i = 0; i < n; ++i) {
    double x = r[i] * rc_inv, x3 = x * x * x;
    double in = (double) (x < 1.0);
    fc[i] = in * (1.0 + x3 * x * (-35.0 + x * (84.0 + x * (-70.0 + 20.0 * x))));
    dfc[i] = in * (x3 * (-140.0 + x * (420.0 + x * (-420.0 + 140.0 * x))) * rc_inv);
  }
}

/*
 * exp(x) = s (1 + q) and expm1(x) = s q + (s - 1), s = 2^n, q = expm1(r),
 * for x clamped to [-708, 709] (so that 2^n is a normal number; below
 * -708 the result is ~1e-308 instead of 0 or a subnormal, far below any
 * term it is added to).  Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2,
 * and the Taylor polynomial of expm1(r) to degree 13 (truncation error
 * < 5e-18) in Estrin's scheme (short dependency chains): about 2 ulp for
 * exp, and for expm1 also near 0 (n = 0 gives q exactly, without
 * cancellation).  Written without branches or library calls (the clamp is
 * arithmetic, 2^n is built in the exponent bits) so that loops over it
 * vectorise in plain C99, e.g. with SSE2 at -O3.
 */
static inline void exp_parts(double x, double *s_out, double *q_out)
{
  const double shift = 6755399441055744.0; /* 1.5 * 2^52 */
  const double log2e = 1.4426950408889634074;
  const double ln2_hi = 6.93147180369123816490e-01; /* 32 significant bits */
  const double ln2_lo = 1.90821492927058770002e-10;
  double lo = (double) (x < -708.0), hi = (double) (x > 709.0);
  double t, n, r, r2, r4, r8, p01, p23, p45, p67, p89, pab, s;
  uint64_t bits;
  x = (1.0 - lo - hi) * x - 708.0 * lo + 709.0 * hi;
  t = x * log2e + shift; /* n in the low mantissa bits of t */
  n = t - shift;         /* round(x log2e) */
  r = (x - n * ln2_hi) - n * ln2_lo;
  r2 = r * r;
  r4 = r2 * r2;
  r8 = r4 * r4;
  /* q = r P(r), P(r) = sum_{i=0..12} r^i / (i+1)! */
  p01 = 1.0 + r * (1.0 / 2.0);
  p23 = 1.0 / 6.0 + r * (1.0 / 24.0);
  p45 = 1.0 / 120.0 + r * (1.0 / 720.0);
  p67 = 1.0 / 5040.0 + r * (1.0 / 40320.0);
  p89 = 1.0 / 362880.0 + r * (1.0 / 3628800.0);
  pab = 1.0 / 39916800.0 + r * (1.0 / 479001600.0);
  p01 += r2 * p23;
  p45 += r2 * p67;
  p89 += r2 * pab;
  p01 += r4 * p45;
  p89 += r4 * (1.0 / 6227020800.0);
  p01 += r8 * p89;
  memcpy(&bits, &t, sizeof bits);
  bits = (bits + 1023u) << 52; /* exponent field n + 1023 */
  memcpy(&s, &bits, sizeof s);
  *s_out = s;
  *q_out = r * p01;
}

/* y[i] = exp(x[i]) for i < n (y may equal x); the loop vectorises. */
static void exp_n(int n, double const *x, double *y)
{
  int i;
  for (i = 0; i < n; ++i) {
    double s, q;
    exp_parts(x[i], &s, &q);
    y[i] = s + s * q;
  }
}

/*
 * Bounded exponentiated feature (MODEL_SPEC 3 and 10), element-wise for
 * i < n, with uc = clip(u, -1, 1) = u_b outside, d = u - uc, e = exp(g uc):
 *   x(g, u) = (exp(g u) - 1)/g                  for |u| <= 1
 *             (u + g u^2/2 + g^2 u^3/6 for |g| < 1e-6);
 *   format v1 (tau = 0), for |u| > 1 the 2nd-order Taylor expansion about
 *   u_b:  x = x(g, uc) + e d + g e d^2 / 2,  dx/du = e + g e d;
 *   format v2 (tau > 0), the saturating continuation with T = tau tanh(d/tau):
 *         x = x(g, uc) + e T + g e T^2 / 2,  dx/du = (e + g e T)(1 - tanh^2),
 *   C2 at |u| = 1 and bounded (|x - x(g, uc)| <= e tau + |g| e tau^2 / 2)
 * (as compot.functions.exp_feature_fdf, whose tau None is tau = 0 here).
 * Inside (d = 0) both continuations give x(g, u) and e exactly.
 * ginv[i] = 1/gamma[i], or 1 where |gamma[i]| < 1e-6
 * (compot_exp_feature_ginv).  Branches are arithmetic blends, so the loops
 * vectorise; with tau > 0 the loop with tanh runs only when some |u| > 1.
 */
double compot_exp_feature_ginv(double gamma)
{
  return fabs(gamma) < 1e-6 ? 1.0 : 1.0 / gamma;
}

/* tanh(y) = sign(y) q / (q + 2), q = expm1(2 |y|) (no cancellation near
   0; exactly 0 at 0, and 1 once 2|y| exceeds the clamp of exp_parts). */
static inline double tanh_bf(double y)
{
  double s, q, em1;
  exp_parts(2.0 * fabs(y), &s, &q);
  em1 = s * q + (s - 1.0);
  return copysign(em1 / (em1 + 2.0), y);
}

static inline void exp_feature_inside(double g, double gi, double v,
                                      double *uc, double *e, double *xin)
{
  double lo = (double) (v < -1.0), hi = (double) (v > 1.0);
  double small = (double) (g < 1e-6) * (double) (g > -1e-6);
  double c = (1.0 - lo - hi) * v + hi - lo, s, q;
  exp_parts(g * c, &s, &q);
  *uc = c;
  *e = s + s * q;
  *xin = small * (c + g * c * c / 2.0 + g * g * c * c * c / 6.0)
         + (1.0 - small) * ((s * q + (s - 1.0)) * gi);
}

COMPOT_HOT void compot_exp_feature_v(int n, double const *gamma, double const *ginv,
                          double const *u, double tau, double *x, double *dx)
{
  int i, outside = 0;
  if (tau > 0.0)
    for (i = 0; i < n; ++i) outside |= (u[i] > 1.0) | (u[i] < -1.0);
  if (!outside) {
    for (i = 0; i < n; ++i) {
      double g = gamma[i], v = u[i], uc, e, xin, d;
      exp_feature_inside(g, ginv[i], v, &uc, &e, &xin);
      d = v - uc;
      x[i] = xin + e * d + 0.5 * g * e * d * d;
      dx[i] = e + g * e * d;
    }
    return;
  }
  for (i = 0; i < n; ++i) {
    double g = gamma[i], v = u[i], uc, e, xin, th, T;
    exp_feature_inside(g, ginv[i], v, &uc, &e, &xin);
    th = tanh_bf((v - uc) / tau);
    T = tau * th;
    x[i] = xin + e * T + 0.5 * g * e * T * T;
    dx[i] = (e + g * e * T) * (1.0 - th * th);
  }
}

void compot_exp_feature(double gamma, double u, double tau, double *x,
                        double *dx)
{
  double ginv = compot_exp_feature_ginv(gamma);
  compot_exp_feature_v(1, &gamma, &ginv, &u, tau, x, dx);
}

/*
 * Effective distance of format v2 (MODEL_SPEC 10) at which the fitted terms
 * see a pair closer than r_b: with w_c = 0.22 (r_b - r_a) and t = (r - r_b +
 * w_c)/w_c clipped to [0, 1],
 *   c(r) = r_b - w_c (1/2 - I(t)),  I(t) = 7t^5 - 14t^6 + 10t^7 - 5t^8/2
 * (the integral of the C3 step S_in of compot_inner_window from 0 to t), so
 * dc/dr = S_in(t): c is monotone, joins r at r_b to fourth order and is
 * r_b - 0.11 (r_b - r_a) for r <= r_b - w_c; r itself for r >= r_b (as
 * compot.functions.effective_distance_fdf).
 */
void compot_effective_distance(double r, double r_a, double r_b, double *c,
                               double *dc)
{
  double wc = 0.22 * (r_b - r_a), t, t5, dds;
  if (r >= r_b || !(wc > 0.0)) {
    *c = r;
    *dc = 1.0;
    return;
  }
  t = r <= r_b - wc ? 0.0 : (r - (r_b - wc)) / wc;
  t5 = t * t * t * t * t;
  *c = r_b - wc * (0.5 - t5 * (7.0 + t * (-14.0 + t * (10.0 - 2.5 * t))));
  compot_inner_window(r, r_b - wc, r_b, dc, &dds); /* dc/dr = S_in(t) */
}

/*
 * Inner window of format v2 (MODEL_SPEC 10), t = (r - r_a)/(r_b - r_a):
 *   s_in = 0 for r <= r_a (and r < r_b), 1 for r >= r_b, otherwise
 *   s_in = 35 t^4 - 84 t^5 + 70 t^6 - 20 t^7 = 1 - (the f_c polynomial of t),
 *   ds_in/dr = 140 t^3 (1 - t)^3 / (r_b - r_a);
 * C3: the value steps from 0 to 1 with three vanishing derivatives at both
 * ends (as compot.functions.inner_window_fdf).
 */
void compot_inner_window(double r, double r_a, double r_b, double *s,
                         double *ds)
{
  double w = r_b - r_a, t, t3;
  if (r >= r_b) {
    *s = 1.0;
    *ds = 0.0;
    return;
  }
  if (r <= r_a || !(w > 0.0)) {
    *s = 0.0;
    *ds = 0.0;
    return;
  }
  t = (r - r_a) / w;
  t3 = t * t * t;
  *s = t3 * t * (35.0 + t * (-84.0 + t * (70.0 - 20.0 * t)));
  *ds = t3 * (140.0 + t * (-420.0 + t * (420.0 - 140.0 * t))) / w;
}

/*
 * Radial basis functions g^_k(r) = g_k(r) f_c(r), k = 1..K, and derivatives
 * (MODEL_SPEC 2):
 *   Gaussian:  g_k = exp(-a_k r^2), a_k = alpha beta^(k-1);
 *   Chebyshev: g_k = T_(k-1)(t), t = 2 r / r_c - 1.
 * fc, dfc are f_c(r) and f_c'(r).  g[k-1], dg[k-1] receive g^_k, g^_k'.
 * The Gaussian loop over k vectorises.  (No recurrence in k: e_(k+1) =
 * e_k^beta is a product only for integer beta, and beta is fitted.)
 */
COMPOT_HOT void compot_radial_basis(compot_basis const *b, double rc, double r,
                         double fc, double dfc, double *g, double *dg)
{
  int k, K = b->K;
  if (b->kind == COMPOT_BASIS_GAUSSIAN) {
    double const *a = b->a;
    double r2 = r * r, two_r_fc = 2.0 * r * fc;
    for (k = 0; k < K; ++k) {
      double s, q, e;
      exp_parts(-a[k] * r2, &s, &q);
      e = s + s * q;
      g[k] = e * fc;
      dg[k] = e * (dfc - a[k] * two_r_fc);
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

/*
 * Gaussian basis on m pairs at once (the loops vectorise over pairs and k):
 * g[t K + k] = exp(-a_k r_t^2) f_c(r_t), dg[t K + k] = its r-derivative.
 */
COMPOT_HOT void compot_gaussian_n(compot_basis const *b, int m, double const *r,
                       double const *fc, double const *dfc, double *g,
                       double *dg)
{
  int K = b->K, t, k;
  double const *a = b->a;
  for (t = 0; t < m; ++t) {
    double r2 = r[t] * r[t];
    for (k = 0; k < K; ++k) g[t * K + k] = -a[k] * r2;
  }
  exp_n(m * K, g, g);
  for (t = 0; t < m; ++t) {
    double f = fc[t], df = dfc[t], two_r_fc = 2.0 * r[t] * f;
    double *gt = g + t * K, *dgt = dg + t * K;
    for (k = 0; k < K; ++k) {
      double e = gt[k];
      gt[k] = e * f;
      dgt[k] = e * (df - a[k] * two_r_fc);
    }
  }
}
