/*
 * compot_compute.c -- energy, forces and virial of a compot model
 * (MODEL_SPEC.md section 5).
 *
 * Organisation
 *   1. Pair lists: for every particle whose cluster functions are needed
 *      (contributing particles, plus with an N term every particle within
 *      r_c of a contributing one, ghosts included) the neighbours with
 *      r < r_c, with r, the unit vector and f_c(r), f_c'(r) computed once.
 *   2. Forward pass: per basis phi_k^(s)(i) (and rho_k^(s)(i) for N terms),
 *      every leaf's value e(i) at contributing atoms, then sums and products
 *      bottom-up, V_n(i) = e_n(i) + shift_n(Z_i).
 *   3. Backward pass: per-atom adjoints a_n(i) = dE/dV_n(i) top-down (sum:
 *      a child = a; product: a_X = a V_Y, a_Y = a V_X); leaf adjoints
 *      lambda_k^(s)(i) = dE/dphi_k^(s)(i) and nu = dE/drho (flowing back to
 *      phi of neighbours, ghosts included); every contribution is collected
 *      as the gradient of E with respect to the pair vector D_ij = r_j - r_i
 *      of the directed pair (i centre, j neighbour).
 *   4. Assembly: F_i += dE/dD_ij, F_j -= dE/dD_ij; virial
 *      sum dE/dD_ij (x) D_ij (symmetrised), per-particle virial half-half.
 */
#include "compot_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct compot_workspace {
  size_t n_cap;
  int *pstart;         /* [n] first pair of particle i */
  int *pend;           /* [n] one past its last pair */
  unsigned char *flag; /* [n] bit 1: contributing; bit 2: needs pairs */
  size_t pair_cap;
  int *pj;      /* [np] neighbour index */
  double *pr;   /* [np] distance */
  double *pu;   /* [3 np] unit vector D / r */
  double *pfc;  /* [np] f_c(r) */
  double *pdfc; /* [np] f_c'(r) */
  double *pg;   /* [3 np] dE/dD */
  size_t feat_cap;
  double *feat; /* per basis phi, lambda, rho, nu: [n S K] each */
  size_t node_cap;
  double *nodev; /* V and adjoint per node: [2 n_nodes n] */
  size_t scr_cap;
  double *scr;
  size_t ptr_cap;
  double **ptr; /* per-basis feature pointers */
};

compot_workspace *compot_workspace_create(void)
{
  return (compot_workspace *) calloc(1, sizeof(compot_workspace));
}

void compot_workspace_destroy(compot_workspace *ws)
{
  if (ws == NULL) return;
  free(ws->pstart);
  free(ws->pend);
  free(ws->flag);
  free(ws->pj);
  free(ws->pr);
  free(ws->pu);
  free(ws->pfc);
  free(ws->pdfc);
  free(ws->pg);
  free(ws->feat);
  free(ws->nodev);
  free(ws->scr);
  free(ws->ptr);
  free(ws);
}

static int grow(void **p, size_t need, size_t elem)
{
  void *q = realloc(*p, need * elem + 1);
  if (q == NULL) return COMPOT_ERR_MEMORY;
  *p = q;
  return COMPOT_OK;
}

static int ensure_pairs(compot_workspace *ws, size_t need)
{
  size_t cap;
  if (need <= ws->pair_cap) return COMPOT_OK;
  cap = ws->pair_cap ? ws->pair_cap : 1024;
  while (cap < need) cap *= 2;
  if (grow((void **) &ws->pj, cap, sizeof(int))
      || grow((void **) &ws->pr, cap, sizeof(double))
      || grow((void **) &ws->pu, 3 * cap, sizeof(double))
      || grow((void **) &ws->pfc, cap, sizeof(double))
      || grow((void **) &ws->pdfc, cap, sizeof(double))
      || grow((void **) &ws->pg, 3 * cap, sizeof(double)))
    return COMPOT_ERR_MEMORY;
  ws->pair_cap = cap;
  return COMPOT_OK;
}

static int ensure_doubles(double **p, size_t *cap, size_t need)
{
  if (need <= *cap) return COMPOT_OK;
  if (grow((void **) p, need, sizeof(double))) return COMPOT_ERR_MEMORY;
  *cap = need;
  return COMPOT_OK;
}

