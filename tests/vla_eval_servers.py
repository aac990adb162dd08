"""vla-eval's own model-server code on 127.0.0.1, for the tests of ``policy=vla_eval``.

:class:`DeterministicServer` is a real ``vla_eval.model_servers.predict.PredictModelServer``
(so vla-eval's framing, HELLO, chunk buffer, batching and error frames are its own code),
whose ``predict`` is a fixed function of the observation it receives: the images, the
state and the instruction all move the actions, so an observation that travels wrongly
changes the action fingerprint. :class:`ServedInThread` runs it with vla-eval's
``serve_async`` on a free port in a background thread.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from typing import Any

import numpy as np
import websockets
from anyio.from_thread import start_blocking_portal

from vla_eval.model_servers.predict import PredictModelServer
from vla_eval.model_servers.serve import serve_async
from vla_eval.specs import GRIPPER_CLOSE_POS, IMAGE_RGB, LANGUAGE, POSITION_DELTA, ROTATION_AA, STATE_EEF_POS_AA_GRIP


def deterministic_actions(obs: dict[str, Any], step: int, rows: int) -> np.ndarray:
    """(rows, 7) actions from the observation alone (and the step of the episode)."""
    image = np.asarray(obs["images"]["agentview"], dtype=np.float64)
    level = image.mean() / 255.0
    upper = image[: image.shape[0] // 2].mean() / 255.0
    wrist = obs["images"].get("wrist")
    wrist_level = 0.0 if wrist is None else np.asarray(wrist, dtype=np.float64).mean() / 255.0
    state = np.asarray(obs.get("states", np.zeros(8)), dtype=np.float64)
    words = int(hashlib.sha256(str(obs.get("task_description", "")).encode()).hexdigest()[:6], 16) / 0xFFFFFF
    out = np.empty((rows, 7), dtype=np.float64)
    for i in range(rows):
        phase = step + i
        out[i, 0] = 0.5 * np.sin(3.0 * level + 0.3 * phase + words)
        out[i, 1] = 0.5 * np.cos(5.0 * upper + 0.2 * phase)
        out[i, 2] = 0.4 * np.sin(2.0 * state[2] + wrist_level + 0.1 * phase)
        out[i, 3:6] = 0.1 * np.tanh(state[3:6])
        out[i, 6] = np.sin(0.4 * phase + level * 7.0)  # sign flips: the gripper opens and closes
    return out


class DeterministicServer(PredictModelServer):
    """A vla-eval model server with a deterministic ``predict``, and switches for faults.

    - ``fail``: ``(episode_idx, step)`` pairs where ``predict`` raises (an ``error`` frame);
    - ``drop``: ``(episode_idx, step)`` pairs where the connection is closed, once each;
    - ``action_spec`` / ``observation_params``: what the HELLO declares.
    """

    def __init__(self, *, fail: tuple[tuple[int, int], ...] = (), drop: tuple[tuple[int, int], ...] = (),
                 action_spec: dict | None = None, observation_params: dict | None = None,
                 chunk_rows: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fail, self.drop = set(fail), set(drop)
        self._action_spec = action_spec if action_spec is not None else {
            "position": POSITION_DELTA, "rotation": ROTATION_AA, "gripper": GRIPPER_CLOSE_POS}
        self._params = observation_params if observation_params is not None else {
            "send_wrist_image": True, "send_state": True}
        self.chunk_rows = chunk_rows if chunk_rows is not None else (self.chunk_size or 1)
        self.tasks: dict[str, dict[str, Any]] = {}
        self.batch_sizes: Counter[int] = Counter()
        self.episode_ends: list[dict[str, Any]] = []
        self.predictions = 0
        self._lock = threading.Lock()

    def get_observation_params(self) -> dict[str, Any]:
        return dict(self._params)

    def get_action_spec(self):
        return self._action_spec

    def get_observation_spec(self):
        spec = {"agentview": IMAGE_RGB, "language": LANGUAGE}
        if self._params.get("send_wrist_image"):
            spec["wrist"] = IMAGE_RGB
        if self._params.get("send_state"):
            spec["state"] = STATE_EEF_POS_AA_GRIP
        return spec

    async def on_episode_start(self, config: dict[str, Any], ctx) -> None:
        self.tasks[ctx.session_id] = dict(config.get("task") or {})
        await super().on_episode_start(config, ctx)

    async def on_episode_end(self, result: dict[str, Any], ctx) -> None:
        if result:
            self.episode_ends.append(result)
        await super().on_episode_end(result, ctx)

    def _where(self, ctx) -> tuple[int, int]:
        return int(self.tasks.get(ctx.session_id, {}).get("episode_idx", -1)), ctx.step

    async def on_observation(self, obs: dict[str, Any], ctx) -> None:
        where = self._where(ctx)
        if where in self.drop:
            self.drop.discard(where)
            raise websockets.exceptions.ConnectionClosedError(None, None)  # vla-eval's handler closes
        await super().on_observation(obs, ctx)

    def predict(self, obs: dict[str, Any], ctx) -> dict[str, Any]:
        where = self._where(ctx)
        if where in self.fail:
            raise ValueError(f"deterministic failure at episode {where[0]} step {where[1]}")
        with self._lock:
            self.predictions += 1
        actions = deterministic_actions(obs, ctx.step, self.chunk_rows)
        return {"actions": actions if self.chunk_rows > 1 else actions[0]}

    def predict_batch(self, obs_batch: list[dict[str, Any]], ctx_batch: list) -> list[dict[str, Any]]:
        with self._lock:
            self.batch_sizes[len(obs_batch)] += 1
        return [self.predict(obs, ctx) for obs, ctx in zip(obs_batch, ctx_batch)]


class ServedInThread:
    """vla-eval's ``serve_async(model_server, "127.0.0.1", 0)`` in a background event loop."""

    def __init__(self, model_server: PredictModelServer) -> None:
        self.model_server = model_server
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._future, self.port = self._portal.start_task(serve_async, model_server, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._future.cancel()
        try:
            self._portal_cm.__exit__(None, None, None)
        except Exception:  # noqa: BLE001 - the cancelled serve task reports its cancellation
            pass

    def __enter__(self) -> "ServedInThread":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
