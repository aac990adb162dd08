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
- ``GET evalharness/status`` (not MinT): open sessions, pending results, the served
  policy's identity and the serve settings.

Requests are validated strictly: an unknown field is a 422 (pydantic, ``extra="forbid"``),
and so is an observation that is not three 224 x 224 PNGs in the order ``base_0_rgb,
left_wrist_0_rgb, right_wrist_0_rgb`` followed by at most 180 prefix tokens that read
``Task: ..., State: ...;``, with a 1-D finite state. Unknown sessions are a 404, a missing
or wrong ``X-API-Key`` a 401 when ``serve.auth=env``.

What the served policy receives: the three images (``image_mask`` true for the
``protocol``'s cameras), the instruction read back from the prompt (see
:mod:`evalharness.transports.mint.prompt`), and the state in robot units (``serve.state_space=raw``,
as ``policy=mint`` sends with ``state_space=raw``; ``normalized`` states are unnormalized
with ``serve.stats_path``). Token sampling carries no state field, so sampled policies get
none. Not carried, so not servable: privileged simulator state and raw robot proprioception.

Which side does what: an action session returns the policy's chunk in its normalized
space, decoding token output with the configured ``decoder`` first; ``asample`` returns
the tokens. Unnormalizing and converting are always the client's job. Chunks go back as
float64 with full precision (MinT sends float32) so a served episode is bit-identical to
the in-process one.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import socket
import threading
import time
from typing import Any, NoReturn

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from evalharness.actions.pipeline import ActionPipeline
from evalharness.actions.normalize import QuantileNormalizer
from evalharness.transports.mint import wire
from evalharness.transports.mint.batcher import Batcher
from evalharness.transports.mint.prompt import PromptCodec
from evalharness.transports.mint.sessions import FutureTable, Session, SessionTable, describe_error
from evalharness.transports.mint.serve_settings import ServeSettings
from evalharness.policies.base import Policy


