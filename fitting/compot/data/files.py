"""The data files: where the shared data and the peer potentials are, which files a
folder stands for, and the group its configurations get when grouped by file.

Reading the files: :mod:`compot.data.readers`.
"""

from __future__ import annotations

import logging
import os
import pathlib

__all__ = ["data_files", "default_data_dir", "default_peers_dir", "file_group"]

logger = logging.getLogger(__name__)

#: Suffixes of the structure files a data folder stands for.
_XYZ_SUFFIXES = (".extxyz", ".xyz")


def _is_vasp(path: pathlib.Path) -> bool:
    """Whether ``path`` is named like a VASP output (``OUTCAR*``, ``vasprun*.xml``)."""
    name = path.name
    return name.startswith("OUTCAR") or (name.startswith("vasprun") and name.endswith(".xml"))


def file_group(path: str | os.PathLike) -> str:
    """Group name of the configurations of a file when grouped by file.

    The file stem (``Nb_AIMD`` for ``Nb_AIMD.extxyz``), except for VASP outputs
    (``OUTCAR``, ``vasprun.xml``), which are named alike in every calculation:
    they take the name of their folder.
    """
    path = pathlib.Path(path)
    if _is_vasp(path) and path.parent.name:
        return path.parent.name
    return path.stem


def data_files(folder: str | os.PathLike) -> list[pathlib.Path]:
    """The data files a folder stands for.

    Its ``*.extxyz`` and ``*.xyz`` files, then its MVL-style ``*.json`` files (each
    sorted by name; JSON only in the folder itself: ``nb-mvl/raw`` holds the same
    records as the ``.extxyz`` files above it), then the VASP
    outputs (``OUTCAR*``, ``vasprun*.xml``) in it and in its subfolders, VASP
    keeping one calculation per folder (sorted by path). A folder holding both
    an ``OUTCAR`` and a ``vasprun.xml`` holds one calculation twice: only its
    ``vasprun.xml`` is taken.

    Returns
    -------
    list of pathlib.Path — possibly empty.
    """
    folder = pathlib.Path(folder)
    xyz = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in _XYZ_SUFFIXES)
    xyz += sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() == ".json")
    vasp = sorted(f for f in folder.rglob("*") if f.is_file() and _is_vasp(f))
    twice = [f for f in vasp if f.name == "OUTCAR" and (f.parent / "vasprun.xml").is_file()]
    for f in twice:
        logger.info("%s: reading %s instead (the same calculation)", f, f.parent / "vasprun.xml")
    return xyz + [f for f in vasp if f not in twice]


def default_data_dir() -> pathlib.Path:
    """Directory holding the shared reference data.

    Returns
    -------
    pathlib.Path
        ``$COMPOT_DATA`` if that environment variable is set and non-empty,
        otherwise ``<repository root>/../shared/data``, the repository root
        being found from this file's location (``fitting/compot/data/files.py``).
        The directory is not required to exist.
    """
    env = os.environ.get("COMPOT_DATA")
    if env:
        return pathlib.Path(env).expanduser()
    repo_root = pathlib.Path(__file__).resolve().parents[3]
    return repo_root.parent / "shared" / "data"


def default_peers_dir() -> pathlib.Path:
    """Directory holding the peer potentials the benchmarks compare with (EAM,
    SNAP, ... files).

    Returns
    -------
    pathlib.Path
        ``$COMPOT_PEERS`` if that environment variable is set and non-empty,
        otherwise ``peers`` next to the data directory (:func:`default_data_dir`:
        ``$COMPOT_DATA/../peers``, by default ``<repository root>/../shared/peers``).
        The directory is not required to exist.
    """
    env = os.environ.get("COMPOT_PEERS")
    if env:
        return pathlib.Path(env).expanduser()
    return default_data_dir().parent / "peers"
