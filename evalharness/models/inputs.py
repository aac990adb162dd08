"""Named input transforms: one observation -> the model's input arrays, as ``policy.yaml`` says.

Like openpi's input transforms, each step is named in the checkpoint (``inputs``) so the
same weights always see the same preprocessing, whoever runs them. Preparation is per
observation and in NumPy: a batch is the stack of per-observation inputs, so a fork's
inputs never depend on its batch-mates, and the parent never needs torch.

- images: for each camera slot in ``inputs.cameras`` order, the protocol's image (or
  zeros when the observation lacks it), through ``inputs.image_transforms`` (the steps of
  :mod:`evalharness.transforms.images`, e.g. ``{resize: 64}``), which must end at
  ``image_size`` square; float32 in [0, 1], channels first: (C, 3, S, S); the mask is the
  observation's ``image_mask``;
- state: the 8-D state quantile-normalized with the checkpoint's ``state`` stats
  (``normalized``), as given (``raw``), or zeros (``none``);
- prompt: ``prompt.format`` with the instruction, lower-cased, ``_`` -> space, split into
  words ``[a-z0-9]+``; each word -> ``1 + crc32(word) % (vocab - 1)``; cut or zero-padded
  to ``max_words`` ids.

An observation the checkpoint cannot take (no state under a protocol without state, an
image that does not reach ``image_size``) is a configuration mistake, not an episode's
fault: it raises :class:`~evalharness.errors.UserInputError`, which stops the run.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

import numpy as np

from evalharness.errors import UserInputError
from evalharness.models.checkpoint_files import STATS_FILE, CheckpointFiles, InputSpec, PromptSpec
from evalharness.transforms.images import build_image_transform

_WORD = re.compile(r"[a-z0-9]+")


def prompt_ids(instruction: str, spec: PromptSpec) -> np.ndarray:
    """The instruction as ``max_words`` hashed word ids (0 = padding)."""
    text = spec.format.replace("{instruction}", instruction.strip().lower().replace("_", " "))
    words = _WORD.findall(text.lower())[: spec.max_words]
    ids = np.zeros(spec.max_words, dtype=np.int64)
    for i, word in enumerate(words):
        ids[i] = 1 + zlib.crc32(word.encode()) % (spec.vocab - 1)
    return ids


class InputTransform:
    """Observation -> ``{"images", "image_mask", "state", "prompt_ids"}`` NumPy arrays (no batch axis)."""

    def __init__(self, files: CheckpointFiles) -> None:
        self.spec: InputSpec = files.spec.inputs
        self.image_transform = build_image_transform(self.spec.image_transforms)
        self._state_normalizer = None
        if self.spec.state == "normalized":
            from evalharness.actions.normalize import build_normalizer

            self._state_normalizer = build_normalizer({"name": "quantile", "stats_path": str(files.file(STATS_FILE)),
                                                       "key": "state", "dims": self.spec.state_dim})
        self._prompts: dict[str, np.ndarray] = {}

    def __call__(self, observation: Any) -> dict[str, np.ndarray]:
        size = self.spec.image_size
        images = np.zeros((len(self.spec.cameras), 3, size, size), dtype=np.float32)
        mask = np.zeros(len(self.spec.cameras), dtype=bool)
        given = observation.get("images") or {}
        given_mask = observation.get("image_mask") or {}
        for slot, camera in enumerate(self.spec.cameras):
            if camera not in given or not given_mask.get(camera, False):
                continue
            image = self.image_transform(np.asarray(given[camera]))
            if image.shape != (size, size, 3):
                raise UserInputError(f"checkpoint input: camera {camera!r} is {image.shape} after "
                                  f"inputs.image_transforms; the model takes ({size}, {size}, 3) (add "
                                  f"{{resize: {size}}} to inputs.image_transforms in policy.yaml)")
            images[slot] = np.moveaxis(image, -1, 0).astype(np.float32) / 255.0
            mask[slot] = True
        return {"images": images, "image_mask": mask, "state": self._state(observation),
                "prompt_ids": self._prompt(str(observation.get("instruction", "")))}

    def _state(self, observation: Any) -> np.ndarray:
        if self.spec.state == "none":
            return np.zeros(self.spec.state_dim, dtype=np.float32)
        state = observation.get("state")
        if state is None:
            raise UserInputError("checkpoint input: the model takes the state (policy.yaml inputs.state: "
                              f"{self.spec.state}) but the observation has none (protocol.state is false)")
        vector = np.asarray(state, dtype=np.float64).reshape(-1)
        if vector.size < self.spec.state_dim:
            raise UserInputError(f"checkpoint input: state has {vector.size} values; the model takes "
                              f"{self.spec.state_dim}")
        vector = vector[: self.spec.state_dim]
        if self._state_normalizer is not None:
            vector = self._state_normalizer.normalize(vector)
        return vector.astype(np.float32)

    def _prompt(self, instruction: str) -> np.ndarray:
        if instruction not in self._prompts:
            self._prompts[instruction] = prompt_ids(instruction, self.spec.prompt)
        return self._prompts[instruction]
