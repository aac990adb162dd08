"""``evalharness serve`` probed as an attacker or a buggy client would: every probe is a 4xx,
in bounded server memory, and the key appears in no answer.

One real ``evalharness serve`` process (``serve.auth=env``, ``MINT_API_KEY`` set) on
127.0.0.1 answers every probe over real HTTP; its memory is read from ``/proc`` (VmRSS now,
VmHWM the peak), so the bound is the server's, not the test's. The rows are those of issue
17's table, each with its new status.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalharness.transports.mint import wire
from evalharness.transports.mint.prompt import PromptCodec
from mint_testing import ServeProcess, observation, png_header_only

KEY = "sk-hostile-probe-secret-0123456789"
HEADERS = {"X-API-Key": KEY}
API = "/api/v1"
MB = 1024 * 1024
#: Server memory may grow by at most this much over the whole probe set (its peak, VmHWM).
MEMORY_BUDGET_MB = 60.0
#: A bounded error answer: a few hundred characters of detail, never the input.
MAX_ANSWER_BYTES = 1200
CANARY = "CANARY-7f3a"


@pytest.fixture(scope="module")
def serve():
    overrides = ["policy=random", "policy.horizon=10", "serve.auth=env", "serve.max_sessions=16",
                 "serve.long_poll_s=0.5"]
    with ServeProcess(overrides, env={"MINT_API_KEY": KEY}) as server:
        client = httpx.Client(base_url=server.url, headers=HEADERS, timeout=60.0)
        client.get(f"{API}/evalharness/status").raise_for_status()
        server.baseline = server.memory_mb()["rss"]
        yield server, client
        client.close()


def _grew(server) -> float:
    return server.memory_mb()["peak"] - server.baseline


def _check_bounded(response: httpx.Response, *secrets: str) -> None:
    assert response.status_code < 500, response.text[:300]
    assert len(response.content) <= MAX_ANSWER_BYTES, f"{len(response.content)} bytes answered"
    for secret in (KEY, CANARY, *secrets):
        assert secret not in response.text


def _body(**observation_changes: Any) -> dict[str, Any]:
    tokens = PromptCodec(None).encode("put the bowl on the plate", np.zeros(8)).tokens
    obs = observation()
    chunks = [c.model_dump() for c in wire.observation_chunks(obs["images"], tokens)]
    body = {"observation": {"model_input": {"chunks": chunks},
                            "state": {"data": [0.0] * 8, "shape": [8], "dtype": "float32"}}, "temperature": 0.0}
    body["observation"].update(observation_changes)
    return body


def _session(client: httpx.Client) -> str:
    answer = client.post(f"{API}/mint/action_sessions", json={"session_id": "hostile:seed=1",
                                                              "model_path": "local://random"})
    assert answer.status_code == 200, answer.text
    return answer.json()["action_session_id"]


@pytest.fixture
def session(serve):
    _, client = serve
    session_id = _session(client)
    yield session_id
    client.delete(f"{API}/mint/action_sessions/{session_id}")


def _with_image(data: str) -> dict[str, Any]:
    body = _body()
    body["observation"]["model_input"]["chunks"][0]["data"] = data
    return body


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _noise_png() -> bytes:
    from evalharness.transports.mint.png import encode_png

    return encode_png(np.random.default_rng(2).integers(0, 256, (224, 224, 3), dtype=np.uint8))


# ---------------------------------------------------------------- before the body is read
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_a_50_mb_body_without_the_key_is_401_and_never_read(serve, key) -> None:
    server, _ = serve
    headers = {"Content-Type": "application/json", **({"X-API-Key": key} if key else {})}
    payload = b'{"session_id": "' + b"x" * (50 * MB) + b'"}'
    with httpx.Client(base_url=server.url, timeout=60.0) as bare:
        answer = bare.post(f"{API}/mint/action_sessions", content=payload, headers=headers)
    assert answer.status_code == 401
    _check_bounded(answer)
    assert _grew(server) < MEMORY_BUDGET_MB


def test_no_key_and_a_non_json_body_is_401_not_422(serve) -> None:
    server, _ = serve
    answer = httpx.post(f"{server.url}{API}/asample", content=b"\x00\xffnot json", timeout=10)
    assert answer.status_code == 401


def test_unknown_routes_need_the_key_too(serve) -> None:
    server, client = serve
    assert httpx.get(f"{server.url}/admin", timeout=10).status_code == 401
    assert httpx.get(f"{server.url}{API}/evalharness/status", timeout=10).status_code == 401
    assert client.get("/admin").status_code == 404


@pytest.mark.parametrize("what", ["typeless-chunk", "base64-not-an-image", "model-path"])
def test_a_body_over_max_body_mb_is_413_before_parsing(serve, what) -> None:
    server, client = serve
    if what == "model-path":
        url, payload = f"{API}/mint/action_sessions", {"session_id": "s", "model_path": "m" * (10 * MB)}
    else:
        session = _session(client)
        url = f"{API}/mint/action_sessions/{session}/act"
        client.delete(f"{API}/mint/action_sessions/{session}")  # the body is refused before the route runs
        payload = _with_image(_b64(bytes(38 * MB)))
        if what == "typeless-chunk":
            del payload["observation"]["model_input"]["chunks"][0]["type"]
            payload["observation"]["model_input"]["chunks"][0]["format"] = "gif"
    answer = client.post(url, content=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "serve.max_body_mb=4" in answer.text
    _check_bounded(answer)
    assert _grew(server) < MEMORY_BUDGET_MB


def test_a_chunked_body_without_length_is_cut_off_at_the_cap(serve) -> None:
    server, client = serve

    def stream():
        for _ in range(40):
            yield b"[" + b"0," * (MB // 2) + b"0]"

    answer = client.post(f"{API}/asample", content=stream(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert _grew(server) < MEMORY_BUDGET_MB


# ---------------------------------------------------------------- under the cap: 422, bounded, no echo
def test_a_chunk_without_type_it_cannot_infer_is_422_without_the_input(serve, session) -> None:
    server, client = serve
    body = _body()
    chunk = body["observation"]["model_input"]["chunks"][0]
    del chunk["type"], chunk["format"]
    chunk["data"] = CANARY * 100_000  # 1.1 MB, under the cap
    answer = client.post(f"{API}/mint/action_sessions/{session}/act", json=body)
    assert answer.status_code == 422 and "a chunk is an image" in answer.text
    _check_bounded(answer)


@pytest.mark.parametrize(("image", "words"), [
    pytest.param(lambda: _b64(bytes(2 * MB)), "not a PNG file", id="2-MB-of-base64-zeros"),
    pytest.param(lambda: _b64(np.random.default_rng(0).bytes(200_000)), "not a PNG file", id="random-bytes"),
    pytest.param(lambda: "%%%not-base64%%%", "not valid base64", id="bad-base64"),
    pytest.param(lambda: _b64(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(1).bytes(5000)), "not a decodable PNG",
                 id="png-signature-then-garbage"),
    pytest.param(lambda: _b64(_noise_png()[:60_000]), "not a decodable PNG", id="truncated-file"),
    pytest.param(lambda: _b64(png_header_only(224, 224, rows=100)), "incomplete", id="too-few-rows"),
    pytest.param(lambda: _b64(png_header_only(10000, 10000)), "10000x10000, not 224x224", id="10000x10000-png"),
    pytest.param(lambda: _b64(png_header_only(14000, 14000)), "14000x14000, not 224x224", id="14000x14000-bomb"),
])
def test_undecodable_images_are_422_in_bounded_memory(serve, session, image, words) -> None:
    server, client = serve
    answer = client.post(f"{API}/mint/action_sessions/{session}/act", json=_with_image(image()))
    assert answer.status_code == 422 and words in answer.text, answer.text
    _check_bounded(answer)
    assert _grew(server) < MEMORY_BUDGET_MB


def test_three_10000_px_pngs_at_once_stay_in_bounded_memory(serve, session) -> None:
    server, client = serve
    body = json.dumps(_with_image(_b64(png_header_only(10000, 10000)))).encode()
    answers: list[int] = []

    def probe() -> None:
        answers.append(client.post(f"{API}/mint/action_sessions/{session}/act", content=body,
                                   headers={"Content-Type": "application/json"}).status_code)

    threads = [threading.Thread(target=probe) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [422, 422, 422]
    assert _grew(server) < MEMORY_BUDGET_MB


@pytest.mark.parametrize(("body", "field"), [
    ({"session_id": "s", "model_path": "m" * 2000}, "model_path"),
    ({"session_id": "s" * 300, "model_path": "local://x"}, "session_id"),
    ({"session_id": "s", "model_path": "local://x", "base_model": "b" * 300}, "base_model"),
])
def test_strings_have_length_limits(serve, body, field) -> None:
    _, client = serve
    answer = client.post(f"{API}/mint/action_sessions", json=body)
    assert answer.status_code == 422 and field in answer.text
    _check_bounded(answer, "m" * 100, "s" * 100, "b" * 100)


@pytest.mark.parametrize("state", [
    {"data": [1.0] * 8, "shape": [2**40, 2**40], "dtype": "float32"},
    {"data": [1.0] * 8, "shape": [-8], "dtype": "float32"},
    {"data": [1e308] * 8, "shape": [8], "dtype": "int64"},
    {"data": [1.0] * 5000, "shape": [5000], "dtype": "float32"},
    {"data": "nope", "shape": [8]},
])
def test_bad_tensors_are_422(serve, session, state) -> None:
    _, client = serve
    answer = client.post(f"{API}/mint/action_sessions/{session}/act", json=_body(state=state))
    assert answer.status_code == 422, answer.text
    _check_bounded(answer)


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                                 b"{", b"\xff\xfe", b"null", b"1e999999"])
def test_malformed_json_is_a_4xx(serve, raw) -> None:
    _, client = serve
    for route in ("/mint/action_sessions", "/asample", "/retrieve_future", "/create_session"):
        answer = client.post(f"{API}{route}", content=raw, headers={"Content-Type": "application/json"})
        assert 400 <= answer.status_code < 500, (route, answer.status_code, answer.text[:200])
        _check_bounded(answer)


# ---------------------------------------------------------------- sessions are bounded
def test_sessions_are_capped_with_429_and_retry_after(serve) -> None:
    server, client = serve
    opened, refused = [], []
    for i in range(40):
        answer = client.post(f"{API}/mint/action_sessions", json={"session_id": f"flood-{i}", "model_path": "local://x"})
        (opened if answer.status_code == 200 else refused).append(answer)
    assert len(opened) <= 16 and refused
    assert all(a.status_code == 429 and a.headers["Retry-After"] == "1" for a in refused)
    assert "serve.max_sessions" in refused[0].text
    for answer in opened:
        client.delete(f"{API}/mint/action_sessions/{answer.json()['action_session_id']}")
    assert client.post(f"{API}/mint/action_sessions", json={"session_id": "after", "model_path": "x"}).status_code == 200


def test_the_server_is_still_healthy_and_the_key_never_logged(serve, session) -> None:
    server, client = serve
    answer = client.post(f"{API}/mint/action_sessions/{session}/act", json=_body())
    assert answer.status_code == 200
    result = client.post(f"{API}/retrieve_future", json={"request_id": answer.json()["request_id"]})
    assert result.status_code == 200 and result.json()["actions"]["shape"] == [10, 7]
    assert server.process.poll() is None
    print(f"server memory: baseline {server.baseline:.0f} MB, now {server.memory_mb()}, peak growth {_grew(server):.0f} MB")
    assert _grew(server) < MEMORY_BUDGET_MB


# ---------------------------------------------------------------- idle sessions expire (in-process server)
def test_an_expired_session_is_404_and_the_client_says_policy_unavailable() -> None:
    from evalharness.commands.serve import compose
    from evalharness.errors import PolicyUnavailable
    from evalharness.transports.mint.policy import MintPolicy
    from evalharness.transports.mint.server import ServerThread, build_service, create_app

    service = build_service(compose(["policy=random", "serve.session_ttl_s=0.3"]))
    with ServerThread(create_app(service)) as running:
        policy = MintPolicy("local://random", base_url=running.url, state_space="raw", retries={"max_retries": 0})
        try:
            policy.reset("put the bowl on the plate", seed=0)
            policy.act(observation())  # a used session lives on while it is used
            time.sleep(0.6)
            with pytest.raises(PolicyUnavailable, match=r"expired \(idle longer than serve.session_ttl_s=0.3 s\)"):
                policy.act(observation())
        finally:
            policy.close()
        status = httpx.get(f"{running.url}{API}/evalharness/status").json()
        assert status["open_sessions"]["action"] == 0 and status["expired_sessions"] == 1
    service.close()


def test_the_session_bounds_are_in_the_policy_server_identity() -> None:
    from evalharness.engine.policy_server import annotate_identity

    config = {"runner": {"policy_server": "auto"}, "policy": {"_target_": "x"},
              "serve": {"max_sessions": 12, "session_ttl_s": 30.0}}
    served = annotate_identity({"name": "p"}, config)["policy_server"]
    assert served["max_sessions"] == 12 and served["session_ttl_s"] == 30.0
    assert annotate_identity({"name": "p"}, {**config, "runner": {"policy_server": "none"}}) == {"name": "p"}


def test_png_on_the_wire_is_lossless_and_an_all_zero_camera_is_encoded_once() -> None:
    from PIL import Image

    from evalharness.transports.mint.png import decode_png, encode_png

    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:224, 0:224]
    scene = np.stack([(x + y) % 256, (2 * x) % 256, (3 * y) % 256], -1).astype(np.uint8)
    for image in (rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), scene):
        encoded = encode_png(image)
        assert np.array_equal(decode_png(_b64(encoded), (224, 224)), image)
        default = io.BytesIO()
        Image.fromarray(image).save(default, format="PNG")  # PIL's default level: the same pixels
        with Image.open(io.BytesIO(encoded)) as fast, Image.open(default) as slow:
            assert np.array_equal(np.asarray(fast), np.asarray(slow))
    for shape in ((1, 1, 3), (7, 5, 3), (224, 224, 3)):  # every row filtered, every edge
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        with Image.open(io.BytesIO(encode_png(image))) as decoded:
            assert decoded.format == "PNG" and np.array_equal(np.asarray(decoded.convert("RGB")), image)
    zero = np.zeros((224, 224, 3), np.uint8)
    assert encode_png(zero) is encode_png(np.zeros((224, 224, 3), np.uint8))
    assert not decode_png(_b64(encode_png(zero)), (224, 224)).any()


def _pil_pixels(raw: bytes):
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw), formats=["PNG"]) as image:
            return np.asarray(image.convert("RGB"))
    except Exception:  # noqa: BLE001 - whatever PIL refuses
        return None


def test_the_wire_format_decodes_without_pil_to_pils_pixels_at_every_level() -> None:
    """decode_png's own path (rows filtered None / Sub, as encode_png writes them) gives PIL's
    pixels byte for byte, on random images and renders of every shape and zlib level."""
    from evalharness.transports.mint import png

    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:224, 0:224]
    scene = np.stack([(x + y) % 256, (2 * x) % 256, (3 * y) % 256], -1).astype(np.uint8)
    images = [scene, *(rng.integers(0, 256, s, dtype=np.uint8) for s in ((224, 224, 3), (1, 1, 3), (7, 5, 3), (3, 224, 3)))]
    for level in range(10):
        for image in images:
            raw = png.encode_png(image, level)
            fast = png._decode_sub_rows(raw, image.shape[1], image.shape[0])
            assert fast is not None, "the wire format took PIL's path"
            assert np.array_equal(fast, image) and np.array_equal(fast, _pil_pixels(raw))
            assert np.array_equal(png.decode_png(_b64(raw), (image.shape[1], image.shape[0])), image)
    # Rows filtered None among Sub rows (standard PNG, what other encoders may write): same path, PIL's pixels.
    image = rng.integers(0, 256, (6, 4, 3), dtype=np.uint8)
    rows = []
    for i, row in enumerate(image.reshape(6, 12)):
        sub = np.concatenate([row[:3], (row[3:].astype(np.int16) - row[:-3]) % 256]).astype(np.uint8)
        rows.append(bytes([i % 2]) + (sub if i % 2 else row).tobytes())
    import struct
    import zlib

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    mixed = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 6, 8, 2, 0, 0, 0))
             + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))
    assert np.array_equal(png._decode_sub_rows(mixed, 4, 6), image)
    assert np.array_equal(_pil_pixels(mixed), image)
    # Bytes after IEND are ignored by both decoders.
    assert np.array_equal(png.decode_png(_b64(png.encode_png(scene, 1) + b"trailing"), (224, 224)), scene)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data())
def test_a_corrupted_wire_png_is_refused_or_decoded_exactly_as_pil_decodes_it(data) -> None:
    """Bit flips, truncation and insertions into encode_png's output: decode_png either refuses
    (ImageRejected, a 422 on the wire) or returns exactly the pixels PIL reads from those bytes."""
    from evalharness.transports.mint.png import ImageRejected, decode_png, encode_png

    image = np.random.default_rng(data.draw(st.integers(0, 3))).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    raw = bytearray(encode_png(image, data.draw(st.sampled_from([0, 1, 9]))))
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(8, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(8, len(raw) - 1))]
    else:
        at = data.draw(st.integers(8, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=40))
    try:
        pixels = decode_png(_b64(bytes(raw)), (16, 16))
    except ImageRejected:
        return
    assert np.array_equal(pixels, _pil_pixels(bytes(raw)))
