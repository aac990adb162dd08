"""LIBERO's original asset files as a sha256 manifest, and an assets tree checked against it.

``assets-manifest.sha256`` (beside this module; regenerate it with
``scripts/assets_manifest.py``) lists exactly the files LIBERO's 130 tasks load (scene and
object XML, meshes, textures), with the sha256 of the original bytes from the PyPI wheels.
A tree is checked against it at setup, by ``doctor`` and at the start of every run:

- a **missing** file makes the tree unusable (some task would not build);
- a **different** file is allowed but changes the images, so results say
  ``modified: N files differ`` and list them, instead of ``original``.

Hashing all the files takes seconds, so the verdict for each file is cached in the
harness home, keyed by the file's size, mtime, ctime and inode; only files whose metadata
changed are hashed again (``full=True`` rehashes everything, as setup and doctor do).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from envs.errors import UserInputError
from envs.libero.home import AssetsInfo, harness_home, installed_assets, not_set_up_error, write_atomic

MANIFEST_PATH = Path(__file__).with_name("assets-manifest.sha256")
CACHE_FILE = "assets-verified.json"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def format_manifest(hashes: dict[str, str]) -> str:
    """``sha256sum`` format, sorted by path."""
    return "".join(f"{hashes[rel]}  {rel}\n" for rel in sorted(hashes))


@functools.cache
def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, str]:
    """The manifest as {relative path: sha256}."""
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        digest, rel = line.split("  ", 1)
        entries[rel] = digest
    return entries


def manifest_sha256() -> str:
    """The manifest file's own checksum: which list of originals a verdict was made against."""
    return hashlib.sha256(MANIFEST_PATH.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Verification:
    """An assets tree compared with the manifest."""

    root: str
    checked: int
    missing: tuple[str, ...]
    differ: tuple[str, ...]
    loaded_sha256: str  # digest of (path, sha256) of every manifest file as found here

    @property
    def usable(self) -> bool:
        return not self.missing

    @property
    def provenance(self) -> str:
        if not self.differ:
            return "original"
        return f"modified: {len(self.differ)} file{'s' if len(self.differ) != 1 else ''} differ{'s' if len(self.differ) == 1 else ''}"

    def problem(self) -> str | None:
        """One line naming the first missing and the first different file, or None."""
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} file(s) missing (first: {self.missing[0]})")
        if self.differ:
            parts.append(f"{len(self.differ)} file(s) differ from LIBERO's originals (first: {self.differ[0]})")
        return "; ".join(parts) or None


def _stamp(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]


def _load_cache(root: str) -> dict[str, list]:
    try:
        data = json.loads((harness_home() / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data.get("files", {}) if data.get("root") == root else {}


def _save_cache(root: str, files: dict[str, list]) -> None:
    home = harness_home()
    home.mkdir(parents=True, exist_ok=True)
    write_atomic(home / CACHE_FILE, json.dumps({"root": root, "files": files}))


def verify_tree(root: Path | str, *, full: bool = False, cache: bool = True) -> Verification:
    """Compare every manifest file under ``root`` with its original checksum.

    With ``cache`` (the default), files whose size/mtime/ctime/inode match the last check
    of this same root are not hashed again unless ``full``; the refreshed verdicts are
    stored back. A symlinked file is followed (a symlink farm is checked by content).
    """
    root_path = Path(root)
    key = os.path.abspath(root_path)
    manifest = load_manifest()
    previous = {} if (full or not cache) else _load_cache(key)
    seen: dict[str, list] = {}
    missing: list[str] = []
    differ: list[str] = []
    found: list[str] = []
    for rel, expected in manifest.items():
        path = root_path / rel
        try:
            stat = path.stat()
        except OSError:
            missing.append(rel)
            found.append(f"{rel}\0missing")
            continue
        stamp = _stamp(stat)
        cached = previous.get(rel)
        digest = cached[4] if cached is not None and cached[:4] == stamp else file_sha256(path)
        seen[rel] = [*stamp, digest]
        if digest != expected:
            differ.append(rel)
        found.append(f"{rel}\0{digest}")
    if cache:
        _save_cache(key, seen)
    loaded = hashlib.sha256("\n".join(found).encode()).hexdigest()
    return Verification(str(root_path), len(manifest), tuple(missing), tuple(differ), loaded)


def verified_assets() -> tuple[AssetsInfo, Verification]:
    """This home's assets and their verdict (cached by file metadata); what a run starts with.

    One line naming the problem when setup has not run or a loaded file is missing.
    """
    info = installed_assets()
    if info is None:
        raise not_set_up_error()
    verification = verify_tree(info.path)
    if not verification.usable:
        raise UserInputError(f"assets in {info.path} do not match LIBERO's manifest: {verification.problem()}; rerun 'evalharness setup'")
    return info, verification
