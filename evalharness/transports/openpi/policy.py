"""``openpi``: a policy served by openpi's websocket policy server (``scripts/serve_policy.py``).

Wire format (openpi's, exactly; see :mod:`evalharness.transports.openpi.wire`):

- The client opens ``ws://host:port`` (no compression, no frame size limit), with the
  header ``Authorization: Api-Key <key>`` when a key is set. The key is read from the
  environment variable named by ``policy.api_key_env`` (default ``OPENPI_API_KEY``); it
  is never part of the config, the identity, a record, a message or a log line.
- On connect the server sends one binary frame: its metadata (a msgpack map). It is
  recorded in this policy's identity, so it is part of every episode's key. openpi's
  metadata often does not name the checkpoint: set ``policy.label`` to it so that a resume
  against another checkpoint never reuses episodes. Metadata that changes on a reconnect
  (the server was restarted with another policy) ends the episode as ``policy_error``.
- Each query is one binary frame, what openpi's LIBERO example sends:
  ``observation/image`` (agentview) and ``observation/wrist_image`` (uint8 HxWx3, after the
  protocol's preprocessing: openpi's is rotate 180 then resize with padding to 224),
  ``observation/state`` (float64[8]: eef position, eef axis-angle, gripper qpos, computed
  in float64 from the raw robot state as the example does) and ``prompt`` (the
  instruction). The reply is one binary frame, a map whose ``actions`` (H, D) are executed
  as returned: openpi's server already unnormalizes, so the action pipeline stays ``none``.
  ``server_timing.infer_ms`` and ``policy_timing.infer_ms``, when present, are recorded.
- A *text* frame is openpi's way of reporting an exception (its traceback); the server
  closes the connection after it. The episode ends as ``policy_error`` with one line of it:
  the exception line of a traceback (its first line, "Traceback (most recent call
  last):", says nothing), else the first line.

Faults, every wait bounded:

- connecting waits at most ``open_timeout_s`` for the handshake, and as long again for
  the metadata frame;
- a reply waits at most ``infer_timeout_s``. A timeout is not retried (the server is up
  but stuck or overloaded, and a late reply on a reused connection would answer the wrong
  query): the connection is dropped and the episode ends as ``policy_unavailable``;
- a refused connection, a connection dropped mid-episode, or a 5xx handshake is retried:
  reconnect and resend the same observation after the backoff of ``policy.retries``
  (:class:`evalharness.transports.retry.RetrySettings`: ``backoff_s`` doubling up to
  ``max_backoff_s``), at most ``retries.max_retries`` times per query; then the episode
  ends as ``policy_unavailable``. A 4xx handshake (a wrong API key) is not retried. So one
  query waits at most ``infer_timeout_s + max_retries * (2 * open_timeout_s +
  max_backoff_s + infer_timeout_s)``, and a server that stays down costs ``max_retries``
  backoffs. The old flat keys ``reconnects`` / ``backoff_s`` / ``backoff_max_s`` are still
  accepted (they set ``retries.max_retries`` / ``backoff_s`` / ``max_backoff_s``);
- malformed replies: not msgpack or no ``actions`` -> ``policy_error``; ``actions`` of the
  wrong shape or with NaN -> ``invalid_action`` (checked by the rollout like any chunk).

``policy_unavailable`` episodes are rerun by ``runner.retry_errors=true`` once the server
is back. Keepalive pings are off: openpi's server runs inference on its event loop and
cannot answer pings during a long first (compiling) inference; the timeouts above bound
every wait instead.

The identity is computed in the parent process, which connects once for the metadata; a
server that cannot be reached then is one error line before any episode runs.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from envs.libero.geometry import quat_xyzw_to_axis_angle
from evalharness.errors import PolicyError, PolicyUnavailable, UserInputError
from evalharness.policies.base import Policy
from evalharness.transports.openpi.wire import WireError, pack, unpack
from evalharness.transports.retry import RetrySettings, accept_old_names
from evalharness.transports.websocket_address import WebsocketAddress, peer_json
from evalharness.config.validation import validate_settings

__all__ = ["OpenpiSettings", "OpenpiPolicy"]


class OpenpiSettings(WebsocketAddress, BaseModel):
    """``policy=openpi`` settings (``conf/policy/openpi.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1, description="server host, or a full ws:// / wss:// URI")
    port: int | None = Field(8000, ge=1, le=65535, description="null when host is a URI that has its port")
    api_key_env: str = Field("OPENPI_API_KEY", min_length=1, description="env var holding the API key (optional)")
    label: str | None = Field(None, description="names the served checkpoint in the identity")
    open_timeout_s: float = Field(10.0, gt=0, le=600)
    infer_timeout_s: float = Field(60.0, gt=0, le=3600)
    retries: RetrySettings = Field(default_factory=RetrySettings, description="reconnects after a drop (shared model)")

    #: openpi's flat keys before the shared retry model, still accepted.
    OLD_RETRY_NAMES: ClassVar[dict[str, str]] = {
        "reconnects": "max_retries", "backoff_s": "backoff_s", "backoff_max_s": "max_backoff_s"}

    @model_validator(mode="before")
    @classmethod
    def _old_retry_names(cls, values: Any) -> Any:
        return accept_old_names(values, cls.OLD_RETRY_NAMES)


