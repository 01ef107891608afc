/*
 * compot_pairs.c -- step 1 of compot_compute: the pairs (MODEL_SPEC 1, 10).
 *
 * For every particle whose cluster functions are needed (contributing
 * particles, plus -- when the host supplies neighbour lists of ghosts --
 * with an N term every particle within r_c of a contributing one) the
 * neighbours with r < r_c, with r, the unit vector and f_c(r), f_c'(r).
 * The two directions (i, j) and (j, i) of a pair whose particles both have
 * lists are linked as twins and share one cache slot: the radial basis
 * (the exponentials) is evaluated once per unordered pair.  Each pair is
 * kept once (from a half list, or by index order from full lists) and both
 * directions are written together (compot_build_pairs).  Format v2: a pair
 * closer than its r_b is seen by every fitted term at the effective
 * distance c(r) (compot_effective_distance, monotone): its slot
 * holds f_c(c) and the basis is evaluated at c; ZBL, the unit vectors and
 * the virial keep the true r.  Term cutoffs r_t < r_c (issue 13): each
 * particle's own pairs and its twins are each ordered by level (how many
 * of the distinct r_t are <= r), so a basis with r_t finds the pairs it
 * sees as a prefix of both parts (compot_seen_pairs) and visits no other:
 * the pairs at r_t <= r < r_c have f_c(c; r_t) = 0 (c(r) >= r).
 */
#include "compot_eval.h"

#include <math.h>
#include <string.h>


/* The host's list of particle i (*list_out) and which of its entries lie
   inside r_c: their positions in the list in ws->tj[0..*m_out), the
   difference vectors D = x_j - x_i and |D|^2 of every entry in ws->td.
   Checks the species and indices involved and that no two particles
   coincide. */
static int listed_inside(compot_ctx *c, int i, int const **list_out,
                         int *m_out, char *msg, size_t msg_size)
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
  if (nn > 0 && compot_ws_list(ws, (size_t) nn)) {
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
 * its r_b at the effective distance c(r) >= r_b - 0.11 (r_b - r_a)
 * (compot_effective_distance, monotone), so they never extrapolate
 * in r: the slots of such pairs get f_c(c), f_c'(c) (c->sx holds c; the
 * basis is evaluated at c and compot_cluster_functions multiplies g^' and
 * f_c' by dc/dr afterwards).  ZBL, the unit vectors and the virial read the
 * true r.  The slots are listed (ws->wsl, ws->wdc) and both particles
 * flagged COMPOT_PF_CLOSE for the atom switch S_pair (compot_switch.c).
 * Called by compot_build_pairs after the slots are made: the slots of particle order[o] are the next pmid[i] ones
 * (own pairs, counted).  A slot at r >= the largest r_b costs one compare.
 */
static void effective_distance(compot_ctx *c)
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
      double r = ws->sr[h], s, x;
      if (!(r < rb_max)) continue;
      w = win + 2 * (zi + spec[ws->sj[h]]);
      if (!(r < w[1])) continue;
      if (nw == 0) { /* the first close pair: the distances seen */
        memcpy(ws->sx, ws->sr, (size_t) c->n_slots * sizeof(double));
        c->sx = ws->sx;
      }
      compot_effective_distance(r, w[0], w[1], &x, &s);
      ws->sx[h] = x;
      compot_cutoff_fn(x, rc, &ws->sfc[h], &ws->sdfc[h]);
      ws->wsl[nw] = (int) h;
      ws->wdc[nw++] = s;
      ws->flag[i] |= COMPOT_PF_CLOSE;
      ws->flag[ws->sj[h]] |= COMPOT_PF_CLOSE;
    }
  }
  c->n_win = nw;
}

/* The distinct term cutoffs r_t < r_c of the model's bases, ascending, into
   c->lev (issue 13). */
static void term_levels(compot_ctx *c)
{
  compot_model const *m = c->m;
  int b, l, k;
  c->nlev = 0;
  for (b = 0; b < m->n_bases; ++b) {
    double rt = compot_basis_rt(c, &m->bases[b]);
    if (rt == 0.0) continue;
    for (l = 0; l < c->nlev && c->lev[l] < rt; ++l) continue;
    if (l < c->nlev && c->lev[l] == rt) continue;
    for (k = c->nlev; k > l; --k) c->lev[k] = c->lev[k - 1];
    c->lev[l] = rt;
    c->nlev += 1;
  }
}

/* The level of a pair at distance r: how many term cutoffs are <= r (a basis
   of cutoff lev[l] sees the pairs of levels 0..l). */
