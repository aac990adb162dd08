"""vla-eval's model-server protocol v1 on the wire: msgpack frames with tagged NumPy arrays.

What a frame is (vla-eval 0.8.0, ``vla_eval/protocol/{messages,numpy_codec,image_codec}.py``
and its RFC ``docs/rfcs/0002-communication-protocol.md``):

- one binary websocket message = one msgpack map ``{"type", "payload", "seq",
  "timestamp"}`` (str keys, ``use_bin_type=True``); ``type`` is one of ``hello``,
  ``observation``, ``action``, ``episode_start``, ``episode_end``, ``error``;
- a NumPy array is ``{"__ndarray__": True, "data": <bytes>, "dtype": <dtype.str>,
  "shape": [...]}``; only bool / int / uint / float dtypes are accepted;
- an image (an HxWxC uint8 array, C in 1, 3, 4) is sent as ``{"__image__": True,
  "format": "png" | "jpeg", "data": <encoded bytes>, "shape": [...]}``. vla-eval's code
  defaults to PNG, its RFC says raw: with ``raw`` the image goes as a plain
  ``__ndarray__`` (what vla-eval's encoder does), and a decoder also accepts
  ``{"__image__": True, "format": "raw", "data", "dtype", "shape"}``. All three are
  decoded;
- NumPy scalars travel as plain ints, floats and bools.

This is a reimplementation on ``msgpack`` + PIL, not an import of ``vla_eval``: that
package is a test dependency only (its runtime pulls in a benchmark framework the harness
does not need). ``tests/test_vla_eval_wire.py`` checks both directions byte for byte
against vla-eval's own ``pack_message`` / ``unpack_message``.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import msgpack
import numpy as np

__all__ = ["Frame", "ImageFormat", "FrameError", "MESSAGE_TYPES", "PROTOCOL_VERSION", "pack", "unpack", "pack_value"]

PROTOCOL_VERSION = 1
MESSAGE_TYPES = ("hello", "observation", "action", "episode_start", "episode_end", "error")
ImageFormat = Literal["png", "jpeg", "raw"]
_ALLOWED_KINDS = frozenset("biuf")


class FrameError(ValueError):
    """Bytes that are not a vla-eval protocol v1 frame."""


@dataclass
class Frame:
    """One protocol message."""

    type: str
    payload: dict[str, Any]
    seq: int = 0
    timestamp: float = field(default_factory=time.time)


def _is_image(array: np.ndarray) -> bool:
    return array.ndim == 3 and array.dtype == np.uint8 and array.shape[2] in (1, 3, 4)


def _encoder(image_format: ImageFormat):
    def encode(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if image_format != "raw" and _is_image(obj):
                return _encode_image(obj, image_format)
            return {"__ndarray__": True, "data": obj.tobytes(), "dtype": obj.dtype.str, "shape": list(obj.shape)}
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        raise TypeError(f"cannot send a {type(obj).__name__} to a vla-eval model server")

    return encode


def _encode_image(image: np.ndarray, image_format: str) -> dict[str, Any]:
    from PIL import Image

    pil = Image.fromarray(image)
    buffer = io.BytesIO()
    if image_format == "jpeg":
        if pil.mode != "RGB":
            raise ValueError(f"jpeg needs an RGB image, got mode {pil.mode}; use png or raw")
        pil.save(buffer, format="JPEG", quality=95)
    else:
        pil.save(buffer, format="PNG")
    return {"__image__": True, "format": image_format, "data": buffer.getvalue(), "shape": list(image.shape)}


def _decode(obj: dict) -> Any:
    if "__image__" in obj:
        fmt = obj.get("format")
        if fmt == "raw":
            return _array(obj)
        if fmt in ("png", "jpeg"):
            from PIL import Image

            return np.array(Image.open(io.BytesIO(obj["data"])))
        raise FrameError(f"image format {fmt!r} is not png, jpeg or raw")
    if "__ndarray__" in obj:
        return _array(obj)
    return obj


def _array(obj: dict) -> np.ndarray:
    dtype = np.dtype(obj["dtype"])
    if dtype.kind not in _ALLOWED_KINDS:
        raise FrameError(f"array dtype {dtype} refused (only bool, int, uint, float)")
    return np.frombuffer(obj["data"], dtype=dtype).reshape([int(n) for n in obj["shape"]]).copy()


def pack_value(value: Any, image_format: ImageFormat = "png") -> bytes:
    """``value`` alone as vla-eval msgpack (what a frame's payload becomes inside it)."""
    return msgpack.packb(value, default=_encoder(image_format), use_bin_type=True)


def pack(frame: Frame, image_format: ImageFormat = "png") -> bytes:
    """One binary websocket message holding ``frame``."""
    raw = {"type": frame.type, "payload": frame.payload, "seq": frame.seq, "timestamp": frame.timestamp}
    return pack_value(raw, image_format)


def unpack(data: bytes) -> Frame:
    """Decode one message; :class:`FrameError` when it is not a protocol v1 frame."""
    if isinstance(data, str):
        raise FrameError("a text frame (vla-eval sends binary msgpack frames only)")
    try:
        raw = msgpack.unpackb(data, object_hook=_decode, raw=False)
    except FrameError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack, numpy and PIL errors all mean "malformed"
        raise FrameError(f"not msgpack ({len(data)} bytes): {type(exc).__name__}: {exc}") from None
    if not isinstance(raw, dict):
        raise FrameError(f"a msgpack {type(raw).__name__}, not a map")
    missing = [key for key in ("type", "payload", "seq", "timestamp") if key not in raw]
    if missing:
        raise FrameError(f"frame lacks {missing}")
    if raw["type"] not in MESSAGE_TYPES:
        raise FrameError(f"unknown message type {raw['type']!r}; allowed: {', '.join(MESSAGE_TYPES)}")
    payload = raw["payload"]
    if not isinstance(payload, dict):
        raise FrameError(f"payload is a {type(payload).__name__}, not a map")
    return Frame(type=raw["type"], payload=payload, seq=int(raw["seq"]), timestamp=float(raw["timestamp"]))
