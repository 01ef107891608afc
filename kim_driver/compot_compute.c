/*
 * compot_compute.c -- energy, forces and virial of a compot model
 * (MODEL_SPEC.md section 5).
 *
 * Organisation
 *   1. Pairs: for every particle whose cluster functions are needed
 *      (contributing particles, plus -- when the host supplies neighbour
 *      lists of ghosts -- with an N term every particle within r_c of a
 *      contributing one) the neighbours with r < r_c, with r, the unit
 *      vector and f_c(r), f_c'(r).  The two directions (i, j) and (j, i)
 *      of a pair whose particles both have lists are linked as twins and
 *      share one cache slot: the radial basis (the exponentials) is
 *      evaluated once per unordered pair.  Each pair is kept once (from a
 *      half list, or by index order from full lists) and both directions
 *      are written together (build_pairs).  Format v2: a pair closer than
 *      its r_b is seen by every fitted term at the effective distance
 *      c(r) = r_b + (r - r_b) s_in(r) (effective_distance): its slot holds
 *      f_c(c) and the basis is evaluated at c; ZBL, the unit vectors and
 *      the virial keep the true r.
 *   2. Bases: per basis and slot g^_k(r) and g^_k'(r), in one vectorised
 *      batch per particle (v2: times c'(r) for the close pairs);
 *      phi_k^(s)(i) = sum_j g^_k(r_ij) for both directions; g^' (and g^
 *      for A leaves) stays in the slot cache.  With a host exchange, phi
 *      is then copied onto ghosts.
 *   3. Sites: for each contributing atom i in turn, rho_k^(s)(i) of N
 *      terms, every node's value bottom-up, V_n(i) = e_n(i) + shift_n(Z_i),
 *      and -- with gradients -- its adjoints a_n(i) = dE/dV_n(i) top-down
 *      (sum: a child = a; product: a_X = a V_Y, a_Y = a V_X), all local to
 *      atom i.  Leaves turn adjoints into lambda_k^(s)(i) = dE/dphi (E and
 *      G/C leaves, with derivatives kept from the value step) and
 *      nu(i) = dE/drho (N leaves), which flows at once into lambda of the
 *      neighbours, ghosts included; A and ZBL leaves and the f_c' term of
 *      rho add to dE/dD_ij, the gradient with respect to the pair vector
 *      D_ij = r_j - r_i of the directed pair (i centre, j neighbour).  What
 *      matters for forces and virials is H = dE/dD_ij - dE/dD_ji of the
 *      slot's first direction (i, j): radial terms t u_ij (and t' u_ji of
 *      the twin) add t (t') to a scalar T of the slot, H = T u_ij + h,
 *      A terms add to the vector h with the sign of their direction.
 *      Format v2 (docs/parameter-file.md): E_i = S_i V_fit(i) + (1 - S_i)
 *      E_ref(Z_i) + E_ZBL(i), V_fit the root without its ZBL terms, S_i =
 *      S_pair(i) S_grade(i): S_pair the product of s_in over the pairs
 *      closer than r_b (only atoms flagged in step 1 look), S_grade the
 *      switch of the extrapolation grade gamma = |U_Z (f - mu_Z)|^2 of the
 *      atom's feature vector f, which the fitted leaves write as they are
 *      evaluated (d(d+1)/2 multiply-adds per atom).  The fitted part then
 *      has adjoint S_i; (V_fit - E_ref) dS_i/dr adds the terms of the close
 *      pairs to T, and for atoms inside the grade's transition an adjoint
 *      of every feature, (V_fit - E_ref) S_pair dS_grade/dgamma
 *      2 [U^T U (f - mu)]_c, that the leaves' backward steps add to their
 *      coefficients times the atom's adjoint.
 *   4. With a host exchange, lambda of ghosts is summed into the owners.
 *   5. Slots, in order: T += sum_k lambda_k^(s_j)(i) g^_k'(r_ij) for both
 *      directions, then F_i += H, F_j -= H, the virial H (x) D_ij
 *      (symmetrised) and per-particle virials half-half.
 *   6. Every result is checked to be finite (COMPOT_ERR_NONFINITE).
 */
#include "compot_internal.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct compot_workspace {
  size_t n_cap;
  int *pstart;         /* [n] first pair of particle i */
  int *pend;           /* [n] one past its last pair */
  int *pmid;           /* [n] one past its last pair that owns a slot */
  int *order;          /* [n] particles with pairs, in the order built */
  unsigned char *flag; /* [n] bit 1: contributing; 2: needs pairs; 4: built;
                          8: a pair closer than its r_b (format v2) */
  size_t pair_cap;
  int *pj;      /* [np] neighbour index */
  int *ptwin;   /* [np] the pair (j, i) of pair (i, j), or -1 */
  int *pslot;   /* [np] cache slot (shared by twins); the slot holds the
                   geometry of its first direction (the pair in
                   [pstart, pmid) of its particle), the twin's is its
                   mirror image: D_ji = -D_ij */
  size_t list_cap;
  int *tj;      /* [list] positions in the host list of those inside r_c */
  double *td;   /* [4 list] D and |D|^2 of every listed neighbour */
  size_t slot_geo_cap;
  int *sj;      /* [ns] neighbour index (pairs_once) */
  double *sr;   /* [ns] per slot: distance r */
  double *su;   /* [3 ns] unit vector D / r */
  double *sfc;  /* [ns] f_c of the distance the fitted terms see */
  double *sdfc; /* [ns] its derivative (see effective_distance) */
  double *sx;   /* [ns] format v2: that distance c(r) (written only when
                   some pair is closer than its r_b) */
  int *wsl;     /* [ns] format v2: the slots with r < r_b, ascending */
  double *wdc;  /* [ns] and their dc/dr */
  size_t close_cap;
  int *csl;     /* [max_pairs] slots of one atom's pairs closer than r_b */
  size_t feat_cap;
  double *feat; /* per basis phi and lambda: [n S K] each */
  size_t slot_cap;
  double *slot; /* [4 ns] per slot: radial part T and vector part h of
                   H = dE/dD_ij - dE/dD_ji, collected by the site step */
  size_t cache_cap;
  double *cache; /* per basis and slot g^' and (A leaves) g^: [ns K] each */
  size_t scr_cap;
  double *scr;
  size_t bat_cap;
  double *bat; /* per-particle batches of pairs and features */
  size_t ptr_cap;
  double **ptr; /* per-basis pointers */
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
  free(ws->pmid);
  free(ws->order);
  free(ws->flag);
  free(ws->pj);
  free(ws->ptwin);
  free(ws->pslot);
  free(ws->slot);
  free(ws->tj);
  free(ws->td);
  free(ws->sj);
  free(ws->sr);
  free(ws->su);
  free(ws->sfc);
  free(ws->sdfc);
  free(ws->sx);
  free(ws->wsl);
  free(ws->wdc);
  free(ws->csl);
  free(ws->feat);
  free(ws->cache);
  free(ws->scr);
  free(ws->bat);
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

static size_t grown(size_t cap, size_t need)
{
  cap = cap ? cap : 1024;
  while (cap < need) cap *= 2;
  return cap;
}

static int ensure_pairs(compot_workspace *ws, size_t need)
{
  size_t cap;
  if (need <= ws->pair_cap) return COMPOT_OK;
  cap = grown(ws->pair_cap, need);
  if (grow((void **) &ws->pj, cap, sizeof(int))
      || grow((void **) &ws->ptwin, cap, sizeof(int))
      || grow((void **) &ws->pslot, cap, sizeof(int)))
    return COMPOT_ERR_MEMORY;
  ws->pair_cap = cap;
  return COMPOT_OK;
}

static int ensure_list(compot_workspace *ws, size_t need)
{
  size_t cap;
  if (need <= ws->list_cap) return COMPOT_OK;
  cap = grown(ws->list_cap, need);
  if (grow((void **) &ws->tj, cap, sizeof(int))
      || grow((void **) &ws->td, 4 * cap, sizeof(double)))
    return COMPOT_ERR_MEMORY;
  ws->list_cap = cap;
  return COMPOT_OK;
}

static int ensure_slot_geo(compot_workspace *ws, size_t need)
{
  size_t cap;
  if (need <= ws->slot_geo_cap) return COMPOT_OK;
  cap = grown(ws->slot_geo_cap, need);
  if (grow((void **) &ws->sj, cap, sizeof(int))
      || grow((void **) &ws->sr, cap, sizeof(double))
      || grow((void **) &ws->su, 3 * cap, sizeof(double))
      || grow((void **) &ws->sfc, cap, sizeof(double))
      || grow((void **) &ws->sdfc, cap, sizeof(double))
      || grow((void **) &ws->sx, cap, sizeof(double))
      || grow((void **) &ws->wsl, cap, sizeof(int))
      || grow((void **) &ws->wdc, cap, sizeof(double)))
    return COMPOT_ERR_MEMORY;
  ws->slot_geo_cap = cap;
  return COMPOT_OK;
}

