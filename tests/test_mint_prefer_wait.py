"""``Prefer: wait`` (RFC 7240): ``evalharness serve`` answers an act with its result in one round trip.

``policy=mint`` sends the header with every act; ``evalharness serve`` answers with the
result itself when it is ready within the wait (capped by ``serve.long_poll_s``), marked
``Preference-Applied: wait``, and otherwise with the usual future. MinT ignores the header,
which ``mint_testing.Recorder`` reproduces by default (it drops the header), so the fault
tests keep meeting the client on ``retrieve_future``. Real HTTP on 127.0.0.1; no simulator.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest

from evalharness.commands.serve import compose
from evalharness.errors import PolicyError
from evalharness.policies.baselines import RandomPolicy
from evalharness.transports.mint.policy import MintPolicy
from evalharness.transports.mint.server import ServerThread, build_service, create_app, preferred_wait
from mint_testing import Recorder, observation

INSTRUCTION = "put the bowl on the plate"


class SlowPolicy(RandomPolicy):
    """``random`` whose forward pass takes longer than the server's long poll (a test probe)."""

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        time.sleep(0.4)
        return super().act(observation)


def _serve(overrides: list[str], *, honour_prefer: bool):
    service = build_service(compose(overrides))
    recorder = Recorder(create_app(service), honour_prefer=honour_prefer)
    return service, recorder


def _chunks(url: str, queries: int = 3) -> list[np.ndarray]:
    policy = MintPolicy("local://random", base_url=url, state_space="raw",
                        timeouts={"connect": 1.0, "read": 5.0, "future": 10.0, "create": 5.0})
    try:
        policy.reset(INSTRUCTION, seed=3)
        return [policy.act(observation(i)) for i in range(queries)]
    finally:
        policy.close()


@pytest.mark.parametrize(("prefer", "cap", "expected"), [
    ("wait=2", 5.0, 2.0), ("wait=10", 2.0, 2.0), ("respond-async, wait=1", 2.0, 1.0), (" WAIT = 3 ", 5.0, 3.0),
    ("wait=abc", 2.0, None), ("wait=-1", 2.0, None), ("wait=1.5", 2.0, None), ("return=minimal", 2.0, None),
    ("", 2.0, None), (None, 2.0, None), ("wait=2", 0.0, None), ("x" * 10_000 + ",wait=2", 2.0, None),
])
def test_the_prefer_header_is_read_as_the_rfc_says(prefer, cap, expected) -> None:
    assert preferred_wait(prefer, cap) == expected


def test_an_act_is_answered_with_its_result_in_one_round_trip_and_the_same_chunk() -> None:
    overrides = ["policy=random", "policy.horizon=10"]
    results = {}
    for honour in (True, False):
        service, recorder = _serve(overrides, honour_prefer=honour)
        try:
            with ServerThread(recorder) as running:
                results[honour] = _chunks(running.url)
        finally:
            service.close()
        acts = recorder.of("act")
        assert len(acts) == 3 and all(a["prefer"] == "wait=2" for a in acts)  # half the 5 s read timeout
        assert len(recorder.of("retrieve")) == (0 if honour else 3)  # one round trip, or MinT's two
    for one, two in zip(results[True], results[False], strict=True):
        assert np.array_equal(one, two)


def test_a_result_not_ready_within_the_wait_is_a_future_the_client_then_polls() -> None:
    overrides = ["policy=random", "policy.horizon=10", "policy._target_=test_mint_prefer_wait.SlowPolicy",
                 "serve.long_poll_s=0.1"]
    service, recorder = _serve(overrides, honour_prefer=True)
    try:
        with ServerThread(recorder) as running:
            session = httpx.post(f"{running.url}/api/v1/mint/action_sessions",
                                 json={"session_id": "s", "model_path": "local://x"}).json()["action_session_id"]
            answer = httpx.post(f"{running.url}/api/v1/mint/action_sessions/{session}/act",
                                json=_act_body(), headers={"Prefer": "wait=60"})  # capped at long_poll_s
            assert answer.status_code == 200 and "preference-applied" not in answer.headers
            assert set(answer.json()) == {"request_id"}
            chunks = _chunks(running.url, queries=1)  # the client meets a future and polls for it
        assert len(recorder.of("retrieve")) >= 1 and len(chunks) == 1
    finally:
        service.close()


def test_a_failed_query_is_answered_with_its_error_kind_in_one_round_trip() -> None:
    service, recorder = _serve(["policy=random", "policy.horizon=10"], honour_prefer=True)
    try:
        with ServerThread(recorder) as running:
            session = httpx.post(f"{running.url}/api/v1/mint/action_sessions",
                                 json={"session_id": "s", "model_path": "local://x"}).json()["action_session_id"]
            url = f"{running.url}/api/v1/mint/action_sessions/{session}/act"
            first = httpx.post(url, json=_act_body(), headers={"Prefer": "wait=5"})
            assert first.status_code == 200 and first.headers["preference-applied"] == "wait"
            assert "error" not in first.json() and "request_id" not in first.json()  # the result itself
            # a session serves one episode: another instruction fails that query, answered at once
            other = httpx.post(url, json=_act_body("open the drawer"), headers={"Prefer": "wait=5"})
            assert other.status_code == 200 and other.headers["preference-applied"] == "wait"
            assert "instruction changed" in other.json()["error"]
            assert not recorder.of("retrieve")
    finally:
        service.close()


def _act_body(instruction: str = INSTRUCTION) -> dict[str, Any]:
    from evalharness.transports.mint import wire
    from evalharness.transports.mint.prompt import PromptCodec

    obs = observation(0)
    tokens = PromptCodec(None).encode(instruction, obs["state"]).tokens
    chunks = wire.observation_chunks(obs["images"], tokens, 1)
    request = wire.ActRequest(observation=wire.Observation(model_input=wire.ModelInput(chunks=chunks),
                                                           state=wire.RequestTensor.of(obs["state"])))
    return request.model_dump(mode="json")


def test_the_client_raises_the_error_kind_a_one_round_trip_answer_names() -> None:
    service, recorder = _serve(["policy=random", "policy.horizon=10"], honour_prefer=True)
    try:
        with ServerThread(recorder) as running:
            policy = MintPolicy("local://random", base_url=running.url, state_space="raw",
                                timeouts={"connect": 1.0, "read": 5.0, "future": 10.0, "create": 5.0})
            try:
                policy.reset(INSTRUCTION, seed=3)
                policy.act(observation(0))
                policy._instruction = "open the drawer"  # the next prompt names another task
                with pytest.raises(PolicyError, match="instruction changed"):
                    policy.act(observation(1))
            finally:
                policy.close()
        assert not recorder.of("retrieve")
    finally:
        service.close()
