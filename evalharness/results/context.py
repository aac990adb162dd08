"""What, besides the policy, made a run's numbers: protocol, simulator, assets, run size.

Published LIBERO numbers are only comparable under the same protocol
(docs/reference/protocols.md), and MuJoCo / robosuite versions and modified assets can move
scores too. The table states
these as footnotes and refuses to put different protocols side by side; the gate refuses
to compare across protocols and lists every other difference. Both read them from here,
so "same protocol" means the same thing to both.

"Evaluation conditions" are the protocol's settings plus what a run may override on top
(camera size, a max-steps cap): two runs with equal conditions ran the same episodes the
same way, whatever policy they evaluated.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalharness.results.schema import Summary

__all__ = [
    "STANDARD_EPISODES_PER_TASK",
    "ContextItem",
    "compare_contexts",
    "conditions",
    "conditions_key",
    "describe_conditions",
    "run_notes",
    "version_notes",
]

STANDARD_EPISODES_PER_TASK = 50  # every published protocol: init states 0..49
SIMULATOR_PACKAGES = (("mujoco", "MuJoCo"), ("robosuite", "robosuite"), ("hf-libero", "LIBERO"))


def _suite_cfg(summary: Summary) -> dict[str, Any]:
    return ((summary.metadata.config or {}).get("suite") or {}) if summary.metadata.config else {}


def conditions(summary: Summary) -> dict[str, Any]:
    """The evaluation conditions of a run (see the module docstring)."""
    protocol = summary.metadata.protocol
    render = (protocol or {}).get("render_size")
    return {
        "protocol": protocol,
        "camera_size": summary.metadata.camera_size if summary.metadata.camera_size is not None else render,
        "max_steps_cap": _suite_cfg(summary).get("max_steps"),
    }


def conditions_key(summary: Summary) -> str:
    return json.dumps(conditions(summary), sort_keys=True, default=str)


def describe_conditions(summary: Summary) -> str:
    """A short phrase naming the protocol and any override of it."""
    cond = conditions(summary)
    protocol = cond["protocol"]
    if protocol is None:
        return "unknown protocol (not recorded)"
    text = str(protocol.get("name", "unnamed"))
    extras = []
    if cond["camera_size"] != protocol.get("render_size"):
        extras.append(f"camera {cond['camera_size']} px instead of {protocol.get('render_size')}")
    if cond["max_steps_cap"] is not None:
        extras.append(f"max steps capped at {cond['max_steps_cap']}")
    changed = _preset_changes(protocol)
    if changed:
        extras.append("overrides " + ", ".join(changed))
    return text + (f" ({'; '.join(extras)})" if extras else "")


def _preset_changes(protocol: dict[str, Any]) -> list[str]:
    """Settings in which a recorded protocol differs from the preset of its name."""
    from evalharness.config.conf import CONF_DIR

    path = CONF_DIR / "protocol" / f"{protocol.get('name')}.yaml"
    if not path.is_file():
        return []
    from omegaconf import OmegaConf

    from evalharness.config.protocol import load_protocol

    try:
        preset = load_protocol(OmegaConf.to_container(OmegaConf.load(path), resolve=True)).model_dump()
    except Exception:  # noqa: BLE001 - a broken preset only loses a footnote detail
        return []
    # A setting the record lacks is newer than the record (e.g. episodes_per_task), not an override.
    return [f"{k}={json.dumps(protocol[k])}" for k in preset if k in protocol and protocol[k] != preset[k]]


def _episodes_per_task(summary: Summary) -> tuple[int, int] | None:
    counts = [t.recorded for t in summary.tasks]
    return (min(counts), max(counts)) if counts else None


def run_notes(summary: Summary, partial: str | None = None) -> list[str]:
    """What is non-standard about one run, each as a footnote sentence (no versions: see
    :func:`version_notes`, which needs the other runs)."""
    notes: list[str] = []
    per_task = _episodes_per_task(summary)
    if per_task and per_task[0] < STANDARD_EPISODES_PER_TASK and not partial:
        lo, hi = per_task
        n = f"{lo}" if lo == hi else f"{lo}-{hi}"
        notes.append(f"{n} episodes per task (protocols use {STANDARD_EPISODES_PER_TASK}): wide intervals")
    assets = summary.metadata.assets
    if assets is None:
        notes.append("assets not recorded")
    elif assets.modified:
        notes.append(assets.describe())
    totals = summary.totals
    if totals.errors:
        kinds = ", ".join(f"{k}: {n}" for k, n in totals.errors_by_kind.items())
        notes.append(f"{totals.errors} episode(s) errored ({kinds}), excluded from the rates")
    if partial:
        notes.append(partial)
    elif totals.missing_episodes:
        notes.append(f"{totals.missing_episodes} of {totals.expected_episodes} planned episodes not recorded")
    return notes


def _version(summary: Summary, package: str) -> str | None:
    return (summary.metadata.versions or {}).get(package)


def version_notes(summaries: Sequence[Summary]) -> list[list[str]]:
    """Per run: a note for each simulator package whose version differs from the most
    common one among the runs (nothing for a single run, or when all agree)."""
    notes: list[list[str]] = [[] for _ in summaries]
    for package, shown in SIMULATOR_PACKAGES:
        versions = [_version(s, package) for s in summaries]
        common = Counter(versions).most_common()
        if len(common) < 2:
            continue
        usual = common[0][0]
        for i, v in enumerate(versions):
            if v != usual:
                notes[i].append(f"{shown} {v or 'unknown'} (the other runs: {usual or 'unknown'})")
    return notes


@dataclass(frozen=True)
class ContextItem:
    """One aspect of two runs' context, as the gate shows it."""

    name: str
    baseline: str
    candidate: str
    blocking: bool  # a difference here makes the comparison meaningless

    @property
    def differs(self) -> bool:
        return self.baseline != self.candidate


