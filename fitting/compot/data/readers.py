"""Reading DFT configurations from files (what a configuration is and its checks:
:mod:`compot.data.configurations`; which files a folder stands for: :mod:`compot.data.files`).

Two kinds of file are read:

* anything ASE can read (extended XYZ, VASP ``OUTCAR``, ``vasprun.xml``, ...),
  with the results under ASE's names or, through a key mapping (``data.keys``,
  ``--keys``), under others such as ``REF_energy``, ``REF_forces``,
  ``REF_stress`` (MACE, nequip and pacemaker data sets);
* the JSON format of the Materials Virtual Lab SNAP training sets
  (``nb-mvl/raw/*.json``): a list of records, each with a pymatgen
  ``structure`` dict and ``outputs`` = {``energy`` [eV], ``forces`` [eV/Å],
  ``stress`` [kbar, order xx yy zz xy yz xz, compressive positive]}. It is
  parsed by hand (no pymatgen dependency).

Every record is checked as it is read (:class:`~compot.data.configurations.Configuration`,
:func:`~compot.data.configurations.validate_configuration`); a bad record raises
:class:`~compot.errors.DatasetError` (or :class:`~compot.errors.SpeciesError`)
with a one-line message naming the file, the 0-based record index, what was
expected and what was found.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.units import GPa

from compot.errors import DatasetError

from .configurations import Configuration, describe, resolve_keys, validate_configuration
from .files import data_files, file_group

__all__ = ["KBAR", "read_configurations", "read_dataset"]

logger = logging.getLogger(__name__)

#: One kilobar in ASE units [eV/Å³] (1 kbar = 0.1 GPa).
KBAR = 0.1 * GPa

#: Permutation taking the VASP/pymatgen stress order (xx, yy, zz, xy, yz, xz)
#: to ASE Voigt order (xx, yy, zz, yz, xz, xy).
_VASP_TO_VOIGT = (0, 1, 2, 4, 5, 3)


def _select(n: int, index, path: pathlib.Path) -> list[int]:
    """Record indices selected by ``index`` (int, slice or ASE index string)."""
    if isinstance(index, str):
        from ase.io.formats import string2index

        try:
            index = string2index(index)
        except ValueError:
            raise DatasetError(
                f"{path}: bad index {index!r}; expected an int, a slice or a string like '0:10'"
            ) from None
    if isinstance(index, (int, np.integer)):
        if not -n <= index < n:
            raise DatasetError(f"{path}: record index {index} out of range; file has {n} record(s)")
        return [int(index) % n]
    return list(range(n))[index]


def _is_mvl_json(path: pathlib.Path) -> tuple[bool, object]:
    """Whether ``path`` is MVL-style JSON (list of {structure, outputs}); also the data."""
    if path.suffix.lower() != ".json":
        return False, None
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON: {exc}") from exc
    is_mvl = (
        isinstance(data, list)
        and len(data) > 0
        and all(isinstance(r, dict) and "structure" in r for r in data)
    )
    return is_mvl, data


def _parse_mvl_record(record: dict, path: pathlib.Path, index: int, group: str | None, keys: dict):
    """One MVL JSON record → Configuration (stress converted to ASE convention); ``keys``
    names the energy, forces and stress entries of ``outputs``."""
    source = f"{path}:{index}"
    where = f"{path}: record {index}"  # as the Configuration's own messages name it
    try:
        structure = record["structure"]
        matrix = np.array(structure["lattice"]["matrix"], dtype=float)
        sites = structure["sites"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(
            f"{where}: malformed pymatgen structure ({type(exc).__name__}: {exc}); expected "
            "'structure' with 'lattice.matrix' and 'sites'"
        ) from None
    symbols, positions = [], []
    for k, site in enumerate(sites):
        occupancy = site.get("species", [])
        if len(occupancy) != 1 or float(occupancy[0].get("occu", 1.0)) != 1.0:
            raise DatasetError(
                f"{where}: site {k} is disordered ({occupancy}); expected one species with "
                "occupancy 1"
            )
        symbols.append(occupancy[0]["element"])
        if "xyz" in site:
            positions.append(site["xyz"])
        elif "abc" in site:
            positions.append(np.asarray(site["abc"], dtype=float) @ matrix)
        else:
            raise DatasetError(f"{where}: site {k} has neither 'xyz' nor 'abc' coordinates")

    outputs = record.get("outputs")
    if not isinstance(outputs, dict):
        raise DatasetError(f"{where}: missing 'outputs'; expected {{energy, forces, stress}}")
    stress = outputs.get(keys["stress"])
    if stress is not None:
        raw = np.array(stress, dtype=float)
        if raw.shape != (6,):
            raise DatasetError(
                f"{where}: wrong shape of stress; expected (6,) [kbar], found {raw.shape}"
            )
        # kbar, (xx yy zz xy yz xz), compressive positive → eV/Å³, Voigt, tensile positive
        stress = -KBAR * raw[list(_VASP_TO_VOIGT)]
    if group is None:
        group = record.get("group")
        if not isinstance(group, str) or not group:
            tags = record.get("tags")
            group = tags[0] if isinstance(tags, list) and tags else path.stem
    return Configuration(
        symbols=tuple(symbols),
        positions=positions,
        cell=matrix,
        pbc=(True, True, True),
        energy=outputs.get(keys["energy"]),
        forces=outputs.get(keys["forces"]),
        stress=stress,
        weight=record.get("weight", 1.0),
        group=group,
        source=source,
        description=_mvl_description(record),
    )


def _mvl_description(record: dict) -> str:
    """The description of an MVL record: its free-text entries ``group``, ``notes``
    and ``tags`` as ``"key=value"`` joined by ``"; "`` (e.g. ``"group=Nb; notes={'Md':
    '300-37'}; tags=['Md']"``); its ``_id``, ``add_on`` date and ``params`` are left out."""
    return describe({key: str(record[key]) for key in ("group", "notes", "tags")
                     if record.get(key) not in (None, "", [], {})})


