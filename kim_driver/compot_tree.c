/*
 * compot_tree.c -- energy, forces and virial of a compot model (MODEL_SPEC
 * 5): the steps of one compute call, the walk over the model tree at each
 * atom, and the assembly of forces and virials.
 *
 *   1. Pairs (compot_pairs.c).
 *   2. Cluster functions phi of every basis (compot_term_pair.c); with a
 *      host exchange, phi is then copied onto ghosts.
 *   3. Sites: for each contributing atom i in turn, rho_k^(s)(i) of N
 *      terms, every node's value bottom-up, V_n(i) = e_n(i) + shift_n(Z_i),
 *      and -- with gradients -- its adjoints a_n(i) = dE/dV_n(i) top-down
 *      (sum: a child = a; product: a_X = a V_Y, a_Y = a V_X), all local to
 *      atom i.  Leaves (compot_term_*.c) turn adjoints into
 *      lambda_k^(s)(i) = dE/dphi (E and G/C leaves, with derivatives kept
 *      from the value step) and nu(i) = dE/drho (N leaves), which flows at
 *      once into lambda of the neighbours, ghosts included; A and ZBL
 *      leaves and the f_c' term of rho add to dE/dD_ij, the gradient with
 *      respect to the pair vector D_ij = r_j - r_i of the directed pair (i
 *      centre, j neighbour).  What matters for forces and virials is H =
 *      dE/dD_ij - dE/dD_ji of the slot's first direction (i, j): radial
 *      terms t u_ij (and t' u_ji of the twin) add t (t') to a scalar T of
 *      the slot, H = T u_ij + h, A terms add to the vector h with the sign
 *      of their direction.  Format v2 (compot_switch.c): E_i = S_i
 *      V_fit(i) + (1 - S_i) E_ref(Z_i) + E_ZBL(i), V_fit the root without
 *      its ZBL terms (format v3: bounded below, compot_bounded_fit, whose
 *      derivative then multiplies the fitted part's adjoint); the fitted leaves write the grade's feature vector f
 *      as they are evaluated.  The fitted part then has adjoint S_i;
 *      (V_fit - E_ref) dS_i/dr adds the terms of the close pairs to T, and
 *      for atoms inside the grade's transition an adjoint of every
 *      feature, (V_fit - E_ref) S_pair dS_grade/dgamma 2 [U^T U (f -
 *      mu)]_c, that the leaves' backward steps add to their coefficients
 *      times the atom's adjoint.
 *   4. With a host exchange, lambda of ghosts is summed into the owners,
 *      then T += sum_k lambda_k^(s_j)(i) g^_k'(r_ij) for both directions of
 *      every slot (compot_cluster_backward).
 *   5. Slots, in order: F_i += H, F_j -= H, the virial H (x) D_ij
 *      (symmetrised) and per-particle virials half-half.
 *   6. Every result is checked to be finite (COMPOT_ERR_NONFINITE).
 */
#include "compot_eval.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Value of a leaf at atom i (gf: where its grade features go, or NULL). */
static double leaf_value(compot_ctx *c, int nd, int i, double *gf)
{
  compot_node const *node = &c->m->nodes[nd];
  size_t sk = (size_t) c->S * c->m->max_K;
  switch (node->kind) {
  case COMPOT_NODE_LINEAR: return compot_linear_value(c, node, i, gf);
  case COMPOT_NODE_EXP:
  case COMPOT_NODE_NEXP:
    return compot_exp_value(c, node, i,
                            c->want_grad ? c->dedf + (size_t) nd * sk : NULL,
                            gf);
  case COMPOT_NODE_ANGULAR:
  case COMPOT_NODE_EXPANG: {
    /* the group's owner, evaluated first, makes the moments for all */
    double *blk = c->angsum + (size_t) nd * c->ang_stride;
    double *mom = c->angsum + (size_t) node->ang_owner * c->ang_stride;
    if (node->ang_owner == nd) {
      compot_angular_moments(c, node, i, mom);
      if (node->ang_shared)
        memset(c->aqbar + (size_t) nd * c->ang_qbar, 0,
               c->ang_qbar * sizeof(double));
    }
    return node->kind == COMPOT_NODE_ANGULAR
               ? compot_angular_value(c, node, i, mom, blk, gf)
               : compot_expang_value(c, node, i, mom, blk, gf);
  }
  default: return compot_zbl_value(c, node, i, 0.0, 0);
  }
}

/* Backward step of a leaf of a shared group of A and E[A] leaves: the
   adjoints of its invariants into the group's, then, at the owner (stepped
   back last), the group's one backward step through the moments. */
static void shared_backward(compot_ctx *c, int nd, int i, double a,
                            double const *gb)
{
  compot_node const *node = &c->m->nodes[nd];
  double *qbar = c->aqbar + (size_t) node->ang_owner * c->ang_qbar;
  double const *mom = c->angsum + (size_t) node->ang_owner * c->ang_stride;
  double const *blk = c->angsum + (size_t) nd * c->ang_stride;
  double *flag = qbar + c->ang_qbar - 1;
  if (a != 0.0 || gb != NULL) {
    if (node->kind == COMPOT_NODE_ANGULAR)
      compot_angular_qbar(c, node, i, a, blk, gb, qbar);
    else
      compot_expang_qbar(c, node, i, a, blk, gb, qbar);
    *flag = 1.0;
  }
  if (node->ang_owner == nd && *flag != 0.0)
    compot_angular_invariant_backward(c, node, i, qbar, mom);
}