/* Everything one compute call needs, gathered once. */
typedef struct ctx {
  compot_model const *m;
  compot_workspace *ws;
  compot_input const *in;
  int n, S;
  int want_grad;
  double **bphi, **blam, **brho, **bnu;     /* per basis, NULL if unused */
  double *V, *adj;                          /* [n_nodes n] */
  double *g, *dg;                           /* [max_K] */
  double *w;                                /* [nlm] addition theorem weights */
  double *ac, *as, *bac, *bas;              /* [S K nlm] */
  double *selfv, *selfbar;                  /* [S K] */
  double *q, *yc, *ys, *dyc, *dys;          /* [nlm], [3 nlm] */
} ctx;

#define IS_CONTRIB(c, i) ((c)->ws->flag[i] & 1)

/* ---- leaves: forward ---------------------------------------------------- */

static double leaf_linear(ctx const *c, compot_node const *nd, int i)
{
  compot_basis const *b = &c->m->bases[nd->basis];
  int S = c->S, K = b->K, Z = c->in->species[i], s, k;
  double const *f = c->bphi[nd->basis] + (size_t) i * S * K;
  double const *cc = nd->c + (size_t) Z * S * K;
  double e = 0.0;
  for (s = 0; s < S; ++s)
    for (k = 0; k < K; ++k) e += cc[s * K + k] * f[s * K + k];
  return e;
}

/* E and N leaves: e = sum_s sum_l sum_k c[Z,s,l,k] x(gamma_l, f/f_max);
   if fbar is not NULL, add a * de/df into fbar. */
static double leaf_exp(ctx const *c, compot_node const *nd, int i, double a,
                       double *fbar)
{
  compot_basis const *b = &c->m->bases[nd->basis];
  int S = c->S, K = b->K, L = nd->L, Z = c->in->species[i], s, k, l;
  int nexp = nd->kind == COMPOT_NODE_NEXP;
  double const *f = (nexp ? c->brho : c->bphi)[nd->basis] + (size_t) i * S * K;
  double const *fmax = nexp ? b->rho_max : b->phi_max;
  double e = 0.0;
  for (s = 0; s < S; ++s) {
    double const *cs = nd->c + (size_t) (Z * S + s) * L * K;
    for (k = 0; k < K; ++k) {
      double u = f[s * K + k] / fmax[s * K + k], dsum = 0.0;
      for (l = 0; l < L; ++l) {
        double x, dx;
        compot_xfeature(nd->gamma[l], u, &x, &dx);
        e += cs[l * K + k] * x;
        dsum += cs[l * K + k] * dx;
      }
      if (fbar != NULL) fbar[s * K + k] += a * dsum / fmax[s * K + k];
    }
  }
  return e;
}

/* Accumulate A^c, A^s and the self terms of atom i for an A leaf. */
static void angular_sums(ctx *c, compot_node const *nd, int i)
{
  compot_model const *m = c->m;
  compot_basis const *b = &m->bases[nd->basis];
  compot_workspace const *ws = c->ws;
  int S = c->S, K = b->K, P = nd->P, nlm = compot_n_lm(P), p, k, lm;
  size_t tot = (size_t) S * K * nlm;
  memset(c->ac, 0, tot * sizeof(double));
  memset(c->as, 0, tot * sizeof(double));
  memset(c->selfv, 0, (size_t) S * K * sizeof(double));
  for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
    int s = c->in->species[ws->pj[p]];
    compot_radial(b, m->cutoff, ws->pr[p], ws->pfc[p], ws->pdfc[p], c->g,
                  c->dg);
    compot_ylm(ws->pu + 3 * p, P, c->q, c->yc, c->ys, NULL, NULL);
    for (k = 0; k < K; ++k) {
      double gk = c->g[k];
      double *ac = c->ac + (size_t) (s * K + k) * nlm;
      double *as = c->as + (size_t) (s * K + k) * nlm;
      for (lm = 0; lm < nlm; ++lm) {
        ac[lm] += gk * c->yc[lm];
        as[lm] += gk * c->ys[lm];
      }
      c->selfv[s * K + k] += gk * gk;
    }
  }
}

/* Index of the species pair (s1 <= s2), s1-major. */
static int pair_index(int S, int s1, int s2)
{
  return s1 * S - s1 * (s1 - 1) / 2 + (s2 - s1);
}

