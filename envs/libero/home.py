"""Where the harness keeps LIBERO's state on a machine, and LIBERO's config file.

LIBERO reads ``$LIBERO_CONFIG_PATH/config.yaml`` on import and calls ``input()`` when it
is missing, which hangs CI and worker processes. The harness owns one directory (its
"home") holding that config and the installed assets, and points ``LIBERO_CONFIG_PATH``
at it before LIBERO is ever imported.

Home is ``$EVALHARNESS_HOME`` when set, else ``$XDG_DATA_HOME/evalharness``, else
``~/.local/share/evalharness``.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

ASSETS_MARKER = ".evalharness-assets.json"


def harness_home() -> Path:
    """The directory the harness owns for LIBERO config and assets."""
    explicit = os.environ.get("EVALHARNESS_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return (Path(data) / "evalharness").resolve()


def assets_dir() -> Path:
    """Where installed LIBERO assets live (complete only when the marker file is present)."""
    return harness_home() / "libero-assets"


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
        tmp = cfg_dir / f".config.yaml.{os.getpid()}.tmp"
        tmp.write_text(yaml.safe_dump(wanted, sort_keys=True))
        os.replace(tmp, path)
    os.environ["LIBERO_CONFIG_PATH"] = str(cfg_dir)
    return path


@dataclass(frozen=True)
class AssetsInfo:
    """What is known about the installed assets (from the marker written at install)."""

    path: str
    tree_sha256: str
    archive_sha256: str | None
    source: str
    files: int


def installed_assets() -> AssetsInfo | None:
    """The installed assets' description, or None when no complete install exists."""
    marker = assets_dir() / ASSETS_MARKER
    if not marker.is_file():
        return None
    data = json.loads(marker.read_text())
    return AssetsInfo(path=str(assets_dir()), **data)
