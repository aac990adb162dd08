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
from collections.abc import Mapping
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


# Archives known to differ from LIBERO's original assets (docs/reference/libero-assets.md): the
# project's offline archive, with 22 visual stand-ins (17 of them among the files LIBERO loads).
KNOWN_ASSET_NOTES = {
    "4debe991b6d9f76b2648bc14dfd8cb9c46a2ad4dd367b272dc2a7f212e202d36": (
        "the offline stand-in archive libero-assets.tar.gz: 22 visual stand-ins (meshes/textures rebuilt), "
        "17 of them among the files the 130 tasks load; physics unchanged"
    ),
}
# How many differing files a summary.md footnote names (summary.json lists them all).
FOOTNOTE_FILES = 5


def assets() -> dict[str, Any]:
    """Which assets a run uses and how they compare with LIBERO's originals (the manifest).

    ``provenance`` is ``original`` or ``modified: N files differ`` (``differs`` lists them);
    ``loaded_sha256`` digests every loaded file as found and goes into the run's context, so
    a run on other assets never reuses episodes. Raises a one-line error when the assets are
    not set up or a loaded file is missing.
    """
    from envs.libero.manifest import manifest_sha256, verified_assets

    info, verification = verified_assets()
    note = KNOWN_ASSET_NOTES.get(info.archive_sha256 or "")
    source = info.source if note is None else f"{info.source}: {note}"
    return {
        "provenance": verification.provenance,
        "differs": list(verification.differ),
        "source": source,
        "kind": info.kind,
        "path": info.path,
        "archive_sha256": info.archive_sha256,
        "files": verification.checked,
        "loaded_sha256": verification.loaded_sha256,
        "manifest_sha256": manifest_sha256(),
    }


def assets_footnote(recorded: Mapping[str, Any] | None) -> str | None:
    """The caveat a table carries when the run's assets differ from LIBERO's originals, else None."""
    if not recorded or not recorded.get("differs"):
        return None
    differs = recorded["differs"]
    named = ", ".join(differs[:FOOTNOTE_FILES]) + (", ..." if len(differs) > FOOTNOTE_FILES else "")
    return (
        f"{recorded['provenance']} from LIBERO's originals ({named}; all in summary.json); source: "
        f"{recorded['source']}. Images differ from original LIBERO, so vision-policy scores may too."
    )


def env_behaviour() -> dict[str, str]:
    """What the env does, beyond package versions, that an outcome depends on: which moment
    of a control step its frames show (envs.libero.sampled_scene)."""
    from envs.libero.sampled_scene import FRAME_TIMING

    return {"frames": FRAME_TIMING}


def simulator_identity() -> dict[str, Any]:
    """The simulator versions, assets checksum and env behaviour: every process that runs
    episodes of one run must have the same (the Ray runner checks each node against the driver)."""
    versions = package_versions()
    return {**{k: versions[k] for k in SIMULATOR_PACKAGES}, "assets": assets()["loaded_sha256"], "env": env_behaviour()}


def run_metadata() -> dict[str, Any]:
    return {
        "versions": package_versions(),
        "harness_revision": git_revision(),
        "assets": assets(),
        "env": env_behaviour(),
        "machine": machine(),
    }
