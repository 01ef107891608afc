/* -*- c++ -*- ----------------------------------------------------------
   pair_style compot: composable pair-cluster potentials (Wang, Transtrum,
   Lordi, Bulatov, Samanta, arXiv:2504.19372) as a LAMMPS plugin.

   A thin adapter around the host-agnostic C core of kim_driver/
   (compot_core.h); the physics lives there only.  See README.md.
------------------------------------------------------------------------- */

#ifndef LMP_PAIR_COMPOT_H
#define LMP_PAIR_COMPOT_H

#include "pair.h"

#include <string>
#include <vector>

struct compot_model;
struct compot_workspace;

namespace LAMMPS_NS {

class PairCompot : public Pair {
 public:
  PairCompot(class LAMMPS *);
  ~PairCompot() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;

  int pack_forward_comm(int, int *, double *, int, int *) override;
  void unpack_forward_comm(int, int, double *) override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;

  double memory_usage() override;

  // the extrapolation grade as a per-atom vector (fix pair): "grade", and the
  // trigger "grade_flag" that fix pair sets on the steps it reads it
  void *extract(const char *, int &) override;
  void *extract_peratom(const char *, int &) override;

  // callbacks of the C core (public so that the C trampolines reach them)
  int neighbors_of(int i, int *n, int const **neighbors);
  int exchange(double *data, int width, bool reverse);

 private:
  compot_model *model;
  compot_workspace *workspace;
  std::string model_file;
  std::vector<int> map;    // atom type -> species index of the model, -1 = NULL

  // per-atom buffers (owned + ghost), grown to atom->nmax
  int nmax;
  std::vector<int> species, contributing;
  std::vector<double> fbuf, ebuf, vbuf;
  std::vector<int> neighbuf;    // a filtered neighbour list
  bool filter_neighbors;        // strip bits / drop unmapped types

  // extrapolation grade: computed on steps with grade_flag set (fix pair ...
  // grade 1) or on every step (pair_style compot grade); gbuf[i] = gamma_i
  int grade_flag;
  bool grade_always;
  std::vector<double> gbuf;

  // state of the current forward/reverse communication
  double *comm_data;
  int comm_width, comm_col, comm_ncol;

  void allocate();
  void read_model(const std::string &file);
};

}    // namespace LAMMPS_NS

#endif
