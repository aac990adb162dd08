"""``policy=mint``: a policy rolled out from a MinT sampler (or ``evalharness serve``), over HTTP.

Per episode: :meth:`MintPolicy.reset` opens one session (an action session, or a
sampling session with ``mode: sampling``); each query sends the three cameras as 224 px
PNGs in openpi's pi0-FAST LIBERO order (agentview as ``base_0_rgb``, wrist as
``left_wrist_0_rgb``, an all-zero ``right_wrist_0_rgb``), the prompt's prefix tokens and
the state; the session is deleted when the episode ends (:meth:`episode_stats`, which the
rollout calls once after every episode, errored ones included), before the next one
starts, and in :meth:`close` (which the workers call in a ``finally``, also on Ctrl-C).

Which side does what: the server runs the model and, in action sessions, returns the
chunk in the model's *normalized* space; this client's action pipeline (``decoder=none
normalize=quantile convert=openpi_libero`` for pi0-FAST) unnormalizes and converts it.
In ``mode: sampling`` the server returns token ids and the pipeline's decoder
(``mint_uniform`` or ``fast``) decodes them here. The identity records this split.

The state goes out as ``state_space`` says: ``normalized`` (quantile, with the stats'
``state`` entry, what openpi's input transforms give the model and what MinT expects) or
``raw`` (the robot's units; what ``evalharness serve`` hands to a harness policy unchanged).
The prompt always carries the normalized state, discretized. The state is computed in
float64 from the observation's raw ``robot`` entries, exactly as openpi's LIBERO client
computes and sends it (:mod:`evalharness.actions.openpi_state`), and binned as openpi bins
it (``state_out_of_range: openpi``); a prompt past 180 tokens is cut as openpi cuts it
(``prompt_too_long: truncate``). ``tests/test_fidelity_openpi.py`` proves each against
openpi's own code (``docs/fidelity.md``).

A session's id is ``evalharness-<random>:seed=<episode seed>``: MinT takes any client
string, and ``evalharness serve`` seeds the session's policy with that number, so a served
episode equals the same episode run in-process. The API key (``MINT_API_KEY`` or
``TINKER_API_KEY``) is read from the environment only, and appears in nothing but the
``X-API-Key`` header.
"""

from __future__ import annotations

import copy
import os
import time
import uuid
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evalharness.actions.normalize import QuantileNormalizer
from evalharness.actions.openpi_state import openpi_libero_state
from evalharness.errors import InvalidActionError, PolicyError, UserInputError
from evalharness.transports.mint import wire
from evalharness.transports.mint.client import API, MintClient, Retries, Timeouts
from evalharness.transports.mint.prompt import TRUNCATED_EVENT, PromptCodec
from evalharness.policies.base import Policy
from evalharness.config.validation import validate_settings
from evalharness.transforms.images import resize_with_pad

ModelT = TypeVar("ModelT", bound=BaseModel)
DEFAULT_BASE_URL = "https://mint.macaron.xin"
STATE_SOURCE = "float64 from the raw robot state, as openpi's LIBERO client sends it"
SPLIT = {
    "action": "server: model -> normalized chunk; client: unnormalize + convert",
    "sampling": "server: model -> token ids; client: decode + unnormalize + convert",
}


