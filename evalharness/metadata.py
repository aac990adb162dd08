"""What a result must carry to be traceable: versions, machine, assets, code revision.

lm-evaluation-harness's habit: every results file records how it was made, so a number
can always be traced and compared like for like (MuJoCo's version alone moves scores).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

PACKAGES = ("mujoco", "robosuite", "hf-libero", "torch", "numpy", "gymnasium", "hydra-core", "evalharness")
SIMULATOR_PACKAGES = ("mujoco", "robosuite", "hf-libero")  # what an episode's outcome depends on


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.cache
def git_revision() -> str | None:
    """The harness checkout's commit (with ``-dirty`` when it has local changes)."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
        "render_backend": os.environ.get("MUJOCO_GL"),
    }


# Archives known to differ from LIBERO's original assets (shared/libero-assets.md).
KNOWN_ASSET_NOTES = {
    "4debe991b6d9f76b2648bc14dfd8cb9c46a2ad4dd367b272dc2a7f212e202d36": (
        "libero-assets.tar.gz with 30 visual stand-ins (meshes/textures rebuilt; physics unchanged): "
        "images differ from original LIBERO, so vision-policy scores may too"
    ),
}


def assets() -> dict[str, Any] | None:
    from envs.libero.home import installed_assets

    info = installed_assets()
    if info is None:
        return None
    return {
        "tree_sha256": info.tree_sha256,
        "archive_sha256": info.archive_sha256,
        "files": info.files,
        "note": KNOWN_ASSET_NOTES.get(info.archive_sha256 or ""),
    }


def simulator_identity() -> dict[str, Any]:
    """The simulator versions and assets checksum: every process that runs episodes of one
    run must have the same (the Ray runner checks each node against the driver)."""
    versions = package_versions()
    return {**{k: versions[k] for k in SIMULATOR_PACKAGES}, "assets": (assets() or {}).get("tree_sha256")}


def run_metadata() -> dict[str, Any]:
    return {
        "versions": package_versions(),
        "harness_revision": git_revision(),
        "assets": assets(),
        "machine": machine(),
    }
