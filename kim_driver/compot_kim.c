/*
 * compot_kim.c -- KIM API model driver for compot composable pair-cluster
 * potentials (Wang, Transtrum, Lordi, Bulatov, Samanta, arXiv:2504.19372).
 *
 * A thin adapter around the host-agnostic core (compot_core.h): it reads the
 * single parameter file (format v1 or v2, docs/parameter-file.md), registers
 * the file's species, publishes every parameter block of the core's table as
 * one KIM parameter (with the table's description: in format v2 also the
 * inner window w_r_a, w_r_b, the saturation width w_tau and the q_max of A
 * terms), and forwards Compute, Refresh and WriteParameterizedModel to the
 * core.  Units are fixed: eV and Angstrom.  A compute whose energy, forces
 * or virial would not be finite fails with the core's message (the model
 * is outside its valid range or its parameters are invalid); it never
 * returns NaN or infinity.
 *
 * State by lifetime
 *   read from the file ........ struct model_buffer::model (tree, parameters)
 *   recomputed in Refresh ..... derived values in the model, influence
 *                               distance, neighbour list cutoff and hint
 *   per compute arguments ..... compot_workspace (scratch arrays)
 *
 * Neighbour lists: one list with cutoff r_c.  A model with an N[...] term
 * has a 2-hop site energy: influence distance 2 r_c and neighbour lists of
 * non-contributing particles requested (hint 0); otherwise r_c and hint 1.
 *
 * Extension "compot_grade" (compot_kim_grade.h): the per-particle
 * extrapolation grade, which the KIM compute arguments have no slot for.
 * Every Compute keeps gamma_i of its particles with the compute arguments
 * (the Extension cannot evaluate by itself: KIM answers neighbour-list
 * requests only inside Compute); the Extension copies them out.  The
 * standard "KIM_SupportedExtensions" query lists it.
 */
#include "KIM_LogMacros.h"
#include "KIM_ModelDriverHeaders.h"
#include "KIM_SupportedExtensions.h"
#include "compot_core.h"
#include "compot_kim_grade.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_SIZE 1024

int model_driver_create(KIM_ModelDriverCreate * const modelDriverCreate,
                        KIM_LengthUnit const requestedLengthUnit,
                        KIM_EnergyUnit const requestedEnergyUnit,
                        KIM_ChargeUnit const requestedChargeUnit,
                        KIM_TemperatureUnit const requestedTemperatureUnit,
                        KIM_TimeUnit const requestedTimeUnit);

static int compute_arguments_create(
    KIM_ModelCompute const * const modelCompute,
    KIM_ModelComputeArgumentsCreate * const modelComputeArgumentsCreate);
static int
compute_routine(KIM_ModelCompute const * const modelCompute,
                KIM_ModelComputeArguments const * const modelComputeArguments);
static int refresh_routine(KIM_ModelRefresh * const modelRefresh);
static int write_parameterized_model(
    KIM_ModelWriteParameterizedModel const * const modelWriteParameterizedModel);
static int compute_arguments_destroy(
    KIM_ModelCompute const * const modelCompute,
    KIM_ModelComputeArgumentsDestroy * const modelComputeArgumentsDestroy);
static int destroy_routine(KIM_ModelDestroy * const modelDestroy);
static int extension_routine(KIM_ModelExtension * const modelExtension,
                             void * const extensionStructure);

struct model_buffer
{
  /* read from the parameter file; parameter values are published to KIM */
  compot_model * model;
  /* recomputed in refresh */
  double influenceDistance;
  double cutoff; /* neighbour list cutoff r_c */
  int modelWillNotRequestNeighborsOfNoncontributingParticles;
};

/* per compute arguments */
struct arguments_buffer
{
  compot_workspace * ws;
  double * grade;    /* gamma_i of the last Compute (compot_grade) */
  int gradeCapacity; /* doubles it holds */
  int gradeN;        /* particles of the last Compute, -1: none succeeded */
};

/* Neighbour list accessor of the core, backed by KIM list 0. */
static int kim_neighbors(void * context,
                         int i,
                         int * n_neighbors,
                         int const ** neighbors)
{
  return KIM_ModelComputeArguments_GetNeighborList(
      (KIM_ModelComputeArguments const *) context, 0, i, n_neighbors,
      neighbors);
}

static void set_derived(struct model_buffer * buffer)
{
  buffer->influenceDistance = compot_influence_distance(buffer->model);
  buffer->cutoff = compot_cutoff(buffer->model);
  buffer->modelWillNotRequestNeighborsOfNoncontributingParticles
      = compot_needs_ghost_neighbors(buffer->model) ? 0 : 1;
}

