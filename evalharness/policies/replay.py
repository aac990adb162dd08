"""``replay``: emit recorded raw policy outputs, one per query, through the action pipeline.

For debugging a checkpoint's output format without the model: save what the model
emitted (token ids, or normalized chunks) as a JSON list, then replay it in the real
simulator under different ``decoder`` / ``normalize`` / ``convert`` choices and watch the
videos. Once the list is exhausted the last output repeats. The outputs' hash is part of
the policy's identity, so replaying other outputs never reuses episodes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from evalharness.errors import UserInputError
from evalharness.policies.base import Policy


class ReplayPolicy(Policy):
    """Returns ``outputs[i]`` at the i-th query of every episode (the last one repeats)."""

    name = "replay"
    cameras: tuple[str, ...] = ()  # looks at nothing

    def __init__(self, outputs: list[Any] | None = None, path: str | None = None) -> None:
        if (outputs is None) == (path is None):
            raise UserInputError("policy 'replay' needs exactly one of policy.outputs=[...] or policy.path=FILE.json")
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
        self._query = 0

    def identity(self) -> dict[str, Any]:
        digest = hashlib.sha256(json.dumps(self.outputs, sort_keys=True).encode()).hexdigest()
        return {"name": self.name, "outputs_sha256": digest, "count": len(self.outputs), "source": self.source}

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None) -> None:
        self._query = 0

    def act(self, observation: dict[str, Any]) -> Any:
        output = self.outputs[min(self._query, len(self.outputs) - 1)]
        self._query += 1
        return output
