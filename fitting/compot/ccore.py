"""The C core (``kim_driver/``) as a Python library and an ASE calculator.

    from compot.ccore import CCoreCalculator
    atoms.calc = CCoreCalculator("model.params")     # read by the C reader
    atoms.get_potential_energy(); atoms.get_forces(); atoms.get_stress()

The host-agnostic C99 sources of ``kim_driver/`` (every ``compot_*.c`` except
the KIM glue ``compot_kim.c``; shipped inside the package, :mod:`compot.sources`) are compiled into a shared library with the
system C compiler (``$CC``, default ``cc``) the first time they are needed.
The library is cached under ``$COMPOT_CACHE`` (default
``$XDG_CACHE_HOME/compot``, i.e. ``~/.cache/compot``) in a file named after a
hash of the sources, the headers and the compiler command, so it is rebuilt
whenever a source changes. :func:`load_library` raises :class:`CCoreError`,
naming the compiler command, when there is no compiler or the build fails.

The calculator passes a periodic (or partly periodic, or finite) cell to the
core the way the KIM API and LAMMPS do: the atoms of the cell are
*contributing* particles, and their periodic images within reach are
*ghosts*, with neighbour lists built from ASE's (matscipy's, for fully
periodic cells) neighbour list. Two modes mirror the two hosts:

``"ghosts"`` (default, the KIM way; ``compot_compute``)
    ghosts within the influence distance (r_c, or 2 r_c with an ``N[...]``
    term) and full neighbour lists of contributing particles and of the
    ghosts within r_c of them;
``"exchange"`` (the LAMMPS way; ``compot_compute_exchange``)
    ghosts within r_c only, half lists of contributing particles, and the
    per-particle exchange between ghosts and their owners done here.

Forces on ghosts are added into their owners; energy, site energies,
forces [eV/Å] and stress σ = W/V [eV/Å³] (ASE sign, tensile positive) follow
:class:`compot.calculator.CompotCalculator`.

The parameter file is read by the C reader, so any format the core reads
(v1 and v2) works; a :class:`~compot.model.Model`
given instead is written with :func:`compot.io.write_model` first.
"""

from __future__ import annotations

import ctypes as ct
import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from .errors import CompotError

__all__ = ["CCoreError", "CoreModel", "CCoreCalculator", "load_library", "library_path", "core_sources"]

log = logging.getLogger(__name__)

#: C sources of the core that are not part of it (host glue needing host headers).
_HOST_GLUE = {"compot_kim.c"}

#: A neighbour-list accessor over compressed rows, compiled into the same library
#: so that the core never calls back into Python for neighbours.
_CSR_SOURCE = r"""
/* compot_py_csr.c -- neighbour lists in compressed rows for the Python host. */
typedef struct compot_py_csr {
  int const *offsets; /* [n + 1]: the list of i is indices[offsets[i] .. offsets[i+1]) */
  int const *indices;
} compot_py_csr;

int compot_py_csr_neighbors(void *context, int i, int *n_neighbors,
                            int const **neighbors);

int compot_py_csr_neighbors(void *context, int i, int *n_neighbors,
                            int const **neighbors)
{
  compot_py_csr const *c = (compot_py_csr const *) context;
  *n_neighbors = c->offsets[i + 1] - c->offsets[i];
  *neighbors = c->indices + c->offsets[i];
  return 0;
}
"""

_CFLAGS = ["-std=c99", "-O2", "-fPIC", "-shared"]
_MSG_SIZE = 2048


class CCoreError(CompotError, RuntimeError):
    """Raised when the C core cannot be built or loaded (no compiler, a
    compile error), or when one of its calls returns an error code; the
    message is the core's own ``file:line: what; expected X, found Y``."""


def _default_source_dir() -> Path:
    from .sources import SourcesNotFoundError, kim_driver_dir

    try:
        return kim_driver_dir()
    except SourcesNotFoundError as exc:
        raise CCoreError(str(exc)) from None


def core_sources(source_dir: str | os.PathLike | None = None) -> list[Path]:
    """The C files of the core: ``compot_*.c`` of ``source_dir`` (default
    the sources shipped with the package, ``kim_driver/`` of a checkout, or
    ``$COMPOT_KIM_DRIVER``: :func:`compot.sources.kim_driver_dir`) without the
    KIM glue."""
    d = Path(source_dir) if source_dir else _default_source_dir()
    files = sorted(p for p in d.glob("compot_*.c") if p.name not in _HOST_GLUE)
    if not files:
        raise CCoreError(f"{d}: no C core sources (compot_*.c); expected the kim_driver/ folder of compot "
                         "(set COMPOT_KIM_DRIVER to its path)")
    return files