def _error_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "(empty error frame)"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def _timing_ms(reply: dict, key: str) -> float | None:
    timing = reply.get(key)
    value = timing.get("infer_ms") if isinstance(timing, dict) else None
    if isinstance(value, (int, float, np.number)) and np.isfinite(value):
        return float(value)
    return None


def openpi_libero_state(robot: dict[str, np.ndarray]) -> np.ndarray:
    """openpi's LIBERO ``observation/state``: float64 eef pos + axis-angle + gripper qpos."""
    return np.concatenate(
        [
            np.asarray(robot["robot0_eef_pos"], dtype=np.float64),
            quat_xyzw_to_axis_angle(robot["robot0_eef_quat"]),
            np.asarray(robot["robot0_gripper_qpos"], dtype=np.float64),
        ]
    )


class OpenpiPolicy(Policy):
    """A client of openpi's websocket policy server; see the module docstring for the wire."""

    name = "openpi"
    cameras = ("base_0_rgb", "left_wrist_0_rgb")

    def __init__(self, **settings: Any) -> None:
        self.settings = validate_settings(OpenpiSettings, settings, "policy")
        self._ws: Any = None
        self._metadata: dict | None = None
        self._reset_stats()

    # -- connection -------------------------------------------------------------------------

    def _api_key(self) -> str | None:
        return os.environ.get(self.settings.api_key_env) or None

    def _scrub(self, text: str) -> str:
        key = self._api_key()
        return text.replace(key, "<redacted>") if key else text

    def _connect(self) -> None:
        """Open the connection and read the metadata frame (each bounded by open_timeout_s)."""
        from websockets.sync.client import connect

        key = self._api_key()
        ws = connect(
            self.settings.uri,
            compression=None,
            max_size=None,
            additional_headers={"Authorization": f"Api-Key {key}"} if key else None,
            open_timeout=self.settings.open_timeout_s,
            ping_interval=None,
            close_timeout=1,
        )
        try:
            frame = ws.recv(timeout=self.settings.open_timeout_s)
            if isinstance(frame, str):
                raise PolicyError(f"openpi server error on connect: {self._scrub(_error_line(frame))}")
            try:
                metadata = peer_json(unpack(frame))
            except WireError as exc:
                raise PolicyError(f"openpi server's metadata frame is not openpi msgpack: {exc}") from None
            if not isinstance(metadata, dict):
                raise PolicyError(f"openpi server's metadata is a {type(metadata).__name__}, not a map")
        except BaseException:
            ws.close()
            raise
        if self._metadata is not None and metadata != self._metadata:
            ws.close()
            raise PolicyError("openpi server's metadata changed on reconnect: it now serves another policy")
        self._metadata, self._ws = metadata, ws

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - it is broken already
                pass

    def _try_connect(self) -> str | None:
        """Connect; None on success, else why it failed (transient: worth a retry).

        A 4xx handshake (wrong API key, wrong path) is not transient and raises.
        """
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

        try:
            self._connect()
            return None
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status < 500:
                hint = f" (check {self.settings.api_key_env})" if status in (401, 403) else ""
                raise PolicyUnavailable(
                    f"openpi server {self.settings.shown_uri} refused the connection: HTTP {status}{hint}"
                ) from None
            return f"HTTP {status}"
        except (ConnectionClosed, InvalidHandshake, OSError, EOFError) as exc:  # OSError includes timeouts
            return self._scrub(f"{type(exc).__name__}: {exc}".splitlines()[0])

    def _backoff(self, failures: int) -> None:
        self.settings.retries.sleep(failures)

    def _exchange(self, payload: bytes) -> bytes | str:
        """Send one query and return the reply frame, reconnecting after a disconnect."""
        from websockets.exceptions import ConnectionClosed

        s = self.settings
        failures = 0
        while True:
            reason = self._try_connect() if self._ws is None else None
            if reason is None:
                try:
                    self._ws.send(payload)
                    return self._ws.recv(timeout=s.infer_timeout_s)
                except TimeoutError:
                    self._drop()  # a late reply must not answer the next query
                    raise PolicyUnavailable(f"openpi server {s.shown_uri} did not answer within {s.infer_timeout_s:g} s") from None
                except (ConnectionClosed, OSError) as exc:
                    self._drop()
                    reason = self._scrub(f"{type(exc).__name__}: {exc}".splitlines()[0])
            if failures >= s.retries.max_retries:
                raise PolicyUnavailable(f"openpi server {s.shown_uri} unreachable after {failures} reconnect(s): {reason}")
            failures += 1
            self._reconnects += 1
            self._backoff(failures)

    # -- Policy -----------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        if self._metadata is None:
            self._learn_metadata()
        from evalharness.config.redaction import redact

        return {"name": self.name, "uri": self.settings.shown_uri, "label": self.settings.label,
                "server_metadata": redact(self._metadata)}

    def _learn_metadata(self) -> None:
        """Connect once (with the retries of a query) for the metadata; one error line if impossible."""
        s = self.settings
        try:
            for failures in range(s.retries.max_retries + 1):
                if failures:
                    self._backoff(failures)
                reason = self._try_connect()
                if reason is None:
                    return
        except (PolicyUnavailable, PolicyError) as exc:
            reason = str(exc)
        raise UserInputError(
            f"policy=openpi: cannot use the policy server at {s.shown_uri}: {reason} (start it with openpi's "
            "scripts/serve_policy.py, or set policy.host / policy.port)"
        )

    def _reset_stats(self) -> None:
        self._rtt_ms: list[float] = []
        self._server_ms: list[float] = []
        self._policy_ms: list[float] = []
        self._reconnects = 0

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._reset_stats()

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        if "state" not in observation:
            raise PolicyError("policy=openpi sends observation/state, but this protocol gives the policy no state "
                              "(protocol.state=false); use protocol=openpi")
        images = observation["images"]
        element = {
            "observation/image": np.ascontiguousarray(images["base_0_rgb"]),
            "observation/wrist_image": np.ascontiguousarray(images["left_wrist_0_rgb"]),
            "observation/state": openpi_libero_state(observation["robot"]),
            "prompt": str(observation["instruction"]),
        }
        start = time.perf_counter()
        frame = self._exchange(pack(element))
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        if isinstance(frame, str):
            self._drop()  # openpi closes the connection after an error frame
            raise PolicyError(f"openpi server error: {self._scrub(_error_line(frame))}")
        try:
            reply = unpack(frame)
        except WireError as exc:
            raise PolicyError(f"openpi server reply is not openpi msgpack: {exc}") from None
        if not isinstance(reply, dict) or "actions" not in reply:
            keys = sorted(map(str, reply)) if isinstance(reply, dict) else type(reply).__name__
            raise PolicyError(f"openpi server reply has no 'actions' (got {keys})")
        self._rtt_ms.append(elapsed_ms)
        for key, values in (("server_timing", self._server_ms), ("policy_timing", self._policy_ms)):
            value = _timing_ms(reply, key)
            if value is not None:
                values.append(value)
        return reply["actions"]

    def episode_stats(self) -> dict[str, float | int]:
        stats: dict[str, float | int] = {"queries": len(self._rtt_ms), "reconnects": self._reconnects}
        if self._rtt_ms:
            p50, p95 = np.percentile(self._rtt_ms, [50, 95])
            stats.update(rtt_p50_ms=float(p50), rtt_p95_ms=float(p95))
        if self._server_ms:
            stats["server_infer_p50_ms"] = float(np.percentile(self._server_ms, 50))
        if self._policy_ms:
            stats["policy_infer_p50_ms"] = float(np.percentile(self._policy_ms, 50))
        return stats

    def fork(self) -> "OpenpiPolicy":
        """Another client of the same server with its own connection (a socket cannot be shared)."""
        return OpenpiPolicy(**self.settings.model_dump())

    def close(self) -> None:
        self._drop()
