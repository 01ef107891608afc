"""Where the C and C++ sources shipped with compot are: the KIM model driver and
C core (``kim_driver/``) and the LAMMPS pair-style plugin (``lammps_plugin/``).

Both folders travel with the Python package: a wheel or an sdist carries them
as package data (``compot/kim_driver/``, ``compot/lammps_plugin/``, see
``setup.py``), and a source checkout has them at the top of the repository.
Each folder is looked up in this order:

1. the environment variable (``COMPOT_KIM_DRIVER``, ``COMPOT_LAMMPS_PLUGIN``);
2. the installed package's copy (``<site-packages>/compot/<folder>``);
3. the source checkout this package runs from (``<repo>/<folder>``,
   an editable install).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CompotError

__all__ = ["SourcesNotFoundError", "kim_driver_dir", "lammps_plugin_dir"]

_PACKAGE = Path(__file__).resolve().parent

#: folder -> (environment variable, a file that must be there)
_FOLDERS = {
    "kim_driver": ("COMPOT_KIM_DRIVER", "CMakeLists.txt"),
    "lammps_plugin": ("COMPOT_LAMMPS_PLUGIN", "pair_compot.cpp"),
}


class SourcesNotFoundError(CompotError, FileNotFoundError):
    """Raised when the C/C++ sources of the KIM driver or of the LAMMPS plugin
    are neither in the installed package nor in a source checkout (a broken
    installation), or when the environment variable names a folder without
    them."""


def _find(folder: str) -> Path:
    env, marker = _FOLDERS[folder]
    value = os.environ.get(env)
    if value:
        path = Path(value).expanduser()
        if not (path / marker).is_file():
            raise SourcesNotFoundError(f"{env}={value}: no {marker} there; expected the {folder}/ folder "
                                       "of compot, or unset the variable to use the installed copy")
        return path
    candidates = [_PACKAGE / folder, _PACKAGE.parents[1] / folder]
    for path in candidates:
        if (path / marker).is_file():
            return path
    raise SourcesNotFoundError(f"the {folder}/ sources of compot were not found (looked for {marker} in "
                               f"{', '.join(str(c) for c in candidates)}); reinstall compot, or set {env} "
                               f"to a {folder}/ folder")


def kim_driver_dir() -> Path:
    """The folder of the KIM model driver and of the C core
    (``CMakeLists.txt``, ``kimspec.edn``, ``*.c``, ``*.h``).

    Raises
    ------
    SourcesNotFoundError
    """
    return _find("kim_driver")


def lammps_plugin_dir() -> Path:
    """The folder of the LAMMPS plugin's C++ sources (``pair_compot.cpp``,
    ``pair_compot.h``, ``compotplugin.cpp``).

    Raises
    ------
    SourcesNotFoundError
    """
    return _find("lammps_plugin")
