"""Test-only parts for the MinT tests: a recording, fault-injecting ASGI middleware around
``evalharness serve``'s app, a tiny SentencePiece model trained on the fly, observations.

The middleware sits in front of the real app on a real uvicorn server on 127.0.0.1: the
client under test talks real HTTP. It records every request's JSON body and, when a fault
is queued for a route, answers with the fault instead of (or after) the real app.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalharness.transports.mint.wire import CAMERA_ORDER as CAMERAS


def train_sentencepiece(directory: Path) -> Path:
    """A small SentencePiece model (byte fallback, so any text encodes) trained now."""
    import sentencepiece as spm

    from envs.libero.catalog import all_tasks

    instructions = sorted({t.instruction for t in all_tasks()})
    lines = [f"Task: {text}, State: {' '.join(str(b) for b in range(i, i + 8))};" for i, text in enumerate(instructions)]
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(lines * 3))
    prefix = directory / "tiny_sp"
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(prefix), vocab_size=400, byte_fallback=True,
                                   character_coverage=1.0, minloglevel=2, hard_vocab_limit=False)
    return prefix.with_suffix(".model")


def observation(seed: int = 0, size: int = 224) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    images = {cam: rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8) for cam in CAMERAS}
    images["right_wrist_0_rgb"][:] = 0
    return {"images": images, "state": rng.uniform(-0.5, 0.5, size=8).astype(np.float32), "instruction": "x"}


@dataclass
class Fault:
    """What to do instead of (or to) the real answer of one matching request."""

    route: str  # "create" | "act" | "retrieve" | "delete" | "sample"
    status: int | None = None  # answer this status without calling the app
    body: Any = None  # JSON body for ``status`` (or raw bytes)
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float | None = None  # wait this long first (a server that never answers)
    transform: Callable[[dict[str, Any]], Any] | None = None  # change the app's real JSON answer


def route_of(method: str, path: str) -> str:
    if path.endswith("/act"):
        return "act"
    if path.endswith("/retrieve_future"):
        return "retrieve"
    if path.endswith("/asample"):
        return "sample"
    if method == "DELETE":
        return "delete"
    if path.endswith("/action_sessions") or path.endswith("/create_sampling_session"):
        return "create"
    return "other"


class Recorder:
    """ASGI middleware: records requests and injects queued faults (test-only).

    It drops a request's ``Prefer`` header unless ``honour_prefer``: the server behind it then
    answers every act / asample with a future, as MinT (which ignores the header) does, so
    the faults injected into ``retrieve_future`` are met by the client.
    """

    def __init__(self, app: Any, honour_prefer: bool = False) -> None:
        self.app = app
        self.honour_prefer = honour_prefer
        self.requests: list[dict[str, Any]] = []
        self.faults: deque[Fault] = deque()
        self._lock = threading.Lock()

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def of(self, route: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["route"] == route]

    def _take(self, route: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.route == route:
                    self.faults.remove(fault)
                    return fault
        return None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        route = route_of(scope["method"], scope["path"])
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        with self._lock:
            self.requests.append({"route": route, "method": scope["method"], "path": scope["path"], "json": parsed,
                                  "api_key": headers.get("x-api-key"), "prefer": headers.get("prefer")})
        if not self.honour_prefer:
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"prefer"]}
        fault = self._take(route)
        if fault is not None and fault.hang_s is not None:
            await asyncio.sleep(fault.hang_s)
        if fault is not None and fault.status is not None:
            payload = fault.body if isinstance(fault.body, bytes) else json.dumps(fault.body).encode()
            await _answer(send, fault.status, payload, fault.headers)
            return

        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        if fault is None or fault.transform is None:
            await self.app(scope, replay, send)
            return
        captured: dict[str, Any] = {"body": b""}

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        await self.app(scope, replay, capture)
        content = json.loads(captured["body"])
        if captured["status"] == 200 and "request_id" not in content:
            content = fault.transform(content)
        else:  # still pending: keep the fault for the real answer
            self.inject(fault)
        await _answer(send, captured["status"], json.dumps(content, allow_nan=True).encode(), {})


async def _answer(send: Callable, status: int, payload: bytes, headers: dict[str, str]) -> None:
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def check_act_request(body: dict[str, Any], max_tokens: int = 180, state_dims: int = 8) -> None:
    """What every act request must look like: 3 PNGs of 224 px in camera order, then the prefix."""
    from PIL import Image

    chunks = body["observation"]["model_input"]["chunks"]
    assert [c["type"] for c in chunks] == ["image", "image", "image", "encoded_text"]
    for i, chunk in enumerate(chunks[:3]):
        assert chunk["format"] == "png"
        with Image.open(io.BytesIO(base64.b64decode(chunk["data"]))) as image:
            assert image.format == "PNG" and image.size == (224, 224)
            pixels = np.asarray(image.convert("RGB"))
        if i == 2:  # right_wrist_0_rgb: all zeros
            assert not pixels.any()
        else:
            assert pixels.any()
    assert 1 <= len(chunks[3]["tokens"]) <= max_tokens
    state = body["observation"]["state"]
    assert state["shape"] == [state_dims] and len(state["data"]) == state_dims


from evalharness.policies.baselines import RandomPolicy  # noqa: E402


class BatchedRandomPolicy(RandomPolicy):
    """``random`` with a real ``act_batch`` (one call for many forks) that logs batch sizes."""

    batch_sizes: list[int] = []

    @classmethod
    def act_batch(cls, policies, observations):
        cls.batch_sizes.append(len(policies))
        draws = [p._rng.uniform(-p.scale, p.scale, size=(p.horizon, 7)) for p in policies]
        stacked = np.stack(draws)
        stacked[:, :, 6] = np.sign(stacked[:, :, 6]) + (stacked[:, :, 6] == 0)
        return list(stacked)


class CameraEcho(RandomPolicy):
    """Answers with what it saw: per camera, the image's mean and its mask (a test probe)."""

    cameras = ("base_0_rgb",)

    def act(self, observation):
        chunk = np.zeros((1, 7))
        for i, cam in enumerate(CAMERAS):
            chunk[0, 2 * i] = observation["images"][cam].mean()
            chunk[0, 2 * i + 1] = float(observation["image_mask"][cam])
        chunk[0, 6] = len(observation["instruction"])
        return chunk


