/*
 * bench_core.c -- time the C core alone (no LAMMPS, no MPI) on a rattled
 * bcc crystal with periodic images as ghosts, the way the plugin calls it
 * (contributing owned atoms, lists of owned atoms only -- half lists with
 * newton off, as the plugin requests, or full lists, as KIM gives -- and a
 * host exchange that copies rows of images from their owners).  A developer tool
 * for profiling (perf record ./bench_core model.params 12 20).
 *
 *   make -C lammps_plugin bench_core
 *   lammps_plugin/bench_core MODEL.params [cells=12] [repeats=20] [a=3.30] [skin=2.0] [half|full] [grade] [forces]
 *
 * With "grade" the extrapolation grade of every atom is asked for too
 * (compot_workspace_set_grade), as pair_style compot grade does.  With
 * "forces" the timed calls ask for forces only, as the plugin's calls on
 * the MD steps without an energy or virial tally do.
 *
 * Prints CPU microseconds per atom and compute call (energy, forces and
 * virial, or forces only) and the energy per atom (of the untimed first
 * call, which computes all three).
 */
#define _POSIX_C_SOURCE 200809L
#include "compot_core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct crystal {
  int n_own, n;
  int *owner;
  int *species, *contributing;
  double *x;
  int *start, *count, *list;
} crystal;

static int neighbors(void *ctx, int i, int *n, int const **list)
{
  crystal const *s = (crystal const *) ctx;
  *n = s->count[i];
  *list = s->list + s->start[i];
  return 0;
}

static int forward(void *ctx, double *data, int width)
{
  crystal const *s = (crystal const *) ctx;
  int i;
  for (i = s->n_own; i < s->n; ++i)
    memcpy(data + (size_t) i * width, data + (size_t) s->owner[i] * width,
           (size_t) width * sizeof(double));
  return 0;
}

static int reverse(void *ctx, double *data, int width)
{
  crystal const *s = (crystal const *) ctx;
  int i, k;
  for (i = s->n_own; i < s->n; ++i)
    for (k = 0; k < width; ++k)
      data[(size_t) s->owner[i] * width + k] += data[(size_t) i * width + k];
  return 0;
}

static double cpu_seconds(void)
{
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double) t.tv_sec + 1e-9 * (double) t.tv_nsec;
}