/* ---- create ------------------------------------------------------------- */

#undef KIM_LOGGER_FUNCTION_NAME
#define KIM_LOGGER_FUNCTION_NAME KIM_ModelDriverCreate_LogEntry
#undef KIM_LOGGER_OBJECT_NAME
#define KIM_LOGGER_OBJECT_NAME modelDriverCreate

int model_driver_create(KIM_ModelDriverCreate * const modelDriverCreate,
                        KIM_LengthUnit const requestedLengthUnit,
                        KIM_EnergyUnit const requestedEnergyUnit,
                        KIM_ChargeUnit const requestedChargeUnit,
                        KIM_TemperatureUnit const requestedTemperatureUnit,
                        KIM_TimeUnit const requestedTimeUnit)
{
  /* the prototypes are checked against the KIM function types here */
  KIM_ModelDriverCreateFunction * create = model_driver_create;
  KIM_ModelComputeArgumentsCreateFunction * caCreate
      = compute_arguments_create;
  KIM_ModelComputeFunction * compute = compute_routine;
  KIM_ModelRefreshFunction * refresh = refresh_routine;
  KIM_ModelWriteParameterizedModelFunction * writeModel
      = write_parameterized_model;
  KIM_ModelComputeArgumentsDestroyFunction * caDestroy
      = compute_arguments_destroy;
  KIM_ModelDestroyFunction * destroy = destroy_routine;
  KIM_ModelExtensionFunction * extension = extension_routine;

  char msg[MSG_SIZE];
  int numberOfParameterFiles = 0;
  char const * dirName = NULL;
  char const * baseName = NULL;
  char * path = NULL;
  size_t pathSize;
  struct model_buffer * buffer = NULL;
  compot_model * model = NULL;
  int s, i, ier;

  (void) create;
  (void) requestedLengthUnit;
  (void) requestedEnergyUnit;
  (void) requestedChargeUnit;
  (void) requestedTemperatureUnit;
  (void) requestedTimeUnit;

  if (KIM_ModelDriverCreate_SetUnits(modelDriverCreate,
                                     KIM_LENGTH_UNIT_A,
                                     KIM_ENERGY_UNIT_eV,
                                     KIM_CHARGE_UNIT_unused,
                                     KIM_TEMPERATURE_UNIT_unused,
                                     KIM_TIME_UNIT_unused))
  {
    LOG_ERROR("compot: unable to set units to eV and Angstrom");
    return 1;
  }
  if (KIM_ModelDriverCreate_SetModelNumbering(modelDriverCreate,
                                              KIM_NUMBERING_zeroBased))
  {
    LOG_ERROR("compot: unable to set zero-based numbering");
    return 1;
  }

  /* the parameter file */
  KIM_ModelDriverCreate_GetNumberOfParameterFiles(modelDriverCreate,
                                                  &numberOfParameterFiles);
  if (numberOfParameterFiles != 1)
  {
    snprintf(msg, sizeof msg,
             "compot: expected 1 parameter file (format v1 or v2), found %d",
             numberOfParameterFiles);
    LOG_ERROR(msg);
    return 1;
  }
  KIM_ModelDriverCreate_GetParameterFileDirectoryName(modelDriverCreate,
                                                      &dirName);
  if (KIM_ModelDriverCreate_GetParameterFileBasename(
          modelDriverCreate, 0, &baseName))
  {
    LOG_ERROR("compot: unable to get the parameter file name");
    return 1;
  }
  pathSize = strlen(dirName) + strlen(baseName) + 2;
  path = (char *) malloc(pathSize);
  if (path == NULL)
  {
    LOG_ERROR("compot: out of memory");
    return 1;
  }
  snprintf(path, pathSize, "%s/%s", dirName, baseName);
  ier = compot_create(&model, path, msg, sizeof msg);
  free(path);
  if (ier)
  {
    LOG_ERROR(msg);
    return 1;
  }

  /* species: code s is the index of the species in the file */
  for (s = 0; s < compot_n_species(model); ++s)
  {
    KIM_SpeciesName name
        = KIM_SpeciesName_FromString(compot_species_symbol(model, s));
    if (!KIM_SpeciesName_Known(name)
        || KIM_ModelDriverCreate_SetSpeciesCode(modelDriverCreate, name, s))
    {
      snprintf(msg, sizeof msg,
               "compot: unable to register species '%s' (index %d)",
               compot_species_symbol(model, s), s);
      LOG_ERROR(msg);
      compot_destroy(model);
      return 1;
    }
  }

  buffer = (struct model_buffer *) malloc(sizeof *buffer);
  if (buffer == NULL)
  {
    LOG_ERROR("compot: out of memory");
    compot_destroy(model);
    return 1;
  }
  buffer->model = model;
  set_derived(buffer);

  /* one KIM parameter per block, in file order */
  for (i = 0; i < compot_n_params(model); ++i)
  {
    compot_param const * p = compot_param_at(model, i);
    if (KIM_ModelDriverCreate_SetParameterPointerDouble(
            modelDriverCreate, p->extent, p->values, p->name,
            p->description))
    {
      snprintf(msg, sizeof msg, "compot: unable to publish parameter '%s'",
               p->name);
      LOG_ERROR(msg);
      compot_destroy(model);
      free(buffer);
      return 1;
    }
  }

  KIM_ModelDriverCreate_SetInfluenceDistancePointer(
      modelDriverCreate, &buffer->influenceDistance);
  KIM_ModelDriverCreate_SetNeighborListPointers(
      modelDriverCreate, 1, &buffer->cutoff,
      &buffer->modelWillNotRequestNeighborsOfNoncontributingParticles);

  ier = KIM_ModelDriverCreate_SetRoutinePointer(
            modelDriverCreate, KIM_MODEL_ROUTINE_NAME_ComputeArgumentsCreate,
            KIM_LANGUAGE_NAME_c, 1, (KIM_Function *) caCreate)
        || KIM_ModelDriverCreate_SetRoutinePointer(
            modelDriverCreate, KIM_MODEL_ROUTINE_NAME_Compute,
            KIM_LANGUAGE_NAME_c, 1, (KIM_Function *) compute)
        || KIM_ModelDriverCreate_SetRoutinePointer(
            modelDriverCreate, KIM_MODEL_ROUTINE_NAME_Refresh,
            KIM_LANGUAGE_NAME_c, 1, (KIM_Function *) refresh)
        || KIM_ModelDriverCreate_SetRoutinePointer(
            modelDriverCreate, KIM_MODEL_ROUTINE_NAME_WriteParameterizedModel,
            KIM_LANGUAGE_NAME_c, 0, (KIM_Function *) writeModel)
        || KIM_ModelDriverCreate_SetRoutinePointer(
            modelDriverCreate, KIM_MODEL_ROUTINE_NAME_ComputeArgumentsDestroy,
            KIM_LANGUAGE_NAME_c, 1, (KIM_Function *) caDestroy)
        || KIM_ModelDriverCreate_SetRoutinePointer(
            modelDriverCreate, KIM_MODEL_ROUTINE_NAME_Destroy,
            KIM_LANGUAGE_NAME_c, 1, (KIM_Function *) destroy)
        || KIM_ModelDriverCreate_SetRoutinePointer(
            modelDriverCreate, KIM_MODEL_ROUTINE_NAME_Extension,
            KIM_LANGUAGE_NAME_c, 0, (KIM_Function *) extension);
  if (ier)
  {
    LOG_ERROR("compot: unable to register the model routines");
    compot_destroy(model);
    free(buffer);
    return 1;
  }
  KIM_ModelDriverCreate_SetModelBufferPointer(modelDriverCreate, buffer);
  return 0;
}

