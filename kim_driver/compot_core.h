/*
 * compot_core.h -- host-agnostic C99 core of the compot interatomic potential.
 *
 * Composable pair-cluster potentials after Wang, Transtrum, Lordi, Bulatov,
 * Samanta, "Composable and adaptive design of machine learning interatomic
 * potentials guided by Fisher-information analysis", arXiv:2504.19372 (2025).
 * The mathematics is MODEL_SPEC.md of the project; the file format is
 * docs/parameter-file.md (format v2; v1 files are still read and evaluated
 * exactly as before).  This header knows nothing of KIM or
 * LAMMPS: the KIM model driver (compot_kim.c) and the LAMMPS plugin are thin
 * adapters around it.
 *
 * Conventions
 *   - Units: energy eV, length Angstrom, force eV/Angstrom.
 *   - Every fallible call returns COMPOT_OK (0) or a positive error code and,
 *     if msg is not NULL, writes a NUL-terminated message of the form
 *     "file:line: what; expected X, found Y" into msg[0..msg_size-1].
 *     The core never prints, never exits, never aborts.
 *   - Lifecycle: compot_create (read a parameter file) -> compot_refresh
 *     (recompute derived values after parameters changed in place) ->
 *     compot_compute (any number of times) -> compot_destroy.
 *     compot_create already refreshes once.
 */
#ifndef COMPOT_CORE_H
#define COMPOT_CORE_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Newest parameter file format (the version of new models); the core
   reads versions COMPOT_FORMAT_VERSION_MIN..COMPOT_FORMAT_VERSION and
   writes every model in its own version.  Version 2 adds the inner window
   and the reference site energy (block w), the saturating continuation of
   the features, bounded angular invariants and the extrapolation grade
   (block g): E_i = S_i V_fit(i) + (1 - S_i) E_ref + E_ZBL(i) with the atom
   switch S_i of the close pairs and of the grade (MODEL_SPEC section 10,
   docs/parameter-file.md). */
#define COMPOT_FORMAT_VERSION 4
#define COMPOT_FORMAT_VERSION_MIN 1

/* Error codes (0 = success). */
enum compot_status {
  COMPOT_OK = 0,
  COMPOT_ERR_IO = 1,     /* file cannot be opened, read or written */
  COMPOT_ERR_FORMAT = 2, /* malformed parameter file or expression */
  COMPOT_ERR_VALUE = 3,  /* parameter value out of its domain (NaN, alpha <= 0, ...) */
  COMPOT_ERR_MEMORY = 4, /* allocation failed */
  COMPOT_ERR_INPUT = 5,  /* invalid compute input (species index, coincident atoms) */
  COMPOT_ERR_ARG = 6,    /* invalid argument to an API call (NULL model, index range) */
  COMPOT_ERR_NONFINITE = 7 /* a computed energy, force or virial is not finite */
};

/* Role of a parameter block in fitting. */
enum compot_role {
  COMPOT_ROLE_LINEAR = 0,    /* linear coefficient or shift [eV] */
  COMPOT_ROLE_NONLINEAR = 1, /* basis alpha/beta or feature gamma */
  COMPOT_ROLE_FIXED = 2      /* fixed: scales phi_max/rho_max/q_max (set from data),
                                inner window r_a/r_b, saturation width tau,
                                reference site energy and the extrapolation
                                grade (mu, U, gamma_lo, gamma_hi); never fitted */
};

/* Kind of one index of a parameter block (used to spell element names). */
enum compot_index_kind {
  COMPOT_INDEX_SPECIES = 0,      /* species symbol, 0..S-1 in file order */
  COMPOT_INDEX_SPECIES_PAIR = 1, /* two symbols s1.s2 with s1 <= s2, pairs s1-major */
  COMPOT_INDEX_ONE_BASED = 2,    /* k = 1..K, l = 1..L */
  COMPOT_INDEX_ZERO_BASED = 3,   /* p = 0..P */
  COMPOT_INDEX_LOWER_TRIANGLE = 4, /* r.c with 1 <= c <= r <= d, packed rows
                                     outer: flat index r(r-1)/2 + c - 1,
                                     dims[] holds d(d+1)/2 */
  COMPOT_INDEX_CHANNEL = 5,      /* channel of a species embedding: e1..er */
  COMPOT_INDEX_CHANNEL_PAIR = 6  /* two channels ec1.ec2 with c1 <= c2,
                                    pairs c1-major */
};

/* Values a parameter block allows (besides being finite). */
enum compot_domain {
  COMPOT_DOMAIN_FINITE = 0,      /* any finite number */
  COMPOT_DOMAIN_POSITIVE = 1,    /* > 0 */
  COMPOT_DOMAIN_ABOVE_ONE = 2,   /* > 1 */
  COMPOT_DOMAIN_NONNEGATIVE = 3  /* >= 0 */
};