def read_configurations(
    path: str | os.PathLike,
    *,
    index: int | slice | str = ":",
    group: str | None = None,
    species: Iterable[str] | None = None,
    min_distance: float | None = 0.5,
    keys: dict | None = None,
) -> list[Configuration]:
    """Read and validate the configurations of one file.

    Parameters
    ----------
    path : str or path-like
        Any file ASE can read (extended XYZ, ``OUTCAR``, ``vasprun.xml``, ...)
        or an MVL-style JSON file (``.json`` holding a list of records with a
        pymatgen ``structure`` and ``outputs``). MVL stress [kbar, xx yy zz xy
        yz xz, compressive positive] is converted to ASE convention: ``σ =
        -0.1 GPa · s[[0, 1, 2, 4, 5, 3]]`` [eV/Å³].
    index : int, slice or str, default ":"
        Records to return, by 0-based record index (ASE syntax for strings).
    group : str, optional
        Group name for every configuration; default ``config_type`` (extxyz),
        the record's ``group`` (MVL JSON), else the file stem.
    species : iterable of str, optional
        Allowed chemical symbols; ``None`` allows all.
    min_distance : float or None, default 0.5
        Smallest allowed interatomic distance [Å], periodic images included.
    keys : dict, optional
        Names of energy, forces and stress in the file (:func:`resolve_keys`),
        e.g. ``{"energy": "REF_energy", "forces": "REF_forces"}``; in MVL JSON
        the names of the ``outputs`` entries.

    Returns
    -------
    list of Configuration
        In file order; ``source`` is ``"path:record_index"``.

    Raises
    ------
    DatasetError
        Unreadable or nonexistent file (message gives the reader's reason),
        empty file, missing energy/forces, wrong shapes, NaN/inf, atoms too
        close.
    SpeciesError
        A species outside ``species``.
    ConfigError
        A bad ``keys`` mapping.
    """
    path = pathlib.Path(path)
    keys = resolve_keys(keys)
    is_mvl, data = _is_mvl_json(path)
    if is_mvl:
        records = data
        selected = _select(len(records), index, path)
        configs = [_parse_mvl_record(records[k], path, k, group, keys) for k in selected]
    else:
        import ase.io

        try:
            images = ase.io.read(path, index=":")
        except Exception as exc:  # noqa: BLE001 - ASE raises many types; report its reason
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise DatasetError(f"{path}: cannot read configurations; {reason}") from exc
        if isinstance(images, Atoms):
            images = [images]
        selected = _select(len(images), index, path) if images else []
        configs = [Configuration.from_atoms(images[k], f"{path}:{k}", group, keys) for k in selected]
    if not configs:
        raise DatasetError(f"{path}: no configurations read (index={index!r}); expected at least 1")
    for config in configs:
        validate_configuration(config, species=species, min_distance=min_distance)
    logger.info(
        "read %d configurations (%d atoms) from %s",
        len(configs),
        sum(c.n_atoms for c in configs),
        path,
    )
    return configs


def read_dataset(
    paths: str | os.PathLike | Iterable[str | os.PathLike], *, group_by: str | None = None, **kwargs
) -> list[Configuration]:
    """Read configurations from several files.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Files, or folders standing for their data files (:func:`data_files`:
        ``*.extxyz``, ``*.xyz``, MVL ``*.json``, and VASP ``OUTCAR``/``vasprun.xml`` files in
        the folder and its subfolders).
    group_by : {None, "file", "config_type"}, optional
        ``"file"`` names every configuration's group after its file
        (:func:`file_group`: ``Nb_AIMD``, or the folder of a VASP output);
        otherwise the default of :func:`read_configurations`
        (``config_type``, else the file).
    **kwargs
        Passed to :func:`read_configurations` for every file.

    Returns
    -------
    list of Configuration
        Files in the given order, records in file order.

    Raises
    ------
    DatasetError
        As :func:`read_configurations`; also a directory with no data files,
        or no paths at all.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[pathlib.Path] = []
    for p in map(pathlib.Path, paths):
        if p.is_dir():
            found = data_files(p)
            if not found:
                raise DatasetError(
                    f"{p}: directory has no data files; expected *.extxyz, *.xyz, MVL *.json, or VASP OUTCAR or "
                    "vasprun.xml files (also in subfolders)"
                )
            files.extend(found)
        else:
            files.append(p)
    if not files:
        raise DatasetError("read_dataset: no paths given; expected at least one file or directory")
    configs: list[Configuration] = []
    for f in files:
        if group_by == "file":
            kwargs["group"] = file_group(f)
        configs.extend(read_configurations(f, **kwargs))
    return configs
