"""Runs openpi's real ``pi0_fast_libero`` transforms on generated cases; runs INSIDE the openpi side venv.

``tests/test_fidelity_openpi.py`` starts this script as a subprocess with the side venv's
Python (``make openpi-venv``: ``rlinf-openpi==0.1.1``, RLinf's redistribution of
Physical Intelligence's openpi, plus the CPU packages its transform modules import) and
reads back what openpi computed, stage by stage:

    python openpi_side.py CASES.npz CONFIG.json OUT.npz

What is openpi's own code: ``get_config("pi0_fast_libero")``, its data config's
transforms (``LiberoInputs``, ``Normalize``, ``InjectDefaultPrompt``, ``ResizeImages``,
``TokenizeFASTInputs`` / ``ExtractFASTActions`` with the real ``FASTTokenizer``,
``Unnormalize``, ``AbsoluteActions``, ``LiberoOutputs``), composed and run by openpi's own
``Policy.infer`` exactly as ``create_trained_policy`` assembles it.

What is not, because it cannot be had here (no network beyond PyPI):

- the model: a stand-in whose ``sample_actions`` returns the token row under test (what
  pi0-FAST's autoregressive decoding returns: generated ids, zero-padded);
- the PaliGemma tokenizer (``gs://big_vision/paligemma_tokenizer.model``):
  ``download.maybe_download`` is pointed at the generated PaliGemma-like SentencePiece
  model;
- the FAST processor (``physical-intelligence/fast``, remote code on the model hub):
  ``AutoProcessor.from_pretrained`` returns :class:`FittedFastProcessor`, which gives
  openpi's ``FASTTokenizer`` the project's fitted FAST tokenizer through the one method
  openpi calls, ``decode(tokens, time_horizon, action_dim)``, following the processor's
  documented decode (BPE decode, ``ord + min_token``, reshape, zeros when the shape is not
  (H, D) or decoding fails, inverse DCT). So openpi's own extraction logic (the
  ``"Action: "`` / ``"|"`` text split, the re-encode and the PaliGemma id mapping) runs for
  real; the BPE decode is the ``tokenizers`` library's, as in the processor.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402


class FittedFastProcessor:
    """The FAST processor's ``decode`` over a fitted ``tokenizer.json`` (see the module docstring)."""

    def __init__(self, tokenizer_path: str, scale: float, min_token: int) -> None:
        from transformers import PreTrainedTokenizerFast

        self.bpe_tokenizer = PreTrainedTokenizerFast(tokenizer_file=tokenizer_path, clean_up_tokenization_spaces=False)
        self.scale = scale
        self.min_token = min_token

    def decode(self, tokens, *, time_horizon: int, action_dim: int) -> np.ndarray:
        from scipy.fft import idct

        chunks = []
        for row in tokens:
            try:
                text = self.bpe_tokenizer.decode(row)
                coeffs = np.array(list(map(ord, text))) + self.min_token
                coeffs = coeffs.reshape(-1, action_dim)
                assert coeffs.shape == (time_horizon, action_dim)
            except Exception:  # noqa: BLE001 - the processor turns every failure into zeros
                coeffs = np.zeros((time_horizon, action_dim))
            chunks.append(idct(coeffs / self.scale, axis=0, norm="ortho"))
        return np.stack(chunks)