#define COMPOT_MAX_INDEX 5 /* n<i>.c of E[A[..]] leaves: Z, pair, l, k, p */
#define COMPOT_NAME_SIZE 48

/*
 * One parameter block: a contiguous array of values with one KIM parameter
 * name.  The table of all blocks, in file order, drives the file reader, the
 * writer and the KIM glue.  Element e of a block has the multi-index
 * (i_0, ..., i_{n_index-1}) in row-major order over dims[] (first index
 * outermost) and the file name key.i_0.i_1... spelled per index_kind.
 */
typedef struct compot_param {
  char name[COMPOT_NAME_SIZE]; /* C identifier, e.g. "b1_alpha", "n1_c" */
  char key[COMPOT_NAME_SIZE];  /* file name prefix, e.g. "b1.alpha", "n1.c" */
  char const *unit;            /* "eV", "1/Angstrom^2", "1" */
  int role;                    /* enum compot_role */
  double *values;              /* extent values, owned by the model, writable */
  int extent;                  /* number of values */
  int n_index;                 /* number of indices (0 for a scalar) */
  int dims[COMPOT_MAX_INDEX];
  int index_kind[COMPOT_MAX_INDEX];
  char const *description;     /* meaning, unit, role and indexing, one line */
  int domain;                  /* enum compot_domain */
  char const *domain_text;     /* the condition in words ("alpha > 0") */
  double initial;              /* value in a blank model */
} compot_param;

typedef struct compot_model compot_model;
typedef struct compot_workspace compot_workspace;

/* ---- lifecycle ---------------------------------------------------------- */

/* Read the parameter file at path (format v1 or v2) into a new model and
   refresh it.  On error *model is NULL. */
int compot_create(compot_model **model, char const *path, char *msg,
                  size_t msg_size);

/* Same from a NUL-terminated text; source_name is used in messages. */
int compot_create_from_text(compot_model **model, char const *text,
                            char const *source_name, char *msg,
                            size_t msg_size);

/* A model of the given expression, species (chemical symbols, in index
   order) and cutoff r_c [A] with default values: alpha 1, beta 2,
   phi_max = rho_max = q_max = 1, gamma 1, coefficients and shifts 0, and
   in format v2 tau 0.3, the inner window off (r_a = r_b = 0), E_ref 0 and
   the grade off (mu = U = 0, gamma_lo 1, gamma_hi 2).
   compot_create_blank makes a format v1 model, compot_create_blank_version
   one of the given format version (1 or 2). */
int compot_create_blank(compot_model **model, char const *expression,
                        char const *const *species, int n_species,
                        double cutoff, char *msg, size_t msg_size);
int compot_create_blank_version(compot_model **model, char const *expression,
                                char const *const *species, int n_species,
                                double cutoff, int version, char *msg,
                                size_t msg_size);

/* Recompute every derived value (even-tempered exponents a_k = alpha
   beta^(k-1), ZBL switching coefficients, the coefficient tables of the E,
   N and A leaves, the inner window per species pair, the grade's whitening
   factors in padded rows, influence distance) after parameter values
   changed, and check the values' domains (with the window rules 0 <= r_a
   <= r_b < r_c and r_b <= r_in of a ZBL term, and gamma_hi > gamma_lo >
   0). */
int compot_refresh(compot_model *model, char *msg, size_t msg_size);

void compot_destroy(compot_model *model);

/* Write the model in its format version (%.17g, round trip exact). */
int compot_write(compot_model const *model, char const *path, char *msg,
                 size_t msg_size);
int compot_write_stream(compot_model const *model, FILE *fp,
                        char const *name_for_messages, char *msg,
                        size_t msg_size);

/* ---- model description -------------------------------------------------- */

char const *compot_expression(compot_model const *model);
int compot_format_version(compot_model const *model); /* 1 or 2 */
int compot_n_species(compot_model const *model);
char const *compot_species_symbol(compot_model const *model, int s);
int compot_atomic_number(compot_model const *model, int s);
double compot_cutoff(compot_model const *model);            /* r_c [A] */
double compot_influence_distance(compot_model const *model); /* 2 r_c with an N term, else r_c */
/* 1 if the model has an N[...] term: the host must then supply neighbour
   lists of non-contributing particles that neighbour contributing ones. */
int compot_needs_ghost_neighbors(compot_model const *model);

int compot_n_params(compot_model const *model);
compot_param const *compot_param_at(compot_model const *model, int index);
/* Spell the file name of element flat of block index ("n1.c.Nb.Nb.1.1"). */
int compot_param_element_name(compot_model const *model, int index, int flat,
                              char *buf, size_t buf_size);

