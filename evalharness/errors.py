"""Exception types that carry meaning for the harness.

Two families:

- :class:`UserInputError` (re-exported from :mod:`envs.errors`): a mistake the user can
  fix (bad config value, missing file). Entry points print its message as one line and
  exit with status 2, never a traceback.
- :class:`EpisodeError`: something that makes *one episode* unable to run to a verdict
  (the policy raised, emitted NaN, tokens that do not decode, the simulator crashed). The
  rollout records it with the episode as an error of its ``kind``, which is counted apart
  from policy failures, and the run goes on.
"""

from __future__ import annotations

from envs.errors import UserInputError, choices_error

__all__ = [
    "UserInputError",
    "choices_error",
    "EpisodeError",
    "PolicyError",
    "InvalidActionError",
    "DecodeError",
    "EnvError",
    "WorkerCrash",
    "PolicyUnavailable",
    "InvalidPerturbation",
]


class EpisodeError(Exception):
    """An episode could not be run to a success/failure verdict."""

    kind = "error"


class PolicyError(EpisodeError):
    """The policy raised while resetting or acting."""

    kind = "policy_error"


class InvalidActionError(EpisodeError):
    """The policy's output is not a valid action chunk (shape, NaN, infinity)."""

    kind = "invalid_action"


class DecodeError(EpisodeError):
    """Policy output (tokens, chunk) could not be turned into robot actions."""

    kind = "decode_error"


class EnvError(EpisodeError):
    """The simulator failed (exception inside LIBERO / robosuite / MuJoCo)."""

    kind = "env_error"


class WorkerCrash(EpisodeError):
    """The worker process running the episode died (segfault, OOM kill) twice."""

    kind = "worker_crash"


class PolicyUnavailable(EpisodeError):
    """A remote policy could not be reached or kept failing at the transport level
    (connection refused, timeouts, 5xx after the retries ran out).

    Unlike :class:`PolicyError` (the model itself failed), this says nothing about the
    policy: ``runner.retry_errors=true`` reruns such episodes once the server is back.
    """

    kind = "policy_unavailable"


class InvalidPerturbation(EpisodeError):
    """A perturbed scene stayed invalid (new contacts, goal already met, unstable, no
    collision-free placement) after the bounded deterministic resamples. Says nothing
    about the policy: counted apart, never as a failure."""

    kind = "invalid_perturbation"
