"""The interface every policy implements, and what it receives.

A policy is queried with an observation and returns an *action chunk*: an array of shape
(H, 7) of LIBERO robot actions (6 end-effector deltas in [-1, 1], gripper -1 open /
+1 close). The rollout executes the first ``replan_steps`` of them (all of them when the
chunk is shorter) and queries again. Policies whose model emits tokens or normalized
values turn them into robot actions with an :mod:`evalharness.actions` pipeline before
returning.

The observation (built by the rollout from :class:`envs.libero.env.LiberoEnv` after the
protocol's image preprocessing) holds:

- ``images``: ``base_0_rgb``, ``left_wrist_0_rgb``, ``right_wrist_0_rgb`` (uint8 HxWx3,
  already in the orientation and size the protocol prescribes); cameras the protocol or
  the policy's ``cameras`` leave out are zeros, and their ``image_mask`` is False;
- ``image_mask``: camera -> bool (real camera or padding);
- ``state``: float32[8] (eef position, eef axis-angle, gripper qpos), unnormalized;
- ``instruction``: the task's language instruction;
- ``robot``: raw proprioception (``robot0_eef_pos``, ``robot0_eef_quat`` x-y-z-w,
  ``robot0_gripper_qpos``);
- ``privileged``: every object's ``<name>_pos`` / ``<name>_quat`` from the simulator,
  present only when the policy sets ``needs_privileged_state`` (scripted baselines).
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Sequence
from typing import Any

import numpy as np


class Policy(abc.ABC):
    """A policy under evaluation.

    Subclasses set ``name`` and implement :meth:`act`; they override :meth:`reset` when
    they keep per-episode state, and :meth:`identity` with everything that determines
    their outputs (parameters, checkpoint hashes), because the identity is part of every
    episode's key: change it and finished episodes are no longer reused on resume.
    """

    name: str = "policy"
    needs_privileged_state: bool = False
    #: Cameras the policy looks at; None = every camera the protocol gives. Rendering is
    #: most of an evaluation's cost on a CPU, so a policy that ignores images (scripted
    #: baselines) sets ``()`` and no camera is rendered for it (videos still are).
    cameras: tuple[str, ...] | None = None

    def identity(self) -> dict[str, Any]:
        """What determines this policy's outputs; JSON-serializable, without secrets."""
        return {"name": self.name}

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None) -> None:
        """Start a new episode.

        ``seed`` is the episode's own seed (derived from the run seed, task and init
        state), for stochastic policies. ``init_state`` is given for diagnostic policies
        only; a policy under evaluation must not use it.
        """

    @abc.abstractmethod
    def act(self, observation: dict[str, Any]) -> np.ndarray:
        """Return an action chunk of shape (H, 7), H >= 1, in robot action units."""

    def drain_events(self) -> list[str]:
        """Notable events since the last call (e.g. an action-decoding fallback was used).

        The rollout stores them with the episode so that nothing the pipeline papered
        over goes unrecorded.
        """
        return []

    def episode_stats(self) -> dict[str, float | int]:
        """Numbers about the episode just run (query count, latencies), stored in its record.

        Called once at the end of each episode; remote policies report their round trips
        here. Values must be finite numbers; keys are short snake_case names.
        """
        return {}

    def fork(self) -> "Policy":
        """A policy for one more concurrent episode: the same model (shared, not copied),
        its own per-episode and random state.

        A policy server gives every session its own fork so that one loaded model serves
        many simulation workers. The default deep-copies, which is right for policies
        without heavy state; model policies override it to share their weights.
        """
        return copy.deepcopy(self)

    @classmethod
    def act_batch(cls, policies: Sequence["Policy"], observations: Sequence[dict[str, Any]]) -> list[Any]:
        """``[p.act(o) for p, o in zip(policies, observations)]``, in one call.

        ``policies`` are forks of one policy (see :meth:`fork`). Model policies override
        this to run one forward pass over the batch; each fork must still give the answer
        it would give alone (its own random state), so batching never changes outcomes.
        """
        return [policy.act(obs) for policy, obs in zip(policies, observations, strict=True)]

    def close(self) -> None:
        """Release resources (network sessions, model memory)."""
