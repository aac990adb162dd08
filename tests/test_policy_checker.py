"""``check_policy``: every shipped policy passes; broken ones are named with what is wrong.

Every ``conf/policy/*.yaml`` is checked, the remote ones against real servers on 127.0.0.1:
``openpi`` against openpi's websocket protocol (tests/openpi_server.py), ``mint`` against
``evalharness serve``, ``vla_eval`` against vla-eval's own model-server code
(tests/vla_eval_servers.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest
import yaml

from evalharness.policies.base import Policy
from evalharness.policies.baselines import RandomPolicy, ZeroPolicy
from evalharness.policies.checker import PolicyCheckError, check_policy, example_observation, load_protocol_named
from evalharness.commands.serve import compose
from evalharness.transports.mint.server import ServerThread, build_service, create_app
from evalharness.policies.build import build_policy
from openpi_server import ObservationPolicy, OpenpiTestServer
from vla_eval_servers import DeterministicServer, ServedInThread

CONF = Path(__file__).resolve().parents[1] / "conf"
NONE = {"decoder": {"name": "none"}, "normalize": {"name": "none"}, "convert": {"name": "none"}}


def configured(name: str, **overrides: Any) -> dict[str, Any]:
    cfg = yaml.safe_load((CONF / "policy" / f"{name}.yaml").read_text())
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="module")
def checkpoint_dir(reference_checkpoints) -> Path:
    return reference_checkpoints["tokens"]


@pytest.fixture(scope="module")
def chunk_checkpoint_dir(reference_checkpoints) -> Path:
    return reference_checkpoints["chunk"]


class Shipped(NamedTuple):
    conf: str  # its conf/policy/<conf>.yaml
    label: str
    cfg: dict
    pipeline: dict
    protocols: tuple[str, ...] = ("openpi", "lerobot")


@pytest.fixture(scope="module")
def openpi_server():
    """openpi's websocket protocol with the real openpi-client codec (tests/openpi_server.py)."""
    server = OpenpiTestServer(ObservationPolicy())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mint_server():
    """``evalharness serve`` of ``random`` on 127.0.0.1, as the MinT tests run it."""
    service = build_service(compose(["policy=random", "policy.horizon=5"]))
    with ServerThread(create_app(service)) as server:
        yield server
    service.close()


@pytest.fixture(scope="module")
def vla_eval_server():
    """vla-eval's own PredictModelServer + serve_async on 127.0.0.1."""
    with ServedInThread(DeterministicServer()) as server:
        yield server


@pytest.fixture(scope="module")
def shipped(checkpoint_dir, chunk_checkpoint_dir, openpi_server, mint_server, vla_eval_server) -> list[Shipped]:
    mint = {**NONE, "decoder": yaml.safe_load((CONF / "decoder" / "mint_uniform.yaml").read_text())}
    quick = {"reconnects": 0, "open_timeout_s": 5, "infer_timeout_s": 20}
    return [
        Shipped("zero", "zero", configured("zero"), NONE),
        Shipped("random", "random", configured("random", horizon=5), NONE),
        Shipped("scripted", "scripted", configured("scripted"), NONE),
        Shipped("faulty", "faulty (armed after 100 queries)", configured("faulty", after_queries=100), NONE),
        Shipped("replay", "replay of a chunk", configured("replay", outputs=[[[0.1, 0, 0, 0, 0, 0, -1]]]), NONE),
        Shipped("replay", "replay of tokens", configured("replay", outputs=[[256] * 70, [300] * 14]), mint),
        Shipped("checkpoint", "checkpoint (tokens)", configured("checkpoint", path=str(checkpoint_dir), device="cpu"),
                NONE),
        Shipped("checkpoint", "checkpoint (sampled tokens)",
                configured("checkpoint", path=str(checkpoint_dir), temperature=1.0), NONE),
        Shipped("checkpoint", "checkpoint (chunk)", configured("checkpoint", path=str(chunk_checkpoint_dir)), NONE),
        # openpi's server takes the 224 px images of openpi's preprocessing: protocol=openpi only.
        Shipped("openpi", "openpi (against openpi's websocket protocol)",
                configured("openpi", port=openpi_server.port, **quick), NONE, ("openpi",)),
        # run: the yaml fills it from the run's groups by interpolation, absent here
        Shipped("vla_eval", "vla_eval (against vla-eval's own model server)",
                configured("vla_eval", port=vla_eval_server.port, run={}, open_timeout_s=5, infer_timeout_s=20,
                           retries={"max_retries": 0}), NONE),
        Shipped("mint", "mint (against evalharness serve)",
                configured("mint", model_path="local://random", base_url=mint_server.url, state_space="raw",
                           stats_path=None), NONE),
    ]


