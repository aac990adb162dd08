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

import base64
import io
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: The camera order of every MinT observation (openpi's pi0-FAST LIBERO inputs).
CAMERA_ORDER = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
#: Image side MinT uses as sent (no server-side resize).
IMAGE_SIZE = 224
#: The longest prompt prefix pi0-FAST accepts, in tokens.
MAX_PREFIX_TOKENS = 180


class Strict(BaseModel):
    """A request body: unknown fields are an error (422 on the server)."""

    model_config = ConfigDict(extra="forbid")


class Lenient(BaseModel):
    """A response body: fields a newer server adds are ignored."""

    model_config = ConfigDict(extra="ignore")


# ---------------------------------------------------------------- tensors and chunks
class Tensor(Strict):
    data: list[float]
    shape: list[int]
    dtype: Literal["float32", "float64", "int64", "int32"] = "float32"

    @classmethod
    def of(cls, array: np.ndarray, dtype: str = "float32") -> "Tensor":
        values = np.asarray(array, dtype=dtype)
        return cls(data=values.ravel().tolist(), shape=list(values.shape), dtype=dtype)  # type: ignore[arg-type]

    def array(self) -> np.ndarray:
        """The tensor as a numpy array; ValueError when data does not fill the shape."""
        values = np.asarray(self.data, dtype=self.dtype)
        if values.size != int(np.prod(self.shape)):
            raise ValueError(f"tensor data has {values.size} values for shape {self.shape}")
        return values.reshape(self.shape)


class ImageChunk(Strict):
    type: Literal["image"] = "image"
    format: Literal["png"] = "png"
    data: str  # base64 PNG
    expected_tokens: int | None = 256

    @classmethod
    def of(cls, image: np.ndarray) -> "ImageChunk":
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG")
        return cls(data=base64.b64encode(buffer.getvalue()).decode("ascii"))

    def pixels(self) -> np.ndarray:
        """The decoded RGB image (uint8 HxWx3); ValueError when it is not a PNG."""
        from PIL import Image

        raw = base64.b64decode(self.data, validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            if image.format != "PNG":
                raise ValueError(f"image is {image.format}, not PNG")
            return np.asarray(image.convert("RGB"))


class EncodedTextChunk(Strict):
    type: Literal["encoded_text"] = "encoded_text"
    tokens: list[int]


Chunk = Annotated[ImageChunk | EncodedTextChunk, Field(discriminator="type")]


class ModelInput(Strict):
    chunks: list[Chunk]


class Observation(Strict):
    model_input: ModelInput
    state: Tensor


# ---------------------------------------------------------------- action sessions
class CreateActionSession(Strict):
    session_id: str = Field(min_length=1, max_length=256)
    base_model: str
    model_path: str


class ActionSessionCreated(Lenient):
    action_session_id: str


class ActRequest(Strict):
    observation: Observation
    temperature: float = Field(0.0, ge=0.0)


class PolicyTiming(Lenient):
    infer_ms: float = 0.0


class ActResult(Lenient):
    actions: Tensor
    policy_timing: PolicyTiming = PolicyTiming()
    type: str = "act"
    events: list[str] = []  # evalharness serve only: what decoding on the server noticed


class Deleted(Lenient):
    status: str


# ---------------------------------------------------------------- futures
class FutureRef(Lenient):
    request_id: str


class RetrieveFuture(Strict):
    request_id: str


class TryAgain(Lenient):
    type: str = "try_again"
    queue_state: str = "active"
    retry_after_s: float | None = None


# ---------------------------------------------------------------- token sampling
class CreateSamplingSession(Strict):
    session_id: str = Field(min_length=1, max_length=256)
    sampling_session_seq_id: int = 0
    base_model: str | None = None
    model_path: str
    type: Literal["create_sampling_session"] = "create_sampling_session"


class SamplingSessionCreated(Lenient):
    sampling_session_id: str


class SamplingParams(Strict):
    max_tokens: int = Field(64, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_k: int = -1
    top_p: float = 1.0
    seed: int | None = 0
    stop: list[str] | list[int] | None = None


class SampleRequest(Strict):
    num_samples: int = Field(1, ge=1)
    prompt: ModelInput
    sampling_params: SamplingParams
    sampling_session_id: str
    seq_id: int = 0
    prompt_logprobs: bool = False
    topk_prompt_logprobs: int = 0
    type: Literal["sample"] = "sample"


class SampledSequence(Lenient):
    tokens: list[int]
    logprobs: list[float] | None = None
    stop_reason: str = "length"


class SampleResult(Lenient):
    sequences: list[SampledSequence]
    type: str = "sample"
    policy_timing: PolicyTiming | None = None  # evalharness serve only


def observation_chunks(images: dict[str, np.ndarray], prefix_tokens: list[int]) -> list[Any]:
    """The ``model_input.chunks`` of one query: the three cameras in order, then the prompt."""
    chunks: list[Any] = [ImageChunk.of(images[camera]) for camera in CAMERA_ORDER]
    chunks.append(EncodedTextChunk(tokens=list(prefix_tokens)))
    return chunks
