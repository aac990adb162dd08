"""The typed results schema: what ``summary.json`` holds, field by field.

Three consumers read run results besides the harness itself: the cross-run tables
(``evalharness table``), the regression gate (``evalharness gate``) and the HTML report
(``evalharness report``). They read through these models, so a field renamed in the
writer fails validation where it is written instead of silently turning into an empty
column downstream. In the spirit of lm-evaluation-harness's ``result_schema.py``, every
field is typed and documented; the JSON Schema files generated from the models
(``evalharness/results/schemas/``, regenerated with ``python -m evalharness.results.schema``)
are committed so that tools outside Python can validate a results folder too, and a test
keeps the committed files equal to the models.

Versioning: ``schema_version`` versions the whole results format of a run folder, i.e.
``summary.json`` and the lines of ``episodes.jsonl`` (:class:`~evalharness.results.records.
EpisodeRecord`). A reader meeting another version (an old or foreign file) stops with one
line naming the version found and the version expected (:func:`check_schema_version`).

Strictness differs on purpose: the count blocks are ``extra="forbid"`` (they are computed
here, an unknown field is a writer bug), while ``metadata`` and its parts allow extra
fields (other parts of the harness add context there, e.g. the assets' provenance, and a
reader must not reject a run for carrying more context than it knows).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import copy

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from evalharness.config.validation import validate_settings
from evalharness.errors import UserInputError
from evalharness.results.records import EpisodeRecord

__all__ = [
    "SCHEMA_VERSION",
    "AssetsInfo",
    "Counts",
    "ErroredEpisode",
    "RunMetadata",
    "Summary",
    "SuiteSummary",
    "TaskSummary",
    "Totals",
    "check_schema_version",
    "refuse_older_run_dir",
    "json_schemas",
    "parse_summary",
    "SCHEMA_DIR",
]

SCHEMA_VERSION = 2
#: Why each version after 1 was introduced: the reason an older run folder is refused.
SCHEMA_CHANGES = {
    2: "issue 25: policy=mint's prompt now follows openpi exactly and protocol=openvla crops as TensorFlow "
       "does, so the episode keys of policy=mint and protocol=openvla runs changed",
}
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

_Rate = Field(ge=0.0, le=1.0)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Counts(_Strict):
    """The count block shared by a task, a suite and the totals.

    ``episodes`` counts episodes with a verdict (successes + failures); ``errors`` are
    episodes that could not run to a verdict and are neither (docs/reference/statistics.md).
    """

    recorded: int = Field(ge=0, description="Episodes recorded, errors included.")
    successes: int = Field(ge=0)
    failures: int = Field(ge=0)
    episodes: int = Field(ge=0, description="Episodes with a verdict: successes + failures.")
    errors: int = Field(ge=0, description="Episodes that could not run to a verdict (not failures).")
    errors_by_kind: dict[str, int] = Field(description="Error kind (EpisodeError.kind) -> count.")
    rate: float | None = Field(ge=0.0, le=1.0, description="successes / episodes; null when episodes == 0.")
    ci_low: float = Field(ge=0.0, le=1.0, description="Lower bound of the Wilson score interval.")
    ci_high: float = Field(ge=0.0, le=1.0, description="Upper bound of the Wilson score interval.")
    mean_steps: float | None = Field(description="Mean policy steps over episodes with a verdict.")
    mean_steps_success: float | None = Field(description="Mean policy steps over successful episodes.")


class TaskSummary(Counts):
    """One task of one suite."""

    suite: str
    task_index: int = Field(ge=0, description="LIBERO's task order 0 index within the suite.")
    task_name: str


class SuiteSummary(Counts):
    """One suite: its episodes pooled (sum k / sum n), with the per-task spread."""

    num_tasks: int = Field(ge=0)
    task_rate_min: float | None = Field(ge=0.0, le=1.0, description="Lowest task rate (tasks with a verdict).")
    task_rate_max: float | None = Field(ge=0.0, le=1.0, description="Highest task rate.")
    task_rate_mean: float | None = Field(ge=0.0, le=1.0, description="Unweighted mean of the task rates.")


class TimeTotals(_Strict):
    """Seconds summed over recorded episodes."""

    wall: float = Field(ge=0.0)
    policy: float = Field(ge=0.0)
    env: float = Field(ge=0.0)
    render: float = Field(ge=0.0)


class Totals(Counts):
    """Every recorded episode of the run pooled, plus completeness."""

    num_suites: int = Field(ge=0)
    num_tasks: int = Field(ge=0)
    mean_suite_rate: float | None = Field(ge=0.0, le=1.0, description="Unweighted mean of the suite rates.")
    expected_episodes: int | None = Field(ge=0, description="Episodes the plan holds; null when unknown.")
    missing_episodes: int | None = Field(ge=0, description="Planned episodes not recorded; null when unknown.")
    time_s: TimeTotals
    fidelity_events: dict[str, int] | None = Field(
        default=None,
        description="Summed over episodes, where a policy reported them: decode_events (malformed model output "
        "decoded by a fallback, e.g. decoder on_error=openpi) and prompt_truncations (prompts cut at pi0-FAST's "
        "180 tokens, as openpi); each with episodes_with_<name>. Absent when no episode had any.",
    )


class ErroredEpisode(_Strict):
    """An episode that could not run to a verdict, with what went wrong."""

    key: str
    suite: str
    task_index: int = Field(ge=0)
    task_name: str
    init_state: int = Field(ge=0)
    seed: int
    error_kind: str | None
    error_message: str | None
    attempts: int = Field(ge=1)


class AssetsInfo(_Open):
    """The LIBERO assets a run used.

    ``note`` is the legacy (pre-provenance) remark on a known modified archive; newer
    runs state ``provenance`` ("original" or "modified: N files differ"), the files that
    differ (``differs``) and where the assets came from (``source``). All are optional so
    that runs from either generation validate.
    """

    tree_sha256: str | None = Field(None, description="Checksum of the installed assets tree.")
    archive_sha256: str | None = Field(None, description="Checksum of the archive installed from, if any.")
    files: int | None = Field(None, ge=0, description="Number of asset files.")
    note: str | None = Field(None, description="Legacy remark on a known modified archive (older runs).")
    provenance: str | None = Field(None, description='"original" or "modified: N files differ".')
    differs: list[Any] | None = Field(None, description="Asset files that differ from LIBERO's originals.")
    source: str | dict[str, Any] | None = Field(None, description="Where the assets were installed from.")

    @property
    def modified(self) -> bool:
        """True when the assets are known to differ from LIBERO's originals."""
        if self.provenance is not None:
            return self.provenance != "original"
        return bool(self.note or self.differs)

    def describe(self) -> str:
        """One phrase for a footnote."""
        if self.provenance and self.provenance != "original":
            return f"assets {self.provenance}"
        if self.note:
            return f"assets: {self.note}"
        if self.differs:
            return f"assets modified: {len(self.differs)} files differ"
        return "original assets" if self.provenance == "original" else "assets provenance not recorded"


