"""The MinT client against faults injected by a real server on 127.0.0.1, and the server's
strict validation.

Every fault ends as a retry that succeeds (the answer equals the policy's own) or as the
right error kind (``policy_unavailable`` / ``policy_error`` / ``invalid_action``), within
its timeout. No simulator: observations are synthetic, the HTTP stack is real.
"""

from __future__ import annotations

import base64
import io
import math
import socket
import time
from typing import Any

import httpx
import numpy as np
import pytest

from evalharness.commands.serve import compose
from evalharness.errors import EpisodeError, PolicyError, UserInputError
from evalharness.transports.mint.policy import MintPolicy
from evalharness.transports.mint.prompt import PromptCodec
from evalharness.transports.mint.server import ServerThread, build_service, create_app
from evalharness.transports.mint.sessions import seed_from_session_id
from evalharness.policies.baselines import RandomPolicy
from mint_testing import Fault, Recorder, observation, train_sentencepiece

INSTRUCTION = "put the bowl on the plate"
FAST = {"backoff_s": 0.01, "max_backoff_s": 0.05}


@pytest.fixture(scope="module")
def server():
    service = build_service(compose(["policy=random", "policy.horizon=10"]))
    recorder = Recorder(create_app(service))
    with ServerThread(recorder) as running:
        yield recorder, running
    service.close()


@pytest.fixture
def recorder(server):
    recorder, _ = server
    recorder.faults.clear()
    yield recorder
    assert not recorder.faults, f"faults not consumed: {list(recorder.faults)}"


def _open(server, **settings: Any) -> MintPolicy:
    _, running = server
    timeouts = {"connect": 1.0, "read": 5.0, "future": 10.0, "create": 5.0, **settings.pop("timeouts", {})}
    policy = MintPolicy("local://random", base_url=running.url, state_space="raw", timeouts=timeouts,
                        retries={**FAST, **settings.pop("retries", {})}, **settings)
    policy.reset(INSTRUCTION, seed=3)
    return policy


def _expected(queries: int = 1) -> np.ndarray:
    reference = RandomPolicy(horizon=10)
    reference.reset(INSTRUCTION, seed=3)
    for _ in range(queries - 1):
        reference.act({})
    return reference.act({})


def _open_sessions(server) -> dict[str, int]:
    return httpx.get(f"{server[1].url}/api/v1/evalharness/status").json()["open_sessions"]


def _act_result(transform) -> Fault:
    return Fault("retrieve", transform=transform)


# ---------------------------------------------------------------- retried to success
@pytest.mark.parametrize(
    ("faults", "min_wait_s"),
    [
        pytest.param([Fault("retrieve", status=408, headers={"Retry-After": "2"},
                            body={"type": "try_again", "queue_state": "active"})], 2.0,
                     id="pending-with-retry-after"),
        pytest.param([Fault("retrieve", status=408, body={"type": "try_again", "queue_state": "paused_capacity"})], 1.0,
                     id="pending-queue-state"),
        pytest.param([Fault("retrieve", status=503, body={"detail": "busy"})], 1.0, id="retrieve-503-pending"),
        pytest.param([Fault("act", status=503, body={"detail": "busy"})], 0.0, id="act-503-then-success"),
        pytest.param([Fault("act", status=429, headers={"Retry-After": "0"}, body={"detail": "slow down"})], 0.0,
                     id="429-backoff"),
        pytest.param([Fault("act", status=500, body={"detail": "oops"}) for _ in range(5)], 0.0, id="500-five-times"),
        pytest.param([Fault("create", status=503, body={"detail": "loading"})], 0.0, id="create-503-no-capacity"),
    ],
)
def test_transient_faults_are_retried_to_the_policys_own_answer(server, recorder, faults, min_wait_s) -> None:
    create_faults = [f for f in faults if f.route == "create"]
    recorder.inject(*create_faults)
    policy = _open(server)
    recorder.inject(*[f for f in faults if f.route != "create"])
    try:
        start = time.monotonic()
        chunk = policy.act(observation())
        elapsed = time.monotonic() - start
    finally:
        policy.close()
    np.testing.assert_array_equal(chunk, _expected())
    assert min_wait_s <= elapsed < min_wait_s + 5.0


def test_a_pending_future_is_polled_again_not_resubmitted(server, recorder) -> None:
    policy = _open(server)
    acts, retrieves = len(recorder.of("act")), len(recorder.of("retrieve"))
    recorder.inject(Fault("retrieve", status=408, body={"queue_state": "active"}),
                    Fault("retrieve", status=408, body={"queue_state": "active"}))
    try:
        np.testing.assert_array_equal(policy.act(observation()), _expected())
    finally:
        policy.close()
    assert len(recorder.of("act")) - acts == 1 and len(recorder.of("retrieve")) - retrieves == 3


