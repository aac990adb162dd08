"""``policy=mint`` in real LIBERO episodes against ``evalharness serve`` on 127.0.0.1.

The same episodes run with the policy in-process and through the MinT client must give
identical action fingerprints. The server validates strictly and a recording middleware
checks every request (PNG size, camera order, prefix-token limit, state shape). The API
key used must appear in no output file and in nothing printed; sessions must all be
deleted after normal, failed and interrupted episodes; ``runner.retry_errors=true``
reruns ``policy_unavailable`` episodes.

The served policy is a parameter (:data:`POLICIES`): any deterministic harness policy
whose in-process and served runs must agree. Among them the reference checkpoint (random
weights, seed 0, what ``evalharness checkpoint init DIR --seed 0`` writes): ``policy=checkpoint``
in-process, the same through ``policy=mint`` against ``evalharness serve`` of it, and with
``runner.policy_server=auto`` and 2 workers give identical action fingerprints (issues 8
and 9). Every served policy costs three CLI runs (in-process, ``policy=mint``, ``auto``), so
the list holds only the checkpoint, which covers the most (tokens decoded by the server,
the checkpoint's declared stages split between server and client); the client's faults,
interruptions and retries do not depend on the served policy and run against one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx
import pytest

from evalharness.commands.serve import compose
from evalharness.transports.mint.server import ServerThread, build_service, create_app
from mint_testing import Fault, Recorder, check_act_request, train_sentencepiece

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

SECRET = "sk-test-secret"


class Choice(NamedTuple):
    """How a test policy is chosen: ``policy`` overrides (served as is, and run in-process)
    and the pipeline overrides ``policy=mint`` needs on the client side to match (the stages
    after decoding, e.g. ``normalize=quantile normalize.stats_path=DIR/norm_stats.json`` for
    a checkpoint that declares them)."""

    policy: list[str]
    client: list[str]


def _checkpoint(checkpoints: dict[str, Path]) -> Choice:
    """The reference network's token checkpoint (conftest's ``reference_checkpoints``, seed 0).
    Served, it decodes its tokens with its declared decoder; the client unnormalizes with the
    checkpoint's stats (and converts as declared, like every stage the client leaves at none)."""
    path = checkpoints["tokens"]
    return Choice(["policy=checkpoint", f"policy.path={path}", "policy.device=cpu"],
                  ["normalize=quantile", f"normalize.stats_path={path / 'norm_stats.json'}"])


#: name -> (reference checkpoints -> Choice), e.g.
#: "random": lambda checkpoints: Choice(["policy=random", "policy.horizon=10"], [])
POLICIES: dict[str, Callable[[dict[str, Path]], Choice]] = {
    "checkpoint": _checkpoint,
}
#: The served policy of the tests of the client's own behaviour (faults, Ctrl-C, retries).
CLIENT_TESTS = pytest.mark.parametrize("served", ["checkpoint"], indirect=True)
EPISODES = ["suite=libero_spatial", "suite.tasks=[0]", "suite.episodes_per_task=2", "suite.max_steps=10",
            "camera_size=64", "runner.workers=0"]


def _cli(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("MINT_API_KEY", "TINKER_API_KEY")}
    full_env.update(MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"), **env)
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def _ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]


def _fingerprints(run_dir: Path) -> dict[tuple[int, int], str]:
    return {(r["task_index"], r["init_state"]): r["action_fingerprint"] for r in _records(run_dir)}


def _open_sessions(url: str) -> dict[str, int]:
    return httpx.get(f"{url}/api/v1/evalharness/status", headers={"X-API-Key": SECRET}).json()["open_sessions"]


def _mint_args(url: str, tokenizer: Path, name: str, client: list[str] | None = None) -> list[str]:
    return ["policy=mint", f"policy.base_url={url}", f"policy.model_path=local://{name}", "policy.state_space=raw",
            f"policy.tokenizer={tokenizer}", "policy.timeouts.read=20", "policy.timeouts.future=60", *(client or [])]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Path:
    return train_sentencepiece(tmp_path_factory.mktemp("sp"))


@pytest.fixture(scope="module", params=sorted(POLICIES))
def served(request, tokenizer, reference_checkpoints):
    """(policy name, its Choice, recorder, server) for a served policy that requires the key."""
    choice = POLICIES[request.param](reference_checkpoints)
    config = compose([*choice.policy, f"serve.tokenizer={tokenizer}"])
    service = build_service(config, api_key=SECRET)
    recorder = Recorder(create_app(service))
    with ServerThread(recorder) as server:
        yield request.param, choice, recorder, server
    service.close()


@pytest.fixture(scope="module")
def runs(served, tokenizer, tmp_path_factory):
    """The same episodes in-process and through policy=mint (with MINT_API_KEY set)."""
    name, choice, recorder, server = served
    base = tmp_path_factory.mktemp(f"runs-{name}")
    inprocess, remote = base / "inprocess", base / "mint"
    _ok(_cli([*EPISODES, *choice.policy, "video=none", f"output_dir={inprocess}"], base))
    result = _cli([*EPISODES, *_mint_args(server.url, tokenizer, name, choice.client), "video=all",
                   f"output_dir={remote}"], base,
                  MINT_API_KEY=SECRET)
    _ok(result)
    return inprocess, remote, result


def test_served_episodes_equal_in_process_ones(runs) -> None:
    inprocess, remote, _ = runs
    expected = _fingerprints(inprocess)
    assert len(expected) == 2 and all(expected.values())
    assert _fingerprints(remote) == expected
    for record in _records(remote):
        assert record["error_kind"] is None and record["steps"] == 10
        stats = record["policy_stats"]
        assert stats["queries"] == 2  # 10 steps, 5 executed per chunk
        assert 0 < stats["round_trip_p50_ms"] <= stats["round_trip_p95_ms"]
        assert stats["server_infer_p50_ms"] > 0


