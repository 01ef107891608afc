/* ----------------------------------------------------------------------
   pair_style compot -- composable pair-cluster potentials
   (M. Wang, M. K. Transtrum, V. Lordi, V. V. Bulatov, A. Samanta,
   arXiv:2504.19372) over the host-agnostic C core of kim_driver/.

   Ghost atoms: forward/reverse communication, as pair_style eam.  The site
   energy of an N[...] term depends on the cluster functions phi of the
   neighbours (two hops); the core computes phi on owned atoms, asks this
   adapter to copy them onto the ghosts (Comm::forward_comm), computes the
   site energies and adjoints of owned atoms, and asks for the adjoints
   accumulated on ghosts to be summed into their owners
   (Comm::reverse_comm) before the pair gradients.  Only owned atoms need
   neighbour lists -- a half list with newton off, from which the core
   builds both directions of every pair --, the ghost cutoff stays
   r_c + skin, and no neighbour lists of ghosts are built.  See README.md.
------------------------------------------------------------------------- */

#include "pair_compot.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include "compot_core.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

using namespace LAMMPS_NS;

namespace {

// Columns per forward/reverse communication round.  comm_forward/_reverse
// must be set before Comm::init() sizes its buffers, i.e. before the model
// (and so the width S K) may be known: wider rows go in rounds of CHUNK.
constexpr int CHUNK = 16;
constexpr int MSG_SIZE = 2048;

extern "C" int compot_lmp_neighbors(void *ctx, int i, int *n, int const **list)
{
  return static_cast<PairCompot *>(ctx)->neighbors_of(i, n, list);
}

extern "C" int compot_lmp_forward(void *ctx, double *data, int width)
{
  return static_cast<PairCompot *>(ctx)->exchange(data, width, false);
}

extern "C" int compot_lmp_reverse(void *ctx, double *data, int width)
{
  return static_cast<PairCompot *>(ctx)->exchange(data, width, true);
}

}    // namespace

/* ---------------------------------------------------------------------- */

PairCompot::PairCompot(LAMMPS *lmp) :
    Pair(lmp), model(nullptr), workspace(nullptr), nmax(0), filter_neighbors(false),
    grade_flag(0), grade_always(false), comm_data(nullptr), comm_width(0), comm_col(0), comm_ncol(0)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  unit_convert_flag = 0;
  // the core returns the virial from pair vectors: also right for forces on
  // ghosts with newton off, and inside hybrid styles
  no_virial_fdotr_compute = 1;
  // the per-atom virial splits each pair term half-half; a centroid form is
  // not implemented
  centroidstressflag = CENTROID_NOTAVAIL;
  comm_forward = CHUNK;
  comm_reverse = CHUNK;
  comm_reverse_off = CHUNK;    // forces (3) and per-atom virials (6) with newton off

  workspace = compot_workspace_create();
  if (workspace == nullptr) error->one(FLERR, "pair compot: out of memory for the workspace");
}

/* ---------------------------------------------------------------------- */

PairCompot::~PairCompot()
{
  if (copymode) return;
  compot_destroy(model);
  compot_workspace_destroy(workspace);
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

/* ---------------------------------------------------------------------- */

void PairCompot::allocate()
{
  allocated = 1;
  int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
  map.assign(n, -1);
}

/* ----------------------------------------------------------------------
   pair_style compot   (no arguments)
------------------------------------------------------------------------- */

void PairCompot::settings(int narg, char **arg)
{
  if (narg > 1 || (narg == 1 && strcmp(arg[0], "grade") != 0))
    error->all(FLERR, "Illegal pair_style compot command: expected no argument or 'grade', found '{}'",
               arg[narg - 1]);
  grade_always = narg == 1;
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "Pair style compot requires 'metal' units (eV, Angstrom); found units '{}'",
               update->unit_style);
}

/* ----------------------------------------------------------------------
   read the whole parameter file on rank 0, broadcast it, parse it everywhere
------------------------------------------------------------------------- */

