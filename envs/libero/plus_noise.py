"""LIBERO-Plus's sensor-noise variants: the 50 noise codes applied to the agentview image.

Upstream (``ControlEnv.step`` / ``reset`` of the LIBERO-Plus wheel) corrupts
``agentview_image`` of every reset and step observation - not the one ``set_init_state``
returns - with code c: 1-10 motion blur, 11-20 gaussian blur, 21-30 zoom blur, 31-40 fog,
41-50 glass blur, each at severity ``(c - 1) % 10 + 1``, with the constants below (the
corruptions are those of ImageNet-C, Hendrycks & Dietterich 2019, at ten severities). The
arithmetic and the order of the random draws here are upstream's, so an image comes out
the same given the same draws (``tests/test_libero_plus_fidelity.py``); the code is this
project's own. Two documented choices:

- upstream draws from NumPy's unseeded global RNG (motion-blur angle, fog fractal, glass
  shuffles); here the draws come from a ``RandomState`` seeded per episode
  (:meth:`SensorNoise.reseed`, from the episode's layout seed and init state), so an
  episode replays exactly;
- gaussian blur is ``scipy.ndimage.gaussian_filter`` with ``mode="nearest"`` and
  ``truncate=4``, which is what upstream's ``skimage.filters.gaussian(..., channel_axis=-1)``
  calls; motion blur is ImageMagick's ``MagickMotionBlurImage`` through Wand, as upstream's,
  and needs the ``Wand`` package and ImageMagick's library (without them codes 1-10 are
  refused with one line).

Upstream's glass blur shuffles rows/columns ``224 - d .. d+1`` and its fog adds a 256 x 256
fractal, whatever the image size: both are kept (fog then needs 256 px images, as upstream).
"""

from __future__ import annotations

import numpy as np

from envs.errors import UserInputError

KINDS = ("motion_blur", "gaussian_blur", "zoom_blur", "fog", "glass_blur")
MOTION = [(5, 2), (8, 3), (10, 4), (12, 5), (15, 6), (18, 8), (20, 10), (25, 12), (30, 15), (35, 20)]
FOG = [(0.5, 3), (1.0, 2.8), (1.5, 2.5), (2.0, 2.2), (2.5, 2.0), (3.0, 1.8), (3.5, 1.6), (4.0, 1.5), (4.5, 1.4), (5.0, 1.3)]
GLASS = [(0.5, 1, 3), (0.7, 1, 3), (0.9, 2, 3), (1.0, 2, 2), (1.1, 3, 2), (1.3, 3, 2), (1.5, 4, 2), (1.8, 4, 2), (2.2, 5, 1), (2.5, 5, 1)]
ZOOM_STEPS = [(1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03),
              (1.36, 0.01), (1.41, 0.01), (1.46, 0.02), (1.51, 0.02), (1.56, 0.03)]


def kind_and_severity(code: int) -> tuple[str, int]:
    if not 1 <= int(code) <= 50:
        raise UserInputError(f"LIBERO-Plus noise code {code!r} is not valid; allowed: 1..50")
    return KINDS[(int(code) - 1) // 10], (int(code) - 1) % 10 + 1


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0)


def gaussian_blur(image: np.ndarray, severity: int) -> np.ndarray:
    x = _gaussian(np.array(image) / 255.0, float(severity))
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def _zoom_centre(image: np.ndarray, factor: float) -> np.ndarray:
    """The central 1/factor of a square image, magnified back to its size (bilinear)."""
    from scipy.ndimage import zoom

    side = image.shape[0]
    crop = int(np.ceil(side / float(factor)))
    first = (side - crop) // 2
    magnified = zoom(image[first:first + crop, first:first + crop], (factor, factor, 1), order=1)
    excess = (magnified.shape[0] - side) // 2
    return magnified[excess:excess + side, excess:excess + side]


def zoom_blur(image: np.ndarray, severity: int) -> np.ndarray:
    """The mean of the image and its centre magnified by each factor 1, 1 + step, ... below the limit."""
    limit, step = ZOOM_STEPS[severity - 1]
    frame = (np.array(image) / 255.0).astype(np.float32)
    factors = np.arange(1, limit, step)
    total = np.zeros_like(frame)
    for factor in factors:
        total += _zoom_centre(frame, factor)
    blurred = (frame + total) / (len(factors) + 1)
    return (np.clip(blurred, 0, 1) * 255).astype(np.uint8)


def plasma_fractal(rng: np.random.RandomState, mapsize: int = 256, wibbledecay: float = 3) -> np.ndarray:
    """A diamond-square height map in [0, 1], ``mapsize`` a power of 2.

    Each pass halves the grid step: the centre of every square gets the mean of its four
    corners, then the midpoint of every edge the mean of its four neighbours, each plus
    uniform noise of amplitude ``jitter**2`` (``jitter`` starts at 100 and is divided by
    ``wibbledecay`` per pass). The draws run in this order, as LIBERO-Plus's fog draws them.
    """
    height = np.empty((mapsize, mapsize), dtype=np.float64)
    height[0, 0] = 0
    jitter = 100.0

    def noisy_mean(sums: np.ndarray) -> np.ndarray:
        return sums / 4 + jitter * rng.uniform(-jitter, jitter, sums.shape)

    step = mapsize
    while step >= 2:
        half = step // 2
        corners = height[0:mapsize:step, 0:mapsize:step]
        corner_sums = corners + np.roll(corners, shift=-1, axis=0)
        corner_sums += np.roll(corner_sums, shift=-1, axis=1)
        height[half:mapsize:step, half:mapsize:step] = noisy_mean(corner_sums)
        centres = height[half:mapsize:step, half:mapsize:step]
        corners = height[0:mapsize:step, 0:mapsize:step]
        across = (centres + np.roll(centres, 1, axis=0)) + (corners + np.roll(corners, -1, axis=1))
        height[0:mapsize:step, half:mapsize:step] = noisy_mean(across)
        down = (centres + np.roll(centres, 1, axis=1)) + (corners + np.roll(corners, -1, axis=0))
        height[half:mapsize:step, 0:mapsize:step] = noisy_mean(down)
        step = half
        jitter /= wibbledecay
    height -= height.min()
    return height / height.max()


