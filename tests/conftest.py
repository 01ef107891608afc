"""Shared pytest fixtures: where the repository and the reference DFT data are."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Root of the compot repository (the folder holding ``pyproject.toml``)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Reference DFT data folder: ``$COMPOT_DATA``, else ``<repo>/../shared/data``.

    A missing folder fails the test (it is never skipped): the data is part of
    the test set-up, and CI runs with ``shared/`` beside the clone.
    """
    env = os.environ.get("COMPOT_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    path = path.expanduser().resolve()
    if not path.is_dir():
        source = "COMPOT_DATA" if env else "default <repo>/../shared/data"
        pytest.fail(
            f"reference data directory not found: {path} (from {source}); "
            "expected a folder holding nb-mvl/, mo-mlearn/, nbmo-mvl/. "
            "Put shared/ beside the repository or set COMPOT_DATA.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def client():
    """A Dask client on a 2-worker LocalCluster (compot.execution.client_for), per module."""
    from compot.execution import client_for
    with client_for(n_workers=2) as c:
        yield c
