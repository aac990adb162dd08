"""Deciding which episodes get a video, and filming them while they run.

Modes: ``none``; ``all``; ``first_n`` (the first N episodes of each task); ``failures``
(every episode is filmed to a scratch file, kept only when it did not succeed, since the
outcome is known only at the end). Frames are upright agentview frames at render size.

A video that cannot be written (a full disk, ffmpeg failing) never costs the episode: the
file is deleted, the episode goes on unfilmed and its record says ``video: null`` with a
``video_not_written: <cause>`` event (:attr:`EpisodeRecorder.events`).

Videos are written under ``<run>/.scratch/`` and moved into ``videos/`` when kept. The run
removes that folder before and after its episodes (:func:`remove_scratch`), which is what
keeps half-written files out of a run folder even though the ffmpeg process filming an
episode outlives a worker that is killed (imageio starts it in its own process group).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pydantic import BaseModel, ConfigDict

from evalharness.config.fields import Count, OptionalCount
from evalharness.config.validation import validate_settings
from evalharness.plan.spec import EpisodeSpec


class VideoSettings(BaseModel):
    """The ``video`` group (``conf/video/*.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["none", "failures", "first_n", "all"]
    first_n: Count  # first_n: film this many episodes of each task
    fps: OptionalCount  # null: the protocol's video_fps


def load_video_settings(cfg: Any) -> VideoSettings:
    """The ``video`` group, validated (one line naming ``video.<key>``)."""
    return validate_settings(VideoSettings, cfg, "video")
SCRATCH_DIR = ".scratch"  # in the run folder: videos being filmed


def remove_scratch(run_dir: Path) -> None:
    """Delete the videos of episodes that did not finish (a killed run or worker).

    The folder itself goes, not only its files: a killed worker's ffmpeg may still be
    about to open its output, and without the folder it cannot create it.
    """
    shutil.rmtree(Path(run_dir) / SCRATCH_DIR, ignore_errors=True)


def video_decisions(specs: list[EpisodeSpec], mode: str, first_n: int = 1) -> dict[str, str]:
    """For each episode key: "yes", "no" or "if_failure" (``mode`` and ``first_n`` as
    :class:`VideoSettings` validated them).

    Also checks, whatever the mode, that no two planned episodes share a video name
    (:func:`evalharness.episode.video_names.check_unique_video_names`): this runs when the plan
    is built, so a collision stops the run before any episode.
    """
    from evalharness.episode.video_names import check_unique_video_names

    check_unique_video_names(specs)
    decisions: dict[str, str] = {}
    seen: dict[tuple[str, int], int] = {}
    for spec in sorted(specs, key=lambda s: (s.suite, s.task_index, s.init_state)):
        position = seen.get((spec.suite, spec.task_index), 0)
        seen[(spec.suite, spec.task_index)] = position + 1
        if mode == "all" or (mode == "first_n" and position < first_n):
            decisions[spec.key] = "yes"
        elif mode == "failures":
            decisions[spec.key] = "if_failure"
        else:
            decisions[spec.key] = "no"
    return decisions


class EpisodeRecorder:
    """Streams an episode's frames to an mp4 and keeps or drops it at the end."""

    def __init__(self, run_dir: Path, spec: EpisodeSpec, decision: str, fps: int) -> None:
        from evalharness.episode.video import EpisodeVideo

        self.run_dir = run_dir
        self.spec = spec
        self.decision = decision
        self._video = None
        self.events: list[str] = []  # a video that could not be written, for the record
        if decision != "no":
            try:
                self._video = EpisodeVideo(run_dir / SCRATCH_DIR / f"{spec.key}.mp4", fps=fps)
            except OSError as exc:  # the scratch folder cannot be created (full disk)
                self._fail(exc)
            else:
                self._video.__enter__()

    @property
    def sink(self):
        return None if self._video is None else self._add

    def _add(self, frame: np.ndarray) -> None:
        if self._video is None:
            return  # filming failed earlier in this episode: the episode goes on without it
        try:
            self._video.add_frame(frame)
        except (OSError, RuntimeError) as exc:  # ffmpeg could not write (imageio raises these)
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Drop this episode's video (never keep a partial file) and say why in the record."""
        from evalharness.results.disk_full import video_event

        video, self._video = self._video, None
        if not self.events:  # judged before the partial file is deleted (that frees space)
            self.events.append(video_event(exc, video.temp_path if video is not None else self.run_dir))
        if video is not None:
            video.abort()  # closes ffmpeg and deletes the partial file

    def finish(self, outcome) -> str | None:
        """Close the file; return its path relative to the run dir, or None if dropped."""
        from evalharness.episode.video_names import video_name

        if self._video is None:
            return None
        result = "error" if outcome.error_kind else ("success" if outcome.success else "failure")
        keep = self.decision == "yes" or (self.decision == "if_failure" and result != "success")
        video, self._video = self._video, None
        try:
            path = video.finish(keep=keep)  # deletes the partial file itself when it fails
            if path is None:
                return None
            final = self.run_dir / "videos" / video_name(self.spec, result)
            final.parent.mkdir(parents=True, exist_ok=True)
            Path(path).replace(final)
        except (OSError, RuntimeError) as exc:  # no space to finish the file, or ffmpeg failed
            self._fail(exc)
            Path(video.path).unlink(missing_ok=True)  # a finished file that could not be moved
            return None
        return final.relative_to(self.run_dir).as_posix()
