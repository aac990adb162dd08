"""Write a randomly initialised checkpoint of the reference network (``evalharness checkpoint init``).

The result is a complete checkpoint directory in the documented format: the same loader
reads it and trained weights of the same class, so it serves as the fixture for every
checkpoint test, as a template for ``policy.yaml``, and as a model for benchmarks
(``evalharness serve``). Its outputs are meaningless; its determinism is not: the same
``seed`` writes byte-identical weights.

``norm_stats.json`` holds illustrative LIBERO-like statistics in openpi's format (8-D
state, 7-D actions with the gripper in [-1, 1]); they are plausible magnitudes, not
statistics measured on LIBERO data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from evalharness.errors import UserInputError
from evalharness.models.checkpoint_files import FORMAT_VERSION, SPEC_FILE, STATS_FILE, WEIGHTS_FILE

REFERENCE_TARGET = "evalharness.models.reference.ReferenceVLA"

#: Illustrative LIBERO-like statistics (openpi layout): eef position (m), axis-angle (rad),
#: gripper finger positions (m); actions are OSC deltas in [-1, 1] and the gripper -1/+1.
_STATE = {"mean": [-0.05, 0.03, 1.0, 2.98, -0.12, -0.06, 0.027, -0.027],
          "std": [0.10, 0.15, 0.11, 0.33, 0.55, 0.38, 0.014, 0.014],
          "q01": [-0.30, -0.30, 0.87, 1.80, -1.60, -1.10, 0.001, -0.040],
          "q99": [0.15, 0.30, 1.30, 3.30, 1.30, 0.80, 0.040, -0.001]}
_ACTIONS = {"mean": [0.06, 0.09, -0.10, 0.0, 0.005, -0.005, -0.05],
            "std": [0.33, 0.38, 0.45, 0.04, 0.07, 0.08, 1.0],
            "q01": [-0.75, -0.80, -0.94, -0.12, -0.16, -0.20, -1.0],
            "q99": [0.94, 0.86, 0.94, 0.14, 0.18, 0.30, 1.0]}


def reference_spec(image_size: int = 64, output: str = "tokens") -> dict[str, Any]:
    """``policy.yaml`` for the reference network: MinT-uniform tokens, 10 steps x 7 dims."""
    horizon, action_dim = 10, 7
    decoder = ({"name": "mint_uniform", "action_dim": action_dim, "horizon": horizon} if output == "tokens"
               else {"name": "none", "action_dim": action_dim, "horizon": horizon})
    return {
        "format": FORMAT_VERSION,
        "model": {"_target_": REFERENCE_TARGET, "cameras": 3, "state_dim": 8, "prompt_vocab": 4096, "width": 16,
                  "embed": 64, "hidden": 128, "horizon": horizon, "action_dim": action_dim, "classes": 512,
                  "output": output},
        "inputs": {"cameras": ["base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"], "image_size": image_size,
                   "image_transforms": [{"resize": image_size}], "state": "normalized", "state_dim": 8,
                   "prompt": {"format": "{instruction}", "tokenizer": "hashed_words", "vocab": 4096,
                              "max_words": 24}},
        "output": {"type": output, "horizon": horizon, "action_dim": action_dim, "decoder": decoder,
                   "normalize": {"name": "quantile", "key": "actions", "dims": action_dim},
                   "convert": {"name": "none"}},
    }


def write_reference_checkpoint(directory: str | Path, *, seed: int = 0, image_size: int = 64,
                               output: str = "tokens", force: bool = False) -> Path:
    """Write policy.yaml, model.safetensors (random weights from ``seed``) and norm_stats.json."""
    import torch
    from safetensors.torch import save_file

    from evalharness.models.reference import ReferenceVLA

    out = Path(directory).expanduser()
    if not isinstance(seed, int) or seed < 0:
        raise UserInputError(f"--seed {seed!r} is not valid; allowed: an integer >= 0")
    if not 8 <= image_size <= 1024:
        raise UserInputError(f"--image-size {image_size} is not valid; allowed: 8..1024")
    if out.exists() and any(out.iterdir()) and not force:
        raise UserInputError(f"{str(out)!r} is not empty; pick a new directory or pass --force to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    spec = reference_spec(image_size, output)
    arguments = {k: v for k, v in spec["model"].items() if k != "_target_"}
    torch.manual_seed(seed)
    model = ReferenceVLA(**arguments)
    tensors = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    # One metadata key only: safetensors writes metadata from a hash map, in no fixed order.
    save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    # No path in the header: the identity is the files' sha256, and the same seed must give
    # the same checkpoint wherever it is written.
    header = ("# A checkpoint of evalharness's reference network (random weights, seed "
              f"{seed}).\n# Format: docs/checkpoints.md. Evaluate: evalharness policy=checkpoint "
              "policy.path=<this directory>\n")
    (out / SPEC_FILE).write_text(header + yaml.safe_dump(spec, sort_keys=False))
    (out / STATS_FILE).write_text(json.dumps({"norm_stats": {"state": _STATE, "actions": _ACTIONS}}, indent=2) + "\n")
    return out
