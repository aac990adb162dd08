"""Run metadata: versions recorded, and results made with stand-in assets say so."""

from __future__ import annotations

from factories import alter_png, assets_farm

from envs.libero import assets as assets_mod
from evalharness.results import metadata

STAND_IN_ARCHIVE = next(iter(metadata.KNOWN_ASSET_NOTES))


def test_stand_in_archive_is_named_and_its_files_listed(home, tmp_path, monkeypatch):
    from envs.libero.home import AssetsInfo

    farm = assets_farm(tmp_path / "copy")
    alter_png(farm / "textures/light-gray-floor-tile.png")
    # As if this tree had been unpacked from the known stand-in archive (not on a newcomer's machine).
    info = AssetsInfo(path=str(farm), source="/x/libero-assets.tar.gz", kind="archive", archive_sha256=STAND_IN_ARCHIVE)
    monkeypatch.setattr("envs.libero.manifest.installed_assets", lambda: info)
    recorded = metadata.assets()
    assert recorded["provenance"] == "modified: 1 file differs"
    assert recorded["differs"] == ["textures/light-gray-floor-tile.png"]
    assert "stand-in archive" in recorded["source"] and recorded["source"].startswith("/x/libero-assets.tar.gz")
    note = metadata.assets_footnote(recorded)
    assert note.startswith("modified: 1 file differs from LIBERO's originals (textures/light-gray-floor-tile.png;")
    assert "stand-in archive" in note


def test_original_assets_carry_no_footnote(home):
    assets_mod.install_assets()
    recorded = metadata.assets()
    assert (recorded["provenance"], recorded["differs"], recorded["kind"]) == ("original", [], "pypi")
    assert metadata.assets_footnote(recorded) is None and metadata.assets_footnote(None) is None


def test_footnote_names_the_first_files_only():
    recorded = {"provenance": "modified: 7 files differ", "differs": [f"f{i}.png" for i in range(7)], "source": "s"}
    note = metadata.assets_footnote(recorded)
    assert "f0.png, f1.png, f2.png, f3.png, f4.png, ...; all in summary.json" in note and "f5.png" not in note


def test_versions_cover_what_results_depend_on():
    versions = metadata.package_versions()
    for name in ("python", "mujoco", "robosuite", "hf-libero", "torch", "numpy"):
        assert versions[name], name
    assert versions["mujoco"] == "3.3.2" and versions["robosuite"].startswith("1.4.")