static int ensure_doubles(double **p, size_t *cap, size_t need)
{
  if (need <= *cap) return COMPOT_OK;
  if (grow((void **) p, need, sizeof(double))) return COMPOT_ERR_MEMORY;
  *cap = need;
  return COMPOT_OK;
}

/* sum_k a[k] b[k] with four partial sums (short dependency chains; the
   block of four vectorises) */
static inline double dot(int n, double const *a, double const *b)
{
  double s[4] = {0.0, 0.0, 0.0, 0.0}, r = 0.0;
  int k = 0, v;
  for (; k + 4 <= n; k += 4)
    for (v = 0; v < 4; ++v) s[v] += a[k + v] * b[k + v];
  for (; k < n; ++k) r += a[k] * b[k];
  return ((s[0] + s[1]) + (s[2] + s[3])) + r;
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

/* p rounded up to a multiple of 64 bytes (within 7 doubles) */
static double *align64(double *p)
{
  size_t mis = (size_t) ((uintptr_t) p % 64) / sizeof(double);
  return mis ? p + (8 - mis) : p;
}

/* Everything one compute call needs, gathered once. */
typedef struct ctx {
  compot_model const *m;
  compot_workspace *ws;
  compot_input const *in;
  compot_exchange const *ex; /* NULL: ghosts have neighbour lists */
  int n, S;
  int want_grad;
  int n_built; /* particles with pairs (ws->order) */
  int n_slots;
  int max_pairs; /* most pairs of one particle */
  /* per basis, NULL if unused */
  double **bphi, **blam; /* [n S K] cluster functions and their adjoints */
  double **bg, **bdg;    /* [n_slots K] cached g^ (A leaves), g^' (gradients) */
  double **brho, **bnu;  /* [S K] rho and nu of the current atom */
  double *st, *sh;       /* [n_slots], [3 n_slots]: T and h of each slot */
  /* per-atom scratch */
  double *V, *adj; /* [n_nodes] */
  double *dedf;    /* [n_nodes S max_K] de/df of E and N leaves */
  double *fu, *fx, *fdx; /* [max_L max_K] feature batch */
  double *bgv, *bdgv;         /* [max_pairs max_K] basis batch */
  double *ylm;                /* [3 nlm] compot_ylm_coef(max_P) */
  double *angsum; /* [n_nodes ang_stride] per A leaf and atom, kept from
                     the value to the backward step (see leaf_angular) */
  double *bac;    /* [S K nvp] adjoints of the A sums */
  double **acoef; /* [n_nodes] per leaf, its coefficient table (node tab,
                     made in refresh), else NULL */
  double *ceff;   /* A leaves, format v2: [np K nvp + np K] coefficients
                     times dx/du of the saturated invariants at one atom */
  double tau;     /* saturation width (format v2), 0 in v1 */
  double *selfbar; /* [S K] */
  double *ascr;    /* A leaves: [4 pst] u_x, u_y, u_z of the pairs (value step), rad and GV (backward) */
  size_t ang_stride;
  int pst;  /* max_pairs rounded up to a multiple of 4 */
  int nvp;  /* (max_P+1)^2 rounded up to a multiple of 4 */
  /* format v2 */
  double const *sx; /* [n_slots] distance each slot's pair is seen at by
                       the fitted terms: ws->sr, or ws->sx when some pair
                       is closer than its r_b */
  int n_win;        /* slots with r < r_b (ws->wsl, ws->wdc) */
  double *gf;       /* [dp] the grade's feature vector f of the current atom,
                       then f - mu (zero padded) */
  double *gy, *gz;  /* [dp] U (f - mu), U^T U (f - mu) */
  double *gb;       /* [d] dE/df through the grade switch at the current
                       atom (leaf backward steps add it), or NULL */
  double *cw, *cdw; /* [max_pairs] s_in and s_in' of the close pairs */
} ctx;

#define IS_CONTRIB(c, i) ((c)->ws->flag[i] & 1)

/* Does particle i need basis b evaluated on its pairs?  Contributing
   particles always; ghosts with lists for the second hop of N terms. */
static int evaluates(ctx const *c, compot_basis const *B, int i)
{
  return IS_CONTRIB(c, i) || (B->need_rho && (c->ws->flag[i] & 2));
}

/* ---- 1. pairs ------------------------------------------------------------ */

/* The host's list of particle i (*list_out) and which of its entries lie
   inside r_c: their positions in the list in ws->tj[0..*m_out), the
   difference vectors D = x_j - x_i and |D|^2 of every entry in ws->td.
   Checks the species and indices involved and that no two particles
   coincide. */
static int listed_inside(ctx *c, int i, int const **list_out, int *m_out,
                         char *msg, size_t msg_size)
{
  compot_input const *in = c->in;
  compot_workspace *ws = c->ws;
  int n = c->n, jj, nn = 0, err, t, m = 0;
  int const *list = NULL;
  double const *x = in->coords;
  double rc = c->m->cutoff, rc2 = rc * rc;
  double xi0 = x[3 * i], xi1 = x[3 * i + 1], xi2 = x[3 * i + 2];

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
  if (nn > 0 && ensure_list(ws, (size_t) nn)) {
    compot_set_msg(msg, msg_size, "out of memory for a list of %d neighbours",
                   nn);
    return COMPOT_ERR_MEMORY;
  }
  /* D and |D|^2 of every listed neighbour (independent iterations), then
     those inside r_c without branches on the distance (longer lists are
     allowed, e.g. KLIFF's, and LAMMPS's with the skin) */
  for (jj = 0; jj < nn; ++jj) {
    int j = list[jj];
    double *d = ws->td + 4 * jj;
    if (j < 0 || j >= n) {
      compot_set_msg(msg, msg_size,
                     "neighbour list of particle %d contains index %d; "
                     "expected 0..%d",
                     i, j, n - 1);
      return COMPOT_ERR_INPUT;
    }
    d[0] = x[3 * j] - xi0;
    d[1] = x[3 * j + 1] - xi1;
    d[2] = x[3 * j + 2] - xi2;
    d[3] = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
  }
  for (jj = 0; jj < nn; ++jj) {
    ws->tj[m] = jj;
    m += ws->td[4 * jj + 3] < rc2;
  }
  for (t = 0; t < m; ++t) {
    int j = list[ws->tj[t]];
    if (in->species[j] < 0 || in->species[j] >= c->S) {
      compot_set_msg(msg, msg_size,
                     "particle %d (a neighbour of particle %d) has species "
                     "index %d; expected 0..%d",
                     j, i, in->species[j], c->S - 1);
      return COMPOT_ERR_INPUT;
    }
    if (!(ws->td[4 * ws->tj[t] + 3] > 0.0)) {
      compot_set_msg(msg, msg_size,
                     "particles %d and %d are at the same position; "
                     "expected distinct positions",
                     i, j);
      return COMPOT_ERR_INPUT;
    }
  }
  *list_out = list;
  *m_out = m;
  return COMPOT_OK;
}

/*
 * Format v2: the fitted terms see a pair of species (s1, s2) closer than
 * its r_b at the effective distance c(r) = r_b + (r - r_b) s_in(r) >= r_b
 * - 0.11 (r_b - r_a) (s_in: compot_inner_window), so they never extrapolate
 * in r: the slots of such pairs get f_c(c), f_c'(c) (c->sx holds c; the
 * basis is evaluated at c and eval_bases multiplies g^' and f_c' by dc/dr
 * afterwards).  ZBL, the unit vectors and the virial read the true r.  The
 * slots are listed (ws->wsl, ws->wdc) and both particles flagged (bit 8)
 * for the atom switch S_pair of atom_site.  Called by build_pairs after the
 * slots are made: the slots of particle order[o] are the next pmid[i] ones
 * (own pairs, counted).  A slot at r >= the largest r_b costs one compare.
 */
static void effective_distance(ctx *c)
{
  compot_workspace *ws = c->ws;
  int const *spec = c->in->species;
  int S = c->S, o, t, nw = 0;
  double const *win = c->m->win, rb_max = c->m->win_rb_max;
  double rc = c->m->cutoff;
  size_t h = 0;
  for (o = 0; o < c->n_built; ++o) {
    int i = ws->order[o], zi = spec[i] * S;
    for (t = 0; t < ws->pmid[i]; ++t, ++h) {
      double const *w;
      double r = ws->sr[h], s, ds, x;
      if (!(r < rb_max)) continue;
      w = win + 2 * (zi + spec[ws->sj[h]]);
      if (!(r < w[1])) continue;
      if (nw == 0) { /* the first close pair: the distances seen */
        memcpy(ws->sx, ws->sr, (size_t) c->n_slots * sizeof(double));
        c->sx = ws->sx;
      }
      compot_inner_window(r, w[0], w[1], &s, &ds);
      x = w[1] + (r - w[1]) * s;
      ws->sx[h] = x;
      compot_cutoff_fn(x, rc, &ws->sfc[h], &ws->sdfc[h]);
      ws->wsl[nw] = (int) h;
      ws->wdc[nw++] = s + (r - w[1]) * ds;
      ws->flag[i] |= 8;
      ws->flag[ws->sj[h]] |= 8;
    }
  }
  c->n_win = nw;
}

/*
 * The pairs (r < r_c) of every particle that needs them -- contributing
 * particles, and with mark (an N term without a host exchange) the
 * non-contributing ones within r_c of a contributing one, which pass 0
 * flags -- each pair kept once, without searching for twins.  Pass 0, over
 * contributing particles i: from a half list (in->half_list) every entry
 * inside r_c; from full lists the entry (i, j) unless j contributes and
 * j < i (then the list of j holds i at the same distance, bit for bit).
 * Pass 1, over the flagged non-contributing particles g: (g, j) unless j
 * contributes (kept in pass 0) or is flagged and j < g.  A kept pair gets
 * the next cache slot with its geometry (r, unit vector, f_c, f_c').  Then
 * each particle's block is laid out, its own pairs first, and both
 * directions of every pair whose particles both need pairs are written,
 * linked as twins (a neighbour index, the twin and the slot: the geometry
 * stays in the slot).
 */
static int build_pairs(ctx *c, size_t *np_out, char *msg, size_t msg_size)
{
  compot_workspace *ws = c->ws;
  int n = c->n, i, t, m, err, o, p, pass, half = c->in->half_list;
  int mark = c->m->has_nexp && c->ex == NULL;
  int const *list;
  size_t h = 0, e = 0, q = 0;

  c->n_built = 0;
  c->max_pairs = 0;
  for (i = 0; i < n; ++i) {
    ws->flag[i] = c->in->contributing[i] ? 1 : 0;
    ws->pmid[i] = ws->pend[i] = 0; /* own pairs, pairs kept by others */
  }
  if (half && mark) {
    compot_set_msg(msg, msg_size,
                   "half neighbour lists (half_list = 1) with a model with "
                   "an N term need a host exchange "
                   "(compot_compute_exchange): ghosts would need lists");
    return COMPOT_ERR_ARG;
  }
  for (pass = 0; pass <= mark; ++pass)
    for (i = 0; i < n; ++i) {
      if (pass == 0 ? !(ws->flag[i] & 1) : ws->flag[i] != 2) continue;
      err = listed_inside(c, i, &list, &m, msg, msg_size);
      if (err) return err;
      if (ensure_slot_geo(ws, h + (size_t) m)) {
        compot_set_msg(msg, msg_size, "out of memory for %lu pairs",
                       (unsigned long) (h + (size_t) m));
        return COMPOT_ERR_MEMORY;
      }
      for (t = 0; t < m; ++t) {
        int j = list[ws->tj[t]], fj;
        double const *d = ws->td + 4 * ws->tj[t];
        double r, inv;
        ws->flag[j] |= (unsigned char) ((mark && !pass && !(ws->flag[j] & 1)) << 1);
        fj = ws->flag[j];
        if (pass == 0 ? !half && (fj & 1) && j < i
                      : (fj & 1) || ((fj & 2) && j < i))
          continue;
        r = sqrt(d[3]);
        inv = 1.0 / r;
        ws->sj[h] = j;
        ws->sr[h] = r;
        ws->su[3 * h] = d[0] * inv;
        ws->su[3 * h + 1] = d[1] * inv;
        ws->su[3 * h + 2] = d[2] * inv;
        ws->pmid[i] += 1;
        ws->pend[j] += (fj & 3) != 0;
        ++h;
      }
      ws->order[c->n_built++] = i;
    }
  compot_cutoff_n((int) h, ws->sr, 1.0 / c->m->cutoff, ws->sfc, ws->sdfc);
  c->n_slots = (int) h;
  c->sx = ws->sr;
  c->n_win = 0;
  if (c->m->win_rb_max > 0.0) effective_distance(c);
  for (i = 0; i < n; ++i) ws->pstart[i] = 0;
  for (o = 0; o < c->n_built; ++o) {
    int own, total;
    i = ws->order[o];
    own = ws->pmid[i];
    total = own + ws->pend[i];
    ws->pstart[i] = (int) q;
    ws->pmid[i] = ws->pend[i] = (int) q + own;
    q += (size_t) total;
    if (total > c->max_pairs) c->max_pairs = total;
    ws->flag[i] |= 4;
  }
  if (ensure_pairs(ws, q)) {
    compot_set_msg(msg, msg_size, "out of memory for %lu pairs",
                   (unsigned long) q);
    return COMPOT_ERR_MEMORY;
  }
  for (o = 0; o < c->n_built; ++o) {
    i = ws->order[o];
    for (p = ws->pstart[i]; p < ws->pmid[i]; ++p, ++e) {
      int j = ws->sj[e], tw = -1;
      ws->pj[p] = j;
      ws->pslot[p] = (int) e;
      if (ws->flag[j] & 4) {
        tw = ws->pend[j]++;
        ws->pj[tw] = i;
        ws->ptwin[tw] = p;
        ws->pslot[tw] = (int) e;
      }
      ws->ptwin[p] = tw;
    }
  }
  *np_out = q;
  return COMPOT_OK;
}

/* ---- setup -------------------------------------------------------------- */

/* Per-atom arrays, scratch, and the weights of the addition theorem. */
static int setup(ctx *c, char *msg, size_t msg_size)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int n = c->n, S = c->S, nb = m->n_bases, b;
  size_t nfeat = 0, nscr, nlm = (size_t) compot_n_lm(m->max_P);
  size_t sk = (size_t) S * (size_t) m->max_K, nn = (size_t) m->n_nodes;
  double *f, *s;

  if ((size_t) n + 1 > ws->n_cap) {
    if (grow((void **) &ws->pstart, (size_t) n + 1, sizeof(int))
        || grow((void **) &ws->pend, (size_t) n + 1, sizeof(int))
        || grow((void **) &ws->pmid, (size_t) n + 1, sizeof(int))
        || grow((void **) &ws->order, (size_t) n + 1, sizeof(int))
        || grow((void **) &ws->flag, (size_t) n + 1, 1))
      goto nomem;
    ws->n_cap = (size_t) n + 1;
  }
  for (b = 0; b < nb; ++b)
    if (m->bases[b].need_phi)
      nfeat += (size_t) n * S * m->bases[b].K * (c->want_grad ? 2 : 1);
  c->nvp = m->nvp;
  nscr = 2 * nn + nn * sk + 3 * nlm + 2 * (size_t) nb * sk;
  nscr += 8 * (nn + 1);
  if (m->version >= 2) nscr += 4 * (size_t) m->grade_dp + 8;
  if (m->has_angular)
    nscr += sk * (size_t) c->nvp + sk
            + (size_t) (S * (S + 1) / 2) * m->max_K * (c->nvp + 1) + 8;
  if (ensure_doubles(&ws->feat, &ws->feat_cap, nfeat + 8)
      || ensure_doubles(&ws->scr, &ws->scr_cap, nscr))
    goto nomem;
  if (6 * (size_t) nb + nn > ws->ptr_cap) {
    if (grow((void **) &ws->ptr, 6 * (size_t) nb + nn, sizeof(double *)))
      goto nomem;
    ws->ptr_cap = 6 * (size_t) nb + nn;
  }
  if (nfeat > 0) memset(align64(ws->feat), 0, nfeat * sizeof(double));

  /* carve the scratch */
  c->bphi = ws->ptr;
  c->blam = c->bphi + nb;
  c->bg = c->blam + nb;
  c->bdg = c->bg + nb;
  c->brho = c->bdg + nb;
  c->bnu = c->brho + nb;
  c->acoef = c->bnu + nb;
  s = ws->scr;
  c->V = s;
  s += nn;
  c->adj = s;
  s += nn;
  c->dedf = s;
  s += nn * sk;
  c->ylm = s;
  s += 3 * nlm;
  for (b = 0; b < nb; ++b) {
    c->brho[b] = c->bnu[b] = NULL;
    if (m->bases[b].need_rho) {
      c->brho[b] = s;
      c->bnu[b] = s + sk;
    }
    s += 2 * sk;
  }
  if (m->has_angular) {
    s = align64(s);
    c->bac = s;
    s += sk * (size_t) c->nvp;
    c->selfbar = s;
    s += sk;
    if (m->version >= 2) {
      s = align64(s);
      c->ceff = s;
      s += (size_t) (S * (S + 1) / 2) * m->max_K * (c->nvp + 1);
    }
  }
  c->gf = c->gy = c->gz = c->gb = NULL;
  if (m->version >= 2) {
    size_t dp = (size_t) m->grade_dp;
    s = align64(s);
    c->gf = s;
    c->gy = s + dp;
    c->gz = s + 2 * dp;
    c->gb = s + 3 * dp;
    s += 4 * dp;
  }
  for (b = 0; b < (int) nn; ++b) c->acoef[b] = m->nodes[b].tab;
  f = align64(ws->feat); /* rows of S K doubles: cache lines for S K = 8 */
  for (b = 0; b < nb; ++b) {
    size_t one = (size_t) n * S * m->bases[b].K;
    c->bphi[b] = c->blam[b] = c->bg[b] = c->bdg[b] = NULL;
    if (m->bases[b].need_phi) {
      c->bphi[b] = f;
      f += one;
      if (c->want_grad) {
        c->blam[b] = f;
        f += one;
      }
    }
  }
  compot_ylm_coef(m->max_P, c->ylm);
  return COMPOT_OK;
nomem:
  compot_set_msg(msg, msg_size, "out of memory for %d particles", n);
  return COMPOT_ERR_MEMORY;
}