/*
 * A leaf: e(i) = sum_{s1<=s2} sum_k sum_p c[Z,(s1,s2),k,p] q_kp^(s1 s2)(i),
 *   q^(ss)   = sum_m w_lm (A^c_s^2 + A^s_s^2) - sum_{j in s} g_k(r_ij)^2,
 *   q^(s1s2) = 2 sum_m w_lm (A^c_s1 A^c_s2 + A^s_s1 A^s_s2)   (s1 < s2),
 * with l = p and A^c_(s,k,lm) = sum_{j in s} g_k(r_ij) Q_l^m(z_ij) C_m(u_ij).
 */
static double leaf_angular(ctx *c, compot_node const *nd, int i)
{
  int S = c->S, K = nd->K, P = nd->P, P1 = P + 1, nlm = compot_n_lm(P);
  int Z = c->in->species[i], np = S * (S + 1) / 2, s1, s2, k, l, m;
  double e = 0.0;
  angular_sums(c, nd, i);
  for (s1 = 0; s1 < S; ++s1)
    for (s2 = s1; s2 < S; ++s2) {
      double const *cc =
          nd->c + (size_t) (Z * np + pair_index(S, s1, s2)) * K * P1;
      for (k = 0; k < K; ++k) {
        double const *a1 = c->ac + (size_t) (s1 * K + k) * nlm;
        double const *b1 = c->as + (size_t) (s1 * K + k) * nlm;
        double const *a2 = c->ac + (size_t) (s2 * K + k) * nlm;
        double const *b2 = c->as + (size_t) (s2 * K + k) * nlm;
        for (l = 0; l <= P; ++l) {
          double sum = 0.0, qv;
          for (m = 0; m <= l; ++m) {
            int lm = l * (l + 1) / 2 + m;
            sum += c->w[lm] * (a1[lm] * a2[lm] + b1[lm] * b2[lm]);
          }
          qv = s1 == s2 ? sum - c->selfv[s1 * K + k] : 2.0 * sum;
          e += cc[k * P1 + l] * qv;
        }
      }
    }
  return e;
}

/* Backward of an A leaf at atom i with adjoint a: adds dE/dD_ij to pg. */
static void leaf_angular_backward(ctx *c, compot_node const *nd, int i,
                                  double a)
{
  compot_model const *model = c->m;
  compot_basis const *b = &model->bases[nd->basis];
  compot_workspace *ws = c->ws;
  int S = c->S, K = nd->K, P = nd->P, P1 = P + 1, nlm = compot_n_lm(P);
  int Z = c->in->species[i], np = S * (S + 1) / 2, s1, s2, k, l, m, p, lm;
  size_t tot = (size_t) S * K * nlm;

  angular_sums(c, nd, i);
  memset(c->bac, 0, tot * sizeof(double));
  memset(c->bas, 0, tot * sizeof(double));
  memset(c->selfbar, 0, (size_t) S * K * sizeof(double));
  for (s1 = 0; s1 < S; ++s1)
    for (s2 = s1; s2 < S; ++s2) {
      double const *cc =
          nd->c + (size_t) (Z * np + pair_index(S, s1, s2)) * K * P1;
      for (k = 0; k < K; ++k) {
        size_t o1 = (size_t) (s1 * K + k) * nlm, o2 = (size_t) (s2 * K + k) * nlm;
        for (l = 0; l <= P; ++l) {
          double t = 2.0 * a * cc[k * P1 + l];
          if (t == 0.0) continue;
          if (s1 == s2) c->selfbar[s1 * K + k] -= 0.5 * t;
          for (m = 0; m <= l; ++m) {
            lm = l * (l + 1) / 2 + m;
            /* s1 == s2: d(A^2)/dA = 2A; s1 < s2: 2 (A1 A2) -> 2 A2, 2 A1 */
            c->bac[o1 + lm] += t * c->w[lm] * c->ac[o2 + lm];
            c->bas[o1 + lm] += t * c->w[lm] * c->as[o2 + lm];
            if (s1 != s2) {
              c->bac[o2 + lm] += t * c->w[lm] * c->ac[o1 + lm];
              c->bas[o2 + lm] += t * c->w[lm] * c->as[o1 + lm];
            }
          }
        }
      }
    }
  for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
    int s = c->in->species[ws->pj[p]];
    double const *u = ws->pu + 3 * p;
    double r = ws->pr[p], G[3] = {0.0, 0.0, 0.0};
    compot_radial(b, model->cutoff, r, ws->pfc[p], ws->pdfc[p], c->g, c->dg);
    compot_ylm(u, P, c->q, c->yc, c->ys, c->dyc, c->dys);
    for (k = 0; k < K; ++k) {
      double const *bac = c->bac + (size_t) (s * K + k) * nlm;
      double const *bas = c->bas + (size_t) (s * K + k) * nlm;
      double h = 0.0, gv[3] = {0.0, 0.0, 0.0}, coef, ug;
      for (lm = 0; lm < nlm; ++lm) {
        h += bac[lm] * c->yc[lm] + bas[lm] * c->ys[lm];
        gv[0] += bac[lm] * c->dyc[3 * lm] + bas[lm] * c->dys[3 * lm];
        gv[1] += bac[lm] * c->dyc[3 * lm + 1] + bas[lm] * c->dys[3 * lm + 1];
        gv[2] += bac[lm] * c->dyc[3 * lm + 2] + bas[lm] * c->dys[3 * lm + 2];
      }
      coef = c->dg[k] * h + 2.0 * c->selfbar[s * K + k] * c->g[k] * c->dg[k];
      ug = u[0] * gv[0] + u[1] * gv[1] + u[2] * gv[2];
      G[0] += coef * u[0] + c->g[k] * (gv[0] - ug * u[0]) / r;
      G[1] += coef * u[1] + c->g[k] * (gv[1] - ug * u[1]) / r;
      G[2] += coef * u[2] + c->g[k] * (gv[2] - ug * u[2]) / r;
    }
    ws->pg[3 * p] += G[0];
    ws->pg[3 * p + 1] += G[1];
    ws->pg[3 * p + 2] += G[2];
  }
}

