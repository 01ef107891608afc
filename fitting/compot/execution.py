"""The execution layer of fitting and design: Dask (``dask.distributed``).

A :class:`distributed.Client` is either an embedded :class:`distributed.LocalCluster`
sized to the machine (one single-threaded worker process per core) or a connection to
an existing scheduler (``--scheduler ADDRESS``, ``execution.scheduler`` in the
configuration). On a SLURM or PBS machine, dask-jobqueue starts the scheduler and the
workers as batch jobs (docs/fitting.md, "Running on a cluster"); compot is then given
the scheduler's address.

What runs on the workers:

* the batches of a streamed linear solve (:func:`reduce_batches`): each worker
  reduces its batches' weighted rows to a (k + 1) × (k + 1) triangular factor
  (:mod:`compot.lstsq`), and the factors are merged here in batch order, so neither
  side holds more than a batch of rows;
* the candidates of ``compot design`` (:func:`compot.design.run_design`), one task each.
"""

from __future__ import annotations

import logging
import os

from .lstsq import StreamedQR, reduce_rows

__all__ = ["client_for", "reduce_batches"]

log = logging.getLogger(__name__)


def client_for(scheduler: str | None = None, n_workers: int | None = None):
    """A Dask client: connected to ``scheduler``, or to a new LocalCluster.

    Parameters
    ----------
    scheduler : str, optional — address of a running scheduler, e.g. ``tcp://host:8786``
    n_workers : int, optional — LocalCluster workers (default: the cores this process
        may use); one thread each, processes (the model code holds the GIL)

    Returns
    -------
    distributed.Client — close it (``with client_for(...) as client:``) to stop a
    LocalCluster it started

    Raises
    ------
    OSError
        If ``scheduler`` cannot be reached (Dask's timeout).
    """
    from distributed import Client

    if scheduler:
        log.info("Dask: connecting to the scheduler at %s", scheduler)
        return Client(scheduler)
    n = n_workers or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    # Dask's own INFO records (scheduler, nanny, worker start and stop) would fill the fit
    # log; kept at WARNING unless the user set a level for them
    dask_log = logging.getLogger("distributed")
    if dask_log.level == logging.NOTSET:
        dask_log.setLevel(logging.WARNING)
    # Client(n_workers=...) starts a LocalCluster that it owns and closes with itself; its
    # dashboard on a free port (":0"), so that two fits on one machine do not contend for
    # 8787 (Dask warns and moves the second)
    client = Client(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
    log.info("Dask: LocalCluster with %d worker processes, dashboard %s", n, client.dashboard_link)
    return client


def _factor_of(data, model, names):
    """reduce_rows of the one batch of ``data`` (runs on a worker)."""
    (A, b), = data.least_squares_batches(model, names)
    return reduce_rows(A, b)


def _scattered_batches(client, data):
    """The batches of ``data`` on the workers, one future each, scattered once per client,
    one batch at a time (a batch whose neighbour data is on disk is read, sent and
    released before the next, so the client never holds them all)."""
    cache = data.__dict__.setdefault("_dask_batches", {})
    key = id(client)
    if key not in cache:
        cache.clear()
        cache[key] = [client.scatter(data.subset([k]), hash=False) for k in range(len(data.systems))]
    return cache[key]


def reduce_batches(client, data, model, names):
    """Triangular factor of the weighted rows [A | b] of ``data``
    (:meth:`compot.data.weighted.WeightedData.least_squares_batches`), one task per batch.

    Parameters
    ----------
    client : distributed.Client
    data : compot.data.weighted.WeightedData — its batches are scattered to the workers
        on the first call and kept there
    model : compot.model.Model — sent with every call (parameters change between solves)
    names : list of str — the linear blocks

    Returns
    -------
    ndarray, shape (k + 1, k + 1), k the number of coefficients in ``names``; the same
    numbers as the serial :class:`compot.lstsq.StreamedQR` (merged in batch order)

    Raises
    ------
    Exception
        Whatever a task raised (Dask re-raises it here).
    """
    from distributed import as_completed

    parts = _scattered_batches(client, data)
    # a fresh key per call (hash=False): with content-hashed keys, a model scattered again
    # while the previous call's copy of the same key is being released can be lost during
    # replication ("Key lost during replication", the tasks then fail with lost dependencies)
    model_f = client.scatter(model, broadcast=True, hash=False)
    futures = [client.submit(_factor_of, p, model_f, names, pure=False) for p in parts]
    index = {f.key: k for k, f in enumerate(futures)}
    # merged in batch order, as StreamedQR merges them in one process, so that the result does
    # not depend on which worker finished first; factors that arrive early wait (k+1)² each
    q = StreamedQR(len(model.vector(names)))
    waiting, next_k = {}, 0
    for fut in as_completed(futures):
        waiting[index[fut.key]] = fut.result()
        while next_k in waiting:
            q.add_factor(waiting.pop(next_k))
            next_k += 1
    return q.R
