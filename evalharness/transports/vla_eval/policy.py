"""``vla_eval``: a policy served by one of vla-eval's model servers (protocol v1).

vla-eval (allenai/vla-evaluation-harness, PyPI ``vla-eval``) serves about 25 models
(OpenVLA, OpenVLA-OFT, GR00T, CogACT, starVLA, X-VLA, pi0 / pi0.5, every LeRobot
``PreTrainedPolicy``) behind one websocket protocol. This client speaks it with
``websockets`` and ``msgpack`` (:mod:`evalharness.transports.vla_eval.wire`):

- **Handshake.** Connect to ``ws://host:port`` (no compression, no size limit, no keepalive
  pings: a server can hold its GIL for seconds in a first inference), send ``hello``
  (``harness_version``, ``protocol_version`` 1), read the server's ``hello``: its class
  (``model_server``), ``observation_params``, ``action_spec``, ``observation_spec``. All
  of it enters this policy's identity, so every episode key; ``policy.label`` names the
  checkpoint, which a HELLO does not. A server whose HELLO changes on a reconnect serves
  another model: the episode ends as ``policy_error``.
- **Before the first episode** the parent computes the identity, which connects, and
  :func:`~evalharness.transports.vla_eval.specs.check_server_specs` compares the HELLO with
  this run (protocol cameras and state, the action pipeline, settle steps, seed): a
  mismatch is one error line and no episode runs.
- **An episode**: ``episode_start`` (``{"task": {"name", "suite", "episode_idx",
  "seed"}}``), then one ``observation`` (vla-eval's LIBERO payload,
  :mod:`~evalharness.transports.vla_eval.libero`) -> one ``action`` (its ``seq`` echoes the
  observation's; ``actions`` is one 7-D action, or a chunk), then ``episode_end``
  (``{"metrics": {"success": bool}, "steps": n}``). The wrist image is rendered and sent
  only when ``send_wrist_image`` is set (by ``policy.params`` or the server's
  ``observation_params``; the config wins, as in vla-eval).
- **Chunks.** vla-eval's LIBERO loop sends an observation at every step and executes the
  one action it gets back; a server with ``chunk_size`` keeps the chunk and answers from
  it. So with ``protocol=vla_eval`` (``replan_steps: 1``) a reply of several rows is an
  ``invalid_action`` (vla-eval's own LIBERO would refuse it too): serve with
  ``chunk_size``. With a protocol that replans later, a multi-row reply is a chunk.
  Whether the server would skip an observation cannot be known from its HELLO (the
  buffer is server-side and undeclared), so every step is observed.
- **Errors.** An ``error`` frame (the server's ``predict`` raised) ends the episode as
  ``policy_error`` with its message; the connection stays open, as the server keeps it.

Timeouts, reconnects and backoff (the one place they are written down):

- connecting waits at most ``open_timeout_s`` for the websocket handshake and as long
  again for the server's ``hello``;
- a reply waits at most ``infer_timeout_s``. A timeout is not retried (the server is up
  but stuck, and a late reply would answer the next observation): the connection is
  dropped and the episode ends as ``policy_unavailable``;
- a refused connection, or one dropped *before the server answered any observation of
  the episode*, is retried: reconnect, ``hello`` again, resend ``episode_start`` and the
  observation, after the backoff of ``policy.retries``
  (:class:`~evalharness.transports.retry.RetrySettings`, shared with the other
  transports: ``backoff_s`` doubling up to ``max_backoff_s``), at most
  ``retries.max_retries`` times; then the episode ends as ``policy_unavailable``;
- a connection dropped *after* the server answered an observation of the episode is not
  resumed: the server's state for it (its chunk buffer, its step counter) went with the
  connection, and a new session would not continue the same episode. The episode ends as
  ``policy_unavailable`` at once; the next episode reconnects (with the same retries), and
  ``runner.retry_errors=true`` reruns the lost one;
- the parent's identity connects with the same retries; a server it cannot reach is one
  error line before any episode.

A reply that is not a protocol v1 frame, of another type, or with the wrong ``seq`` is
``policy_error``; ``actions`` of the wrong shape or with NaN are ``invalid_action``.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evalharness.config.validation import validate_settings
from evalharness.errors import InvalidActionError, PolicyError, PolicyUnavailable, UserInputError
from evalharness.policies.base import Policy
from evalharness.transports.retry import RetrySettings
from evalharness.transports.websocket_address import WebsocketAddress, peer_json
from evalharness.transports.vla_eval.libero import binarize_gripper, observation_payload
from evalharness.transports.vla_eval.specs import check_server_specs, merge_params
from evalharness.transports.vla_eval.wire import PROTOCOL_VERSION, Frame, FrameError, pack, unpack

__all__ = ["VlaEvalSettings", "VlaEvalPolicy", "RunFacts"]

#: HELLO fields that describe the server (its timestamp-free part); they enter the identity.
HELLO_FIELDS = ("model_server", "harness_version", "protocol_version", "capabilities", "observation_params",
                "action_spec", "observation_spec")


class RunFacts(BaseModel):
    """What the run sends and executes, for the spec check (``conf/policy/vla_eval.yaml`` fills it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: dict[str, Any] | None = None
    suite: str | None = None
    max_steps: int | None = None
    pipeline: dict[str, str | None] = Field(default_factory=dict)

    def facts(self) -> dict[str, Any]:
        protocol = self.protocol or {}
        max_steps = self.max_steps
        if max_steps is None and self.suite and isinstance(protocol.get("max_steps"), dict):
            max_steps = protocol["max_steps"].get(self.suite)
        return {"cameras": protocol.get("cameras", ["base_0_rgb", "left_wrist_0_rgb"]),
                "state": protocol.get("state", True), "settle_steps": protocol.get("settle_steps"),
                "seed": protocol.get("seed"), "max_steps": max_steps,
                "replan_steps": protocol.get("replan_steps"),
                "pipeline": {k: v for k, v in self.pipeline.items() if v is not None}}


class VlaEvalSettings(WebsocketAddress, BaseModel):
    """``policy=vla_eval`` settings (``conf/policy/vla_eval.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1, description="server host, or a full ws:// / wss:// URI")
    port: int | None = Field(8000, ge=1, le=65535, description="null when host is a URI that has its port")
    label: str | None = Field(None, description="names the served checkpoint in the identity")
    params: dict[str, Any] = Field(default_factory=dict, description="LIBERO benchmark params; win over the server's")
    image_format: Literal["png", "jpeg", "raw"] = Field("png", description="how images travel (vla-eval's default png)")
    binarize_gripper: bool = Field(True, description="gripper -1 if negative else +1, as vla-eval's LIBERO executes")
    open_timeout_s: float = Field(10.0, gt=0, le=600)
    infer_timeout_s: float = Field(60.0, gt=0, le=3600)
    retries: RetrySettings = Field(default_factory=RetrySettings)
    run: RunFacts = Field(default_factory=RunFacts)


def _one_line(text: Any) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


class VlaEvalPolicy(Policy):
    """A client of a vla-eval model server; see the module docstring for the protocol."""

    name = "vla_eval"

    def __init__(self, **settings: Any) -> None:
        self.settings = validate_settings(VlaEvalSettings, settings, "policy")
        self._ws: Any = None
        self._hello: dict[str, Any] | None = None
        self._params: dict[str, Any] = {}
        self._seq = 0
        self._task: dict[str, Any] | None = None  # the open episode's task (None: none open)
        self._started = False  # episode_start sent on the current connection
        self._answered = 0  # observations of this episode the server answered
        self.cameras: tuple[str, ...] | None = None
        self._reset_stats()

    # -- connection -------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _send(self, kind: str, payload: dict[str, Any]) -> int:
        seq = self._next_seq()
        self._ws.send(pack(Frame(kind, payload, seq), self.settings.image_format))
        return seq

    def _connect(self) -> None:
        """Open the connection and exchange HELLOs (each bounded by open_timeout_s)."""
        from websockets.sync.client import connect

        from evalharness import __version__

        ws = connect(self.settings.uri, compression=None, max_size=None, open_timeout=self.settings.open_timeout_s,
                     ping_interval=None, close_timeout=1)
        try:
            self._ws = ws
            seq = self._send("hello", {"harness_version": f"evalharness {__version__}",
                                       "protocol_version": PROTOCOL_VERSION, "benchmark": "evalharness.libero"})
            try:
                reply = unpack(ws.recv(timeout=self.settings.open_timeout_s))
            except FrameError as exc:
                raise PolicyError(f"vla-eval server's hello is not a protocol v1 frame: {exc}") from None
            if reply.type != "hello":
                raise PolicyError(f"vla-eval server answered hello with {reply.type!r}: {_one_line(reply.payload)}")
            if reply.seq != seq:
                raise PolicyError(f"vla-eval server's hello has seq {reply.seq}, not {seq}")
            hello = {key: peer_json(reply.payload[key]) for key in HELLO_FIELDS if key in reply.payload}
            if hello.get("protocol_version") != PROTOCOL_VERSION:
                raise UserInputError(f"policy=vla_eval: the server at {self.settings.shown_uri} speaks protocol "
                                     f"{hello.get('protocol_version')!r}; allowed: {PROTOCOL_VERSION}")
        except BaseException:
            self._ws = None
            ws.close()
            raise
        if self._hello is not None and hello != self._hello:
            self._drop()
            raise PolicyError("vla-eval server's hello changed on reconnect: it now serves another model")
        if self._hello is None:
            try:
                self._adopt(hello)
            except BaseException:
                self._drop()
                raise
        self._started = False

    def _adopt(self, hello: dict[str, Any]) -> None:
        """Take the first HELLO: merge params, check the specs (one line if they do not fit), pick cameras."""
        params = merge_params(self.settings.params, hello.get("observation_params") or {})
        server = f"the server {hello.get('model_server', '?')} at {self.settings.shown_uri}"
        check_server_specs(server, hello, params, self.settings.run.facts())
        self._hello, self._params = hello, params
        self.cameras = ("base_0_rgb", "left_wrist_0_rgb") if params.get("send_wrist_image") else ("base_0_rgb",)

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        self._started = False
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - it is broken already
                pass

    def _try_connect(self) -> str | None:
        """Connect (and reopen the episode); None on success, else why (transient: worth a retry)."""
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

        try:
            if self._ws is None:
                self._connect()
            if self._task is not None and not self._started:
                self._send("episode_start", {"task": self._task})
                self._started = True
            return None
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status < 500:
                raise PolicyUnavailable(f"vla-eval server {self.settings.shown_uri} refused the connection: "
                                        f"HTTP {status}") from None
            self._drop()
            return f"HTTP {status}"
        except (ConnectionClosed, InvalidHandshake, OSError, EOFError) as exc:  # OSError includes timeouts
            self._drop()
            return f"{type(exc).__name__}: {exc}".splitlines()[0]

    def _connect_with_retries(self) -> None:
        s = self.settings
        for failures in range(s.retries.max_retries + 1):
            if failures:
                self._reconnects += 1
                s.retries.sleep(failures)
            reason = self._try_connect()
            if reason is None:
                return
        raise PolicyUnavailable(f"vla-eval server {s.shown_uri} unreachable after {s.retries.max_retries} "
                                f"reconnect(s): {reason}")

    def _exchange(self, payload: dict[str, Any]) -> Frame:
        """Send one observation and return the reply, reconnecting while the episode has no answer yet."""
        from websockets.exceptions import ConnectionClosed

        s = self.settings
        failures = 0
        while True:
            if self._ws is None and self._answered:
                raise PolicyUnavailable(f"vla-eval server {s.shown_uri}: connection lost after "
                                        f"{self._answered} observation(s) of the episode")
            reason = self._try_connect()
            if reason is None:
                try:
                    seq = self._send("observation", payload)
                    data = self._ws.recv(timeout=s.infer_timeout_s)
                except TimeoutError:
                    self._drop()
                    raise PolicyUnavailable(f"vla-eval server {s.shown_uri} did not answer within "
                                            f"{s.infer_timeout_s:g} s") from None
                except (ConnectionClosed, OSError) as exc:
                    self._drop()
                    if self._answered:
                        raise PolicyUnavailable(f"vla-eval server {s.shown_uri}: connection lost after "
                                                f"{self._answered} observation(s) of the episode "
                                                f"({type(exc).__name__})") from None
                    reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                else:
                    try:
                        reply = unpack(data)
                    except FrameError as exc:
                        raise PolicyError(f"vla-eval server reply is not a protocol v1 frame: {exc}") from None
                    if reply.seq != seq:
                        self._drop()  # a stale reply: the stream is out of step
                        raise PolicyError(f"vla-eval server replied to seq {reply.seq}, not {seq}")
                    return reply
            if failures >= s.retries.max_retries:
                raise PolicyUnavailable(f"vla-eval server {s.shown_uri} unreachable after {failures} "
                                        f"reconnect(s): {reason}")
            failures += 1
            self._reconnects += 1
            s.retries.sleep(failures)

    # -- Policy -----------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        if self._hello is None:
            try:
                self._connect_with_retries()
            except (PolicyUnavailable, PolicyError) as exc:
                raise UserInputError(
                    f"policy=vla_eval: cannot use the model server at {self.settings.shown_uri}: {exc} (start it "
                    "with vla-eval's `vla-eval serve` or a model server script, or set policy.host / policy.port)"
                ) from None
        s = self.settings
        return {"name": self.name, "uri": s.shown_uri, "label": s.label, "server": self._hello,
                "params": dict(sorted(self._params.items())), "image_format": s.image_format,
                "binarize_gripper": s.binarize_gripper}

    def _reset_stats(self) -> None:
        self._rtt_ms: list[float] = []
        self._reconnects = 0

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._reset_stats()
        if self._task is not None:
            self.episode_end(False)  # the last episode did not report its end
        self._task = {"name": str(instruction), "suite": self.settings.run.suite, "episode_idx": init_state,
                      "seed": int(seed)}
        self._task = {k: v for k, v in self._task.items() if v is not None}
        self._started = False
        self._answered = 0
        if self._hello is None or self._ws is None:
            self._connect_with_retries()  # the cameras to render depend on the server's HELLO
        else:
            self._try_connect()

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        p = self._params
        payload = observation_payload(observation, send_wrist_image=bool(p.get("send_wrist_image")),
                                      send_state=bool(p.get("send_state")),
                                      quat_no_antipodal=bool(p.get("quat_no_antipodal")))
        start = time.perf_counter()
        reply = self._exchange(payload)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        if reply.type == "error":
            raise PolicyError(f"vla-eval server error: {_one_line(reply.payload.get('error', reply.payload))}")
        if reply.type != "action":
            raise PolicyError(f"vla-eval server answered an observation with {reply.type!r}")
        self._answered += 1
        self._rtt_ms.append(elapsed_ms)
        actions = reply.payload.get("actions", reply.payload.get("action"))
        if actions is None:
            raise PolicyError(f"vla-eval server's action has no 'actions' (got {sorted(map(str, reply.payload))})")
        chunk = np.asarray(actions, dtype=np.float64)
        if chunk.ndim == 1:
            chunk = chunk[None, :]
        replan = self.settings.run.facts().get("replan_steps")
        if chunk.ndim == 2 and chunk.shape[0] > 1 and replan == 1:
            raise InvalidActionError(
                f"vla-eval server answered one observation with {chunk.shape[0]} actions, but this protocol "
                "executes one action per observation (as vla-eval's LIBERO loop does): serve with chunk_size so "
                "the server keeps the chunk, or use a protocol with replan_steps > 1")
        if self.settings.binarize_gripper and chunk.ndim == 2 and chunk.shape[1] >= 1:
            chunk = binarize_gripper(chunk)
        return chunk

    def episode_end(self, success: bool) -> None:
        """Tell the server the episode is over (``episode_end``), if it still holds it."""
        task, self._task = self._task, None
        if task is None or self._ws is None or not self._started:
            return
        try:
            self._send("episode_end", {"metrics": {"success": bool(success)}, "steps": self._answered})
        except Exception:  # noqa: BLE001 - the episode's verdict is already known
            self._drop()
        self._started = False

    def episode_stats(self) -> dict[str, float | int]:
        stats: dict[str, float | int] = {"queries": len(self._rtt_ms), "reconnects": self._reconnects}
        if self._rtt_ms:
            p50, p95 = np.percentile(self._rtt_ms, [50, 95])
            stats.update(rtt_p50_ms=float(p50), rtt_p95_ms=float(p95))
        return stats

    def fork(self) -> "VlaEvalPolicy":
        """Another client of the same server with its own connection (one session per episode stream)."""
        return VlaEvalPolicy(**self.settings.model_dump())

    def close(self) -> None:
        if self._task is not None:
            self.episode_end(False)
        self._drop()