# ---------------------------------------------------------------- named errors
def _nan_chunk(result: dict) -> dict:
    result["actions"]["data"][3] = math.nan
    return result


def _wrong_shape(result: dict) -> dict:
    result["actions"]["shape"] = [10, 6]
    result["actions"]["data"] = result["actions"]["data"][:60]
    return result


def _short_data(result: dict) -> dict:
    result["actions"]["data"] = result["actions"]["data"][:-1]
    return result


@pytest.mark.parametrize(
    ("faults", "kind", "settings", "words"),
    [
        pytest.param([Fault("act", status=500, body={"detail": "oops"}) for _ in range(4)], "policy_unavailable",
                     {"retries": {"max_retries": 3}}, "HTTP 500; gave up after 4 attempts", id="500-past-retries"),
        pytest.param([Fault("retrieve", status=200, body={"error": "Future expired", "category": "system"})],
                     "policy_error", {}, "Future expired", id="200-with-error"),
        pytest.param([Fault("retrieve", status=200, body=b"{not json")], "policy_error", {}, "malformed JSON",
                     id="malformed-json"),
        pytest.param([_act_result(_wrong_shape)], "invalid_action", {}, "shape [10, 6]", id="wrong-chunk-shape"),
        pytest.param([_act_result(_short_data)], "invalid_action", {}, "69 values for shape [10, 7]",
                     id="data-does-not-fill-shape"),
        pytest.param([_act_result(_nan_chunk)], "invalid_action", {}, "non-finite value at step 0, dim 3", id="nan"),
        pytest.param([Fault("act", hang_s=3.0, status=500, body={}) for _ in range(2)], "policy_unavailable",
                     {"timeouts": {"read": 0.3}, "retries": {"max_retries": 1}}, "ReadTimeout", id="never-answers"),
        pytest.param([Fault("retrieve", status=408, body={"queue_state": "active"}) for _ in range(4)],
                     "policy_unavailable", {"timeouts": {"future": 0.5}}, "not ready within 0.5 s", id="pending-forever"),
        pytest.param([Fault("act", status=422, body={"detail": [{"msg": "extra fields not permitted"}]})],
                     "policy_error", {}, "HTTP 422", id="422-not-retried"),
    ],
)
def test_faults_end_as_the_right_error_kind_within_the_timeout(server, recorder, faults, kind, settings, words) -> None:
    policy = _open(server, **settings)
    recorder.inject(*faults)
    start = time.monotonic()
    try:
        with pytest.raises(EpisodeError) as raised:
            policy.act(observation())
    finally:
        stats = policy.episode_stats()  # what the rollout calls after an errored episode: ends the session
        policy.close()
    assert raised.value.kind == kind and words in str(raised.value)
    assert time.monotonic() - start < 4.0
    assert stats["queries"] == 0
    assert _open_sessions(server) == {"action": 0, "sampling": 0}
    recorder.faults.clear()  # the "pending-forever" case leaves unread pending answers


