"""Capturing what a model emitted, before the action pipeline touches it.

With ``record.raw_outputs=true`` the worker wraps the configured policy (the model, *below*
the decode / unnormalize / convert pipeline) in a :class:`RawOutputRecorder`. Each query's
output is kept exactly: token ids, or the normalized chunk before unnormalization; for a
policy without a pipeline (``openpi``, whose server unnormalizes) the returned chunk. The
worker sends the episode's outputs to the parent with its record, and the parent writes
them to the run's sidecar (:mod:`evalharness.results.raw_output_log`). ``policy=replay
policy.from_run=DIR`` feeds them back through any pipeline.

Encoding (JSON, exact): an integer or boolean array is ``{"dtype", "shape", "values"}``
with the values readable as a list (token ids are what pi0-FAST users need to see); a
float array is ``{"dtype", "shape", "base64"}`` of its raw bytes, so a replay sees the
very same bits (and NaN survives). Anything that is not a rectangular number array is
kept as ``{"repr": ...}`` for diagnosis only; it cannot be replayed.

Recording never changes an outcome: the recorder returns the inner policy's output object
itself and takes a copy of its bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from evalharness.errors import PolicyError
from evalharness.policies.base import Observation, Policy, PolicyWrapper, find_in_chain

__all__ = ["RawOutputRecorder", "encode_output", "decode_output", "take_raw_outputs"]

_REPR_LIMIT = 2000


def encode_output(output: Any) -> dict[str, Any]:
    """One policy output as an exact JSON-able dict (see the module docstring)."""
    try:
        array = np.asarray(output)
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype.kind not in "biuf":
        return {"repr": repr(output)[:_REPR_LIMIT]}
    head: dict[str, Any] = {"dtype": array.dtype.str, "shape": list(array.shape)}
    if array.dtype.kind == "f":
        return {**head, "base64": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")}
    return {**head, "values": array.ravel().tolist()}


def decode_output(encoded: dict[str, Any]) -> np.ndarray:
    """The array :func:`encode_output` stored; PolicyError for an output kept only as a repr."""
    if "repr" in encoded:
        raise PolicyError(f"the recorded output was not a number array and cannot be replayed: {encoded['repr'][:200]}")
    dtype, shape = np.dtype(encoded["dtype"]), tuple(encoded["shape"])
    if "base64" in encoded:
        return np.frombuffer(base64.b64decode(encoded["base64"]), dtype=dtype).reshape(shape).copy()
    return np.asarray(encoded["values"], dtype=dtype).reshape(shape)


class RawOutputRecorder(PolicyWrapper):
    """Keeps each query's encoded output for the episode; everything else is ``inner``'s
    (:class:`PolicyWrapper`: its identity, since recording changes nothing, and its declared
    pipeline, which the pipeline wrapped around this recorder must still run)."""

    def __init__(self, inner: Policy) -> None:
        super().__init__(inner)
        self._outputs: list[dict[str, Any]] = []

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._outputs = []
        super().reset(instruction, seed=seed, init_state=init_state, attempt=attempt)

    def act(self, observation: Observation) -> Any:
        output = self.inner.act(observation)
        self._outputs.append(encode_output(output))
        return output

    def take(self) -> list[dict[str, Any]]:
        """The outputs of the episode since the last reset (and forget them)."""
        outputs, self._outputs = self._outputs, []
        return outputs

    def fork(self) -> "RawOutputRecorder":
        clone = super().fork()
        clone._outputs = []
        return clone  # type: ignore[return-value]

    @classmethod
    def act_batch(cls, policies: Sequence[Policy], observations: Sequence[Observation]) -> list[Any]:
        outputs = super().act_batch(policies, observations)
        for policy, output in zip(policies, outputs, strict=True):
            policy._outputs.append(encode_output(output))  # type: ignore[attr-defined]
        return outputs


def take_raw_outputs(policy: Policy) -> list[dict[str, Any]] | None:
    """The recorded outputs of the episode just run, or None when recording is off."""
    recorder = find_in_chain(policy, RawOutputRecorder)
    return None if recorder is None else recorder.take()
