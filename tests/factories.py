"""Builders for test data shared by several test files (one place lists a record's fields)."""

from __future__ import annotations

import itertools
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
