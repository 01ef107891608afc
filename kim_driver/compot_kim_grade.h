/*
 * compot_kim_grade.h -- the extrapolation grade through the KIM API: the
 * compot model driver's Extension "compot_grade", for simulators (the
 * driver includes it too).
 *
 * The KIM API 2.x compute arguments are a fixed list (energies, forces,
 * virials) with no model-defined per-particle output.  The grade
 * gamma_i = |U_Z (f_i - mu_Z)|^2 of format v2 models (MODEL_SPEC section
 * 10, docs/parameter-file.md) is handed out by the driver's Extension
 * routine instead: after KIM_Model_Compute, a simulator that knows this
 * header calls
 *
 *     struct compot_grade_extension g;
 *     memset(&g, 0, sizeof g);
 *     g.computeArguments = computeArguments;  (of KIM_Model_ComputeArgumentsCreate)
 *     g.grade = buffer;                       (numberOfParticles doubles)
 *     g.capacity = numberOfParticles;
 *     KIM_Model_Extension(model, COMPOT_GRADE_EXTENSION_ID, &g);
 *
 * and finds in grade[i] gamma_i of particle i of the configuration of the
 * most recent successful KIM_Model_Compute with these compute arguments
 * (0 for non-contributing particles).  Every Compute keeps it, whatever
 * outputs were asked for: the core computes the grade for its atom switch
 * anyway, so keeping it costs one store per particle.  (The Extension
 * cannot evaluate a configuration itself: the KIM API answers the model's
 * neighbour-list requests only inside Compute.)
 *
 * Outputs besides grade: numberOfParticles of that Compute (-1 if there is
 * none), formatVersion (1 or 2) and gradeOn (1 if some species has a fitted
 * grade: format v2 with U != 0; otherwise every gamma_i is 0).
 * gamma_i / gamma_lo[Z_i] (the KIM parameter g_gamma_lo) reads as "times
 * the largest grade of the fitted data": above 1 the atom is outside the
 * data and its fitted energy is being handed over to E_ref.
 *
 * The driver also answers the standard "KIM_SupportedExtensions" query
 * (KIM_SupportedExtensions.h) with this ID.  KIM_Model_Extension returns 0
 * on success, nonzero (with a message in kim.log) for an unknown ID, a NULL
 * structure or compute arguments, no successful Compute yet, or grade NULL
 * or capacity below numberOfParticles.
 *
 * computeArguments is the C API handle (KIM_ComputeArguments *).
 */
#ifndef COMPOT_KIM_GRADE_H
#define COMPOT_KIM_GRADE_H

#ifdef __cplusplus
extern "C" {
#endif

#define COMPOT_GRADE_EXTENSION_ID "compot_grade"

#ifndef KIM_COMPUTE_ARGUMENTS_DEFINED_
#define KIM_COMPUTE_ARGUMENTS_DEFINED_
typedef struct KIM_ComputeArguments KIM_ComputeArguments;
#endif

struct compot_grade_extension {
  KIM_ComputeArguments *computeArguments; /* in: the simulator's compute
                                             arguments for this model */
  double *grade;         /* in: capacity doubles; out: gamma_i per particle */
  int capacity;          /* in: number of doubles grade holds */
  int numberOfParticles; /* out: particles of the last Compute, -1: none */
  int formatVersion;     /* out: the model's parameter file format, 1 or 2 */
  int gradeOn;           /* out: 1 if some species has a fitted grade */
};

#ifdef __cplusplus
}
#endif

#endif /* COMPOT_KIM_GRADE_H */
