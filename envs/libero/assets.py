"""Installing LIBERO's meshes and textures from an archive or a folder.

PyPI's ``hf-libero`` ships LIBERO without its ``assets/`` folder and would download it on
first use; machines without internet need it installed from a file. An install is
atomic: files are unpacked into a scratch folder beside the destination, checked, given a
marker describing them, and only then renamed into place. A folder without the marker is
never treated as installed, so an interrupted install cannot look complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from envs.errors import UserInputError
from envs.libero.home import ASSETS_MARKER, AssetsInfo, assets_dir, harness_home, installed_assets

# Folders every LIBERO scene draws from; an assets tree missing one is not LIBERO's.
REQUIRED_SUBDIRS = (
    "scenes",
    "textures",
    "stable_scanned_objects",
    "stable_hope_objects",
    "turbosquid_objects",
    "articulated_objects",
)

ASSETS_ENV_VAR = "EVALHARNESS_LIBERO_ASSETS"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def tree_sha256(root: Path) -> tuple[str, int]:
    """A content hash of a folder (relative paths and file bytes), and its file count.

    Results record it so a number can be traced to the exact meshes and textures that
    rendered the policy's images. The install marker itself is excluded.
    """
    digest = hashlib.sha256()
    count = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != ASSETS_MARKER):
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0" + file_sha256(path).encode() + b"\n")
        count += 1
    return digest.hexdigest(), count


def read_sha256_file(archive: Path) -> str | None:
    """The expected checksum from ``<archive>.sha256`` (sha256sum format), if present."""
    sidecar = archive.with_name(archive.name + ".sha256")
    if not sidecar.is_file():
        return None
    first = sidecar.read_text().split()
    if not first or len(first[0]) != 64:
        raise UserInputError(f"checksum file {sidecar} is malformed; expected '<64 hex digits>  <name>'")
    return first[0].lower()


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    home = harness_home()
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _find_assets_root(folder: Path) -> Path:
    """The folder holding ``scenes/`` etc.: the given one or its single ``assets/`` child."""
    for candidate in (folder, folder / "assets"):
        if all((candidate / sub).is_dir() for sub in REQUIRED_SUBDIRS):
            return candidate
    missing = [s for s in REQUIRED_SUBDIRS if not (folder / s).is_dir() and not (folder / "assets" / s).is_dir()]
    raise UserInputError(
        f"{folder} does not look like LIBERO's assets folder; missing: {', '.join(missing)}"
    )


def _clear_scratch(home: Path) -> None:
    for stale in home.glob(".libero-assets.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in home.glob(".libero-assets.old-*"):
        shutil.rmtree(stale, ignore_errors=True)


def install_assets(source: Path | str | None = None, *, force: bool = False) -> AssetsInfo:
    """Install LIBERO's assets from a ``.tar.gz`` archive or an ``assets/`` folder.

    Idempotent: an archive whose checksum matches the installed one is not unpacked again
    (unless ``force``). With no source, an existing complete install is accepted, then
    ``$EVALHARNESS_LIBERO_ASSETS`` is tried; otherwise the error says what to pass.
    """
    if source is None:
        current = installed_assets()
        if current is not None and not force:
            return current
        from_env = os.environ.get(ASSETS_ENV_VAR)
        if not from_env:
            raise UserInputError(
                "no LIBERO assets are installed and no source was given; pass --assets PATH "
                f"(a libero-assets.tar.gz or an assets/ folder) or set {ASSETS_ENV_VAR}"
            )
        source = from_env
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise UserInputError(f"assets source {str(source)!r} does not exist; pass a .tar.gz archive or a folder")

    with _install_lock():
        home = harness_home()
        _clear_scratch(home)
        archive_sha = None
        if source.is_file():
            expected = read_sha256_file(source)
            archive_sha = file_sha256(source)
            if expected is not None and expected != archive_sha:
                raise UserInputError(
                    f"checksum mismatch for {source}: expected {expected}, got {archive_sha}; "
                    "the archive is corrupt or not the one its .sha256 describes"
                )
            current = installed_assets()
            if current is not None and current.archive_sha256 == archive_sha and not force:
                return current

        scratch = home / f".libero-assets.partial-{os.getpid()}"
        scratch.mkdir(parents=True)
        try:
            if source.is_file():
                mode = "r:gz" if source.name.endswith((".gz", ".tgz")) else "r:*"
                try:
                    with tarfile.open(source, mode) as tar:
                        tar.extractall(scratch, filter="data")
                except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                    reason = " ".join(str(exc).split())
                    raise UserInputError(f"cannot unpack {source}: {reason}; expected a LIBERO assets .tar.gz") from None
                root = _find_assets_root(scratch)
            else:
                root = _find_assets_root(source)
                shutil.copytree(root, scratch / "assets", symlinks=False)
                root = scratch / "assets"
            tree_sha, count = tree_sha256(root)
            info = {
                "tree_sha256": tree_sha,
                "archive_sha256": archive_sha,
                "source": str(source),
                "files": count,
            }
            (root / ASSETS_MARKER).write_text(json.dumps(info, indent=2) + "\n")
            final = assets_dir()
            if final.exists():
                old = home / f".libero-assets.old-{os.getpid()}"
                os.replace(final, old)
                os.replace(root, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(root, final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    result = installed_assets()
    assert result is not None
    return result
