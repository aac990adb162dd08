"""Image preprocessing steps of the published LIBERO protocols, composable by name.

A protocol lists steps such as ``["rotate180", {"resize_with_pad": 224}]`` and
:func:`build_image_transform` turns the list into one function, the way openpi composes
its transforms. Every step takes and returns a uint8 (H, W, 3) array.

Each step is a part (:mod:`evalharness.config.parts`): an :class:`ImageStep` class with one
settings model, named by ``_target_`` in ``conf/image_transform/<name>.yaml``. A list entry
``name`` reads that file; ``{name: argument}`` sets its one setting (``{resize: 224}``), or
several (``{jpeg_roundtrip: {quality: 90}}``); a mapping with ``_target_`` names a class
directly. Adding a step is one class here (or anywhere importable) and one YAML file.

Differences from the originals, stated so that nobody assumes more fidelity than there
is: openpi resizes with PIL bilinear (same here). OpenVLA resizes and crops with
TensorFlow (lanczos3 and ``crop_and_resize``); this module uses PIL's LANCZOS (close, not bit
for bit) and, for the crop, ``tf_center_crop`` (:mod:`evalharness.transforms.tf_crop`), which
computes TF's own sampling; the PIL ``center_crop`` samples 0.75 px off and is kept for
other uses (docs/fidelity.md).
"""

from __future__ import annotations

import abc
import io
import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, PlainValidator

from evalharness.config.fields import Count, at_least
from evalharness.config.parts import build_steps
from evalharness.errors import UserInputError
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


# --- the steps as parts ------------------------------------------------------------------------

class StepSettings(BaseModel):
    """The key every step config has; a step without parameters takes nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None


class SizeSettings(StepSettings):
    size: Count  # the square output side in pixels


class JpegSettings(StepSettings):
    quality: Annotated[int, at_least(1)]  # PIL's JPEG quality (95: OpenVLA's stored images)


def _area(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError("allowed: 0 < area <= 1")
    return float(value)


class CropSettings(StepSettings):
    area: Annotated[float, PlainValidator(_area)]  # the central fraction of the image kept


class ImageStep(abc.ABC):
    """One image step: a uint8 (H, W, 3) array in, a new one out (the input is never modified)."""

    Settings: ClassVar[type[StepSettings]] = StepSettings

    def __init__(self, apply: ImageTransform) -> None:
        self.apply = apply

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Any) -> ImageStep: ...

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.apply(image)


class Rotate180(ImageStep):
    """:func:`rotate180`."""

    @classmethod
    def from_settings(cls, settings: StepSettings) -> Rotate180:
        return cls(rotate180)


class FlipVertical(ImageStep):
    """:func:`flip_vertical`."""

    @classmethod
    def from_settings(cls, settings: StepSettings) -> FlipVertical:
        return cls(flip_vertical)


class ResizeWithPad(ImageStep):
    """:func:`resize_with_pad` (openpi)."""

    Settings = SizeSettings

    @classmethod
    def from_settings(cls, settings: SizeSettings) -> ResizeWithPad:
        return cls(resize_with_pad(settings.size))


class Resize(ImageStep):
    """:func:`resize` (OpenVLA's lanczos)."""

    Settings = SizeSettings

    @classmethod
    def from_settings(cls, settings: SizeSettings) -> Resize:
        return cls(resize(settings.size))


class JpegRoundtrip(ImageStep):
    """:func:`jpeg_roundtrip`."""

    Settings = JpegSettings

    @classmethod
    def from_settings(cls, settings: JpegSettings) -> JpegRoundtrip:
        return cls(jpeg_roundtrip(settings.quality))


class CenterCrop(ImageStep):
    """:func:`center_crop`."""

    Settings = CropSettings

    @classmethod
    def from_settings(cls, settings: CropSettings) -> CenterCrop:
        return cls(center_crop(settings.area))


class TfCenterCrop(ImageStep):
    """:func:`~evalharness.transforms.tf_crop.tf_center_crop` (OpenVLA's TensorFlow crop, exactly)."""

    Settings = CropSettings

    @classmethod
    def from_settings(cls, settings: CropSettings) -> TfCenterCrop:
        return cls(tf_center_crop(settings.area))


def build_image_transform(steps: Sequence[Any], where: str = "image_transforms") -> ImageTransform:
    """Compose a list of steps into one function (identity for an empty list)."""
    functions = build_steps("image_transform", steps, ImageStep, where=where)

    def apply(image: np.ndarray) -> np.ndarray:
        for function in functions:
            image = function(image)
        return image

    return apply
