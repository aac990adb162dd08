"""A policy whose raw output (tokens, normalized chunks) goes through the action pipeline.

This is the one rule of :mod:`evalharness.policies.base`: a model policy's ``act`` returns
what its network emits, and the configured decoder, unnormalizer and converters turn it
into LIBERO actions. Keeping that outside the model wrapper means the same checkpoint can
be evaluated under different decodings from the command line, and the choice is recorded
in the identity. Baselines that emit robot actions run with an all-``none`` pipeline and
are not wrapped at all.

Where the pipeline comes from (:func:`resolve_pipeline`). The command line's groups
(``decoder``, ``normalize``, ``convert``) are one source; a policy that knows its output
format (a checkpoint's ``policy.yaml``) declares the other. Per stage: a group the command
line sets to anything other than ``none`` replaces the declared stage; a group left at
``none`` takes the declaration. Each stage is configured exactly once, so nothing is ever
applied twice, and the identity records where each stage came from
(``pipeline_source``). A policy that must ignore its declaration (to run a stage as
``none``) says so itself (``policy.pipeline=command_line`` for checkpoints), and then
declares nothing. Wrapping an already wrapped policy is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evalharness.config.parts import is_none
from evalharness.errors import DecodeError, UserInputError
from evalharness.policies.base import Observation, Policy, PolicyWrapper, find_in_chain

PIPELINE_GROUPS = ("decoder", "normalize", "convert")
#: Events of a decode that fell back (decoder on_error=openpi, or the pipeline's on_error=zeros).
DECODE_EVENT_PREFIXES = ("decode_event: ", "decode fallback")


_is_none = is_none  # name: none, or nothing; a _target_ without a name is a part


def pipeline_is_identity(pipeline_cfg: dict[str, Any]) -> bool:
    return all(_is_none(pipeline_cfg.get(part)) for part in PIPELINE_GROUPS)


def resolve_pipeline(policy: Policy, pipeline_cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The pipeline config to run for ``policy``, and per stage where it came from.

    Returns ``(pipeline_cfg, None)`` when the policy declares nothing; otherwise the merged
    config and ``{"decoder": "declared" | "command_line", ...}``.
    """
    declared = policy.declared_pipeline()
    if declared is None:
        return pipeline_cfg, None
    unknown = sorted(set(declared) - set(PIPELINE_GROUPS))
    if unknown:
        raise UserInputError(f"policy {policy.name!r} declares pipeline stage {unknown[0]!r}; allowed: "
                             f"{', '.join(PIPELINE_GROUPS)}")
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for group in PIPELINE_GROUPS:
        given = pipeline_cfg.get(group)
        if _is_none(given) and group in declared:
            merged[group], sources[group] = dict(declared[group]), "declared"
        else:
            merged[group], sources[group] = given, "command_line"
    return merged, sources


def split_at_decoder(policy: Policy, pipeline_cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(decode stage, the rest)`` of the pipeline :func:`resolve_pipeline` picks for ``policy``.

    For a policy served over the MinT protocol: the server runs the decode stage (an action
    session answers with the normalized chunk) and the client runs the rest (unnormalize,
    convert) with its decoder set to ``none``. Both sides resolve with this one rule, so a
    stage is never run twice or dropped.
    """
    resolved, _ = resolve_pipeline(policy, pipeline_cfg)
    decoder = dict(resolved.get("decoder") or {"name": "none"})
    return decoder, {**resolved, "decoder": {"name": "none"}}


class PipelinedPolicy(PolicyWrapper):
    """Wraps ``inner``: ``act`` returns ``pipeline(inner.act(obs), state=obs.get('state'))``.

    Everything else passes through to ``inner`` (:class:`PolicyWrapper`); this wrapper adds
    its pipeline to the identity and its events, and declares nothing (it has resolved the
    declaration into its pipeline).
    """

    def __init__(self, inner: Policy, pipeline_cfg: dict[str, Any], sources: dict[str, str] | None = None) -> None:
        from evalharness.actions.pipeline import build_pipeline

        if find_in_chain(inner, PipelinedPolicy) is not None:
            raise UserInputError(f"policy {inner.name!r} already runs through an action pipeline; wrapping it "
                                 "again would apply decode / unnormalize / convert twice")
        super().__init__(inner)
        self.pipeline = build_pipeline(pipeline_cfg["decoder"], pipeline_cfg["normalize"], pipeline_cfg["convert"])
        self.sources = sources
        self._events: list[str] = []
        self._decode_events = 0

    def identity(self) -> dict[str, Any]:
        identity = {**self.inner.identity(), "action_pipeline": self.pipeline.describe()}
        if self.sources is not None:
            identity["pipeline_source"] = dict(self.sources)
        return identity

    def declared_pipeline(self) -> dict[str, dict[str, Any]] | None:
        return None  # already resolved into this wrapper's pipeline

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._events.clear()
        self._decode_events = 0
        super().reset(instruction, seed=seed, init_state=init_state, attempt=attempt)

    def act(self, observation: Observation) -> np.ndarray:
        return self._to_actions(self.inner.act(observation), observation)

    def _to_actions(self, output: Any, observation: Observation) -> np.ndarray:
        # Only some steps (delta_to_absolute) need the state; OpenVLA's pipeline runs without
        # it, under a protocol that gives none (protocol.state=false).
        try:
            result = self.pipeline(output, state=observation.get("state"))
        except UserInputError as exc:  # e.g. delta_to_absolute under a protocol with state: false
            raise DecodeError(str(exc)) from None
        self._events.extend(result.events)
        self._decode_events += sum(e.startswith(DECODE_EVENT_PREFIXES) for e in result.events)
        return result.actions

    def fork(self) -> "PipelinedPolicy":
        """A fork of the inner policy (sharing its model) behind the same, stateless pipeline."""
        clone = super().fork()
        clone._events = []
        clone._decode_events = 0
        return clone  # type: ignore[return-value]

    @classmethod
    def act_batch(cls, policies: Sequence[Policy], observations: Sequence[Observation]) -> list[Any]:
        """The inner policies' batched forward pass, then each output through the pipeline."""
        outputs = super().act_batch(policies, observations)
        return [p._to_actions(out, obs)  # type: ignore[attr-defined]
                for p, out, obs in zip(policies, outputs, observations, strict=True)]

    def episode_stats(self) -> dict[str, float | int]:
        """The inner policy's, plus ``decode_events``: how often this episode's output was
        malformed and decoded by a fallback (openpi's, or on_error=zeros), when it was."""
        stats = dict(self.inner.episode_stats())
        if self._decode_events:
            stats["decode_events"] = self._decode_events
        return stats

    def drain_events(self) -> list[str]:
        events = self.inner.drain_events() + self._events
        self._events = []
        return events


def wrap_with_pipeline(policy: Policy, pipeline_cfg: dict[str, Any]) -> Policy:
    """``policy`` behind the pipeline :func:`resolve_pipeline` picks; itself when that is all ``none``."""
    resolved, sources = resolve_pipeline(policy, pipeline_cfg)
    if pipeline_is_identity(resolved):
        return policy
    return PipelinedPolicy(policy, resolved, sources)