class StateEcho(RandomPolicy):
    """Answers with the state it received (a test probe)."""

    def act(self, observation):
        chunk = np.zeros((1, 8))
        chunk[0] = observation["state"]
        return chunk


# ---------------------------------------------------------------- a real `evalharness serve` process
class ServeProcess:
    """``python -m evalharness serve OVERRIDES serve.port=0`` as a child process on 127.0.0.1,
    with its memory readable from /proc (the probes measure the server, not the test)."""

    def __init__(self, overrides: list[str], env: dict[str, str] | None = None, timeout_s: float = 120.0) -> None:
        import os
        import subprocess
        import sys

        from evalharness.transports.mint.serve_settings import READY

        environment = {**os.environ, **(env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", "evalharness", "serve", *overrides, "serve.port=0",
                                         "serve.host=127.0.0.1"], stdout=subprocess.PIPE, text=True, env=environment)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not lines or not lines[0].startswith(READY):
            self.stop()
            raise RuntimeError(f"evalharness serve did not start: {lines!r}")
        self.url = lines[0][len(READY):].split()[0]
        self.pid = self.process.pid

    def memory_mb(self) -> dict[str, float]:
        """Resident memory now (``rss``) and its peak so far (``peak``, VmHWM), in MB."""
        values = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    values["rss" if line.startswith("VmRSS") else "peak"] = int(line.split()[1]) / 1024
        return values

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except Exception:  # noqa: BLE001 - a hung child is killed
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def png_header_only(width: int, height: int, rows: int | None = None) -> bytes:
    """A valid PNG that declares ``width`` x ``height`` black RGB pixels: a few hundred KB for
    10000 x 10000 (zeros deflate ~1000:1). ``rows`` < height writes a truncated file."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    compressor = zlib.compressobj(9)
    count = height if rows is None else rows
    row = bytes(1 + 3 * width) if count else b""
    parts = [compressor.compress(row) for _ in range(count)]
    parts.append(compressor.flush())
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
