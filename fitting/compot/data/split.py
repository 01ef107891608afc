"""Training/validation splits of DFT configurations, stratified by group:
random snapshots, or whole trajectories / contiguous blocks (``data.validation``,
docs/fitting.md)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from compot.errors import ConfigError

from .configurations import Configuration

__all__ = ["train_validation_split"]

logger = logging.getLogger(__name__)

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
    reached or passed; a group from one file holds out one contiguous block of
    that many configurations in file order, at a seeded start.

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
    block of ``n_val`` at a seeded start; never all of ``members``."""
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
    start = int(rng.integers(0, len(members) - n_val + 1))
    return members[start:start + n_val]
