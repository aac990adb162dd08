"""Sampling parameters mean what they say: the reference checkpoint served over real HTTP on
127.0.0.1 honours ``asample``'s ``temperature``, ``seed``, ``top_k``, ``top_p``, ``max_tokens``
and ``stop`` (Tinker's definitions) and an action session's ``temperature``; a policy that
cannot honour one refuses it with a 422 naming it.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from evalharness.commands.serve import compose
from evalharness.policies.checker import PolicyCheckError, check_policy
from evalharness.policies.sampling import SamplingParams
from evalharness.transports.mint import wire
from evalharness.transports.mint.prompt import PromptCodec
from evalharness.transports.mint.server import ServerThread, build_service, create_app
from evalharness.policies.baselines import RandomPolicy
from mint_testing import observation

API = "/api/v1"
INSTRUCTION = "put the bowl on the plate"


def stateless_checkpoint(directory) -> str:
    """The reference token checkpoint with ``inputs.state: none``: asample carries no state."""
    from evalharness.models.reference_checkpoint import write_reference_checkpoint

    path = write_reference_checkpoint(directory, seed=0)
    spec = path / "policy.yaml"
    spec.write_text(spec.read_text().replace("state: normalized", "state: none"))
    return str(path)


def _prompt(seed: int = 0) -> dict[str, Any]:
    tokens = PromptCodec(None).encode(INSTRUCTION, np.zeros(8)).tokens
    chunks = wire.observation_chunks(observation(seed)["images"], tokens)
    return wire.ModelInput(chunks=chunks).model_dump(mode="json")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = stateless_checkpoint(tmp_path_factory.mktemp("ckpt") / "reference")
    config = compose(["policy=checkpoint", f"policy.path={path}", "serve.max_batch=1"])
    service = build_service(config)
    with ServerThread(create_app(service)) as running:
        client = httpx.Client(base_url=running.url, timeout=60.0)
        session = client.post(f"{API}/create_sampling_session", json={"session_id": "s:seed=5", "model_path": "x"})
        action = client.post(f"{API}/mint/action_sessions", json={"session_id": "a:seed=5", "model_path": "x"})
        yield {"client": client, "session": session.json()["sampling_session_id"],
               "action": action.json()["action_session_id"], "path": path}
        client.close()
    service.close()


def _result(client: httpx.Client, answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    result = client.post(f"{API}/retrieve_future", json=answer.json()).json()
    assert "error" not in result, result
    return result


def sample(served, **params: Any) -> tuple[list[int], str]:
    client = served["client"]
    body = {"prompt": _prompt(), "sampling_params": params, "sampling_session_id": served["session"]}
    sequence = _result(client, client.post(f"{API}/asample", json=body))["sequences"][0]
    return sequence["tokens"], sequence["stop_reason"]


def test_greedy_is_deterministic_and_the_policys_argmax(served, tmp_path) -> None:
    from evalharness.policies.checkpoint import CheckpointPolicy

    first, reason = sample(served, temperature=0.0)
    assert sample(served, temperature=0.0)[0] == first and reason == "length" and len(first) == 70
    local = CheckpointPolicy(served["path"])
    local.reset(INSTRUCTION, seed=0)
    obs = {**observation(0), "instruction": INSTRUCTION}
    obs["image_mask"] = {c: c != "right_wrist_0_rgb" for c in obs["images"]}  # the openpi protocol's cameras
    assert local.act(obs).tolist() == first


def test_a_seed_reproduces_and_another_seed_differs(served) -> None:
    hot, again, other = (sample(served, temperature=5.0, seed=s)[0] for s in (99, 99, 100))
    assert hot == again and hot != other


def test_a_temperature_changes_the_distribution(served) -> None:
    greedy = sample(served, temperature=0.0)[0]
    hot = sample(served, temperature=5.0, seed=1)[0]
    assert sum(a != b for a, b in zip(greedy, hot)) > 35  # most of 70 positions move at T=5 over 512 classes
    # Tinker's default (left out) is temperature 1: sampled, not greedy
    assert sample(served, seed=1)[0] != greedy


def test_top_k_1_and_a_tiny_top_p_are_greedy(served) -> None:
    greedy = sample(served, temperature=0.0)[0]
    assert sample(served, temperature=5.0, seed=3, top_k=1)[0] == greedy
    assert sample(served, temperature=5.0, seed=3, top_p=1e-9)[0] == greedy
    assert sample(served, temperature=5.0, seed=3, top_k=50)[0] != greedy


def test_max_tokens_truncates_and_stop_stops(served) -> None:
    greedy = sample(served, temperature=0.0)[0]
    tokens, reason = sample(served, temperature=0.0, max_tokens=5)
    assert tokens == greedy[:5] and reason == "length"
    stop = greedy[3]
    cut = greedy.index(stop) + 1
    tokens, reason = sample(served, temperature=0.0, stop=[stop])
    assert tokens == greedy[:cut] and reason == "stop"


def test_an_action_session_passes_the_temperature(served) -> None:
    client = served["client"]
    url = f"{API}/mint/action_sessions/{served['action']}/act"
    body = {"observation": {"model_input": _prompt(), "state": {"data": [0.0] * 8, "shape": [8]}}}
    cold = [_result(client, client.post(url, json={**body, "temperature": 0.0}))["actions"]["data"] for _ in range(2)]
    hot = _result(client, client.post(url, json={**body, "temperature": 3.0}))["actions"]["data"]
    own = _result(client, client.post(url, json={**body, "temperature": None}))["actions"]["data"]
    assert cold[0] == cold[1] and hot != cold[0]
    assert own == cold[0]  # null: the policy's own temperature (0 in this config)


# ---------------------------------------------------------------- refused, never ignored
@pytest.fixture(scope="module")
def replay():
    config = compose(["policy=replay"])
    config["policy"]["outputs"] = [[300] * 70]
    service = build_service(config)
    with ServerThread(create_app(service)) as running:
        client = httpx.Client(base_url=running.url, timeout=30.0)
        session = client.post(f"{API}/create_sampling_session", json={"session_id": "r:seed=4", "model_path": "x"})
        yield client, session.json()["sampling_session_id"]
        client.close()
    service.close()


@pytest.mark.parametrize(("params", "name"), [
    ({"temperature": 5.0}, "temperature"), ({"top_k": 3}, "top_k"), ({"top_p": 0.5}, "top_p"), ({"seed": 99}, "seed"),
])
def test_a_policy_that_cannot_honour_a_parameter_refuses_it_by_name(replay, params, name) -> None:
    client, session = replay
    answer = client.post(f"{API}/asample", json={"prompt": _prompt(), "sampling_params": params,
                                                 "sampling_session_id": session})
    assert answer.status_code == 422
    assert f"sampling parameter {name}: the served policy 'replay' cannot honour it" in answer.json()["detail"]


def test_neutral_values_ask_nothing_and_max_tokens_applies_to_any_token_policy(replay) -> None:
    client, session = replay
    for params in ({}, {"temperature": 0.0, "top_k": -1, "top_p": 1.0, "seed": 4}, {"max_tokens": 7}):
        answer = client.post(f"{API}/asample", json={"prompt": _prompt(), "sampling_params": params,
                                                     "sampling_session_id": session})
        tokens = _result(client, answer)["sequences"][0]["tokens"]
        assert tokens == [300] * params.get("max_tokens", 70)


def test_string_stop_sequences_are_refused() -> None:
    service = build_service(compose(["policy=replay", "policy.outputs=[[1,2,3]]"]))
    with ServerThread(create_app(service)) as running:
        session = httpx.post(f"{running.url}{API}/create_sampling_session", json={"session_id": "x", "model_path": "m"})
        answer = httpx.post(f"{running.url}{API}/asample", json={
            "prompt": _prompt(), "sampling_params": {"stop": ["\n"]},
            "sampling_session_id": session.json()["sampling_session_id"]})
    service.close()
    assert answer.status_code == 422 and "string stop sequences" in answer.text


def test_an_action_temperature_the_policy_cannot_honour_is_refused() -> None:
    service = build_service(compose(["policy=random"]))
    with ServerThread(create_app(service)) as running:
        session = httpx.post(f"{running.url}{API}/mint/action_sessions", json={"session_id": "x", "model_path": "m"})
        url = f"{running.url}{API}/mint/action_sessions/{session.json()['action_session_id']}/act"
        body = {"observation": {"model_input": _prompt(), "state": {"data": [0.0] * 8, "shape": [8]}}}
        hot = httpx.post(url, json={**body, "temperature": 3.0})
        default = httpx.post(url, json={**body, "temperature": 0.0})
    service.close()
    assert hot.status_code == 422 and "sampling parameter temperature" in hot.text
    assert default.status_code == 200  # MinT's default asks nothing of a policy without a temperature


# ---------------------------------------------------------------- the contract
def test_check_policy_checks_the_sampling_parameters(reference_checkpoints) -> None:
    from evalharness.policies.build import build_policy

    check_policy(build_policy({"_target_": "evalharness.policies.checkpoint.CheckpointPolicy",
                               "path": str(reference_checkpoints["tokens"])},
                              {"decoder": {"name": "none"}, "normalize": {"name": "none"}, "convert": {"name": "none"}}),
                 "openpi")

    class IgnoresSeed(RandomPolicy):
        sampling_parameters = frozenset({"seed"})

    with pytest.raises(PolicyCheckError, match="sampling_parameters lists seed, but it is not honoured"):
        check_policy(IgnoresSeed(), "openpi")

    class Unknown(RandomPolicy):
        sampling_parameters = frozenset({"beam_width"})

    with pytest.raises(PolicyCheckError, match="sampling_parameters frozenset"):
        check_policy(Unknown(), "openpi")


def test_without_sampling_the_checkpoint_draws_exactly_as_configured(reference_checkpoints) -> None:
    from evalharness.policies.checkpoint import CheckpointPolicy

    obs = observation(1)
    a, b = CheckpointPolicy(str(reference_checkpoints["tokens"]), temperature=0.7), None
    a.reset(INSTRUCTION, seed=11)
    plain = [a.act(obs).tolist() for _ in range(2)]
    b = CheckpointPolicy(str(reference_checkpoints["tokens"]), temperature=0.7)
    b.reset(INSTRUCTION, seed=11)
    empty = [b.act({**obs, "sampling": SamplingParams()}).tolist() for _ in range(2)]
    assert plain == empty and plain[0] != plain[1]