/* ZBL leaf: e(i) = 1/2 sum_j phi_ZBL(r_ij); with grad, adds a/2 phi' u. */
static double leaf_zbl(ctx *c, compot_node const *nd, int i, double a,
                       int grad)
{
  compot_workspace *ws = c->ws;
  int S = c->S, Zi = c->in->species[i], p;
  double e = 0.0;
  for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
    double dphi;
    int pair = Zi * S + c->in->species[ws->pj[p]];
    if (ws->pr[p] >= nd->r_out) continue;
    e += 0.5 * compot_zbl_eval(&nd->zbl, pair, nd->r_in, nd->r_out,
                               ws->pr[p], &dphi);
    if (grad) {
      double t = 0.5 * a * dphi;
      ws->pg[3 * p] += t * ws->pu[3 * p];
      ws->pg[3 * p + 1] += t * ws->pu[3 * p + 1];
      ws->pg[3 * p + 2] += t * ws->pu[3 * p + 2];
    }
  }
  return e;
}

/* ---- setup -------------------------------------------------------------- */

/* Pairs (r < r_c) of particle i, appended at *np; with mark, the
   neighbours found are flagged as needing pairs of their own. */
static int pairs_of(ctx *c, int i, size_t *np, int mark, char *msg,
                    size_t msg_size)
{
  compot_input const *in = c->in;
  compot_workspace *ws = c->ws;
  int n = c->n, jj, nn = 0, err;
  int const *list = NULL;
  double rc = c->m->cutoff, rc2 = rc * rc, rc_inv = 1.0 / rc;
  double const *xi = in->coords + 3 * i;

  ws->pstart[i] = (int) *np;
  ws->pend[i] = (int) *np;
  if (in->species[i] < 0 || in->species[i] >= c->S) {
    compot_set_msg(msg, msg_size,
                   "particle %d has species index %d; expected 0..%d "
                   "(species in parameter file order)",
                   i, in->species[i], c->S - 1);
    return COMPOT_ERR_INPUT;
  }
  err = in->get_neighbors(in->neighbor_context, i, &nn, &list);
  if (err) {
    compot_set_msg(msg, msg_size,
                   "neighbour list of particle %d unavailable (host returned "
                   "error %d)",
                   i, err);
    return COMPOT_ERR_INPUT;
  }
  if (nn > 0 && ensure_pairs(ws, *np + (size_t) nn)) {
    compot_set_msg(msg, msg_size, "out of memory for %lu pairs",
                   (unsigned long) (*np + (size_t) nn));
    return COMPOT_ERR_MEMORY;
  }
  for (jj = 0; jj < nn; ++jj) {
    int j = list[jj], a;
    double d[3], d2 = 0.0, r;
    size_t q = *np;
    if (j < 0 || j >= n) {
      compot_set_msg(msg, msg_size,
                     "neighbour list of particle %d contains index %d; "
                     "expected 0..%d",
                     i, j, n - 1);
      return COMPOT_ERR_INPUT;
    }
    for (a = 0; a < 3; ++a) {
      d[a] = in->coords[3 * j + a] - xi[a];
      d2 += d[a] * d[a];
    }
    if (!(d2 < rc2)) continue; /* longer lists are allowed (KLIFF) */
    if (in->species[j] < 0 || in->species[j] >= c->S) {
      compot_set_msg(msg, msg_size,
                     "particle %d (a neighbour of particle %d) has species "
                     "index %d; expected 0..%d",
                     j, i, in->species[j], c->S - 1);
      return COMPOT_ERR_INPUT;
    }
    r = sqrt(d2);
    if (!(r > 0.0)) {
      compot_set_msg(msg, msg_size,
                     "particles %d and %d are at the same position; "
                     "expected distinct positions",
                     i, j);
      return COMPOT_ERR_INPUT;
    }
    if (mark) ws->flag[j] |= 2;
    ws->pj[q] = j;
    ws->pr[q] = r;
    for (a = 0; a < 3; ++a) ws->pu[3 * q + a] = d[a] / r;
    compot_cutoff_fn_inv(r, rc_inv, &ws->pfc[q], &ws->pdfc[q]);
    ws->pg[3 * q] = ws->pg[3 * q + 1] = ws->pg[3 * q + 2] = 0.0;
    *np = q + 1;
  }
  ws->pend[i] = (int) *np;
  return COMPOT_OK;
}