class RunMetadata(_Open):
    """How the run was made (metadata.py and evaluate.py write it); every field optional
    so that a summary built outside a run (tests, merged records) still validates."""

    run_name: str | None = None
    context: str | None = Field(None, description="Hash of everything that determines outcomes but the episode.")
    protocol: dict[str, Any] | None = Field(None, description="The resolved evaluation protocol (Protocol model).")
    policy: dict[str, Any] | None = Field(None, description="The policy's identity (Policy.identity()).")
    config: dict[str, Any] | None = Field(None, description="The resolved Hydra config, secrets redacted.")
    camera_size: int | None = Field(None, ge=1)
    workers: int | None = Field(None, ge=0)
    versions: dict[str, str | None] | None = Field(None, description="Package versions (python, mujoco, robosuite, ...).")
    harness_revision: str | None = Field(None, description="Git commit of the harness, -dirty when modified.")
    assets: AssetsInfo | None = None
    env: dict[str, str] | None = Field(
        None, description="What the env does that outcomes depend on beyond versions: 'frames' is the moment of "
                          "a control step the images show (observation_sample); absent in runs that rendered at "
                          "the step's end.")
    machine: dict[str, Any] | None = None
    training_step: int | None = Field(
        None, ge=0, description="Training step of the evaluated weights (evalharness.evaluate(step=...)); "
                                "orders the runs of a learning curve.")


class RobustnessRate(_Strict):
    """:class:`evalharness.results.stats.RateSummary` as stored (Wilson interval, errors apart)."""

    successes: int
    episodes: int
    errors: int
    rate: float | None
    ci_low: float
    ci_high: float


class RobustnessGroup(_Strict):
    """Perturbed episodes of one (dimension, level, suite) against their clean twins."""

    dimension: str = Field(description="The composed dimensions, '+'-joined (e.g. 'camera+light').")
    level: int | None = Field(description="The level, None when the dimensions' levels differ.")
    suite: str
    perturbed: RobustnessRate
    control: RobustnessRate | None = Field(description="The clean twins' rate; None without perturb.control.")
    invalid_perturbation: int = Field(ge=0, description="Perturbed episodes with no valid perturbed scene.")
    pairs: int = Field(ge=0, description="Pairs where both episodes reached a verdict.")
    discordant: list[int] = Field(description="[control solved & perturbed failed, the reverse].")
    diff: float | None = Field(description="Perturbed minus control rate over the pairs.")
    diff_ci_low: float | None
    diff_ci_high: float | None
    p_value: float | None = Field(description="Exact two-sided McNemar p-value of the discordant pairs.")
    within_noise: bool | None = Field(description="True when p_value > 0.05.")


