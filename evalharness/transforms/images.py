"""Image preprocessing steps of the published LIBERO protocols, composable by name.

A protocol lists steps such as ``["rotate180", {"resize_with_pad": 224}]`` and
:func:`build_image_transform` turns the list into one function, the way openpi composes
its transforms. Every step takes and returns a uint8 (H, W, 3) array.

Differences from the originals, stated so that nobody assumes more fidelity than there
is: openpi resizes with PIL bilinear (same here). OpenVLA resizes and crops with
TensorFlow (lanczos3 and ``crop_and_resize``); this module uses PIL's LANCZOS (close, not bit
for bit) and, for the crop, ``tf_center_crop`` (:mod:`evalharness.transforms.tf_crop`), which
computes TF's own sampling; the PIL ``center_crop`` samples 0.75 px off and is kept for
other uses (docs/fidelity.md).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from evalharness.errors import UserInputError, choices_error
from evalharness.transforms.tf_crop import tf_center_crop

ImageTransform = Callable[[np.ndarray], np.ndarray]


def rotate180(image: np.ndarray) -> np.ndarray:
    """Flip both axes: LIBERO's upside-down frames become the orientation VLA data uses."""
    return np.ascontiguousarray(image[::-1, ::-1])


def flip_vertical(image: np.ndarray) -> np.ndarray:
    """Turn LIBERO's bottom-up rows into a right-side-up image (no mirroring)."""
    return np.ascontiguousarray(image[::-1])


def resize_with_pad(size: int) -> ImageTransform:
    """Fit inside size x size keeping the aspect ratio (PIL bilinear), pad with zeros."""

    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        if (height, width) == (size, size):
            return image
        ratio = max(width / size, height / size)
        new_w, new_h = int(width / ratio), int(height / ratio)
        resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), resample=Image.BILINEAR))
        out = np.zeros((size, size, 3), dtype=np.uint8)
        top, left = (size - new_h) // 2, (size - new_w) // 2
        out[top : top + new_h, left : left + new_w] = resized
        return out

    return apply


def resize(size: int) -> ImageTransform:
    """Resize to size x size with a high-quality filter (OpenVLA's lanczos)."""

    def apply(image: np.ndarray) -> np.ndarray:
        if image.shape[:2] == (size, size):
            return image
        return np.asarray(Image.fromarray(image).resize((size, size), resample=Image.LANCZOS))

    return apply


def jpeg_roundtrip(quality: int = 95) -> ImageTransform:
    """Encode to JPEG and decode again, as OpenVLA's training images were stored."""

    def apply(image: np.ndarray) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))

    return apply


def center_crop(area: float) -> ImageTransform:
    """Keep the central ``area`` fraction of the image, then resize back to its size."""
    if not 0.0 < area <= 1.0:
        raise UserInputError(f"center_crop area {area!r} is not valid; allowed: 0 < area <= 1")
    side = math.sqrt(area)

    def apply(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        crop_h, crop_w = int(round(height * side)), int(round(width * side))
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        cropped = Image.fromarray(image[top : top + crop_h, left : left + crop_w])
        return np.asarray(cropped.resize((width, height), resample=Image.BILINEAR))

    return apply


# name -> factory taking the step's argument (or nothing)
STEPS: dict[str, Callable[..., ImageTransform]] = {
    "rotate180": lambda: rotate180,
    "flip_vertical": lambda: flip_vertical,
    "resize_with_pad": resize_with_pad,
    "resize": resize,
    "jpeg_roundtrip": jpeg_roundtrip,
    "center_crop": center_crop,
    "tf_center_crop": tf_center_crop,
}


def _parse_step(step: Any) -> tuple[str, Any]:
    if isinstance(step, str):
        return step, None
    if isinstance(step, dict) and len(step) == 1:
        (name, arg), = step.items()
        return str(name), arg
    raise UserInputError(f"image transform step {step!r} is not valid; allowed: a name or {{name: argument}}")


def build_image_transform(steps: Sequence[Any]) -> ImageTransform:
    """Compose a protocol's list of steps into one function (identity for an empty list)."""
    functions: list[ImageTransform] = []
    for step in steps:
        name, arg = _parse_step(step)
        if name not in STEPS:
            raise choices_error("image transform", name, list(STEPS))
        functions.append(STEPS[name]() if arg is None else STEPS[name](arg))

    def apply(image: np.ndarray) -> np.ndarray:
        for function in functions:
            image = function(image)
        return image

    return apply
