"""Crash-safe append-only JSON-lines files: the mechanics shared by the run's logs.

The episode store (``episodes.jsonl``) and the raw-output sidecar (``raw_outputs.jsonl``)
follow the same rules, so they share this code:

- one line is one ``os.write`` on an ``O_APPEND`` descriptor, then ``fsync``: a crash
  loses at most the line being written;
- a torn final line (no newline: a crash or a full disk mid-write) is truncated away by
  the next writer before it appends, so a new line never glues onto the fragment;
  readers ignore it with a :class:`StoreWarning`;
- every append holds an exclusive ``flock``, every read a shared one, so concurrent
  processes cannot interleave lines (not reliable on some network filesystems).
"""

from __future__ import annotations

import fcntl
import os
import warnings
from pathlib import Path

from evalharness.results.atomic import fsync_dir

__all__ = ["StoreWarning", "append_line", "read_locked", "repair", "split_lines"]

_EXCERPT = 120


class StoreWarning(UserWarning):
    """A log held something it did not write cleanly (ignored or repaired)."""


def _open_for_append(path: Path) -> int:
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    if created:
        fsync_dir(path.parent)  # make the new directory entry durable too
    return fd


def _repair_torn_tail(fd: int, path: Path, stacklevel: int) -> int:
    """Truncate a final line lacking its newline; return the (new) size. Needs the lock held."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    keep = _end_of_last_complete_line(fd, size)
    fragment = os.pread(fd, min(size - keep, _EXCERPT), keep)
    os.ftruncate(fd, keep)
    os.fsync(fd)
    warnings.warn(
        f"{path}: removed a torn final line ({size - keep} bytes, from an "
        f"interrupted write) starting {fragment.decode('utf-8', 'replace')!r}",
        StoreWarning,
        stacklevel=stacklevel,
    )
    return keep


def repair(path: Path) -> None:
    """Create ``path`` if needed and remove a torn final line (what a writer does on open)."""
    fd = _open_for_append(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _repair_torn_tail(fd, path, stacklevel=4)
    finally:
        os.close(fd)  # closing releases the lock


def append_line(path: Path, data: bytes) -> None:
    """Durably append ``data`` (one line, ending in a newline) to ``path``."""
    fd = _open_for_append(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # Another process may have crashed mid-line since the file was opened.
        size = _repair_torn_tail(fd, path, stacklevel=4)
        try:
            view = memoryview(data)
            while view:
                # A short write means the disk (or a size limit) is full; writing the rest
                # raises with the cause (ENOSPC, EFBIG) instead of guessing it.
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            # Remove the fragment so the file stays clean and the next line starts on a
            # line of its own (shrinking a file needs no space).
            os.ftruncate(fd, size)
            raise OSError(exc.errno, f"{exc.strerror}: appending to {path}; the partial line was removed") from exc
    finally:
        os.close(fd)


def read_locked(path: Path) -> bytes:
    """The whole file (b"" when missing), read under a shared lock so lines are whole."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return b""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits for an append in progress
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def split_lines(path: Path, data: bytes, stacklevel: int = 3) -> tuple[list[bytes], bool]:
    """The complete lines of ``data``, and whether a torn final line was dropped (with a warning)."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the data ends with a newline (or is empty)
    if tail:
        warnings.warn(
            f"{path}: ignoring a torn final line without a newline ({len(tail)} "
            f"bytes) starting {tail[:_EXCERPT].decode('utf-8', 'replace')!r}",
            StoreWarning,
            stacklevel=stacklevel,
        )
    return lines, bool(tail)


def _end_of_last_complete_line(fd: int, size: int, block: int = 1 << 16) -> int:
    """Offset just past the last newline before ``size`` (0 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - block)
        chunk = os.pread(fd, end - start, start)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            return start + idx + 1
        end = start
    return 0
