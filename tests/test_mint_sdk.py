"""The real MinT SDK (``mindlab-toolkit==0.1.0`` on ``tinker==0.15.0``) against ``evalharness serve``.

The SDK pins packages this venv must not take (transformers, tokenizers and
huggingface_hub at older versions), so it lives in a side venv, ``.venv-sdk``, that
``make install-test`` creates; it runs in a subprocess (``tests/sdk_driver.py``) and talks
real HTTP to a real server on 127.0.0.1 with ``serve.auth=env``. ``ServiceClient`` ->
``create_sampling_client`` -> ``sample`` must return the served policy's own tokens.
``EVALHARNESS_SDK_PYTHON`` points at another interpreter with the SDK.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from evalharness.commands.serve import compose
from evalharness.transports.mint.server import ServerThread, build_service, create_app
from mint_testing import Recorder, observation
from test_serve_sampling import INSTRUCTION, _prompt, stateless_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SDK_PYTHON = Path(os.environ.get("EVALHARNESS_SDK_PYTHON", ROOT / ".venv-sdk" / "bin" / "python"))
KEY = "sk-sdk-test-key-0123456789"

pytestmark = pytest.mark.skipif(not SDK_PYTHON.exists(), reason=f"no MinT SDK at {SDK_PYTHON}: run make install-test")


def run_sdk(url: str, samples: list[dict[str, Any]], model_path: str = "local://checkpoint") -> list[dict[str, Any]]:
    prompt = _prompt()
    request = {"url": url, "key": KEY, "model_path": model_path, "images": [c["data"] for c in prompt["chunks"][:3]],
               "tokens": prompt["chunks"][3]["tokens"], "samples": samples}
    done = subprocess.run([str(SDK_PYTHON), str(Path(__file__).with_name("sdk_driver.py"))], input=json.dumps(request),
                          text=True, capture_output=True, timeout=300, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["results"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    return stateless_checkpoint(tmp_path_factory.mktemp("sdk") / "reference")


def test_the_real_sdk_samples_the_served_policys_tokens(checkpoint) -> None:
    from evalharness.policies.checkpoint import CheckpointPolicy

    service = build_service(compose(["policy=checkpoint", f"policy.path={checkpoint}"]), api_key=KEY)
    recorder = Recorder(create_app(service))
    with ServerThread(recorder) as running:
        greedy, short, hot, again = run_sdk(running.url, [
            {"temperature": 0.0}, {"temperature": 0.0, "max_tokens": 5},
            {"temperature": 5.0, "seed": 99}, {"temperature": 5.0, "seed": 99}])
    service.close()
    local = CheckpointPolicy(checkpoint)
    local.reset(INSTRUCTION, seed=0)
    obs = {**observation(0), "instruction": INSTRUCTION}
    obs["image_mask"] = {c: c != "right_wrist_0_rgb" for c in obs["images"]}
    assert greedy == {"tokens": local.act(obs).tolist(), "stop_reason": "length"}
    assert short["tokens"] == greedy["tokens"][:5]
    assert hot == again and hot["tokens"] != greedy["tokens"]
    # what the SDK sent: its own routes, chunks without "type", allow_metadata_only, the key
    routes = [r["path"].rsplit("/", 1)[-1] for r in recorder.requests]
    assert routes[:3] == ["create_session", "create_sampling_session", "asample"]
    sample = next(r["json"] for r in recorder.requests if r["path"].endswith("/asample"))
    assert all("type" not in chunk for chunk in sample["prompt"]["chunks"])
    assert any(r["json"].get("allow_metadata_only") for r in recorder.requests if r["path"].endswith("retrieve_future"))
    assert {r["api_key"] for r in recorder.requests} == {KEY}


def test_a_policy_failure_reaches_the_sdk_as_an_error_it_understands() -> None:
    service = build_service(compose(["policy=zero"]), api_key=KEY)
    with ServerThread(create_app(service)) as running:
        (failed,) = run_sdk(running.url, [{"temperature": 0.0}], model_path="local://zero")
    service.close()
    assert "error" in failed and "not token ids" in failed["message"], failed
    assert failed["seconds"] < 30  # a failed request, not a server fault the SDK retries for minutes


def test_session_heartbeat_and_unknown_sessions() -> None:
    import httpx

    service = build_service(compose(["policy=zero"]))
    with ServerThread(create_app(service)) as running:
        session = httpx.post(f"{running.url}/api/v1/create_session", json={"tags": [], "user_metadata": None,
                                                                          "sdk_version": "0.15.0"}).json()
        assert session["type"] == "create_session"
        beat = httpx.post(f"{running.url}/api/v1/session_heartbeat", json={"session_id": session["session_id"]})
        assert beat.status_code == 200 and beat.json() == {"type": "session_heartbeat"}
        assert httpx.post(f"{running.url}/api/v1/session_heartbeat", json={"session_id": "nope"}).status_code == 404
        # MinT's action sessions: base_model optional, action_session_seq_id accepted, anything else still 422
        created = httpx.post(f"{running.url}/api/v1/mint/action_sessions",
                             json={"session_id": "s", "model_path": "local://zero", "action_session_seq_id": 3})
        assert created.status_code == 200
        extra = httpx.post(f"{running.url}/api/v1/mint/action_sessions",
                           json={"session_id": "s", "model_path": "local://zero", "priority": 1})
        assert extra.status_code == 422 and "priority" in extra.text
    service.close()