void PairCompot::read_model(const std::string &file)
{
  std::string text, problem;
  if (comm->me == 0) {
    std::string path = utils::get_potential_file_path(file);
    if (path.empty()) {
      problem = fmt::format("cannot open compot parameter file '{}': {}", file,
                            "no such file (also not under $LAMMPS_POTENTIALS)");
    } else {
      std::ifstream in(path, std::ios::binary);
      std::ostringstream buf;
      if (in) buf << in.rdbuf();
      if (!in || in.bad())
        problem = fmt::format("cannot read compot parameter file '{}': {}", path,
                              utils::getsyserror());
      text = buf.str();
    }
  }
  int nproblem = (int) problem.size();
  MPI_Bcast(&nproblem, 1, MPI_INT, 0, world);
  if (nproblem) error->all(FLERR, "pair_coeff compot: {}", problem);

  int ntext = (int) text.size();
  MPI_Bcast(&ntext, 1, MPI_INT, 0, world);
  text.resize(ntext);
  MPI_Bcast(text.data(), ntext, MPI_CHAR, 0, world);

  char msg[MSG_SIZE];
  compot_model *fresh = nullptr;
  if (compot_create_from_text(&fresh, text.c_str(), file.c_str(), msg, sizeof msg) != 0)
    error->all(FLERR, "pair_coeff compot: {}", msg);
  compot_destroy(model);
  model = fresh;
  model_file = file;
}

/* ----------------------------------------------------------------------
   pair_coeff * * model.params El1 El2 ... (one element or NULL per type)
------------------------------------------------------------------------- */

void PairCompot::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg != 3 + ntypes)
    error->all(FLERR,
               "Incorrect args for pair coefficients: expected 'pair_coeff * * <file> <element "
               "or NULL for each of the {} atom types>', found {} argument(s)",
               ntypes, narg);
  if (strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR, "Incorrect args for pair coefficients: pair style compot expects "
                      "'pair_coeff * * <file> <elements>'");

  read_model(arg[2]);

  const int nspecies = compot_n_species(model);
  std::string known;
  for (int s = 0; s < nspecies; s++) known += std::string(s ? " " : "") + compot_species_symbol(model, s);
  for (int t = 1; t <= ntypes; t++) {
    const char *el = arg[2 + t];
    map[t] = -1;
    if (strcmp(el, "NULL") == 0) continue;
    for (int s = 0; s < nspecies; s++)
      if (strcmp(el, compot_species_symbol(model, s)) == 0) map[t] = s;
    if (map[t] < 0)
      error->all(FLERR, "Element {} (atom type {}) is not in potential file {} (its species: {})",
                 el, t, arg[2], known);
  }

  int count = 0;
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) {
      setflag[i][j] = 0;
      if (map[i] >= 0 && map[j] >= 0) {
        setflag[i][j] = 1;
        count++;
      }
    }
  if (count == 0) error->all(FLERR, "Incorrect args for pair coefficients: every type is NULL");

  if (comm->me == 0)
    utils::logmesg(lmp, "pair compot: model '{}' from {}: {} species, cutoff {} A{}\n",
                   compot_expression(model), model_file, nspecies, compot_cutoff(model),
                   compot_needs_ghost_neighbors(model)
                       ? " (two-hop N term: phi forward, adjoints reverse communicated)"
                       : "");
}

/* ---------------------------------------------------------------------- */

void PairCompot::init_style()
{
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "Pair style compot requires 'metal' units (eV, Angstrom); found units '{}'",
               update->unit_style);
  if (model == nullptr) error->all(FLERR, "Pair style compot: pair_coeff * * <file> ... not set");
  // half list with newton off: a pair of owned atoms once, a pair of an
  // owned atom and a ghost in the owned atom's list; the core builds both
  // directions of every pair from it (compot_input.half_list)
  neighbor->add_request(this, NeighConst::REQ_NEWTON_OFF);
}

/* ---------------------------------------------------------------------- */

