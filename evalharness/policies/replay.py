"""``replay``: emit recorded raw policy outputs, one per query, through the action pipeline.

For debugging a checkpoint's output format without the model: save what the model
emitted (token ids, or normalized chunks), then replay it in the real simulator under
different ``decoder`` / ``normalize`` / ``convert`` choices and watch the videos.
The outputs' hash is part of the policy's identity, so replaying other outputs never
reuses episodes. Two sources:

- ``policy.outputs=[...]`` or ``policy.path=FILE.json``: one list for every episode; once
  it is exhausted the last output repeats.
- ``policy.from_run=DIR``: a run recorded with ``record.raw_outputs=true``. Each episode
  gets the outputs recorded for the *same* episode of that run, matched by its
  coordinates (suite, task, init state, seed: the policy sees them as instruction, init
  state and episode seed), not by key, since the key includes the recorded policy's
  identity. The replay is open loop: it executes what the model said then, whatever the
  simulator shows now. Under the recorded run's pipeline it reproduces its episodes
  exactly (same action fingerprints); under another decoder or stats it shows what those
  same outputs would have done. An episode that runs past the recorded queries (it no
  longer ends where the recorded one did) ends as ``policy_error``; an episode the run did
  not record, too. Replay under the recorded run's protocol: another ``replan_steps``
  would pair the outputs with other steps.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from evalharness.config.validation import validate_settings
from evalharness.errors import PolicyError, UserInputError
from evalharness.policies.base import Policy


class ReplaySettings(BaseModel):
    """``policy=replay`` (``conf/policy/replay.yaml``): exactly one source of outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outputs: list[Any] | None  # inline: one raw output per query
    path: str | None  # a JSON file holding that list
    from_run: str | None  # a run folder recorded with record.raw_outputs=true


class ReplayPolicy(Policy):
    """Returns ``outputs[i]`` at the i-th query of every episode (the last one repeats), or,
    with ``from_run``, the i-th recorded output of the same episode of that run."""

    name = "replay"
    cameras: tuple[str, ...] = ()  # looks at nothing

    def __init__(self, outputs: list[Any] | None = None, path: str | None = None, from_run: str | None = None) -> None:
        settings = validate_settings(ReplaySettings, {"outputs": outputs, "path": path, "from_run": from_run}, "policy")
        outputs, path, from_run = settings.outputs, settings.path, settings.from_run
        if sum(x is not None for x in (outputs, path, from_run)) != 1:
            raise UserInputError("policy 'replay' needs exactly one of policy.outputs=[...], policy.path=FILE.json "
                                 "or policy.from_run=DIR (a run recorded with record.raw_outputs=true)")
        self._query = 0
        self._episode: list[Any] | None = None
        self.recorded: dict[tuple[str, int, int], list[dict[str, Any]]] | None = None
        if from_run is not None:
            self.recorded = _load_run(from_run)
            self.outputs: list[Any] = []
            self.source = str(Path(from_run).expanduser().resolve())
            return
        if path is not None:
            file = Path(path).expanduser()
            if not file.is_file():
                raise UserInputError(f"policy.path={path!r} does not exist; expected a JSON list of policy outputs")
            try:
                outputs = json.loads(file.read_text())
            except json.JSONDecodeError as exc:
                raise UserInputError(f"policy.path={path!r} is not valid JSON: {exc}") from None
        if not isinstance(outputs, list) or not outputs:
            raise UserInputError(f"policy.outputs={outputs!r} is not valid; allowed: a non-empty list of outputs "
                                 "(each a list of token ids or an (H, D) nested list)")
        self.outputs = outputs
        self.source = str(path) if path is not None else "inline"

    def identity(self) -> dict[str, Any]:
        if self.recorded is not None:
            entries = sorted([list(k), v] for k, v in self.recorded.items())
            digest = hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()
            return {"name": self.name, "from_run_sha256": digest, "episodes": len(entries), "source": self.source}
        digest = hashlib.sha256(json.dumps(self.outputs, sort_keys=True).encode()).hexdigest()
        return {"name": self.name, "outputs_sha256": digest, "count": len(self.outputs), "source": self.source}

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._query = 0
        if self.recorded is not None:
            self._episode = self.recorded.get((instruction, int(init_state if init_state is not None else -1), int(seed)))
            if self._episode is None:
                raise PolicyError(f"{self.source} recorded no raw outputs for this episode ({instruction!r}, init "
                                  f"state {init_state}); replay only episodes that run recorded")

    def act(self, observation: dict[str, Any]) -> Any:
        if self._episode is not None:
            from evalharness.policies.raw_output_recorder import decode_output

            if self._query >= len(self._episode):
                raise PolicyError(f"the recorded outputs of this episode end after {len(self._episode)} queries; the "
                                  "replayed episode went on (it no longer ends where the recorded one did)")
            output = decode_output(self._episode[self._query])
        else:
            output = self.outputs[min(self._query, len(self.outputs) - 1)]
        self._query += 1
        return output


def _load_run(from_run: str) -> dict[tuple[str, int, int], list[dict[str, Any]]]:
    """The recorded outputs of a run, by (instruction, init state, episode seed)."""
    from evalharness.results.raw_output_log import RAW_OUTPUTS_FILENAME, load_raw_outputs

    run_dir = Path(from_run).expanduser()
    if not (run_dir / RAW_OUTPUTS_FILENAME).is_file():
        raise UserInputError(f"policy.from_run={from_run!r} holds no {RAW_OUTPUTS_FILENAME}; run the evaluation "
                             "with record.raw_outputs=true first")
    recorded: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for episode in load_raw_outputs(run_dir):
        spec = episode.spec
        key = (spec.instruction, spec.init_state, spec.episode_seed)
        if key in recorded and recorded[key] != episode.outputs:
            raise UserInputError(f"policy.from_run={from_run!r}: two episodes share instruction, init state and seed; "
                                 "replay them from separate runs")
        recorded[key] = episode.outputs
    if not recorded:
        raise UserInputError(f"policy.from_run={from_run!r} has no episode with recorded raw outputs")
    return recorded
