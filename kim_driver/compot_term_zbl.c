/*
 * compot_term_zbl.c -- the fixed ZBL core repulsion ZBL(r_in, r_out)
 * (MODEL_SPEC 4, choice): the pair function, its switching coefficients
 * (made at refresh), and the leaf e(i) = 1/2 sum_j phi_ZBL(r_ij) with its
 * gradient.  Never switched off by the inner window or the grade (format
 * v2: the true distance, not the effective one).
 */
#include "compot_eval.h"

#include <math.h>

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

double compot_zbl_pair(compot_zbl const *z, int pair, double r_in,
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

/* ZBL leaf: e(i) = 1/2 sum_j phi_ZBL(r_ij); with grad, adds a/2 phi' to
   the slots' T. */
COMPOT_HOT double compot_zbl_value(compot_ctx *c, compot_node const *nd, int i,
                        double a, int grad)
{
  compot_workspace *ws = c->ws;
  int S = c->S, Zi = c->in->species[i], p;
  double e = 0.0;
  for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
    double dphi, r = ws->sr[ws->pslot[p]];
    int pair = Zi * S + c->in->species[ws->pj[p]];
    if (r >= nd->r_out) continue;
    e += 0.5 * compot_zbl_pair(&nd->zbl, pair, nd->r_in, nd->r_out, r, &dphi);
    if (grad) c->st[ws->pslot[p]] += 0.5 * a * dphi;
  }
  return e;
}
