/*
 * compot_workspace.c -- the workspace of compot_compute: arrays that grow
 * with the configuration and are kept between calls, and the scratch of
 * one call, sized and carved by one routine (layout) so that the two can
 * never disagree.
 */
#include "compot_eval.h"

#include <stdlib.h>
#include <string.h>

compot_workspace *compot_workspace_create(void)
{
  return (compot_workspace *) calloc(1, sizeof(compot_workspace));
}

void compot_workspace_set_grade(compot_workspace *ws, double *grade)
{
  if (ws != NULL) ws->grade_out = grade;
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
  free(ws->arena);
  free(ws->ptr);
  free(ws);
}

/* One array of a set that grows together: per entries of elem bytes for
   each unit of the set's capacity. */
typedef struct growable {
  void **p;
  size_t per, elem;
} growable;

/* Grow the n arrays of a set to hold need units when its capacity *cap is
   smaller: to exactly need units, or (doubling) to the first of 1024,
   2048, ... (twice *cap, ...) that holds need; *cap becomes the new
   capacity.  Returns COMPOT_OK or COMPOT_ERR_MEMORY. */
static int grow_set(size_t *cap, size_t need, int doubling,
                    growable const *a, int n)
{
  size_t c = need;
  int i;
  if (need <= *cap) return COMPOT_OK;
  if (doubling) {
    c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
  }
  for (i = 0; i < n; ++i) {
    void *q = realloc(*a[i].p, a[i].per * c * a[i].elem + 1);
    if (q == NULL) return COMPOT_ERR_MEMORY;
    *a[i].p = q;
  }
  *cap = c;
  return COMPOT_OK;
}

/* The per-particle arrays for n particles. */
int compot_ws_particles(compot_workspace *ws, int n)
{
  growable const a[] = {{(void **) &ws->pstart, 1, sizeof(int)},
                        {(void **) &ws->pend, 1, sizeof(int)},
                        {(void **) &ws->pmid, 1, sizeof(int)},
                        {(void **) &ws->order, 1, sizeof(int)},
                        {(void **) &ws->flag, 1, 1}};
  return grow_set(&ws->n_cap, (size_t) n + 1, 0, a, 5);
}

/* The directed pairs (two per slot with twins). */
int compot_ws_pairs(compot_workspace *ws, size_t need)
{
  growable const a[] = {{(void **) &ws->pj, 1, sizeof(int)},
                        {(void **) &ws->ptwin, 1, sizeof(int)},
                        {(void **) &ws->pslot, 1, sizeof(int)}};
  return grow_set(&ws->pair_cap, need, 1, a, 3);
}

/* One host neighbour list of need entries (called per atom: the common
   case, enough capacity, returns before any call). */
int compot_ws_list(compot_workspace *ws, size_t need)
{
  growable const a[] = {{(void **) &ws->tj, 1, sizeof(int)},
                        {(void **) &ws->td, 4, sizeof(double)}};
  if (need <= ws->list_cap) return COMPOT_OK;
  return grow_set(&ws->list_cap, need, 1, a, 2);
}

/* The geometry of need slots (called per atom, as above). */
int compot_ws_slots(compot_workspace *ws, size_t need)
{
  growable const a[] = {{(void **) &ws->sj, 1, sizeof(int)},
                        {(void **) &ws->sr, 1, sizeof(double)},
                        {(void **) &ws->su, 3, sizeof(double)},
                        {(void **) &ws->sfc, 1, sizeof(double)},
                        {(void **) &ws->sdfc, 1, sizeof(double)},
                        {(void **) &ws->sx, 1, sizeof(double)},
                        {(void **) &ws->wsl, 1, sizeof(int)},
                        {(void **) &ws->wdc, 1, sizeof(double)}};
  if (need <= ws->slot_geo_cap) return COMPOT_OK;
  return grow_set(&ws->slot_geo_cap, need, 1, a, 8);
}

/* Consecutive pieces of one array: each a multiple of 8 doubles, so that
   with a 64-byte aligned base every piece starts 64-byte aligned (rows of
   4-lane loads stay aligned).  With base NULL it only counts. */
typedef struct carver {
  double *base;
  size_t used;
} carver;

static double *take(carver *cv, size_t n)
{
  double *p = cv->base != NULL ? cv->base + cv->used : NULL;
  cv->used += (n + 7) & ~(size_t) 7;
  return p;
}

/*
 * The scratch of one call, in one array: first the pieces that accumulate
 * (zeroed; their count in *n_zero), then the others.
 *   per basis: phi and (gradients) lambda [n S K], by particle rows of
 *     S K doubles; the slot caches of g^ (A leaves) and g^' (gradients)
 *     [n_slots K]; rho and nu of the current atom [S K] (N leaves);
 *   per slot (gradients): T and h [n_slots], [3 n_slots];
 *   per A leaf: the per-atom arrays of compot_angular_value (rows of Y
 *     beyond (P+1)^2 are read, times zero, but never written: zeroed);
 *   per atom: node values and adjoints, de/df of E and N leaves, the
 *     feature and basis batches, the A adjoints, the grade's vectors, the
 *     close pairs' s_in.
 */
