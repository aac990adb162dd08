"""A results folder that runs out of space: one line, a valid store, and a run that resumes.

Why this module: a week-long run eventually meets a full disk or a file-size limit. The
OS reports it as ``ENOSPC`` (no space), ``EDQUOT`` (quota) or ``EFBIG`` (file too large,
e.g. ``ulimit -f``) from whichever write hits it first: an append to ``episodes.jsonl``,
an atomic summary write, or ffmpeg filming an episode in a worker. Each place turns it
into the same :class:`DiskFull`, a :class:`UserInputError` (freeing space is the user's
fix), so the run stops with one line naming the folder and the cause:

    evalharness: error: results folder /data/run: no space left on device (ENOSPC) while
    appending to episodes.jsonl; free space there and rerun the same command to resume

It is deliberately not an ``OSError``: runners treat an ``OSError`` from a pipe as a dead
worker, and the stop must reach the entry point. A video that cannot be written does not
cost its episode: the episode is recorded with ``video: null`` and a ``video_not_written``
event (see :mod:`evalharness.episode.video_selection`), and the run then stops the same way, since the
next write would fail too.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalharness.errors import UserInputError
from evalharness.results.records import EpisodeRecord

__all__ = [
    "DISK_FULL_ERRNOS",
    "DiskFull",
    "VIDEO_NOT_WRITTEN",
    "disk_full_cause",
    "disk_full_in_events",
    "space_cause",
    "check_record",
    "stop_when_disk_full",
    "video_event",
]

DISK_FULL_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                    errno.EFBIG: "file too large"}
# What the same causes look like in a message that lost its errno (ffmpeg's stderr, as
# imageio reports it), in the words of strerror().
_MESSAGES = {os.strerror(code): code for code in DISK_FULL_ERRNOS}
_NEARLY_FULL_BYTES = 1 << 20
#: Prefix of the event recorded with an episode whose video could not be written.
VIDEO_NOT_WRITTEN = "video_not_written"


class DiskFull(UserInputError):
    """The results folder is out of space (or over a size limit); the run stopped."""

    def __init__(self, folder: str | os.PathLike[str], cause: str, what: str) -> None:
        super().__init__(
            f"results folder {folder}: {cause} while {what}; free space there and rerun the same command to resume"
        )


def disk_full_cause(exc: BaseException) -> str | None:
    """``"no space left on device (ENOSPC)"`` etc. when ``exc`` (or its cause) is a full disk."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "errno", None)
        if code in DISK_FULL_ERRNOS:
            return _cause(code)
        text = str(current)
        for message, code in _MESSAGES.items():
            if message in text:
                return _cause(code)
        current = current.__cause__ or current.__context__
    return None


def space_cause(path: str | os.PathLike[str]) -> str | None:
    """Whether a write to ``path`` failed for lack of space, judged from the outside.

    For writers that lose the errno: ffmpeg reports ENOSPC on its own stderr and dies
    (imageio then raises a bare broken pipe), and dies of SIGXFSZ at a ``ulimit -f``. So:
    under 1 MiB free on the filesystem, or the file at the size limit. Call it before the
    partial file is deleted (deleting frees the space).
    """
    import resource

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    free = (stats.f_bfree if os.geteuid() == 0 else stats.f_bavail) * stats.f_frsize
    if free < _NEARLY_FULL_BYTES:
        return _cause(errno.ENOSPC)
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if limit != resource.RLIM_INFINITY and size >= limit - _NEARLY_FULL_BYTES:
        return _cause(errno.EFBIG)
    return None


def video_event(exc: BaseException, partial: str | os.PathLike[str] | None = None) -> str:
    """The event recorded with an episode whose video ``exc`` kept from being written.

    ``partial`` is the file being written, checked with :func:`space_cause` when the
    exception does not say why.
    """
    cause = disk_full_cause(exc) or (space_cause(partial) if partial is not None else None)
    if cause is None:
        lines = str(exc).strip().splitlines()
        cause = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return f"{VIDEO_NOT_WRITTEN}: {cause}"


def _cause(code: int) -> str:
    return f"{DISK_FULL_ERRNOS[code]} ({errno.errorcode[code]})"


def _causes() -> list[str]:
    return [_cause(code) for code in DISK_FULL_ERRNOS]


def disk_full_in_events(events: list[str]) -> str | None:
    """The disk-full cause in a record's ``video_not_written`` event, if there is one."""
    prefix = f"{VIDEO_NOT_WRITTEN}: "
    for event in events:
        if event.startswith(prefix) and event[len(prefix) :] in _causes():
            return event[len(prefix) :]
    return None


@contextlib.contextmanager
def stop_when_disk_full(folder: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn a full-disk ``OSError`` raised inside the block into :class:`DiskFull`."""
    try:
        yield
    except OSError as exc:
        cause = disk_full_cause(exc)
        if cause is None:
            raise
        raise DiskFull(Path(folder), cause, what) from None


def check_record(folder: str | os.PathLike[str], record: EpisodeRecord) -> None:
    """Stop the run after storing a record whose video failed for lack of space."""
    if record.video is None:
        cause = disk_full_in_events(record.events)
        if cause is not None:
            raise DiskFull(Path(folder), cause, f"filming episode {record.key} (recorded without its video)")
