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

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from evalharness.results.jsonl import StoreWarning, append_line, read_locked, repair, split_lines
from evalharness.results.records import EpisodeRecord

__all__ = ["EPISODES_FILENAME", "ResultStore", "StoreScan", "StoreWarning"]

EPISODES_FILENAME = "episodes.jsonl"


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
            repair(self.path)

    # -- writing -------------------------------------------------------------------------

    def append(self, record: EpisodeRecord) -> None:
        """Durably append one record as one line (atomic with respect to crashes)."""
        if self.readonly:
            raise PermissionError(f"result store {self.path} was opened read-only")
        if not isinstance(record, EpisodeRecord):
            raise TypeError(f"expected an EpisodeRecord, got {type(record).__name__}")
        append_line(self.path, (record.to_json_line() + "\n").encode("utf-8"))

    # -- reading -------------------------------------------------------------------------

    def scan(self) -> StoreScan:
        """Read the whole store: deduplicated records plus what was skipped and why."""
        lines, torn_tail = split_lines(self.path, read_locked(self.path))
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