/* ---- compute arguments -------------------------------------------------- */

#undef KIM_LOGGER_FUNCTION_NAME
#define KIM_LOGGER_FUNCTION_NAME KIM_ModelComputeArgumentsCreate_LogEntry
#undef KIM_LOGGER_OBJECT_NAME
#define KIM_LOGGER_OBJECT_NAME modelComputeArgumentsCreate

static int compute_arguments_create(
    KIM_ModelCompute const * const modelCompute,
    KIM_ModelComputeArgumentsCreate * const modelComputeArgumentsCreate)
{
  struct arguments_buffer * ab;
  int ier;
  (void) modelCompute;

  ier = KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
            modelComputeArgumentsCreate,
            KIM_COMPUTE_ARGUMENT_NAME_partialEnergy,
            KIM_SUPPORT_STATUS_optional)
        || KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
            modelComputeArgumentsCreate,
            KIM_COMPUTE_ARGUMENT_NAME_partialParticleEnergy,
            KIM_SUPPORT_STATUS_optional)
        || KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
            modelComputeArgumentsCreate,
            KIM_COMPUTE_ARGUMENT_NAME_partialForces,
            KIM_SUPPORT_STATUS_optional)
        || KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
            modelComputeArgumentsCreate,
            KIM_COMPUTE_ARGUMENT_NAME_partialVirial,
            KIM_SUPPORT_STATUS_optional)
        || KIM_ModelComputeArgumentsCreate_SetArgumentSupportStatus(
            modelComputeArgumentsCreate,
            KIM_COMPUTE_ARGUMENT_NAME_partialParticleVirial,
            KIM_SUPPORT_STATUS_optional);
  if (ier)
  {
    LOG_ERROR("compot: unable to set compute argument support status");
    return 1;
  }
  ab = (struct arguments_buffer *) calloc(1, sizeof *ab);
  if (ab != NULL) ab->ws = compot_workspace_create();
  if (ab == NULL || ab->ws == NULL)
  {
    free(ab);
    LOG_ERROR("compot: out of memory for the compute workspace");
    return 1;
  }
  ab->gradeN = -1;
  KIM_ModelComputeArgumentsCreate_SetModelBufferPointer(
      modelComputeArgumentsCreate, ab);
  return 0;
}

