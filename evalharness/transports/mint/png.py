"""Lossless PNG for the MinT wire: fast to encode, safe to decode whatever a client sends.

Encoding (the client, per query): a standard 8-bit RGB PNG whose rows all use PNG's
``Sub`` filter (each byte minus the byte one pixel to its left, one numpy subtraction),
deflated by zlib at level 1 with the ``Z_RLE`` strategy. PIL's encoder tries all five
filters on every row, which is most of its cost: on a 224 px scene this path takes
about 1/4 of PIL's ``compress_level=1`` and 1/15 of its default level 6, for files about
as small as level 6's. Every PNG decoder reads it (any filter type per row is standard),
and PNG is lossless: the pixels a server decodes are the camera's, byte for byte
(``tests/test_mint_hostile.py`` checks it against the image and against PIL's own
encoding). An all-zero image (the absent ``right_wrist_0_rgb``, and any camera a protocol
leaves out) is encoded once per shape, always at level 9 whatever level the others use
(a few hundred bytes instead of 150 KB stored), and reused; a server that receives those
exact bytes knows the pixels without decoding them.

Decoding (the server, per request) never trusts the bytes:

- the base64 text and the decoded file are bounded by the request body cap
  (``serve.max_body_mb``), applied before anything is parsed;
- ``Image.open`` reads only the header: the format and the dimensions are checked there,
  before a single pixel is decompressed, so a 284 KB PNG that claims 10000 x 10000 costs
  nothing; PIL's own decompression-bomb check is turned into the same error;
- whatever PIL raises on a corrupt or truncated file (``UnidentifiedImageError``,
  ``OSError``, ``SyntaxError``, ``zlib.error``, ...) becomes :class:`ImageRejected`, with a
  short message that never quotes the input. The server answers it with a 422;
- a file whose image data ends early but cleanly (a complete zlib stream of too few rows),
  which PIL silently pads with black, is refused too: when the decoded last row is black
  (the only case in which rows can be missing unnoticed), the inflated size of a
  non-interlaced image must be exactly its rows.

What this module's encoder writes (8-bit RGB, not interlaced, every row filtered ``None``
or ``Sub``) is decoded without PIL (:func:`_decode_sub_rows`): zlib inflates at most one
byte more than the rows need, the size must be exact, and undoing ``Sub`` is a running sum
modulo 256 along each row. That is most of a served query's decode time saved, and it
gives PIL's pixels byte for byte (``tests/test_mint_hostile.py`` compares them on random
images at every level). Any other PNG (other filters, palettes, alpha, 16 bits,
interlacing, several IDAT chunks out of order) takes PIL's path above.
"""

from __future__ import annotations

import binascii
import io
import struct
import threading
import warnings
import zlib

import numpy as np
import pybase64

#: zlib's level for the wire by default (with run-length strategy: fast, and small after the
#: Sub filter); 0 stores the rows uncompressed: twice the bytes, the least CPU on both sides,
#: what runner.policy_server=auto uses on 127.0.0.1.
COMPRESS_LEVEL = 1
#: The level of an all-zero image, whatever the others use: it is encoded once and cached.
ZERO_LEVEL = 9
_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_zero_cache: dict[tuple[int, ...], bytes] = {}
_zero_lock = threading.Lock()


class ImageRejected(ValueError):
    """An image a request carries cannot be used; the message is safe to send back."""


