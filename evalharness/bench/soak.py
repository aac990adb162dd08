"""``evalharness bench --serve --soak``: ``evalharness serve`` under load with hostile requests mixed in.

One ``evalharness serve`` process (127.0.0.1, a free port) serves the policy of the Hydra
overrides (default: the reference checkpoint, as ``bench --serve``). ``--sessions`` N
client threads each open a session and send ``--queries`` M real queries (encode, act,
retrieve_future), and after every ``MALFORMED_EVERY``-th query one malformed request from
:data:`MALFORMED` (corrupt and oversized images, a 10000 x 10000 PNG header, bodies over
``serve.max_body_mb``, bad JSON, unknown fields and routes); every
session is closed and reopened halfway (churn). A monitor samples the server's resident
memory every ``RSS_EVERY_S`` seconds.

Printed: requests/s (valid queries), latency p50/p95, every answer's status counted,
server RSS at start (after the warm-up), peak and end. It fails (exit code 1) if any
answer is a 5xx, a valid query fails, a malformed request is not refused with a 4xx, or
the server's memory keeps growing: end RSS above the warm-up RSS by more than
``RSS_GROWTH_MB``. Loops are bounded in count (N x M) and in time (``--soak-seconds``).
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import numpy as np

from evalharness.errors import UserInputError

MALFORMED_EVERY = 3
RSS_EVERY_S = 0.1
RSS_GROWTH_MB = 64.0
API = "/api/v1"


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(1 + 3 * min(width, 256)))) + chunk(b"IEND", b""))


def _with_image(body: dict[str, Any], data: str) -> bytes:
    changed = json.loads(json.dumps(body))
    changed["observation"]["model_input"]["chunks"][0]["data"] = data
    return json.dumps(changed).encode()


def malformed(body: dict[str, Any], max_body_bytes: int) -> list[tuple[str, str, bytes]]:
    """(name, route, raw body) of each hostile request; route "act" = the client's session."""
    rng = np.random.default_rng(0)
    typeless = json.loads(json.dumps(body))
    del typeless["observation"]["model_input"]["chunks"][3]["type"], typeless["observation"]["model_input"]["chunks"][3]["tokens"]
    return [
        ("random-bytes-image", "act", _with_image(body, base64.b64encode(rng.bytes(50_000)).decode())),
        ("10000px-png", "act", _with_image(body, base64.b64encode(_png_header(10000, 10000)).decode())),
        ("bad-base64", "act", _with_image(body, "%%%")),
        ("over-max-body", "act", b'{"x": "' + b"y" * (max_body_bytes + 1) + b'"}'),
        ("not-json", "act", b"\x00\xff{{{"),
        ("deep-nesting", "act", b"[" * 50_000 + b"]" * 50_000),
        ("typeless-chunk", "act", json.dumps(typeless).encode()),
        ("unknown-field", "act", json.dumps({**body, "top_k": 3}).encode()),
        ("long-model-path", "mint/action_sessions", json.dumps({"session_id": "s", "model_path": "m" * 5000}).encode()),
        ("unknown-route", "nowhere", b"{}"),
        ("unknown-request", "retrieve_future", b'{"request_id": "req-nope"}'),
    ]