static size_t layout(compot_ctx *c, double *base, size_t *n_zero)
{
  compot_model const *m = c->m;
  carver cv;
  int S = c->S, nb = m->n_bases, b, nd, max_l = 1;
  size_t n = (size_t) c->n, ns = (size_t) c->n_slots, mp = (size_t) c->max_pairs;
  size_t sk = (size_t) S * m->max_K, nn = (size_t) m->n_nodes, lk;
  size_t np = (size_t) (S * (S + 1) / 2);

  cv.base = base;
  cv.used = 0;
  for (b = 0; b < nb; ++b) {
    compot_basis const *B = &m->bases[b];
    size_t one = n * S * B->K;
    c->bphi[b] = c->blam[b] = NULL;
    if (!B->need_phi) continue;
    c->bphi[b] = take(&cv, one);
    if (c->want_grad) c->blam[b] = take(&cv, one);
  }
  c->st = c->sh = NULL;
  if (c->want_grad) {
    c->st = take(&cv, ns);
    c->sh = take(&cv, 3 * ns);
  }
  c->angsum = take(&cv, nn * c->ang_stride);
  *n_zero = cv.used;
  c->ang_qbar = 0;
  c->aqbar = NULL;
  for (nd = 0; nd < m->n_nodes; ++nd)
    if (m->nodes[nd].ang_shared)
      c->ang_qbar = (np * m->max_K * ((size_t) m->max_P + 1) + 1 + 7) & ~(size_t) 7;
  if (c->ang_qbar > 0) c->aqbar = take(&cv, nn * c->ang_qbar);

  for (b = 0; b < nb; ++b) {
    compot_basis const *B = &m->bases[b];
    c->bg[b] = c->bdg[b] = c->brho[b] = c->bnu[b] = NULL;
    if (B->need_ang) c->bg[b] = take(&cv, ns * B->K);
    if (c->want_grad && (B->need_phi || B->need_ang))
      c->bdg[b] = take(&cv, ns * B->K);
    if (B->need_rho) {
      c->brho[b] = take(&cv, sk);
      c->bnu[b] = take(&cv, sk);
    }
  }
  c->V = take(&cv, nn);
  c->adj = take(&cv, nn);
  c->dedf = take(&cv, nn * sk);
  for (nd = 0; nd < m->n_nodes; ++nd)
    if (m->nodes[nd].L > max_l) max_l = m->nodes[nd].L;
  lk = (size_t) max_l * m->max_K;
  c->fu = take(&cv, lk);
  c->fx = take(&cv, lk);
  c->fdx = take(&cv, lk);
  c->bgv = take(&cv, mp * m->max_K);
  c->bdgv = take(&cv, mp * m->max_K);
  c->bfc = take(&cv, mp);
  c->bdfc = take(&cv, mp);
  c->bac = c->selfbar = c->ceff = c->ascr = c->eaq = c->aqs = NULL;
  if (m->has_angular) {
    int expang = 0;
    for (nd = 0; nd < m->n_nodes; ++nd)
      expang |= m->nodes[nd].kind == COMPOT_NODE_EXPANG;
    c->bac = take(&cv, sk * (size_t) c->nvp);
    c->selfbar = take(&cv, sk);
    c->ascr = take(&cv, 4 * (size_t) c->pst);
    c->ceff = take(&cv, np * m->max_K * ((size_t) c->nvp + 1));
    c->aqs = take(&cv, np * m->max_K * ((size_t) m->max_P + 1));
    if (expang) /* invariants; u, x, dx of one channel pair */
      c->eaq = take(&cv, (np + 3 * (size_t) max_l) * m->max_K * ((size_t) m->max_P + 1));
  }
  c->gf = c->gy = c->gz = c->gb = c->cw = c->cdw = NULL;
  if (m->version >= 2) {
    size_t dp = (size_t) m->grade_dp;
    c->gf = take(&cv, dp);
    c->gy = take(&cv, dp);
    c->gz = take(&cv, dp);
    c->gb = take(&cv, dp);
    c->cw = take(&cv, mp);
    c->cdw = take(&cv, mp);
  }
  return cv.used;
}

int compot_scratch(compot_ctx *c, char *msg, size_t msg_size)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  size_t nb = (size_t) m->n_bases, need, n_zero;
  double *base;
  growable const ptr = {(void **) &ws->ptr, 1, sizeof(double *)};
  growable const arena = {(void **) &ws->arena, 1, sizeof(double)};
  growable const csl = {(void **) &ws->csl, 1, sizeof(int)};

  c->nvp = m->nvp;
  c->pst = ((c->max_pairs > 0 ? c->max_pairs : 1) + 3) & ~3;
  c->ang_stride = m->has_angular ? compot_angular_stride(m, c->pst) : 0;
  if (grow_set(&ws->ptr_cap, 6 * nb, 0, &ptr, 1)) goto nomem;
  c->bphi = ws->ptr;
  c->blam = c->bphi + nb;
  c->bg = c->blam + nb;
  c->bdg = c->bg + nb;
  c->brho = c->bdg + nb;
  c->bnu = c->brho + nb;
  need = layout(c, NULL, &n_zero) + 8; /* (8: room to align the base) */
  if (grow_set(&ws->arena_cap, need, 0, &arena, 1)
      || (m->version >= 2
          && grow_set(&ws->close_cap, (size_t) c->max_pairs + 1, 0, &csl, 1)))
    goto nomem;
  base = compot_align64(ws->arena);
  layout(c, base, &n_zero);
  memset(base, 0, n_zero * sizeof(double));
  return COMPOT_OK;
nomem:
  compot_set_msg(msg, msg_size,
                 "out of memory for %d particles and %d pair slots", c->n,
                 c->n_slots);
  return COMPOT_ERR_MEMORY;
}
