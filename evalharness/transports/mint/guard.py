"""The ASGI layer in front of ``evalharness serve``'s routes: what runs before a body is read.

Order, for every HTTP request, whatever its path (unknown routes included):

1. **The key** (``serve.auth=env``): ``X-API-Key`` is compared (constant time) from the
   headers alone; a missing or wrong key is a 401 and the body is never parsed or kept.
2. **The body cap** (``serve.max_body_mb``): a ``Content-Length`` above it is a 413 at
   once; a body without one (chunked) is counted as it arrives and cut off with a 413 as
   soon as it passes the cap. Memory per request is bounded by the cap whatever the client
   sends.
   A refused body is drained and thrown away, in pieces, up to ``DRAIN_LIMIT_BYTES`` and
   ``DRAIN_LIMIT_S``, before the answer goes out: a server that closes a connection with
   unread data makes the kernel send a reset, which destroys the answer in flight, so the
   client would see "connection reset" instead of its 401 / 413. Beyond the limits the
   connection is closed anyway.
3. The body, read whole (under the cap), is handed to the app; the time the request
   arrived is left in ``scope["state"]["evalharness_t0"]`` for the per-query timing.

The app's own exception handlers turn every client mistake into a 4xx; anything that
still escapes is a bug of the server, logged with its traceback and answered with a bare
500 that carries nothing of the request.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

LOG = logging.getLogger("evalharness.serve")
#: How much of a refused body is read and discarded so that the client hears the answer.
DRAIN_LIMIT_BYTES = 256 * 1024 * 1024
DRAIN_LIMIT_S = 10.0


async def send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class RequestGuard:
    """Key check, then body cap, then the app (see the module docstring)."""

    def __init__(self, app: Any, *, api_key: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        if self.api_key is not None:
            given = headers.get(b"x-api-key", b"")
            if not hmac.compare_digest(given, self.api_key):
                await _drain(receive)
                await send_json(send, 401, {"detail": "missing or wrong X-API-Key"})
                return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_json(send, 400, {"detail": "Content-Length is not a number"})
                return
            if declared > self.max_body_bytes:
                await _drain(receive)
                await self._too_large(send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            part = message.get("body", b"")
            size += len(part)
            if size > self.max_body_bytes:
                del chunks
                if message.get("more_body", False):
                    await _drain(receive)
                await self._too_large(send)
                return
            if part:
                chunks.append(part)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # http.disconnect, when the client goes away
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope.setdefault("state", {})["evalharness_t0"] = t0
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, replay, tracking_send)
        except Exception:  # noqa: BLE001 - a bug of the server, never the client's fault
            LOG.exception("evalharness serve: internal error (a server bug) on %s %s", scope.get("method"),
                          str(scope.get("path"))[:200])
            if not started:
                await send_json(send, 500, {"detail": "internal server error (logged by the server)"})

    async def _too_large(self, send: Send) -> None:
        mb = self.max_body_bytes / (1024 * 1024)
        await send_json(send, 413, {"detail": f"request body larger than serve.max_body_mb={mb:g}"},
                        {"connection": "close"})


async def _drain(receive: Receive) -> None:
    """Read and discard the rest of a request body, bounded in bytes and time."""
    import asyncio

    deadline = time.monotonic() + DRAIN_LIMIT_S
    drained = 0
    while drained < DRAIN_LIMIT_BYTES:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), timeout=left)
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