class RssMonitor:
    """Samples a process's VmRSS (MB) in a thread: start, peak, end."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(RSS_EVERY_S):
            try:
                self.samples.append(self.rss())
            except OSError:
                return

    def __enter__(self) -> "RssMonitor":
        self.samples.append(self.rss())
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def soak(url: str, sessions: int, queries: int, seconds: float, max_body_bytes: int, png_level: int,
         rss: Callable[[], float]) -> dict[str, Any]:
    """Run the soak against ``url``; the figures (see the module docstring)."""
    from evalharness.bench.serve import _query, _scenes, encode_act
    from evalharness.transports.mint.policy import session_id_for

    statuses: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    problems: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    warm = threading.Barrier(sessions + 1)

    def note(status: int, what: str, expected: str) -> None:
        with lock:
            statuses[str(status)] += 1
            if status >= 500 or (expected == "ok" and status != 200) or (expected == "4xx" and not 400 <= status < 500):
                problems.append(f"{what}: HTTP {status}")

    def client(seed: int) -> None:
        http = httpx.Client(base_url=url, timeout=httpx.Timeout(120.0))
        scene = _scenes(seed)
        body = json.loads(encode_act(*scene, level=png_level))
        hostile = malformed(body, max_body_bytes)
        session = None
        try:
            def open_session() -> str:
                answer = http.post(f"{API}/mint/action_sessions", json={"session_id": session_id_for(seed),
                                                                        "model_path": "local://soak"})
                note(answer.status_code, "create a session", "ok")
                return answer.json()["action_session_id"]

            def valid_query() -> dict[str, float] | None:
                try:
                    timing = _query(http, session, *scene, level=png_level)
                except httpx.HTTPStatusError as exc:
                    note(exc.response.status_code, "a valid query", "ok")
                    return None
                note(200, "a valid query", "ok")
                return timing

            session = open_session()
            valid_query()  # warm-up
            warm.wait(timeout=600)
            for i in range(queries):
                if time.monotonic() > deadline:
                    break
                if i == queries // 2:  # churn: a new session halfway
                    note(http.delete(f"{API}/mint/action_sessions/{session}").status_code, "delete a session", "ok")
                    session = open_session()
                timing = valid_query()
                if timing is None:
                    continue
                with lock:
                    latencies.append(timing["round_trip"])
                if i % MALFORMED_EVERY == 0:
                    name, route, raw = hostile[(i // MALFORMED_EVERY + seed) % len(hostile)]
                    path = f"{API}/mint/action_sessions/{session}/act" if route == "act" else f"{API}/{route}"
                    try:
                        answer = http.post(path, content=raw, headers={"Content-Type": "application/json"})
                    except httpx.TransportError as exc:
                        with lock:
                            problems.append(f"{name}: {type(exc).__name__}")
                        continue
                    note(answer.status_code, name, "4xx")
        except BaseException as exc:  # noqa: BLE001 - reported
            with lock:
                problems.append(f"session {seed}: {type(exc).__name__}: {str(exc)[:200]}")
            warm.abort()
        finally:
            if session is not None:
                http.delete(f"{API}/mint/action_sessions/{session}")
            http.close()

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(sessions)]
    for thread in threads:
        thread.start()
    try:
        warm.wait(timeout=600)
    except threading.BrokenBarrierError:
        pass
    start_rss = rss()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    return {"sessions": sessions, "queries": queries, "wall_s": wall, "statuses": dict(sorted(statuses.items())),
            "requests_per_s": len(latencies) / wall if wall > 0 else 0.0,
            "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies else 0.0,
            "latency_p95_ms": float(np.percentile(latencies, 95)) if latencies else 0.0,
            "rss_start_mb": start_rss, "problems": problems}


def run(args: argparse.Namespace) -> int:
    from evalharness.bench.serve import DEFAULT_POLICY_LABEL, _sessions, default_policy
    from evalharness.commands.serve import compose
    from evalharness.engine.policy_server import PolicyServer
    from evalharness.transports.mint.serve_settings import load_serve_settings

    sessions = max(_sessions(args.sessions))
    if args.queries < 2 or not 1 <= args.soak_seconds <= 3600:
        raise UserInputError(f"--queries {args.queries} / --soak-seconds {args.soak_seconds} not valid; allowed: "
                             "queries >= 2, soak-seconds 1..3600")
    with tempfile.TemporaryDirectory(prefix="evalharness-bench-soak-") as scratch:
        overrides = list(args.overrides) if args.overrides else default_policy(Path(scratch))
        label = " ".join(overrides) if args.overrides else DEFAULT_POLICY_LABEL
        config = compose([*overrides, f"serve.max_wait_ms={args.max_wait_ms}", f"serve.max_batch={args.max_batch}"])
        settings = load_serve_settings(config["serve"])
        server = PolicyServer(config)
        try:
            with RssMonitor(server.process.pid) as monitor:
                figures = soak(server.url, sessions, args.queries, args.soak_seconds, settings.max_body_bytes,
                               args.png_level, monitor.rss)
                end_rss = monitor.rss()
            figures.update(rss_peak_mb=max(monitor.samples + [end_rss]), rss_end_mb=end_rss)
            if server.process.poll() is not None:
                figures["problems"].append(f"the server exited (code {server.process.returncode})")
        finally:
            server.stop()
    growth = figures["rss_end_mb"] - figures["rss_start_mb"]
    if growth > RSS_GROWTH_MB:
        figures["problems"].append(f"server RSS grew {growth:.0f} MB during the soak (allowed: {RSS_GROWTH_MB:g})")
    print(f"evalharness serve soak: {label}; {sessions} sessions x {args.queries} queries, a malformed request "
          f"after every {MALFORMED_EVERY}rd query, a new session halfway")
    print(f"  {figures['requests_per_s']:.1f} queries/s, p50 {figures['latency_p50_ms']:.1f} ms, "
          f"p95 {figures['latency_p95_ms']:.1f} ms, {figures['wall_s']:.1f} s")
    print("  answers by status: " + ", ".join(f"{k}: {v}" for k, v in figures["statuses"].items()))
    print(f"  server RSS: start {figures['rss_start_mb']:.0f} MB, peak {figures['rss_peak_mb']:.0f} MB, "
          f"end {figures['rss_end_mb']:.0f} MB")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"policy": label, **figures}, handle, indent=2)
    if figures["problems"]:
        print(f"  FAILED: {len(figures['problems'])} problem(s): " + "; ".join(figures["problems"][:5]))
        return 1
    print("  passed: no 5xx, every malformed request refused with a 4xx, memory bounded")
    return 0
