"""``evalharness bench --serve``: requests/s and latency of ``evalharness serve``, batched vs not.

For each number of concurrent sessions (``--sessions``, default 1, 2, 4, 8) and each
server setting (``serve.max_batch=--max-batch`` against ``max_batch=1``, the baseline
measured in the same run), a fresh ``evalharness serve`` process serves the policy chosen
by the Hydra overrides after ``--`` (e.g. ``-- policy=checkpoint policy.path=DIR``). The
default is what issue 9 measures, a model whose forward pass batching can share: the
reference network with random weights (``evalharness checkpoint init DIR --seed 0``),
written into a temporary folder for the benchmark. Every session sends ``--queries`` act
requests one after another, each a real MinT request (three 224 px PNGs of a synthetic
scene, prefix tokens, state) encoded per query exactly as ``policy=mint`` encodes it;
latency is the whole round trip: encode, then act sent with ``Prefer: wait`` as
``policy=mint`` sends it (answered with the result; ``retrieve_future`` only if it was not
ready in time). The first query of each session is a warm-up (lazy model loading) and is
not counted.

Each query is split (issue 17): **encode** (the client's PNG + JSON), **http** (the two
POSTs as the client timed them, minus the server's own parts: transport, framing,
routing), and the server's ``server_timing``: **decode** (body, JSON, validation, PNG
decode), **wait** (queued until its batch ran), **model** (the forward pass), **reply**
(building the result). Their sum is printed next to the independently measured round
trip. "p50 - model" is the median of round trip minus model time: what the transport
costs beyond the model.

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


#: The per-query split ``bench --serve`` prints (ms): client encode, HTTP, then the server's parts.
PARTS = ("encode", "http", "decode", "wait", "model", "reply")


def _scene(rng: np.random.Generator) -> np.ndarray:
    """A synthetic 224 px camera image that compresses like a render: smooth gradients, a few
    flat objects, mild sensor noise (pure noise would be PNG's worst case, not a camera's)."""
    y, x = np.mgrid[0:224, 0:224].astype(np.float32)
    base = np.stack([x * rng.uniform(0.3, 1.0), y * rng.uniform(0.3, 1.0), (x + y) * rng.uniform(0.1, 0.5)], -1)
    for _ in range(4):
        cy, cx, r = rng.integers(20, 200, size=2).tolist() + [int(rng.integers(10, 40))]
        base[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0, 255, size=3)
    return np.clip(base + rng.normal(0, 2.0, base.shape), 0, 255).astype(np.uint8)


def _scenes(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, list[int]]:
    """A session's cameras (zero right wrist), state and prompt tokens."""
    from evalharness.transports.mint import wire
    from evalharness.transports.mint.prompt import PromptCodec

    rng = np.random.default_rng(seed)
    images = {cam: _scene(rng) for cam in wire.CAMERA_ORDER}
    images["right_wrist_0_rgb"][:] = 0
    state = rng.uniform(-0.5, 0.5, size=8).astype(np.float32)
    return images, state, PromptCodec(None).encode("put the bowl on the plate", state).tokens


def encode_act(images: dict[str, np.ndarray], state: np.ndarray, tokens: list[int], level: int = 0) -> bytes:
    """One act body, encoded as ``policy=mint`` encodes every query (PNGs at zlib ``level``, then JSON)."""
    from evalharness.transports.mint import wire

    chunks = wire.observation_chunks(images, tokens, level)
    observation = wire.Observation(model_input=wire.ModelInput(chunks=chunks),
                                   state=wire.RequestTensor.of(state))
    return wire.ActRequest(observation=observation).model_dump_json().encode()


def _request(seed: int) -> dict[str, Any]:
    """One act body (a synthetic scene, zero right wrist, a prompt), as a dict."""
    return json.loads(encode_act(*_scenes(seed)))


