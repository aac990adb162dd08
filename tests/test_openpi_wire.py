"""The harness's openpi codec against the real ``openpi_client.msgpack_numpy`` (installed
--no-deps): identical bytes for what the client sends, and each side decodes the other."""

from __future__ import annotations

import numpy as np
import pytest
from openpi_client import msgpack_numpy as openpi_codec

from evalharness.transports.openpi.wire import WireError, pack, unpack


def _libero_element() -> dict:
    rng = np.random.default_rng(3)
    return {
        "observation/image": rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8),
        "observation/state": rng.normal(size=8),
        "prompt": "put the bowl on the plate",
    }


def _reply() -> dict:
    return {
        "actions": np.linspace(-1, 1, 70, dtype=np.float32).reshape(10, 7),
        "policy_timing": {"infer_ms": 12.5},
        "server_timing": {"infer_ms": 13.0, "prev_total_ms": 20.25},
        "step": np.int64(4),
        "flag": np.bool_(True),
    }


def _same(a, b) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    else:
        assert type(a) is type(b) and a == b


@pytest.mark.parametrize("message", [_libero_element(), _reply(), {"robot": "libero", "shape": [10, 7]}, {}])
def test_same_bytes_as_openpi_client(message) -> None:
    assert pack(message) == openpi_codec.packb(message)
    assert pack(message) == openpi_codec.Packer().pack(message)


@pytest.mark.parametrize("message", [_libero_element(), _reply()])
def test_each_side_decodes_the_other(message) -> None:
    _same(message, unpack(openpi_codec.packb(message)))
    _same(message, openpi_codec.unpackb(pack(message)))


def test_non_contiguous_and_big_endian_arrays_survive() -> None:
    base = np.arange(24, dtype=">i4").reshape(4, 6)
    message = {"a": base[:, ::2], "b": np.asfortranarray(np.eye(3))}
    assert pack(message) == openpi_codec.packb(message)
    _same({k: np.ascontiguousarray(v) for k, v in message.items()}, unpack(pack(message)))


def test_object_and_complex_arrays_are_refused_like_openpi() -> None:
    for bad in (np.array([1, "a"], dtype=object), np.zeros(2, dtype=np.complex64)):
        with pytest.raises(ValueError):
            openpi_codec.packb({"x": bad})
        with pytest.raises(WireError):
            pack({"x": bad})


# a reserved byte; an array cut short; an ndarray whose data does not fill its shape
BAD_ARRAY = openpi_codec.packb({b"__ndarray__": True, b"data": b"abc", b"dtype": "<f4", b"shape": [2]})


@pytest.mark.parametrize("frame", [b"\xc1", b"\x92\x01", BAD_ARRAY])
def test_malformed_frames_are_wire_errors(frame: bytes) -> None:
    with pytest.raises(WireError):
        unpack(frame)
