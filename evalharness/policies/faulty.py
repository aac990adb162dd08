"""A policy that misbehaves on purpose, to check that a harness records faults honestly.

Each mode reproduces a failure seen with real policies: an exception inside the model,
NaN actions, a chunk of the wrong shape, or the process dying outright (segfault, OOM
kill). ``on_init_states`` limits the fault to some episodes, so a test can check that the
rest of the run is unaffected. ``first_attempt_only`` faults only on an episode's first
attempt (as numbered by the runner), so a transient crash can be shown to be retried and
then to succeed.
"""

from __future__ import annotations

import math
import os
import signal
from typing import Annotated, Any, Literal

import numpy as np

from pydantic import BaseModel, ConfigDict, Field

from evalharness.config.fields import Bool, NonNegativeInt
from evalharness.config.validation import validate_settings
from evalharness.policies.base import Policy

MODES = ("raise", "nan", "wrong_shape", "kill_process")


class FaultySettings(BaseModel):
    """``policy=faulty`` (``conf/policy/faulty.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["raise", "nan", "wrong_shape", "kill_process"]
    after_queries: NonNegativeInt  # queries answered like ``zero`` before the fault
    on_init_states: list[Annotated[int, Field(strict=True)]] | None  # null: every episode
    while_file_exists: str | None  # a path: fail only while it exists (a transient fault)
    first_attempt_only: Bool  # fail only on an episode's first attempt (a transient crash)


class FaultyPolicy(Policy):
    """Holds still like ``zero`` until ``after_queries`` queries, then fails per ``mode``."""

    name = "faulty"

    def __init__(
        self,
        mode: str = "raise",
        after_queries: int = 0,
        on_init_states: list[int] | None = None,
        while_file_exists: str | None = None,
        first_attempt_only: bool = False,
    ) -> None:
        if isinstance(mode, float) and math.isnan(mode):
            mode = "nan"  # Hydra's override grammar reads a bare `policy.mode=nan` as a float NaN
        settings = validate_settings(FaultySettings, {
            "mode": mode, "after_queries": after_queries, "on_init_states": on_init_states,
            "while_file_exists": while_file_exists, "first_attempt_only": first_attempt_only}, "policy")
        self.mode = settings.mode
        self.after_queries = settings.after_queries
        self.on_init_states = None if settings.on_init_states is None else set(settings.on_init_states)
        # A transient fault (a server that was down): only while this file exists.
        self.while_file_exists = settings.while_file_exists
        # A transient crash: only on the first attempt at an episode.
        self.first_attempt_only = settings.first_attempt_only
        self._queries = 0
        self._armed = True

    def identity(self) -> dict[str, Any]:
        states = None if self.on_init_states is None else sorted(self.on_init_states)
        return {
            "name": self.name,
            "mode": self.mode,
            "after_queries": self.after_queries,
            "on_init_states": states,
            "while_file_exists": self.while_file_exists,
            "first_attempt_only": self.first_attempt_only,
        }

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._queries = 0
        self._armed = self.on_init_states is None or init_state in self.on_init_states
        if self.while_file_exists is not None and not os.path.exists(self.while_file_exists):
            self._armed = False
        if self.first_attempt_only:
            self._armed = self._armed and attempt == 1

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        self._queries += 1
        chunk = np.zeros((1, 7))
        chunk[:, 6] = -1.0
        if not self._armed or self._queries <= self.after_queries:
            return chunk
        if self.mode == "raise":
            raise RuntimeError("faulty policy: simulated model failure")
        if self.mode == "nan":
            chunk[0, 2] = np.nan
            return chunk
        if self.mode == "wrong_shape":
            return np.zeros((1, 6))
        os.kill(os.getpid(), signal.SIGKILL)  # kill_process: like a segfault or the OOM killer
        raise AssertionError("unreachable")
