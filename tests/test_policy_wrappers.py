"""Wrapper policies (:class:`PolicyWrapper`): everything not overridden reaches the wrapped policy.

- every public member of :class:`Policy` is delegated by :class:`PolicyWrapper` (a member
  added to the contract later fails here until the wrapper passes it on);
- each shipped wrapper (the base, :class:`RawOutputRecorder`, :class:`PipelinedPolicy`)
  really calls the inner policy for each member, and changes only what it says it does;
- ``policy=checkpoint`` with ``record.raw_outputs=true``: the recorder keeps the model's
  tokens and the checkpoint's declared pipeline still turns them into LIBERO actions (a
  recorder that forgot ``declared_pipeline`` fed raw tokens to the rollout).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from evalharness.policies.base import Policy, PolicyWrapper, find_in_chain
from evalharness.policies.checker import check_policy, example_observation, load_protocol_named
from evalharness.policies.pipelined import PipelinedPolicy
from evalharness.policies.raw_output_recorder import RawOutputRecorder, decode_output, take_raw_outputs
from evalharness.policies.build import build_policy

ROOT = Path(__file__).resolve().parents[1]
NONE = {"decoder": {"name": "none"}, "normalize": {"name": "none"}, "convert": {"name": "none"}}
DECLARED = {"normalize": {"name": "range", "low": -0.5, "high": 0.5}}


def public_members() -> list[str]:
    return sorted(name for name in dir(Policy) if not name.startswith("_"))


def test_every_public_policy_member_is_delegated_by_the_wrapper_base() -> None:
    missing = [name for name in public_members() if name not in vars(PolicyWrapper)]
    assert not missing, f"PolicyWrapper does not pass these Policy members to inner: {missing}"


class Probe(Policy):
    """Logs every call; each answer is distinguishable from a default."""

    name = "probe"
    cameras = ("base_0_rgb",)
    needs_privileged_state = True

    def __init__(self, log: list[str] | None = None) -> None:
        self.log = [] if log is None else log

    def identity(self) -> dict[str, Any]:
        self.log.append("identity")
        return {"name": self.name, "probe": 1}

    def declared_pipeline(self) -> dict[str, dict[str, Any]] | None:
        self.log.append("declared_pipeline")
        return DECLARED

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self.log.append(f"reset:{instruction}:{seed}:{init_state}")

    def act(self, observation) -> np.ndarray:
        self.log.append("act")
        return np.full((2, 7), 0.4)

    def drain_events(self) -> list[str]:
        self.log.append("drain_events")
        return ["probe-event"]

    def episode_end(self, success: bool) -> None:
        self.log.append(f"episode_end:{success}")

    def episode_stats(self) -> dict[str, float | int]:
        self.log.append("episode_stats")
        return {"probe_queries": 3}

    def fork(self) -> "Probe":
        self.log.append("fork")
        return Probe(self.log)

    @classmethod
    def act_batch(cls, policies, observations) -> list[Any]:
        policies[0].log.append(f"act_batch:{len(policies)}")
        return [np.full((2, 7), 0.4) for _ in policies]

    def close(self) -> None:
        self.log.append("close")


WRAPPERS = {
    "PolicyWrapper": PolicyWrapper,
    "RawOutputRecorder": RawOutputRecorder,
    "PipelinedPolicy": lambda inner: PipelinedPolicy(inner, NONE),
}
#: How to call each public member on a wrapper, and what the inner probe must have logged.
CALLS = {
    "name": (lambda w: w.name, None),
    "cameras": (lambda w: w.cameras, None),
    "needs_privileged_state": (lambda w: w.needs_privileged_state, None),
    "identity": (lambda w: w.identity(), "identity"),
    "declared_pipeline": (lambda w: w.declared_pipeline(), "declared_pipeline"),
    "reset": (lambda w: w.reset("go", seed=7, init_state=2), "reset:go:7:2"),
    "act": (lambda w: w.act({}), "act"),
    "drain_events": (lambda w: w.drain_events(), "drain_events"),
    "episode_end": (lambda w: w.episode_end(True), "episode_end:True"),
    "episode_stats": (lambda w: w.episode_stats(), "episode_stats"),
    "fork": (lambda w: w.fork(), "fork"),
    "act_batch": (lambda w: type(w).act_batch([w, w.fork()], [{}, {}]), "act_batch:2"),
    "close": (lambda w: w.close(), "close"),
}


#: What a wrapper deliberately does not pass on (and why): nothing else.
NOT_DELEGATED = {("PipelinedPolicy", "declared_pipeline")}  # resolved into its own pipeline


def test_the_call_table_covers_the_contract() -> None:
    assert sorted(CALLS) == public_members()


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
@pytest.mark.parametrize("member", sorted(CALLS))
def test_each_wrapper_passes_each_member_to_inner(wrapper: str, member: str) -> None:
    probe = Probe()
    wrapped = WRAPPERS[wrapper](probe)
    call, logged = CALLS[member]
    answer = call(wrapped)
    if logged is not None and (wrapper, member) not in NOT_DELEGATED:
        assert logged in probe.log, f"{wrapper}.{member} did not reach the inner policy (log: {probe.log})"
    expected = {
        "name": "probe", "cameras": ("base_0_rgb",), "needs_privileged_state": True,
        "declared_pipeline": None if wrapper == "PipelinedPolicy" else DECLARED,  # resolved into its pipeline
        "drain_events": ["probe-event"], "episode_stats": {"probe_queries": 3},
    }
    if member in expected:
        assert answer == expected[member]
    if member == "identity":
        assert answer["probe"] == 1
    if member == "fork":
        assert type(answer) is type(wrapped) and answer is not wrapped and answer.inner is not probe


def test_find_in_chain_walks_wrappers() -> None:
    probe = Probe()
    recorder = RawOutputRecorder(probe)
    chain = PipelinedPolicy(recorder, NONE)
    assert find_in_chain(chain, RawOutputRecorder) is recorder and find_in_chain(chain, Probe) is probe
    assert find_in_chain(probe, RawOutputRecorder) is None


# --- the combination that broke: a checkpoint's declared pipeline under record.raw_outputs --------

def checkpoint_cfg(path: Path) -> dict[str, Any]:
    return {**yaml.safe_load((ROOT / "conf" / "policy" / "checkpoint.yaml").read_text()), "path": str(path),
            "device": "cpu"}


def test_a_recorded_checkpoint_keeps_its_declared_pipeline(reference_checkpoints) -> None:
    cfg = checkpoint_cfg(reference_checkpoints["tokens"])
    plain = build_policy(cfg, NONE)
    recorded = build_policy(cfg, NONE, record_raw=True)
    assert isinstance(recorded, PipelinedPolicy) and isinstance(recorded.inner, RawOutputRecorder)
    assert recorded.identity() == plain.identity()
    assert recorded.identity()["pipeline_source"] == {"decoder": "declared", "normalize": "declared",
                                                      "convert": "declared"}
    protocol = load_protocol_named("openpi")
    observations = [example_observation(protocol, plain, seed=i) for i in range(2)]
    for policy in (plain, recorded):
        policy.reset("open the drawer", seed=3)
    expected = [plain.act(o) for o in observations]
    actions = [recorded.act(o) for o in observations]
    for got, want in zip(actions, expected):
        assert got.shape == (10, 7) and np.array_equal(got, want)  # decoded, unnormalized, converted
    raw = [decode_output(r) for r in take_raw_outputs(recorded)]
    assert [r.dtype.kind for r in raw] == ["i", "i"] and raw[0].ndim == 1  # the model's own token ids
    check_policy(build_policy(cfg, NONE, record_raw=True), "openpi")