class MintSettings(BaseModel):
    """``policy=mint`` settings (``conf/policy/mint.yaml``), validated in one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str = Field(description="mint://... or tinker://... (local://... for evalharness serve)")
    base_model: str = "openpi/pi0-fast-libero-low-mem-finetune"
    base_url: str | None = None
    mode: Literal["action", "sampling"] = "action"
    tokenizer: str | None = None
    stats_path: str | None = None
    state_space: Literal["normalized", "raw"] = "normalized"
    state_out_of_range: Literal["clip", "keep", "error", "openpi"] = "openpi"
    prompt_too_long: Literal["truncate", "error"] = "truncate"
    temperature: Annotated[float, Field(strict=True, ge=0)] | None = Field(
        0.0, description="sent with every query; null = the served policy's own (runner.policy_server=auto)")
    max_tokens: Annotated[int, Field(strict=True, ge=1)] = 64
    png_level: Annotated[int, Field(strict=True, ge=0, le=9)] = Field(
        1, description="zlib level of the (lossless) PNGs: 0 = stored, least CPU; 1 = half the bytes")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    retries: Retries = Field(default_factory=Retries)
    server: dict[str, Any] | None = None

    @field_validator("model_path")
    @classmethod
    def _model_path(cls, path: str) -> str:
        if not path.startswith(("mint://", "tinker://", "local://")):
            raise ValueError("allowed: mint://... or tinker://... (local://... for evalharness serve)")
        return path

    @field_validator("timeouts", "retries", mode="before")
    @classmethod
    def _defaults_for_none(cls, value: Any) -> Any:
        return {} if value is None else value


def api_key_from_env() -> str | None:
    """The MinT key, from ``MINT_API_KEY`` or ``TINKER_API_KEY`` (never from a config file)."""
    return os.environ.get("MINT_API_KEY") or os.environ.get("TINKER_API_KEY") or None


def session_id_for(seed: int) -> str:
    """A unique client session id that carries the episode's seed (see the module docstring)."""
    return f"evalharness-{uuid.uuid4().hex[:16]}:seed={int(seed)}"


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


