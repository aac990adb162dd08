"""LIBERO-Plus's sensor-noise variants: the 50 noise codes applied to the agentview image.

Upstream (``ControlEnv.step`` / ``reset`` of the LIBERO-Plus wheel) corrupts
``agentview_image`` of every reset and step observation - not the one ``set_init_state``
returns - with code c: 1-10 motion blur, 11-20 gaussian blur, 21-30 zoom blur, 31-40 fog,
41-50 glass blur, each at severity ``(c - 1) % 10 + 1``, with the constants below. The
arithmetic here is upstream's, step for step, with two documented choices:

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


def _clipped_zoom(img: np.ndarray, zoom_factor: float) -> np.ndarray:
    from scipy.ndimage import zoom

    h = img.shape[0]
    ch = int(np.ceil(h / float(zoom_factor)))
    top = (h - ch) // 2
    img = zoom(img[top:top + ch, top:top + ch], (zoom_factor, zoom_factor, 1), order=1)
    trim_top = (img.shape[0] - h) // 2
    return img[trim_top:trim_top + h, trim_top:trim_top + h]


def zoom_blur(image: np.ndarray, severity: int) -> np.ndarray:
    stop, step = ZOOM_STEPS[severity - 1]
    x = (np.array(image) / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    factors = np.arange(1, stop, step)
    for factor in factors:
        out += _clipped_zoom(x, factor)
    x = (x + out) / (len(factors) + 1)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def plasma_fractal(rng: np.random.RandomState, mapsize: int = 256, wibbledecay: float = 3) -> np.ndarray:
    """The diamond-square heightmap of upstream's fog, in [0, 1]."""
    maparray = np.empty((mapsize, mapsize), dtype=np.float64)
    maparray[0, 0] = 0
    stepsize = mapsize
    wibble = 100.0

    def wibbledmean(array: np.ndarray) -> np.ndarray:
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        squares = corners + np.roll(corners, shift=-1, axis=0)
        squares += np.roll(squares, shift=-1, axis=1)
        maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(squares)
        dr = maparray[stepsize // 2:mapsize:stepsize, stepsize // 2:mapsize:stepsize]
        ul = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        lt = (dr + np.roll(dr, 1, axis=0)) + (ul + np.roll(ul, -1, axis=1))
        maparray[0:mapsize:stepsize, stepsize // 2:mapsize:stepsize] = wibbledmean(lt)
        tt = (dr + np.roll(dr, 1, axis=1)) + (ul + np.roll(ul, -1, axis=0))
        maparray[stepsize // 2:mapsize:stepsize, 0:mapsize:stepsize] = wibbledmean(tt)
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def fog(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    strength, decay = FOG[severity - 1]
    x = np.array(image) / 255.0
    if x.shape[:2] != (256, 256):
        raise UserInputError(
            f"LIBERO-Plus fog noise needs 256 x 256 images (upstream adds a 256 px fractal); got {x.shape[1]} x {x.shape[0]}: "
            "set camera_size=256"
        )
    max_val = x.max()
    x += strength * plasma_fractal(rng, wibbledecay=decay)[:256, :256][..., np.newaxis]
    return (np.clip(x * max_val / (max_val + strength), 0, 1) * 255).astype(np.uint8)


def glass_blur(image: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    sigma, delta, iterations = GLASS[severity - 1]
    if min(np.shape(image)[:2]) < 224:
        raise UserInputError(
            f"LIBERO-Plus glass-blur noise needs images of at least 224 px (upstream shuffles pixels up to row 224); "
            f"got {np.shape(image)[1]} x {np.shape(image)[0]}: set camera_size=224 or more"
        )
    x = np.uint8(_gaussian(np.array(image) / 255.0, sigma) * 255)
    for _ in range(iterations):
        for h in range(224 - delta, delta, -1):
            for w in range(224 - delta, delta, -1):
                dx, dy = rng.randint(-delta, delta, size=(2,))
                hp, wp = h + dy, w + dx
                x[h, w], x[hp, wp] = x[hp, wp], x[h, w]
    x = _gaussian(x / 255.0, sigma)
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


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
