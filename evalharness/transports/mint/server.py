"""``evalharness serve``: any harness policy over the MinT routes, with FastAPI.

Routes (``docs/reference/mint.md``), all under ``/api/v1``:

- ``POST mint/action_sessions`` -> ``{"action_session_id"}``; ``POST
  mint/action_sessions/{id}/act`` -> ``{"request_id"}``; ``DELETE
  mint/action_sessions/{id}`` -> ``{"status": "deleted"}``;
- ``POST create_sampling_session`` -> ``{"sampling_session_id"}``; ``POST asample`` ->
  ``{"request_id"}`` (token ids, for policies that emit tokens); ``DELETE
  sampling_sessions/{id}`` (not a MinT route; the harness's client frees its sessions);
- ``POST retrieve_future``: the result; 408 with ``Retry-After`` while it is pending
  (after waiting up to ``serve.long_poll_s`` for it, so a local client rarely sleeps);
  200 ``{"error", "category"}`` when the query failed or the result was already taken;
- an ``act`` or ``asample`` sent with ``Prefer: wait=N`` (RFC 7240; not a MinT feature,
  MinT ignores the header) is answered with the result itself, as ``retrieve_future``
  would give it, with ``Preference-Applied: wait``, when the result is ready within N s
  (at most ``serve.long_poll_s``); otherwise with the usual ``{"request_id"}``. That saves
  ``policy=mint`` one round trip per query; the SDK, which never sends it, is unaffected;
- ``GET evalharness/status`` (not MinT): open sessions, pending results, the served
  policy's identity and the serve settings.

The SDK's own routes (``mindlab-toolkit`` / ``tinker``'s ``ServiceClient``): ``POST
create_session`` -> ``{"session_id"}`` and ``POST session_heartbeat``.

Hostile input gets a 4xx in bounded memory (:mod:`evalharness.transports.mint.guard`
runs first: the key from the headers, then the ``serve.max_body_mb`` cap, 413, before any
parsing). Requests are validated strictly: an unknown field is a 422 (pydantic,
``extra="forbid"``), and so is an observation that is not three 224 x 224 PNGs in the
order ``base_0_rgb, left_wrist_0_rgb, right_wrist_0_rgb`` (dimensions read from the PNG
header before any pixel is decoded, :mod:`evalharness.transports.mint.png`) followed by at
most 180 prefix tokens that read ``Task: ..., State: ...;``, with a 1-D finite state.
Strings and lists have length limits (:mod:`evalharness.transports.mint.wire`). A 422's
detail is bounded (at most three errors, each a location and a short message) and never
quotes the input. Unknown or expired sessions are a 404; ``serve.max_sessions`` open
sessions, or a session with too many unretrieved results, a 429 with ``Retry-After``; a
missing or wrong ``X-API-Key`` a 401 when ``serve.auth=env``, on every path. A 500 is a
bug of the server (logged with its traceback), never an answer to what a client sent.

Sampling parameters (:mod:`evalharness.policies.sampling`) mean what they say or are
refused: ``asample``'s ``temperature``, ``top_k``, ``top_p`` and ``seed`` go to a policy that
lists them in ``sampling_parameters``; ``max_tokens`` and ``stop`` (token ids) cut the
token sequence here, for every token policy. A parameter the policy does not honour is a
422 naming it unless it asks for nothing: left out, Tinker's default (``top_k`` -1,
``top_p`` 1), ``temperature`` 0 (greedy: what a policy without a temperature does), or
the ``seed`` the session already has (``policy=mint`` sends the episode's). An action
session's ``temperature`` follows the same rule; ``null`` means the policy's own setting
(``runner.policy_server=auto`` sends that).

What the served policy receives: the three images (``image_mask`` true for the
``protocol``'s cameras), the instruction read back from the prompt (see
:mod:`evalharness.transports.mint.prompt`), and the state in robot units (``serve.state_space=raw``,
as ``policy=mint`` sends with ``state_space=raw``; ``normalized`` states are unnormalized
with ``serve.stats_path``). Token sampling carries no state field, so sampled policies get
none. Not carried, so not servable: privileged simulator state and raw robot proprioception.

Which side does what: an action session returns the policy's chunk in its normalized
space, decoding token output with the configured ``decoder`` first; ``asample`` returns
the tokens. Unnormalizing and converting are always the client's job. Chunks go back as
float64 with full precision (MinT sends float32; the SDK's ``TensorData`` knows only
float32 and int64, and the harness's own client is the only reader of these chunks) so a
served episode is bit-identical to the in-process one. Requests may carry float32, int64
(the SDK's dtypes), float64 or int32 tensors.

Every result carries ``server_timing`` (not a MinT field): decode, batch wait, model and
reply milliseconds, which ``bench --serve`` adds up against the round trip.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, NoReturn, TypeVar

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from evalharness.actions.pipeline import ActionPipeline
from evalharness.actions.normalize import QuantileNormalizer
from evalharness.transports.mint import wire
from evalharness.transports.mint.batcher import Batcher
from evalharness.transports.mint.guard import RequestGuard
from evalharness.transports.mint.prompt import PromptCodec
from evalharness.transports.mint.sessions import (
    MAX_PENDING_PER_SESSION, FutureTable, Session, SessionsFull, SessionTable, TooManyPending, describe_error)
from evalharness.transports.mint.serve_settings import ServeSettings
from evalharness.policies.base import Policy
from evalharness.policies.sampling import SamplingParams, truncate


class NaNJSONResponse(JSONResponse):
    """JSON that may hold NaN / Infinity: a policy's NaN reaches the client, which records it
    as an invalid action exactly as an in-process run does."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=True, separators=(",", ":")).encode("utf-8")


