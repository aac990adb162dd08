"""``evalharness bench --serve``: requests/s and latency of ``evalharness serve``, batched vs not.

For each number of concurrent sessions (``--sessions``, default 1, 2, 4, 8) and each
server setting (``serve.max_batch=--max-batch`` against ``max_batch=1``, the baseline
measured in the same run), a fresh ``evalharness serve`` process serves the policy chosen
by the Hydra overrides after ``--`` (e.g. ``-- policy=checkpoint policy.path=DIR``). The
default is what issue 9 measures, a model whose forward pass batching can share: the
reference network with random weights (``evalharness checkpoint init DIR --seed 0``),
written into a temporary folder for the benchmark. Every session sends ``--queries`` act requests
one after another, each a real MinT request (three 224 px PNGs, prefix tokens, state)
built once per session so that the figures measure the server, not the client's PNG
encoding; latency is one act + retrieve_future round trip. The first query of each
session is a warm-up (lazy model loading) and is not counted.

Printed as a table; ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from evalharness.errors import UserInputError

#: The seed of the default policy's random reference checkpoint (fixed: every bench serves the same model).
REFERENCE_SEED = 0
DEFAULT_POLICY_LABEL = f"the reference checkpoint (checkpoint init --seed {REFERENCE_SEED}, random weights)"


def default_policy(directory: Path) -> list[str]:
    """Overrides serving the reference checkpoint, written now into ``directory``."""
    from evalharness.models.reference_checkpoint import write_reference_checkpoint

    path = write_reference_checkpoint(directory / "reference-checkpoint", seed=REFERENCE_SEED)
    return ["policy=checkpoint", f"policy.path={path}"]


def _sessions(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or any(v < 1 or v > 64 for v in values):
        raise UserInputError(f"--sessions {text!r} is not valid; allowed: comma-separated integers in 1..64, e.g. 1,2,4,8")
    return values


def _request(seed: int) -> dict[str, Any]:
    """One act body: a synthetic scene (noise images, zero right wrist) and a prompt."""
    from evalharness.transports.mint import wire
    from evalharness.transports.mint.prompt import PromptCodec

    rng = np.random.default_rng(seed)
    images = {cam: rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8) for cam in wire.CAMERA_ORDER}
    images["right_wrist_0_rgb"][:] = 0
    state = rng.uniform(-0.5, 0.5, size=8).astype(np.float32)
    tokens = PromptCodec(None).encode("put the bowl on the plate", state).tokens
    observation = wire.Observation(model_input=wire.ModelInput(chunks=wire.observation_chunks(images, tokens)),
                                   state=wire.RequestTensor.of(state))
    return wire.ActRequest(observation=observation).model_dump(mode="json")


def _measure(url: str, sessions: int, queries: int) -> dict[str, Any]:
    from evalharness.transports.mint.client import API, MintClient, Retries, Timeouts
    from evalharness.transports.mint.policy import session_id_for

    latencies: list[float] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(sessions + 1)
    lock = threading.Lock()

    def client(seed: int) -> None:
        mint = MintClient(url, None, Timeouts(read=300.0, future=600.0), Retries(max_retries=0))
        session = None
        try:
            body = _request(seed)
            answer = mint.post_json(f"{API}/mint/action_sessions", {"session_id": session_id_for(seed),
                                                                    "base_model": "bench", "model_path": "local://bench"})
            session = answer["action_session_id"]
            mint.submit(f"{API}/mint/action_sessions/{session}/act", body)  # warm-up
            barrier.wait(timeout=600)
            mine = []
            for _ in range(queries):
                start = time.perf_counter()
                mint.submit(f"{API}/mint/action_sessions/{session}/act", body)
                mine.append(1000.0 * (time.perf_counter() - start))
            with lock:
                latencies.extend(mine)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
            barrier.abort()
        finally:
            if session is not None:
                mint.delete(f"{API}/mint/action_sessions/{session}")
            mint.close()

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(sessions)]
    for thread in threads:
        thread.start()
    before = httpx.get(f"{url}{API}/evalharness/status").json()
    barrier.wait(timeout=600)
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"a bench session failed: {errors[0]}")
    after = httpx.get(f"{url}{API}/evalharness/status").json()
    batches = max(1, after["batches"] - before["batches"])
    return {
        "sessions": sessions,
        "requests": len(latencies),
        "requests_per_s": len(latencies) / wall,
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
        "mean_batch": (after["queries"] - before["queries"]) / batches,
    }


def _measure_all(overrides: list[str], sessions: list[int], args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row per (max_batch, sessions), each against a fresh server (no state carried between rows)."""
    from evalharness.commands.serve import compose
    from evalharness.engine.policy_server import PolicyServer

    rows: list[dict[str, Any]] = []
    for max_batch in (args.max_batch, 1):
        config = compose([*overrides, f"serve.max_batch={max_batch}", f"serve.max_wait_ms={args.max_wait_ms}"])
        for count in sessions:
            server = PolicyServer(config)
            try:
                rows.append({"max_batch": max_batch, **_measure(server.url, count, args.queries)})
            finally:
                server.stop()
    return rows


def run(args: argparse.Namespace) -> int:
    sessions = _sessions(args.sessions)
    if args.queries < 1 or args.max_batch < 2:
        raise UserInputError(f"--queries {args.queries} / --max-batch {args.max_batch} not valid; allowed: queries >= 1, "
                             "max-batch >= 2 (it is compared with max_batch=1)")
    with tempfile.TemporaryDirectory(prefix="evalharness-bench-serve-") as scratch:
        overrides = list(args.overrides) if args.overrides else default_policy(Path(scratch))
        label = " ".join(overrides) if args.overrides else DEFAULT_POLICY_LABEL
        rows = _measure_all(overrides, sessions, args)
    print(f"evalharness serve: {label}; {args.queries} queries per session, max_wait_ms {args.max_wait_ms}")
    print(f"  {'sessions':>8}  {'max_batch':>9}  {'req/s':>8}  {'p50 ms':>8}  {'p95 ms':>8}  {'mean batch':>10}")
    for row in rows:
        print(f"  {row['sessions']:>8}  {row['max_batch']:>9}  {row['requests_per_s']:8.1f}  {row['latency_p50_ms']:8.1f}  "
              f"{row['latency_p95_ms']:8.1f}  {row['mean_batch']:10.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"policy": label, "queries": args.queries, "max_wait_ms": args.max_wait_ms, "rows": rows},
                      handle, indent=2)
    return 0
