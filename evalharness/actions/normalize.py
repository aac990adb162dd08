"""Normalizers: between the model's normalized action space and the robot's units.

Each provides ``normalize`` (robot units -> model space, what training did) and its inverse
``unnormalize`` (what evaluation needs); both apply to the first ``K`` dims of the last
axis, ``K`` being the length of the selected statistics, and leave any further dims
untouched (they are padding, dropped later by ``keep_first_7``).

- ``quantile`` (pi0-FAST, pi0.5): ``x = (x_n + 1) / 2 * (q99 - q01 + 1e-6) + q01``;
- ``zscore`` (pi0): ``x = x_n * (std + 1e-6) + mean``;
- ``range`` (a stated action box): ``x = low + (x_n + 1) / 2 * (high - low)``;
- ``openvla``: ``x = 0.5 * (x_n + 1) * (q99 - q01) + q01`` on the masked (arm) dims only,
  others unchanged; its forward map is OpenVLA's ``2 (x - q01) / (q99 - q01 + 1e-8) - 1``
  without the clip to [-1, 1], so it inverts ``unnormalize`` up to that 1e-8;
- ``none``: identity.

Statistics are read with :func:`evalharness.actions.stats.load_norm_stats`; ``dims``
(7 in the shipped files, LIBERO's action size) keeps the first entries when the stats are
wider (padded to the model's action dim); ``dims: null`` keeps all.

Each normalizer has one settings model; ``conf/normalize/<name>.yaml`` names the class by
``_target_`` and spells out every setting (:mod:`evalharness.config.parts`).
"""

from __future__ import annotations

import abc
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainValidator

from evalharness.actions.stats import NormStats, load_norm_stats
from evalharness.config.fields import NonNegativeInt, NumberOrList, OptionalCount
from evalharness.config.parts import load_part
from evalharness.config.validation import validate_settings
from evalharness.errors import DecodeError, UserInputError

QUANTILE_EPS = 1e-6
ZSCORE_EPS = 1e-6
OPENVLA_EPS = 1e-8
LIBERO_DIMS = 7