static int level_of(compot_ctx const *c, double r)
{
  int l = 0;
  while (l < c->nlev && c->lev[l] <= r) ++l;
  return l;
}

/* Swap directed pairs a and b of the twin part of a particle (b's and a's
   own partners follow). */
static void swap_twins(compot_workspace *ws, int a, int b)
{
  int j = ws->pj[a], tw = ws->ptwin[a], sl = ws->pslot[a];
  ws->pj[a] = ws->pj[b];
  ws->ptwin[a] = ws->ptwin[b];
  ws->pslot[a] = ws->pslot[b];
  ws->pj[b] = j;
  ws->ptwin[b] = tw;
  ws->pslot[b] = sl;
  ws->ptwin[ws->ptwin[a]] = a;
  ws->ptwin[ws->ptwin[b]] = b;
}

/* With term cutoffs: every particle's twins [pmid, pend) ordered by level
   (one partition per level; the own pairs are made in level order). */
static void order_twins(compot_ctx *c)
{
  compot_workspace *ws = c->ws;
  int o, l;
  for (o = 0; o < c->n_built; ++o) {
    int i = ws->order[o], lo = ws->pmid[i], hi = ws->pend[i];
    for (l = 0; l < c->nlev && lo < hi; ++l) {
      double rt = c->lev[l];
      int a = lo, b = hi; /* [lo, a) below rt, [b, hi) not */
      while (a < b) {
        if (ws->sr[ws->pslot[a]] < rt) {
          ++a;
          continue;
        }
        --b;
        if (a != b) swap_twins(ws, a, b);
      }
      lo = a;
    }
  }
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
COMPOT_HOT int compot_build_pairs(compot_ctx *c, char *msg, size_t msg_size)
{
  compot_workspace *ws = c->ws;
  int n = c->n, i, t, m, err, o, p, pass, lv, half = c->in->half_list;
  int mark = c->m->has_nexp && c->ex == NULL;
  int const *list;
  size_t h = 0, e = 0, q = 0;

  c->n_built = 0;
  c->max_pairs = 0;
  term_levels(c);
  for (i = 0; i < n; ++i) {
    ws->flag[i] = c->in->contributing[i] ? COMPOT_PF_CONTRIB : 0;
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
      if (pass == 0 ? !(ws->flag[i] & COMPOT_PF_CONTRIB)
                    : ws->flag[i] != COMPOT_PF_SECOND)
        continue;
      err = listed_inside(c, i, &list, &m, msg, msg_size);
      if (err) return err;
      if (compot_ws_slots(ws, h + (size_t) m)) {
        compot_set_msg(msg, msg_size, "out of memory for %lu pairs",
                       (unsigned long) (h + (size_t) m));
        return COMPOT_ERR_MEMORY;
      }
      /* with term cutoffs, the own pairs in level order (one sweep per
         level) */
      for (lv = 0; lv <= c->nlev; ++lv)
      for (t = 0; t < m; ++t) {
        int j = list[ws->tj[t]], fj;
        double const *d = ws->td + 4 * ws->tj[t];
        double r, inv;
        if (c->nlev > 0 && level_of(c, sqrt(d[3])) != lv) continue;
        if (mark && !pass && !(ws->flag[j] & COMPOT_PF_CONTRIB))
          ws->flag[j] |= COMPOT_PF_SECOND;
        fj = ws->flag[j];
        if (pass == 0 ? !half && (fj & COMPOT_PF_CONTRIB) && j < i
                      : (fj & COMPOT_PF_CONTRIB)
                            || ((fj & COMPOT_PF_SECOND) && j < i))
          continue;
        r = sqrt(d[3]);
        inv = 1.0 / r;
        ws->sj[h] = j;
        ws->sr[h] = r;
        ws->su[3 * h] = d[0] * inv;
        ws->su[3 * h + 1] = d[1] * inv;
        ws->su[3 * h + 2] = d[2] * inv;
        ws->pmid[i] += 1;
        ws->pend[j] += (fj & (COMPOT_PF_CONTRIB | COMPOT_PF_SECOND)) != 0;
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
    ws->flag[i] |= COMPOT_PF_BUILT;
  }
  if (compot_ws_pairs(ws, q)) {
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
      if (ws->flag[j] & COMPOT_PF_BUILT) {
        tw = ws->pend[j]++;
        ws->pj[tw] = i;
        ws->ptwin[tw] = p;
        ws->pslot[tw] = (int) e;
      }
      ws->ptwin[p] = tw;
    }
  }
  if (c->nlev > 0) order_twins(c);
  return COMPOT_OK;
}
