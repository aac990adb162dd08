"""Run metadata: versions recorded, and results made with stand-in assets say so."""

from __future__ import annotations

from envs.libero.home import AssetsInfo
from evalharness import metadata


def _info(archive_sha: str | None) -> AssetsInfo:
    return AssetsInfo(path="/x", tree_sha256="t" * 64, archive_sha256=archive_sha, source="/x.tar.gz", files=3)


def test_stand_in_archive_is_flagged(monkeypatch):
    sha = next(iter(metadata.KNOWN_ASSET_NOTES))
    monkeypatch.setattr("envs.libero.home.installed_assets", lambda: _info(sha))
    recorded = metadata.assets()
    assert recorded["archive_sha256"] == sha and recorded["tree_sha256"] == "t" * 64
    assert "30 visual stand-ins" in recorded["note"]


def test_other_assets_carry_no_note(monkeypatch):
    monkeypatch.setattr("envs.libero.home.installed_assets", lambda: _info("0" * 64))
    assert metadata.assets()["note"] is None
    monkeypatch.setattr("envs.libero.home.installed_assets", lambda: None)
    assert metadata.assets() is None


def test_versions_cover_what_results_depend_on():
    versions = metadata.package_versions()
    for name in ("python", "mujoco", "robosuite", "hf-libero", "torch", "numpy"):
        assert versions[name], name
    assert versions["mujoco"] == "3.3.2" and versions["robosuite"].startswith("1.4.")