/* Pairs of contributing particles, and with an N term of every particle
   within r_c of one (ghosts included). */
static int build_pairs(ctx *c, char *msg, size_t msg_size)
{
  compot_workspace *ws = c->ws;
  int n = c->n, i, err, mark = c->m->has_nexp;
  size_t np = 0;

  for (i = 0; i < n; ++i) {
    ws->flag[i] = c->in->contributing[i] ? 3 : 0;
    ws->pstart[i] = ws->pend[i] = 0;
  }
  for (i = 0; i < n; ++i)
    if (ws->flag[i] & 1) {
      err = pairs_of(c, i, &np, mark, msg, msg_size);
      if (err) return err;
    }
  if (mark)
    for (i = 0; i < n; ++i)
      if (ws->flag[i] == 2) {
        err = pairs_of(c, i, &np, 0, msg, msg_size);
        if (err) return err;
      }
  return COMPOT_OK;
}

static int setup(ctx *c, char *msg, size_t msg_size)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int n = c->n, S = c->S, b, lm, l, mm;
  size_t nfeat = 0, nscr, nlm = (size_t) compot_n_lm(m->max_P);
  size_t sk = (size_t) S * (size_t) m->max_K;
  double *f, *s;

  if ((size_t) n + 1 > ws->n_cap) {
    if (grow((void **) &ws->pstart, (size_t) n + 1, sizeof(int))
        || grow((void **) &ws->pend, (size_t) n + 1, sizeof(int))
        || grow((void **) &ws->flag, (size_t) n + 1, 1))
      goto nomem;
    ws->n_cap = (size_t) n + 1;
  }
  for (b = 0; b < m->n_bases; ++b) {
    size_t one = (size_t) n * S * m->bases[b].K;
    compot_basis const *B = &m->bases[b];
    if (B->need_phi) nfeat += one * (c->want_grad ? 2 : 1);
    if (B->need_rho) nfeat += one * (c->want_grad ? 2 : 1);
  }
  nscr = 2 * (size_t) m->max_K + nlm;
  if (m->has_angular) nscr += 4 * sk * nlm + 2 * sk + 9 * nlm;
  if (ensure_doubles(&ws->feat, &ws->feat_cap, nfeat)
      || ensure_doubles(&ws->nodev, &ws->node_cap,
                        2 * (size_t) m->n_nodes * n)
      || ensure_doubles(&ws->scr, &ws->scr_cap, nscr))
    goto nomem;
  if (4 * (size_t) m->n_bases > ws->ptr_cap) {
    if (grow((void **) &ws->ptr, 4 * (size_t) m->n_bases, sizeof(double *)))
      goto nomem;
    ws->ptr_cap = 4 * (size_t) m->n_bases;
  }
  if (nfeat > 0) memset(ws->feat, 0, nfeat * sizeof(double));

  /* carve the scratch */
  s = ws->scr;
  c->bphi = ws->ptr;
  c->blam = c->bphi + m->n_bases;
  c->brho = c->blam + m->n_bases;
  c->bnu = c->brho + m->n_bases;
  c->g = s;
  s += m->max_K;
  c->dg = s;
  s += m->max_K;
  c->w = s;
  s += nlm;
  if (m->has_angular) {
    c->ac = s;
    s += sk * nlm;
    c->as = s;
    s += sk * nlm;
    c->bac = s;
    s += sk * nlm;
    c->bas = s;
    s += sk * nlm;
    c->selfv = s;
    s += sk;
    c->selfbar = s;
    s += sk;
    c->q = s;
    s += nlm;
    c->yc = s;
    s += nlm;
    c->ys = s;
    s += nlm;
    c->dyc = s;
    s += 3 * nlm;
    c->dys = s;
    s += 3 * nlm;
  }
  f = ws->feat;
  for (b = 0; b < m->n_bases; ++b) {
    size_t one = (size_t) n * S * m->bases[b].K;
    compot_basis const *B = &m->bases[b];
    c->bphi[b] = c->blam[b] = c->brho[b] = c->bnu[b] = NULL;
    if (B->need_phi) {
      c->bphi[b] = f;
      f += one;
      if (c->want_grad) {
        c->blam[b] = f;
        f += one;
      }
    }
    if (B->need_rho) {
      c->brho[b] = f;
      f += one;
      if (c->want_grad) {
        c->bnu[b] = f;
        f += one;
      }
    }
  }
  c->V = ws->nodev;
  c->adj = ws->nodev + (size_t) m->n_nodes * n;
  /* addition theorem weights w_l0 = 1, w_lm = 2 (l-m)!/(l+m)! */
  for (l = 0; l <= m->max_P; ++l)
    for (mm = 0; mm <= l; ++mm) {
      double w = 1.0;
      int t;
      lm = l * (l + 1) / 2 + mm;
      if (mm > 0) {
        w = 2.0;
        for (t = l - mm + 1; t <= l + mm; ++t) w /= (double) t;
      }
      c->w[lm] = w;
    }
  return COMPOT_OK;