def test_every_conf_policy_is_checked(shipped):
    """A policy added to conf/policy/ without a check_policy entry above fails here."""
    confs = sorted(p.stem for p in (CONF / "policy").glob("*.yaml"))
    assert sorted({entry.conf for entry in shipped}) == confs
    for entry in shipped:
        assert entry.cfg["_target_"] == configured(entry.conf)["_target_"]


@pytest.mark.parametrize("protocol", ["openpi", "lerobot"])
def test_every_shipped_policy_passes(shipped, protocol, mint_server):
    for entry in shipped:
        if protocol not in entry.protocols:
            continue
        try:
            check_policy(build_policy(entry.cfg, entry.pipeline), protocol)
        except PolicyCheckError as exc:
            pytest.fail(f"{entry.label} under {protocol}: {exc}")
    # the mint client and every fork the check made closed their sessions
    status = httpx.get(f"{mint_server.url}/api/v1/evalharness/status").json()
    assert status["open_sessions"] == {"action": 0, "sampling": 0} and status["queries"] > 0


def test_baselines_pass_under_a_protocol_without_state():
    for cfg in (configured("zero"), configured("random"), configured("scripted")):
        check_policy(build_policy(cfg, NONE), "openvla")


def test_a_checkpoint_that_needs_state_fails_under_a_protocol_without_it(checkpoint_dir):
    policy = build_policy(configured("checkpoint", path=str(checkpoint_dir)), NONE)
    with pytest.raises(PolicyCheckError, match=r"check_policy\('checkpoint'\): act\(\) raised UserInputError: .*"
                                               r"takes the state .* but the observation has none"):
        check_policy(policy, "openvla")


def test_example_observation_follows_protocol_and_policy():
    protocol = load_protocol_named("openpi")
    obs = example_observation(protocol, ZeroPolicy())
    assert {k: v.shape for k, v in obs["images"].items()} == {c: (224, 224, 3) for c in obs["images"]}
    assert obs["image_mask"] == {"base_0_rgb": True, "left_wrist_0_rgb": True, "right_wrist_0_rgb": False}
    assert obs["state"].shape == (8,) and obs["state"].dtype == np.float32 and "privileged" not in obs
    assert not obs["images"]["right_wrist_0_rgb"].any() and obs["images"]["base_0_rgb"].any()
    scripted = build_policy(configured("scripted"), NONE)
    obs = example_observation(load_protocol_named("openvla"), scripted)
    assert "state" not in obs and "alphabet_soup_1_pos" in obs["privileged"]
    assert not any(obs["image_mask"].values())  # the scripted policy looks at no camera


# --- broken policies: each is named with what is wrong -----------------------------------------

class NotJson(ZeroPolicy):
    def identity(self):
        return {"name": self.name, "weights": np.zeros(2)}


class LeaksKeyByName(ZeroPolicy):
    def identity(self):
        return {"name": self.name, "server": {"api_key": "abc"}}


class LeaksEnvValue(ZeroPolicy):
    def identity(self):
        import os

        return {"name": self.name, "url": f"https://x.test/?k={os.environ['MINT_API_KEY']}"}


class UnstableIdentity(ZeroPolicy):
    calls = 0

    def identity(self):
        UnstableIdentity.calls += 1
        return {"name": self.name, "call": UnstableIdentity.calls}


class SeededOnlyOnce(RandomPolicy):
    def reset(self, instruction, *, seed, init_state=None, attempt=1):
        pass  # keeps the generator of __init__: the second episode differs from the first