def _query(http: httpx.Client, session: str, images: dict[str, np.ndarray], state: np.ndarray,
           tokens: list[int], level: int = 0) -> dict[str, float]:
    """One query as policy=mint runs it, timed: encode, act, retrieve_future (until done)."""
    from evalharness.transports.mint.client import API

    start = time.perf_counter()
    body = encode_act(images, state, tokens, level)
    encoded = time.perf_counter()
    answer = http.post(f"{API}/mint/action_sessions/{session}/act", content=body,
                       headers={"Content-Type": "application/json", "Prefer": "wait=60"})  # as policy=mint asks
    answer.raise_for_status()
    result = answer
    while "wait" not in result.headers.get("preference-applied", ""):  # not answered in time: poll
        result = http.post(f"{API}/retrieve_future", json=answer.json())
        if result.status_code != 408:
            break
    result.raise_for_status()
    server = result.json()["server_timing"]
    end = time.perf_counter()
    posts = 1000.0 * (end - encoded)
    inside = server["decode_ms"] + server["wait_ms"] + server["model_ms"] + server["reply_ms"]
    return {"encode": 1000.0 * (encoded - start), "http": posts - inside, "decode": server["decode_ms"],
            "wait": server["wait_ms"], "model": server["model_ms"], "reply": server["reply_ms"],
            "round_trip": 1000.0 * (end - start)}


def _measure(url: str, sessions: int, queries: int, level: int = 0) -> dict[str, Any]:
    from evalharness.transports.mint.client import API
    from evalharness.transports.mint.policy import session_id_for

    samples: list[dict[str, float]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(sessions + 1)
    lock = threading.Lock()

    def client(seed: int) -> None:
        http = httpx.Client(base_url=url, timeout=httpx.Timeout(300.0))
        session = None
        try:
            scene = _scenes(seed)
            answer = http.post(f"{API}/mint/action_sessions", json={"session_id": session_id_for(seed),
                                                                    "model_path": "local://bench"})
            answer.raise_for_status()
            session = answer.json()["action_session_id"]
            _query(http, session, *scene, level=level)  # warm-up
            barrier.wait(timeout=600)
            mine = [_query(http, session, *scene, level=level) for _ in range(queries)]
            with lock:
                samples.extend(mine)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
            barrier.abort()
        finally:
            if session is not None:
                http.delete(f"{API}/mint/action_sessions/{session}")
            http.close()

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
    latencies = [q["round_trip"] for q in samples]
    overhead = [q["round_trip"] - q["model"] for q in samples]
    return {
        "sessions": sessions,
        "requests": len(latencies),
        "requests_per_s": len(latencies) / wall,
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
        "overhead_p50_ms": float(np.percentile(overhead, 50)),
        "split_mean_ms": {part: float(np.mean([q[part] for q in samples])) for part in PARTS},
        "round_trip_mean_ms": float(np.mean(latencies)),
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
                rows.append({"max_batch": max_batch, **_measure(server.url, count, args.queries, args.png_level)})
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
    print(f"evalharness serve: {label}; {args.queries} queries per session, max_wait_ms {args.max_wait_ms}, "
          f"PNG zlib level {args.png_level}")
    print(f"  {'sessions':>8}  {'max_batch':>9}  {'req/s':>8}  {'p50 ms':>8}  {'p95 ms':>8}  {'mean batch':>10}  "
          f"{'p50 - model':>11}")
    for row in rows:
        print(f"  {row['sessions']:>8}  {row['max_batch']:>9}  {row['requests_per_s']:8.1f}  {row['latency_p50_ms']:8.1f}  "
              f"{row['latency_p95_ms']:8.1f}  {row['mean_batch']:10.2f}  {row['overhead_p50_ms']:11.1f}")
    print("  per query, mean ms (client encode, HTTP, server decode, batch wait, model, reply; their sum; the round trip):")
    print(f"  {'sessions':>8}  {'max_batch':>9}  " + "  ".join(f"{part:>7}" for part in PARTS) + f"  {'sum':>7}  {'round trip':>10}")
    for row in rows:
        split = row["split_mean_ms"]
        print(f"  {row['sessions']:>8}  {row['max_batch']:>9}  " + "  ".join(f"{split[p]:7.1f}" for p in PARTS)
              + f"  {sum(split.values()):7.1f}  {row['round_trip_mean_ms']:10.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"policy": label, "queries": args.queries, "max_wait_ms": args.max_wait_ms, "rows": rows},
                      handle, indent=2)
    return 0