nomem:
  compot_set_msg(msg, msg_size, "out of memory for %d particles", n);
  return COMPOT_ERR_MEMORY;
}

/* ---- compute ------------------------------------------------------------ */

static void forward(ctx *c)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int n = c->n, S = c->S, b, i, p, k, s, nd;

  for (b = 0; b < m->n_bases; ++b) {
    compot_basis const *B = &m->bases[b];
    int K = B->K;
    if (!B->need_phi) continue;
    for (i = 0; i < n; ++i) {
      double *f;
      if (!(IS_CONTRIB(c, i) || (B->need_rho && ws->flag[i]))) continue;
      f = c->bphi[b] + (size_t) i * S * K;
      for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
        double *fs = f + c->in->species[ws->pj[p]] * K;
        compot_radial(B, m->cutoff, ws->pr[p], ws->pfc[p], ws->pdfc[p], c->g,
                      c->dg);
        for (k = 0; k < K; ++k) fs[k] += c->g[k];
      }
    }
    if (!B->need_rho) continue;
    /* rho_k^(s)(i) = sum_j f_c(r_ij) phi_k^(s)(j) */
    for (i = 0; i < n; ++i) {
      double *rh;
      if (!IS_CONTRIB(c, i)) continue;
      rh = c->brho[b] + (size_t) i * S * K;
      for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
        double const *fj = c->bphi[b] + (size_t) ws->pj[p] * S * K;
        double fc = ws->pfc[p];
        for (s = 0; s < S * K; ++s) rh[s] += fc * fj[s];
      }
    }
  }

  /* nodes bottom-up: pre-order numbering, so descending indices visit
     children before parents */
  for (nd = m->n_nodes - 1; nd >= 0; --nd) {
    compot_node const *node = &m->nodes[nd];
    double *V = c->V + (size_t) nd * n;
    for (i = 0; i < n; ++i) {
      double e;
      int ch;
      if (!IS_CONTRIB(c, i)) continue;
      switch (node->kind) {
      case COMPOT_NODE_SUM:
        e = 0.0;
        for (ch = 0; ch < node->n_children; ++ch)
          e += c->V[(size_t) node->children[ch] * n + i];
        break;
      case COMPOT_NODE_PRODUCT:
        e = c->V[(size_t) node->children[0] * n + i]
            * c->V[(size_t) node->children[1] * n + i];
        break;
      case COMPOT_NODE_LINEAR: e = leaf_linear(c, node, i); break;
      case COMPOT_NODE_EXP:
      case COMPOT_NODE_NEXP: e = leaf_exp(c, node, i, 0.0, NULL); break;
      case COMPOT_NODE_ANGULAR: e = leaf_angular(c, node, i); break;
      default: e = leaf_zbl(c, node, i, 0.0, 0); break;
      }
      if (node->shift != NULL) e += node->shift[c->in->species[i]];
      V[i] = e;
    }
  }
}

