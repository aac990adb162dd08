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
