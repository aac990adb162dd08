"""The append-only episode store (``episodes.jsonl`` in the run directory).

Why a JSON-lines file and these rules:

- A run can take hours and can be killed at any moment. Each finished episode is one
  line written with a single ``os.write`` on an ``O_APPEND`` descriptor and fsynced, so
  a crash loses at most the episode being written, never an earlier one.
- A crash can still leave a *torn* final line without its newline (a full disk cannot:
  :meth:`ResultStore.append` removes its own partial line and raises the ``OSError``).
  Readers ignore it with a warning; a writer opening the store truncates it away so that
  the next line does not glue onto the fragment and corrupt a good record.
- Resume reads :meth:`ResultStore.completed_keys` and skips those episodes. Should a key
  be recorded twice anyway (two runners racing), the first line wins and the duplicates
  are counted, so a summary can never count one episode twice. The one exception is an
  *errored* episode (no verdict) that is run again on purpose (``runner.retry_errors``):
  a later line for the same key supersedes the error, so the retry's outcome counts.
- Appends take an exclusive ``flock`` on the file, so several processes appending to the
  same run cannot interleave or truncate each other's lines (the parent is the only
  writer by design; the lock makes a violation harmless rather than corrupting). Note
  that ``flock`` is not reliable on some network filesystems.
"""

from __future__ import annotations

import fcntl
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from evalharness.results.atomic import fsync_dir
from evalharness.results.records import EpisodeRecord

__all__ = ["EPISODES_FILENAME", "ResultStore", "StoreScan", "StoreWarning"]

EPISODES_FILENAME = "episodes.jsonl"

_EXCERPT = 120


class StoreWarning(UserWarning):
    """The store found (and ignored or repaired) something it did not write cleanly."""


@dataclass(frozen=True)
class StoreScan:
    """What one read of the store found.

    ``records`` are deduplicated by key in order of first appearance: the first verdict
    wins, and a later line supersedes an earlier *errored* one (a retry);
    ``duplicates`` counts the later lines dropped for repeating a key; ``corrupt_lines``
    counts complete lines that were not a valid record (skipped with a warning);
    ``torn_tail`` is True when the file ended in a partial line (ignored).
    """

    records: list[EpisodeRecord]
    duplicates: int
    corrupt_lines: int
    torn_tail: bool


class ResultStore:
    """Append-only JSONL store of :class:`EpisodeRecord` for one run directory.

    Opening the store (unless ``readonly``) creates the run directory and repairs a torn
    final line left by a crashed writer. ``readonly=True`` never modifies anything, for
    reporting on a run that may still be in progress or live on a read-only mount.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / EPISODES_FILENAME
        self.readonly = readonly
        if not readonly:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = self._open_for_append()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._repair_torn_tail(fd)
            finally:
                os.close(fd)  # closing releases the lock

    # -- writing -------------------------------------------------------------------------

    def append(self, record: EpisodeRecord) -> None:
        """Durably append one record as one line (atomic with respect to crashes)."""
        if self.readonly:
            raise PermissionError(f"result store {self.path} was opened read-only")
        if not isinstance(record, EpisodeRecord):
            raise TypeError(f"expected an EpisodeRecord, got {type(record).__name__}")
        data = (record.to_json_line() + "\n").encode("utf-8")
        fd = self._open_for_append()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # Another process may have crashed mid-line since we opened the store.
            size = self._repair_torn_tail(fd)
            try:
                view = memoryview(data)
                while view:
                    # A short write means the disk (or a size limit) is full; writing the
                    # rest raises with the cause (ENOSPC, EFBIG) instead of guessing it.
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            except OSError as exc:
                # Remove the fragment so the file stays clean and the next line starts
                # on a line of its own (shrinking a file needs no space).
                os.ftruncate(fd, size)
                raise OSError(exc.errno, f"{exc.strerror}: appending to {self.path}; the partial line was removed") from exc
        finally:
            os.close(fd)

    def _open_for_append(self) -> int:
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        if created:
            fsync_dir(self.run_dir)  # make the new directory entry durable too
        return fd

    def _repair_torn_tail(self, fd: int) -> int:
        """Truncate a final line lacking its newline; return the (new) file size.

        Must be called with the exclusive lock held.
        """
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        keep = _end_of_last_complete_line(fd, size)
        fragment = os.pread(fd, min(size - keep, _EXCERPT), keep)
        os.ftruncate(fd, keep)
        os.fsync(fd)
        warnings.warn(
            f"{self.path}: removed a torn final line ({size - keep} bytes, from an "
            f"interrupted write) starting {fragment.decode('utf-8', 'replace')!r}",
            StoreWarning,
            stacklevel=3,
        )
        return keep

    # -- reading -------------------------------------------------------------------------

    def scan(self) -> StoreScan:
        """Read the whole store: deduplicated records plus what was skipped and why."""
        data = self._read_all()
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline (or is empty)
        torn_tail = bool(tail)
        if torn_tail:
            warnings.warn(
                f"{self.path}: ignoring a torn final line without a newline ({len(tail)} "
                f"bytes) starting {tail[:_EXCERPT].decode('utf-8', 'replace')!r}",
                StoreWarning,
                stacklevel=2,
            )
        by_key: dict[str, EpisodeRecord] = {}  # insertion order = first appearance
        duplicates = 0
        corrupt: list[int] = []
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = EpisodeRecord.from_json_line(line)
            except (ValidationError, ValueError):
                corrupt.append(lineno)
                continue
            earlier = by_key.get(record.key)
            if earlier is not None and earlier.outcome != "error":
                duplicates += 1
                continue
            by_key[record.key] = record  # new, or a retry superseding an error
        if corrupt:
            shown = ", ".join(str(n) for n in corrupt[:10]) + (" ..." if len(corrupt) > 10 else "")
            warnings.warn(
                f"{self.path}: skipped {len(corrupt)} line(s) that are not valid episode "
                f"records (line {shown}); those episodes count as not run",
                StoreWarning,
                stacklevel=2,
            )
        return StoreScan(list(by_key.values()), duplicates, len(corrupt), torn_tail)

    def _read_all(self) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return b""
        try:
            # A shared lock waits for an in-progress append, so we read whole lines.
            fcntl.flock(fd, fcntl.LOCK_SH)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def records(self) -> list[EpisodeRecord]:
        """All records, deduplicated by key (see :class:`StoreScan`), in order of first appearance."""
        return self.scan().records

    def completed_keys(self) -> set[str]:
        """Keys of every recorded episode (success, failure or error), for resume."""
        return {r.key for r in self.scan().records}

    def duplicate_count(self) -> int:
        """How many lines repeat a key already recorded earlier (dropped by :meth:`records`)."""
        return self.scan().duplicates

    def __repr__(self) -> str:
        return f"ResultStore({str(self.run_dir)!r}, readonly={self.readonly})"


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
