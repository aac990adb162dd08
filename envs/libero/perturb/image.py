"""``image``: corruptions of the policy's rendered images (never of the simulator).

One corruption per episode, drawn from ``kinds`` (all by default); its severity is the
level (1-5). Sizes in pixels scale with the image width (``w = width / 128``), so a
severity means the same at any camera size. Per family, at severity s:

- ``gaussian_noise``: additive N(0, sigma) with sigma = 4, 8, 14, 20, 28 (0-255 scale),
  fresh noise at every frame (seeded by the episode);
- ``gaussian_blur``: sigma = s * w pixels;
- ``motion_blur``: a line kernel of length (2 + 4 s) * w pixels at an angle within +-45 deg;
- ``fog``: a smooth random haze (sum of blurred noise at 4 scales) blended in with
  weight 0.12 s toward light grey;
- ``brightness``: every pixel times 1 + 0.15 s or 1 - 0.15 s (the sign drawn);
- ``pixel_jitter``: the image shifted by round(1.5 s w) pixels in a drawn direction,
  borders reflected (LIBERO-PRO's camera jitter).

``cameras`` (default the agentview ``base_0_rgb`` only) chooses which images are corrupted.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from scipy import ndimage

from envs.libero.perturb.base import Perturbation, PerturbationSettings, subset_of

KINDS = ("gaussian_noise", "gaussian_blur", "motion_blur", "fog", "brightness", "pixel_jitter")
IMAGE_CAMERAS = ("base_0_rgb", "left_wrist_0_rgb")
NOISE_SIGMA = (4.0, 8.0, 14.0, 20.0, 28.0)


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    size = max(3, int(np.ceil(length)) | 1)
    kernel = np.zeros((size, size))
    c = size // 2
    t = np.radians(angle_deg)
    for r in np.linspace(-length / 2, length / 2, num=4 * size):
        kernel[int(round(c + r * np.sin(t))), int(round(c + r * np.cos(t)))] = 1.0
    return kernel / kernel.sum()


def _fog_field(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    field = np.zeros(shape)
    for octave in range(4):
        sigma = max(h, w) / (2 ** (octave + 1))
        field += ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap") * (0.5**octave) * sigma
    field -= field.min()
    return field / max(field.max(), 1e-9)


def corrupt_image(image: np.ndarray, params: dict[str, Any], severity: int, frame: int) -> np.ndarray:
    """One uint8 (H, W, 3) image corrupted as ``params`` says (pure function of its inputs)."""
    img = image.astype(np.float64)
    w = image.shape[1] / 128.0
    kind = params["kind"]
    if kind == "gaussian_noise":
        rng = np.random.default_rng([params["seed"], frame])
        img = img + rng.normal(0.0, NOISE_SIGMA[severity - 1], size=img.shape)
    elif kind == "gaussian_blur":
        img = ndimage.gaussian_filter(img, sigma=(severity * w, severity * w, 0))
    elif kind == "motion_blur":
        kernel = _line_kernel((2 + 4 * severity) * w, params["angle"])
        img = np.stack([ndimage.convolve(img[..., ch], kernel, mode="reflect") for ch in range(3)], axis=-1)
    elif kind == "fog":
        field = _fog_field(image.shape[:2], np.random.default_rng(params["seed"]))[..., None]
        alpha = 0.12 * severity * (0.5 + field)
        img = img * (1 - alpha) + 215.0 * alpha
    elif kind == "brightness":
        img = img * (1.0 + params["sign"] * 0.15 * severity)
    elif kind == "pixel_jitter":
        shift = int(round(1.5 * severity * w)) or 1
        t = np.radians(params["angle"])
        dy, dx = int(round(shift * np.sin(t))), int(round(shift * np.cos(t)))
        h, wd = image.shape[:2]
        pad = max(abs(dy), abs(dx))
        padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        img = padded[pad - dy : pad - dy + h, pad - dx : pad - dx + wd]
    else:
        raise ValueError(f"unknown image corruption {kind!r}")
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class ImageSettings(PerturbationSettings):
    kinds: Annotated[tuple[str, ...] | None, subset_of(KINDS)] = None  # null = all of them
    cameras: Annotated[tuple[str, ...] | None, subset_of(IMAGE_CAMERAS)] = None  # null = base_0_rgb

class ImageCorruption(Perturbation):
    name = "image"

    Settings = ImageSettings

    def __init__(self, level: int | None = None, kinds: list[str] | None = None, cameras: list[str] | None = None) -> None:
        super().__init__(level)
        self.kinds = tuple(kinds) if kinds else KINDS
        self.cameras = tuple(cameras) if cameras else ("base_0_rgb",)

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        return {
            "kind": self.kinds[int(rng.integers(len(self.kinds)))],
            "seed": int(rng.integers(2**31)),
            "angle": float(rng.uniform(-45.0, 45.0)),  # degrees
            "sign": float(rng.choice([-1.0, 1.0])),
            "cameras": list(self.cameras),
        }

    def corrupt(self, images: dict[str, np.ndarray], params: dict[str, Any], frame: int) -> dict[str, np.ndarray]:
        out = dict(images)
        for cam in params["cameras"]:
            if cam in out and out[cam].any():
                out[cam] = corrupt_image(out[cam], params, self.level, frame)
        return out