/* Slot caches of g^' (gradients) and g^ (A leaves); per-particle batches. */
static int setup_caches(ctx *c, char *msg, size_t msg_size)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  size_t total = 0, nbat, ns = (size_t) c->n_slots, mp = (size_t) c->max_pairs;
  size_t nascr;
  size_t lk;
  double *f;
  int b, nd, max_l = 1;
  for (b = 0; b < m->n_bases; ++b) {
    compot_basis const *B = &m->bases[b];
    if (B->need_ang) total += ns * (size_t) B->K;
    if (c->want_grad && (B->need_phi || B->need_ang)) total += ns * (size_t) B->K;
  }
  for (nd = 0; nd < m->n_nodes; ++nd)
    if (m->nodes[nd].L > max_l) max_l = m->nodes[nd].L;
  lk = (size_t) max_l * m->max_K;
  c->ang_stride = nascr = 0;
  c->pst = ((c->max_pairs > 0 ? c->max_pairs : 1) + 3) & ~3;
  if (m->has_angular) {
    size_t sk = (size_t) c->S * m->max_K;
    size_t pst = (size_t) c->pst, nvp = (size_t) c->nvp;
    /* every array a multiple of 8 doubles, so that with an aligned start
       the rows of 4-lane loads stay 32-byte aligned */
    c->ang_stride = sk * nvp + ((sk + 7) & ~(size_t) 7) + 4 * nvp * pst + 2 * sk * pst;
    if (m->version >= 2) /* dx/du of the invariants and a flag */
      c->ang_stride += (size_t) (c->S * (c->S + 1) / 2) * m->max_K * (m->max_P + 1) + 1;
    c->ang_stride = (c->ang_stride + 7) & ~(size_t) 7;
    nascr = 4 * pst;
  }
  nbat = 8 + 3 * lk + mp * 2 * (size_t) m->max_K
         + (size_t) m->n_nodes * c->ang_stride + nascr + 2 * mp + 8;
  if (m->version >= 2 && mp + 1 > ws->close_cap) {
    if (grow((void **) &ws->csl, mp + 1, sizeof(int))) {
      compot_set_msg(msg, msg_size, "out of memory for %lu pairs",
                     (unsigned long) mp);
      return COMPOT_ERR_MEMORY;
    }
    ws->close_cap = mp + 1;
  }
  if (ensure_doubles(&ws->cache, &ws->cache_cap, total + 8)
      || ensure_doubles(&ws->bat, &ws->bat_cap, nbat)
      || ensure_doubles(&ws->slot, &ws->slot_cap, 4 * ns)) {
    compot_set_msg(msg, msg_size, "out of memory for %lu pair slots",
                   (unsigned long) ns);
    return COMPOT_ERR_MEMORY;
  }
  c->st = ws->slot;
  c->sh = ws->slot + ns;
  if (c->want_grad) memset(ws->slot, 0, 4 * ns * sizeof(double));
  f = align64(ws->cache);
  for (b = 0; b < m->n_bases; ++b) {
    compot_basis const *B = &m->bases[b];
    if (B->need_ang) {
      c->bg[b] = f;
      f += ns * (size_t) B->K;
    }
    if (c->want_grad && (B->need_phi || B->need_ang)) {
      c->bdg[b] = f;
      f += ns * (size_t) B->K;
    }
  }
  f = ws->bat;
  c->fu = f;
  f += lk;
  c->fx = f;
  f += lk;
  c->fdx = f;
  f += lk;
  c->bgv = f;
  f += mp * m->max_K;
  c->bdgv = f;
  f += mp * m->max_K;
  f = align64(f);
  c->angsum = f;
  /* rows beyond (P+1)^2 of the Y blocks are read (times zero) but never
     written: zero them once */
  memset(f, 0, (size_t) m->n_nodes * c->ang_stride * sizeof(double));
  f += (size_t) m->n_nodes * c->ang_stride;
  c->ascr = f;
  f += nascr;
  c->cw = f;
  c->cdw = f + mp;
  return COMPOT_OK;
}