def test_an_unreachable_server_is_policy_unavailable(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = MintPolicy("local://x", base_url=f"http://127.0.0.1:{port}", state_space="raw",
                        timeouts={"connect": 0.5, "create": 2.0}, retries={"max_retries": 2, **FAST})
    start = time.monotonic()
    with pytest.raises(EpisodeError) as raised:
        policy.reset(INSTRUCTION, seed=0)
    policy.close()
    assert raised.value.kind == "policy_unavailable" and "ConnectError" in str(raised.value)
    assert time.monotonic() - start < 3.0


# ---------------------------------------------------------------- the server's own checks
def _body(server, **changes: Any) -> dict[str, Any]:
    from evalharness.transports.mint import wire

    codec = PromptCodec(None)
    tokens = codec.encode(INSTRUCTION, np.zeros(8)).tokens
    obs = observation()
    chunks = [c.model_dump() for c in wire.observation_chunks(obs["images"], tokens)]
    body = {"observation": {"model_input": {"chunks": chunks}, "state": {"data": [0.0] * 8, "shape": [8], "dtype": "float32"}},
            "temperature": 0.0}
    body.update(changes)
    return body


def _session(url: str) -> str:
    answer = httpx.post(f"{url}/api/v1/mint/action_sessions",
                        json={"session_id": "t:seed=1", "base_model": "b", "model_path": "local://random"})
    return answer.json()["action_session_id"]


def _png(size: int) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_the_server_rejects_what_mint_rejects(server, recorder) -> None:
    url = server[1].url
    session = _session(url)
    act = f"{url}/api/v1/mint/action_sessions/{session}/act"
    try:
        unknown = httpx.post(f"{url}/api/v1/mint/action_sessions",
                             json={"session_id": "s", "base_model": "b", "model_path": "local://x", "seed": 1})
        assert unknown.status_code == 422 and "seed" in unknown.text
        assert httpx.post(act, json={**_body(server), "top_k": 3}).status_code == 422
        assert httpx.post(f"{url}/api/v1/mint/action_sessions/nope/act", json=_body(server)).status_code == 404
        assert httpx.delete(f"{url}/api/v1/mint/action_sessions/nope").status_code == 404
        assert httpx.post(f"{url}/api/v1/retrieve_future", json={"request_id": "nope"}).status_code == 404

        body = _body(server)
        body["observation"]["model_input"]["chunks"][1]["data"] = _png(256)
        small = httpx.post(act, json=body)
        assert small.status_code == 422 and "left_wrist_0_rgb: 256x256" in small.text

        body = _body(server)
        chunks = body["observation"]["model_input"]["chunks"]
        body["observation"]["model_input"]["chunks"] = [chunks[3], *chunks[:3]]
        assert httpx.post(act, json=body).status_code == 422

        body = _body(server)
        body["observation"]["model_input"]["chunks"][3]["tokens"] = [256] + [65] * 180
        too_long = httpx.post(act, json=body)
        assert too_long.status_code == 422 and "181 tokens" in too_long.text

        body = _body(server)
        body["observation"]["state"] = {"data": [0.0] * 7, "shape": [8], "dtype": "float32"}
        assert httpx.post(act, json=body).status_code == 422

        ok = httpx.post(act, json=_body(server))
        assert ok.status_code == 200
        request_id = ok.json()["request_id"]
        first = httpx.post(f"{url}/api/v1/retrieve_future", json={"request_id": request_id})
        assert first.status_code == 200 and first.json()["actions"]["shape"] == [10, 7]
        again = httpx.post(f"{url}/api/v1/retrieve_future", json={"request_id": request_id}).json()
        assert again["error"] == "Future already retrieved"
    finally:
        httpx.delete(f"{url}/api/v1/mint/action_sessions/{session}")


def test_pending_results_answer_408_with_retry_after(tmp_path) -> None:
    import threading

    from evalharness.policies.base import Policy

    release = threading.Event()

    class Slow(Policy):
        def act(self, observation):
            release.wait(10)
            return np.zeros((1, 7))

    config = compose(["policy=zero", "serve.long_poll_s=0.1", "serve.retry_after_s=2"])
    service = build_service(config)
    service.sessions._policy = Slow()
    with ServerThread(create_app(service)) as running:
        session = _session(running.url)
        request_id = httpx.post(f"{running.url}/api/v1/mint/action_sessions/{session}/act", json=_body(None)).json()["request_id"]
        pending = httpx.post(f"{running.url}/api/v1/retrieve_future", json={"request_id": request_id})
        release.set()
        assert pending.status_code == 408 and pending.headers["Retry-After"] == "2"
        assert pending.json()["type"] == "try_again" and pending.json()["queue_state"] == "active"
        done = httpx.post(f"{running.url}/api/v1/retrieve_future", json={"request_id": request_id})
        assert done.status_code == 200 and done.json()["actions"]["data"] == [0.0] * 7
    service.close()


# ---------------------------------------------------------------- prompt and sessions
def test_the_prompt_is_pi0_fast_prefix_with_bos_and_reads_back(tmp_path) -> None:
    import sentencepiece

    model = train_sentencepiece(tmp_path)
    codec = PromptCodec(model)
    state = np.array([-1.0, -0.5, 0.0, 0.5, 0.99, 1.0, 0.25, -0.25])
    prefix = codec.encode("Put_the BOWL on the plate ", state)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(model))
    assert prefix.tokens[0] == sp.bos_id()
    assert sp.decode(prefix.tokens[1:]) == "Task: put the bowl on the plate, State: 0 64 128 192 254 255 160 96;"
    assert codec.decode(prefix.tokens) == ("put the bowl on the plate", [0, 64, 128, 192, 254, 255, 160, 96])
    assert codec.describe()["tokenizer_sha256"] and codec.describe()["tokenizer"] == "sentencepiece"


def test_a_prompt_past_180_tokens_fails_clearly() -> None:
    codec = PromptCodec(None)
    with pytest.raises(PolicyError, match=r"the prompt is \d+ tokens; pi0-FAST takes at most 180"):
        codec.encode("pick up the bowl " * 12, np.zeros(8))