def _assets_text(summary: Summary) -> str:
    assets = summary.metadata.assets
    if assets is None:
        return "not recorded"
    # Older runs recorded the tree's checksum; today's record the digest of the loaded files.
    digest = assets.tree_sha256 or (assets.model_extra or {}).get("loaded_sha256")
    sha = str(digest)[:12] if digest else "checksum not recorded"
    return f"{sha} (modified)" if assets.modified else sha


def _protocol_text(protocol: dict[str, Any] | None) -> str:
    """The protocol's name and a short hash of all its settings (equal iff the settings are)."""
    if protocol is None:
        return "not recorded"
    from evalharness.plan.spec import stable_hash

    return f"{protocol.get('name', 'unnamed')} (settings {stable_hash(protocol)[:10]})"


def compare_contexts(baseline: Summary, candidate: Summary) -> list[ContextItem]:
    """Everything but the policy, side by side; protocol conditions are blocking."""
    b, c = conditions(baseline), conditions(candidate)
    items = [
        ContextItem("protocol", _protocol_text(b["protocol"]), _protocol_text(c["protocol"]), True),
        ContextItem("camera size", str(b["camera_size"]), str(c["camera_size"]), True),
        ContextItem("max steps cap", str(b["max_steps_cap"] or "none"), str(c["max_steps_cap"] or "none"), True),
    ]
    for package, shown in SIMULATOR_PACKAGES:
        items.append(ContextItem(shown, str(_version(baseline, package)), str(_version(candidate, package)), False))
    items.append(ContextItem("assets", _assets_text(baseline), _assets_text(candidate), False))
    items.append(ContextItem("frames", _frames_text(baseline), _frames_text(candidate), False))
    return items


def _frames_text(summary: Summary) -> str:
    """Which moment of a control step the run's images show (envs.libero.sampled_scene)."""
    env = summary.metadata.env or {}
    return env.get("frames") or "step end (not recorded: before frames followed robosuite's sample)"
