"""Training/validation splits of DFT configurations, stratified by group:
random snapshots, or whole trajectories / contiguous blocks per run
(``data.validation``, docs/fitting.md)."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from compot.errors import ConfigError

from .configurations import Configuration

__all__ = ["detect_runs", "train_validation_split"]

logger = logging.getLogger(__name__)

#: a number in a description: unsigned decimal digits with an optional fraction (a sign,
#: an exponent or a thousands separator is text)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def train_validation_split(
    configs: Sequence[Configuration], validation_fraction: float, seed: int, mode: str = "random"
) -> tuple[list[Configuration], list[Configuration]]:
    """Split configurations into training and validation sets, stratified by group.

    ``mode`` ``"random"``: within each group (in sorted group order) the
    configurations are permuted with ``numpy.random.default_rng(seed)`` and the
    first ``round(validation_fraction · n_group)`` go to validation.

    ``mode`` ``"by_block"`` (issue 13: snapshots of one AIMD run are correlated,
    so random snapshots of a run flatter the model): a group whose
    configurations come from several files holds out whole files (trajectories),
    drawn in a seeded order until ``round(validation_fraction · n_group)`` is
    reached or passed. A group from one file is cut into runs (trajectories) by
    :func:`detect_runs` and holds out one contiguous block of each run (in the
    run's order), at a seeded start within the run; the blocks' lengths are
    proportional to the runs' lengths, ``n_val · L_r / n_group``, rounded by
    largest remainder (ties in a seeded order) so that they add up to
    ``n_val = round(validation_fraction · n_group)``. A group in which
    :func:`detect_runs` finds one run holds out one contiguous block of ``n_val``
    configurations of it at a seeded start (on a file in snapshot order the block
    of the split before runs were detected); one in which it finds only runs of one
    configuration (no two configurations of a trajectory recognised, e.g. strained
    cells or slabs) holds out one such block in file order.

    Either way the count is capped at ``n_group − 1`` so that every group keeps
    at least one training configuration; a group of one configuration is always
    in training.

    Parameters
    ----------
    configs : sequence of Configuration
        In file order within each file (as :func:`read_dataset` returns them).
    validation_fraction : float
        In [0, 1); 0 gives an empty validation set.
    seed : int
        Seed; the split is a deterministic function of (configs, fraction, seed, mode).
    mode : {"random", "by_block"}

    Returns
    -------
    train, validation : list of Configuration
        Each in the original order of ``configs``.

    Raises
    ------
    ConfigError
        ``validation_fraction`` outside [0, 1).
    """
    fraction = float(validation_fraction)
    if not (0.0 <= fraction < 1.0):
        raise ConfigError(
            f"validation_fraction is {validation_fraction}; expected a value in [0, 1)"
        )
    if mode not in ("random", "by_block"):
        raise ConfigError(f"validation mode {mode!r}; expected 'random' or 'by_block'")
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[int]] = {}
    for k, c in enumerate(configs):
        by_group.setdefault(c.group, []).append(k)
    validation_idx: set[int] = set()
    for name in sorted(by_group):
        members = by_group[name]
        order = rng.permutation(len(members))  # drawn for every group: nested splits
        n_val = min(int(round(fraction * len(members))), len(members) - 1)
        if mode == "random":
            validation_idx.update(members[c] for c in order[: max(n_val, 0)])
        elif n_val > 0:
            validation_idx.update(_held_out_block(configs, members, n_val, rng))
    train = [c for k, c in enumerate(configs) if k not in validation_idx]
    validation = [c for k, c in enumerate(configs) if k in validation_idx]
    logger.info(
        "split %d configurations into %d training and %d validation (%d groups, %s, seed %s)",
        len(configs),
        len(train),
        len(validation),
        len(by_group),
        mode,
        seed,
    )
    return train, validation


def _held_out_block(configs: Sequence[Configuration], members: list[int], n_val: int,
                    rng: np.random.Generator) -> list[int]:
    """The ``by_block`` validation members of one group (indices into ``configs``):
    whole files in a seeded order while the group has several, else one contiguous
    block per run of :func:`detect_runs` (proportional lengths, largest remainder) or,
    without runs, one contiguous block of ``n_val`` at a seeded start; never all of
    ``members``."""
    files: dict[str, list[int]] = {}
    for k in members:
        files.setdefault(configs[k].source.rpartition(":")[0], []).append(k)
    if len(files) > 1:
        names = sorted(files)
        held: list[int] = []
        for f in rng.permutation(len(names)):
            if len(held) >= n_val or len(held) + len(files[names[f]]) >= len(members):
                continue
            held.extend(files[names[f]])
        if held:
            return held
    runs = detect_runs([configs[k] for k in members])
    if all(len(r) == 1 for r in runs):          # no trajectory recognised: the file's order
        runs = [list(range(len(members)))]
    if len(runs) == 1:                          # one block at a seeded start, as before runs
        start = int(rng.integers(0, len(members) - n_val + 1))
        return [members[i] for i in runs[0][start:start + n_val]]
    n = len(members)
    lengths = [len(r) for r in runs]
    counts = [n_val * length // n for length in lengths]            # floors of the quotas
    remainders = [n_val * length % n for length in lengths]         # their numerators (exact)
    tie = rng.permutation(len(runs))
    by_remainder = sorted(range(len(runs)), key=lambda r: (-remainders[r], tie[r]))
    for r in by_remainder[: n_val - sum(counts)]:
        counts[r] += 1
    held = []
    for run, k in zip(runs, counts):
        if k:
            start = int(rng.integers(0, len(run) - k + 1))
            held.extend(members[i] for i in run[start:start + k])
    return held


def _cell_key(config: Configuration) -> tuple:
    """The cell (rounded to 1e-6 Å, -0 as 0) and periodicity, hashable."""
    return tuple((np.round(config.cell, 6) + 0.0).ravel()) + tuple(bool(p) for p in config.pbc)


def detect_runs(configs: Sequence[Configuration]) -> list[list[int]]:
    """Runs (trajectories) among the configurations of one group, from their atoms,
    cells and descriptions; no data set's own format is parsed.

    1. Every configuration's :attr:`~Configuration.description` is split into its
       text, every number replaced by ``#`` (a number is an unsigned decimal such as
       ``300`` or ``0.0200``; a sign is text), and its numbers.
    2. Configurations with the same species and atom count (the sorted symbols), the
       same cell (to 1e-6 Å) and periodicity, and the same description text form a
       class; a change of any of these starts another run.
    3. The counter of a class (the snapshot number) is the position of the number at
       which consecutive members of the class (in file order) most often differ
       while all their other numbers agree (the first such position on a tie); a
       class without such a pair has no counter.
    4. A run is the members of a class whose numbers agree everywhere except at the
       counter: e.g. "Snapshot 7 of 40 of AIMD NVT simulation at 300 K" and
       "Snapshot 8 …" are one run, "… at 3000 K" starts another. Its members are
       ordered by the counter (then file order), so that a block of a run is a
       window in time also when the file lists the snapshots out of order.

    On a file that lists each trajectory's snapshots in order with an increasing
    counter this gives the runs where the description changes in anything but the
    counter, or the cell or atoms change; two stretches of a file with the same
    description text, cell and numbers but the counter are one run. Configurations
    without a description are one run per cell and atoms (an NPT trajectory, whose
    cell changes every step, is then runs of one configuration each).

    Parameters
    ----------
    configs : sequence of Configuration
        One group, in file order.

    Returns
    -------
    list of list of int
        Indices into ``configs``, one list per run, runs in the order of their first
        configuration in the file, members in counter order.
    """
    classes: dict[tuple, list[int]] = {}
    numbers: list[tuple[float, ...]] = []
    for k, c in enumerate(configs):
        text = c.description
        numbers.append(tuple(float(x) for x in _NUMBER.findall(text)))
        key = (tuple(sorted(c.symbols)), _cell_key(c), _NUMBER.sub("#", text))
        classes.setdefault(key, []).append(k)
    runs: list[list[int]] = []
    for members in classes.values():
        changes: Counter = Counter()
        for a, b in zip(members, members[1:]):
            differ = [i for i, (x, y) in enumerate(zip(numbers[a], numbers[b])) if x != y]
            if len(differ) == 1:
                changes[differ[0]] += 1
        counter = min(changes, key=lambda i: (-changes[i], i)) if changes else None
        by_rest: dict[tuple, list[int]] = {}
        for k in members:
            rest = tuple(x for i, x in enumerate(numbers[k]) if i != counter)
            by_rest.setdefault(rest, []).append(k)
        for run in by_rest.values():
            if counter is not None:
                run.sort(key=lambda k: (numbers[k][counter], k))
            runs.append(run)
    runs.sort(key=min)
    return runs