class GlobalRandom(ZeroPolicy):
    """Seeds NumPy's global generator: forks share it, so a fork's answer depends on the others."""

    def reset(self, instruction, *, seed, init_state=None, attempt=1):
        np.random.seed(seed % 2**32)

    def act(self, observation):
        return np.random.uniform(-1, 1, (1, 7))


class BatchMixesUp(ZeroPolicy):
    @classmethod
    def act_batch(cls, policies, observations):
        answers = [p.act(o) for p, o in zip(policies, observations)]
        answers[0] = answers[0] + 0.5
        return answers


class ForkIsSelf(ZeroPolicy):
    def fork(self):
        return self


class RawTokens(Policy):
    name = "raw_tokens"

    def act(self, observation):
        return np.full(70, 256)


class NanStats(ZeroPolicy):
    def episode_stats(self):
        return {"latency_ms": float("nan")}


class EventsNotAList(ZeroPolicy):
    def drain_events(self):
        return "clipped"


class BadCameras(ZeroPolicy):
    cameras = ("agentview",)


class ActNeedsReset(ZeroPolicy):
    def act(self, observation):
        raise KeyError("images")


@pytest.mark.parametrize("policy, message", [
    (NotJson(), r"identity\(\) before acting is not JSON-serializable \(Object of type ndarray"),
    (LeaksKeyByName(), r"identity\(\) before acting is not free of secrets: identity\['server'\]\['api_key'\] has a "
                       r"value under a secret-looking key"),
    (LeaksEnvValue(), r"identity\(\) before acting is not free of secrets: it contains the value of the environment "
                      r"variable MINT_API_KEY"),
    (UnstableIdentity(), r"identity\(\) changed between calls"),
    (SeededOnlyOnce(horizon=3), r"act\(\) after reset\(\) with the same seed and observation gave another chunk"),
    (GlobalRandom(), r"act_batch\(\) answer 0 differs from the same fork acting alone"),
    (BatchMixesUp(), r"act_batch\(\) answer 0 differs from the same fork acting alone \(0.5\)"),
    (ForkIsSelf(), r"fork\(\) returned .*; allowed: a new ForkIsSelf"),
    (RawTokens(), r"act\(\) after the action pipeline: policy output has shape \(70,\).*looks like raw tokens"),
    (NanStats(), r"episode_stats\(\) has 'latency_ms': nan; allowed: names -> finite numbers"),
    (EventsNotAList(), r"drain_events\(\) returned 'clipped'; allowed: a list of strings"),
    (BadCameras(), r"cameras \('agentview',\) is not valid"),
    (ActNeedsReset(), r"act\(\) raised KeyError: 'images'"),
])
def test_broken_policies_are_named_with_what_is_wrong(monkeypatch, policy, message):
    monkeypatch.setenv("MINT_API_KEY", "sk-test-secret-123")
    with pytest.raises(PolicyCheckError, match=rf"^check_policy\('{policy.name}'\): {message}"):
        check_policy(policy, "openpi")


@pytest.mark.parametrize("mode, message", [
    ("raise", r"act\(\) raised RuntimeError: faulty policy: simulated model failure"),
    ("nan", r"act\(\) after the action pipeline: policy output has a non-finite value at step 0, dim 2"),
    ("wrong_shape", r"act\(\) after the action pipeline: policy output has shape \(1, 6\)"),
])
def test_the_faulty_policy_modes_are_caught(mode, message):
    with pytest.raises(PolicyCheckError, match=message):
        check_policy(build_policy(configured("faulty", mode=mode), NONE), "openpi")


def test_an_api_key_shaped_string_is_caught_even_without_the_env_var(monkeypatch):
    monkeypatch.delenv("MINT_API_KEY", raising=False)

    class KeyInUrl(ZeroPolicy):
        def identity(self):
            return {"name": self.name, "note": "sk-abcdefgh12345"}

    with pytest.raises(PolicyCheckError, match=r"API-key-like string \(sk-ab\.\.\.\)"):
        check_policy(KeyInUrl(), "openpi")
