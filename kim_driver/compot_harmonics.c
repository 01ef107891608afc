/*
 * compot_harmonics.c -- the real harmonics of the angular term (MODEL_SPEC
 * 3: the addition theorem), for many unit vectors at once.
 *
 * Layout (shared with the Python reference, compot.functions): for degree
 * l = 0..P the 2l+1 functions of degree l sit at v = l^2 .. l^2 + 2l,
 *   v = l^2          : Q_l^0(z)
 *   v = l^2 + 2m - 1 : sqrt(w_lm) Q_l^m(z) C_m(x, y)     (m = 1..l)
 *   v = l^2 + 2m     : sqrt(w_lm) Q_l^m(z) S_m(x, y)
 * with Q_l^m = d^m P_l / dz^m, C_m + i S_m = (x + i y)^m and w_l0 = 1,
 * w_lm = 2 (l-m)!/(l+m)!.  Normalisation: P_l-normalised (no 4 pi/(2l+1)
 * and no Condon-Shortley phase), so that for unit vectors a, b
 *   sum_(v = l^2 .. l^2 + 2l) Y_v(a) Y_v(b) = P_l(a . b).
 * The recurrence coefficients per (l, m), 0 <= m <= l, are stored at index
 * lm = l(l+1)/2 + m (compot_n_lm(P) of them).
 */
#include "compot_internal.h"

#include <math.h>

/* Number of (l, m) with 0 <= m <= l <= P; index of (l, m) is l(l+1)/2 + m. */
int compot_n_lm(int P) { return (P + 1) * (P + 2) / 2; }

/* coef[3 lm + 0..2] for lm < compot_n_lm(P): sqrt(w_lm) and the
   coefficients of the recurrence for Q_l^m (compot_real_harmonics). */
void compot_real_harmonics_coef(int P, double *coef)
{
  int l, m, t;
  double dfact = 1.0;
  for (m = 0; m <= P; ++m) {
    if (m > 0) dfact *= (double) (2 * m - 1);
    for (l = m; l <= P; ++l) {
      int lm = l * (l + 1) / 2 + m;
      double w = 1.0;
      if (m > 0) {
        w = 2.0;
        for (t = l - m + 1; t <= l + m; ++t) w /= (double) t;
      }
      coef[3 * lm] = sqrt(w);
      if (l == m) { /* Q_m^m = (2m-1)!! */
        coef[3 * lm + 1] = 0.0;
        coef[3 * lm + 2] = -dfact;
      } else if (l == m + 1) { /* Q_(m+1)^m = (2m+1) z Q_m^m */
        coef[3 * lm + 1] = (double) (2 * m + 1) * dfact;
        coef[3 * lm + 2] = 0.0;
      } else {
        coef[3 * lm + 1] = (double) (2 * l - 1) / (double) (l - m);
        coef[3 * lm + 2] = (double) (l + m - 1) / (double) (l - m);
      }
    }
  }
}

/*
 * Polynomial form of the addition theorem (MODEL_SPEC 3, angular term).
 * For a unit vector u = (x, y, z):
 *   C_0 = 1, S_0 = 0, C_m = x C_(m-1) - y S_(m-1), S_m = x S_(m-1) + y C_(m-1)
 *   Q_l^m(z) = d^m P_l / dz^m:  Q_m^m = (2m-1)!!, Q_(m+1)^m = (2m+1) z Q_m^m,
 *   Q_l^m = ((2l-1) z Q_(l-1)^m - (l+m-1) Q_(l-2)^m) / (l-m),
 * so that P_l(u_a . u_b) = sum_m w_lm Q_l^m(z_a) Q_l^m(z_b)
 *   [C_m(a) C_m(b) + S_m(a) S_m(b)],  w_l0 = 1, w_lm = 2 (l-m)!/(l+m)!,
 * i.e. P_l(u_a . u_b) = sum_v Y_v(u_a) Y_v(u_b) over the 2l+1 real functions
 *   Y_(l^2) = Q_l^0,  Y_(l^2+2m-1) = sqrt(w_lm) Q_l^m C_m,
 *   Y_(l^2+2m) = sqrt(w_lm) Q_l^m S_m   (m = 1..l),
 * (P_l-normalised real solid harmonics on the unit sphere).
 * For n unit vectors u_t = (ux[t], uy[t], uz[t]) at once, in blocks of 4
 * lanes (n a multiple of 4): Y[v stride + t] for v < (P+1)^2 and, if dY is not
 * NULL, the gradients dY[(a nv + v) stride + t] (component a = x, y, z;
 * nv = (P+1)^2) with x, y, z treated as independent (dC_m/dx = m C_(m-1),
 * dC_m/dy = -m S_(m-1), dS_m/dx = m S_(m-1), dS_m/dy = m C_(m-1),
 * dQ_l^m/dz = Q_l^(m+1)).  coef: 3 compot_n_lm(P) coefficients from
 * compot_real_harmonics_coef (per (l, m): sqrt(w_lm) and two of the recurrence; the
 * table of a larger P serves too).  stride >= n; P <= COMPOT_MAX_P.
 */