def test_bad_settings_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(UserInputError, match="policy.model_path='s3://x' is not valid"):
        MintPolicy("s3://x", state_space="raw")
    with pytest.raises(UserInputError, match="policy.stats_path is required"):
        MintPolicy("mint://m/sampler_weights/a")
    with pytest.raises(UserInputError, match="policy.timeouts.read=-1"):
        MintPolicy("mint://m/sampler_weights/a", state_space="raw", timeouts={"read": -1})
    with pytest.raises(UserInputError, match=r"^policy.timeouts.reed is not a setting; allowed: connect, read, write"):
        MintPolicy("mint://m/sampler_weights/a", state_space="raw", timeouts={"reed": 1})
    with pytest.raises(UserInputError, match=r"^policy.retries.max_retries=1.5 is not valid: input should be a valid int"):
        MintPolicy("mint://m/sampler_weights/a", state_space="raw", retries={"max_retries": 1.5})
    with pytest.raises(UserInputError, match=r"^policy.state_out_of_range='wrap' is not valid; allowed: clip, keep, "):
        MintPolicy("mint://m/sampler_weights/a", state_space="raw", state_out_of_range="wrap")
    with pytest.raises(UserInputError, match=r"^policy.mode='chat' is not valid; allowed: action, sampling$"):
        MintPolicy("mint://m/sampler_weights/a", state_space="raw", mode="chat")
    with pytest.raises(UserInputError, match="not a SentencePiece model"):
        (tmp_path / "bad.model").write_text("no")
        MintPolicy("mint://m/sampler_weights/a", state_space="raw", tokenizer=str(tmp_path / "bad.model"))
    with pytest.raises(UserInputError, match="privileged simulator state"):
        build_service(compose(["policy=scripted"]))
    with pytest.raises(UserInputError, match="serve.stats_path is required"):
        build_service(compose(["policy=zero", "serve.state_space=normalized"]))
    with pytest.raises(UserInputError, match=r"^serve.auth='key' is not valid; allowed: none, env$"):
        build_service(compose(["policy=zero", "serve.auth=key"]))
    with pytest.raises(UserInputError, match=r"^serve.max_batch=0 is not valid: input should be greater than or equal"):
        build_service(compose(["policy=zero", "serve.max_batch=0"]))


def test_session_seeds_come_from_the_client_session_id() -> None:
    assert seed_from_session_id("evalharness-ab12:seed=1234") == 1234
    assert seed_from_session_id("anything") == seed_from_session_id("anything") != seed_from_session_id("other")


def test_policy_server_choices_are_checked() -> None:
    from evalharness.engine.policy_server import mode

    assert mode({"runner": {"policy_server": "none"}, "policy": {"_target_": "x"}}) == "none"
    with pytest.raises(UserInputError, match="runner.policy_server"):
        mode({"runner": {"policy_server": "always"}, "policy": {"_target_": "x"}})
    with pytest.raises(UserInputError, match="policy=mint is already remote"):
        mode({"runner": {"policy_server": "auto"}, "policy": {"_target_": "evalharness.transports.mint.policy.MintPolicy"}})


def test_the_served_policy_sees_only_its_own_cameras_as_in_process() -> None:
    """The rollout renders only the policy's cameras (others are zeros, mask false); so does serve."""
    service = build_service(compose(["policy=random", "policy._target_=mint_testing.CameraEcho"]))
    with ServerThread(create_app(service)) as running:
        policy = MintPolicy("local://echo", base_url=running.url, state_space="raw")
        try:
            policy.reset(INSTRUCTION, seed=0)
            obs = observation(1)
            seen = policy.act(obs)[0]
        finally:
            policy.close()
    service.close()
    assert seen[0] == pytest.approx(obs["images"]["base_0_rgb"].mean()) and seen[1] == 1.0
    assert seen[2] == 0.0 and seen[3] == 0.0  # the wrist camera was sent but the policy does not look at it
    assert seen[4] == 0.0 and seen[5] == 0.0
    assert seen[6] == len(INSTRUCTION)  # the instruction, read back from the prompt's tokens


def test_a_normalized_state_is_unnormalized_by_the_server(tmp_path) -> None:
    """state_space=normalized on both sides: the served policy still gets robot units (float32 on the wire)."""
    import json

    stats = tmp_path / "norm_stats.json"
    q01, q99 = [-0.5, -0.4, 0.0, -3.0, -3.0, -3.0, 0.0, -0.04], [0.5, 0.4, 1.2, 3.0, 3.0, 3.0, 0.04, 0.0]
    stats.write_text(json.dumps({"norm_stats": {"state": {"q01": q01, "q99": q99}, "actions": {"q01": q01, "q99": q99}}}))
    config = compose(["policy=random", "policy._target_=mint_testing.StateEcho", "serve.state_space=normalized",
                      f"serve.stats_path={stats}"])
    service = build_service(config)
    with ServerThread(create_app(service)) as running:
        policy = MintPolicy("local://echo", base_url=running.url, stats_path=str(stats))
        try:
            policy.reset(INSTRUCTION, seed=0)
            obs = observation(2)
            seen = policy.act(obs)[0]
            assert policy.identity()["state_space"] == "normalized" and policy.identity()["state_stats_sha256"]
        finally:
            policy.close()
    service.close()
    np.testing.assert_allclose(seen, obs["state"], rtol=0, atol=1e-5)
