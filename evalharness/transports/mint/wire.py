"""The JSON bodies of the MinT routes the harness speaks, as pydantic models.

One set of models serves both sides. The server validates requests strictly
(``extra="forbid"``: MinT answers 422 to an unknown field, and so does ``evalharness
serve``); the client builds its requests from the same models, so a field the client sends
and the server does not know cannot drift in unnoticed. Responses are parsed leniently by
the client (``extra="ignore"``): a real MinT server may add fields.

Shapes (see ``docs/reference/mint.md``):

- an observation is ``model_input.chunks`` = three PNG image chunks in the camera order
  ``base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb``, then one ``encoded_text`` chunk
  with the prompt's prefix token ids; plus ``state`` as a tensor;
- tensors are ``{"data": [...], "shape": [...], "dtype": "..."}`` with ``data`` flat.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
import pybase64
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

#: The camera order of every MinT observation (openpi's pi0-FAST LIBERO inputs).
CAMERA_ORDER = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
#: Image side MinT uses as sent (no server-side resize).
IMAGE_SIZE = 224
#: The longest prompt prefix pi0-FAST accepts, in tokens.
MAX_PREFIX_TOKENS = 180


class Strict(BaseModel):
    """A request body: unknown fields are an error (422 on the server)."""

    # NaN / Infinity written as JSON's usual constants (as json.dumps writes them), not null
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class Lenient(BaseModel):
    """A response body: fields a newer server adds are ignored."""

    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- limits
#: Longest strings a request may carry (a session id, a model path, a model name, a request id).
MAX_ID_CHARS = 256
MAX_PATH_CHARS = 1024
#: Longest lists: tensor values (a state, a request's tensors), token ids, stop sequences, chunks.
MAX_TENSOR_VALUES = 4096
MAX_TOKENS_PER_CHUNK = 4096
MAX_CHUNKS = 16
MAX_STOP = 64

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
ModelPath = Annotated[str, Field(min_length=1, max_length=MAX_PATH_CHARS)]
TokenId = Annotated[int, Field(ge=0, lt=2**31)]
SmallInt = Annotated[int, Field(ge=0, le=2**62)]


# ---------------------------------------------------------------- tensors and chunks
class Tensor(Strict):
    """``{"data", "shape", "dtype"}``, the shape of the SDK's ``TensorData`` (whose dtypes are
    ``float32`` and ``int64``; ``float64`` carries the served chunks at full precision, see
    :mod:`evalharness.transports.mint.server`). ``shape`` may be left out: 1-D."""

    data: list[float]
    shape: list[int] | None = None
    dtype: Literal["float32", "float64", "int64", "int32"] = "float32"

    @classmethod
    def of(cls, array: np.ndarray, dtype: str = "float32") -> "Tensor":
        values = np.asarray(array, dtype=dtype)
        return cls(data=values.ravel().tolist(), shape=list(values.shape), dtype=dtype)  # type: ignore[arg-type]

    def array(self) -> np.ndarray:
        """The tensor as a numpy array; ValueError (a short message) when it is not one."""
        shape = [len(self.data)] if self.shape is None else list(self.shape)
        if any(d < 0 for d in shape) or math.prod(shape) != len(self.data):
            raise ValueError(f"tensor data has {len(self.data)} values for shape {shape[:8]}")
        try:
            values = np.asarray(self.data, dtype=self.dtype)
        except (ValueError, OverflowError, TypeError):
            raise ValueError(f"tensor data does not fit dtype {self.dtype}") from None
        return values.reshape(shape)


class RequestTensor(Tensor):
    """A tensor a client sends: bounded in size and rank."""

    data: list[float] = Field(max_length=MAX_TENSOR_VALUES)
    shape: list[Annotated[int, Field(ge=0, le=MAX_TENSOR_VALUES)]] | None = Field(None, max_length=8)


class ImageChunk(Strict):
    type: Literal["image"] = "image"
    format: Literal["png"] = "png"
    data: str  # base64 PNG (its size is bounded by serve.max_body_mb)
    expected_tokens: Annotated[int, Field(ge=0, le=1_000_000)] | None = 256

    @classmethod
    def of(cls, image: np.ndarray, level: int | None = None) -> "ImageChunk":
        from evalharness.transports.mint.png import COMPRESS_LEVEL, encode_png

        data = encode_png(image, COMPRESS_LEVEL if level is None else level)
        return cls(data=pybase64.b64encode(data).decode("ascii"))  # SIMD: ~30x the standard library's

    def pixels(self, size: tuple[int, int] = (IMAGE_SIZE, IMAGE_SIZE)) -> np.ndarray:
        """The decoded RGB image (uint8 HxWx3); :class:`~evalharness.transports.mint.png.ImageRejected`
        (a ValueError) when it is not a PNG of ``size``."""
        from evalharness.transports.mint.png import decode_png

        return decode_png(self.data, size)


class EncodedTextChunk(Strict):
    type: Literal["encoded_text"] = "encoded_text"
    tokens: list[TokenId] = Field(max_length=MAX_TOKENS_PER_CHUNK)


def _chunk_kind(value: Any) -> str | None:
    """A chunk's kind: its ``type``, or, when absent (the SDK dumps with ``exclude_unset``),
    inferred from its fields: ``tokens`` -> encoded_text, ``data`` + ``format`` -> image."""
    if isinstance(value, dict):
        kind = value.get("type")
        if kind is None:
            if "tokens" in value:
                return "encoded_text"
            if "data" in value and "format" in value:
                return "image"
        return kind if isinstance(kind, str) else None
    return getattr(value, "type", None)


Chunk = Annotated[
    Annotated[ImageChunk, Tag("image")] | Annotated[EncodedTextChunk, Tag("encoded_text")],
    Discriminator(_chunk_kind, custom_error_type="chunk_kind",
                  custom_error_message="a chunk is an image (data + format) or encoded_text (tokens)"),
]


class ModelInput(Strict):
    chunks: list[Chunk] = Field(max_length=MAX_CHUNKS)


class Observation(Strict):
    model_input: ModelInput
    state: RequestTensor


# ---------------------------------------------------------------- sessions (the SDK's)
class CreateSession(Strict):
    """The SDK's first call (``ServiceClient``): a client session that sampling sessions live in."""

    tags: list[Annotated[str, Field(max_length=MAX_ID_CHARS)]] = Field(default_factory=list, max_length=64)
    user_metadata: dict[Annotated[str, Field(max_length=MAX_ID_CHARS)], Any] | None = Field(None, max_length=64)
    sdk_version: Annotated[str, Field(max_length=64)] = ""
    project_id: Annotated[str, Field(max_length=MAX_ID_CHARS)] | None = None
    type: Literal["create_session"] = "create_session"


