"""vla-eval protocol v1 frames: byte for byte what vla-eval's own codec writes and reads.

And ``policy=vla_eval`` against vla-eval's own ``serve_async`` + ``PredictModelServer`` on
127.0.0.1 without a simulator: the HELLO in the identity, the spec check as one line,
an error frame that leaves the connection open, a refused server as one line.
"""

from __future__ import annotations

import numpy as np
import pytest

from vla_eval.protocol import image_codec, numpy_codec
from vla_eval.protocol.messages import Message, MessageType, pack_message, unpack_message
from vla_eval.specs import GRIPPER_01

from evalharness.errors import InvalidActionError, PolicyError, UserInputError
from evalharness.transports.vla_eval.policy import VlaEvalPolicy
from evalharness.transports.vla_eval.wire import Frame, FrameError, pack, unpack
from vla_eval_servers import DeterministicServer, ServedInThread

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, (32, 24, 3), dtype=np.uint8)
PAYLOAD = {"images": {"agentview": IMAGE, "wrist": IMAGE[::-1].copy()}, "task_description": "pick it up",
           "states": RNG.normal(size=8), "controller_states": RNG.normal(size=8).astype(np.float32),
           "n": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "mask": np.array([True, False])}


@pytest.fixture
def image_format():
    """vla-eval's encoder reads a module-level format; restore its default after each test."""
    yield
    numpy_codec.set_image_format("png")


@pytest.mark.parametrize("fmt", ["png", "jpeg", "raw"])
def test_frames_are_byte_identical_to_vla_evals(fmt, image_format) -> None:
    numpy_codec.set_image_format(fmt)
    theirs = pack_message(Message(MessageType.OBSERVATION, PAYLOAD, seq=5, timestamp=12.5))
    ours = pack(Frame("observation", PAYLOAD, seq=5, timestamp=12.5), image_format=fmt)
    assert ours == theirs
    back = unpack(theirs)
    assert (back.type, back.seq, back.timestamp) == ("observation", 5, 12.5)
    if fmt != "jpeg":
        np.testing.assert_array_equal(back.payload["images"]["agentview"], IMAGE)
    np.testing.assert_array_equal(back.payload["states"], PAYLOAD["states"])
    assert back.payload["states"].dtype == np.float64 and back.payload["controller_states"].dtype == np.float32
    assert unpack_message(ours).payload["task_description"] == "pick it up"


def test_every_image_encoding_is_decoded() -> None:
    """png / jpeg / the RFC's raw ``__image__``: decoded as vla-eval decodes them (png and raw exactly)."""
    for fmt in ("png", "jpeg", "raw"):
        encoded = image_codec.encode_image(IMAGE, fmt)
        import msgpack

        frame = msgpack.packb({"type": "action", "payload": {"img": encoded}, "seq": 1, "timestamp": 0.0},
                              use_bin_type=True)
        decoded = unpack(frame).payload["img"]
        assert decoded.shape == IMAGE.shape and decoded.dtype == np.uint8
        np.testing.assert_array_equal(decoded, image_codec.decode_image(encoded))
        if fmt != "jpeg":
            np.testing.assert_array_equal(decoded, IMAGE)


@pytest.mark.parametrize("data, why", [
    (b"\xc1", "not msgpack"), (b"\x93\x01\x02\x03", "not a map"),
    (pack(Frame("action", {}, 1)).replace(b"action", b"actin!"), "unknown message type"),
    ("text", "text frame"),
])
def test_malformed_frames_are_refused(data, why) -> None:
    with pytest.raises(FrameError, match=why):
        unpack(data)


def test_object_arrays_are_refused() -> None:
    import msgpack

    frame = msgpack.packb({"type": "action", "payload": {"a": {"__ndarray__": True, "data": b"", "dtype": "|O",
                                                                 "shape": [0]}}, "seq": 0, "timestamp": 0.0})
    with pytest.raises(FrameError, match="refused"):
        unpack(frame)


# -- the client against vla-eval's own server code, no simulator ------------------------------

