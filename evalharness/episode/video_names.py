"""One video file name per episode, and the plan-time proof that no two episodes share one.

A name says what the episode is, so a user can find it in ``videos/`` without the record:

- an unperturbed episode (a ``perturb=none`` run, or the clean twin of a perturbed one)
  keeps the name it always had, ``<suite>_t<task>_<task name>_init<state>_<outcome>.mp4``,
  so a resumed run folder stays valid;
- a perturbed episode adds its seed, its dimensions with their levels and a short digest
  of its perturbation (the dimensions' configs and the parameters drawn from the seed):
  ``..._init000_s7_camera-L1.light-L3_p1a2b3c4d_failure.mp4``. The digest is what tells
  apart two episodes of the same task, init state and level that drew other parameters
  (runs with other dimension settings sharing a folder, a replay with recorded params).

Outcome is only known at the end, so uniqueness is a property of the name without it
(:func:`video_stem`). :func:`check_unique_video_names` runs when the plan is built
(:func:`evalharness.episode.video_selection.video_decisions`): a collision is a harness bug, found
before any episode runs instead of as an overwritten video after the run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from evalharness.plan.spec import EpisodeSpec
from evalharness.episode.video import video_filename

__all__ = ["VideoNameCollision", "check_unique_video_names", "perturbation_tag", "video_name", "video_stem"]

DIGEST_CHARS = 8  # hex characters of the perturbation's sha256 in a name
_PROBE = "success"  # any outcome: names differ only in it, so the stem drops it


class VideoNameCollision(RuntimeError):
    """Two planned episodes would write the same video file (a bug in the naming)."""


def perturbation_digest(perturbation: str) -> str:
    return hashlib.sha256(perturbation.encode()).hexdigest()[:DIGEST_CHARS]


def perturbation_tag(spec: EpisodeSpec) -> str | None:
    """``camera-L1.light-L3_p<digest>`` for a perturbed spec, None for an unperturbed one."""
    if spec.perturbation is None:
        return None
    parts = json.loads(spec.perturbation)["parts"]
    dims = ".".join(f"{name}-L{cfg.get('level')}" for name, cfg in sorted(parts.items()))
    return f"{dims}_p{perturbation_digest(spec.perturbation)}"


def video_name(spec: EpisodeSpec, outcome: str) -> str:
    """The file name (under ``videos/``) of ``spec``'s video, given how it ended."""
    tag = perturbation_tag(spec)
    return video_filename(
        spec.suite, spec.task_index, spec.task_name, spec.init_state, outcome,
        seed=None if tag is None else spec.seed, tag=tag,
    )


def video_stem(spec: EpisodeSpec) -> str:
    """The name without its outcome: what must be unique among a run's episodes."""
    return video_name(spec, _PROBE).removesuffix(f"_{_PROBE}.mp4")


def check_unique_video_names(specs: Iterable[EpisodeSpec]) -> None:
    """Raise :class:`VideoNameCollision` if two planned episodes (keys) share a video name."""
    owner: dict[str, EpisodeSpec] = {}
    for spec in specs:
        stem = video_stem(spec)
        other = owner.setdefault(stem, spec)
        if other.key != spec.key:
            raise VideoNameCollision(
                f"bug: planned episodes {other.key} and {spec.key} would write the same video "
                f"videos/{stem}_<outcome>.mp4 (one would overwrite the other); no episode was run"
            )