/* Backward step of a leaf at atom i with adjoint a (gb: the adjoints of its
   grade features, or NULL). */
static void leaf_backward(compot_ctx *c, int nd, int i, double a,
                          double const *gb)
{
  compot_node const *node = &c->m->nodes[nd];
  size_t sk = (size_t) c->S * c->m->max_K;
  switch (node->kind) {
  case COMPOT_NODE_LINEAR: compot_linear_backward(c, node, i, a, gb); break;
  case COMPOT_NODE_EXP:
  case COMPOT_NODE_NEXP:
    compot_exp_backward(c, node, i, a, c->dedf + (size_t) nd * sk, gb);
    break;
  case COMPOT_NODE_ANGULAR:
    if (node->ang_shared)
      shared_backward(c, nd, i, a, gb);
    else if (a != 0.0 || gb != NULL)
      compot_angular_backward(c, node, i, a,
                              c->angsum + (size_t) nd * c->ang_stride, gb);
    break;
  case COMPOT_NODE_EXPANG:
    if (node->ang_shared)
      shared_backward(c, nd, i, a, gb);
    else if (a != 0.0 || gb != NULL)
      compot_expang_backward(c, node, i, a,
                             c->angsum + (size_t) nd * c->ang_stride,
                             c->angsum + (size_t) nd * c->ang_stride, gb);
    break;
  default: compot_zbl_value(c, node, i, a, 1); break;
  }
}

/* Site energy of contributing atom i and, with gradients, its adjoints
   into lambda, nu and the slots (step 3). */
static double atom_site(compot_ctx *c, int i)
{
  compot_model const *m = c->m;
  compot_workspace *ws = c->ws;
  int nd, ch, Z = c->in->species[i], nclose = 0;
  double esite, sw = 1.0, spair = 1.0, sgrade = 1.0, dsgrade = 0.0, dv = 0.0;
  double dvb = 1.0, gcoord = 0.0, dgcoord = 0.0;
  double *gf, *gb;

  if (m->has_nexp) compot_rho_value(c, i);

  /* values bottom-up: pre-order numbering, so descending indices visit
     children before parents; format v2 with a grade for species Z: each
     fitted leaf copies its features into gf (at its foff) */
  gf = m->version >= 2 && m->grade_on[Z] ? c->gf : NULL;
  for (nd = m->n_nodes - 1; nd >= 0; --nd) {
    compot_node const *node = &m->nodes[nd];
    double e;
    if (node->kind == COMPOT_NODE_SUM) {
      e = 0.0;
      for (ch = 0; ch < node->n_children; ++ch) e += c->V[node->children[ch]];
    } else if (node->kind == COMPOT_NODE_PRODUCT) {
      e = c->V[node->children[0]] * c->V[node->children[1]];
    } else {
      e = leaf_value(c, nd, i,
                     gf != NULL && node->foff >= 0 ? gf + node->foff : NULL);
    }
    if (node->shift != NULL) e += node->shift[Z];
    c->V[nd] = e;
  }
  if (m->version >= 2) {
    /* E_i = E_ref + S_i (V_fit - E_ref) + E_ZBL, S_i = S_pair S_grade */
    double vzbl = 0.0, vfit;
    for (ch = 0; ch < m->n_zbl_root; ++ch) vzbl += c->V[m->zbl_root[ch]];
    vfit = c->V[0] - vzbl;
    if (m->version >= 3) vfit = compot_bounded_fit(m, Z, vfit, &dvb);
    if (ws->flag[i] & COMPOT_PF_CLOSE)
      spair = compot_pair_switch(c, i, &nclose);
    /* (an atom switched off by its close pairs needs no grade, unless the
       host asked for it: compot_workspace_set_grade) */
    if (spair != 0.0 || ws->grade_out != NULL) {
      /* format v4: the coordination term of gamma (below the data's lowest) */
      int low = m->version >= 4 && m->g_nmin[Z] > 0.0
                && compot_coordination_term(c, i, Z, &gcoord, &dgcoord);
      int exact = low;
      double gamma = 0.0;
      if (gf != NULL) {
        compot_grade_delta(c, Z);
        /* (the d^2 product only when the host asks for gamma, the
           coordination adds to it, or the cheap bound cannot show gamma <=
           gamma_lo, where S_grade = 1) */
        if (ws->grade_out != NULL || low || !compot_grade_screen(c, Z)) {
          gamma = compot_grade(c, Z);
          exact = 1;
        }
      }
      if (exact) {
        gamma += gcoord;
        if (ws->grade_out != NULL) ws->grade_out[i] = gamma;
        if (spair != 0.0) sgrade = compot_grade_switch(m, Z, gamma, &dsgrade);
      }
    }
    sw = spair * sgrade;
    dv = vfit - m->w_e_ref[Z];
    esite = m->w_e_ref[Z] + sw * dv + vzbl;
  } else
    esite = c->V[0];
  if (!c->want_grad) return esite;

  /* adjoints top-down; format v2: the fitted part of the root has adjoint
     S_i, the ZBL terms 1, and the switch adds dv dS_i/dr: through S_pair
     on the close pairs, through S_grade as adjoints gb of the features */
  gb = NULL;
  if (m->version >= 2) {
    if (nclose > 0 && sgrade != 0.0)
      compot_pair_switch_gradient(c, nclose, dv * sgrade);
    if (dsgrade != 0.0 && gf != NULL) {
      compot_grade_gradient(c, Z, dv * spair * dsgrade);
      gb = c->gb;
    }
    if (dsgrade != 0.0 && dgcoord != 0.0)
      compot_coordination_gradient(c, i, dv * spair * dsgrade * dgcoord);
  }
  c->adj[0] = sw * dvb;
  for (nd = 0; nd < m->n_nodes; ++nd) {
    compot_node const *node = &m->nodes[nd];
    double a = c->adj[nd];
    if (node->kind == COMPOT_NODE_SUM) {
      for (ch = 0; ch < node->n_children; ++ch) c->adj[node->children[ch]] = a;
      if (nd == 0)
        for (ch = 0; ch < m->n_zbl_root; ++ch) c->adj[m->zbl_root[ch]] = 1.0;
    } else if (node->kind == COMPOT_NODE_PRODUCT) {
      c->adj[node->children[0]] = a * c->V[node->children[1]];
      c->adj[node->children[1]] = a * c->V[node->children[0]];
    } else {
      leaf_backward(c, nd, i, a,
                    gb != NULL && node->foff >= 0 ? gb + node->foff : NULL);
    }
  }
  if (m->has_nexp) compot_rho_backward(c, i);
  return esite;
}