/* ---- 2. bases ------------------------------------------------------------ */

/* g^_k and g^_k' once per slot, for every particle that needs basis b, in
   one batch of its slot-owning pairs (consecutive pairs and slots);
   phi_k^(s) of both particles of a slot; then the exchange of phi for N
   terms. */
static int eval_bases(ctx *c, char *msg, size_t msg_size)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int const *spec = c->in->species;
  int S = c->S, b, o, p, k, t, err, w;

  for (b = 0; b < m->n_bases; ++b) {
    compot_basis const *B = &m->bases[b];
    int K = B->K, SK = S * K, gauss = B->kind == COMPOT_BASIS_GAUSSIAN;
    double *phi = c->bphi[b], *gc = c->bg[b], *dgc = c->bdg[b];
    if (phi == NULL && gc == NULL) continue;
    w = 0; /* the next close slot (ws->wsl, ascending like the batches) */
    for (o = 0; o < c->n_built; ++o) {
      int i = ws->order[o], p0 = ws->pstart[i], nb = ws->pmid[i] - p0, s0;
      double *g, *dg, *fi;
      if (nb == 0 || !evaluates(c, B, i)) continue;
      s0 = ws->pslot[p0]; /* the slots of i's own pairs are consecutive */
      g = gc != NULL ? gc + (size_t) s0 * K : c->bgv;
      dg = dgc != NULL ? dgc + (size_t) s0 * K : c->bdgv;
      if (gauss)
        compot_gaussian_n(B, nb, c->sx + s0, ws->sfc + s0, ws->sdfc + s0, g,
                          dg);
      else
        for (t = 0; t < nb; ++t)
          compot_radial(B, m->cutoff, c->sx[s0 + t], ws->sfc[s0 + t],
                        ws->sdfc[s0 + t], g + (size_t) t * K,
                        dg + (size_t) t * K);
      /* format v2, pairs closer than r_b: dg^(c(r))/dr = g^'(c) c'(r) */
      while (w < c->n_win && ws->wsl[w] < s0) ++w;
      for (; w < c->n_win && ws->wsl[w] < s0 + nb; ++w) {
        double *row = dg + (size_t) (ws->wsl[w] - s0) * K;
        for (k = 0; k < K; ++k) row[k] *= ws->wdc[w];
      }
      if (phi == NULL) continue;
      fi = phi + (size_t) i * SK;
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

/* ---- 3. leaves at one atom ----------------------------------------------- */

/* G/C leaf: e = sum_s sum_k c[Z,s,k] phi_k^(s)(i); its features phi are
   copied to gf (the grade's feature vector at the leaf) unless NULL. */
static double leaf_linear(ctx const *c, compot_node const *nd, int i,
                          double *gf)
{
  compot_basis const *b = &c->m->bases[nd->basis];
  int S = c->S, K = b->K, Z = c->in->species[i], k;
  double const *f = c->bphi[nd->basis] + (size_t) i * S * K;
  double const *cc = nd->c + (size_t) Z * S * K;
  double e = 0.0;
  for (k = 0; k < S * K; ++k) e += cc[k] * f[k];
  if (gf != NULL) memcpy(gf, f, (size_t) S * K * sizeof(double));
  return e;
}

/* E and N leaves: e = sum_s sum_l sum_k c[Z,s,l,k] x(gamma_l, f/f_max);
   with gradients, dedf[s K + k] = de/df.  All L K features of one species
   in one batch; copied to gf (the grade's features at the leaf, order s, l,
   k) unless NULL. */
static double leaf_exp(ctx *c, compot_node const *nd, int i, double *dedf,
                       double *gf)
{
  compot_basis const *b = &c->m->bases[nd->basis];
  int S = c->S, K = b->K, L = nd->L, LK = L * K, Z = c->in->species[i];
  int s, k, l;
  int nexp = nd->kind == COMPOT_NODE_NEXP;
  double const *f =
      nexp ? c->brho[nd->basis] : c->bphi[nd->basis] + (size_t) i * S * K;
  double const *tab = c->acoef[nd - c->m->nodes];
  double const *fg = tab, *fgi = tab + LK, *minv = tab + 2 * LK;
  double e = 0.0;
  for (s = 0; s < S; ++s) {
    double const *cs = nd->c + (size_t) (Z * S + s) * LK;
    double const *fs = f + s * K, *ms = minv + s * K;
    for (k = 0; k < K; ++k) c->fu[k] = fs[k] * ms[k];
    for (l = 1; l < L; ++l)
      for (k = 0; k < K; ++k) c->fu[l * K + k] = c->fu[k];
    compot_xfeature_v(LK, fg, fgi, c->fu, c->tau, c->fx, c->fdx);
    e += dot(LK, cs, c->fx);
    if (gf != NULL) memcpy(gf + s * LK, c->fx, (size_t) LK * sizeof(double));
    if (dedf != NULL) {
      double *ds = dedf + s * K;
      for (k = 0; k < K; ++k) {
        double acc = 0.0;
        for (l = 0; l < L; ++l) acc += cs[l * K + k] * c->fdx[l * K + k];
        ds[k] = acc * ms[k];
      }
    }
  }
  return e;
}

/* E and N leaves, format v2: the adjoints gb[s L K + l K + k] of the
   features x(gamma_l, f_sk/f_max) (through the grade switch) turned into
   adjoints of f: fbar[s K + k] += sum_l gb dx/du / f_max.  The features are
   recomputed as in leaf_exp (only atoms in the grade's transition get
   here). */
static void leaf_exp_grade(ctx *c, compot_node const *nd, int i,
                           double const *gb, double *fbar)
{
  compot_basis const *b = &c->m->bases[nd->basis];
  int S = c->S, K = b->K, L = nd->L, LK = L * K, s, k, l;
  double const *f = nd->kind == COMPOT_NODE_NEXP
                        ? c->brho[nd->basis]
                        : c->bphi[nd->basis] + (size_t) i * S * K;
  double const *tab = c->acoef[nd - c->m->nodes];
  double const *fg = tab, *fgi = tab + LK, *minv = tab + 2 * LK;
  for (s = 0; s < S; ++s) {
    double const *fs = f + s * K, *ms = minv + s * K, *bs = gb + s * LK;
    for (k = 0; k < K; ++k) c->fu[k] = fs[k] * ms[k];
    for (l = 1; l < L; ++l)
      for (k = 0; k < K; ++k) c->fu[l * K + k] = c->fu[k];
    compot_xfeature_v(LK, fg, fgi, c->fu, c->tau, c->fx, c->fdx);
    for (k = 0; k < K; ++k) {
      double acc = 0.0;
      for (l = 0; l < L; ++l) acc += bs[l * K + k] * c->fdx[l * K + k];
      fbar[s * K + k] += acc * ms[k];
    }
  }
}

/* Index of the species pair (s1 <= s2), s1-major. */
static int pair_index(int S, int s1, int s2)
{
  return s1 * S - s1 * (s1 - 1) / 2 + (s2 - s1);
}

/*
 * g^_k(r_ij) and g^_k'(r_ij) of the n pairs of atom i by neighbour species,
 * from the slot caches: G[(s K + k) pst + t] (zero unless pair t has a
 * neighbour of species s, and for t >= n), dG likewise if not NULL.
 */
static void angular_radial(ctx const *c, int b, int i, double *G, double *dG)
{
  compot_workspace const *ws = c->ws;
  int S = c->S, K = c->m->bases[b].K, pst = c->pst, p0 = ws->pstart[i];
  int n = ws->pend[i] - p0, nt = (n + 3) & ~3, k, t;
  size_t sk = (size_t) S * K;
  double const *gc = c->bg[b], *dgc = c->bdg[b];

#if defined(__GNUC__)
  /* the slot rows of the next atom's pairs, in the caches by the time it
     comes (those of twins sit far back, with the earlier atoms' slots) */
  if (i + 1 < c->n && (c->ws->flag[i + 1] & 4)) {
    int q;
    for (q = ws->pstart[i + 1]; q < ws->pend[i + 1]; ++q) {
      size_t slot = (size_t) ws->pslot[q] * K;
      __builtin_prefetch(gc + slot);
      if (dgc != NULL) __builtin_prefetch(dgc + slot);
    }
  }
#endif
  if (S == 1 && K % 4 == 0) {
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
            r[w] = v4_load(t + w < n ? cache + (size_t) ws->pslot[p0 + t + w] * K + k
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
    int sj = S > 1 ? c->in->species[ws->pj[p0 + t]] : 0;
    size_t slot = (size_t) ws->pslot[p0 + t] * K;
    double *g = G + (size_t) sj * K * pst + t;
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
 * The A leaf of format v2 at an atom of species Z, from the sums A and
 * self of leaf_angular: e = sum c[Z,q,k,p] q_max x(0, q_kp / q_max) with
 * the invariants q_kp themselves (q^(ss) = sum_(v in l=p) A_v^2 - self_k,
 * q^(s1s2) = 2 sum_(v in l=p) A1_v A2_v), x(0, u) = u for |u| <= 1 (the
 * term is c q) and u_b + tau tanh((u - u_b)/tau) beyond (MODEL_SPEC 10).
 * The flag after the np K (P+1) values of dq is 1 if any invariant is
 * saturated, and then dq[(q K + k)(P+1) + p] = dx/du(0, q_kp/q_max), for
 * leaf_angular_backward (dq is not written while nothing saturates).  The
 * bounded invariants are the leaf's features of the grade, copied to gf
 * (order q, k, p) unless NULL.
 */
static double angular_bounded(ctx *c, compot_node const *nd, int Z,
                              double const *A, double const *selfv,
                              double *dq, double *gf)
{
  int S = c->S, K = nd->K, P1 = nd->P + 1, nvp = c->nvp, np = S * (S + 1) / 2;
  int s1, s2, k, p, v, any = 0;
  double const *qinv = c->acoef[nd - c->m->nodes]
                       + (size_t) S * np * K * (nvp + 1);
  double e = 0.0, tau = c->tau, prod[nvp], qv[COMPOT_MAX_P + 1];
  for (s1 = 0; s1 < S; ++s1)
    for (s2 = s1; s2 < S; ++s2) {
      int q = pair_index(S, s1, s2);
      double f = s1 == s2 ? 1.0 : 2.0;
      for (k = 0; k < K; ++k) {
        double const *a1 = A + (size_t) (s1 * K + k) * nvp;
        double const *a2 = A + (size_t) (s2 * K + k) * nvp;
        double self = s1 == s2 ? selfv[s1 * K + k] : 0.0;
        size_t o = ((size_t) q * K + k) * P1;
        double const *cc = nd->c + ((size_t) Z * np * K) * P1 + o;
        double const *qi = qinv + o;
        int sat = 0;
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
          if (gf != NULL)
            for (p = 0; p < P1; ++p) gf[o + p] = qv[p];
          continue;
        }
        if (!any) { /* the first saturated invariant at this atom */
          for (v = 0; v < np * K * P1; ++v) dq[v] = 1.0;
          any = 1;
        }
        for (p = 0; p < P1; ++p) {
          double u = qv[p] * qi[p], x, dx;
          if (u <= 1.0 && u >= -1.0) {
            e += cc[p] * qv[p];
            if (gf != NULL) gf[o + p] = qv[p];
            continue;
          }
          compot_xfeature(0.0, u, tau, &x, &dx);
          e += cc[p] * nd->q_max[o + p] * x;
          if (gf != NULL) gf[o + p] = nd->q_max[o + p] * x;
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
 * functions Y_v of compot_ylm_real_n (sum over v of degree l = P_l).  The
 * per-atom arrays (layout ang_stride, rows pst long):
 *   A [S K nvp], self [S K], Y [nvp pst], G, dG [S K pst]
 * are kept in sum for the backward step at the same atom; rows of Y beyond
 * (P+1)^2 and columns of G, dG from n to nt (n rounded up to a multiple of
 * 4: the loops over pairs of this atom stop there) are zero.
 */
static double leaf_angular(ctx *c, compot_node const *nd, int i, double *sum,
                           double *gf)
{
  compot_workspace const *ws = c->ws;
  int S = c->S, K = nd->K, P = nd->P, P1 = P + 1, nvp = c->nvp;
  int Z = c->in->species[i], np = S * (S + 1) / 2, pst = c->pst;
  int p0 = ws->pstart[i], n = ws->pend[i] - p0, nt = (n + 3) & ~3;
  int s1, s2, k, v, t;
  size_t sk = (size_t) S * K;
  double *A = sum, *selfv = A + sk * nvp, *Y = selfv + ((sk + 7) & ~(size_t) 7);
  double *dY = Y + (size_t) nvp * pst, *G = dY + 3 * (size_t) nvp * pst;
  double *dG = G + sk * pst;
  double *ux = c->ascr, *uy = ux + pst, *uz = uy + pst;
  double e = 0.0;

  angular_radial(c, nd->basis, i, G, c->want_grad ? dG : NULL);
  for (t = 0; t < n; ++t) {
    int p = p0 + t;
    double const *u = ws->su + 3 * (size_t) ws->pslot[p];
    double sign = p < ws->pmid[i] ? 1.0 : -1.0;
    ux[t] = sign * u[0];
    uy[t] = sign * u[1];
    uz[t] = sign * u[2];
  }
  for (; t < nt; ++t) { /* finite pads (their G are zero) */
    ux[t] = 1.0;
    uy[t] = uz[t] = 0.0;
  }
  /* Y and grad Y by blocks of 4 pairs (rows nvp long; the rows from
     (P+1)^2 on stay zero, see setup_caches) */
  for (t = 0; t < nt; t += 4)
    compot_ylm_real_n(4, ux + t, uy + t, uz + t, P, c->ylm, Y + (size_t) t * nvp,
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
  if (c->m->version >= 2)
    return e + angular_bounded(c, nd, Z, A, selfv, dG + sk * pst, gf);
  for (s1 = 0; s1 < S; ++s1)
    for (s2 = s1; s2 < S; ++s2) {
      size_t row = (size_t) (Z * np + pair_index(S, s1, s2)) * K;
      double const *cc = c->acoef[nd - c->m->nodes] + row * nvp;
      double const *cs = c->acoef[nd - c->m->nodes] + (size_t) S * np * K * nvp + row;
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

/*
 * The per-pair gradients of an A leaf at one atom (leaf_angular_backward):
 * for blocks of 4 of the n pairs, rad = sum_v Bd_v Y_v + 2 sum_k selfbar_k
 * G_k dG_k and GV = sum_v Bg_v grad Y_v, with Bg_v = sum_k bac_kv G_k and
 * Bd_v = sum_k bac_kv dG_k (k < sk).  Inlined with constant sk for the
 * common sizes, so that the loops over k unroll.
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
    for (v = 0; v + 4 <= nv; v += 4) {
      compot_v4 bg[4], bd[4];
      for (q = 0; q < 4; ++q) bg[q] = bd[q] = v4_set1(0.0);
      for (k = 0; k < sk; ++k) {
        compot_v4 g = v4_load(G + (size_t) k * pst + t);
        compot_v4 dg = v4_load(dG + (size_t) k * pst + t);
        double const *b = bac + (size_t) k * nvp + v;
        for (q = 0; q < 4; ++q) {
          compot_v4 bq = v4_set1(b[q]);
          bg[q] = v4_madd(bq, g, bg[q]);
          bd[q] = v4_madd(bq, dg, bd[q]);
        }
      }
      for (q = 0; q < 4; ++q) {
        double const *y = Y + 4 * (size_t) (v + q);
        double const *dx = dY + 4 * (size_t) (v + q);
        double const *dy = dx + 4 * (size_t) nv, *dz = dy + 4 * (size_t) nv;
        rd = v4_madd(bd[q], v4_load(y), rd);
        gx = v4_madd(bg[q], v4_load(dx), gx);
        gy = v4_madd(bg[q], v4_load(dy), gy);
        gz = v4_madd(bg[q], v4_load(dz), gz);
      }
    }
    for (; v < nv; ++v) { /* the last 1 to 3 functions, one at a time */
      compot_v4 bg = v4_set1(0.0), bd = bg;
      double const *y = Y + 4 * (size_t) v, *dx = dY + 4 * (size_t) v;
      double const *dy = dx + 4 * (size_t) nv, *dz = dy + 4 * (size_t) nv;
      for (k = 0; k < sk; ++k) {
        compot_v4 bq = v4_set1(bac[(size_t) k * nvp + v]);
        bg = v4_madd(bq, v4_load(G + (size_t) k * pst + t), bg);
        bd = v4_madd(bq, v4_load(dG + (size_t) k * pst + t), bd);
      }
      rd = v4_madd(bd, v4_load(y), rd);
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
static void leaf_angular_backward(ctx *c, compot_node const *nd, int i,
                                  double a, double const *sum,
                                  double const *gb)
{
  compot_workspace *ws = c->ws;
  int S = c->S, K = nd->K, P = nd->P, P1 = P + 1, nvp = c->nvp;
  int Z = c->in->species[i], np = S * (S + 1) / 2, pst = c->pst;
  int p0 = ws->pstart[i], n = ws->pend[i] - p0, s1, s2, k, t, v;
  int nv = P1 * P1;
  int sk = S * K;
  double const *A = sum, *selfv = A + (size_t) sk * nvp;
  double const *Yall = selfv + ((sk + 7) & ~7), *dYall = Yall + (size_t) nvp * pst;
  double const *G = dYall + 3 * (size_t) nvp * pst, *dG = G + (size_t) sk * pst;
  double *rad = c->ascr, *GV = rad + pst;
  double *bac = c->bac;
  double const *tab = c->acoef[nd - c->m->nodes];
  int eff = 0;

  if (c->m->version >= 2) {
    /* saturated invariants (angular_bounded): dE/dq = a c dx/du, i.e. the
       coefficients times dx/du, spread over v as in the table; with
       feature adjoints gb, (a c + gb) dx/du and then a = 1 */
    double const *dq = dG + (size_t) sk * pst;
    int sat = dq[(size_t) np * K * P1] != 0.0;
    eff = sat || gb != NULL;
    if (eff) {
      int q, p, l;
      double *sums = c->ceff + (size_t) np * K * nvp;
      for (q = 0; q < np; ++q)
        for (k = 0; k < K; ++k) {
          size_t o = ((size_t) q * K + k) * P1;
          double const *cc = nd->c + ((size_t) Z * np * K) * P1 + o;
          double *row = c->ceff + ((size_t) q * K + k) * nvp, tot = 0.0;
          for (v = 0; v < nvp; ++v) row[v] = 0.0;
          for (p = 0; p < P1; ++p) {
            double ce = gb != NULL ? a * cc[p] + gb[o + p] : cc[p];
            if (sat) ce *= dq[o + p];
            for (l = p * p; l < (p + 1) * (p + 1); ++l) row[l] = ce;
            tot += ce;
          }
          sums[q * K + k] = tot;
        }
      if (gb != NULL) a = 1.0;
    }
  }
  memset(bac, 0, (size_t) sk * nvp * sizeof(double));
  memset(c->selfbar, 0, (size_t) sk * sizeof(double));
  for (s1 = 0; s1 < S; ++s1)
    for (s2 = s1; s2 < S; ++s2) {
      size_t row = (size_t) (Z * np + pair_index(S, s1, s2)) * K;
      size_t erow = (size_t) pair_index(S, s1, s2) * K;
      double const *cc = eff ? c->ceff + erow * nvp : tab + row * nvp;
      double const *cs = eff ? c->ceff + (size_t) np * K * nvp + erow
                             : tab + (size_t) S * np * K * nvp + row;
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
    int p = p0 + t, sl = ws->pslot[p];
    double const *u = ws->su + 3 * (size_t) sl; /* (the projection is
                                                   even in u) */
    double g0 = GV[t], g1 = GV[pst + t], g2 = GV[2 * pst + t];
    double rinv = 1.0 / ws->sr[sl], ug = u[0] * g0 + u[1] * g1 + u[2] * g2;
    double sign = p >= ws->pmid[i] ? -1.0 : 1.0, *h = c->sh + 3 * sl;
    c->st[sl] += rad[t];
    h[0] += sign * (g0 - ug * u[0]) * rinv;
    h[1] += sign * (g1 - ug * u[1]) * rinv;
    h[2] += sign * (g2 - ug * u[2]) * rinv;
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
    double dphi, r = ws->sr[ws->pslot[p]];
    int pair = Zi * S + c->in->species[ws->pj[p]];
    if (r >= nd->r_out) continue;
    e += 0.5 * compot_zbl_eval(&nd->zbl, pair, nd->r_in, nd->r_out, r, &dphi);
    if (grad) c->st[ws->pslot[p]] += 0.5 * a * dphi;
  }
  return e;
}

/* ---- 3. format v2: the atom switch --------------------------------------- */

/*
 * S_pair(i) = prod over the pairs of atom i closer than their r_b of
 * s_in(r_ij) (only atoms flagged by effective_distance get here); the slots,
 * s_in and s_in' of those pairs are kept in ws->csl, c->cw, c->cdw for
 * pair_switch_gradient.
 */
static double pair_switch(ctx *c, int i, int *nclose)
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
static void pair_switch_gradient(ctx *c, int n, double coef)
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
static double grade(ctx *c, int Z)
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
   (after grade at the same atom); by blocks of 4 rows as grade. */
static void grade_gradient(ctx *c, int Z, double coef)
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

/* ---- 3. one atom: values, adjoints, leaf gradients ----------------------- */

static double atom_site(ctx *c, int i)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int S = c->S, b, p, k, nd, ch, Z = c->in->species[i], nclose = 0;
  int grad = c->want_grad;
  size_t sk = (size_t) S * m->max_K;
  double esite, sw = 1.0, spair = 1.0, sgrade = 1.0, dsgrade = 0.0, dv = 0.0;
  double *gf, *gb;

  /* rho_k^(s)(i) = sum_j f_c(r_ij) phi_k^(s)(j) */
  for (b = 0; b < m->n_bases; ++b) {
    int SK = S * m->bases[b].K;
    double *rh = c->brho[b];
    if (rh == NULL) continue;

    if (SK == 8) { /* the common case, in registers */
      compot_v4 r0 = v4_set1(0.0), r1 = r0;
      for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
        double const *fj = c->bphi[b] + (size_t) ws->pj[p] * 8;
        compot_v4 fc = v4_set1(ws->sfc[ws->pslot[p]]);
        r0 = v4_madd(fc, v4_load(fj), r0);
        r1 = v4_madd(fc, v4_load(fj + 4), r1);
      }
      v4_store(rh, r0);
      v4_store(rh + 4, r1);
      continue;
    }
    for (k = 0; k < SK; ++k) rh[k] = 0.0;
    for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
      double const *fj = c->bphi[b] + (size_t) ws->pj[p] * SK;
      double fc = ws->sfc[ws->pslot[p]];
      for (k = 0; k < SK; ++k) rh[k] += fc * fj[k];
    }
  }

  /* values bottom-up: pre-order numbering, so descending indices visit
     children before parents; format v2 with a grade for species Z: each
     fitted leaf copies its features into gf (at its foff) */
  gf = m->version >= 2 && m->grade_on[Z] ? c->gf : NULL;
  for (nd = m->n_nodes - 1; nd >= 0; --nd) {
    compot_node const *node = &m->nodes[nd];
    double e, *f = gf != NULL && node->foff >= 0 ? gf + node->foff : NULL;
    int ch;
    switch (node->kind) {
    case COMPOT_NODE_SUM:
      e = 0.0;
      for (ch = 0; ch < node->n_children; ++ch) e += c->V[node->children[ch]];
      break;
    case COMPOT_NODE_PRODUCT:
      e = c->V[node->children[0]] * c->V[node->children[1]];
      break;
    case COMPOT_NODE_LINEAR: e = leaf_linear(c, node, i, f); break;
    case COMPOT_NODE_EXP:
    case COMPOT_NODE_NEXP:
      e = leaf_exp(c, node, i, grad ? c->dedf + (size_t) nd * sk : NULL, f);
      break;
    case COMPOT_NODE_ANGULAR:
      e = leaf_angular(c, node, i, c->angsum + (size_t) nd * c->ang_stride, f);
      break;
    default: e = leaf_zbl(c, node, i, 0.0, 0); break;
    }
    if (node->shift != NULL) e += node->shift[Z];
    c->V[nd] = e;
  }
  if (m->version >= 2) {
    /* E_i = E_ref + S_i (V_fit - E_ref) + E_ZBL, S_i = S_pair S_grade */
    double vzbl = 0.0, vfit, gamma;
    for (ch = 0; ch < m->n_zbl_root; ++ch) vzbl += c->V[m->zbl_root[ch]];
    vfit = c->V[0] - vzbl;
    if (ws->flag[i] & 8) spair = pair_switch(c, i, &nclose);
    if (gf != NULL) {
      gamma = grade(c, Z);
      if (gamma >= m->g_hi[Z]) {
        sgrade = 0.0;
      } else if (gamma > m->g_lo[Z]) {
        double w = m->g_hi[Z] - m->g_lo[Z], fc, dfc;
        compot_cutoff_fn((gamma - m->g_lo[Z]) / w, 1.0, &fc, &dfc);
        sgrade = fc;
        dsgrade = dfc / w;
      }
    }
    sw = spair * sgrade;
    dv = vfit - m->w_e_ref[Z];
    esite = m->w_e_ref[Z] + sw * dv + vzbl;
  } else
    esite = c->V[0];
  if (!grad) return esite;

  /* adjoints top-down; format v2: the fitted part of the root has adjoint
     S_i, the ZBL terms 1, and the switch adds dv dS_i/dr: through S_pair
     on the close pairs, through S_grade as adjoints gb of the features */
  for (b = 0; b < m->n_bases; ++b)
    if (c->bnu[b] != NULL)
      for (k = 0; k < S * m->bases[b].K; ++k) c->bnu[b][k] = 0.0;
  gb = NULL;
  if (m->version >= 2) {
    if (nclose > 0 && sgrade != 0.0) pair_switch_gradient(c, nclose, dv * sgrade);
    if (dsgrade != 0.0) {
      grade_gradient(c, Z, dv * spair * dsgrade);
      gb = c->gb;
    }
  }
  c->adj[0] = sw;
  for (nd = 0; nd < m->n_nodes; ++nd) {
    compot_node const *node = &m->nodes[nd];
    double a = c->adj[nd];
    double const *fb = gb != NULL && node->foff >= 0 ? gb + node->foff : NULL;
    int K = node->K;
    switch (node->kind) {
    case COMPOT_NODE_SUM:
      for (ch = 0; ch < node->n_children; ++ch) c->adj[node->children[ch]] = a;
      if (nd == 0)
        for (ch = 0; ch < m->n_zbl_root; ++ch) c->adj[m->zbl_root[ch]] = 1.0;
      break;
    case COMPOT_NODE_PRODUCT:
      c->adj[node->children[0]] = a * c->V[node->children[1]];
      c->adj[node->children[1]] = a * c->V[node->children[0]];
      break;
    case COMPOT_NODE_LINEAR: {
      double *lam = c->blam[node->basis] + (size_t) i * S * K;
      double const *cc = node->c + (size_t) Z * S * K;
      for (k = 0; k < S * K; ++k) lam[k] += a * cc[k];
      if (fb != NULL)
        for (k = 0; k < S * K; ++k) lam[k] += fb[k];
      break;
    }
    case COMPOT_NODE_EXP:
    case COMPOT_NODE_NEXP: {
      double *fbar = node->kind == COMPOT_NODE_EXP
                         ? c->blam[node->basis] + (size_t) i * S * K
                         : c->bnu[node->basis];
      double const *d = c->dedf + (size_t) nd * sk;
      for (k = 0; k < S * K; ++k) fbar[k] += a * d[k];
      if (fb != NULL) leaf_exp_grade(c, node, i, fb, fbar);
      break;
    }
    case COMPOT_NODE_ANGULAR:
      if (a != 0.0 || fb != NULL)
        leaf_angular_backward(c, node, i, a,
                              c->angsum + (size_t) nd * c->ang_stride, fb);
      break;
    default: leaf_zbl(c, node, i, a, 1); break;
    }
  }

  /* rho(i) = sum_j f_c(r_ij) phi(j): lambda(j) += nu(i) f_c, and the
     explicit f_c'(r_ij) term */
  for (b = 0; b < m->n_bases; ++b) {
    int SK = S * m->bases[b].K;
    double const *nu = c->bnu[b];
    if (nu == NULL) continue;
    if (SK == 8) { /* the common case, in registers */
      compot_v4 n0 = v4_load(nu), n1 = v4_load(nu + 4);
      for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
        int j = ws->pj[p], sl = ws->pslot[p];
        double const *fj = c->bphi[b] + (size_t) j * 8;
        double *lj = c->blam[b] + (size_t) j * 8;
        compot_v4 fc = v4_set1(ws->sfc[sl]);
        v4_store(lj, v4_madd(n0, fc, v4_load(lj)));
        v4_store(lj + 4, v4_madd(n1, fc, v4_load(lj + 4)));
        c->st[sl] +=
            v4_sum(v4_madd(n1, v4_load(fj + 4), v4_mul(n0, v4_load(fj)))) * ws->sdfc[sl];
      }
      continue;
    }
    for (p = ws->pstart[i]; p < ws->pend[i]; ++p) {
      int j = ws->pj[p], sl = ws->pslot[p];
      double const *fj = c->bphi[b] + (size_t) j * SK;
      double *lj = c->blam[b] + (size_t) j * SK, t;
      double fc = ws->sfc[sl];
      for (k = 0; k < SK; ++k) lj[k] += nu[k] * fc;
      t = dot(SK, nu, fj) * ws->sdfc[sl];
      c->st[sl] += t;
    }
  }
  return esite;
}

/* ---- 4., 5. pair gradients and assembly ----------------------------------- */

/* After the reverse exchange of lambda: for every slot (an unordered pair,
   or a directed pair without twin) the radial term of phi,
   sum_k lambda_k^(s_j)(i) g^_k'(r_ij), of both directions, and the
   assembly of forces and virials. */
static int gradients(ctx *c, compot_output const *out, char *msg,
                     size_t msg_size)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int const *spec = c->in->species;
  int S = c->S, b, o, p, a, err;
  double *F = out->forces, *vir = out->virial, *pv = out->particle_virial;
  double vacc[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0}; /* (not via memory that F may alias) */

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
  for (o = 0; o < c->n_built; ++o) {
    int i = ws->order[o];
    double Fi[3] = {0.0, 0.0, 0.0}; /* (j != i: no pair of a particle with itself) */
    for (p = ws->pstart[i]; p < ws->pmid[i]; ++p) {
      int tw = ws->ptwin[p], j = ws->pj[p], slot = ws->pslot[p];
      double const *u = ws->su + 3 * (size_t) slot, *h = c->sh + 3 * slot;
      double r = ws->sr[slot], T = c->st[slot], H[3], D[3], v[6];
      for (b = 0; b < m->n_bases; ++b) {
        compot_basis const *B = &m->bases[b];
        int K = B->K, SK = S * K;
        double const *dg;
        if (!B->need_phi) continue;
        dg = c->bdg[b] + (size_t) slot * K;
        if (K == 8) { /* the common case, 4 lanes at a time */
          compot_v4 d0 = v4_load(dg), d1 = v4_load(dg + 4);
          if (evaluates(c, B, i)) {
            double const *l = c->blam[b] + (size_t) i * SK + spec[j] * 8;
            T += v4_sum(v4_madd(v4_load(l + 4), d1, v4_mul(v4_load(l), d0)));
          }
          if (tw >= 0 && evaluates(c, B, j)) {
            double const *l = c->blam[b] + (size_t) j * SK + spec[i] * 8;
            T += v4_sum(v4_madd(v4_load(l + 4), d1, v4_mul(v4_load(l), d0)));
          }
          continue;
        }
        if (evaluates(c, B, i))
          T += dot(K, c->blam[b] + (size_t) i * SK + spec[j] * K, dg);
        if (tw >= 0 && evaluates(c, B, j))
          T += dot(K, c->blam[b] + (size_t) j * SK + spec[i] * K, dg);
      }
      /* H = dE/dD_ij - dE/dD_ji = T u_ij + h (D_ji = -D_ij, u_ji = -u_ij) */
      for (a = 0; a < 3; ++a) H[a] = T * u[a] + h[a];
      for (a = 0; a < 3; ++a) Fi[a] += H[a];
      if (F != NULL)
        for (a = 0; a < 3; ++a) F[3 * j + a] -= H[a];
      if (vir == NULL && pv == NULL) continue;
      for (a = 0; a < 3; ++a) D[a] = r * u[a];
      v[0] = H[0] * D[0];
      v[1] = H[1] * D[1];
      v[2] = H[2] * D[2];
      v[3] = 0.5 * (H[1] * D[2] + H[2] * D[1]);
      v[4] = 0.5 * (H[0] * D[2] + H[2] * D[0]);
      v[5] = 0.5 * (H[0] * D[1] + H[1] * D[0]);
      for (a = 0; a < 6; ++a) vacc[a] += v[a];
      if (pv != NULL)
        for (a = 0; a < 6; ++a) {
          pv[6 * i + a] += 0.5 * v[a];
          pv[6 * j + a] += 0.5 * v[a];
        }
    }
    if (F != NULL)
      for (a = 0; a < 3; ++a) F[3 * i + a] += Fi[a];
  }
  if (vir != NULL)
    for (a = 0; a < 6; ++a) vir[a] += vacc[a];
  return COMPOT_OK;
}

#define NONFINITE_HINT                                                       \
  "the model is outside its valid range or its parameters are invalid"

/* Index of the first of n values that is not finite, or -1 (one pass
   without branches, then a search only on failure). */
static long first_nonfinite(double const *x, size_t n)
{
  size_t i;
  int bad = 0;
  for (i = 0; i < n; ++i) bad |= !(fabs(x[i]) <= DBL_MAX);
  if (!bad) return -1;
  for (i = 0; fabs(x[i]) <= DBL_MAX; ++i) continue;
  return (long) i;
}

/* The core never returns non-finite numbers: the site energies are checked
   as they are made (compot_compute_exchange), the other outputs here. */
static int check_finite(int n, compot_output const *out, char *msg,
                        size_t msg_size)
{
  long at;
  static char const *const comp[6] = {"xx", "yy", "zz", "yz", "xz", "xy"};
  if (out->energy != NULL && !(fabs(*out->energy) <= DBL_MAX)) {
    compot_set_msg(msg, msg_size, "non-finite total energy (%g); %s",
                   *out->energy, NONFINITE_HINT);
    return COMPOT_ERR_NONFINITE;
  }
  if (out->forces != NULL
      && (at = first_nonfinite(out->forces, 3 * (size_t) n)) >= 0) {
    double const *f = out->forces + 3 * (at / 3);
    compot_set_msg(msg, msg_size,
                   "non-finite force on particle %ld (%g, %g, %g); %s",
                   at / 3, f[0], f[1], f[2], NONFINITE_HINT);
    return COMPOT_ERR_NONFINITE;
  }
  if (out->virial != NULL && (at = first_nonfinite(out->virial, 6)) >= 0) {
    compot_set_msg(msg, msg_size, "non-finite virial (component %s = %g); %s",
                   comp[at], out->virial[at], NONFINITE_HINT);
    return COMPOT_ERR_NONFINITE;
  }
  if (out->particle_virial != NULL
      && (at = first_nonfinite(out->particle_virial, 6 * (size_t) n)) >= 0) {
    compot_set_msg(msg, msg_size,
                   "non-finite virial of particle %ld (component %s = %g); "
                   "%s",
                   at / 6, comp[at % 6], out->particle_virial[at],
                   NONFINITE_HINT);
    return COMPOT_ERR_NONFINITE;
  }
  return COMPOT_OK;
}

int compot_compute(compot_model const *m, compot_workspace *ws,
                   compot_input const *in, compot_output const *out,
                   char *msg, size_t msg_size)
{
  return compot_compute_exchange(m, ws, in, NULL, out, msg, msg_size);
}

int compot_compute_exchange(compot_model const *m, compot_workspace *ws,
                            compot_input const *in,
                            compot_exchange const *ex,
                            compot_output const *out, char *msg,
                            size_t msg_size)
{
  ctx c;
  compot_workspace *own = NULL;
  int err, i, n;
  size_t np = 0;

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
  if (ex != NULL && (ex->forward == NULL || ex->reverse == NULL)) {
    compot_set_msg(msg, msg_size,
                   "compot_compute_exchange: expected forward and reverse "
                   "exchange functions set");
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
  c.ex = ex;
  c.n = n;
  c.S = m->n_species;
  c.want_grad = out->forces != NULL || out->virial != NULL
                || out->particle_virial != NULL;
  c.tau = m->version >= 2 ? *m->w_tau : 0.0;
  if (out->energy != NULL) *out->energy = 0.0;
  if (out->particle_energy != NULL)
    memset(out->particle_energy, 0, (size_t) n * sizeof(double));
  if (out->forces != NULL)
    memset(out->forces, 0, 3 * (size_t) n * sizeof(double));
  if (out->virial != NULL) memset(out->virial, 0, 6 * sizeof(double));
  if (out->particle_virial != NULL)
    memset(out->particle_virial, 0, 6 * (size_t) n * sizeof(double));

  err = setup(&c, msg, msg_size);
  if (!err) err = build_pairs(&c, &np, msg, msg_size);
  if (!err) err = setup_caches(&c, msg, msg_size);
  if (!err) err = eval_bases(&c, msg, msg_size);
  if (!err) {
    for (i = 0; i < n; ++i) {
      double e;
      if (!IS_CONTRIB(&c, i)) continue;
      e = atom_site(&c, i);
      if (!(fabs(e) <= DBL_MAX)) {
        compot_set_msg(msg, msg_size,
                       "non-finite energy at particle %d (site energy %g); "
                       "%s", i, e, NONFINITE_HINT);
        err = COMPOT_ERR_NONFINITE;
        break;
      }
      if (out->energy != NULL) *out->energy += e;
      if (out->particle_energy != NULL) out->particle_energy[i] = e;
    }
    if (!err && c.want_grad) err = gradients(&c, out, msg, msg_size);
    if (!err) err = check_finite(n, out, msg, msg_size);
  }
  compot_workspace_destroy(own);
  return err;
}