static inline COMPOT_ALWAYS_INLINE void
ylm_real(int n, double const *ux, double const *uy, double const *uz, int P,
         double const *coef, double *Y, double *dY,
         int stride)
{
  int nv = (P + 1) * (P + 1), l, m, t;
  size_t st = (size_t) stride, plane = (size_t) nv * st;
#define SW(lm) coef[3 * (lm)]
#define CA(lm) coef[3 * (lm) + 1]
#define CB(lm) coef[3 * (lm) + 2]
  /* per block of 4 vectors: C_m, S_m and Q_l^m (registers once the copies
     for small P are unrolled; at most 27.5 kB of stack for P = 40) */
  compot_v4 cm[P + 1], sm[P + 1], q[(P + 1) * (P + 2) / 2];
  compot_v4 const zero = v4_set1(0.0);

  for (t = 0; t < n; t += 4) {
    compot_v4 x = v4_load(ux + t), y = v4_load(uy + t), z = v4_load(uz + t);
    compot_v4 c0 = v4_set1(1.0), s0 = zero;
    cm[0] = c0;
    sm[0] = s0;
    for (m = 1; m <= P; ++m) {
      compot_v4 c1 = v4_sub(v4_mul(x, c0), v4_mul(y, s0));
      compot_v4 s1 = v4_add(v4_mul(x, s0), v4_mul(y, c0));
      cm[m] = c1;
      sm[m] = s1;
      c0 = c1;
      s0 = s1;
    }
    for (m = 0; m <= P; ++m) {
      int lm = m * (m + 1) / 2 + m;
      compot_v4 qb = v4_set1(-CB(lm)), qa;
      q[lm] = qb;
      if (m + 1 > P) continue;
      lm += m + 1;
      qa = v4_mul(v4_set1(CA(lm)), z);
      q[lm] = qa;
      for (l = m + 2; l <= P; ++l) {
        compot_v4 qv;
        lm += l;
        qv = v4_sub(v4_mul(v4_mul(v4_set1(CA(lm)), z), qa),
                    v4_mul(v4_set1(CB(lm)), qb));
        q[lm] = qv;
        qb = qa;
        qa = qv;
      }
    }
    for (l = 0; l <= P; ++l) {
      int lm = l * (l + 1) / 2, v = l * l;
      compot_v4 Q = q[lm];
      double *dc = dY + (size_t) v * st + t;
      v4_store(Y + (size_t) v * st + t, Q);
      if (dY != NULL) {
        v4_store(dc, zero);
        v4_store(dc + plane, zero);
        v4_store(dc + 2 * plane, l > 0 ? q[lm + 1] : zero);
      }
      for (m = 1; m <= l; ++m) {
        compot_v4 w = v4_set1(SW(lm + m)), wq = v4_mul(w, q[lm + m]);
        compot_v4 cmm = cm[m], smm = sm[m];
        double *yc = Y + (size_t) (v + 2 * m - 1) * st + t;
        v4_store(yc, v4_mul(wq, cmm));
        v4_store(yc + st, v4_mul(wq, smm));
        if (dY != NULL) {
          compot_v4 mq = v4_mul(v4_set1((double) m), wq);
          compot_v4 wd = m < l ? v4_mul(w, q[lm + m + 1]) : zero;
          compot_v4 cm1 = cm[m - 1], sm1 = sm[m - 1];
          dc = dY + (size_t) (v + 2 * m - 1) * st + t;
          v4_store(dc, v4_mul(mq, cm1));
          v4_store(dc + plane, v4_sub(zero, v4_mul(mq, sm1)));
          v4_store(dc + 2 * plane, v4_mul(wd, cmm));
          v4_store(dc + st, v4_mul(mq, sm1));
          v4_store(dc + st + plane, v4_mul(mq, cm1));
          v4_store(dc + st + 2 * plane, v4_mul(wd, smm));
        }
      }
    }
  }
#undef SW
#undef CA
#undef CB
}

/*
 * The real harmonics Y_v, v < (P+1)^2, of n unit vectors (n a multiple of
 * 4) into Y[v stride + t], and their gradients into dY[(a (P+1)^2 + v)
 * stride + t] unless dY is NULL (ylm_real).  Layout: degree l at v = l^2
 * .. l^2 + 2l in the order Q_l^0, then for m = 1..l the pair sqrt(w_lm)
 * Q_l^m C_m, sqrt(w_lm) Q_l^m S_m; P_l-normalised (sum over the 2l+1
 * functions of degree l of Y_v(a) Y_v(b) = P_l(a.b)), no Condon-Shortley
 * phase.  coef: compot_real_harmonics_coef of any P' >= P (made at
 * refresh for the model's largest P).
 */
COMPOT_HOT void compot_real_harmonics(int n, double const *ux, double const *uy,
                           double const *uz, int P, double const *coef,
                           double *Y, double *dY, int stride)
{
  /* copies for small P, with the loops over l and m unrolled */
  switch (P) {
  case 2: ylm_real(n, ux, uy, uz, 2, coef, Y, dY, stride); break;
  case 3: ylm_real(n, ux, uy, uz, 3, coef, Y, dY, stride); break;
  case 4: ylm_real(n, ux, uy, uz, 4, coef, Y, dY, stride); break;
  case 5: ylm_real(n, ux, uy, uz, 5, coef, Y, dY, stride); break;
  case 6: ylm_real(n, ux, uy, uz, 6, coef, Y, dY, stride); break;
  default: ylm_real(n, ux, uy, uz, P, coef, Y, dY, stride); break;
  }
}