def encode_png(image: np.ndarray, level: int = COMPRESS_LEVEL) -> bytes:
    """The PNG file of a uint8 (H, W, 3) image at zlib ``level`` 0-9 (lossless at every level;
    an all-zero image from a cache)."""
    array = np.ascontiguousarray(image, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"encode_png takes an (H, W, 3) uint8 image, not shape {array.shape}")
    zero = not array.any()
    if zero:
        level = ZERO_LEVEL
        with _zero_lock:
            cached = _zero_cache.get((*array.shape, level))
        if cached is not None:
            return cached
    height, width, _ = array.shape
    flat = array.reshape(height, 3 * width)
    rows = np.empty((height, 1 + 3 * width), np.uint8)
    rows[:, 0] = 1  # filter type Sub
    rows[:, 1:4] = flat[:, :3]
    np.subtract(flat[:, 3:], flat[:, :-3], out=rows[:, 4:])  # modulo 256, as PNG defines it
    deflate = zlib.compressobj(level, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    data = (_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", deflate.compress(rows.tobytes()) + deflate.flush()) + _chunk(b"IEND", b""))
    if zero:
        with _zero_lock:
            _zero_cache[(*array.shape, level)] = data
    return data


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _known_zero(raw: bytes, size: tuple[int, int]) -> bool:
    with _zero_lock:
        return _zero_cache.get((size[1], size[0], 3, ZERO_LEVEL)) == raw


def _crc_ok(raw: bytes, at: int, length: int) -> bool:
    """Whether the chunk at ``at`` (its length field) with ``length`` data bytes has a correct CRC."""
    return zlib.crc32(raw[at + 4:at + 8 + length]) == struct.unpack(">I", raw[at + 8 + length:at + 12 + length])[0]


def _decode_sub_rows(raw: bytes, width: int, height: int) -> np.ndarray | None:
    """The pixels of a PNG as :func:`encode_png` writes it, or None for any other layout (then
    PIL decodes it). Raises :class:`ImageRejected` when the image data are corrupt or of the
    wrong size; never inflates more than the rows' size plus one byte."""
    if raw[24:29] != b"\x08\x02\x00\x00\x00":  # 8-bit RGB, deflate, adaptive filtering, not interlaced
        return None
    if struct.unpack(">I", raw[8:12])[0] != 13 or not _crc_ok(raw, 8, 13):
        raise ImageRejected("not a decodable PNG (corrupt or truncated)")
    row_bytes = 1 + 3 * width
    expected = height * row_bytes
    at = 33  # signature (8) + IHDR chunk (4 + 4 + 13 + 4)
    idat: list[bytes] = []
    while at + 8 <= len(raw):
        length, tag = struct.unpack(">I4s", raw[at:at + 8])
        if at + 12 + length > len(raw) or not _crc_ok(raw, at, length):  # PIL checks every CRC too
            raise ImageRejected("not a decodable PNG (corrupt or truncated)")
        if tag == b"IDAT":
            idat.append(raw[at + 8:at + 8 + length])
        elif tag == b"IEND":
            break
        elif idat or tag[0] & 0x20 == 0:  # a chunk after the data, or a critical one (PLTE...): PIL's path
            return None
        at += 12 + length
    else:
        raise ImageRejected("not a decodable PNG (corrupt or truncated)")
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(b"".join(idat), expected + 1)
    except zlib.error:
        raise ImageRejected("not a decodable PNG (corrupt or truncated)") from None
    if len(data) != expected or not inflater.eof:
        raise ImageRejected("PNG image data is incomplete or too long")
    rows = np.frombuffer(data, np.uint8).reshape(height, row_bytes)
    filters = rows[:, 0]
    if (filters > 1).any():  # Up, Average or Paeth rows: PIL undoes those
        return None
    pixels = rows[:, 1:].reshape(height, width, 3)
    if not filters.any():
        return pixels.copy()
    summed = np.cumsum(pixels, axis=1, dtype=np.uint8)  # Sub: each byte plus the one 3 bytes left, mod 256
    return np.where((filters == 1)[:, None, None], summed, pixels)


def decode_png(text: str, size: tuple[int, int]) -> np.ndarray:
    """The RGB pixels (uint8, H x W x 3) of a base64 PNG of exactly ``size`` (width, height).

    Raises :class:`ImageRejected` for anything else, before decoding pixels when the
    header already says no.
    """
    from PIL import Image

    try:
        raw = pybase64.b64decode(text, validate=True)  # SIMD: ~50x the standard library's decoder
    except (binascii.Error, ValueError, TypeError):
        raise ImageRejected("data is not valid base64") from None
    if not raw.startswith(_SIGNATURE):
        raise ImageRejected("data is not a PNG file (no PNG signature)")
    if len(raw) < 33 or raw[12:16] != b"IHDR":
        raise ImageRejected("not a decodable PNG (no IHDR header)")
    width, height = struct.unpack(">II", raw[16:24])  # the header, before PIL reads anything
    if (width, height) != tuple(size):
        raise ImageRejected(f"{width}x{height}, not {size[0]}x{size[1]}")
    if _known_zero(raw, size):
        return np.zeros((size[1], size[0], 3), np.uint8)
    fast = _decode_sub_rows(raw, width, height)
    if fast is not None:
        return fast
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=["PNG"]) as image:
                if image.size != tuple(size):  # PIL read the same header
                    raise ImageRejected(f"{image.size[0]}x{image.size[1]}, not {size[0]}x{size[1]}")
                image.load()
                if image.mode != "RGB":
                    image = image.convert("RGB")
                pixels = np.asarray(image)
                if not pixels[-1].any():
                    _check_complete(raw, width, height)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("image header declares too many pixels") from None
    except Exception:  # noqa: BLE001 - untrusted bytes: whatever PIL raises (UnidentifiedImageError, OSError, zlib.error, ...)
        raise ImageRejected("not a decodable PNG (corrupt or truncated)") from None
    if pixels.shape != (size[1], size[0], 3):
        raise ImageRejected(f"image decodes to shape {list(pixels.shape)}; send RGB {size[0]}x{size[1]}")
    return pixels


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel


def _check_complete(raw: bytes, width: int, height: int) -> None:
    """ImageRejected unless the IDAT data inflates to exactly the image's rows (non-interlaced)."""
    depth, colour, interlace = raw[24], raw[25], raw[28]
    if interlace or colour not in _CHANNELS:
        return  # Adam7 rows have other sizes; PIL checks the rest
    expected = height * (1 + (width * _CHANNELS[colour] * depth + 7) // 8)
    inflater = zlib.decompressobj()
    got = 0
    at = 8
    while at + 8 <= len(raw):
        length, tag = struct.unpack(">I4s", raw[at:at + 8])
        if tag == b"IDAT":
            got += len(inflater.decompress(raw[at + 8:at + 8 + length], expected + 1 - got))
            if got > expected:
                break
        elif tag == b"IEND":
            break
        at += 12 + length
    if got != expected:
        raise ImageRejected("PNG image data is incomplete or too long")