class SessionHeartbeat(Strict):
    session_id: Id
    type: Literal["session_heartbeat"] = "session_heartbeat"


# ---------------------------------------------------------------- action sessions
class CreateActionSession(Strict):
    session_id: Id
    base_model: Annotated[str, Field(max_length=MAX_ID_CHARS)] | None = None  # MinT infers it from the checkpoint
    model_path: ModelPath
    action_session_seq_id: SmallInt | None = None


class ActionSessionCreated(Lenient):
    action_session_id: str


class ActRequest(Strict):
    observation: Observation
    #: None (left out): the served policy's own setting; 0 is MinT's default (greedy).
    temperature: Annotated[float, Field(ge=0.0, le=1e4, allow_inf_nan=False)] | None = 0.0


class PolicyTiming(Lenient):
    infer_ms: float = 0.0


class ServerTiming(Lenient):
    """Where a query's time went on the server (``evalharness serve`` only), in ms."""

    decode_ms: float = 0.0  # body read + JSON + validation + PNG decode, until the query is queued
    wait_ms: float = 0.0  # queued until its batch started
    model_ms: float = 0.0  # the batch's forward pass
    reply_ms: float = 0.0  # decoding tokens + building the result + until it was handed to retrieve_future


class ActResult(Lenient):
    actions: Tensor
    policy_timing: PolicyTiming = PolicyTiming()
    type: str = "act"
    events: list[str] = []  # evalharness serve only: what decoding on the server noticed
    server_timing: ServerTiming | None = None  # evalharness serve only


class Deleted(Lenient):
    status: str


# ---------------------------------------------------------------- futures
class FutureRef(Lenient):
    request_id: str


class RetrieveFuture(Strict):
    request_id: Id
    allow_metadata_only: bool = False  # the SDK's; results here are always small enough to send inline


class TryAgain(Lenient):
    type: str = "try_again"
    queue_state: str = "active"
    retry_after_s: float | None = None


# ---------------------------------------------------------------- token sampling
class CreateSamplingSession(Strict):
    session_id: Id
    sampling_session_seq_id: SmallInt = 0
    base_model: Annotated[str, Field(max_length=MAX_ID_CHARS)] | None = None
    model_path: ModelPath | None = None
    type: Literal["create_sampling_session"] = "create_sampling_session"


class SamplingSessionCreated(Lenient):
    sampling_session_id: str


class SamplingParams(Strict):
    """Tinker's ``SamplingParams``, with Tinker's defaults (what a field left out means)."""

    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=1e4, allow_inf_nan=False)] = 1.0
    top_k: Annotated[int, Field(ge=-1, le=1_000_000)] = -1
    top_p: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] = 1.0
    seed: Annotated[int, Field(ge=-(2**63), lt=2**64)] | None = None
    stop: (Annotated[str, Field(max_length=MAX_ID_CHARS)]
           | Annotated[list[Annotated[str, Field(max_length=MAX_ID_CHARS)]], Field(max_length=MAX_STOP)]
           | Annotated[list[TokenId], Field(max_length=MAX_STOP)] | None) = None


class SampleRequest(Strict):
    num_samples: Annotated[int, Field(ge=1, le=1024)] = 1
    prompt: ModelInput
    sampling_params: SamplingParams
    base_model: Annotated[str, Field(max_length=MAX_ID_CHARS)] | None = None
    model_path: ModelPath | None = None
    sampling_session_id: Id | None = None
    seq_id: SmallInt | None = None
    prompt_logprobs: bool | None = None
    topk_prompt_logprobs: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    type: Literal["sample"] = "sample"


class SampledSequence(Lenient):
    tokens: list[int]
    logprobs: list[float] | None = None
    stop_reason: str = "length"


class SampleResult(Lenient):
    sequences: list[SampledSequence]
    type: str = "sample"
    policy_timing: PolicyTiming | None = None  # evalharness serve only
    server_timing: ServerTiming | None = None  # evalharness serve only

def observation_chunks(images: dict[str, np.ndarray], prefix_tokens: list[int], png_level: int | None = None) -> list[Any]:
    """The ``model_input.chunks`` of one query: the three cameras in order, then the prompt."""
    chunks: list[Any] = [ImageChunk.of(images[camera], png_level) for camera in CAMERA_ORDER]
    chunks.append(EncodedTextChunk(tokens=list(prefix_tokens)))
    return chunks