def _observation(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    return {"images": {"base_0_rgb": image, "left_wrist_0_rgb": image[::-1].copy(),
                       "right_wrist_0_rgb": np.zeros_like(image)},
            "image_mask": {}, "instruction": "put the bowl on the plate",
            "robot": {"robot0_eef_pos": rng.normal(size=3), "robot0_eef_quat": np.array([0.0, 0.6, 0.0, 0.8]),
                      "robot0_gripper_qpos": rng.normal(size=2)}}


FAST = {"open_timeout_s": 3, "infer_timeout_s": 10, "retries": {"max_retries": 1, "backoff_s": 0.01}}


def test_hello_enters_the_identity_and_an_error_frame_keeps_the_connection() -> None:
    with ServedInThread(DeterministicServer(fail=((0, 1),))) as served:
        policy = VlaEvalPolicy(port=served.port, label="ckpt-7", **FAST)
        identity = policy.identity()
        assert identity["label"] == "ckpt-7" and identity["server"]["model_server"] == "DeterministicServer"
        assert identity["server"]["action_spec"]["gripper"]["format"] == "binary_close_positive"
        assert identity["params"] == {"send_state": True, "send_wrist_image": True}
        assert policy.cameras == ("base_0_rgb", "left_wrist_0_rgb")
        policy.reset("put the bowl on the plate", seed=3, init_state=0)
        first = policy.act(_observation())
        assert first.shape == (1, 7) and set(np.unique(np.abs(first[:, 6]))) == {1.0}  # gripper made binary
        with pytest.raises(PolicyError, match="deterministic failure at episode 0 step 1"):
            policy.act(_observation())
        ws = policy._ws
        policy.episode_end(False)
        policy.reset("put the bowl on the plate", seed=4, init_state=1)
        assert policy.act(_observation()).shape == (1, 7)
        assert policy._ws is ws  # the error frame did not cost the connection
        policy.episode_end(True)
        import time

        deadline = time.monotonic() + 5  # the server handles the frame on its own loop
        while len(served.model_server.episode_ends) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        policy.close()
        assert served.model_server.episode_ends == [{"metrics": {"success": False}, "steps": 1},
                                                    {"metrics": {"success": True}, "steps": 1}]


def test_a_chunk_where_one_action_is_executed_is_invalid() -> None:
    with ServedInThread(DeterministicServer(chunk_rows=4)) as served:
        policy = VlaEvalPolicy(port=served.port, run={"protocol": {"replan_steps": 1}}, **FAST)
        policy.reset("x", seed=0, init_state=0)
        with pytest.raises(InvalidActionError, match="answered one observation with 4 actions.*chunk_size"):
            policy.act(_observation())
        policy.close()


def test_an_incompatible_action_spec_is_one_line_naming_both_sides() -> None:
    spec = {"position": DeterministicServer().get_action_spec()["position"],
            "rotation": DeterministicServer().get_action_spec()["rotation"], "gripper": GRIPPER_01}
    with ServedInThread(DeterministicServer(action_spec=spec)) as served:
        with pytest.raises(UserInputError) as err:
            VlaEvalPolicy(port=served.port, **FAST).identity()
    message = str(err.value)
    assert "\n" not in message
    assert "gripper as continuous_01 1-D in [0, 1]" in message and "executes binary_close_positive 1-D in [-1, 1]" in message


def test_a_server_that_is_not_there_is_one_line() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserInputError, match=rf"^policy=vla_eval: cannot use the model server at ws://127.0.0.1:{port}"):
        VlaEvalPolicy(port=port, **FAST).identity()


def test_lerobot_servers_declarations_pass_unchecked_and_enter_the_identity() -> None:
    """vla-eval's LeRobot server declares ``{"actions": raw}`` and its own camera key ``image``:
    nothing can be checked, nothing is refused, and the declaration is in the identity."""
    from vla_eval.specs import IMAGE_RGB, LANGUAGE, RAW

    class LeRobotLike(DeterministicServer):
        def get_observation_spec(self):
            return {"image": IMAGE_RGB, "language": LANGUAGE, "state": RAW}

    server = LeRobotLike(action_spec={"actions": RAW}, observation_params={"send_state": True})
    with ServedInThread(server) as served:
        policy = VlaEvalPolicy(port=served.port, params={"quat_no_antipodal": True}, **FAST)
        identity = policy.identity()
        policy.close()
    assert identity["server"]["action_spec"] == {"actions": {"name": "raw", "dims": 0, "format": "raw"}}
    assert identity["params"] == {"quat_no_antipodal": True, "send_state": True}
    assert policy.cameras == ("base_0_rgb",)  # no wrist image asked for: none rendered


def test_a_server_wanting_a_wrist_image_the_config_refuses_is_one_line() -> None:
    with ServedInThread(DeterministicServer()) as served:
        with pytest.raises(UserInputError, match=r"expects a wrist image, but send_wrist_image is false"):
            VlaEvalPolicy(port=served.port, params={"send_wrist_image": False}, **FAST).identity()


def test_the_readme_lerobot_server_command_has_those_arguments() -> None:
    """The README's LeRobot recipe: vla-eval's lerobot server takes the arguments it names
    (its --help runs without lerobot; serving needs lerobot, which is not installed here)."""
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "python -m vla_eval.model_servers.lerobot --address 0.0.0.0:8000" in readme
    result = subprocess.run([sys.executable, "-m", "vla_eval.model_servers.lerobot", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for argument in ("--address", "--args.policy_type", "--args.checkpoint", "--args.chunk_size"):
        assert argument in result.stdout and argument in readme