class NaNJSONResponse(JSONResponse):
    """JSON that may hold NaN / Infinity: a policy's NaN reaches the client, which records it
    as an invalid action exactly as an in-process run does."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=True, separators=(",", ":")).encode("utf-8")


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
        self.sessions = SessionTable(policy)
        self.futures = FutureTable()
        self.batcher = Batcher(settings.max_batch, settings.max_wait_ms)

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
            _invalid(f"chunks must be 3 images ({', '.join(wire.CAMERA_ORDER)}) then 1 encoded_text; got {kinds}")
        images: dict[str, np.ndarray] = {}
        for camera, chunk in zip(wire.CAMERA_ORDER, chunks[:3]):
            try:
                pixels = chunk.pixels()  # type: ignore[union-attr]
            except ValueError as exc:
                _invalid(f"image {camera}: not a valid PNG ({exc})")
            if pixels.shape != (wire.IMAGE_SIZE, wire.IMAGE_SIZE, 3):
                _invalid(f"image {camera}: {pixels.shape[1]}x{pixels.shape[0]}; MinT uses images as sent: "
                         f"send {wire.IMAGE_SIZE}x{wire.IMAGE_SIZE}")
            images[camera] = pixels if camera in self.cameras else np.zeros_like(pixels)
        tokens = chunks[3].tokens  # type: ignore[union-attr]
        if not tokens or len(tokens) > wire.MAX_PREFIX_TOKENS:
            _invalid(f"prefix has {len(tokens)} tokens; allowed: 1..{wire.MAX_PREFIX_TOKENS}")
        try:
            instruction, _ = self.codec.decode(tokens)
        except ValueError as exc:
            _invalid(f"prefix tokens: {exc}")
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
            if values.ndim != 1 or not np.isfinite(values).all():
                _invalid(f"state must be a finite 1-D vector; got shape {list(values.shape)}")
            if self.state_normalizer is not None:
                values = self.state_normalizer.unnormalize(values).astype(np.float32)
            observation["state"] = values.astype(np.float32)
        return observation

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

    def finish_sample(self, session: Session, output: Any, infer_ms: float) -> dict[str, Any]:
        array = np.asarray(output)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise TypeError(f"the served policy returned {array.dtype} of shape {array.shape}, not token ids; "
                            "use action sessions for policies that return chunks")
        return {"sequences": [{"tokens": [int(t) for t in array], "logprobs": None, "stop_reason": "length"}],
                "type": "sample", "policy_timing": {"infer_ms": infer_ms}}


def _invalid(detail: str) -> NoReturn:
    raise HTTPException(status_code=422, detail=detail)


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


def create_app(service: PolicyService) -> FastAPI:
    """The FastAPI app serving ``service``."""

    def check_key(request: Request) -> None:
        if service.api_key is None:
            return
        given = request.headers.get("X-API-Key", "")
        if not hmac.compare_digest(given.encode(), service.api_key.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key")

    app = FastAPI(title="evalharness serve", dependencies=[Depends(check_key)], docs_url=None, redoc_url=None,
                  openapi_url=None)
    api = "/api/v1"

    def open_session(session_id: str, kind: str) -> Session:
        session = service.sessions.get(session_id, kind)
        if session is None:
            raise HTTPException(status_code=404, detail=f"Unknown {kind} session: {session_id}")
        return session

    def delete_session(session_id: str, kind: str) -> dict[str, str]:
        if not service.sessions.close(session_id, kind):
            raise HTTPException(status_code=404, detail=f"Unknown {kind} session: {session_id}")
        return {"status": "deleted"}

    def submit(session: Session, observation: dict[str, Any], finish) -> dict[str, str]:
        future = service.batcher.submit(session, observation, finish)
        return {"request_id": service.futures.add(future)}

    @app.post(f"{api}/mint/action_sessions")
    def create_action_session(body: wire.CreateActionSession) -> dict[str, str]:
        session = service.sessions.open("action", body.session_id, body.model_path)
        return {"action_session_id": session.id}

    @app.post(f"{api}/mint/action_sessions/{{session_id}}/act")
    def act(session_id: str, body: wire.ActRequest) -> dict[str, str]:
        session = open_session(session_id, "action")
        observation = service.observation(body.observation.model_input, body.observation.state)
        return submit(session, observation, service.finish_act)

    @app.delete(f"{api}/mint/action_sessions/{{session_id}}")
    def delete_action_session(session_id: str) -> dict[str, str]:
        return delete_session(session_id, "action")

    @app.post(f"{api}/create_sampling_session")
    def create_sampling_session(body: wire.CreateSamplingSession) -> dict[str, str]:
        session = service.sessions.open("sampling", body.session_id, body.model_path)
        return {"sampling_session_id": session.id}

    @app.post(f"{api}/asample")
    def asample(body: wire.SampleRequest) -> dict[str, str]:
        session = open_session(body.sampling_session_id, "sampling")
        if body.num_samples != 1:
            _invalid("num_samples: evalharness serve samples one sequence per request")
        observation = service.observation(body.prompt, None)
        return submit(session, observation, service.finish_sample)

    @app.delete(f"{api}/sampling_sessions/{{session_id}}")
    def delete_sampling_session(session_id: str) -> dict[str, str]:
        return delete_session(session_id, "sampling")

    @app.post(f"{api}/retrieve_future")
    async def retrieve_future(body: wire.RetrieveFuture) -> JSONResponse:
        future = service.futures.get(body.request_id)
        if future is None:
            if service.futures.was_retrieved(body.request_id):
                return JSONResponse({"error": "Future already retrieved", "category": "user"})
            raise HTTPException(status_code=404, detail=f"Unknown request_id: {body.request_id}")
        if not future.done() and service.settings.long_poll_s > 0:
            await asyncio.wait([asyncio.wrap_future(future)], timeout=service.settings.long_poll_s)
        if not future.done():
            retry = service.settings.retry_after_s
            return JSONResponse({"type": "try_again", "queue_state": "active", "retry_after_s": retry},
                                status_code=408, headers={"Retry-After": str(retry)})
        service.futures.mark_retrieved(body.request_id)
        error = future.exception()
        if error is not None:
            return JSONResponse(describe_error(error))
        return NaNJSONResponse(future.result())

    @app.get(f"{api}/evalharness/status")
    def status() -> dict[str, Any]:
        return {"open_sessions": service.sessions.count(), "pending": service.futures.pending(),
                "batches": service.batcher.batches, "queries": service.batcher.queries, **service.identity()}

    return app


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket (port 0 = a free one): clients may connect at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
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
