"""``policy=openpi`` in real LIBERO episodes against a websocket server on 127.0.0.1 that
speaks openpi's protocol with the real ``openpi_client`` codec (tests/openpi_server.py).

- the actions executed through the server are identical (fingerprint) to running the
  served policy in-process; the query, its images and state are exactly openpi's;
- a connection dropped mid-episode is reconnected and the episode finishes identically;
- a server that stays down, or never answers, ends the episode as ``policy_unavailable``
  within its bound; a text frame is ``policy_error``; malformed replies get their kinds;
- an API key reaches the server's header and no output file or printed line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from envs.libero.catalog import get_task
from evalharness.plan.spec import EpisodeSpec
from evalharness.transports.openpi.policy import OpenpiPolicy
from evalharness.config.protocol import load_protocol
from evalharness.episode.rollout import RolloutSettings, run_episode
from openpi_server import ObservationPolicy, OpenpiTestServer

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

ROOT = Path(__file__).resolve().parents[1]
SUITE, TASK, STEPS = "libero_object", 0, 15  # three queries of 5 executed actions
FAST = {"reconnects": 2, "backoff_s": 0.05, "backoff_max_s": 0.2, "open_timeout_s": 3, "infer_timeout_s": 10}


@pytest.fixture(scope="module")
def env():
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(SUITE, TASK, camera_size=64)  # openpi's preprocessing resizes to 224 anyway
    yield env
    env.close()


@pytest.fixture(scope="module")
def settings() -> RolloutSettings:
    protocol = load_protocol(yaml.safe_load((ROOT / "conf/protocol/openpi.yaml").read_text()))
    return RolloutSettings.from_protocol(protocol, SUITE, max_steps=STEPS)


@pytest.fixture(scope="module")
def spec() -> EpisodeSpec:
    task = get_task(SUITE, TASK)
    return EpisodeSpec(SUITE, TASK, task.name, task.instruction, 0, 7, "ctx")


@pytest.fixture(scope="module")
def direct(env, settings, spec):
    """The served policy run in-process: the reference outcome."""
    return run_episode(env, ObservationPolicy(), spec, settings)


@pytest.fixture
def server():
    server = OpenpiTestServer(ObservationPolicy())
    yield server
    server.stop()


def _remote(env, settings, spec, server, **overrides):
    policy = OpenpiPolicy(port=server.port, **{**FAST, **overrides})
    try:
        return run_episode(env, policy, spec, settings), policy
    finally:
        policy.close()


def test_actions_through_the_server_are_identical_to_the_policy_run_directly(env, settings, spec, direct, server) -> None:
    assert direct.error_kind is None and direct.steps == STEPS
    outcome, _ = _remote(env, settings, spec, server)
    assert server.errors == []  # every query was exactly openpi's LIBERO element
    assert outcome.error_kind is None, outcome.error_message
    assert (outcome.action_fingerprint, outcome.steps, outcome.success) == (direct.action_fingerprint, direct.steps, direct.success)
    stats = outcome.policy_stats
    assert stats["queries"] == 3 and stats["reconnects"] == 0
    assert 0 < stats["rtt_p50_ms"] <= stats["rtt_p95_ms"]
    assert stats["policy_infer_p50_ms"] == 1.5 and stats["server_infer_p50_ms"] > 0
    assert server.connections == 1 and server.queries == 3


def test_identity_holds_the_server_metadata(server) -> None:
    server.metadata = {"env": "LIBERO", "nested": {"horizon": 8}, "api_key": "leaked-by-server"}
    policy = OpenpiPolicy(port=server.port, label="pi05_libero@30000", **FAST)
    identity = policy.identity()
    policy.close()
    assert identity == {"name": "openpi", "uri": f"ws://127.0.0.1:{server.port}", "label": "pi05_libero@30000",
                        "server_metadata": {"env": "LIBERO", "nested": {"horizon": 8}, "api_key": "<redacted>"}}


def test_bad_settings_are_one_line_naming_key_and_rule() -> None:
    from evalharness.errors import UserInputError

    with pytest.raises(UserInputError, match=r"^policy.prot is not a setting; allowed: host, port, api_key_env"):
        OpenpiPolicy(prot=1)
    with pytest.raises(UserInputError, match=r"^policy.infer_timeout_s=0 is not valid: input should be greater than 0$"):
        OpenpiPolicy(infer_timeout_s=0)


def test_a_server_down_when_the_run_starts_is_one_error_line() -> None:
    from evalharness.errors import UserInputError

    server = OpenpiTestServer(ObservationPolicy())
    server.stop()
    with pytest.raises(UserInputError) as caught:
        OpenpiPolicy(port=server.port, **FAST).identity()
    message = str(caught.value)
    assert "\n" not in message and f"cannot use the policy server at ws://127.0.0.1:{server.port}" in message
    assert "Connection refused" in message and "serve_policy.py" in message


def test_credentials_in_a_uri_stay_out_of_the_identity_and_forks_share_no_socket(server) -> None:
    policy = OpenpiPolicy(host=f"ws://user:hunter2@127.0.0.1:{server.port}", port=None, **FAST)
    assert policy.identity()["uri"] == f"ws://127.0.0.1:{server.port}"
    fork = policy.fork()
    assert fork.settings == policy.settings and fork._ws is None and policy._ws is not None
    policy.close()


def test_a_server_restarted_with_another_policy_is_a_policy_error(env, settings, spec, server) -> None:
    policy = OpenpiPolicy(port=server.port, **FAST)
    policy.identity()  # connected: metadata {"env": "LIBERO", ...}
    server.metadata = {"env": "LIBERO", "action_horizon": 10}
    server.fault = "drop_after:1"  # the open connection goes away; the reconnect meets the new metadata
    outcome = run_episode(env, policy, spec, settings)
    policy.close()
    assert outcome.error_kind == "policy_error" and "metadata changed on reconnect" in outcome.error_message


def test_a_connection_dropped_mid_episode_is_reconnected(env, settings, spec, direct, server) -> None:
    server.fault = "drop_after:2"  # the second query of the first connection is never answered
    outcome, policy = _remote(env, settings, spec, server)
    assert outcome.error_kind is None, outcome.error_message
    assert outcome.action_fingerprint == direct.action_fingerprint
    assert outcome.policy_stats["reconnects"] == 1 and outcome.policy_stats["queries"] == 3
    assert server.connections == 2


def test_a_server_that_stays_down_is_policy_unavailable(env, settings, spec) -> None:
    server = OpenpiTestServer(ObservationPolicy())
    port = server.port
    server.stop()  # nothing listens on the port any more
    start = time.monotonic()
    policy = OpenpiPolicy(port=port, **FAST)
    outcome = run_episode(env, policy, spec, settings)
    assert time.monotonic() - start < 10  # settle steps + 2 short backoffs
    assert outcome.error_kind == "policy_unavailable" and outcome.steps == 0
    assert "unreachable after 2 reconnect(s)" in outcome.error_message
    assert outcome.policy_stats["reconnects"] == 2


def test_a_server_that_never_answers_is_policy_unavailable_after_its_timeout(env, settings, spec, server) -> None:
    server.fault = "hang"
    start = time.monotonic()
    outcome, _ = _remote(env, settings, spec, server, infer_timeout_s=1.0)
    assert time.monotonic() - start < 8
    assert outcome.error_kind == "policy_unavailable" and "did not answer within 1 s" in outcome.error_message
    assert server.queries == 1  # a timeout is not retried


def test_a_text_frame_is_a_policy_error_with_the_exception_line(env, settings, spec, server) -> None:
    server.fault = "error"
    outcome, _ = _remote(env, settings, spec, server)
    assert outcome.error_kind == "policy_error"
    assert outcome.error_message == "openpi server error: RuntimeError: model exploded: out of memory"


@pytest.mark.parametrize(("fault", "kind", "words"), [
    ("missing_actions", "policy_error", "has no 'actions'"),
    ("wrong_shape", "invalid_action", "shape (8, 5)"),
    ("nan", "invalid_action", "non-finite value at step 1, dim 2"),
])
def test_malformed_replies_get_their_error_kinds(env, settings, spec, server, fault, kind, words) -> None:
    server.fault = fault
    outcome, _ = _remote(env, settings, spec, server)
    assert outcome.error_kind == kind and words in outcome.error_message, outcome.error_message


def test_a_wrong_api_key_is_not_retried(env, settings, spec, monkeypatch) -> None:
    server = OpenpiTestServer(ObservationPolicy(), api_key="sk-right")
    monkeypatch.setenv("OPENPI_API_KEY", "sk-wrong")
    try:
        outcome, _ = _remote(env, settings, spec, server)
    finally:
        server.stop()
    assert outcome.error_kind == "policy_unavailable"
    assert "HTTP 401 (check OPENPI_API_KEY)" in outcome.error_message and "sk-wrong" not in outcome.error_message
    assert server.authorizations == ["Api-Key sk-wrong"]


# ----- the evalharness command ------------------------------------------------------------------------------

SECRET = "sk-test-secret"


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": pythonpath, **env})


def test_an_api_key_reaches_the_server_and_no_output(tmp_path: Path) -> None:
    server = OpenpiTestServer(ObservationPolicy(), api_key=SECRET)
    out = tmp_path / "run"
    args = [f"suite={SUITE}", f"suite.tasks=[{TASK}]", "suite.episodes_per_task=1", "suite.max_steps=10",
            "camera_size=64", "policy=openpi", f"policy.port={server.port}", "policy.label=test-checkpoint",
            "runner.workers=0", "video=all", "record.raw_outputs=true", f"output_dir={out}"]
    try:
        proc = _cli(args, tmp_path, OPENPI_API_KEY=SECRET)
        wrong = _cli([*args[:-1], f"output_dir={tmp_path / 'wrong'}"], tmp_path, OPENPI_API_KEY="sk-wrong-secret")
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the parent connected for the identity, then the runner for the episode, each with the key
    assert server.authorizations.count(f"Api-Key {SECRET}") == 2 and server.errors == []
    record = json.loads((out / "episodes.jsonl").read_text())
    assert record["error_kind"] is None and record["policy_stats"]["queries"] == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metadata"]["policy"]["server_metadata"] == server.metadata
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".mp4" for p in files) and (out / "raw_outputs.jsonl").exists()
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in proc.stdout + proc.stderr
    # its raw outputs (the returned chunks) replay to the very same actions, with no server
    replay = tmp_path / "replay"
    assert _cli([*args[:6], "policy=replay", f"policy.from_run={out}", "runner.workers=0", "video=none",
                 f"output_dir={replay}"], tmp_path).returncode == 0
    assert json.loads((replay / "episodes.jsonl").read_text())["action_fingerprint"] == record["action_fingerprint"]
    # a wrong key: one line before any episode, naming the variable, not the key
    assert wrong.returncode == 2
    lines = [line for line in wrong.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "HTTP 401 (check OPENPI_API_KEY)" in lines[0], wrong.stderr
    assert "sk-wrong-secret" not in wrong.stdout + wrong.stderr
