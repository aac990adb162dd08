"""Building a policy from its config: the one place that turns ``policy`` + pipeline groups into a policy.

The parent (for the identity), every worker, ``serve`` and the policy checker build a
policy the same way: Hydra instantiates the class its ``_target_`` names, an optional
recorder keeps the raw outputs, and the action pipeline wraps the result.
"""

from __future__ import annotations

from typing import Any

from evalharness.policies.base import Policy

__all__ = ["build_policy"]


def build_policy(policy_cfg: dict[str, Any], pipeline_cfg: dict[str, Any], *, record_raw: bool = False) -> Policy:
    """Instantiate the configured policy, wrapped in the action pipeline when one is set.

    ``record_raw`` puts a :class:`~evalharness.policies.raw_output_recorder.RawOutputRecorder`
    between the model and the pipeline, so that what the model emitted is kept.
    """
    from hydra.utils import instantiate

    from evalharness.policies.pipelined import wrap_with_pipeline
    from evalharness.policies.raw_output_recorder import RawOutputRecorder

    policy = instantiate(policy_cfg, _convert_="all")
    if record_raw:
        policy = RawOutputRecorder(policy)
    return wrap_with_pipeline(policy, pipeline_cfg)