def _bool_list(value: Any) -> tuple[bool, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError("allowed: a list of true/false")
    items = list(value)
    if not items or not all(isinstance(v, bool) for v in items):
        raise ValueError("allowed: a non-empty list of true/false")
    return tuple(items)


class NormalizeSettings(BaseModel):
    """The key every normalize config has: ``none`` takes nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None  # the config's name (conf/normalize/<name>.yaml); the normalizer records its own


class StatsSettings(NormalizeSettings):
    """``conf/normalize/{quantile,zscore}.yaml``: a statistics file, its entry, how many dims."""

    stats_path: Any  # required: a norm_stats.json (checked when the normalizer is built)
    key: str | None
    dims: OptionalCount  # the first entries of the stats (null = all)


class OpenVLASettings(StatsSettings):
    """``conf/normalize/openvla.yaml``: adds which dims are normalized (the rest pass through)."""

    mask: Annotated[tuple[bool, ...] | None, PlainValidator(_bool_list)]  # null: the stats' mask, else arm_dims
    arm_dims: NonNegativeInt


class RangeSettings(NormalizeSettings):
    """``conf/normalize/range.yaml``: an explicit action box."""

    low: NumberOrList  # required: a number, or one per dim
    high: NumberOrList  # required: idem, high > low
    dims: OptionalCount


class Normalizer(abc.ABC):
    """A pair of maps between robot units and the model's normalized space."""

    name: ClassVar[str]
    Settings: ClassVar[type[NormalizeSettings]]

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Any) -> Normalizer:
        """Build from validated settings (a missing or malformed stats file raises UserInputError)."""

    @abc.abstractmethod
    def _forward(self, x: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def _inverse(self, x: np.ndarray) -> np.ndarray: ...

    @property
    @abc.abstractmethod
    def width(self) -> int | None:
        """How many leading dims this normalizer covers (None: all of them)."""

    def normalize(self, x: Any) -> np.ndarray:
        """Robot units -> normalized space (first ``width`` dims of the last axis)."""
        return self._apply(x, self._forward)

    def unnormalize(self, x: Any) -> np.ndarray:
        """Normalized space -> robot units (first ``width`` dims of the last axis)."""
        return self._apply(x, self._inverse)

    def _apply(self, x: Any, fn: Any) -> np.ndarray:
        out = np.array(x, dtype=np.float64)  # a copy: callers keep their input
        if out.ndim == 0:
            raise DecodeError(f"normalize {self.name!r}: expected a vector or an (H, D) chunk; got a scalar")
        width = out.shape[-1] if self.width is None else self.width
        if out.shape[-1] < width:
            raise DecodeError(f"normalize {self.name!r}: the chunk has {out.shape[-1]} dims per step but the "
                              f"normalization covers {width}; expected at least {width}")
        out[..., :width] = fn(out[..., :width])
        return out

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Name, parameters and the stats file's path and sha256 (JSON-serializable)."""


class IdentityNormalizer(Normalizer):
    """The model already works in robot units."""

    name: ClassVar[str] = "none"
    Settings: ClassVar[type[NormalizeSettings]] = NormalizeSettings

    @classmethod
    def from_settings(cls, settings: NormalizeSettings) -> IdentityNormalizer:
        return cls()

    @property
    def width(self) -> int | None:
        return None

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def _inverse(self, x: np.ndarray) -> np.ndarray:
        return x

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class _StatsNormalizer(Normalizer):
    """Shared reading of ``stats_path`` / ``key`` / ``dims``."""

    FIELDS: ClassVar[tuple[str, ...]]
    Settings: ClassVar[type[StatsSettings]] = StatsSettings

    def __init__(self, vectors: list[np.ndarray], stats: NormStats | None = None, dims: int | None = None) -> None:
        self.vectors = [np.asarray(v, dtype=np.float64) for v in vectors]
        self.stats = stats
        self.dims = dims

    @classmethod
    def _load(cls, s: StatsSettings) -> tuple[list[np.ndarray], NormStats, int | None]:
        where = f"normalize {cls.name!r}"
        stats = load_norm_stats(s.stats_path, s.key, where=where)
        return stats.vectors(cls.FIELDS, s.dims, where), stats, s.dims

    @classmethod
    def from_settings(cls, settings: StatsSettings) -> _StatsNormalizer:
        vectors, stats, dims = cls._load(settings)
        return cls(vectors, stats, dims)

    @classmethod
    def from_stats_file(cls, path: Any, key: str = "actions", dims: int | None = LIBERO_DIMS) -> _StatsNormalizer:
        """Convenience for policies (e.g. normalizing the ``state`` key for a prompt)."""
        settings = validate_settings(StatsSettings, {"name": cls.name, "stats_path": path, "key": key, "dims": dims},
                                     "normalize")
        return cls.from_settings(settings)

    @property
    def width(self) -> int | None:
        return self.vectors[0].size

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dims": self.dims, "width": self.width}
        if self.stats is not None:
            out.update(stats_path=str(self.stats.path), stats_sha256=self.stats.sha256, key=self.stats.key)
        return out


class QuantileNormalizer(_StatsNormalizer):
    """openpi's quantile normalization (pi0-FAST, pi0.5)."""

    name: ClassVar[str] = "quantile"
    FIELDS: ClassVar[tuple[str, ...]] = ("q01", "q99")

    def _forward(self, x: np.ndarray) -> np.ndarray:
        q01, q99 = self.vectors
        return (x - q01) / (q99 - q01 + QUANTILE_EPS) * 2.0 - 1.0

    def _inverse(self, x: np.ndarray) -> np.ndarray:
        q01, q99 = self.vectors
        return (x + 1.0) / 2.0 * (q99 - q01 + QUANTILE_EPS) + q01


class ZScoreNormalizer(_StatsNormalizer):
    """openpi's z-score normalization (pi0)."""

    name: ClassVar[str] = "zscore"
    FIELDS: ClassVar[tuple[str, ...]] = ("mean", "std")

    def _forward(self, x: np.ndarray) -> np.ndarray:
        mean, std = self.vectors
        return (x - mean) / (std + ZSCORE_EPS)

    def _inverse(self, x: np.ndarray) -> np.ndarray:
        mean, std = self.vectors
        return x * (std + ZSCORE_EPS) + mean


class OpenVLANormalizer(_StatsNormalizer):
    """OpenVLA's q01/q99 bounds on the masked (arm) dims; other dims pass through."""

    name: ClassVar[str] = "openvla"
    FIELDS: ClassVar[tuple[str, ...]] = ("q01", "q99")
    Settings: ClassVar[type[OpenVLASettings]] = OpenVLASettings

    def __init__(self, vectors: list[np.ndarray], stats: NormStats | None = None, dims: int | None = None,
                 mask: Any = None, mask_source: str = "explicit") -> None:
        super().__init__(vectors, stats, dims)
        width = self.vectors[0].size
        self.mask = np.ones(width, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)[:width]
        if self.mask.size != width:
            raise UserInputError(f"normalize 'openvla' mask has {self.mask.size} entries; allowed: {width}, "
                                 "one per normalized dim")
        self.mask_source = mask_source

    @classmethod
    def from_settings(cls, settings: OpenVLASettings) -> OpenVLANormalizer:
        where = "normalize 'openvla'"
        if settings.key is None:
            raise UserInputError(f"{where} key is required; set it to the stats entry, e.g. "
                                 "'libero_spatial_no_noops/action'")
        vectors, stats, dims = cls._load(settings)
        width = vectors[0].size
        if settings.mask is not None:
            mask, source = np.asarray(settings.mask, dtype=bool), "config"
        elif "mask" in stats.fields and stats.fields["mask"].dtype == bool:
            mask, source = stats.fields["mask"], "stats file"
        else:
            arm = settings.arm_dims
            mask, source = np.arange(width) < arm, f"first {arm} dims (arm_dims)"
        if len(mask) < width:
            raise UserInputError(f"{where} mask has {len(mask)} entries; allowed: at least {width}")
        return cls(vectors, stats, dims, mask=np.asarray(mask)[:width], mask_source=source)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        q01, q99 = self.vectors
        return np.where(self.mask, 2.0 * (x - q01) / (q99 - q01 + OPENVLA_EPS) - 1.0, x)

    def _inverse(self, x: np.ndarray) -> np.ndarray:
        q01, q99 = self.vectors
        return np.where(self.mask, 0.5 * (x + 1.0) * (q99 - q01) + q01, x)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "mask": [bool(m) for m in self.mask], "mask_source": self.mask_source}


