"""Batching across sessions in ``evalharness serve``: concurrent clients' queries share one
``act_batch`` call, and each session's answers equal its unbatched (``max_batch=1``) and
in-process answers, because each session's fork keeps its own random state.

The served policy is a parameter: ``random`` (the default ``act_batch``, a loop), a
``random`` whose ``act_batch`` draws for all forks in one call, and the reference checkpoint
sampling its tokens (``temperature=1``: one forward pass for the batch, each fork sampling
from its own generator), whose in-process equality the episode tests show.
"""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

from evalharness.commands.serve import compose
from evalharness.transports.mint.policy import MintPolicy
from evalharness.transports.mint.server import ServerThread, build_service, create_app
from evalharness.policies.baselines import RandomPolicy
from mint_testing import BatchedRandomPolicy, observation

SESSIONS, QUERIES = 4, 5
POLICIES = {
    "random": ["policy=random", "policy.horizon=10"],
    "batched_random": ["policy=random", "policy.horizon=10", "policy._target_=mint_testing.BatchedRandomPolicy"],
    "sampled_checkpoint": ["policy=checkpoint", "policy.device=cpu", "policy.temperature=1.0"],  # + policy.path
}


def _serve_and_query(overrides: list[str], max_batch: int) -> tuple[dict[int, list[np.ndarray]], dict]:
    """Each of SESSIONS concurrent clients (seed = its index) asks QUERIES times."""
    service = build_service(compose([*overrides, f"serve.max_batch={max_batch}", "serve.max_wait_ms=50"]))
    answers: dict[int, list[np.ndarray]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(SESSIONS)
    with ServerThread(create_app(service)) as server:

        def client(seed: int) -> None:
            policy = MintPolicy("local://p", base_url=server.url, state_space="raw",
                                timeouts={"read": 20.0, "future": 60.0})
            try:
                policy.reset("put the bowl on the plate", seed=seed)
                start.wait(timeout=30)
                answers[seed] = [policy.act(observation(seed * 10 + q)) for q in range(QUERIES)]
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                policy.close()

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(SESSIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        status = httpx.get(f"{server.url}/api/v1/evalharness/status").json()
    service.close()
    assert not errors, errors
    return answers, status


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_batched_answers_equal_unbatched_and_in_process_ones(name, reference_checkpoints) -> None:
    BatchedRandomPolicy.batch_sizes.clear()
    overrides = POLICIES[name]
    if name == "sampled_checkpoint":
        overrides = [*overrides, f"policy.path={reference_checkpoints['tokens']}"]
    batched, status = _serve_and_query(overrides, max_batch=8)
    unbatched, single = _serve_and_query(overrides, max_batch=1)
    assert status["queries"] == single["queries"] == SESSIONS * QUERIES
    assert status["batches"] < SESSIONS * QUERIES, "concurrent queries were never batched"
    assert single["batches"] == SESSIONS * QUERIES
    assert status["serve"]["max_batch"] == 8 and single["serve"]["max_batch"] == 1
    assert status["open_sessions"] == {"action": 0, "sampling": 0}
    for seed in range(SESSIONS):
        for got_batched, got_single in zip(batched[seed], unbatched[seed], strict=True):
            np.testing.assert_array_equal(got_batched, got_single)  # the checkpoint's: same tokens, decoded
        if name == "sampled_checkpoint":
            continue
        reference = RandomPolicy(horizon=10)
        reference.reset("x", seed=seed)
        expected = [reference.act({}) for _ in range(QUERIES)]
        for got_batched, got_single, want in zip(batched[seed], unbatched[seed], expected, strict=True):
            np.testing.assert_array_equal(got_batched, want)
            np.testing.assert_array_equal(got_single, want)
    if name == "batched_random":
        assert max(BatchedRandomPolicy.batch_sizes) > 1


def test_bench_serve_measures_batched_against_unbatched(tmp_path, capsys) -> None:
    import argparse
    import json

    from evalharness.bench import serve

    out = tmp_path / "bench.json"
    args = argparse.Namespace(sessions="3", queries=2, max_batch=4, max_wait_ms=20.0, json=str(out), png_level=0,
                              overrides=["policy=zero", "policy.horizon=2"])
    assert serve.run(args) == 0
    figures = json.loads(out.read_text())
    assert [(r["max_batch"], r["sessions"], r["requests"]) for r in figures["rows"]] == [(4, 3, 6), (1, 3, 6)]
    assert all(r["requests_per_s"] > 0 and 0 < r["latency_p50_ms"] <= r["latency_p95_ms"] for r in figures["rows"])
    assert figures["rows"][1]["mean_batch"] == 1.0
    assert "max_batch" in capsys.readouterr().out


def test_bench_serve_serves_the_seeded_reference_checkpoint_by_default(tmp_path, reference_checkpoints) -> None:
    """Issue 9 measures a model whose forward pass batching shares: the default is the
    reference network, written with a fixed seed (the same weights as ``checkpoint init --seed 0``)."""
    from evalharness.bench import serve

    overrides = serve.default_policy(tmp_path)
    service = build_service(compose(overrides))
    try:
        identity = service.identity()["policy"]
    finally:
        service.close()
    assert identity["name"] == "checkpoint"
    reference = build_service(compose(["policy=checkpoint", f"policy.path={reference_checkpoints['tokens']}"]))
    try:
        assert identity["files_sha256"] == reference.identity()["policy"]["files_sha256"]
    finally:
        reference.close()


def test_bench_serve_prints_a_split_that_adds_up(tmp_path, capsys) -> None:
    import argparse
    import json

    from evalharness.bench import serve

    out = tmp_path / "bench.json"
    args = argparse.Namespace(sessions="1,2", queries=3, max_batch=2, max_wait_ms=5.0, json=str(out), png_level=1,
                              overrides=["policy=zero", "policy.horizon=2"])
    assert serve.run(args) == 0
    for row in json.loads(out.read_text())["rows"]:
        split = row["split_mean_ms"]
        assert set(split) == set(serve.PARTS) and all(v >= 0 for k, v in split.items() if k != "http")
        assert abs(sum(split.values()) - row["round_trip_mean_ms"]) < 0.05 * row["round_trip_mean_ms"] + 0.5
        assert row["overhead_p50_ms"] <= row["latency_p50_ms"]
    printed = capsys.readouterr().out
    assert "encode     http   decode     wait    model    reply" in printed and "p50 - model" in printed


def test_bench_soak_passes_against_serve_and_fails_on_a_5xx(tmp_path, capsys) -> None:
    import argparse
    import json

    from evalharness.bench import soak
    from mint_testing import Fault, Recorder

    out = tmp_path / "soak.json"
    args = argparse.Namespace(sessions="3", queries=6, max_batch=4, max_wait_ms=5.0, json=str(out), png_level=0,
                              soak=True, soak_seconds=120.0, overrides=["policy=zero", "policy.horizon=2"])
    assert soak.run(args) == 0
    figures = json.loads(out.read_text())
    assert figures["statuses"]["200"] >= 3 * 6 and not figures["problems"]
    assert sum(v for k, v in figures["statuses"].items() if k.startswith("4")) >= 3 * 2  # malformed ones, refused
    assert 0 < figures["rss_start_mb"] <= figures["rss_peak_mb"]
    assert "server RSS: start" in capsys.readouterr().out

    service = build_service(compose(["policy=zero"]))
    recorder = Recorder(create_app(service))
    with ServerThread(recorder) as running:
        recorder.inject(Fault("act", status=500, body={"detail": "boom"}))
        figures = soak.soak(running.url, 1, 4, 60.0, service.settings.max_body_bytes, 0, lambda: 0.0)
    service.close()
    assert figures["statuses"].get("500") == 1 and any("HTTP 500" in p for p in figures["problems"])