static void backward(ctx *c)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int n = c->n, S = c->S, b, i, p, k, nd;

  for (i = 0; i < n; ++i) c->adj[i] = IS_CONTRIB(c, i) ? 1.0 : 0.0;
  for (nd = 0; nd < m->n_nodes; ++nd) {
    compot_node const *node = &m->nodes[nd];
    double const *A = c->adj + (size_t) nd * n;
    for (i = 0; i < n; ++i) {
      double a = A[i];
      int ch;
      if (!IS_CONTRIB(c, i)) continue;
      switch (node->kind) {
      case COMPOT_NODE_SUM:
        for (ch = 0; ch < node->n_children; ++ch)
          c->adj[(size_t) node->children[ch] * n + i] = a;
        break;
      case COMPOT_NODE_PRODUCT: {
        int x = node->children[0], y = node->children[1];
        c->adj[(size_t) x * n + i] = a * c->V[(size_t) y * n + i];
        c->adj[(size_t) y * n + i] = a * c->V[(size_t) x * n + i];
        break;
      }
      case COMPOT_NODE_LINEAR: {
        int K = node->K, Z = c->in->species[i];
        double *lam = c->blam[node->basis] + (size_t) i * S * K;
        double const *cc = node->c + (size_t) Z * S * K;
        for (k = 0; k < S * K; ++k) lam[k] += a * cc[k];
        break;
      }
      case COMPOT_NODE_EXP:
        leaf_exp(c, node, i, a,
                 c->blam[node->basis] + (size_t) i * S * node->K);
        break;
      case COMPOT_NODE_NEXP:
        leaf_exp(c, node, i, a,
                 c->bnu[node->basis] + (size_t) i * S * node->K);
        break;
      case COMPOT_NODE_ANGULAR:
        if (a != 0.0) leaf_angular_backward(c, node, i, a);
        break;
      default: leaf_zbl(c, node, i, a, 1); break;
      }
    }
  }

  for (b = 0; b < m->n_bases; ++b) {
    compot_basis const *B = &m->bases[b];
    int K = B->K, SK = S * K;
    if (!B->need_phi) continue;
    if (B->need_rho) {
      /* rho(i) = sum_j f_c(r_ij) phi(j): lambda(j) += nu(i) f_c, and the
         explicit f_c'(r_ij) term */
      for (i = 0; i < n; ++i) {
        double const *nu;
        if (!IS_CONTRIB(c, i)) continue;
        nu = c->bnu[b] + (size_t) i * SK;
        for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
          int j = ws->pj[p];
          double const *fj = c->bphi[b] + (size_t) j * SK;
          double *lj = c->blam[b] + (size_t) j * SK, dot = 0.0, t;
          double fc = ws->pfc[p];
          for (k = 0; k < SK; ++k) {
            lj[k] += nu[k] * fc;
            dot += nu[k] * fj[k];
          }
          t = dot * ws->pdfc[p];
          ws->pg[3 * p] += t * ws->pu[3 * p];
          ws->pg[3 * p + 1] += t * ws->pu[3 * p + 1];
          ws->pg[3 * p + 2] += t * ws->pu[3 * p + 2];
        }
      }
    }
    /* phi(i) = sum_j g_k(r_ij): dE/dr_ij = sum_k lambda_k^(s_j)(i) g_k' */
    for (i = 0; i < n; ++i) {
      double const *lam;
      if (!(IS_CONTRIB(c, i) || (B->need_rho && ws->flag[i]))) continue;
      lam = c->blam[b] + (size_t) i * SK;
      for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
        double const *ls = lam + c->in->species[ws->pj[p]] * K;
        double t = 0.0;
        compot_radial(B, m->cutoff, ws->pr[p], ws->pfc[p], ws->pdfc[p], c->g,
                      c->dg);
        for (k = 0; k < K; ++k) t += ls[k] * c->dg[k];
        ws->pg[3 * p] += t * ws->pu[3 * p];
        ws->pg[3 * p + 1] += t * ws->pu[3 * p + 1];
        ws->pg[3 * p + 2] += t * ws->pu[3 * p + 2];
      }
    }
  }
}

