"""``evalharness serve --protocol openpi``: a harness policy behind openpi's websocket server protocol.

What openpi's ``WebsocketPolicyServer`` does, and so what this does, for any client built
on ``openpi_client.WebsocketClientPolicy`` (openpi's ``examples/libero/main.py``, RoboArena,
``policy=openpi``):

- a connection first receives one binary frame: the server's metadata (msgpack-numpy,
  :mod:`evalharness.transports.openpi.wire`), here ``{"server": "evalharness", "policy":
  <the served policy's identity>, "protocol": <the protocol's name>}``;
- each binary frame is one observation (``observation/image``, ``observation/wrist_image``,
  ``observation/state``, ``prompt``, openpi's LIBERO keys); the reply is one binary frame
  ``{"actions": (H, 7) float64, "server_timing": {"infer_ms": ...}}``: the whole chunk of
  robot actions (the server runs the policy's whole action pipeline);
- an exception is sent as one *text* frame (its traceback) and the connection is closed,
  as openpi does;
- ``GET /healthz`` answers ``200 OK`` on the same port.

Sessions, seeding and batching are :mod:`evalharness.transports.serving`'s: openpi's
protocol carries no episode boundary and no seed, so a connection's fork is reset with
seed 0 on its first observation and whenever the prompt changes.
"""

from __future__ import annotations

import time
import traceback
from http import HTTPStatus
from typing import Any

import numpy as np

from evalharness.transports.openpi.wire import pack, unpack
from evalharness.transports.serving import ServedPolicy, harness_observation

__all__ = ["serve_openpi"]


def _metadata(served: ServedPolicy, protocol_name: str) -> dict[str, Any]:
    import json

    from evalharness.config.redaction import redact

    identity = json.loads(json.dumps(redact(served.policy.identity()), default=str))
    return {"server": "evalharness", "policy": identity, "protocol": protocol_name}


def _observation(element: Any, served: ServedPolicy) -> dict[str, Any]:
    if not isinstance(element, dict):
        raise ValueError(f"an observation is a map, not a {type(element).__name__}")
    missing = [k for k in ("observation/image", "prompt") if k not in element]
    if missing:
        raise ValueError(f"observation lacks {missing} (openpi's LIBERO keys: observation/image, "
                         "observation/wrist_image, observation/state, prompt)")
    images = {"base_0_rgb": element.get("observation/image"), "left_wrist_0_rgb": element.get("observation/wrist_image")}
    state = element.get("observation/state") if served.state else None
    prompt = element["prompt"]
    prompt = prompt.decode() if isinstance(prompt, bytes) else str(prompt)
    return harness_observation(images, prompt, state, served.cameras)


async def _handle(ws: Any, served: ServedPolicy, metadata: bytes) -> None:
    from websockets.exceptions import ConnectionClosed

    session = served.open_session(seed=0)
    try:
        await ws.send(metadata)
        async for frame in ws:
            start = time.perf_counter()
            try:
                if isinstance(frame, str):
                    raise ValueError("openpi observations are binary msgpack frames, not text")
                observation = _observation(unpack(frame), served)
                chunk = await served.act(session, observation, auto_reset=True)
                reply = {"actions": np.asarray(chunk, dtype=np.float64),
                         "server_timing": {"infer_ms": (time.perf_counter() - start) * 1000.0}}
                await ws.send(pack(reply))
            except ConnectionClosed:
                raise
            except Exception:  # noqa: BLE001 - openpi: the traceback as text, then close
                await ws.send(traceback.format_exc())
                await ws.close(1011, "internal error")
                return
    except ConnectionClosed:
        pass
    finally:
        served.close_session(session)


def _process_request(connection: Any, request: Any) -> Any:
    if request.path == "/healthz":
        return connection.respond(HTTPStatus.OK, "OK\n")
    return None


async def serve_openpi(served: ServedPolicy, sock: Any, protocol_name: str, ready: Any = None) -> None:
    """Serve until cancelled, on the listening socket ``sock``; ``ready(url)`` once listening."""
    import asyncio

    from websockets.asyncio.server import serve

    metadata = pack(_metadata(served, protocol_name))
    async with serve(lambda ws: _handle(ws, served, metadata), sock=sock, compression=None, max_size=None,
                     ping_interval=None, process_request=_process_request):
        if ready is not None:
            ready()
        await asyncio.Future()
