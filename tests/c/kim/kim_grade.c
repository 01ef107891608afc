/*
 * kim_grade.c -- a minimal KIM simulator that reads the extrapolation grade
 * of a compot model through the driver's Extension "compot_grade"
 * (kim_driver/compot_kim_grade.h).  Built and run by tests/test_kim_grade.py.
 *
 *   kim_grade MODEL_NAME CONFIG
 *
 * CONFIG: a line "n", then n lines "symbol contributing x y z" (the
 * simulator's particles: contributing ones and their padding images; a full
 * neighbour list of cutoff r_c is built here by brute force).  The program
 *   1. asks KIM_SupportedExtensions and checks compot_grade is listed;
 *   2. checks compot_grade is refused before any Compute;
 *   3. computes the energy (KIM_Model_Compute) and reads the grade;
 *   4. computes energy and forces and reads the grade again;
 *   5. checks that a too small array, a NULL array, NULL compute arguments
 *      and an unknown ID are refused;
 * and prints "energy E", "version V gradeOn G", "checks ok" or the failed
 * checks, then one line "i grade_3 grade_4" per particle (%.17g).  Exit
 * status 0 if every step worked.
 */
#include "KIM_SimulatorHeaders.h"
#include "KIM_SupportedExtensions.h"
#include "compot_kim_grade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct neighbors
{
  int n;
  int * start; /* [n+1] */
  int * list;
};

static int get_neighbors(void * const dataObject,
                         int const numberOfNeighborLists,
                         double const * const cutoffs,
                         int const neighborListIndex,
                         int const particleNumber,
                         int * const numberOfNeighbors,
                         int const ** const neighborsOfParticle)
{
  struct neighbors const * nl = (struct neighbors const *) dataObject;
  (void) numberOfNeighborLists;
  (void) cutoffs;
  if (neighborListIndex != 0 || particleNumber < 0 || particleNumber >= nl->n)
    return 1;
  *numberOfNeighbors
      = nl->start[particleNumber + 1] - nl->start[particleNumber];
  *neighborsOfParticle = nl->list + nl->start[particleNumber];
  return 0;
}

static int build_neighbors(struct neighbors * nl, int n, double const * x,
                           double cutoff)
{
  int i, j, count = 0, cap = 64 * n + 16;
  nl->n = n;
  nl->start = (int *) malloc((size_t) (n + 1) * sizeof(int));
  nl->list = (int *) malloc((size_t) cap * sizeof(int));
  if (nl->start == NULL || nl->list == NULL) return 1;
  for (i = 0; i < n; ++i)
  {
    nl->start[i] = count;
    for (j = 0; j < n; ++j)
    {
      double dx = x[3 * j] - x[3 * i], dy = x[3 * j + 1] - x[3 * i + 1],
             dz = x[3 * j + 2] - x[3 * i + 2];
      if (j == i || dx * dx + dy * dy + dz * dz >= cutoff * cutoff) continue;
      if (count == cap)
      {
        int * grown;
        cap *= 2;
        grown = (int *) realloc(nl->list, (size_t) cap * sizeof(int));
        if (grown == NULL) return 1;
        nl->list = grown;
      }
      nl->list[count++] = j;
    }
  }
  nl->start[n] = count;
  return 0;
}

#define FAIL(what)                          \
  do                                        \
  {                                         \
    fprintf(stderr, "kim_grade: %s\n", what); \
    return 1;                               \
  } while (0)