double PairCompot::init_one(int i, int j)
{
  if (setflag[i][j] == 0) error->all(FLERR, "All pair coeffs are not set");
  return compot_cutoff(model);
}

/* ----------------------------------------------------------------------
   neighbour list of owned atom i for the core
------------------------------------------------------------------------- */

int PairCompot::neighbors_of(int i, int *n, int const **neighbors)
{
  const int *jlist = list->firstneigh[i];
  const int jnum = list->numneigh[i];
  if (!filter_neighbors) {
    *n = jnum;
    *neighbors = jlist;
    return 0;
  }
  const int *type = atom->type;
  neighbuf.clear();
  for (int jj = 0; jj < jnum; jj++) {
    int j = jlist[jj] & NEIGHMASK;
    if (map[type[j]] >= 0) neighbuf.push_back(j);
  }
  *n = (int) neighbuf.size();
  *neighbors = neighbuf.data();
  return 0;
}

/* ----------------------------------------------------------------------
   forward (owned -> ghosts) or reverse (ghosts -> owners, summed)
   communication of rows of width columns, CHUNK columns at a time
------------------------------------------------------------------------- */

int PairCompot::exchange(double *data, int width, bool reverse)
{
  comm_data = data;
  comm_width = width;
  for (comm_col = 0; comm_col < width; comm_col += CHUNK) {
    comm_ncol = std::min(CHUNK, width - comm_col);
    if (reverse)
      comm->reverse_comm(this, comm_ncol);
    else
      comm->forward_comm(this, comm_ncol);
  }
  comm_data = nullptr;
  return 0;
}

int PairCompot::pack_forward_comm(int n, int *list, double *buf, int /*pbc_flag*/, int * /*pbc*/)
{
  int m = 0;
  for (int ii = 0; ii < n; ii++) {
    const double *row = comm_data + (size_t) list[ii] * comm_width + comm_col;
    for (int k = 0; k < comm_ncol; k++) buf[m++] = row[k];
  }
  return m;
}

void PairCompot::unpack_forward_comm(int n, int first, double *buf)
{
  int m = 0;
  for (int i = first; i < first + n; i++) {
    double *row = comm_data + (size_t) i * comm_width + comm_col;
    for (int k = 0; k < comm_ncol; k++) row[k] = buf[m++];
  }
}

int PairCompot::pack_reverse_comm(int n, int first, double *buf)
{
  int m = 0;
  for (int i = first; i < first + n; i++) {
    const double *row = comm_data + (size_t) i * comm_width + comm_col;
    for (int k = 0; k < comm_ncol; k++) buf[m++] = row[k];
  }
  return m;
}

void PairCompot::unpack_reverse_comm(int n, int *list, double *buf)
{
  int m = 0;
  for (int ii = 0; ii < n; ii++) {
    double *row = comm_data + (size_t) list[ii] * comm_width + comm_col;
    for (int k = 0; k < comm_ncol; k++) row[k] += buf[m++];
  }
}

/* ---------------------------------------------------------------------- */

