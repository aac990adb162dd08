"""``evalharness serve --protocol openpi|vla_eval``: the served policy, queried by the real clients.

- openpi's own ``openpi_client.WebsocketClientPolicy`` (installed for the tests) gets the
  metadata frame, then the same chunks as the policy run in-process, also with two
  clients at once (one fork per connection, batched); an exception is openpi's text
  frame; ``/healthz`` answers;
- vla-eval's own ``vla_eval.connection.Connection`` gets a HELLO with LIBERO's specs, then
  one action per observation, the chunk kept per session: the in-process policy's actions
  in order; an error frame leaves the connection open; ``/health`` and ``/config`` answer;
- ``policy=vla_eval`` against ``serve --protocol vla_eval`` in real LIBERO episodes gives
  the in-process run's action fingerprints.

The servers run as ``python -m evalharness serve`` subprocesses on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import httpx
import numpy as np
import pytest

from evalharness.policies.build import build_policy
from evalharness.transports.mint.serve_settings import READY

PROMPT = "put the black bowl on the plate"
NONE_PIPELINE = {"decoder": {"name": "none"}, "normalize": {"name": "none"}, "convert": {"name": "none"}}


class Served:
    def __init__(self, *args: str) -> None:
        env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        self.process = subprocess.Popen([sys.executable, "-m", "evalharness", "serve", *args, "serve.port=0"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.process.stdout.readline()
        if not line.startswith(READY):
            self.process.kill()
            raise AssertionError(f"no ready line: {line!r} {self.process.stderr.read()[-2000:]}")
        self.url = line[len(READY):].split()[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _inputs(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
             rng.normal(size=8)) for _ in range(n)]


def _harness_obs(base: np.ndarray, wrist: np.ndarray, state: np.ndarray) -> dict:
    """The observation the rollout gives a policy with these images and state (in-process)."""
    return {"images": {"base_0_rgb": base, "left_wrist_0_rgb": wrist, "right_wrist_0_rgb": np.zeros_like(base)},
            "image_mask": {"base_0_rgb": True, "left_wrist_0_rgb": True, "right_wrist_0_rgb": False},
            "instruction": PROMPT, "state": state.astype(np.float32),
            "robot": {"robot0_eef_pos": state[:3], "robot0_eef_quat": np.array([0.0, 0.0, 0.0, 1.0]),
                      "robot0_gripper_qpos": state[6:8]}}


def _in_process(policy_cfg: dict, inputs, seed: int = 0) -> list[np.ndarray]:
    policy = build_policy(policy_cfg, NONE_PIPELINE)
    try:
        policy.reset(PROMPT, seed=seed)
        return [np.asarray(policy.act(_harness_obs(*x)), dtype=np.float64) for x in inputs]
    finally:
        policy.close()


@pytest.fixture(scope="module")
def checkpoint_policy(reference_checkpoints) -> tuple[list[str], dict]:
    path = reference_checkpoints["chunk"]
    return ([f"policy=checkpoint", f"policy.path={path}", "policy.device=cpu"],
            {"_target_": "evalharness.policies.checkpoint.CheckpointPolicy", "path": str(path), "device": "cpu"})


def test_openpi_client_gets_the_in_process_chunks(checkpoint_policy) -> None:
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    overrides, policy_cfg = checkpoint_policy
    inputs = _inputs(3)
    expected = _in_process(policy_cfg, inputs)
    served = Served("--protocol", "openpi", *overrides, "serve.max_batch=4", "serve.max_wait_ms=50")
    try:
        def query(results: list) -> None:
            client = WebsocketClientPolicy(host="127.0.0.1", port=served.port)
            assert client.get_server_metadata()["server"] == "evalharness"
            for base, wrist, state in inputs:
                reply = client.infer({"observation/image": base, "observation/wrist_image": wrist,
                                      "observation/state": state, "prompt": PROMPT})
                results.append(reply["actions"])

        alone: list = []
        query(alone)
        for got, want in zip(alone, expected, strict=True):
            assert got.dtype == np.float64 and got.tobytes() == want.tobytes()
        # two clients at once: each its own fork, answered as in-process (batched in one forward
        # pass, so equal up to the last bits of the batched float kernels; serve.max_batch=1 is exact)
        together: list[list] = [[], []]
        threads = [threading.Thread(target=query, args=(r,)) for r in together]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for results in together:
            assert len(results) == len(expected)
            for got, want in zip(results, expected):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        # openpi's error: a text frame (the traceback), then the connection closes
        client = WebsocketClientPolicy(host="127.0.0.1", port=served.port)
        with pytest.raises(RuntimeError, match="(?s)Error in inference server.*lacks \\['prompt'\\]"):
            client.infer({"observation/image": inputs[0][0]})
        assert httpx.get(f"http://127.0.0.1:{served.port}/healthz").status_code == 200
    finally:
        served.stop()


RANDOM = (["policy=random", "policy.horizon=4", "protocol=openpi"],
          {"_target_": "evalharness.policies.baselines.RandomPolicy", "horizon": 4, "scale": 1.0})


def test_vla_evals_own_client_gets_the_in_process_actions_one_per_observation() -> None:
    from vla_eval.connection import Connection

    overrides, policy_cfg = RANDOM
    inputs = _inputs(6, seed=1)
    chunks = _in_process(policy_cfg, inputs, seed=5)
    # protocol=openpi replans after 5; the chunk has 4: the rollout executes 4 and queries again
    expected = [*chunks[0][:4], *chunks[1][:2]]  # the second query is the policy's second act
    served = Served("--protocol", "vla_eval", *overrides)
    try:
        async def session() -> tuple[dict, list, str]:
            conn = Connection(served.url, timeout=30, max_retries=2)
            await conn.connect()
            await conn.start_episode({"task": {"name": PROMPT, "seed": 5}})
            actions = []
            for base, wrist, state in inputs:
                obs = {"images": {"agentview": base, "wrist": wrist}, "task_description": PROMPT, "states": state}
                actions.append((await conn.act(obs))["actions"])
            await conn.end_episode({"metrics": {"success": False}})
            await conn.start_episode({"task": {"name": PROMPT, "seed": 5}})  # a new episode, an empty buffer
            try:
                await conn.act({"task_description": PROMPT})  # no images: the server's error frame
                error = ""
            except RuntimeError as exc:
                error = str(exc)
            base, wrist, state = inputs[0]  # the connection is still open
            again = (await conn.act({"images": {"agentview": base, "wrist": wrist}, "task_description": PROMPT,
                                     "states": state}))["actions"]
            actions.append(again)
            info = conn.server_info
            await conn.close()
            return info, actions, error

        info, actions, error = anyio.run(session)
        assert info["model_server"] == "evalharness:random" and info["protocol_version"] == 1
        assert info["action_spec"]["gripper"]["format"] == "binary_close_positive"
        assert info["observation_params"] == {"send_wrist_image": True, "send_state": True, "quat_no_antipodal": True}
        assert [np.asarray(a).tobytes() for a in actions[:6]] == [np.asarray(e).tobytes() for e in expected]
        assert "observation_failed" in error and "images.agentview" in error
        assert np.asarray(actions[6]).tobytes() == np.asarray(chunks[0][0]).tobytes()  # reset with the same seed
        assert httpx.get(f"http://127.0.0.1:{served.port}/health").json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{served.port}/config").json()["config"]["max_batch_size"] == 8
    finally:
        served.stop()


@pytest.mark.sim
@pytest.mark.usefixtures("assets_installed")
def test_policy_vla_eval_against_serve_vla_eval_equals_the_in_process_run(tmp_path) -> None:
    episodes = ["suite=libero_spatial", "suite.tasks=[0]", "suite.episodes_per_task=2", "suite.max_steps=12",
                "camera_size=64", "protocol=openpi", "video=none", "runner.workers=0"]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}

    def run(*args: str) -> dict:
        out = tmp_path / args[-1].split("=", 1)[1]
        result = subprocess.run([sys.executable, "-m", "evalharness", *episodes, *args], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
        return {r["init_state"]: (r["success"], r["steps"], r["error_kind"], r["action_fingerprint"]) for r in records}

    inprocess = run("policy=random", "policy.horizon=4", "output_dir=inprocess")
    served = Served("--protocol", "vla_eval", "policy=random", "policy.horizon=4", "protocol=openpi")
    try:
        remote = run("policy=vla_eval", f"policy.port={served.port}", "policy.binarize_gripper=false",
                     "output_dir=remote")
    finally:
        served.stop()
    assert remote == inprocess and all(v[2] is None for v in remote.values())