int main(int argc, char ** argv)
{
  KIM_Model * model = NULL;
  KIM_ComputeArguments * ca = NULL;
  KIM_SupportedExtensions se;
  struct compot_grade_extension g;
  struct neighbors nl;
  int accepted = 0, n = 0, i, k, listed = 0, nLists = 0, failed = 0;
  double const * cutoffs = NULL;
  int const * hints = NULL;
  int * species, *contributing;
  double * x, *now, *attached, *forces = NULL, energy = 0.0;
  FILE * fp;

  if (argc != 3) FAIL("usage: kim_grade MODEL_NAME CONFIG");
  fp = fopen(argv[2], "r");
  if (fp == NULL || fscanf(fp, "%d", &n) != 1 || n <= 0)
    FAIL("cannot read the particle count");
  if (KIM_Model_Create(KIM_NUMBERING_zeroBased, KIM_LENGTH_UNIT_A,
                       KIM_ENERGY_UNIT_eV, KIM_CHARGE_UNIT_e,
                       KIM_TEMPERATURE_UNIT_K, KIM_TIME_UNIT_ps, argv[1],
                       &accepted, &model)
      || !accepted)
    FAIL("KIM_Model_Create failed (see kim.log)");
  species = (int *) malloc((size_t) n * sizeof(int));
  contributing = (int *) malloc((size_t) n * sizeof(int));
  x = (double *) malloc(3 * (size_t) n * sizeof(double));
  now = (double *) malloc((size_t) n * sizeof(double));
  attached = (double *) malloc((size_t) n * sizeof(double));
  if (!species || !contributing || !x || !now || !attached)
    FAIL("out of memory");
  for (i = 0; i < n; ++i)
  {
    char sym[16];
    int supported = 0;
    if (fscanf(fp, "%15s %d %lf %lf %lf", sym, &contributing[i], &x[3 * i],
               &x[3 * i + 1], &x[3 * i + 2])
        != 5)
      FAIL("cannot read a particle line");
    if (KIM_Model_GetSpeciesSupportAndCode(
            model, KIM_SpeciesName_FromString(sym), &supported, &species[i])
        || !supported)
      FAIL("species not supported by the model");
  }
  fclose(fp);

  KIM_Model_GetNeighborListPointers(model, &nLists, &cutoffs, &hints);
  if (nLists != 1 || build_neighbors(&nl, n, x, cutoffs[0]))
    FAIL("cannot build the neighbour list");
  if (KIM_Model_ComputeArgumentsCreate(model, &ca)
      || KIM_ComputeArguments_SetArgumentPointerInteger(
          ca, KIM_COMPUTE_ARGUMENT_NAME_numberOfParticles, &n)
      || KIM_ComputeArguments_SetArgumentPointerInteger(
          ca, KIM_COMPUTE_ARGUMENT_NAME_particleSpeciesCodes, species)
      || KIM_ComputeArguments_SetArgumentPointerInteger(
          ca, KIM_COMPUTE_ARGUMENT_NAME_particleContributing, contributing)
      || KIM_ComputeArguments_SetArgumentPointerDouble(
          ca, KIM_COMPUTE_ARGUMENT_NAME_coordinates, x)
      || KIM_ComputeArguments_SetArgumentPointerDouble(
          ca, KIM_COMPUTE_ARGUMENT_NAME_partialEnergy, &energy)
      || KIM_ComputeArguments_SetCallbackPointer(
          ca, KIM_COMPUTE_CALLBACK_NAME_GetNeighborList, KIM_LANGUAGE_NAME_c,
          (KIM_Function *) get_neighbors, &nl))
    FAIL("cannot set up the compute arguments");

  /* 1. the supported extensions */
  memset(&se, 0, sizeof se);
  if (KIM_Model_Extension(model, KIM_SUPPORTED_EXTENSIONS_ID, &se))
    FAIL("KIM_SupportedExtensions query failed");
  for (k = 0; k < se.numberOfSupportedExtensions; ++k)
    if (strcmp(se.supportedExtensionID[k], COMPOT_GRADE_EXTENSION_ID) == 0)
      listed = 1;
  if (!listed) FAIL("compot_grade is not among the supported extensions");

  /* 2. nothing to hand out before a Compute */
  memset(&g, 0, sizeof g);
  g.computeArguments = ca;
  g.grade = now;
  g.capacity = n;
  if (KIM_Model_Extension(model, COMPOT_GRADE_EXTENSION_ID, &g) == 0
      || g.numberOfParticles != -1)
    failed |= 1;

  /* 3. energy only */
  for (i = 0; i < n; ++i) now[i] = attached[i] = -1.0;
  if (KIM_Model_Compute(model, ca)) FAIL("KIM_Model_Compute failed");
  if (KIM_Model_Extension(model, COMPOT_GRADE_EXTENSION_ID, &g))
    FAIL("compot_grade failed after the energy compute");
  if (g.numberOfParticles != n) failed |= 2;

  /* 4. energy and forces */
  forces = (double *) malloc(3 * (size_t) n * sizeof(double));
  if (forces == NULL
      || KIM_ComputeArguments_SetArgumentPointerDouble(
          ca, KIM_COMPUTE_ARGUMENT_NAME_partialForces, forces)
      || KIM_Model_Compute(model, ca))
    FAIL("KIM_Model_Compute with forces failed");
  g.grade = attached;
  if (KIM_Model_Extension(model, COMPOT_GRADE_EXTENSION_ID, &g))
    FAIL("compot_grade failed after the forces compute");

  /* 5. what must be refused */
  g.capacity = n - 1;
  if (KIM_Model_Extension(model, COMPOT_GRADE_EXTENSION_ID, &g) == 0)
    failed |= 4;
  g.capacity = n;
  g.grade = NULL;
  if (KIM_Model_Extension(model, COMPOT_GRADE_EXTENSION_ID, &g) == 0)
    failed |= 8;
  g.grade = attached;
  g.computeArguments = NULL;
  if (KIM_Model_Extension(model, COMPOT_GRADE_EXTENSION_ID, &g) == 0)
    failed |= 16;
  if (KIM_Model_Extension(model, "compot_no_such_thing", &g) == 0)
    failed |= 32;

  printf("energy %.17g\n", energy);
  printf("version %d gradeOn %d\n", g.formatVersion, g.gradeOn);
  if (failed)
    printf("checks failed %d\n", failed);
  else
    printf("checks ok\n");
  for (i = 0; i < n; ++i) printf("%d %.17g %.17g\n", i, now[i], attached[i]);

  KIM_Model_ComputeArgumentsDestroy(model, &ca);
  KIM_Model_Destroy(&model);
  free(species);
  free(contributing);
  free(x);
  free(now);
  free(attached);
  free(forces);
  free(nl.start);
  free(nl.list);
  return failed ? 1 : 0;
}
