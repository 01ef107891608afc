"""The batches' neighbour data of a fit, in memory up to a budget and on disk beyond it.

A fit passes over its batches many times: every Bayesian-optimisation evaluation
refreshes the scales and solves the linear coefficients, and each pass needs every
batch's neighbour pairs (:class:`compot.neighbours.System`). Holding them all makes a
fit's memory grow with the data (about 2.3 kB per training atom on the Nb data with
the sparse maps built on them); building them again on every pass costs as much as the
neighbour search itself each time. :class:`NeighbourStore` does what data loaders of
MLIP trainers do with preprocessed neighbour lists (written once, read back as
needed): each batch's System is built once; the first batches stay in memory while
their arrays fit ``budget`` bytes, the others are written to a private scratch folder
(one file per batch, ``$TMPDIR``) and read back one at a time. A batch read back is
the same arrays, bit for bit, so results do not depend on the budget; only its lazily
built sparse maps are rebuilt on every read (milliseconds against the seconds of a
batch's design rows). The folder is removed with the store (or at exit).
"""

from __future__ import annotations

import dataclasses
import pickle
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..neighbours import System

__all__ = ["NeighbourStore", "system_nbytes"]


def system_nbytes(system: System) -> int:
    """Bytes of a System's arrays (its fields; the sparse maps built on them lazily,
    about 0.7 times as much again, are not counted)."""
    return sum(v.nbytes for v in (getattr(system, f.name) for f in dataclasses.fields(system))
               if isinstance(v, np.ndarray))


class NeighbourStore(Sequence):
    """A sequence of Systems, the first ones held while their arrays fit the budget,
    the rest on disk.

    Parameters
    ----------
    budget : float — bytes of System arrays held in memory (0 = every batch on disk,
        ``math.inf`` = all in memory)
    directory : path, optional — where the scratch folder is made (default: the
        system's temporary directory, ``$TMPDIR``)

    Attributes
    ----------
    in_memory_bytes : int — bytes of the arrays held
    n_on_disk : int — batches written to the scratch folder

    Indexing with an int returns the System (read from disk if it is there); with a
    slice, a lazy view. Pickled (e.g. sent to a Dask worker), a store becomes the list of
    its Systems, all read.
    """

    def __init__(self, budget: float, directory=None):
        if not budget >= 0:
            raise ValueError(f"NeighbourStore: budget must be >= 0 bytes, found {budget!r}")
        self.budget = budget
        self._directory = directory
        self._items: list = []
        self._scratch: Path | None = None
        self.in_memory_bytes = 0
        self.n_on_disk = 0

    def append(self, system: System) -> None:
        """Add the next batch's System (kept, or written to the scratch folder)."""
        size = system_nbytes(system)
        if self.in_memory_bytes + size <= self.budget:
            self._items.append(system)
            self.in_memory_bytes += size
            return
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="compot-neighbours-", dir=self._directory))
            weakref.finalize(self, shutil.rmtree, self._scratch, ignore_errors=True)
        path = self._scratch / f"batch{len(self._items):06d}.pickle"
        # the fields only: lazily built sparse maps are not written
        fields = {f.name: getattr(system, f.name) for f in dataclasses.fields(system)}
        with open(path, "wb") as fh:
            pickle.dump(fields, fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._items.append(path)
        self.n_on_disk += 1

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return _View(self, range(len(self))[k])
        item = self._items[k]
        if isinstance(item, Path):
            with open(item, "rb") as fh:
                return System(**pickle.load(fh))
        return item

    def __reduce__(self):
        return (list, (list(self),))


class _View(Sequence):
    """Batches ``indices`` of a store, read when indexed."""

    def __init__(self, store: NeighbourStore, indices: range):
        self._store = store
        self._indices = indices

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return _View(self._store, self._indices[k])
        return self._store[self._indices[k]]

    def __reduce__(self):
        return (list, (list(self),))
