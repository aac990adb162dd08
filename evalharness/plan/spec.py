"""The plan of a run: one immutable :class:`EpisodeSpec` per episode, each with a stable key.

A key is a hash of everything that determines the episode's outcome: the run context
(protocol settings, policy identity, action pipeline, camera size, the versions of the
simulator stack and the assets' checksum) plus the episode's own coordinates (suite,
task, init state, seed). Resume skips keys already in the result store, so changing any
of those inputs (a new checkpoint, another MuJoCo) can never silently reuse old episodes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np



def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON form (sorted keys) of ``obj``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to run: task ``task_index`` of ``suite`` from init state ``init_state``."""

    suite: str
    task_index: int
    task_name: str
    instruction: str
    init_state: int
    seed: int
    context: str  # hash of the run context shared by every episode of the run
    # perturb group (evalharness.plan.perturbed): the dimensions' configs and the parameter
    # candidates drawn from the seed, as canonical JSON; None for an unperturbed episode.
    perturbation: str | None = None
    control_key: str | None = None  # the key of this perturbed episode's clean twin

    @property
    def key(self) -> str:
        coordinates: list = [self.context, self.suite, self.task_name, self.init_state, self.seed]
        if self.perturbation is not None:  # unperturbed keys stay what they always were
            coordinates.append(self.perturbation)
        return stable_hash(coordinates)[:32]

    @property
    def episode_seed(self) -> int:
        """A per-episode seed for stochastic policies, derived from (seed, task, init state)."""
        seq = np.random.SeedSequence([self.seed, self.task_index, self.init_state, len(self.suite)])
        return int(seq.generate_state(1)[0])
