"""From what a policy emits to LIBERO robot actions: decode, unnormalize, convert.

Each stage is a small step chosen by configuration (Hydra groups ``decoder``,
``normalize``, ``convert``) and described in the run's metadata:

- :mod:`~evalharness.actions.decoders`: token ids or a float chunk -> normalized (H, D)
  chunk (``none``, ``mint_uniform``, ``fast``, ``openvla_bins``);
- :mod:`~evalharness.actions.normalize`: normalized -> robot units (``quantile``,
  ``zscore``, ``range``, ``openvla``, ``none``), statistics via :mod:`~evalharness.actions.stats`;
- :mod:`~evalharness.actions.convert`: delta -> absolute, OpenVLA gripper, keep the first 7
  dims, clip;
- :mod:`~evalharness.actions.pipeline`: :func:`build_pipeline` composes them.

Also here: :mod:`~evalharness.actions.state_tokens` (pi0-FAST's state bins for the prompt)
and :mod:`~evalharness.actions.fast_fit` (fitting a FAST tokenizer). The formulas they
follow are in docs/reference/action-tokens.md.
"""

from evalharness.actions.pipeline import ActionPipeline, PipelineResult, build_pipeline

__all__ = ["ActionPipeline", "PipelineResult", "build_pipeline"]
