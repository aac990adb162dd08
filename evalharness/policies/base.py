"""The interface every policy implements, what it receives and what it returns.

**What a policy receives**: an :class:`Observation`, built by the rollout from
:class:`envs.libero.env.LiberoEnv` after the protocol's image preprocessing.

**What ``act`` returns: its raw output, which the configured action pipeline turns into
LIBERO actions.** One rule for every policy:

- a *model* policy returns what its network emits: token ids (a 1-D int sequence) or a
  chunk of normalized values (H, D); the run's pipeline (Hydra groups ``decoder``,
  ``normalize``, ``convert``, see :mod:`evalharness.actions`, or the pipeline a
  checkpoint declares) decodes, unnormalizes and converts it;
- a *baseline* that already emits robot actions (``zero``, ``random``, ``scripted``)
  returns an (H, 7) chunk of LIBERO actions and runs with an all-``none`` pipeline, the
  pipeline that changes nothing.

Either way, what leaves the pipeline is an (H, 7) float chunk of LIBERO robot actions
(6 end-effector deltas in [-1, 1], gripper -1 open / +1 close), H >= 1. The rollout
executes the first ``replan_steps`` of them (all of them when the chunk is shorter) and
queries again. :func:`evalharness.policies.checker.check_policy` checks a policy against
this contract.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Sequence
from typing import Any, NotRequired, Required, TypedDict, TypeVar

import numpy as np


class Observation(TypedDict, total=False):
    """What :meth:`Policy.act` receives at each query.

    - ``images``: camera name -> uint8 (H, W, 3) image for each of ``base_0_rgb``
      (agentview), ``left_wrist_0_rgb`` (eye in hand) and ``right_wrist_0_rgb`` (LIBERO
      has no such camera), already in the orientation and size the protocol prescribes.
      Cameras the protocol or the policy's ``cameras`` leave out are all zeros.
    - ``image_mask``: camera name -> True for a real camera, False for zero padding.
    - ``instruction``: the task's language instruction, as LIBERO words it.
    - ``robot``: raw proprioception: ``robot0_eef_pos`` (3), ``robot0_eef_quat`` (4,
      x-y-z-w), ``robot0_gripper_qpos`` (2); from the simulator also the OSC controller's
      pose, ``robot0_controller_eef_pos`` (3) and ``robot0_controller_eef_ori_mat`` (3x3).
    - ``state``: float32 (8,): end-effector position (3), axis-angle (3), gripper qpos
      (2), unnormalized; present only when the protocol gives state (``protocol.state``).
    - ``privileged``: every object's ``<name>_pos`` / ``<name>_quat`` from the simulator;
      present only when the policy sets ``needs_privileged_state`` (scripted baselines).
    """

    images: Required[dict[str, np.ndarray]]
    image_mask: Required[dict[str, bool]]
    instruction: Required[str]
    robot: Required[dict[str, np.ndarray]]
    state: NotRequired[np.ndarray]
    privileged: NotRequired[dict[str, np.ndarray]]


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

    def declared_pipeline(self) -> dict[str, dict[str, Any]] | None:
        """The action pipeline this policy's output needs, when the policy itself knows it.

        A checkpoint declares how its output becomes actions (``policy.yaml``): a dict with
        some of the keys ``decoder``, ``normalize``, ``convert``, each a config dict of that
        group. :func:`evalharness.policies.pipelined.resolve_pipeline` merges it with the
        command line's groups. None (the default) = nothing declared: the command line's
        groups run as given.
        """
        return None

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        """Start a new episode.

        ``seed`` is the episode's own seed (derived from the run seed, task and init
        state), for stochastic policies. ``init_state`` and ``attempt`` (1 for the first
        run of this episode, 2 after its worker crashed, as the run engine's crash
        accounting numbers it) are given for diagnostic policies only; a policy under
        evaluation must not use them.
        """

    @abc.abstractmethod
    def act(self, observation: Observation) -> Any:
        """Return this policy's raw output for one query (see the module docstring).

        Tokens or a normalized chunk for a model policy (the configured pipeline turns them
        into actions); an (H, 7) chunk of LIBERO actions for a baseline with an all-``none``
        pipeline.
        """

    def drain_events(self) -> list[str]:
        """Notable events since the last call (e.g. an action-decoding fallback was used).

        The rollout stores them with the episode so that nothing the pipeline papered
        over goes unrecorded.
        """
        return []

    def episode_end(self, success: bool) -> None:
        """The episode just run is over, with this verdict (``False`` too when it ended in an error).

        Called once per episode by the rollout, before :meth:`episode_stats`. Remote
        policies whose protocol reports the end (vla-eval's ``episode_end``) do it here.
        """

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
    def act_batch(cls, policies: Sequence["Policy"], observations: Sequence[Observation]) -> list[Any]:
        """``[p.act(o) for p, o in zip(policies, observations)]``, in one call.

        ``policies`` are forks of one policy (see :meth:`fork`). Model policies override
        this to run one forward pass over the batch; each fork must still give the answer
        it would give alone (its own random state), so batching never changes outcomes.
        """
        return [policy.act(obs) for policy, obs in zip(policies, observations, strict=True)]

    def close(self) -> None:
        """Release resources (network sessions, model memory)."""


class PolicyWrapper(Policy):
    """A policy around another one (``inner``) that changes only what it overrides.

    Like ``gymnasium.Wrapper``: every part of :class:`Policy` (the attributes ``name``,
    ``cameras``, ``needs_privileged_state`` and every method) passes through to ``inner``
    unless a subclass overrides it. A wrapper written by hand, method by method, silently
    drops whatever it forgets (a forgotten ``declared_pipeline`` once fed a checkpoint's
    raw tokens to the simulator); ``tests/test_policy_wrappers.py`` fails when a public
    :class:`Policy` member is not delegated here.

    A subclass that keeps per-episode state clears it in :meth:`reset` and in :meth:`fork`
    (``super().fork()`` gives a shallow copy around a fork of ``inner``). Its
    :meth:`act_batch` calls ``super().act_batch(...)``, which runs the inner policies'
    batched forward pass, and adds its own step per answer.
    """

    def __init__(self, inner: Policy) -> None:
        self.inner = inner

    # Attributes read through to inner (properties, so a wrapper never holds stale copies).
    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def cameras(self) -> tuple[str, ...] | None:  # type: ignore[override]
        return self.inner.cameras

    @property
    def needs_privileged_state(self) -> bool:  # type: ignore[override]
        return self.inner.needs_privileged_state

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def declared_pipeline(self) -> dict[str, dict[str, Any]] | None:
        return self.inner.declared_pipeline()

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self.inner.reset(instruction, seed=seed, init_state=init_state, attempt=attempt)

    def act(self, observation: Observation) -> Any:
        return self.inner.act(observation)

    def drain_events(self) -> list[str]:
        return self.inner.drain_events()

    def episode_end(self, success: bool) -> None:
        self.inner.episode_end(success)

    def episode_stats(self) -> dict[str, float | int]:
        return self.inner.episode_stats()

    def fork(self) -> "PolicyWrapper":
        """A shallow copy of this wrapper around a fork of ``inner`` (which shares its model)."""
        clone = copy.copy(self)
        clone.inner = self.inner.fork()
        return clone

    @classmethod
    def act_batch(cls, policies: Sequence[Policy], observations: Sequence[Observation]) -> list[Any]:
        """The inner policies' own ``act_batch`` (one forward pass for their forks)."""
        if not all(isinstance(p, cls) for p in policies):
            raise TypeError(f"{cls.__name__}.act_batch takes forks of one {cls.__name__}")
        inners = [p.inner for p in policies]  # type: ignore[attr-defined]
        return type(inners[0]).act_batch(inners, observations) if inners else []

    def close(self) -> None:
        self.inner.close()


PolicyT = TypeVar("PolicyT", bound=Policy)


def find_in_chain(policy: Policy, kind: type[PolicyT]) -> PolicyT | None:
    """The outermost policy of type ``kind`` in ``policy``'s chain of wrappers (itself included)."""
    current: Policy | None = policy
    while current is not None:
        if isinstance(current, kind):
            return current
        current = current.inner if isinstance(current, PolicyWrapper) else None
    return None