/* Forces and virials from the slots' T and h (step 5). */
static void assemble(compot_ctx *c, compot_output const *out)
{
  compot_workspace *ws = c->ws;
  int o, p, a;
  double *F = out->forces, *vir = out->virial, *pv = out->particle_virial;
  double vacc[6] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0}; /* (not via memory that F may alias) */

  for (o = 0; o < c->n_built; ++o) {
    int i = ws->order[o];
    double Fi[3] = {0.0, 0.0, 0.0}; /* (j != i: no pair of a particle with itself) */
    for (p = ws->pstart[i]; p < ws->pmid[i]; ++p) {
      int j = ws->pj[p], slot = ws->pslot[p];
      double const *u = ws->su + 3 * (size_t) slot, *h = c->sh + 3 * slot;
      double r = ws->sr[slot], T = c->st[slot], H[3], D[3], v[6];
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

/* Steps 3 to 6, after the pairs and phi. */
static int sites_and_gradients(compot_ctx *c, compot_output const *out,
                               char *msg, size_t msg_size)
{
  int i, err = COMPOT_OK;
  for (i = 0; i < c->n; ++i) {
    double e;
    if (!compot_is_contrib(c, i)) continue;
    e = atom_site(c, i);
    if (!(fabs(e) <= DBL_MAX)) {
      compot_set_msg(msg, msg_size,
                     "non-finite energy at particle %d (site energy %g); %s",
                     i, e, NONFINITE_HINT);
      return COMPOT_ERR_NONFINITE;
    }
    if (out->energy != NULL) *out->energy += e;
    if (out->particle_energy != NULL) out->particle_energy[i] = e;
  }
  if (c->want_grad) {
    err = compot_cluster_backward(c, msg, msg_size);
    if (!err) assemble(c, out);
  }
  if (!err) err = check_finite(c->n, out, msg, msg_size);
  return err;
}

COMPOT_HOT int compot_compute_exchange(compot_model const *m, compot_workspace *ws,
                            compot_input const *in,
                            compot_exchange const *ex,
                            compot_output const *out, char *msg,
                            size_t msg_size)
{
  compot_ctx c;
  compot_workspace *own = NULL;
  int err, n;

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
  if (ws->grade_out != NULL)
    memset(ws->grade_out, 0, (size_t) n * sizeof(double));
  if (out->forces != NULL)
    memset(out->forces, 0, 3 * (size_t) n * sizeof(double));
  if (out->virial != NULL) memset(out->virial, 0, 6 * sizeof(double));
  if (out->particle_virial != NULL)
    memset(out->particle_virial, 0, 6 * (size_t) n * sizeof(double));

  err = compot_ws_particles(ws, n);
  if (err) compot_set_msg(msg, msg_size, "out of memory for %d particles", n);
  if (!err) err = compot_build_pairs(&c, msg, msg_size);
  if (!err) err = compot_scratch(&c, msg, msg_size);
  if (!err) err = compot_cluster_functions(&c, msg, msg_size);
  if (!err) err = sites_and_gradients(&c, out, msg, msg_size);
  compot_workspace_destroy(own);
  return err;
}
