"""OpenVLA's center crop exactly as TensorFlow computes it, in numpy.

OpenVLA's LIBERO eval (``openvla_utils.get_vla_action`` with ``center_crop=True``) converts
the 224 px image to float32 in [0, 1] (``tf.image.convert_image_dtype``: ``x * (1/255)``),
crops a box of side ``sqrt(0.9)`` centred in it and resizes the box back to 224 with
``tf.image.crop_and_resize`` (bilinear), clips to [0, 1] and converts back to uint8
(``convert_image_dtype(..., saturate=True)``: ``x * 255.5``, then truncation).

``crop_and_resize`` does not sample like a crop followed by a resize: output pixel ``i``
reads input coordinate ``y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (crop_h - 1)``, i.e.
5.722 + i * 0.94868 for 224 px and area 0.9, where PIL's crop-then-resize reads
4.975 + i * 0.95089 (0.75 px off at the top-left, a 0.23 % scale error; a mean of 3.8 grey
levels on LIBERO frames). This module computes TF's coordinates and bilinear weights in
float32, in TF's order of operations, so the result matches TF's within one grey level
(``tests/test_fidelity_openvla.py`` measures it against the real ``tf.image`` ops).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from evalharness.errors import UserInputError

F32 = np.float32


def crop_box(area: float) -> tuple[np.float32, np.float32, np.float32, np.float32]:
    """(y1, x1, y2, x2) of OpenVLA's ``crop_and_resize`` helper: side sqrt(area), centred, float32."""
    side = np.clip(np.sqrt(F32(area)), F32(0), F32(1)).astype(F32)
    offset = ((F32(1) - side) / F32(2)).astype(F32)
    end = F32(offset + side)
    return offset, offset, end, end


def _sample_axis(start: np.float32, end: np.float32, size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low index, high index and lerp weight per output position, as TF's kernel computes them."""
    scale = F32(F32(end - start) * F32(size_in - 1) / F32(size_out - 1)) if size_out > 1 else F32(0)
    positions = np.arange(size_out)
    if size_out > 1:
        coords = (F32(start * F32(size_in - 1)) + positions.astype(F32) * scale).astype(F32)
    else:
        coords = np.full(1, F32(F32(0.5) * (start + end) * F32(size_in - 1)), dtype=F32)
    low = np.floor(coords).astype(np.int64)
    high = np.ceil(coords).astype(np.int64)
    return low, high, (coords - low.astype(F32)).astype(F32)


def tf_crop_and_resize(image: np.ndarray, area: float, size: int | None = None) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (size, size, 3): OpenVLA's float32 TF center crop (see the module docstring)."""
    height, width = image.shape[:2]
    out_h = out_w = size or height
    y1, x1, y2, x2 = crop_box(area)
    pixels = (image.astype(F32) * F32(1.0 / 255.0)).astype(F32)
    top_i, bottom_i, y_lerp = _sample_axis(y1, y2, height, out_h)
    left_i, right_i, x_lerp = _sample_axis(x1, x2, width, out_w)
    x_lerp = x_lerp[None, :, None]
    top_left, top_right = pixels[top_i][:, left_i], pixels[top_i][:, right_i]
    bottom_left, bottom_right = pixels[bottom_i][:, left_i], pixels[bottom_i][:, right_i]
    top = (top_left + (top_right - top_left) * x_lerp).astype(F32)
    bottom = (bottom_left + (bottom_right - bottom_left) * x_lerp).astype(F32)
    crop = (top + (bottom - top) * y_lerp[:, None, None]).astype(F32)
    crop = np.clip(crop, F32(0), F32(1))
    return np.clip(crop * F32(255.5), 0, 255).astype(np.uint8)  # convert_image_dtype: x * (max + 0.5), truncated


def tf_center_crop(area: float) -> Callable[[np.ndarray], np.ndarray]:
    """The ``tf_center_crop`` image transform step: OpenVLA's crop, back to the input's size."""
    if not 0.0 < float(area) <= 1.0:
        raise UserInputError(f"tf_center_crop area {area!r} is not valid; allowed: 0 < area <= 1")

    def apply(image: np.ndarray) -> np.ndarray:
        return tf_crop_and_resize(image, float(area))

    return apply
