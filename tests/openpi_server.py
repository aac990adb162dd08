"""A websocket policy server for the tests that behaves like openpi's.

It uses the real ``openpi_client.msgpack_numpy`` codec and openpi's connection protocol
(a metadata frame on connect, one msgpack reply per msgpack query, ``server_timing`` and
``policy_timing`` in each reply, a text frame with a traceback on an exception, then close
1011). It validates every query strictly (exactly the four keys of openpi's LIBERO example,
224 px uint8 images, float64[8] state, a non-empty prompt) and serves a harness
:class:`Policy` in it. ``fault`` injects what networks and servers do wrong.

Also here: :class:`ObservationPolicy`, a deterministic policy whose actions depend on
both images and the state, so identical executed actions prove the observation crossed
the wire unchanged.
"""

from __future__ import annotations

import http
import socket
import threading
import time
import traceback
from typing import Any

import numpy as np
from openpi_client import msgpack_numpy
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from evalharness.policies.base import Policy

LIBERO_KEYS = {"observation/image", "observation/wrist_image", "observation/state", "prompt"}


class ObservationPolicy(Policy):
    """Deterministic chunks computed from the agentview and wrist images and the state."""

    name = "observation_test"

    def __init__(self, horizon: int = 8) -> None:
        self.horizon = horizon

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "horizon": self.horizon}

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        base = observation["images"]["base_0_rgb"].astype(np.float64)
        wrist = observation["images"]["left_wrist_0_rgb"].astype(np.float64)
        state = np.asarray(observation["state"], dtype=np.float64)
        features = np.array([
            base[..., 0].mean() / 64 - 1.5, base[..., 1].std() / 32 - 1, wrist.mean() / 64 - 1,
            (base[::7, ::5, 2] * np.arange(base.shape[1])[::5]).mean() / 4000 - 1,
            state[0] * 7 + state[3], state[1] * 7 - state[5], 0.0,
        ])
        chunk = np.tanh(features)[None, :] * np.linspace(1.0, 0.3, self.horizon)[:, None]
        chunk[:, 6] = np.where(state[6] > 0.03, 1.0, -1.0)
        return chunk


def harness_observation(element: dict[str, Any]) -> dict[str, Any]:
    """What the harness would have given the policy, rebuilt from openpi's element."""
    image, wrist = element["observation/image"], element["observation/wrist_image"]
    return {
        "images": {"base_0_rgb": image, "left_wrist_0_rgb": wrist, "right_wrist_0_rgb": np.zeros_like(image)},
        "state": element["observation/state"].astype(np.float32),
        "instruction": element["prompt"],
    }


def check_element(element: Any) -> None:
    """Raise ValueError unless ``element`` is exactly what openpi's LIBERO example sends."""
    if not isinstance(element, dict) or set(element) != LIBERO_KEYS:
        raise ValueError(f"observation keys {sorted(element) if isinstance(element, dict) else element!r} != {sorted(LIBERO_KEYS)}")
    for key in ("observation/image", "observation/wrist_image"):
        image = element[key]
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != (224, 224, 3):
            raise ValueError(f"{key}: {getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
    state = element["observation/state"]
    if not isinstance(state, np.ndarray) or state.dtype != np.float64 or state.shape != (8,):
        raise ValueError(f"observation/state: {getattr(state, 'dtype', type(state))} {getattr(state, 'shape', '')}")
    if not isinstance(element["prompt"], str) or not element["prompt"]:
        raise ValueError(f"prompt {element['prompt']!r}")


class OpenpiTestServer:
    """openpi's server protocol on 127.0.0.1, serving ``policy`` in a background thread.

    ``fault`` (settable any time): None, ``"drop_after:N"`` (close the TCP connection
    without answering at the N-th query of a connection, once), ``"error"`` (a text frame
    with a traceback, then close 1011, like openpi), ``"missing_actions"``,
    ``"wrong_shape"``, ``"nan"``, ``"hang"`` (never answer). ``api_key``: connections
    without ``Authorization: Api-Key <key>`` get HTTP 401.
    """

    def __init__(self, policy: Policy, metadata: dict | None = None, api_key: str | None = None, port: int = 0) -> None:
        self.policy = policy
        self.metadata = metadata if metadata is not None else {"env": "LIBERO", "action_horizon": 8}
        self.api_key = api_key
        self.fault: str | None = None
        self.authorizations: list[str | None] = []
        self.connections = 0
        self.queries = 0
        self.errors: list[str] = []
        self._dropped = False
        self._stopping = threading.Event()
        self._server = serve(self._handler, "127.0.0.1", port, compression=None, max_size=None,
                             process_request=self._check_key)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _check_key(self, connection: ServerConnection, request: Any) -> Any:
        header = request.headers.get("Authorization")
        self.authorizations.append(header)
        if self.api_key is not None and header != f"Api-Key {self.api_key}":
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "bad api key\n")
        return None

    def _handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        packer = msgpack_numpy.Packer()
        ws.send(packer.pack(self.metadata))
        in_connection = 0
        while True:
            try:
                frame = ws.recv()
            except ConnectionClosed:
                return
            in_connection += 1
            self.queries += 1
            fault = self.fault or ""
            if fault.startswith("drop_after:") and in_connection == int(fault.split(":")[1]) and not self._dropped:
                self._dropped = True
                ws.socket.shutdown(socket.SHUT_RDWR)  # the server goes away mid-episode
                return
            if fault == "hang":
                self._stopping.wait(120)
                return
            try:
                if fault == "error":
                    raise RuntimeError("model exploded: out of memory")
                element = msgpack_numpy.unpackb(frame)
                check_element(element)
                started = time.monotonic()
                actions = np.asarray(self.policy.act(harness_observation(element)))
                reply: dict[str, Any] = {"actions": actions, "policy_timing": {"infer_ms": 1.5}}
                if fault == "missing_actions":
                    reply = {"action": actions}
                elif fault == "wrong_shape":
                    reply["actions"] = actions[:, :5]
                elif fault == "nan":
                    reply["actions"] = actions.copy()
                    reply["actions"][1, 2] = np.nan
                reply["server_timing"] = {"infer_ms": (time.monotonic() - started) * 1000}
                ws.send(packer.pack(reply))
            except Exception:  # noqa: BLE001 - openpi's behaviour: traceback as text, then close
                self.errors.append(traceback.format_exc())
                ws.send(traceback.format_exc())
                ws.close(code=1011, reason="Internal server error. Traceback included in previous frame.")
                return

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._thread.join(timeout=5)
