"""Builders for test data shared by several test files (one place lists a record's fields)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from evalharness.results.records import EpisodeRecord

_keys = itertools.count()


def record_fields(**overrides: Any) -> dict[str, Any]:
    """Every field of a valid, successful episode record; ``overrides`` replace any of them."""
    fields: dict[str, Any] = dict(
        key="k1",
        suite="libero_10",
        task_index=3,
        task_name="put_the_bowl_on_the_plate",
        instruction="put the bowl on the plate",
        init_state=7,
        seed=0,
        success=True,
        steps=120,
        error_kind=None,
        error_message=None,
        wall_time_s=12.5,
        policy_time_s=4.0,
        env_time_s=6.0,
        render_time_s=2.0,
        video=None,
        action_fingerprint="deadbeef",
        events=[],
    )
    fields.update(overrides)
    return fields


def episode_record(**overrides: Any) -> EpisodeRecord:
    """A record with a fresh unique key unless ``key`` is given."""
    overrides.setdefault("key", f"key{next(_keys)}")
    return EpisodeRecord(**record_fields(**overrides))


# -- whole runs on disk (for the table / gate / report tests) ------------------------------


def protocol_settings(name: str = "openpi", **overrides: Any) -> dict[str, Any]:
    """A protocol preset from conf/protocol/ as a run records it, with ``overrides``."""
    from omegaconf import OmegaConf

    from evalharness.config.conf import CONF_DIR
    from evalharness.config.protocol import load_protocol

    preset = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "protocol" / f"{name}.yaml"), resolve=True)
    settings = load_protocol(preset).model_dump()
    settings.update(overrides)
    return settings


def run_metadata(policy: str = "scripted", **overrides: Any) -> dict[str, Any]:
    """Metadata of a standard run (openpi protocol, pinned simulator, original assets)."""
    protocol = overrides.get("protocol") or protocol_settings()
    meta: dict[str, Any] = {
        "versions": {"python": "3.11.7", "mujoco": "3.3.2", "robosuite": "1.4.0", "hf-libero": "0.1.4"},
        "harness_revision": "0" * 40,
        "assets": {"tree_sha256": "a" * 64, "provenance": "original", "differs": [], "source": "pypi"},
        "env": {"frames": "observation_sample"},
        "run_name": f"run-{policy}",
        "context": "c" * 64,
        "protocol": protocol,
        "policy": {"name": policy},
        "config": {"suite": {"name": "libero_object", "max_steps": None}},
        "camera_size": protocol["render_size"],
        "workers": 2,
    }
    meta.update(overrides)
    return meta


def outcomes_records(suite: str, task_index: int, outcomes: str, *, seed: int = 7, start: int = 0,
                     policy: str = "p", steps: int = 100) -> list[EpisodeRecord]:
    """One record per character of ``outcomes`` (S success, F failure, E error), init states
    ``start``, ``start+1``, ...: e.g. ``outcomes_records("libero_goal", 2, "SSF")``."""
    kinds = {"S": (True, None), "F": (False, None), "E": (False, "env_error")}
    records = []
    for i, ch in enumerate(outcomes):
        success, error = kinds[ch]
        records.append(episode_record(
            key=f"{policy}-{suite}-{task_index}-{start + i}-{seed}-{next(_keys)}", suite=suite, task_index=task_index,
            task_name=f"task_{task_index}", instruction=f"task {task_index}", init_state=start + i, seed=seed,
            success=success, steps=steps + (i % 7) * 10 if success else 2 * steps, error_kind=error,
            error_message="simulator exploded" if error else None,
        ))
    return records


def write_run(run_dir: Any, records: list[EpisodeRecord], metadata: dict[str, Any] | None = None, *,
              expected_episodes: int | None = None, summary: bool = True) -> Any:
    """A run folder as evaluate() leaves it: episodes.jsonl and (unless ``summary=False``) summary.json."""
    from pathlib import Path

    from evalharness.results.atomic import write_json_atomic
    from evalharness.results.store import ResultStore
    from evalharness.results.summary import build_summary

    run_dir = Path(run_dir)
    meta = metadata if metadata is not None else run_metadata()
    store = ResultStore(run_dir)
    for record in records:
        store.append(record)
    # run.json as evaluate() writes it first (without the suite config: these records'
    # keys are not the planner's, so a reader must not filter them by a rebuilt plan).
    inputs = {"protocol": meta.get("protocol"), "policy": meta.get("policy"), "camera_size": meta.get("camera_size"),
              "simulator": meta.get("versions"), "assets": (meta.get("assets") or {}).get("tree_sha256")}
    write_json_atomic(run_dir / "run.json", {"context": meta.get("context"), "context_inputs": inputs, "config": {}})
    if summary:
        expected = expected_episodes if expected_episodes is not None else len(records)
        write_json_atomic(run_dir / "summary.json", build_summary(records, meta, expected_episodes=expected).to_document())
    return run_dir
def assets_farm(dest: Path) -> Path:
    """A copy of the installed PyPI assets tree as symlinks (cheap): ``dest/assets``.

    Holds exactly the manifest's files, each a symlink to the wheel's original. To alter a
    file, replace its symlink with a real file; to remove one, unlink it (the originals are
    never touched).
    """
    import os

    from envs.libero.assets import REQUIRED_SUBDIRS
    from envs.libero.manifest import load_manifest
    from envs.libero.pypi_assets import pypi_assets_root

    wheels = pypi_assets_root()
    root = Path(dest) / "assets"
    for sub in REQUIRED_SUBDIRS:
        (root / sub).mkdir(parents=True, exist_ok=True)
    for rel in load_manifest():
        link = root / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(wheels / rel, link)
    return root


def alter_png(path: Path) -> None:
    """Replace a (symlinked) PNG by a real, still valid PNG with one pixel changed."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        changed = image.copy()
    pixel = changed.getpixel((0, 0))
    changed.putpixel((0, 0), tuple((c + 128) % 256 for c in pixel) if isinstance(pixel, tuple) else (pixel + 128) % 256)
    path.unlink()
    changed.save(path)
