"""``CallablePolicy``: a plain function ``observation -> raw output`` as a :class:`Policy`.

A training script holds a model, not a policy class. This adapter turns the function that
queries it into a policy the harness can run::

    from evalharness.policies.callable import CallablePolicy

    def act(observation):                       # the harness Observation (policies/base.py)
        with torch.no_grad():
            return model(preprocess(observation)).numpy()   # a (horizon, 7) chunk, or token ids

    policy = CallablePolicy(act, name="my-vla", pipeline={"normalize": {...}})

- ``fn`` returns what the model emits: a chunk of actions (``(horizon, 7)`` or ``(7,)``)
  or token ids, which the run's ``decoder`` / ``normalize`` / ``convert`` turn into actions
  (``pipeline`` declares those stages for this policy, as a checkpoint's ``policy.yaml``
  does; stages set on the command line or as keyword arguments replace them).
- ``batch_fn``, when given, answers several observations in one call (a list in, a list
  out). Served to many workers (``evaluate(..., workers=N)``) the harness then runs one
  forward pass for the queries that arrive together; without it each query is one call.
- ``cameras`` narrows the cameras rendered (``None``: the protocol's).
- ``fn`` must be deterministic for a given observation and episode: ``reset`` passes the
  episode's seed, and a function that samples should take it (``on_reset``).

The identity of such a policy is what the caller says it is (its ``name`` and whatever
``identity`` holds, e.g. a weights digest): the harness cannot look inside a function.
:func:`evalharness.api.evaluate` adds the caller's label and digest to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from evalharness.policies.base import Observation, Policy

__all__ = ["CallablePolicy"]


class CallablePolicy(Policy):
    """A policy whose ``act`` is ``fn(observation)``; see the module docstring."""

    def __init__(
        self,
        fn: Callable[[Observation], Any],
        *,
        name: str = "callable",
        batch_fn: Callable[[list[Observation]], Sequence[Any]] | None = None,
        cameras: Sequence[str] | None = None,
        pipeline: dict[str, dict[str, Any]] | None = None,
        identity: dict[str, Any] | None = None,
        on_reset: Callable[..., None] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"CallablePolicy needs a callable observation -> raw output, got {type(fn).__name__}")
        self.fn = fn
        self.batch_fn = batch_fn
        self.name = name
        self.cameras = None if cameras is None else tuple(cameras)
        self._pipeline = pipeline
        self._identity = dict(identity or {})
        self.on_reset = on_reset

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, **self._identity}

    def declared_pipeline(self) -> dict[str, dict[str, Any]] | None:
        return None if self._pipeline is None else {k: dict(v) for k, v in self._pipeline.items()}

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        if self.on_reset is not None:
            self.on_reset(instruction, seed=seed, init_state=init_state)

    def act(self, observation: Observation) -> Any:
        return self.fn(observation)

    def fork(self) -> "CallablePolicy":
        return self  # stateless: the function holds whatever state it has

    @classmethod
    def act_batch(cls, policies: Sequence[Policy], observations: Sequence[Observation]) -> list[Any]:
        first = policies[0] if policies else None
        if isinstance(first, CallablePolicy) and first.batch_fn is not None and all(p is first for p in policies):
            outputs = list(first.batch_fn(list(observations)))
            if len(outputs) != len(observations):
                raise ValueError(f"batch_fn returned {len(outputs)} outputs for {len(observations)} observations")
            return outputs
        return [policy.act(obs) for policy, obs in zip(policies, observations, strict=True)]