def _cache_dir() -> Path:
    env = os.environ.get("COMPOT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "compot"


class _Input(ct.Structure):
    _fields_ = [("n_particles", ct.c_int), ("species", ct.POINTER(ct.c_int)),
                ("coords", ct.POINTER(ct.c_double)), ("contributing", ct.POINTER(ct.c_int)),
                ("get_neighbors", ct.c_void_p), ("neighbor_context", ct.c_void_p),
                ("half_list", ct.c_int)]


class _Output(ct.Structure):
    _fields_ = [(n, ct.POINTER(ct.c_double)) for n in
                ("energy", "particle_energy", "forces", "virial", "particle_virial")]


_EXCHANGE_FN = ct.CFUNCTYPE(ct.c_int, ct.c_void_p, ct.POINTER(ct.c_double), ct.c_int)


class _Exchange(ct.Structure):
    _fields_ = [("forward", _EXCHANGE_FN), ("reverse", _EXCHANGE_FN), ("context", ct.c_void_p)]


class _CSR(ct.Structure):
    _fields_ = [("offsets", ct.POINTER(ct.c_int)), ("indices", ct.POINTER(ct.c_int))]


def _declare(so) -> None:
    vp, cp, sz = ct.c_void_p, ct.c_char_p, ct.c_size_t
    so.compot_create.argtypes = [ct.POINTER(vp), cp, cp, sz]
    so.compot_create_from_text.argtypes = [ct.POINTER(vp), cp, cp, cp, sz]
    so.compot_destroy.argtypes = [vp]
    so.compot_destroy.restype = None
    so.compot_compute.argtypes = [vp, vp, ct.POINTER(_Input), ct.POINTER(_Output), cp, sz]
    so.compot_compute_exchange.argtypes = [vp, vp, ct.POINTER(_Input), ct.POINTER(_Exchange),
                                           ct.POINTER(_Output), cp, sz]
    so.compot_workspace_create.restype = vp
    so.compot_workspace_destroy.argtypes = [vp]
    so.compot_workspace_destroy.restype = None
    so.compot_workspace_set_grade.argtypes = [vp, ct.POINTER(ct.c_double)]
    so.compot_workspace_set_grade.restype = None
    for name in ("compot_cutoff", "compot_influence_distance"):
        getattr(so, name).argtypes = [vp]
        getattr(so, name).restype = ct.c_double
    for name in ("compot_n_species", "compot_needs_ghost_neighbors"):
        getattr(so, name).argtypes = [vp]
        getattr(so, name).restype = ct.c_int
    so.compot_species_symbol.argtypes = [vp, ct.c_int]
    so.compot_species_symbol.restype = cp
    so.compot_expression.argtypes = [vp]
    so.compot_expression.restype = cp


_LOADED: dict = {}


def library_path(source_dir: str | os.PathLike | None = None, cc: str | None = None) -> Path:
    """Where :func:`load_library` caches the library of these sources and compiler:
    ``<cache>/libcompot_core-<hash>.so``, the hash covering the compiler command,
    its flags and the text of every source and header."""
    sources = core_sources(source_dir)
    cc_cmd = shlex.split(cc or os.environ.get("CC") or "cc")
    h = hashlib.sha256()
    h.update(" ".join(cc_cmd + _CFLAGS).encode())
    h.update(_CSR_SOURCE.encode())
    for p in sources + sorted(sources[0].parent.glob("compot_*.h")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return _cache_dir() / f"libcompot_core-{h.hexdigest()[:16]}.so"


def load_library(source_dir: str | os.PathLike | None = None, cc: str | None = None):
    """Build (once, cached) and load the C core as a shared library.

    Parameters
    ----------
    source_dir : path, optional
        Folder of the C sources (default: ``kim_driver/`` of the repository).
    cc : str, optional
        Compiler command (default ``$CC``, else ``cc``); may hold options.

    Returns
    -------
    ctypes.CDLL
        With argument and result types of the calls used here declared.

    Raises
    ------
    CCoreError
        No compiler, or the build failed; the message names the command.
    """
    sources = core_sources(source_dir)
    d = sources[0].parent
    cc_cmd = shlex.split(cc or os.environ.get("CC") or "cc")
    lib = library_path(source_dir, cc)
    if str(lib) in _LOADED:
        return _LOADED[str(lib)]
    cache = lib.parent
    if not lib.exists():
        compiler = shutil.which(cc_cmd[0])
        if compiler is None:
            raise CCoreError(f"cannot build the C core: compiler {cc_cmd[0]!r} not found (command "
                             f"'{' '.join(cc_cmd + _CFLAGS)} -o {lib.name} {' '.join(p.name for p in sources)} "
                             "-lm'); install a C compiler or set CC")
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            helper = Path(tmp) / "compot_py_csr.c"
            helper.write_text(_CSR_SOURCE, encoding="utf-8")
            out = Path(tmp) / lib.name
            cmd = cc_cmd + _CFLAGS + ["-I", str(d), "-o", str(out)] + [str(p) for p in sources] + [str(helper), "-lm"]
            log.info("building the C core: %s", " ".join(cmd))
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                tail = " | ".join(res.stderr.strip().splitlines()[-6:])
                raise CCoreError(f"building the C core failed (exit {res.returncode}) with command "
                                 f"'{' '.join(cmd)}': {tail}")
            os.replace(out, lib)          # atomic: concurrent builders agree
    so = ct.CDLL(str(lib))
    _declare(so)
    _LOADED[str(lib)] = so
    return so


def _ptr(a: np.ndarray, t):
    return a.ctypes.data_as(ct.POINTER(t))


def _neighbour_list(quantities: str, atoms, cutoff: float):
    if atoms.pbc.all() and abs(atoms.cell.volume) > 1e-12:
        from matscipy.neighbours import neighbour_list
        return neighbour_list(quantities, atoms, cutoff)
    from ase.neighborlist import neighbor_list
    return neighbor_list(quantities, atoms, cutoff, self_interaction=False)


@dataclass
class _Particles:
    x: np.ndarray         # (n_particles, 3)
    owner: np.ndarray     # (n_particles,)
    offsets: np.ndarray   # (n_particles + 1,) int32
    indices: np.ndarray   # int32


def _particles(atoms, cutoff: float, reach: float, ghost_lists: bool, half: bool) -> _Particles:
    """Cell atoms and ghosts with neighbour lists in compressed rows (see the module docstring)."""
    n = len(atoms)
    i, j, d, S = _neighbour_list("ijdS", atoms, reach)
    o = np.argsort(i, kind="stable")
    i, j, d, S = i[o], j[o], d[o], np.asarray(S, dtype=np.int64)[o]
    ghost = np.any(S != 0, axis=1)
    keys = np.unique(np.column_stack([j[ghost], S[ghost]]), axis=0)
    owner = np.concatenate([np.arange(n), keys[:, 0]]).astype(np.int64)
    shift = np.vstack([np.zeros((n, 3), dtype=np.int64), keys[:, 1:]])
    x = atoms.positions[owner] + shift @ atoms.cell.array
    n_part = len(owner)
    # particle index of an image (atom a, shift s): encode s in a bounded box
    span = int(np.abs(S).max(initial=0)) * (2 if ghost_lists else 1) + 1
    base = 2 * span + 1

    def code(a, s):
        return ((a * base + (s[:, 0] + span)) * base + (s[:, 1] + span)) * base + (s[:, 2] + span)

    all_codes = code(owner, shift)
    order = np.argsort(all_codes)
    sorted_codes = all_codes[order]

    def lookup(a, s):
        c = code(a, s)
        k = np.searchsorted(sorted_codes, c)
        k = np.minimum(k, n_part - 1)
        found = sorted_codes[k] == c
        return np.where(found, order[k], -1)

    inside = d < cutoff
    ci, cj, cS = i[inside], j[inside], S[inside]
    centre = [ci]
    neigh = [lookup(cj, cS)]
    if ghost_lists:
        # a ghost g = (a, s) has the neighbours (j, s + S) of atom a's list
        start = np.searchsorted(ci, np.arange(n + 1))
        counts = start[1:] - start[:-1]
        g = np.arange(n, n_part)
        reps = counts[owner[g]]
        rows = np.repeat(g, reps)
        first = np.repeat(start[owner[g]], reps)
        within = np.arange(len(rows)) - np.repeat(np.cumsum(reps) - reps, reps)
        pair = first + within
        nb = lookup(cj[pair], shift[rows] + cS[pair])
        keep = nb >= 0
        centre.append(rows[keep])
        neigh.append(nb[keep])
    centre = np.concatenate(centre)
    neigh = np.concatenate(neigh)
    if half:
        # each pair of cell atoms once; cell atom - ghost pairs in the cell atom's list
        keep = (neigh >= n) | (neigh > centre)
        centre, neigh = centre[keep], neigh[keep]
    o = np.lexsort((neigh, centre))
    centre, neigh = centre[o], neigh[o]
    offsets = np.searchsorted(centre, np.arange(n_part + 1)).astype(np.intc)
    return _Particles(x, owner, offsets, np.ascontiguousarray(neigh, dtype=np.intc))


class CoreModel:
    """One model read by the C reader, evaluated by the C core.

    Parameters
    ----------
    path : path of a parameter file, or a :class:`~compot.model.Model`
        (written to a temporary file with :func:`compot.io.write_model`)
    library : ctypes.CDLL, optional
        Default :func:`load_library`.

    Attributes
    ----------
    species : tuple of str — in the file's order
    cutoff : float — r_c [Å]
    influence_distance : float — r_c, or 2 r_c with an ``N[...]`` term [Å]
    expression : str
    """

    def __init__(self, path, library=None):
        self.so = library or load_library()
        self._handle = None
        self._ws = None
        if not isinstance(path, (str, os.PathLike)):
            from .io import format_model
            text = format_model(path)
            name = f"<{path.expression}>"
            handle = ct.c_void_p()
            msg = ct.create_string_buffer(_MSG_SIZE)
            if self.so.compot_create_from_text(ct.byref(handle), text.encode(), name.encode(), msg, _MSG_SIZE):
                raise CCoreError(msg.value.decode(errors="replace"))
        else:
            handle = ct.c_void_p()
            msg = ct.create_string_buffer(_MSG_SIZE)
            if self.so.compot_create(ct.byref(handle), os.fsencode(path), msg, _MSG_SIZE):
                raise CCoreError(msg.value.decode(errors="replace"))
        self._handle = handle
        self._ws = ct.c_void_p(self.so.compot_workspace_create())
        self.species = tuple(self.so.compot_species_symbol(handle, s).decode()
                             for s in range(self.so.compot_n_species(handle)))
        self.cutoff = float(self.so.compot_cutoff(handle))
        self.influence_distance = float(self.so.compot_influence_distance(handle))
        self.needs_ghost_neighbors = bool(self.so.compot_needs_ghost_neighbors(handle))
        self.expression = self.so.compot_expression(handle).decode()

    def __del__(self):
        so = getattr(self, "so", None)
        if so is not None:
            if getattr(self, "_ws", None):
                so.compot_workspace_destroy(self._ws)
                self._ws = None
            if getattr(self, "_handle", None):
                so.compot_destroy(self._handle)
                self._handle = None

    def evaluate(self, atoms, mode: str = "ghosts", grade: bool = False):
        """Energy, site energies, forces and virial of one configuration (and, with
        ``grade``, the extrapolation grade of every atom).

        Parameters
        ----------
        atoms : ase.Atoms
            Periodic along any subset of the cell vectors.
        mode : {"ghosts", "exchange"}
            How ghosts are passed to the core (module docstring).
        grade : bool
            Also return γ_i = |U_Z(f_i − μ_Z)|² (MODEL_SPEC §10; ``compot_workspace_set_grade``),
            appended as a fifth element, shape (n_atoms,) [-] (zeros for format v1).

        Returns
        -------
        energy : float [eV]
        energies_n : ndarray, shape (n_atoms,) [eV]
        forces_nc : ndarray, shape (n_atoms, 3) [eV/Å]
        virial_6 : ndarray, shape (6,) [eV]
            Σ (∂E/∂r_i) ⊗ r_i over all particles, order xx yy zz yz xz xy
            (= V σ, ASE sign).

        Raises
        ------
        CCoreError
            An error code from the core (message of the core), or a species
            the model does not have.
        """
        if mode not in ("ghosts", "exchange"):
            raise ValueError(f"mode: expected 'ghosts' or 'exchange', found {mode!r}")
        code = {s: k for k, s in enumerate(self.species)}
        try:
            spc_n = np.array([code[s] for s in atoms.get_chemical_symbols()], dtype=np.intc)
        except KeyError as exc:
            raise CCoreError(f"species {exc.args[0]} is not in the model (species {', '.join(self.species)})") from None
        n = len(atoms)
        exchange = mode == "exchange"
        reach = self.cutoff if exchange else self.influence_distance
        p = _particles(atoms, self.cutoff, reach, ghost_lists=self.needs_ghost_neighbors and not exchange,
                       half=exchange)
        n_part = len(p.owner)
        spc = np.ascontiguousarray(spc_n[p.owner])
        contrib = np.zeros(n_part, dtype=np.intc)
        contrib[:n] = 1
        xc = np.ascontiguousarray(p.x, dtype=np.double)
        csr = _CSR(_ptr(p.offsets, ct.c_int), _ptr(p.indices, ct.c_int))
        fn = ct.cast(self.so.compot_py_csr_neighbors, ct.c_void_p)
        inp = _Input(n_part, _ptr(spc, ct.c_int), _ptr(xc, ct.c_double), _ptr(contrib, ct.c_int),
                     fn, ct.cast(ct.pointer(csr), ct.c_void_p), 1 if exchange else 0)
        e = np.zeros(1)
        pe = np.zeros(n_part)
        f = np.zeros((n_part, 3))
        v = np.zeros(6)
        out = _Output(_ptr(e, ct.c_double), _ptr(pe, ct.c_double), _ptr(f, ct.c_double),
                      _ptr(v, ct.c_double), None)
        msg = ct.create_string_buffer(_MSG_SIZE)
        g = np.zeros(n_part) if grade else None
        self.so.compot_workspace_set_grade(self._ws, _ptr(g, ct.c_double) if grade else None)
        if exchange:
            owner = p.owner
            ghosts = np.arange(n, n_part)

            def forward(_ctx, data, width):
                a = np.ctypeslib.as_array(data, shape=(n_part * width,)).reshape(n_part, width)
                a[n:] = a[owner[n:]]
                return 0

            def reverse(_ctx, data, width):
                a = np.ctypeslib.as_array(data, shape=(n_part * width,)).reshape(n_part, width)
                np.add.at(a, owner[ghosts], a[n:])
                return 0

            fw, rv = _EXCHANGE_FN(forward), _EXCHANGE_FN(reverse)
            ex = _Exchange(fw, rv, None)
            err = self.so.compot_compute_exchange(self._handle, self._ws, ct.byref(inp), ct.byref(ex),
                                                  ct.byref(out), msg, _MSG_SIZE)
        else:
            err = self.so.compot_compute(self._handle, self._ws, ct.byref(inp), ct.byref(out), msg, _MSG_SIZE)
        self.so.compot_workspace_set_grade(self._ws, None)
        if err:
            raise CCoreError(msg.value.decode(errors="replace"))
        F = np.zeros((n, 3))
        np.add.at(F, p.owner, f)
        if grade:
            return float(e[0]), pe[:n].copy(), F, v, g[:n].copy()
        return float(e[0]), pe[:n].copy(), F, v


class CCoreCalculator(Calculator):
    """ASE calculator evaluating a model with the C core.

    Parameters
    ----------
    model : path of a parameter file, a :class:`~compot.model.Model`, or a :class:`CoreModel`
    mode : {"ghosts", "exchange"}
        How ghosts are passed to the core (module docstring).

    Implemented properties: energy [eV], free_energy, energies (site energies
    [eV]), forces [eV/Å], stress [eV/Å³] (periodic cells only; σ = W/V,
    tensile positive, as :class:`compot.calculator.CompotCalculator`), and
    ``grade``, the extrapolation grade γ_i of every atom [-] computed by the core
    (MODEL_SPEC §10), when asked for.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "grade"]

    def __init__(self, model, mode: str = "ghosts", **kwargs):
        super().__init__(**kwargs)
        self.core = model if isinstance(model, CoreModel) else CoreModel(model)
        self.mode = mode

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if "grade" in properties:
            e, pe, F, v, g = self.core.evaluate(self.atoms, self.mode, grade=True)
            self.results["grade"] = g
        else:
            e, pe, F, v = self.core.evaluate(self.atoms, self.mode)
        self.results.update(energy=e, free_energy=e, energies=pe, forces=F)
        if self.atoms.pbc.all():
            W = np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
            self.results["stress"] = full_3x3_to_voigt_6_stress(W / self.atoms.get_volume())
        elif "stress" in properties:
            raise PropertyNotImplementedError("stress needs a periodic cell in all three directions")
        if not np.isfinite(e):
            raise CCoreError(f"model {self.core.expression} gave a non-finite energy ({e}) for {self.atoms}")
