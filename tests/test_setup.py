"""Non-interactive LIBERO setup: config file, atomic and idempotent asset install."""

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


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALHARNESS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(assets_mod.ASSETS_ENV_VAR, raising=False)
    return tmp_path / "home"


def make_fake_assets(root: Path) -> Path:
    """A tiny folder with LIBERO's assets layout (the real archive is 125 MB)."""
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


def test_install_from_archive_is_idempotent(home, tmp_path):
    archive = make_archive(tmp_path)
    first = assets_mod.install_assets(archive)
    assert (assets_dir() / "scenes" / "file.txt").read_text() == "scenes"
    assert first.files == len(assets_mod.REQUIRED_SUBDIRS)
    marker_mtime = (assets_dir() / ASSETS_MARKER).stat().st_mtime_ns
    second = assets_mod.install_assets(archive)
    assert second == first
    assert (assets_dir() / ASSETS_MARKER).stat().st_mtime_ns == marker_mtime  # not unpacked again
    assert not list(home.glob(".libero-assets.*"))


def test_install_from_folder(home, tmp_path):
    folder = make_fake_assets(tmp_path / "f")
    info = assets_mod.install_assets(folder)
    assert info.archive_sha256 is None
    assert (assets_dir() / "textures" / "file.txt").exists()


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
    with pytest.raises(UserInputError, match="pass --assets PATH"):
        assets_mod.install_assets(None)
    with pytest.raises(UserInputError, match="does not exist"):
        assets_mod.install_assets(home / "nope.tar.gz")


def test_wrong_layout_is_rejected(home, tmp_path):
    (tmp_path / "x" / "scenes").mkdir(parents=True)
    with pytest.raises(UserInputError, match="missing: textures"):
        assets_mod.install_assets(tmp_path / "x")


def test_importing_libero_never_prompts(home, tmp_path):
    """A fresh home: LIBERO must import with stdin closed (it calls input() without config)."""
    assets_mod.install_assets(make_archive(tmp_path))
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

    archive = make_archive(tmp_path)
    assert main(["setup", "--assets", str(archive)]) == 0
    assert "ready" in capsys.readouterr().out
    assert main(["setup"]) == 0  # already installed: accepted without a path
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    assert main(["setup", "--assets", str(bad), "--force"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evalharness: error: cannot unpack") and "\n" not in err