class MintPolicy(Policy):
    """Queries a MinT-protocol server; returns the raw output for the action pipeline."""

    name = "mint"

    def __init__(
        self,
        model_path: str,
        base_model: str = "openpi/pi0-fast-libero-low-mem-finetune",
        base_url: str | None = None,
        mode: str = "action",
        tokenizer: str | None = None,
        stats_path: str | None = None,
        state_space: str = "normalized",
        state_out_of_range: str = "openpi",
        prompt_too_long: str = "truncate",
        temperature: float | None = 0.0,
        max_tokens: int = 64,
        png_level: int = 1,
        timeouts: dict[str, float] | None = None,
        retries: dict[str, float] | None = None,
        server: dict[str, Any] | None = None,
    ) -> None:
        settings = validate_settings(MintSettings, {
            "model_path": model_path, "base_model": base_model, "base_url": base_url, "mode": mode,
            "tokenizer": tokenizer, "stats_path": stats_path, "state_space": state_space,
            "state_out_of_range": state_out_of_range, "prompt_too_long": prompt_too_long, "temperature": temperature, "max_tokens": max_tokens, "png_level": png_level,
            "timeouts": timeouts, "retries": retries, "server": server}, "policy")
        if settings.stats_path is None and settings.state_space == "normalized":
            raise UserInputError("policy.stats_path is required with policy.state_space=normalized: the checkpoint's "
                                 "norm_stats.json (its 'state' entry normalizes the state for the prompt)")
        self.model_path = settings.model_path
        self.base_model = settings.base_model
        self.base_url = (settings.base_url or os.environ.get("MINT_BASE_URL") or os.environ.get("TINKER_BASE_URL")
                         or DEFAULT_BASE_URL)
        self.mode = settings.mode
        self.state_space = settings.state_space
        self.temperature = None if settings.temperature is None else float(settings.temperature)
        self.max_tokens = settings.max_tokens
        self.png_level = settings.png_level  # lossless at every level: not part of the identity
        self.server = dict(settings.server or {})
        self.timeouts = settings.timeouts
        self.retries = settings.retries
        self.prompt = PromptCodec(settings.tokenizer, state_out_of_range=settings.state_out_of_range,
                                  too_long=settings.prompt_too_long)
        self.state_normalizer = None
        if settings.stats_path is not None:
            self.state_normalizer = QuantileNormalizer.from_stats_file(settings.stats_path, key="state", dims=None)
        self._client: MintClient | None = None
        self._session: str | None = None
        self._instruction = ""
        self._seed = 0
        self._events: list[str] = []
        self._truncations = 0
        self._round_trips_ms: list[float] = []
        self._infer_ms: list[float] = []

    # ---------------------------------------------------------------- identity
    def identity(self) -> dict[str, Any]:
        """What determines the outputs. Not the base URL (a port changes per run), never the key."""
        stats = None if self.state_normalizer is None else self.state_normalizer.describe().get("stats_sha256")
        identity = {
            "name": self.name,
            "model_path": self.model_path,
            "base_model": self.base_model,
            "mode": self.mode,
            "temperature": self.temperature,
            "state_space": self.state_space,
            "state_stats_sha256": stats,
            "state_source": STATE_SOURCE,
            "prompt": self.prompt.describe(),
            "cameras": list(wire.CAMERA_ORDER),
            "image": {"size": wire.IMAGE_SIZE, "format": "png"},
            "split": SPLIT[self.mode],
        }
        if self.mode == "sampling":
            identity["max_tokens"] = self.max_tokens
        if self.server:
            identity["server"] = self.server
        return identity

    # ---------------------------------------------------------------- sessions
    @property
    def client(self) -> MintClient:
        if self._client is None:
            self._client = MintClient(self.base_url, api_key_from_env(), self.timeouts, self.retries)
        return self._client

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._end_session()
        self._instruction = instruction
        self._seed = int(seed)
        self._events.clear()
        self._truncations = 0
        self._round_trips_ms.clear()
        self._infer_ms.clear()
        session_id = session_id_for(seed)
        try:
            if self.mode == "action":
                body = wire.CreateActionSession(session_id=session_id, base_model=self.base_model, model_path=self.model_path)
                answer = self.client.create(f"{API}/mint/action_sessions", body)
                self._session = wire.ActionSessionCreated.model_validate(answer).action_session_id
            else:
                body = wire.CreateSamplingSession(session_id=session_id, base_model=self.base_model, model_path=self.model_path)
                answer = self.client.create(f"{API}/create_sampling_session", body)
                self._session = wire.SamplingSessionCreated.model_validate(answer).sampling_session_id
        except ValidationError as exc:
            raise PolicyError(f"creating a {self.mode} session: unexpected answer ({exc.errors()[0]['msg']})") from None

    def _end_session(self) -> None:
        session, self._session = self._session, None
        if session is None or self._client is None:
            return
        if self.mode == "action":
            self._client.delete(f"{API}/mint/action_sessions/{session}")
        else:  # not a MinT route (MinT expires sampling sessions); evalharness serve frees it
            self._client.delete(f"{API}/sampling_sessions/{session}")

    # ---------------------------------------------------------------- queries
    def act(self, observation: dict[str, Any]) -> np.ndarray:
        if self._session is None:
            raise PolicyError("policy=mint was asked to act without an open session (reset first)")
        if "state" not in observation:
            raise PolicyError("policy=mint needs the state (protocol.state=true): pi0-FAST reads it in the prompt")
        raw_state = client_state(observation)
        normalized = raw_state if self.state_normalizer is None else self.state_normalizer.normalize(raw_state)
        prefix = self.prompt.encode(self._instruction, normalized)
        self._events.extend(prefix.events)
        self._truncations += sum(e.startswith(TRUNCATED_EVENT) for e in prefix.events)
        images = {cam: _as_224(observation["images"][cam]) for cam in wire.CAMERA_ORDER}
        chunks = wire.observation_chunks(images, prefix.tokens, self.png_level)
        # raw: the env's float32 state, what an in-process policy sees (evalharness serve);
        # normalized: openpi's float64 path, cast to the wire's float32 only when sent
        sent_state = np.asarray(observation["state"] if self.state_space == "raw" else normalized, dtype=np.float32)
        start = time.perf_counter()
        if self.mode == "action":
            body = wire.ActRequest(
                observation=wire.Observation(model_input=wire.ModelInput(chunks=chunks), state=wire.RequestTensor.of(sent_state)),
                temperature=self.temperature,
            )
            result = self.client.submit(f"{API}/mint/action_sessions/{self._session}/act", body)
            output = self._chunk(result)
        else:
            params: dict[str, Any] = {"max_tokens": self.max_tokens, "seed": self._seed}
            if self.temperature is not None:
                params["temperature"] = self.temperature
            body = wire.SampleRequest(
                prompt=wire.ModelInput(chunks=chunks),
                sampling_params=wire.SamplingParams(**params),
                sampling_session_id=self._session,
                seq_id=len(self._round_trips_ms),
            )
            output = self._tokens(self.client.submit(f"{API}/asample", body))
        self._round_trips_ms.append(1000.0 * (time.perf_counter() - start))
        return output

    def _chunk(self, result: dict[str, Any]) -> np.ndarray:
        parsed = _parse(wire.ActResult, result, "act")
        try:
            chunk = parsed.actions.array().astype(np.float64)
        except ValueError as exc:
            raise InvalidActionError(f"act: {exc}") from None
        if chunk.ndim != 2 or chunk.shape[0] < 1 or chunk.shape[1] < 7:
            raise InvalidActionError(f"act: chunk has shape {list(chunk.shape)}; expected (H, D) with H >= 1, D >= 7")
        if not np.isfinite(chunk).all():
            step, dim = np.argwhere(~np.isfinite(chunk))[0]
            raise InvalidActionError(f"act: chunk has a non-finite value at step {step}, dim {dim}")
        self._infer_ms.append(parsed.policy_timing.infer_ms)
        self._events.extend(parsed.events)
        return chunk

    def _tokens(self, result: dict[str, Any]) -> np.ndarray:
        parsed = _parse(wire.SampleResult, result, "asample")
        if not parsed.sequences:
            raise PolicyError("asample: the server returned no sequence")
        if parsed.policy_timing is not None:
            self._infer_ms.append(parsed.policy_timing.infer_ms)
        return np.asarray(parsed.sequences[0].tokens, dtype=np.int64)

    def fork(self) -> "MintPolicy":
        """Another client of the same server: its own HTTP client, session and counters (an
        httpx client and an open session cannot be shared); the prompt codec and the stats
        are read-only and shared."""
        clone = copy.copy(self)
        clone._client, clone._session = None, None
        clone._events, clone._round_trips_ms, clone._infer_ms = [], [], []
        clone._truncations = 0
        return clone

    # ---------------------------------------------------------------- episode end
    def drain_events(self) -> list[str]:
        events, self._events = self._events, []
        return events

    def episode_stats(self) -> dict[str, float | int]:
        """Query count and latencies of the episode; also ends its session (the episode is over)."""
        self._end_session()
        stats: dict[str, float | int] = {
            "queries": len(self._round_trips_ms),
            "round_trip_p50_ms": _percentile(self._round_trips_ms, 50),
            "round_trip_p95_ms": _percentile(self._round_trips_ms, 95),
        }
        if self._truncations:
            stats["prompt_truncations"] = self._truncations
        if self._infer_ms:
            stats["server_infer_p50_ms"] = _percentile(self._infer_ms, 50)
            stats["server_infer_p95_ms"] = _percentile(self._infer_ms, 95)
        return stats

    def close(self) -> None:
        self._end_session()
        if self._client is not None:
            self._client.close()
            self._client = None


def client_state(observation: dict[str, Any]) -> np.ndarray:
    """The float64 state openpi's client sends: from the raw ``robot`` entries when the
    observation has them (the rollout's always do), else the ``state`` vector in float64."""
    robot = observation.get("robot")
    if robot is not None and all(k in robot for k in ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")):
        return openpi_libero_state(robot)
    return np.asarray(observation["state"], dtype=np.float64)


def _as_224(image: np.ndarray) -> np.ndarray:
    """The image at MinT's 224 x 224 (openpi's resize with padding when the protocol gave another size)."""
    image = np.asarray(image, dtype=np.uint8)
    if image.shape[:2] == (wire.IMAGE_SIZE, wire.IMAGE_SIZE):
        return image
    return resize_with_pad(wire.IMAGE_SIZE)(image)


def _parse(model: type[ModelT], result: dict[str, Any], what: str) -> ModelT:
    """A result body as ``model``; PolicyError naming the first problem when it does not fit."""
    return validate_settings(model, result, "", source=f"{what}: unexpected result", error=PolicyError)