def test_policy_server_auto_with_2_workers_equals_the_in_process_run(runs, served, tmp_path) -> None:
    """One serve process for the run; 2 worker processes query it; same episodes."""
    name, choice, _, _ = served
    inprocess, _, _ = runs
    out = tmp_path / "auto"
    args = [*EPISODES, *choice.policy, "video=none", "runner.policy_server=auto", "runner.workers=2",
            "serve.max_batch=4", f"output_dir={out}"]
    _ok(_cli(args, tmp_path))
    assert _fingerprints(out) == _fingerprints(inprocess)
    records = _records(out)
    assert all(r["error_kind"] is None and r["policy_stats"]["queries"] == 2 for r in records)
    identity = json.loads((out / "summary.json").read_text())["metadata"]["policy"]
    assert identity["policy_server"] == {"mode": "auto", "protocol": "mint", "max_batch": 4, "state_space": "raw",
                                         "max_sessions": 64, "session_ttl_s": 600.0}
    assert identity["name"] == json.loads((inprocess / "summary.json").read_text())["metadata"]["policy"]["name"]


def test_every_request_was_well_formed(runs, served) -> None:
    _, _, recorder, _ = served
    acts = recorder.of("act")
    assert len(acts) >= 4
    for request in acts:
        check_act_request(request["json"])
        assert request["api_key"] == SECRET
    creates = recorder.of("create")
    assert all(c["json"]["model_path"].startswith("local://") and ":seed=" in c["json"]["session_id"] for c in creates)


def test_sessions_are_deleted_after_normal_episodes(runs, served) -> None:
    _, _, recorder, server = served
    assert len(recorder.of("delete")) >= 2
    assert _open_sessions(server.url) == {"action": 0, "sampling": 0}


def test_the_key_reaches_no_output_file_and_nothing_printed(runs) -> None:
    _, remote, result = runs
    assert SECRET not in result.stdout and SECRET not in result.stderr
    files = [p for p in remote.rglob("*") if p.is_file()]
    assert any(p.suffix == ".mp4" for p in files) and any(p.name == "run.json" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_the_identity_records_the_split_and_never_the_key(runs, tokenizer) -> None:
    _, remote, _ = runs
    identity = json.loads((remote / "summary.json").read_text())["metadata"]["policy"]
    assert identity["name"] == "mint" and identity["state_space"] == "raw"
    assert "client: unnormalize" in identity["split"]
    assert len(identity["prompt"]["tokenizer_sha256"]) == 64
    assert "base_url" not in json.dumps(identity) and "127.0.0.1" not in json.dumps(identity)


def test_a_wrong_key_is_refused(served) -> None:
    _, _, _, server = served
    answer = httpx.post(f"{server.url}/api/v1/mint/action_sessions", headers={"X-API-Key": "sk-wrong"},
                        json={"session_id": "s", "base_model": "b", "model_path": "local://x"})
    assert answer.status_code == 401 and "sk-wrong" not in answer.text


@CLIENT_TESTS
def test_failed_episodes_delete_their_sessions_and_unavailable_ones_rerun(served, tokenizer, tmp_path) -> None:
    """First run: the server fails the first episode's query (200 with error: policy_error) and
    every create of the second one (HTTP 500: policy_unavailable). A resume with
    runner.retry_errors=true reruns both, and they get verdicts."""
    name, choice, recorder, server = served
    out = tmp_path / "run"
    args = [*EPISODES, *_mint_args(server.url, tokenizer, name, choice.client), "video=none", f"output_dir={out}",
            "policy.retries.max_retries=1", "policy.retries.backoff_s=0.01"]
    recorder.inject(Fault("retrieve", status=200, body={"error": "Future expired", "category": "system"}),
                    Fault("create"), Fault("create", status=500, body={"detail": "down"}),
                    Fault("create", status=500, body={"detail": "down"}))
    _ok(_cli(args, tmp_path, MINT_API_KEY=SECRET))
    kinds = sorted(r["error_kind"] for r in _records(out))
    assert kinds == ["policy_error", "policy_unavailable"], kinds
    assert _open_sessions(server.url) == {"action": 0, "sampling": 0}
    assert not recorder.faults

    _ok(_cli([*args, "runner.retry_errors=true"], tmp_path, MINT_API_KEY=SECRET))
    records = _records(out)
    assert len(records) == 4 and all(r["error_kind"] is None for r in records[2:])
    assert _open_sessions(server.url) == {"action": 0, "sampling": 0}


@CLIENT_TESTS
def test_an_interrupted_run_deletes_its_session(served, tokenizer, tmp_path) -> None:
    name, choice, recorder, server = served
    before = len(recorder.of("act"))
    recorder.inject(Fault("act", hang_s=30.0, status=500, body={"detail": "never"}))  # the episode stays in flight
    args = [*EPISODES, *_mint_args(server.url, tokenizer, name, choice.client), "video=none",
            f"output_dir={tmp_path / 'run'}"]
    env = {k: v for k, v in os.environ.items() if k not in ("MINT_API_KEY", "TINKER_API_KEY")}
    proc = subprocess.Popen([sys.executable, "-m", "evalharness", *args], cwd=tmp_path, env={**env, "MINT_API_KEY": SECRET},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(recorder.of("act")) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _open_sessions(server.url)["action"] == 1
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    deadline = time.monotonic() + 10
    while _open_sessions(server.url)["action"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _open_sessions(server.url) == {"action": 0, "sampling": 0}
