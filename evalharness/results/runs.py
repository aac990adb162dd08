"""Load a run for the readers (table, gate, report): its summary and its episode records.

A reader is pointed at a run folder or at a ``summary.json`` file. It needs the summary
(typed, :class:`~evalharness.results.schema.Summary`) and, when they are there, the
episode records (the gate pairs episodes, the report lists them). A run can be read while
it is still going: ``summary.json`` is written only when a run ends, so when it is
missing, or when ``episodes.jsonl`` already holds episodes the summary does not count,
the summary is rebuilt from the records (with the plan and the metadata from
``run.json``) and the run is flagged ``partial`` with the reason. Nothing is written.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalharness.errors import UserInputError
from evalharness.results.records import EpisodeRecord
from evalharness.results.schema import Summary, parse_summary
from evalharness.results.store import EPISODES_FILENAME, ResultStore, StoreWarning
from evalharness.results.summary import build_summary

__all__ = ["LoadedRun", "load_run", "load_runs", "run_label"]

SUMMARY_FILENAME = "summary.json"
RUN_FILENAME = "run.json"


@dataclass
class LoadedRun:
    """One run as the readers see it."""

    source: str  # what the user named (for messages)
    run_dir: Path
    summary: Summary
    records: list[EpisodeRecord] | None  # None when the folder has no episodes.jsonl
    partial: str | None = None  # why the run is still in progress, None when finished
    warnings: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def protocol_name(self) -> str:
        protocol = self.summary.metadata.protocol or {}
        return str(protocol.get("name", "unknown"))


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); is it a {what}?") from None
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror}") from None


def _read_records(run_dir: Path) -> tuple[list[EpisodeRecord] | None, list[str]]:
    if not (run_dir / EPISODES_FILENAME).is_file():
        return None, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StoreWarning)
        records = ResultStore(run_dir, readonly=True).records()
    return records, [str(w.message) for w in caught if issubclass(w.category, StoreWarning)]


def _metadata_from_run_json(run_info: dict[str, Any]) -> dict[str, Any]:
    """What run.json tells about a run whose summary is not written yet."""
    inputs = run_info.get("context_inputs") or {}
    config = run_info.get("config") or {}
    meta: dict[str, Any] = {
        "run_name": config.get("run_name"),
        "context": run_info.get("context"),
        "protocol": inputs.get("protocol"),
        "policy": inputs.get("policy"),
        "config": config,
        "camera_size": inputs.get("camera_size"),
        "versions": inputs.get("simulator"),
    }
    if inputs.get("assets"):
        meta["assets"] = {"tree_sha256": inputs["assets"]}
    return {k: v for k, v in meta.items() if v is not None}


def _planned(run_info: dict[str, Any]) -> set[str] | None:
    """The planned episode keys, rebuilt from run.json by the function the run planned with."""
    from evalharness.plan.build import plan_from_config

    config = run_info.get("config") or {}
    protocol = (run_info.get("context_inputs") or {}).get("protocol") or {}
    try:
        plan = plan_from_config(config.get("suite") or {}, config.get("perturb"), protocol.get("seed", 0),
                                run_info["context"])
    except (KeyError, TypeError, UserInputError):
        return None
    return {spec.key for spec in plan}


def _same_counts(summary: Summary, records: list[EpisodeRecord]) -> bool:
    outcomes = Counter(r.outcome for r in records)
    t = summary.totals
    return (t.recorded, t.successes, t.errors) == (len(records), outcomes["success"], outcomes["error"])


def load_run(path: str | Path) -> LoadedRun:
    """Load a run folder or a summary.json file (see the module docstring)."""
    source = str(path)
    p = Path(path)
    if not p.exists():
        raise UserInputError(f"{source} does not exist; give a run folder (results/<run>/) or its summary.json")
    if p.is_file():
        if p.suffix != ".json":
            raise UserInputError(f"{source} is not a run folder or a summary.json file")
        summary_path, run_dir = p, p.parent
    else:
        summary_path, run_dir = p / SUMMARY_FILENAME, p
    records, store_warnings = _read_records(run_dir)
    run_json = run_dir / RUN_FILENAME
    run_info = _read_json(run_json, "run.json") if run_json.is_file() else None

    summary: Summary | None = None
    if summary_path.is_file():
        summary = parse_summary(_read_json(summary_path, "summary.json"), str(summary_path))
    elif records is None:
        raise UserInputError(f"{source} is not a run folder: it has neither {SUMMARY_FILENAME} nor {EPISODES_FILENAME}")

    partial: str | None = None
    metadata: dict[str, Any]
    if records is not None and (summary is None or not _same_counts(summary, records)):
        planned = _planned(run_info) if run_info else None
        if planned is not None:
            records = [r for r in records if r.key in planned]
        if summary is not None:
            metadata = summary.metadata.model_dump(exclude_unset=True)
            expected = summary.totals.expected_episodes
            partial = f"{EPISODES_FILENAME} holds episodes that {SUMMARY_FILENAME} does not count yet"
        else:
            metadata = _metadata_from_run_json(run_info) if run_info else {}
            expected = len(planned) if planned is not None else None
            partial = f"no {SUMMARY_FILENAME} yet"
        summary = build_summary(records, metadata, expected_episodes=expected)
        partial = f"run in progress ({partial}): {len(records)}" + (
            f" of {expected} episodes recorded" if expected is not None else " episodes recorded"
        )
    assert summary is not None
    return LoadedRun(source, run_dir, summary, records, partial, store_warnings)


def run_label(summary: Summary) -> str:
    """A row name from the policy identity: its name plus a checkpoint/model if it has one."""
    identity = summary.metadata.policy or {}
    name = str(identity.get("name") or summary.metadata.run_name or "run")
    if summary.metadata.training_step is not None:
        return f"{name} (step {summary.metadata.training_step})"
    in_memory = identity.get("in_memory")
    if isinstance(in_memory, dict) and in_memory.get("label"):
        return f"{name} ({in_memory['label']})"
    for key in ("checkpoint", "model", "path", "step"):
        value = identity.get(key)
        if value not in (None, ""):
            shown = str(value).rstrip("/").rsplit("/", 1)[-1]
            return f"{name} ({shown})"
    return name


def _is_run_folder(path: Path) -> bool:
    return (path / SUMMARY_FILENAME).is_file() or (path / EPISODES_FILENAME).is_file()


def _training_step(run_dir: Path) -> int | None:
    try:
        step = json.loads((run_dir / SUMMARY_FILENAME).read_text())["metadata"].get("training_step")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def expand_run_paths(paths: list[str]) -> list[str]:
    """Each path as given, except a folder of run folders (an ``Evaluator``'s parent), which
    becomes its runs ordered by training step (runs without one last, by name)."""
    expanded: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir() and not _is_run_folder(p):
            runs = [child for child in p.iterdir() if child.is_dir() and _is_run_folder(child)]
            if runs:
                def order(run: Path) -> tuple[bool, int, str]:
                    step = _training_step(run)
                    return (step is None, step or 0, run.name)

                expanded.extend(str(run) for run in sorted(runs, key=order))
                continue
        expanded.append(path)
    return expanded


def load_runs(paths: list[str], labels: list[str] | None = None) -> list[LoadedRun]:
    """Load several runs and give each a distinct label (``labels`` win, in order).

    A folder holding run folders (an ``Evaluator``'s parent) stands for its runs, ordered by
    training step: a learning curve (:func:`expand_run_paths`).
    """
    if not paths:
        raise UserInputError("no run given; name one or more run folders or summary.json files")
    paths = expand_run_paths(paths)
    if labels and len(labels) != len(paths):
        raise UserInputError(f"--label given {len(labels)} time(s) for {len(paths)} run(s); give one per run or none")
    runs = [load_run(p) for p in paths]
    for i, run in enumerate(runs):
        run.label = labels[i] if labels else run_label(run.summary)
    counts = Counter(r.label for r in runs)
    if not labels:
        for run in runs:
            if counts[run.label] > 1:
                run.label = f"{run.label} [{run.summary.metadata.run_name or run.run_dir.name}]"
    return runs