/* ---- compute ------------------------------------------------------------ */

/* Neighbour list accessor: the full list of particle i (every j != i with
   r_ij < some cutoff >= r_c; neighbours at r >= r_c are skipped).  Returns 0
   on success. */
typedef int compot_neighbor_fn(void *context, int i, int *n_neighbors,
                               int const **neighbors);

typedef struct compot_input {
  int n_particles;
  int const *species;      /* [n] species index 0..S-1 in file order */
  double const *coords;    /* [n*3] positions [A] */
  int const *contributing; /* [n] 1 = energy of this particle counts */
  compot_neighbor_fn *get_neighbors;
  void *neighbor_context;
  /* 0: get_neighbors returns full lists.  1: half lists -- every pair of
     contributing particles listed once (in the list of either), every pair
     of a contributing and a non-contributing particle in the contributing
     one's list (LAMMPS's half list with newton off).  Allowed for models
     without N terms, and with compot_compute_exchange for any model. */
  int half_list;
} compot_input;

/* Outputs; each NULL when not requested.  Requested outputs are zeroed and
   filled (not accumulated). */
typedef struct compot_output {
  double *energy;          /* [1] sum of E_i over contributing i [eV] */
  double *particle_energy; /* [n] E_i, 0 for non-contributing [eV] */
  double *forces;          /* [n*3] -dE/dr_i on every particle [eV/A] */
  double *virial;          /* [6] sum (dE/dr_i) (x) r_i, order xx yy zz yz xz xy [eV] */
  double *particle_virial; /* [n*6] pair terms split 1/2 - 1/2 [eV] */
} compot_output;

/*
 * Exchange of per-particle rows between particles and their images, for
 * hosts that split space between processes (e.g. LAMMPS with MPI).  data
 * holds n_particles rows of width doubles (row i at data + i*width).
 *   forward: overwrite the row of every non-contributing particle (a ghost)
 *            with the row of the contributing particle it is an image of;
 *   reverse: add the row of every ghost into the row of the particle it is
 *            an image of (the ghost rows may be left as they are).
 * Each returns 0 on success.
 */
typedef int compot_exchange_fn(void *context, double *data, int width);

typedef struct compot_exchange {
  compot_exchange_fn *forward;
  compot_exchange_fn *reverse;
  void *context;
} compot_exchange;

/* Workspace reused between compute calls (one per thread). */
compot_workspace *compot_workspace_create(void);
void compot_workspace_destroy(compot_workspace *ws);

/* Ask the computes that use ws for the extrapolation grade (format v2,
   MODEL_SPEC section 10): gamma_i = |U_Z (f_i - mu_Z)|^2 of every
   contributing particle i is written to grade[i] (grade holds n_particles
   doubles; 0 for non-contributing particles, for a format v1 model and for
   an unfitted grade, U = 0).  The grade is computed for the switch anyway;
   asking for it only adds it for atoms switched off by a close pair.
   grade = NULL stops it (the default).  ws keeps the pointer, not a copy. */
void compot_workspace_set_grade(compot_workspace *ws, double *grade);

/* Evaluate the model.  ws may be NULL (a temporary one is used).  The
   results are finite or the call fails: a site energy, force or virial
   component that is not finite (a configuration far outside the model's
   valid range, or invalid parameters) gives COMPOT_ERR_NONFINITE with a
   message naming the quantity and the particle. */
int compot_compute(compot_model const *model, compot_workspace *ws,
                   compot_input const *in, compot_output const *out,
                   char *msg, size_t msg_size);

/*
 * The same for a host that exchanges per-particle quantities instead of
 * supplying neighbour lists of ghosts (exchange not NULL): contributing
 * particles are the host's own, every non-contributing particle is an image
 * (ghost) of a contributing particle of this or another process, and
 * get_neighbors is called for contributing particles only.  With an N[...]
 * term the core calls exchange->forward on the cluster functions phi
 * (width S K, after they are computed on contributing particles) and
 * exchange->reverse on their adjoints (width S K, before the pair
 * gradients), once per basis that an N term uses; otherwise it makes no
 * exchange call.  Forces and per-particle virials of ghosts are filled as
 * in compot_compute; the host adds them into their owners.  With
 * exchange == NULL this is compot_compute.  Ghosts must cover r_c (plus
 * the host's skin) around the contributing particles; results equal those
 * of compot_compute on the same particles with ghost lists to rounding.
 */
int compot_compute_exchange(compot_model const *model, compot_workspace *ws,
                            compot_input const *in,
                            compot_exchange const *exchange,
                            compot_output const *out, char *msg,
                            size_t msg_size);

#ifdef __cplusplus
}
#endif

#endif /* COMPOT_CORE_H */
