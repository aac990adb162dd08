"""A policy object that lives in the caller's process (a model in a training loop).

The run engine normally builds the policy from config in every worker. A model held by a
trainer, on its GPU, is not built from config and must not be pickled or copied:

- ``workers=0``: the episodes run in the caller's process on the object itself;
- ``workers>0``: the object stays here and is served from a thread of this process on
  127.0.0.1 through the same MinT routes and batcher as ``evalharness serve`` /
  ``runner.policy_server=auto`` (:mod:`evalharness.transports.mint.server`): the worker
  processes run a ``policy=mint`` client that queries it, so one forward pass answers the
  queries of concurrent episodes, and the workers never import torch or see the weights.
  Served answers equal in-process ones (see :mod:`evalharness.engine.policy_server`).

The identity is the caller's word, since the harness cannot hash an arbitrary object: its
``label`` and, optionally, a weights digest (:func:`evalharness.api.weights_digest`), on
top of the object's own :meth:`~evalharness.policies.base.Policy.identity`. A resume
reuses episodes only when all of it matches, so episodes of other weights are never reused
when the digest is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from evalharness.errors import UserInputError
from evalharness.policies.base import Policy

LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
DIGEST_PATTERN = re.compile(r"^[0-9a-f]{16,128}$")
#: The ``policy`` block recorded in run.json for an in-memory policy (not instantiable).
IN_MEMORY_TARGET = "evalharness.engine.in_memory"


@dataclass(frozen=True)
class InMemoryPolicy:
    """The caller's policy object and what it says it is."""

    policy: Policy
    label: str
    weights_digest: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not LABEL_PATTERN.match(self.label):
            raise UserInputError(f"label={self.label!r} is not valid; allowed: 1-100 characters of letters, digits, "
                                 "'.', '_' and '-', starting with a letter or digit (it names the run folder)")
        if self.weights_digest is not None and (
                not isinstance(self.weights_digest, str) or not DIGEST_PATTERN.match(self.weights_digest)):
            raise UserInputError(f"weights_digest={self.weights_digest!r} is not valid; allowed: a lowercase hex "
                                 "digest of 16-128 characters, e.g. evalharness.weights_digest(model)")

    @property
    def folder_label(self) -> str:
        """The label, plus the digest's first 12 characters: other weights, another folder."""
        return self.label if self.weights_digest is None else f"{self.label}-{self.weights_digest[:12]}"

    def config(self) -> dict[str, Any]:
        """The ``policy`` block of the run's config, recorded in run.json."""
        return {"_target_": IN_MEMORY_TARGET, "name": self.policy.name, "label": self.label,
                "weights_sha256": self.weights_digest}

    def identity(self, pipeline_cfg: dict[str, Any], served: dict[str, Any] | None) -> dict[str, Any]:
        """The run's policy identity: the object's (behind its pipeline), the caller's label and
        digest, and how it was served to the workers (batching can move the last bits)."""
        from evalharness.policies.pipelined import wrap_with_pipeline

        identity = {**wrap_with_pipeline(self.policy, pipeline_cfg).identity(),
                    "in_memory": {"label": self.label, "weights_sha256": self.weights_digest}}
        if served is not None:
            identity["policy_server"] = {"mode": "in_process", "protocol": "mint", **served}
        return identity

    def for_episodes(self, pipeline_cfg: dict[str, Any], record_raw: bool) -> Policy:
        """The object as the in-process worker runs it: raw outputs recorded, behind its pipeline."""
        from evalharness.policies.pipelined import wrap_with_pipeline
        from evalharness.policies.raw_output_recorder import RawOutputRecorder

        policy: Policy = RawOutputRecorder(self.policy) if record_raw else self.policy
        return wrap_with_pipeline(policy, pipeline_cfg)


def serve_settings(config: dict[str, Any]) -> Any:
    """The run's ``serve`` group as the in-process server uses it (loopback, raw state, no auth)."""
    from evalharness.transports.mint.serve_settings import load_serve_settings

    return load_serve_settings({**(config.get("serve") or {}), "host": "127.0.0.1", "port": 0, "tokenizer": None,
                                "state_space": "raw", "stats_path": None, "auth": "none"})


class InProcessServer:
    """The caller's policy served from a thread of this process; :meth:`close` stops the thread
    (the policy itself stays open: it is the caller's)."""

    def __init__(self, policy: Policy, config: dict[str, Any], pipeline_cfg: dict[str, Any]) -> None:
        from evalharness.actions.pipeline import build_pipeline
        from evalharness.policies.pipelined import split_at_decoder
        from evalharness.transports.mint.server import PolicyService, ServerThread, create_app

        if policy.needs_privileged_state:
            raise UserInputError(f"policy {policy.name!r} reads privileged simulator state, which cannot be served "
                                 "to workers; evaluate it with workers=0")
        decoder = build_pipeline(split_at_decoder(policy, {"decoder": config.get("decoder")})[0])
        self.client_pipeline = split_at_decoder(policy, pipeline_cfg)[1]  # the workers unnormalize and convert
        cameras = tuple(config["protocol"].get("cameras") or ())
        self.service = PolicyService(policy, decoder, serve_settings(config), cameras=cameras)
        self._thread = ServerThread(create_app(self.service)).__enter__()
        self.url = self._thread.url

    def client_policy(self, label: str) -> dict[str, Any]:
        """The workers' ``policy=mint`` config pointing here (a new label: a new client)."""
        from evalharness.engine.policy_server import client_policy_config

        return client_policy_config(label, self.url)

    def close(self) -> None:
        try:
            self._thread.__exit__(None, None, None)
        finally:
            self.service.batcher.stop()
