"""The raw-output sidecar: ``raw_outputs.jsonl`` beside ``episodes.jsonl``.

One line per episode, written by the parent (the only writer of results) just *before*
the episode's record: ``{"key", "suite", "task_index", "task_name", "instruction",
"init_state", "seed", "action_fingerprint", "outputs": [...]}`` where ``outputs[i]`` is the
raw model output of query ``i`` (encoded by :mod:`evalharness.policies.raw_output_recorder`). The
line is appended like a record (:mod:`evalharness.results.jsonl`: one fsynced write under a
lock, a torn tail repaired).

Why the fingerprint is on the line: a run killed between the sidecar line and the record
leaves an orphan line, and the resumed run writes the episode again; a retried errored
episode (``runner.retry_errors``) has two records. A line belongs to the record with the
same key *and* action fingerprint. When a run opens the sidecar for writing (under the run
folder's lock) it drops lines that belong to no counted record and duplicates of one, so
a killed run resumes without duplicates; readers apply the same rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool

from evalharness.plan.spec import EpisodeSpec
from evalharness.results.atomic import write_bytes_atomic
from evalharness.results.jsonl import append_line, read_locked, split_lines
from evalharness.results.records import EpisodeRecord
from evalharness.results.store import ResultStore
from evalharness.config.validation import validate_settings

__all__ = ["RAW_OUTPUTS_FILENAME", "RawEpisode", "RawOutputLog", "RecordSettings", "load_raw_outputs", "record_settings"]

RAW_OUTPUTS_FILENAME = "raw_outputs.jsonl"
_COORDINATES = ("key", "suite", "task_index", "task_name", "instruction", "init_state", "seed", "action_fingerprint")


class RecordSettings(BaseModel):
    """The ``record`` key of the config: what a run keeps besides its records and videos."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_outputs: StrictBool = False


def record_settings(value: Any) -> RecordSettings:
    """Validate ``record``; a bad value is one line naming key, value and what is allowed."""
    return validate_settings(RecordSettings, value, "record")


@dataclass(frozen=True)
class RawEpisode:
    """One counted episode of a run (its coordinates; no context) and the raw outputs of its
    queries, in order."""

    spec: EpisodeSpec
    outputs: list[dict[str, Any]]


def _lines(path: Path) -> list[tuple[bytes, dict[str, Any]]]:
    """Complete, parseable lines with their bytes (torn or corrupt ones are skipped)."""
    lines, _ = split_lines(path, read_locked(path), stacklevel=4)
    parsed = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "key" in data and isinstance(data.get("outputs"), list):
            parsed.append((line, data))
    return parsed


def _belonging(path: Path, records: Iterable[EpisodeRecord]) -> list[tuple[bytes, dict[str, Any]]]:
    """The lines that belong to a counted record, one per record (the last one written)."""
    counted = {(r.key, r.action_fingerprint) for r in records}
    chosen: dict[tuple[str, str], tuple[bytes, dict[str, Any]]] = {}
    for line, data in _lines(path):
        pair = (data["key"], data.get("action_fingerprint"))
        if pair in counted:
            chosen.pop(pair, None)  # keep the position of the last copy
            chosen[pair] = (line, data)
    return list(chosen.values())


class RawOutputLog:
    """The writer of a run's sidecar; opening it drops orphan and duplicate lines."""

    def __init__(self, run_dir: Path, recorded: Iterable[EpisodeRecord]) -> None:
        self.path = Path(run_dir) / RAW_OUTPUTS_FILENAME
        if self.path.exists():
            original = self.path.read_bytes()
            kept = b"".join(line + b"\n" for line, _ in _belonging(self.path, recorded))
            if kept != original:
                write_bytes_atomic(self.path, kept)

    def append(self, record: EpisodeRecord, outputs: list[dict[str, Any]]) -> None:
        """Write the episode's outputs; call before its record is appended to the store."""
        line = {name: getattr(record, name) for name in _COORDINATES} | {"outputs": outputs}
        append_line(self.path, (json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n").encode())


def load_raw_outputs(run_dir: Path) -> list[RawEpisode]:
    """The counted episodes of a run folder that have recorded raw outputs."""
    records = {(r.key, r.action_fingerprint): r for r in ResultStore(run_dir, readonly=True).records()}
    episodes = []
    for _, data in _belonging(Path(run_dir) / RAW_OUTPUTS_FILENAME, records.values()):
        r = records[(data["key"], data["action_fingerprint"])]
        spec = EpisodeSpec(r.suite, r.task_index, r.task_name, r.instruction, r.init_state, r.seed, context="")
        episodes.append(RawEpisode(spec, data["outputs"]))
    return episodes
