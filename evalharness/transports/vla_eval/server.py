"""``evalharness serve --protocol vla_eval``: a harness policy as a vla-eval model server (protocol v1).

What vla-eval's ``serve_async`` + ``PredictModelServer`` do, and so what this does, for
vla-eval's own orchestrator (``vla-eval run`` against this port) and ``policy=vla_eval``:

- ``hello`` is answered with ``hello``: ``model_server`` (``evalharness:<policy>``),
  ``harness_version``, ``protocol_version`` 1, ``capabilities`` (``{}``),
  ``observation_params`` (``send_wrist_image`` when the protocol has the wrist camera,
  ``send_state`` when it gives state, ``quat_no_antipodal: true``: the harness's own
  axis-angle convention, so the served policy sees the state it sees in-process),
  ``action_spec`` (LIBERO's: delta_xyz, axis_angle, binary_close_positive) and
  ``observation_spec``;
- ``episode_start`` resets the connection's fork with the task's ``name`` and ``seed`` (0
  when the client sends none, as vla-eval's does); ``episode_end`` is acknowledged by
  nothing, as in vla-eval;
- each ``observation`` gets one ``action`` (its ``seq`` echoed) holding *one* action: like a
  vla-eval server with ``chunk_size``, the first ``protocol.replan_steps`` actions of a
  chunk are kept per session and the next observations are answered from them, so
  vla-eval's one-action-per-step loop executes exactly what the in-process rollout does;
- a failure is an ``error`` frame (``{"error": "observation_failed: Type: message"}``) and
  the connection stays open;
- ``GET /health`` (``{"status": "ok"}``) and ``GET /config`` (``max_batch_size``,
  ``max_wait_time``; read-only here) are answered on the same port.

Batching across connections and per-session forks are :mod:`evalharness.transports.serving`'s.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import numpy as np

from evalharness.transports.serving import ServedPolicy, harness_observation
from evalharness.transports.vla_eval.specs import LIBERO_ACTION_SPEC
from evalharness.transports.vla_eval.wire import PROTOCOL_VERSION, Frame, FrameError, pack, unpack

__all__ = ["serve_vla_eval", "hello_payload"]

IMAGE = {"name": "image", "dims": 0, "format": "rgb_hwc_uint8"}


def hello_payload(served: ServedPolicy) -> dict[str, Any]:
    from evalharness import __version__

    wrist = "left_wrist_0_rgb" in served.cameras
    params = {"send_wrist_image": wrist, "send_state": served.state, "quat_no_antipodal": True}
    observation_spec: dict[str, Any] = {"agentview": IMAGE, "language": {"name": "language", "dims": 0,
                                                                          "format": "language"}}
    if wrist:
        observation_spec["wrist"] = IMAGE
    if served.state:
        observation_spec["state"] = {"name": "state", "dims": 8, "format": "eef_pos3_axisangle3_gripper2"}
    return {"harness_version": f"evalharness {__version__}", "protocol_version": PROTOCOL_VERSION,
            "model_server": f"evalharness:{served.policy.name}", "capabilities": {},
            "observation_params": params, "action_spec": LIBERO_ACTION_SPEC, "observation_spec": observation_spec}


def _observation(payload: dict[str, Any], served: ServedPolicy, instruction: str | None) -> dict[str, Any]:
    images = payload.get("images") or {}
    if not isinstance(images, dict) or images.get("agentview") is None:
        raise ValueError("an observation needs images.agentview")
    state = payload.get("states", payload.get("state")) if served.state else None
    text = payload.get("task_description", instruction)
    if text is None:
        raise ValueError("an observation needs task_description (or an episode_start with a task name)")
    return harness_observation({"base_0_rgb": images.get("agentview"), "left_wrist_0_rgb": images.get("wrist")},
                               str(text), state, served.cameras)


async def _handle(ws: Any, served: ServedPolicy) -> None:
    from websockets.exceptions import ConnectionClosed

    session = served.open_session(seed=0)
    instruction: str | None = None
    started = False

    async def send(kind: str, payload: dict[str, Any], seq: int) -> None:
        await ws.send(pack(Frame(kind, payload, seq)))

    try:
        async for data in ws:
            try:
                frame = unpack(data)
            except FrameError as exc:
                await send("error", {"error": f"bad_frame: {exc}"}, 0)
                continue
            if frame.type == "hello":
                await send("hello", hello_payload(served), frame.seq)
            elif frame.type == "episode_start":
                task = frame.payload.get("task") or {}
                instruction = task.get("name") or task.get("task_description")
                try:
                    served.begin_episode(session, str(instruction or ""), int(task.get("seed", 0) or 0))
                    started = instruction is not None
                except Exception as exc:  # noqa: BLE001 - reported, the connection stays open
                    await send("error", {"error": f"episode_start_failed: {type(exc).__name__}: {exc}"}, frame.seq)
            elif frame.type == "observation":
                try:
                    if not session.buffer:
                        observation = _observation(frame.payload, served, instruction)
                        chunk = await served.act(session, observation, auto_reset=not started)
                        session.buffer.extend(np.asarray(chunk, dtype=np.float64)[: served.replan_steps])
                    await send("action", {"actions": session.buffer.popleft()}, frame.seq)
                except ConnectionClosed:
                    raise
                except Exception as exc:  # noqa: BLE001 - vla-eval: an error frame, the connection stays
                    session.buffer.clear()
                    await send("error", {"error": f"observation_failed: {type(exc).__name__}: {exc}"}, frame.seq)
            elif frame.type == "episode_end":
                session.buffer.clear()
                started = False
    except ConnectionClosed:
        pass
    finally:
        served.close_session(session)


def _process_request(served: ServedPolicy):
    def process(connection: Any, request: Any) -> Any:
        path = request.path.split("?", 1)[0]
        if path == "/health":
            response = connection.respond(HTTPStatus.OK, '{"status": "ok"}\n')
        elif path == "/config":
            body = {"applied": {}, "config": {"max_batch_size": served.max_batch,
                                               "max_wait_time": served.max_wait_ms / 1000.0}}
            response = connection.respond(HTTPStatus.OK, json.dumps(body) + "\n")
        else:
            return None
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        return response

    return process


async def serve_vla_eval(served: ServedPolicy, sock: Any, protocol_name: str, ready: Any = None) -> None:
    """Serve until cancelled, on the listening socket ``sock``; ``ready()`` once listening."""
    import asyncio

    from websockets.asyncio.server import serve

    async with serve(lambda ws: _handle(ws, served), sock=sock, compression=None, max_size=None, ping_interval=None,
                     process_request=_process_request(served)):
        if ready is not None:
            ready()
        await asyncio.Future()