int main(int argc, char **argv)
{
  char msg[1024];
  compot_model *model = NULL;
  compot_workspace *ws;
  crystal s;
  int cells = argc > 2 ? atoi(argv[2]) : 12, reps = argc > 3 ? atoi(argv[3]) : 20;
  double a = argc > 4 ? atof(argv[4]) : 3.30, skin = argc > 5 ? atof(argv[5]) : 2.0;
  int half = !(argc > 6 && strcmp(argv[6], "full") == 0), grade = 0,
      forces_only = 0, bad = 0, k;
  double L, rl, rl2, energy, vir[6], t0, t1, *f;
  int i, j, c, r, img[3], nimg, cap, nl = 0;

  for (k = 7; k < argc; ++k) {
    if (strcmp(argv[k], "grade") == 0)
      grade = 1;
    else if (strcmp(argv[k], "forces") == 0)
      forces_only = 1;
    else
      bad = 1;
  }
  if (argc < 2 || cells < 1 || reps < 1 || !(a > 0.0) || !(skin >= 0.0) || bad
      || (argc > 6 && strcmp(argv[6], "full") != 0 && strcmp(argv[6], "half") != 0)) {
    fprintf(stderr, "usage: %s MODEL.params [cells] [repeats] [a] [skin] [half|full] [grade] [forces]\n",
            argv[0]);
    return 2;
  }
  if (compot_create(&model, argv[1], msg, sizeof msg)) {
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  L = cells * a;
  rl = compot_cutoff(model) + skin;
  rl2 = rl * rl;
  nimg = (int) ceil(rl / L);
  s.n_own = 2 * cells * cells * cells;
  cap = s.n_own * (2 * nimg + 1) * (2 * nimg + 1) * (2 * nimg + 1);
  s.owner = malloc(cap * sizeof(int));
  s.x = malloc(3 * (size_t) cap * sizeof(double));
  srand(12345);
  /* owned atoms, lattice order, rattled by up to 0.05 A */
  s.n = 0;
  for (c = 0; c < cells * cells * cells; ++c)
    for (r = 0; r < 2; ++r) {
      double *x = s.x + 3 * s.n;
      x[0] = a * (c % cells + 0.5 * r) + 0.1 * (rand() / (double) RAND_MAX - 0.5);
      x[1] = a * (c / cells % cells + 0.5 * r) + 0.1 * (rand() / (double) RAND_MAX - 0.5);
      x[2] = a * (c / cells / cells + 0.5 * r) + 0.1 * (rand() / (double) RAND_MAX - 0.5);
      s.owner[s.n] = s.n;
      ++s.n;
    }
  /* ghosts: periodic images within rl of the box */
  for (img[0] = -nimg; img[0] <= nimg; ++img[0])
    for (img[1] = -nimg; img[1] <= nimg; ++img[1])
      for (img[2] = -nimg; img[2] <= nimg; ++img[2]) {
        if (!img[0] && !img[1] && !img[2]) continue;
        for (i = 0; i < s.n_own; ++i) {
          double y[3];
          int k, in = 1;
          for (k = 0; k < 3; ++k) {
            y[k] = s.x[3 * i + k] + img[k] * L;
            if (y[k] < -rl || y[k] > L + rl) in = 0;
          }
          if (!in) continue;
          memcpy(s.x + 3 * s.n, y, sizeof y);
          s.owner[s.n++] = i;
        }
      }
  s.species = calloc(s.n, sizeof(int));
  s.contributing = calloc(s.n, sizeof(int));
  for (i = 0; i < s.n_own; ++i) s.contributing[i] = 1;
  /* lists of owned atoms within rl (brute force over all atoms): full, or
     half with newton off (owned j > i, and every ghost) */
  s.start = malloc(s.n * sizeof(int));
  s.count = calloc(s.n, sizeof(int));
  s.list = malloc((size_t) s.n_own * 200 * sizeof(int));
  for (i = 0; i < s.n_own; ++i) {
    s.start[i] = nl;
    for (j = 0; j < s.n; ++j) {
      double d0 = s.x[3 * j] - s.x[3 * i], d1 = s.x[3 * j + 1] - s.x[3 * i + 1];
      double d2 = s.x[3 * j + 2] - s.x[3 * i + 2];
      if (half && j < s.n_own && j <= i) continue;
      if (j != i && d0 * d0 + d1 * d1 + d2 * d2 < rl2 && s.count[i] < 200) {
        s.list[nl++] = j;
        ++s.count[i];
      }
    }
  }
  f = malloc(3 * (size_t) s.n * sizeof(double));
  ws = compot_workspace_create();
  if (grade) {
    double *grade = (double *) calloc((size_t) s.n, sizeof(double));
    compot_workspace_set_grade(ws, grade);   /* freed at exit */
  }
  {
    compot_input in = {0};
    compot_exchange ex = {0};
    compot_output out = {0};
    in.n_particles = s.n;
    in.species = s.species;
    in.coords = s.x;
    in.contributing = s.contributing;
    in.get_neighbors = neighbors;
    in.neighbor_context = &s;
    in.half_list = half;
    ex.forward = forward;
    ex.reverse = reverse;
    ex.context = &s;
    out.energy = &energy;
    out.forces = f;
    out.virial = vir;
    if (compot_compute_exchange(model, ws, &in, &ex, &out, msg, sizeof msg)) {
      fprintf(stderr, "%s\n", msg);
      return 1;
    }
    if (forces_only) out.energy = NULL, out.virial = NULL;
    t0 = cpu_seconds();
    for (r = 0; r < reps; ++r)
      compot_compute_exchange(model, ws, &in, &ex, &out, msg, sizeof msg);
    t1 = cpu_seconds();
  }
  printf("%s: %d atoms (+%d ghosts), %.1f listed neighbours/atom (%s lists%s): %.3f us/atom-call, E/N = %.6f eV\n",
         compot_expression(model), s.n_own, s.n - s.n_own, (double) nl / s.n_own,
         half ? "half" : "full", forces_only ? ", forces only" : "",
         1e6 * (t1 - t0) / reps / s.n_own, energy / s.n_own);
  compot_workspace_destroy(ws);
  compot_destroy(model);
  free(f);
  free(s.list);
  free(s.count);
  free(s.start);
  free(s.contributing);
  free(s.species);
  free(s.x);
  free(s.owner);
  return 0;
}