class Summary(_Strict):
    """The content of ``summary.json`` (built by :func:`evalharness.results.summary.build_summary`)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True,
        json_schema_extra={"$id": f"https://evalharness/schemas/summary.v{SCHEMA_VERSION}.schema.json"},
    )

    schema_version: int = Field(
        description=f"Results format version (summary.json and episodes.jsonl); this is {SCHEMA_VERSION}."
    )
    confidence: float = Field(gt=0.0, lt=1.0, description="Confidence level of every interval.")
    metadata: RunMetadata
    complete: bool = Field(description="False when episodes errored or planned episodes are missing.")
    incomplete_reasons: list[str] = Field(description="Why the run is incomplete; empty when complete.")
    suites: dict[str, SuiteSummary] = Field(description="Suite name -> pooled counts, sorted by name.")
    tasks: list[TaskSummary] = Field(description="Sorted by (suite, task_index).")
    totals: Totals
    errored_episodes: list[ErroredEpisode] = Field(description="Sorted by (suite, task_index, init_state, seed, key).")
    robustness: list[RobustnessGroup] | None = Field(
        default=None, description="perturb group: perturbed vs clean control per (dimension, level, suite); absent when unperturbed."
    )

    # The JSON document this summary was validated from, as built or read: its key order and
    # number types (an integer 0 stays 0, not 0.0) are what summary.json holds byte for byte.
    _document: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def from_document(cls, data: dict[str, Any]) -> "Summary":
        """Validate a summary document and keep it, so :meth:`to_document` writes it unchanged."""
        summary = cls.model_validate(data)
        summary._document = copy.deepcopy(data)
        return summary

    def to_document(self) -> dict[str, Any]:
        """The ``summary.json`` content: the document it came from, else the model's dump."""
        if self._document is not None:
            return copy.deepcopy(self._document)
        return self.model_dump(mode="json", exclude_unset=True)

    def metrics(self, prefix: str = "eval/") -> dict[str, float | int | None]:
        """A flat dict for a logger (TensorBoard, W&B): rates, intervals, counts and errors.

        Keys are ``{prefix}{scope}/{name}``, scope ``total``, ``suite/<suite>`` or
        ``task/<suite>/<task_index>``; rates with no verdict are None (loggers skip them).
        """
        out: dict[str, float | int | None] = {}

        def add(scope: str, block: Counts) -> None:
            for name in ("rate", "ci_low", "ci_high", "successes", "failures", "episodes", "errors", "mean_steps"):
                out[f"{prefix}{scope}/{name}"] = getattr(block, name)
            for kind, n in block.errors_by_kind.items():
                out[f"{prefix}{scope}/errors/{kind}"] = n

        add("total", self.totals)
        out[f"{prefix}total/complete"] = int(self.complete)
        for suite, block in self.suites.items():
            add(f"suite/{suite}", block)
        for task in self.tasks:
            add(f"task/{task.suite}/{task.task_index}", task)
        return out


def check_schema_version(data: Any, source: str) -> None:
    """One line when ``data`` (a parsed summary.json) is not of this schema version."""
    if not isinstance(data, dict):
        raise UserInputError(f"{source} is not a results summary (a JSON object with schema_version {SCHEMA_VERSION})")
    found = data.get("schema_version")
    if found != SCHEMA_VERSION:
        has = "has no schema_version" if found is None else f"has schema_version {found!r}"
        raise UserInputError(
            f"{source} {has}; this evalharness reads schema_version {SCHEMA_VERSION} "
            "(rerun the run's command to rewrite its summary from episodes.jsonl)"
        )


def refuse_older_run_dir(run_dir: Path) -> None:
    """One line when ``run_dir`` holds a run written under another schema version: resuming
    it would mix episodes whose keys were computed another way."""
    summary = Path(run_dir) / "summary.json"
    if not summary.is_file():
        return
    try:
        found = json.loads(summary.read_text(encoding="utf-8")).get("schema_version")
    except (ValueError, AttributeError, OSError):
        return  # not ours to judge here; readers refuse it with their own line
    if found != SCHEMA_VERSION:
        why = SCHEMA_CHANGES.get(SCHEMA_VERSION, "the results format changed")
        raise UserInputError(f"{run_dir} holds a run of results schema_version {found!r}; this evalharness writes "
                             f"{SCHEMA_VERSION} ({why}); pass a new output_dir=... or run_name=..., or delete the folder")


def parse_summary(data: Any, source: str) -> Summary:
    """Validate a parsed summary.json; any problem is one line naming the file and field."""
    check_schema_version(data, source)
    summary = validate_settings(Summary, data, "", source=f"{source} is not a valid summary")
    summary._document = copy.deepcopy(data)  # to_document() writes it back unchanged
    return summary


def json_schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document, as committed under :data:`SCHEMA_DIR`."""
    episode = EpisodeRecord.model_json_schema()
    episode["$id"] = f"https://evalharness/schemas/episode.v{SCHEMA_VERSION}.schema.json"
    episode["description"] = (
        f"One line of episodes.jsonl (results schema_version {SCHEMA_VERSION}). " + (episode.get("description") or "")
    ).strip()
    return {
        "summary.schema.json": Summary.model_json_schema(),
        "episode.schema.json": episode,
    }


def render_schema(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the JSON Schema files (``python -m evalharness.results.schema [DIR]``)."""
    from evalharness.results.atomic import write_text_atomic

    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else SCHEMA_DIR
    for name, doc in json_schemas().items():
        write_text_atomic(target / name, render_schema(doc))
        print(target / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
