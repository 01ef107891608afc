"""Packaging beyond what pyproject.toml can say: the C and C++ sources of the
KIM driver (``kim_driver/``) and of the LAMMPS plugin (``lammps_plugin/``)
ship inside the package as ``compot/kim_driver/`` and ``compot/lammps_plugin/``,
so that ``compot export kim --install`` and ``compot build-plugin`` work from
a wheel or an sdist, without a source checkout (``compot/sources.py`` finds
them). Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

SOURCE_FOLDERS = {
    "compot.kim_driver": ("kim_driver", ["*.c", "*.h", "CMakeLists.txt", "kimspec.edn", "README.md", "LICENSE"]),
    "compot.lammps_plugin": ("lammps_plugin", ["*.cpp", "*.h", "Makefile", "README.md"]),
}

setup(
    packages=find_packages("fitting") + list(SOURCE_FOLDERS),
    package_dir={"": "fitting", **{pkg: folder for pkg, (folder, _) in SOURCE_FOLDERS.items()}},
    package_data={pkg: patterns for pkg, (_, patterns) in SOURCE_FOLDERS.items()},
)