static int compute_arguments_destroy(
    KIM_ModelCompute const * const modelCompute,
    KIM_ModelComputeArgumentsDestroy * const modelComputeArgumentsDestroy)
{
  void * ab = NULL;
  (void) modelCompute;
  KIM_ModelComputeArgumentsDestroy_GetModelBufferPointer(
      modelComputeArgumentsDestroy, &ab);
  if (ab != NULL)
  {
    compot_workspace_destroy(((struct arguments_buffer *) ab)->ws);
    free(((struct arguments_buffer *) ab)->grade);
  }
  free(ab);
  return 0;
}

/* ---- compute ------------------------------------------------------------ */

#undef KIM_LOGGER_FUNCTION_NAME
#define KIM_LOGGER_FUNCTION_NAME KIM_ModelCompute_LogEntry
#undef KIM_LOGGER_OBJECT_NAME
#define KIM_LOGGER_OBJECT_NAME modelCompute

/* Besides the requested outputs, every compute keeps gamma_i of its
   particles in the compute arguments' buffer for the compot_grade
   extension: the core computes the grade for its switch anyway, keeping it
   costs a store per particle (and the grade of atoms switched off by a
   close pair). */
static int
compute_routine(KIM_ModelCompute const * const modelCompute,
                KIM_ModelComputeArguments const * const modelComputeArguments)
{
  struct model_buffer * buffer = NULL;
  struct arguments_buffer * ab = NULL;
  int * nParticles = NULL;
  int * speciesCodes = NULL;
  int * contributing = NULL;
  double * coords = NULL;
  compot_input in;
  compot_output out;
  char msg[MSG_SIZE];
  int ier;

  KIM_ModelCompute_GetModelBufferPointer(modelCompute, (void **) &buffer);
  KIM_ModelComputeArguments_GetModelBufferPointer(modelComputeArguments,
                                                  (void **) &ab);
  memset(&in, 0, sizeof in);
  memset(&out, 0, sizeof out);
  ier = KIM_ModelComputeArguments_GetArgumentPointerInteger(
            modelComputeArguments,
            KIM_COMPUTE_ARGUMENT_NAME_numberOfParticles,
            &nParticles)
        || KIM_ModelComputeArguments_GetArgumentPointerInteger(
            modelComputeArguments,
            KIM_COMPUTE_ARGUMENT_NAME_particleSpeciesCodes,
            &speciesCodes)
        || KIM_ModelComputeArguments_GetArgumentPointerInteger(
            modelComputeArguments,
            KIM_COMPUTE_ARGUMENT_NAME_particleContributing,
            &contributing)
        || KIM_ModelComputeArguments_GetArgumentPointerDouble(
            modelComputeArguments,
            KIM_COMPUTE_ARGUMENT_NAME_coordinates,
            &coords)
        || KIM_ModelComputeArguments_GetArgumentPointerDouble(
            modelComputeArguments,
            KIM_COMPUTE_ARGUMENT_NAME_partialEnergy,
            &out.energy)
        || KIM_ModelComputeArguments_GetArgumentPointerDouble(
            modelComputeArguments,
            KIM_COMPUTE_ARGUMENT_NAME_partialParticleEnergy,
            &out.particle_energy)
        || KIM_ModelComputeArguments_GetArgumentPointerDouble(
            modelComputeArguments,
            KIM_COMPUTE_ARGUMENT_NAME_partialForces,
            &out.forces)
        || KIM_ModelComputeArguments_GetArgumentPointerDouble(
            modelComputeArguments,
            KIM_COMPUTE_ARGUMENT_NAME_partialVirial,
            &out.virial)
        || KIM_ModelComputeArguments_GetArgumentPointerDouble(
            modelComputeArguments,
            KIM_COMPUTE_ARGUMENT_NAME_partialParticleVirial,
            &out.particle_virial);
  if (ier)
  {
    LOG_ERROR("compot: unable to get compute argument pointers");
    return 1;
  }

  ab->gradeN = -1;
  if (*nParticles > ab->gradeCapacity)
  {
    double * grown
        = (double *) realloc(ab->grade, (size_t) *nParticles * sizeof(double));
    if (grown == NULL)
    {
      LOG_ERROR("compot: out of memory for the grade");
      return 1;
    }
    ab->grade = grown;
    ab->gradeCapacity = *nParticles;
  }

  in.n_particles = *nParticles;
  in.species = speciesCodes;
  in.coords = coords;
  in.contributing = contributing;
  in.get_neighbors = kim_neighbors;
  in.neighbor_context = (void *) modelComputeArguments;
  compot_workspace_set_grade(ab->ws, ab->grade);
  ier = compot_compute(buffer->model, ab->ws, &in, &out, msg, sizeof msg);
  if (ier)
  {
    char line[MSG_SIZE + 16];
    snprintf(line, sizeof line, "compot: %s", msg);
    LOG_ERROR(line);
    return 1;
  }
  ab->gradeN = *nParticles;
  return 0;
}