def fog(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """The image plus ``strength`` x a 256 px height map, rescaled to keep its brightest value."""
    strength, decay = FOG[severity - 1]
    frame = np.array(image) / 255.0
    if frame.shape[:2] != (256, 256):
        raise UserInputError(
            f"LIBERO-Plus fog noise needs 256 x 256 images (upstream adds a 256 px fractal); got {frame.shape[1]} x "
            f"{frame.shape[0]}: set camera_size=256"
        )
    brightest = frame.max()
    frame += strength * plasma_fractal(rng, wibbledecay=decay)[:256, :256][..., np.newaxis]
    return (np.clip(frame * brightest / (brightest + strength), 0, 1) * 255).astype(np.uint8)


def glass_blur(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Blur, then ``passes`` sweeps that swap each pixel with one up to ``reach`` away, then blur.

    The sweep runs rows and columns from ``224 - reach`` down to ``reach + 1`` whatever the
    image size, drawing (dx, dy) per pixel in that order, as LIBERO-Plus does.
    """
    sigma, reach, passes = GLASS[severity - 1]
    if min(np.shape(image)[:2]) < 224:
        raise UserInputError(
            f"LIBERO-Plus glass-blur noise needs images of at least 224 px (upstream shuffles pixels up to row 224); "
            f"got {np.shape(image)[1]} x {np.shape(image)[0]}: set camera_size=224 or more"
        )
    pixels = np.uint8(_gaussian(np.array(image) / 255.0, sigma) * 255)
    sweep = range(224 - reach, reach, -1)
    for _ in range(passes):
        for row in sweep:
            for col in sweep:
                dx, dy = rng.randint(-reach, reach, size=(2,))
                other = (row + dy, col + dx)
                pixels[row, col], pixels[other] = pixels[other], pixels[row, col]
    return (np.clip(_gaussian(pixels / 255.0, sigma), 0, 1) * 255).astype(np.uint8)


def motion_blur(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    import ctypes
    from io import BytesIO

    try:
        import cv2
        from PIL import Image
        from wand.api import library
        from wand.image import Image as WandImage
    except ImportError as exc:
        raise UserInputError(
            f"LIBERO-Plus noise codes 1-10 (motion blur) need ImageMagick through Wand, as upstream: "
            f"'pip install Wand' and the system's ImageMagick library ({exc})"
        ) from None
    radius, sigma = MOTION[severity - 1]
    library.MagickMotionBlurImage.argtypes = (ctypes.c_void_p, ctypes.c_double, ctypes.c_double, ctypes.c_double)
    buffer = BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, format="PNG")
    with WandImage(blob=buffer.getvalue()) as wand:
        library.MagickMotionBlurImage(wand.wand, radius, sigma, rng.uniform(-45, 45))
        decoded = cv2.imdecode(np.frombuffer(wand.make_blob(), np.uint8), cv2.IMREAD_UNCHANGED)
    return np.clip(decoded[..., [2, 1, 0]], 0, 255).astype(np.uint8)


def check_image_size(code: int, height: int, width: int) -> None:
    """One line, before an env is built, for a noise code whose upstream arithmetic needs another size."""
    kind, _ = kind_and_severity(code)
    if kind == "fog" and (height, width) != (256, 256):
        raise UserInputError(f"LIBERO-Plus fog noise (code {code}) needs camera_size=256 (upstream adds a 256 px fractal)")
    if kind == "glass_blur" and min(height, width) < 224:
        raise UserInputError(f"LIBERO-Plus glass-blur noise (code {code}) needs camera_size >= 224 (upstream shuffles up to row 224)")


class SensorNoise:
    """A variant's noise code applied to agentview frames, with a per-episode seeded RNG."""

    def __init__(self, code: int) -> None:
        self.code = int(code)
        self.kind, self.severity = kind_and_severity(code)
        self.seed: int | None = None
        self._rng = np.random.RandomState(0)

    def reseed(self, layout_seed: int, init_state: int) -> int:
        """Seed this episode's draws; returns the seed (recorded with the episode's events)."""
        self.seed = int(np.random.SeedSequence([int(layout_seed), int(init_state), self.code]).generate_state(1)[0])
        self._rng = np.random.RandomState(self.seed)
        return self.seed

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.kind == "gaussian_blur":
            return gaussian_blur(image, self.severity)
        if self.kind == "zoom_blur":
            return zoom_blur(image, self.severity)
        if self.kind == "fog":
            return fog(image, self.severity, self._rng)
        if self.kind == "glass_blur":
            return glass_blur(image, self.severity, self._rng)
        return motion_blur(image, self.severity, self._rng)