#: Neutral values of asample's parameters: what asks a policy for nothing (Tinker's defaults).
_NEUTRAL = {"top_k": -1, "top_p": 1.0, "max_tokens": None, "stop": None}


class PolicyService:
    """The served policy and everything the routes share."""

    def __init__(self, policy: Policy, decoder: ActionPipeline, settings: ServeSettings, *, cameras: tuple[str, ...],
                 api_key: str | None = None) -> None:
        self.policy = policy
        self.decoder = decoder  # the decode step only (normalize / convert are the client's)
        self.settings = settings
        # The real cameras, as the rollout would give them to this policy in-process: the
        # protocol's, narrowed by the policy's own; the others are zeros with a false mask.
        self.cameras = tuple(c for c in cameras if policy.cameras is None or c in policy.cameras)
        self.api_key = api_key
        self.codec = PromptCodec(settings.tokenizer)
        self.state_normalizer = None
        if settings.state_space == "normalized":
            self.state_normalizer = QuantileNormalizer.from_stats_file(settings.stats_path, key="state", dims=None)
        self.sessions = SessionTable(policy, max_sessions=settings.max_sessions, ttl_s=settings.session_ttl_s)
        self.futures = FutureTable(max_entries=settings.max_sessions * MAX_PENDING_PER_SESSION)
        self.batcher = Batcher(settings.max_batch, settings.max_wait_ms, active_sessions=self._active_sessions)

    def _active_sessions(self) -> int:
        counts = self.sessions.count()
        return counts["action"] + counts["sampling"]

    def identity(self) -> dict[str, Any]:
        return {"policy": self.policy.identity(), "decoder": self.decoder.describe()["decoder"],
                "serve": self.settings.identity()}

    def close(self) -> None:
        self.batcher.stop()
        self.policy.close()

    # ---------------------------------------------------------------- requests -> observations
    def observation(self, model_input: wire.ModelInput, state: wire.Tensor | None) -> dict[str, Any]:
        """The harness observation a request carries; HTTPException(422) naming what is wrong."""
        chunks = model_input.chunks
        kinds = [c.type for c in chunks]
        if kinds != ["image", "image", "image", "encoded_text"]:
            _invalid(f"chunks must be 3 images ({', '.join(wire.CAMERA_ORDER)}) then 1 encoded_text; got "
                     f"{kinds[:8]}{' ...' if len(kinds) > 8 else ''}")
        images: dict[str, np.ndarray] = {}
        for camera, chunk in zip(wire.CAMERA_ORDER, chunks[:3]):
            try:
                pixels = chunk.pixels((wire.IMAGE_SIZE, wire.IMAGE_SIZE))  # type: ignore[union-attr]
            except ValueError as exc:
                _invalid(f"image {camera}: {exc}; MinT uses images as sent: send {wire.IMAGE_SIZE}x{wire.IMAGE_SIZE} RGB PNGs")
            images[camera] = pixels if camera in self.cameras else np.zeros_like(pixels)
        tokens = chunks[3].tokens  # type: ignore[union-attr]
        if not tokens or len(tokens) > wire.MAX_PREFIX_TOKENS:
            _invalid(f"prefix has {len(tokens)} tokens; allowed: 1..{wire.MAX_PREFIX_TOKENS}")
        try:
            instruction, _ = self.codec.decode(tokens)
        except (ValueError, IndexError, OverflowError, TypeError) as exc:
            _invalid(f"prefix tokens: {str(exc)[:160]}")
        observation: dict[str, Any] = {
            "images": images,
            "image_mask": {camera: camera in self.cameras for camera in wire.CAMERA_ORDER},
            "instruction": instruction,
        }
        if state is not None:
            try:
                values = state.array()
            except ValueError as exc:
                _invalid(f"state: {exc}")
            if values.ndim != 1 or values.size == 0 or not np.isfinite(values).all():
                _invalid(f"state must be a finite 1-D vector; got shape {list(values.shape)[:8]}")
            if self.state_normalizer is not None:
                try:
                    values = self.state_normalizer.unnormalize(values).astype(np.float32)
                except ValueError as exc:
                    _invalid(f"state: {str(exc)[:160]}")
            observation["state"] = values.astype(np.float32)
        return observation

    # ---------------------------------------------------------------- sampling parameters
    def act_sampling(self, temperature: float | None) -> SamplingParams | None:
        """An action session's temperature, for the policy; 422 when it cannot honour it."""
        if temperature is None:
            return None
        if "temperature" in self.policy.sampling_parameters:
            return SamplingParams(temperature=float(temperature))
        if temperature != 0.0:
            self._refuse(["temperature"])
        return None

    def sample_sampling(self, params: wire.SamplingParams, session: Session) -> SamplingParams:
        """asample's parameters, as the policy receives them (see the module docstring)."""
        honoured = self.policy.sampling_parameters
        given = params.model_fields_set
        refused = []
        values: dict[str, Any] = {}
        if "temperature" in honoured:
            values["temperature"] = float(params.temperature)  # Tinker's default (1) when left out
        elif "temperature" in given and params.temperature != 0.0:
            refused.append("temperature")
        for name in ("top_k", "top_p"):
            value = getattr(params, name)
            if value == _NEUTRAL[name]:
                continue
            if name in honoured:
                values[name] = value
            else:
                refused.append(name)
        if params.seed is not None:
            if "seed" in honoured:
                values["seed"] = int(params.seed) % 2**63
            elif int(params.seed) % 2**63 != session.seed:
                refused.append("seed")
        if isinstance(params.stop, str) or (params.stop and isinstance(params.stop[0], str)):
            _invalid("sampling_params.stop: string stop sequences need a detokenizer, which evalharness serve does "
                     "not have; send token ids")
        if refused:
            self._refuse(refused)
        values["max_tokens"] = params.max_tokens
        values["stop"] = tuple(params.stop) if params.stop else None  # type: ignore[arg-type]
        return SamplingParams(**values)

    def _refuse(self, names: list[str]) -> NoReturn:
        honoured = sorted(self.policy.sampling_parameters) or ["none"]
        _invalid(f"sampling parameter {', '.join(names)}: the served policy {self.policy.name!r} cannot honour it "
                 f"(it honours: {', '.join(honoured)}); leave it out")

    # ---------------------------------------------------------------- outputs -> result bodies
    def finish_act(self, session: Session, output: Any, infer_ms: float) -> dict[str, Any]:
        array = np.asarray(output)
        events: list[str] = []
        if array.dtype.kind in "iu":  # token ids: decode to the normalized chunk here (with its fallback)
            result = self.decoder(array, require_libero_shape=False)
            chunk, events = result.actions, result.events
        else:  # a chunk goes back as it is, NaN included: the client validates it like the rollout does
            chunk = np.asarray(array, dtype=np.float64)
            if chunk.ndim == 1:
                chunk = chunk[None, :]
        # "events" is not a MinT field: decoding events, which policy=mint adds to the episode's record
        return {"actions": wire.Tensor.of(chunk, "float64").model_dump(), "policy_timing": {"infer_ms": infer_ms},
                "type": "act", "events": events}

    def finish_sample(self, session: Session, output: Any, infer_ms: float,
                      sampling: SamplingParams | None = None) -> dict[str, Any]:
        array = np.asarray(output)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise TypeError(f"the served policy returned {array.dtype} of shape {array.shape}, not token ids; "
                            "use action sessions for policies that return chunks")
        tokens, reason = truncate([int(t) for t in array], sampling)
        return {"sequences": [{"tokens": tokens, "logprobs": None, "stop_reason": reason}],
                "type": "sample", "policy_timing": {"infer_ms": infer_ms}}


