"""openpi's websocket frame encoding: msgpack with NumPy arrays as tagged maps.

openpi's policy server (``openpi.serving.websocket_policy_server``) and its client
(``openpi_client.websocket_client_policy``) exchange msgpack binary frames in which every
NumPy array is a map ``{b"__ndarray__": True, b"data": <raw bytes>, b"dtype": <dtype.str>,
b"shape": [...]}`` and every NumPy scalar is ``{b"__npgeneric__": True, b"data": <item>,
b"dtype": <dtype.str>}`` (the tag keys are msgpack *bin*, not str). Object, void and
complex dtypes are refused.

This is a small reimplementation of that codec on plain ``msgpack`` rather than an import
of ``openpi_client``: that package pins ``numpy<2`` while this project runs NumPy 2, and
the harness's runtime should not depend on a package installed against its own
requirements. ``tests/test_openpi_wire.py`` checks that both directions are byte-for-byte
compatible with the real ``openpi_client.msgpack_numpy``.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

__all__ = ["pack", "unpack", "WireError"]

_REFUSED_KINDS = ("V", "O", "c")


class WireError(ValueError):
    """A frame that is not valid openpi msgpack (or holds an array that cannot be rebuilt)."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in _REFUSED_KINDS:
        raise WireError(f"dtype {obj.dtype} cannot be sent to an openpi server")
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot serialize {type(obj).__name__} for openpi")


def _decode(obj: dict) -> Any:
    if b"__ndarray__" in obj:
        dtype = np.dtype(obj[b"dtype"])
        if dtype.kind in _REFUSED_KINDS:
            raise WireError(f"array of dtype {dtype} refused")
        shape = tuple(int(n) for n in obj[b"shape"])
        return np.frombuffer(obj[b"data"], dtype=dtype).reshape(shape)
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def pack(obj: Any) -> bytes:
    """One openpi binary frame holding ``obj`` (dicts, lists, str, numbers, NumPy arrays)."""
    return msgpack.packb(obj, default=_encode)


def unpack(frame: bytes) -> Any:
    """Decode one openpi binary frame; raises :class:`WireError` when it is not one."""
    try:
        return msgpack.unpackb(frame, object_hook=_decode)
    except WireError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack, numpy and key errors all mean "malformed"
        raise WireError(f"{type(exc).__name__}: {exc}") from None