class RangeNormalizer(Normalizer):
    """An explicit action box ``[low, high]`` mapped to [-1, 1]."""

    name: ClassVar[str] = "range"
    Settings: ClassVar[type[RangeSettings]] = RangeSettings

    def __init__(self, low: Any, high: Any, dims: int | None = LIBERO_DIMS) -> None:
        where = "normalize 'range'"
        low_arr = np.atleast_1d(np.asarray(low, dtype=np.float64))
        high_arr = np.atleast_1d(np.asarray(high, dtype=np.float64))
        if low_arr.size == 1 and high_arr.size == 1:
            width = dims  # one box for every covered dim; None = all dims of the chunk
        else:
            if low_arr.size != high_arr.size and 1 not in (low_arr.size, high_arr.size):
                raise UserInputError(f"{where} low has {low_arr.size} values and high {high_arr.size}; "
                                     "allowed: lists of the same length (or a number)")
            size = max(low_arr.size, high_arr.size)
            if dims is not None and dims > size:
                raise UserInputError(f"{where} dims {dims} is not valid; allowed: at most {size}, the length "
                                     "of low / high")
            width = size if dims is None else dims
            low_arr = np.broadcast_to(low_arr, size)[:width].copy()
            high_arr = np.broadcast_to(high_arr, size)[:width].copy()
        bad = np.flatnonzero(high_arr <= low_arr)
        if bad.size:
            i = int(bad[0])
            raise UserInputError(f"{where} high {float(high_arr[i])} <= low {float(low_arr[i])} at dim {i}; "
                                 "allowed: high > low")
        self.low, self.high, self.dims, self._width = low_arr, high_arr, dims, width

    @classmethod
    def from_settings(cls, settings: RangeSettings) -> RangeNormalizer:
        for key in ("low", "high"):
            if getattr(settings, key) is None:
                raise UserInputError(f"normalize 'range' {key} is required; set it to a number or one number per dim")
        return cls(settings.low, settings.high, settings.dims)

    @property
    def width(self) -> int | None:
        return self._width

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return (x - self.low) / (self.high - self.low) * 2.0 - 1.0

    def _inverse(self, x: np.ndarray) -> np.ndarray:
        return self.low + (x + 1.0) / 2.0 * (self.high - self.low)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "low": self.low.tolist(), "high": self.high.tolist(), "dims": self.dims}


def build_normalizer(cfg: Any) -> Normalizer:
    """The normalizer ``cfg`` chooses (``_target_``, or ``name`` -> ``conf/normalize/<name>.yaml``;
    default ``none``), configured by the rest of ``cfg``."""
    cls, settings = load_part("normalize", cfg, Normalizer)
    return cls.from_settings(settings)