def _invalid(detail: str) -> NoReturn:
    raise HTTPException(status_code=422, detail=detail)


#: A 422's detail: at most this many errors, each with a short location and message.
MAX_ERRORS = 3


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


def _loc_part(part: Any) -> Any:
    """A location step: an index, or a field name; a client's key that is not a short
    identifier (an unknown field may be anything) is not repeated."""
    if isinstance(part, int):
        return part
    return part if isinstance(part, str) and _NAME.fullmatch(part) else "<key>"


def bounded_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors without their ``input`` / ``ctx`` (which may be megabytes of the request)."""
    out = []
    for error in errors[:MAX_ERRORS]:
        loc = [_loc_part(part) for part in list(error.get("loc", ()))[:8]]
        out.append({"loc": loc, "msg": str(error.get("msg", ""))[:160], "type": str(error.get("type", ""))[:40]})
    if len(errors) > MAX_ERRORS:
        out.append({"loc": [], "msg": f"... and {len(errors) - MAX_ERRORS} more", "type": "more"})
    return out


def preferred_wait(prefer: str | None, cap_s: float) -> float | None:
    """Seconds to wait for a result from RFC 7240 ``Prefer: wait=N`` (capped at ``cap_s``), or
    None. Anything else in the header, or a value that is not delta-seconds, is ignored, as
    the RFC asks of a server."""
    if not prefer or cap_s <= 0:
        return None
    for preference in prefer[:200].split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "wait" and value.strip().isdigit():
            return min(float(value.strip()), cap_s)
    return None


Body = TypeVar("Body", bound=BaseModel)


def json_body(model: type[Body]) -> Callable[[Request], Awaitable[Body]]:
    """A dependency reading the request body as ``model`` straight from its bytes.

    pydantic's own JSON parser validates a 400 KB act body in a quarter of the time
    ``json.loads`` plus validation takes (FastAPI's way), and the server's CPU is what a
    served query waits for under load. A malformed body is the same 422 as FastAPI's,
    located under ``body`` and bounded by :func:`bounded_errors`.
    """

    async def parse(request: Request) -> Body:
        raw = await request.body()
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False, include_context=False)
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None

    return parse


def build_service(config: dict[str, Any], api_key: str | None = None) -> PolicyService:
    """The service for a composed harness config: its ``policy``, ``decoder``, ``protocol``
    (cameras) and ``serve`` groups. Mistakes raise UserInputError (one line)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from evalharness.actions.pipeline import build_pipeline
    from evalharness.errors import UserInputError
    from evalharness.transports.mint.serve_settings import load_serve_settings
    from evalharness.policies.pipelined import split_at_decoder

    settings = load_serve_settings(config.get("serve"))
    try:
        policy = instantiate(config["policy"], _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, UserInputError):
            raise cause from None
        raise UserInputError(f"policy could not be built: {cause or exc}") from None
    # The decode stage of the policy's pipeline (the client unnormalizes and converts).
    decoder = build_pipeline(split_at_decoder(policy, {"decoder": config.get("decoder")})[0])
    if policy.needs_privileged_state:
        policy.close()
        raise UserInputError(f"policy {policy.name!r} reads privileged simulator state, which the MinT protocol does "
                             "not carry; serve a policy that needs only cameras, state and instruction")
    cameras = tuple(config.get("protocol", {}).get("cameras", wire.CAMERA_ORDER[:2]))
    return PolicyService(policy, decoder, settings, cameras=cameras, api_key=api_key)


def _short(session_id: str) -> str:
    return session_id if len(session_id) <= 64 else f"{session_id[:64]}..."


def create_app(service: PolicyService) -> RequestGuard:
    """The ASGI app serving ``service``: the FastAPI routes behind :class:`RequestGuard`."""
    app = FastAPI(title="evalharness serve", docs_url=None, redoc_url=None, openapi_url=None)
    api = "/api/v1"
    retry = str(service.settings.retry_after_s)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": bounded_errors(list(exc.errors()))}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request rejected"
        return JSONResponse({"detail": detail[:500]}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(SessionsFull)
    @app.exception_handler(TooManyPending)
    async def full(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": retry})

    def open_session(session_id: str, kind: str) -> Session:
        session = service.sessions.get(session_id, kind)
        if session is None:
            if service.sessions.expired(session_id):
                raise HTTPException(status_code=404, detail=(
                    f"{kind} session {_short(session_id)} expired (idle longer than serve.session_ttl_s="
                    f"{service.settings.session_ttl_s:g} s) or was deleted; open a new session"))
            raise HTTPException(status_code=404, detail=f"Unknown {kind} session: {_short(session_id)}")
        return session

    def delete_session(session_id: str, kind: str) -> dict[str, str]:
        if not service.sessions.close(session_id, kind):
            raise HTTPException(status_code=404, detail=f"Unknown {kind} session: {_short(session_id)}")
        return {"status": "deleted"}

    def submit(request: Request, session: Session, observation: dict[str, Any], finish) -> dict[str, str]:
        service.futures.reserve(session.id)
        t0 = request.scope.get("state", {}).get("evalharness_t0", time.perf_counter())
        decode_ms = 1000.0 * (time.perf_counter() - t0)
        future = service.batcher.submit(session, observation, finish, decode_ms=decode_ms)
        return {"request_id": service.futures.add(future, session.id)}

    # ---------------------------------------------------------------- the SDK's client sessions
    @app.post(f"{api}/create_session")
    def create_session(body: wire.CreateSession) -> dict[str, str]:
        return {"type": "create_session", "session_id": service.sessions.open_client()}

    @app.post(f"{api}/session_heartbeat")
    def session_heartbeat(body: wire.SessionHeartbeat) -> dict[str, str]:
        if not service.sessions.heartbeat(body.session_id):
            raise HTTPException(status_code=404, detail=f"Unknown session: {_short(body.session_id)}")
        return {"type": "session_heartbeat"}

    # ---------------------------------------------------------------- action sessions
    @app.post(f"{api}/mint/action_sessions")
    def create_action_session(body: wire.CreateActionSession) -> dict[str, str]:
        session = service.sessions.open("action", body.session_id, body.model_path)
        return {"action_session_id": session.id}

    def finished(future: Future, headers: dict[str, str] | None = None) -> JSONResponse:
        """A done future's answer: its result, or the error it failed with."""
        error = future.exception()
        if error is not None:
            return JSONResponse(describe_error(error), headers=headers)
        return NaNJSONResponse(future.result(), headers=headers)

    async def answer(request: Request, queued: dict[str, str]) -> JSONResponse:
        """``{"request_id"}``, or with ``Prefer: wait`` the result once it is ready in time."""
        wait = preferred_wait(request.headers.get("prefer"), service.settings.long_poll_s)
        future = service.futures.get(queued["request_id"]) if wait is not None else None
        if future is None:
            return JSONResponse(queued)
        if not future.done():
            await asyncio.wait([asyncio.wrap_future(future)], timeout=wait)
        if not future.done():
            return JSONResponse(queued)  # the client polls retrieve_future as usual
        service.futures.mark_retrieved(queued["request_id"])
        return finished(future, {"Preference-Applied": "wait"})

    def act_now(request: Request, session_id: str, body: wire.ActRequest) -> dict[str, str]:
        session = open_session(session_id, "action")
        observation = service.observation(body.observation.model_input, body.observation.state)
        sampling = service.act_sampling(body.temperature)
        if sampling is not None:
            observation["sampling"] = sampling
        return submit(request, session, observation, service.finish_act)

    @app.post(f"{api}/mint/action_sessions/{{session_id}}/act")
    async def act(request: Request, session_id: str,
                  body: wire.ActRequest = Depends(json_body(wire.ActRequest))) -> JSONResponse:
        # Decoded on the event loop, not in a worker thread: a decode is bounded (three 224 px
        # PNGs at most, sizes checked in the header, the body capped) and takes 1-2 ms, and
        # under the GIL a thread hop cost more than it freed (bench --serve, 8 sessions: p50
        # beyond the model 26 -> 22 ms).
        return await answer(request, act_now(request, session_id, body))

    @app.delete(f"{api}/mint/action_sessions/{{session_id}}")
    def delete_action_session(session_id: str) -> dict[str, str]:
        return delete_session(session_id, "action")

    # ---------------------------------------------------------------- token sampling
    @app.post(f"{api}/create_sampling_session")
    def create_sampling_session(body: wire.CreateSamplingSession) -> dict[str, str]:
        session = service.sessions.open("sampling", body.session_id, body.model_path, body.sampling_session_seq_id)
        return {"sampling_session_id": session.id}

    @app.post(f"{api}/asample")
    async def asample(request: Request,
                      body: wire.SampleRequest = Depends(json_body(wire.SampleRequest))) -> JSONResponse:
        return await answer(request, asample_now(request, body))  # on the event loop, as act

    def asample_now(request: Request, body: wire.SampleRequest) -> dict[str, str]:
        if body.sampling_session_id is None:
            _invalid("sampling_session_id is required: evalharness serve samples in sampling sessions "
                     "(POST create_sampling_session first)")
        session = open_session(body.sampling_session_id, "sampling")
        if body.num_samples != 1:
            _invalid("num_samples: evalharness serve samples one sequence per request")
        if body.prompt_logprobs or body.topk_prompt_logprobs:
            _invalid("prompt_logprobs / topk_prompt_logprobs: evalharness serve does not compute prompt logprobs")
        sampling = service.sample_sampling(body.sampling_params, session)
        observation = service.observation(body.prompt, None)
        policy_sampling = SamplingParams(**{k: v for k, v in vars(sampling).items()
                                            if k in service.policy.sampling_parameters})
        if policy_sampling.requested():
            observation["sampling"] = policy_sampling
        return submit(request, session, observation, functools.partial(service.finish_sample, sampling=sampling))

    @app.delete(f"{api}/sampling_sessions/{{session_id}}")
    def delete_sampling_session(session_id: str) -> dict[str, str]:
        return delete_session(session_id, "sampling")

    # ---------------------------------------------------------------- futures
    @app.post(f"{api}/retrieve_future")
    async def retrieve_future(body: wire.RetrieveFuture) -> JSONResponse:
        future = service.futures.get(body.request_id)
        if future is None:
            if service.futures.was_retrieved(body.request_id):
                return JSONResponse({"error": "Future already retrieved", "category": "user"})
            raise HTTPException(status_code=404, detail=f"Unknown request_id: {_short(body.request_id)}")
        if not future.done() and service.settings.long_poll_s > 0:
            await asyncio.wait([asyncio.wrap_future(future)], timeout=service.settings.long_poll_s)
        if not future.done():
            wait = service.settings.retry_after_s
            return JSONResponse({"type": "try_again", "queue_state": "active", "retry_after_s": wait},
                                status_code=408, headers={"Retry-After": str(wait)})
        service.futures.mark_retrieved(body.request_id)
        return finished(future)

    @app.get(f"{api}/evalharness/status")
    def status() -> dict[str, Any]:
        return {"open_sessions": service.sessions.count(), "client_sessions": service.sessions.client_count(),
                "expired_sessions": service.sessions.expired_count, "pending": service.futures.pending(),
                "results_held": service.futures.size(), "batches": service.batcher.batches,
                "queries": service.batcher.queries, **service.identity()}

    return RequestGuard(app, api_key=service.api_key, max_body_bytes=service.settings.max_body_bytes)


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (port 0 = a free one): clients may connect at once.

    Its protocol is ``IPPROTO_TCP`` explicitly, not 0: asyncio turns Nagle's algorithm off
    (``TCP_NODELAY``) only on accepted sockets whose ``proto`` says TCP. Without it every
    answer, written as headers then body, waited for the client's delayed ACK of the
    headers: 40 ms per request, 80 of a query's act + retrieve_future (issue 17).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


class ServerThread:
    """Runs an ASGI app with uvicorn in a thread on 127.0.0.1 (tests, ``bench --serve``)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self._sock = listening_socket(host, port)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
