"""KIM collections: find, install and remove KIM items with the KIM API's
``kim-api-collections-management`` / ``kim-api-collections-info`` tools, and
the compot model driver's sources (:mod:`compot.export` writes the model
folders; this module puts them into a collection).

Installation never uses the network: the driver is installed (``install
--force``) from a clean copy of its sources *before* a model, because the
installer looks for a missing driver on openkim.org. Items go into the *user*
collection; names that exist in another collection are refused rather than
shadowed or removed.

Errors: :class:`KimInstallError` (tools missing, installer failure with its log
quoted), :class:`KimNameError` (a name taken by another collection).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import CompotError

__all__ = ["DRIVER_NAME", "MAX_NAME_LENGTH", "check_replaceable", "suggest_kim_model_name", "KimNameError", "KimInstallError", "KimItem", "driver_source_dir", "find_kim_item",
           "install_kim_driver", "install_kim_model", "remove_kim_item"]

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 127  # directory names, CMake project names, LAMMPS tokens: keep them short

#: Name of the compot KIM model driver (``kim_driver/CMakeLists.txt``). It has
#: no KIM ID: OpenKIM has not issued one.
DRIVER_NAME = "Compot_Driver"

Progress = Callable[[str], None]


class KimNameError(CompotError, ValueError):
    """Raised when a KIM item name is not a valid portable-model name
    (``<Prefix>`` or ``<Prefix>__MO_<12 digits>_<3 digits>``), when a KIM ID is
    malformed, or when a name is taken by an item of a collection other than
    the user collection (which compot would shadow or delete)."""


class KimInstallError(CompotError, RuntimeError):
    """Raised when a KIM item cannot be written, installed or removed: the KIM
    API tools are missing, the installer fails (its log is quoted), the
    driver is not installed before a model that needs it, or an output
    directory is in the way."""




@dataclass(frozen=True)
class KimItem:
    """An installed KIM item, as reported by ``kim-api-collections-info``.

    Attributes
    ----------
    name : str
    collection : str
        ``"user"``, ``"system"``, ``"environment"`` or ``"CWD"``.
    directory : Path
        The collection's directory for this item type.
    """

    name: str
    collection: str
    directory: Path


# ----------------------------------------------------------------- KIM tools
def _management_tool() -> str:
    tool = shutil.which("kim-api-collections-management")
    if tool is None:
        raise KimInstallError("kim-api-collections-management not found on PATH; install the KIM API "
                              "(Debian: apt-get install libkim-api-dev) and try again")
    return tool


def _info_tool() -> str:
    """``kim-api-collections-info`` (not on PATH: ``<prefix>/libexec/kim-api/``)."""
    mgmt = Path(os.path.realpath(_management_tool()))
    for cand in (mgmt.parent.parent / "libexec" / "kim-api" / "kim-api-collections-info",
                 Path("/usr/libexec/kim-api/kim-api-collections-info"),
                 Path("/usr/local/libexec/kim-api/kim-api-collections-info")):
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which("kim-api-collections-info")
    if found:
        return found
    raise KimInstallError(f"kim-api-collections-info not found next to {mgmt} "
                          "(expected <prefix>/libexec/kim-api/kim-api-collections-info)")


def find_kim_item(name: str) -> KimItem | None:
    """Where the KIM item ``name`` is installed (first match over model
    drivers, portable models and simulator models), or None."""
    info = _info_tool()
    for kind in ("model_drivers", "portable_models", "simulator_models"):
        with tempfile.TemporaryDirectory(prefix="compot-kim-") as cwd:  # the tool writes kim.log in its cwd
            r = subprocess.run([info, kind, "find", name], capture_output=True, text=True, cwd=cwd)
        if r.returncode != 0:
            raise KimInstallError(f"kim-api-collections-info {kind} find {name} failed: "
                                  f"{(r.stderr or r.stdout).strip()}")
        line = r.stdout.strip().splitlines()
        if line:
            parts = line[0].split(" ", 2)
            if len(parts) == 3 and parts[1] == name:
                return KimItem(name=name, collection=parts[0], directory=Path(parts[2]))
    return None


def suggest_kim_model_name(text: str, number: int = 1) -> str:
    """A valid portable-model name without a KIM ID built from ``text`` (e.g. a
    bad name), with ``_<number>`` appended when ``number > 1``.

    >>> suggest_kim_model_name("my nb-model")
    'my_nb_model'
    >>> suggest_kim_model_name("Compot_Nb__MO_123456789012_000", 2)
    'Compot_Nb_2'
    """
    base = text.split("__")[0]
    prefix = "_".join(p for p in re.split(r"[^A-Za-z0-9]+", base) if p)
    if not prefix or not prefix[0].isalpha():
        prefix = "Compot" + ("_" + prefix if prefix else "")
    prefix = prefix[: MAX_NAME_LENGTH - 8]
    return prefix if number <= 1 else f"{prefix}_{number}"


def check_replaceable(name: str) -> KimItem | None:
    item = find_kim_item(name)
    if item is not None and item.collection != "user":
        raise KimNameError(f"KIM item {name!r} already exists in the {item.collection} collection "
                           f"({item.directory}); compot installs into the user collection only and would "
                           f"shadow or remove it: choose another name, e.g. {suggest_kim_model_name(name, 2)}")
    return item


def _run_installer(args: list[str], what: str, env: dict[str, str] | None = None) -> str:
    env = {**os.environ, **(env or {})}
    env.setdefault("TMPDIR", tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix="compot-kim-") as cwd:  # KIM writes kim.log in its cwd
        r = subprocess.run([_management_tool(), *args], capture_output=True, text=True, env=env,
                           stdin=subprocess.DEVNULL, cwd=cwd)
    out = (r.stdout or "") + (r.stderr or "")
    if r.returncode != 0:
        tail = " | ".join(line.strip() for line in out.strip().splitlines()[-12:] if line.strip())
        raise KimInstallError(f"{what} failed (kim-api-collections-management {' '.join(args)}, "
                              f"exit status {r.returncode}): {tail}")
    return out


def driver_source_dir() -> Path:
    """The folder of the KIM driver's sources: the copy inside the installed
    package, or ``kim_driver/`` of a source checkout (see
    :func:`compot.sources.kim_driver_dir`).

    Raises
    ------
    KimInstallError
        When the sources are nowhere (a broken installation).
    """
    from .sources import SourcesNotFoundError, kim_driver_dir

    try:
        return kim_driver_dir()
    except SourcesNotFoundError as exc:
        raise KimInstallError(str(exc)) from None


#: files of the driver folder that an installation needs
_DRIVER_FILES = ("CMakeLists.txt", "README.md", "kimspec.edn", "LICENSE")


def install_kim_driver(driver_dir: str | os.PathLike | None = None, *, force: bool = True,
                       native: bool = False, progress: Progress | None = None) -> KimItem:
    """Build and install the compot model driver into the KIM user collection.

    The driver's sources (``*.c``, ``*.h``, ``CMakeLists.txt``,
    ``kimspec.edn``, ``LICENSE``) are copied to a scratch folder first, so a
    stray ``kim_driver/build/`` (which makes the installer fail) does not
    matter.

    Parameters
    ----------
    driver_dir : path, optional
        Default :func:`driver_source_dir`.
    force : bool
        Replace an installed driver (``install --force``); otherwise an
        installed driver is kept as it is.
    native : bool
        Build for this machine's vector units (``-march=native``, through
        ``COMPOT_NATIVE=1`` read by the driver's ``CMakeLists.txt``): faster,
        but the driver may not run on another kind of machine. Default: a
        portable build.
    progress : callable(str), optional
        Receives progress lines (default: ``logging`` at INFO).

    Returns
    -------
    KimItem
        The installed driver.
    """
    say = progress or log.info
    src = Path(driver_dir) if driver_dir is not None else driver_source_dir()
    if not (src / "CMakeLists.txt").is_file():
        raise KimInstallError(f"{src}: not a KIM model-driver folder (no CMakeLists.txt)")
    text = (src / "CMakeLists.txt").read_text(encoding="utf-8", errors="replace")
    if f"project({DRIVER_NAME}" not in text:
        raise KimInstallError(f"{src / 'CMakeLists.txt'}: expected project({DRIVER_NAME} ...)")
    existing = check_replaceable(DRIVER_NAME)
    if existing is not None and not force:
        say(f"KIM driver {DRIVER_NAME} already installed in {existing.directory}")
        return existing
    t0 = time.perf_counter()
    say(f"installing KIM driver {DRIVER_NAME} from {src} into the user collection"
        + (" (replacing the installed one)" if existing else "")
        + (", built for this machine (-march=native)" if native else ", portable build"))
    with tempfile.TemporaryDirectory(prefix="compot-kim-driver-") as tmp:
        dst = Path(tmp) / DRIVER_NAME
        dst.mkdir()
        for f in sorted(src.iterdir()):
            if f.is_file() and (f.suffix in (".c", ".h") or f.name in _DRIVER_FILES):
                shutil.copyfile(f, dst / f.name)  # follows the LICENSE link of a checkout
        _run_installer(["install", "--force", "user", str(dst)], f"installing the KIM driver {DRIVER_NAME}",
                       env={"COMPOT_NATIVE": "1" if native else "0"})
    item = find_kim_item(DRIVER_NAME)
    if item is None:
        raise KimInstallError(f"the installer reported success but {DRIVER_NAME} is not installed")
    say(f"installed KIM driver {DRIVER_NAME} in {item.directory} ({time.perf_counter() - t0:.1f} s)")
    return item


def install_kim_model(model_dir: str | os.PathLike, *, progress: Progress | None = None) -> KimItem:
    """Install (or re-install) the portable model in ``model_dir`` into the KIM
    user collection. Its driver must be installed already.

    Raises
    ------
    KimNameError
        The folder's item name exists in another collection.
    KimInstallError
        The driver is missing, or the installer fails.
    """
    say = progress or log.info
    model_dir = Path(model_dir).resolve()
    cmake = model_dir / "CMakeLists.txt"
    if not cmake.is_file():
        raise KimInstallError(f"{model_dir}: not a KIM portable-model folder (no CMakeLists.txt)")
    if (model_dir / "build").exists():
        raise KimInstallError(f"{model_dir / 'build'} exists; kim-api-collections-management runs "
                              "'mkdir build' in a copy of the folder and would fail: remove it")
    text = cmake.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"^\s*project\(\s*([A-Za-z0-9_]+)", text, re.MULTILINE)
    name = m.group(1) if m else model_dir.name
    d = re.search(r'DRIVER_NAME\s+"([^"]+)"', text)
    driver = d.group(1) if d else None
    if driver and find_kim_item(driver) is None:
        raise KimInstallError(f"the KIM driver {driver} of {name} is not installed; install it first "
                              "(compot export kim --install does; the KIM installer would otherwise try "
                              "openkim.org and install the model without its driver)")
    existing = check_replaceable(name)
    t0 = time.perf_counter()
    say(f"installing KIM portable model {name} from {model_dir} into the user collection"
        + (" (replacing the installed one)" if existing else ""))
    out = _run_installer(["install", "--force", "user", str(model_dir)], f"installing the KIM model {name}")
    if "Continuing with installation of the item anyway" in out:
        raise KimInstallError(f"{name}: the KIM installer did not find the driver {driver}")
    item = find_kim_item(name)
    if item is None:
        raise KimInstallError(f"the installer reported success but {name} is not installed")
    say(f"installed KIM portable model {name} in {item.directory} ({time.perf_counter() - t0:.1f} s)")
    return item


def remove_kim_item(name: str, *, missing_ok: bool = True) -> bool:
    """Remove an item from the KIM user collection (``remove --force``).

    Returns True if something was removed. Items of other collections are
    never removed (:class:`KimNameError`).
    """
    item = check_replaceable(name)
    if item is None:
        if missing_ok:
            return False
        raise KimInstallError(f"KIM item {name!r} is not installed")
    _run_installer(["remove", "--force", name], f"removing the KIM item {name}")
    return True