static void assemble(ctx *c, compot_output const *out)
{
  compot_workspace const *ws = c->ws;
  int n = c->n, i, p, a;
  double *F = out->forces, *vir = out->virial, *pv = out->particle_virial;
  for (i = 0; i < n; ++i) {
    for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
      int j = ws->pj[p];
      double const *G = ws->pg + 3 * p, *u = ws->pu + 3 * p;
      double r = ws->pr[p], D[3], v[6];
      if (F != NULL)
        for (a = 0; a < 3; ++a) {
          F[3 * i + a] += G[a];
          F[3 * j + a] -= G[a];
        }
      if (vir == NULL && pv == NULL) continue;
      for (a = 0; a < 3; ++a) D[a] = r * u[a];
      v[0] = G[0] * D[0];
      v[1] = G[1] * D[1];
      v[2] = G[2] * D[2];
      v[3] = 0.5 * (G[1] * D[2] + G[2] * D[1]);
      v[4] = 0.5 * (G[0] * D[2] + G[2] * D[0]);
      v[5] = 0.5 * (G[0] * D[1] + G[1] * D[0]);
      if (vir != NULL)
        for (a = 0; a < 6; ++a) vir[a] += v[a];
      if (pv != NULL)
        for (a = 0; a < 6; ++a) {
          pv[6 * i + a] += 0.5 * v[a];
          pv[6 * j + a] += 0.5 * v[a];
        }
    }
  }
}

int compot_compute(compot_model const *m, compot_workspace *ws,
                   compot_input const *in, compot_output const *out,
                   char *msg, size_t msg_size)
{
  ctx c;
  compot_workspace *own = NULL;
  int err, i, n;

  if (m == NULL || in == NULL || out == NULL) {
    compot_set_msg(msg, msg_size, "compot_compute: NULL argument");
    return COMPOT_ERR_ARG;
  }
  n = in->n_particles;
  if (n < 0
      || (n > 0
          && (in->species == NULL || in->coords == NULL
              || in->contributing == NULL || in->get_neighbors == NULL))) {
    compot_set_msg(msg, msg_size,
                   "compot_compute: expected n_particles >= 0 and species, "
                   "coords, contributing and get_neighbors set");
    return COMPOT_ERR_ARG;
  }
  if (ws == NULL) {
    own = ws = compot_workspace_create();
    if (ws == NULL) {
      compot_set_msg(msg, msg_size, "out of memory");
      return COMPOT_ERR_MEMORY;
    }
  }
  memset(&c, 0, sizeof c);
  c.m = m;
  c.ws = ws;
  c.in = in;
  c.n = n;
  c.S = m->n_species;
  c.want_grad = out->forces != NULL || out->virial != NULL
                || out->particle_virial != NULL;
  if (out->energy != NULL) *out->energy = 0.0;
  if (out->particle_energy != NULL)
    memset(out->particle_energy, 0, (size_t) n * sizeof(double));
  if (out->forces != NULL)
    memset(out->forces, 0, 3 * (size_t) n * sizeof(double));
  if (out->virial != NULL) memset(out->virial, 0, 6 * sizeof(double));
  if (out->particle_virial != NULL)
    memset(out->particle_virial, 0, 6 * (size_t) n * sizeof(double));

  err = setup(&c, msg, msg_size);
  if (!err) err = build_pairs(&c, msg, msg_size);
  if (!err) {
    forward(&c);
    for (i = 0; i < n; ++i) {
      if (!IS_CONTRIB(&c, i)) continue;
      if (out->energy != NULL) *out->energy += c.V[i];
      if (out->particle_energy != NULL) out->particle_energy[i] = c.V[i];
    }
    if (c.want_grad) {
      backward(&c);
      assemble(&c, out);
    }
  }
  compot_workspace_destroy(own);
  return err;
}