/* ---- extension: the grade ----------------------------------------------- */

#undef KIM_LOGGER_FUNCTION_NAME
#define KIM_LOGGER_FUNCTION_NAME KIM_ModelExtension_LogEntry
#undef KIM_LOGGER_OBJECT_NAME
#define KIM_LOGGER_OBJECT_NAME modelExtension

/* 1 if the model has a fitted grade (block g_U not all zero) */
static int grade_fitted(compot_model const * model)
{
  int i, k;
  for (i = 0; i < compot_n_params(model); ++i)
  {
    compot_param const * p = compot_param_at(model, i);
    if (strcmp(p->name, "g_U") != 0) continue;
    for (k = 0; k < p->extent; ++k)
      if (p->values[k] != 0.0) return 1;
  }
  return 0;
}

static int extension_routine(KIM_ModelExtension * const modelExtension,
                             void * const extensionStructure)
{
  struct model_buffer * buffer = NULL;
  char const * id = NULL;
  char msg[MSG_SIZE];

  KIM_ModelExtension_GetExtensionID(modelExtension, &id);
  KIM_ModelExtension_GetModelBufferPointer(modelExtension, (void **) &buffer);
  if (extensionStructure == NULL)
  {
    LOG_ERROR("compot: extension called with a NULL structure");
    return 1;
  }
  if (strcmp(id, KIM_SUPPORTED_EXTENSIONS_ID) == 0)
  {
    KIM_SupportedExtensions * se
        = (KIM_SupportedExtensions *) extensionStructure;
    memset(se, 0, sizeof *se);
    se->numberOfSupportedExtensions = 2;
    strcpy(se->supportedExtensionID[0], KIM_SUPPORTED_EXTENSIONS_ID);
    strcpy(se->supportedExtensionID[1], COMPOT_GRADE_EXTENSION_ID);
    return 0;
  }
  if (strcmp(id, COMPOT_GRADE_EXTENSION_ID) == 0)
  {
    struct compot_grade_extension * g
        = (struct compot_grade_extension *) extensionStructure;
    KIM_ModelComputeArguments * mca = NULL;
    struct arguments_buffer * ab = NULL;
    g->numberOfParticles = -1;
    g->formatVersion = compot_format_version(buffer->model);
    g->gradeOn = grade_fitted(buffer->model);
    if (g->computeArguments != NULL)
      mca = KIM_ModelExtension_ToModelComputeArguments(modelExtension,
                                                       g->computeArguments);
    if (mca != NULL)
      KIM_ModelComputeArguments_GetModelBufferPointer(mca, (void **) &ab);
    if (ab == NULL)
    {
      LOG_ERROR("compot: compot_grade extension: computeArguments is not a "
                "compute arguments object of this model");
      return 1;
    }
    if (ab->gradeN < 0)
    {
      LOG_ERROR("compot: compot_grade extension: no successful Compute with "
                "these compute arguments yet");
      return 1;
    }
    g->numberOfParticles = ab->gradeN;
    if (g->grade == NULL || g->capacity < ab->gradeN)
    {
      snprintf(msg, sizeof msg,
               "compot: compot_grade extension: grade holds %d values "
               "(NULL: none); expected numberOfParticles = %d of the last "
               "Compute",
               g->grade == NULL ? 0 : g->capacity, ab->gradeN);
      LOG_ERROR(msg);
      return 1;
    }
    if (ab->gradeN > 0)
      memcpy(g->grade, ab->grade, (size_t) ab->gradeN * sizeof(double));
    return 0;
  }
  snprintf(msg, sizeof msg,
           "compot: unknown extension '%s'; expected '%s' or '%s'", id,
           COMPOT_GRADE_EXTENSION_ID, KIM_SUPPORTED_EXTENSIONS_ID);
  LOG_ERROR(msg);
  return 1;
}