class _CountWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def build_policy(config: dict):
    """openpi's Policy for pi0_fast_libero, assembled as ``create_trained_policy`` does."""
    import flax.nnx as nnx
    import jax.numpy as jnp

    from openpi import transforms
    from openpi.models import tokenizer as tokenizer_module
    from openpi.policies import policy as policy_module
    from openpi.shared import download
    from openpi.training import config as config_module

    sp_model = pathlib.Path(config["sp_model"])
    fast = config["fast"]
    download.maybe_download = lambda url, **kwargs: sp_model  # the PaliGemma tokenizer's stand-in
    tokenizer_module.download.maybe_download = download.maybe_download

    class _AutoProcessor:
        @staticmethod
        def from_pretrained(path, **kwargs):
            return FittedFastProcessor(fast["tokenizer_path"], fast["scale"], fast["min_token"])

    tokenizer_module.AutoProcessor = _AutoProcessor

    train_config = config_module.get_config("pi0_fast_libero")
    data_config = train_config.data.create(train_config.assets_dirs, train_config.model)
    stats = {key: transforms.NormStats(**{k: np.asarray(v) for k, v in value.items()})
             for key, value in json.loads(pathlib.Path(config["norm_stats"]).read_text())["norm_stats"].items()}

    class StandIn(nnx.Module):
        """Returns the token row under test as pi0-FAST's sample_actions would (batch of one)."""

        row = np.zeros(1, dtype=np.int32)

        def sample_actions(self, rng, observation, **kwargs):
            return jnp.asarray(StandIn.row)[None]

    policy = policy_module.Policy(
        StandIn(),
        transforms=[
            transforms.InjectDefaultPrompt(None),
            *data_config.data_transforms.inputs,
            transforms.Normalize(stats, use_quantiles=data_config.use_quantile_norm),
            *data_config.model_transforms.inputs,
        ],
        output_transforms=[
            *data_config.model_transforms.outputs,
            transforms.Unnormalize(stats, use_quantiles=data_config.use_quantile_norm),
            *data_config.data_transforms.outputs,
        ],
    )
    policy._sample_actions = StandIn().sample_actions  # no jit: the row changes per case
    outputs = [*data_config.model_transforms.outputs,
               transforms.Unnormalize(stats, use_quantiles=data_config.use_quantile_norm),
               *data_config.data_transforms.outputs]
    return policy, StandIn, outputs, data_config, train_config


def main(cases_path: str, config_path: str, out_path: str) -> None:
    import jax

    config = json.loads(pathlib.Path(config_path).read_text())
    cases = np.load(cases_path, allow_pickle=False)
    policy, stand_in, output_transforms, data_config, train_config = build_policy(config)
    warnings = _CountWarnings()
    logging.getLogger().addHandler(warnings)
    out: dict[str, np.ndarray] = {}
    meta: dict = {
        "max_token_len": train_config.model.max_token_len,
        "use_quantile_norm": data_config.use_quantile_norm,
        "input_transforms": [type(t).__name__ for t in policy._input_transform.transforms],
        "output_transforms": [type(t).__name__ for t in output_transforms],
        "warnings": [],
    }

    # 1. Observations through the input transforms: prompt ids, normalized state, images.
    prompts = json.loads(str(cases["prompts"]))
    states = cases["states"]
    base, wrist = cases["base_images"], cases["wrist_images"]
    for i, prompt in enumerate(prompts):
        obs = {"observation/image": base[i % len(base)], "observation/wrist_image": wrist[i % len(wrist)],
               "observation/state": states[i], "prompt": prompt}
        before = len(warnings.messages)
        inputs = policy._input_transform(jax.tree.map(lambda x: x, obs))
        mask = np.asarray(inputs["tokenized_prompt_mask"], dtype=bool)
        out[f"prompt_ids/{i}"] = np.asarray(inputs["tokenized_prompt"])[mask].astype(np.int64)
        out[f"state/{i}"] = np.asarray(inputs["state"])
        out[f"truncated/{i}"] = np.asarray(len(warnings.messages) > before)
        if i < len(base):
            for cam in ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"):
                out[f"image/{i}/{cam}"] = np.asarray(inputs["image"][cam])
                out[f"image_mask/{i}/{cam}"] = np.asarray(inputs["image_mask"][cam])

    # 2. Token rows through the output transforms, with the state of the same query.
    rows, row_states = cases["rows"], cases["row_states"]
    lengths = cases["row_lengths"]
    for i in range(len(lengths)):
        row = rows[i, : lengths[i]].astype(np.int32)
        stand_in.row = row
        obs = {"observation/image": base[0], "observation/wrist_image": wrist[0],
               "observation/state": row_states[i], "prompt": "pick up the bowl"}
        out[f"actions/{i}"] = np.asarray(policy.infer(obs)["actions"])
        # the same outputs, one transform at a time (what Policy.infer feeds them)
        inputs = policy._input_transform(jax.tree.map(lambda x: x, obs))
        data = {"state": np.asarray(jax.numpy.asarray(inputs["state"])), "actions": row}
        for k, transform in enumerate(output_transforms):
            data = transform(data)
            out[f"stage/{i}/{k}"] = np.array(data["actions"], copy=True)  # AbsoluteActions adds in place
    meta["warnings"] = warnings.messages[:5]
    meta["n_warnings"] = len(warnings.messages)
    np.savez(out_path, **out, meta=np.asarray(json.dumps(meta)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