void PairCompot::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const int *type = atom->type;
  const int newton = force->newton_pair;

  if (atom->nmax > nmax) {
    nmax = atom->nmax;
    species.resize(nmax);
    contributing.resize(nmax);
    fbuf.resize(3 * (size_t) nmax);
  }
  if (eflag_atom && ebuf.size() < (size_t) nmax) ebuf.resize(nmax);
  if (vflag_atom && vbuf.size() < 6 * (size_t) nmax) vbuf.resize(6 * (size_t) nmax);

  bool any_null = false;
  for (int i = 0; i < nall; i++) {
    const int s = map[type[i]];
    any_null |= s < 0;
    species[i] = s < 0 ? 0 : s;    // never a neighbour, never contributing
    contributing[i] = 0;
  }
  for (int ii = 0; ii < list->inum; ii++) {
    const int i = list->ilist[ii];
    if (map[type[i]] >= 0) contributing[i] = 1;
  }
  filter_neighbors = any_null || atom->molecular != Atom::ATOMIC;

  compot_input in;
  in.n_particles = nall;
  in.species = species.data();
  in.coords = nall ? &atom->x[0][0] : nullptr;
  in.contributing = contributing.data();
  in.get_neighbors = compot_lmp_neighbors;
  in.neighbor_context = this;
  in.half_list = 1;

  compot_exchange ex;
  ex.forward = compot_lmp_forward;
  ex.reverse = compot_lmp_reverse;
  ex.context = this;

  double energy = 0.0, vir[6];
  compot_output out;
  out.energy = eflag_global ? &energy : nullptr;
  out.particle_energy = eflag_atom ? ebuf.data() : nullptr;
  out.forces = fbuf.data();
  out.virial = vflag_global ? vir : nullptr;
  out.particle_virial = vflag_atom ? vbuf.data() : nullptr;

  const bool want_grade = grade_always || grade_flag;
  if (want_grade && gbuf.size() < (size_t) nmax) gbuf.resize(nmax);
  compot_workspace_set_grade(workspace, want_grade ? gbuf.data() : nullptr);

  char msg[MSG_SIZE];
  const int err = compot_compute_exchange(model, workspace, &in, &ex, &out, msg, sizeof msg);
  compot_workspace_set_grade(workspace, nullptr);
  if (err != 0) error->one(FLERR, "pair compot (model file {}): {}", model_file, msg);

  // forces and per-atom virials of ghosts: LAMMPS sums them into their
  // owners with newton on; with newton off this style does it itself
  if (!newton && atom->nghost > 0) {
    exchange(fbuf.data(), 3, true);
    if (vflag_atom) exchange(vbuf.data(), 6, true);
  }
  const int nf = newton ? nall : nlocal;
  double **f = atom->f;
  for (int i = 0; i < nf; i++) {
    f[i][0] += fbuf[3 * i];
    f[i][1] += fbuf[3 * i + 1];
    f[i][2] += fbuf[3 * i + 2];
  }
  if (eflag_global) eng_vdwl += energy;
  if (eflag_atom)
    for (int i = 0; i < nlocal; i++) eatom[i] += ebuf[i];
  // core: sum (dE/dr_i) (x) r_i in order xx yy zz yz xz xy;
  // LAMMPS: sum r_i (x) f_i in order xx yy zz xy xz yz
  if (vflag_global) {
    virial[0] -= vir[0];
    virial[1] -= vir[1];
    virial[2] -= vir[2];
    virial[3] -= vir[5];
    virial[4] -= vir[4];
    virial[5] -= vir[3];
  }
  if (vflag_atom)
    for (int i = 0; i < nf; i++) {
      const double *v = &vbuf[6 * (size_t) i];
      vatom[i][0] -= v[0];
      vatom[i][1] -= v[1];
      vatom[i][2] -= v[2];
      vatom[i][3] -= v[5];
      vatom[i][4] -= v[4];
      vatom[i][5] -= v[3];
    }
}

/* ---------------------------------------------------------------------- */

void *PairCompot::extract(const char *name, int &dim)
{
  dim = 0;
  if (strcmp(name, "grade_flag") == 0) return (void *) &grade_flag;
  return nullptr;
}

/* ----------------------------------------------------------------------
   "grade": gamma_i of the local atoms, written by the last compute that
   computed it (grade_flag set, or pair_style compot grade); a vector
------------------------------------------------------------------------- */

void *PairCompot::extract_peratom(const char *name, int &ncol)
{
  ncol = 0;
  if (strcmp(name, "grade") != 0) return nullptr;
  if (gbuf.size() < (size_t) atom->nmax) gbuf.resize(atom->nmax, 0.0);
  return (void *) gbuf.data();
}

/* ---------------------------------------------------------------------- */

double PairCompot::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) (species.capacity() + contributing.capacity() + neighbuf.capacity()) * sizeof(int);
  bytes += (double) (fbuf.capacity() + ebuf.capacity() + vbuf.capacity() + gbuf.capacity()) * sizeof(double);
  return bytes;
}