/* ---- refresh ------------------------------------------------------------ */

#undef KIM_LOGGER_FUNCTION_NAME
#define KIM_LOGGER_FUNCTION_NAME KIM_ModelRefresh_LogEntry
#undef KIM_LOGGER_OBJECT_NAME
#define KIM_LOGGER_OBJECT_NAME modelRefresh

static int refresh_routine(KIM_ModelRefresh * const modelRefresh)
{
  struct model_buffer * buffer = NULL;
  char msg[MSG_SIZE];

  KIM_ModelRefresh_GetModelBufferPointer(modelRefresh, (void **) &buffer);
  if (compot_refresh(buffer->model, msg, sizeof msg))
  {
    LOG_ERROR(msg);
    return 1;
  }
  set_derived(buffer);
  KIM_ModelRefresh_SetInfluenceDistancePointer(modelRefresh,
                                               &buffer->influenceDistance);
  KIM_ModelRefresh_SetNeighborListPointers(
      modelRefresh, 1, &buffer->cutoff,
      &buffer->modelWillNotRequestNeighborsOfNoncontributingParticles);
  return 0;
}

/* ---- write parameterized model ------------------------------------------ */

#undef KIM_LOGGER_FUNCTION_NAME
#define KIM_LOGGER_FUNCTION_NAME KIM_ModelWriteParameterizedModel_LogEntry
#undef KIM_LOGGER_OBJECT_NAME
#define KIM_LOGGER_OBJECT_NAME modelWriteParameterizedModel

static int write_parameterized_model(
    KIM_ModelWriteParameterizedModel const * const modelWriteParameterizedModel)
{
  struct model_buffer * buffer = NULL;
  char const * dir = NULL;
  char const * name = NULL;
  char * fileName = NULL;
  char * path = NULL;
  char msg[MSG_SIZE];
  size_t n;
  int ier;

  KIM_ModelWriteParameterizedModel_GetModelBufferPointer(
      modelWriteParameterizedModel, (void **) &buffer);
  KIM_ModelWriteParameterizedModel_GetPath(modelWriteParameterizedModel,
                                           &dir);
  KIM_ModelWriteParameterizedModel_GetModelName(modelWriteParameterizedModel,
                                                &name);
  n = strlen(dir) + strlen(name) + 16;
  fileName = (char *) malloc(n);
  path = (char *) malloc(n);
  if (fileName == NULL || path == NULL)
  {
    free(fileName);
    free(path);
    LOG_ERROR("compot: out of memory");
    return 1;
  }
  snprintf(fileName, n, "%s.params", name);
  snprintf(path, n, "%s/%s.params", dir, name);
  ier = compot_write(buffer->model, path, msg, sizeof msg);
  if (ier)
    LOG_ERROR(msg);
  else
    KIM_ModelWriteParameterizedModel_SetParameterFileName(
        modelWriteParameterizedModel, fileName);
  free(fileName);
  free(path);
  return ier ? 1 : 0;
}

/* ---- destroy ------------------------------------------------------------ */

static int destroy_routine(KIM_ModelDestroy * const modelDestroy)
{
  struct model_buffer * buffer = NULL;
  KIM_ModelDestroy_GetModelBufferPointer(modelDestroy, (void **) &buffer);
  if (buffer != NULL)
  {
    compot_destroy(buffer->model);
    free(buffer);
  }
  return 0;
}
