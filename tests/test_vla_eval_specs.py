"""The check of a vla-eval server's HELLO against the run: each mismatch is one line naming both sides."""

from __future__ import annotations

import pytest

from vla_eval.specs import (GRIPPER_CLOSE_NEG, GRIPPER_CLOSE_POS, IMAGE_RGB, LANGUAGE, POSITION_DELTA, RAW,
                            ROTATION_AA, ROTATION_EULER, ROTATION_QUAT, STATE_EEF_POS_AA_GRIP, STATE_EEF_POS_QUAT_GRIP)

from evalharness.errors import UserInputError
from evalharness.transports.vla_eval.specs import LIBERO_ACTION_SPEC, check_server_specs, merge_params

RUN = {"cameras": ["base_0_rgb", "left_wrist_0_rgb"], "state": True, "settle_steps": 10, "seed": 7, "max_steps": 220,
       "pipeline": {"decoder": "none", "normalize": "none", "convert": "none"}}
LIBERO = {"position": POSITION_DELTA, "rotation": ROTATION_AA, "gripper": GRIPPER_CLOSE_POS}
OBS = {"agentview": IMAGE_RGB, "wrist": IMAGE_RGB, "state": STATE_EEF_POS_AA_GRIP, "language": LANGUAGE}
PARAMS = {"send_wrist_image": True, "send_state": True}


def hello(action=None, obs=None) -> dict:
    return {"action_spec": {k: v.to_dict() for k, v in (LIBERO if action is None else action).items()},
            "observation_spec": {k: v.to_dict() for k, v in (OBS if obs is None else obs).items()}}


def check(h: dict, params: dict | None = None, **run) -> None:
    check_server_specs("the server S", h, PARAMS if params is None else params, {**RUN, **run})


def test_vla_evals_libero_spec_is_the_one_written_here() -> None:
    from vla_eval.benchmarks.libero.benchmark import LIBEROBenchmark

    theirs = {k: v.to_dict() for k, v in LIBEROBenchmark().get_action_spec().items()}
    assert theirs == LIBERO_ACTION_SPEC


def test_a_server_that_fits_passes() -> None:
    check(hello())
    check(hello(action={"actions": RAW}, obs={"image": IMAGE_RGB, "state": RAW}))  # LeRobot's: unchecked


@pytest.mark.parametrize("action, words", [
    ({**LIBERO, "rotation": ROTATION_QUAT}, "sends action rotation as quaternion_xyzw 4-D in [-1, 1], but LIBERO "
     "with convert=none executes axis_angle 3-D in [-3.15, 3.15]"),
    ({**LIBERO, "rotation": ROTATION_EULER}, "rotation as euler_xyz 3-D"),
    ({**LIBERO, "gripper": GRIPPER_CLOSE_NEG}, "gripper as binary_close_negative 1-D in [-1, 1]"),
    ({"position": POSITION_DELTA, "rotation": ROTATION_AA}, "declares no action component 'gripper'"),
])
def test_action_mismatches(action, words) -> None:
    with pytest.raises(UserInputError, match="^policy=vla_eval: the server S ") as err:
        check(hello(action=action))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_pipeline_stages_that_would_act_twice_are_refused() -> None:
    with pytest.raises(UserInputError, match="returns robot actions, but normalize=quantile would decode them again"):
        check(hello(), pipeline={"decoder": "none", "normalize": "quantile", "convert": "none"})
    with pytest.raises(UserInputError, match="convert=openvla would convert them again; allowed: convert=none"):
        check(hello(), pipeline={"convert": "openvla"})


def test_observation_mismatches() -> None:
    with pytest.raises(UserInputError, match="expects state as eef_pos3_quat4_gripper1 8-D, but vla-eval's LIBERO sends"):
        check(hello(obs={**OBS, "state": STATE_EEF_POS_QUAT_GRIP}))
    with pytest.raises(UserInputError, match=r"asks for the robot state \(send_state=true\), but this protocol gives "
                                             r"the policy no state \(protocol.state=false\)"):
        check(hello(), state=False)
    with pytest.raises(UserInputError, match=r"expects a wrist image, but the protocol's cameras are \['base_0_rgb'\]"):
        check(hello(), cameras=["base_0_rgb"])
    with pytest.raises(UserInputError, match="expects state, but send_state is false"):
        check(hello(), params={"send_wrist_image": True})


def test_observation_params_against_the_protocol() -> None:
    with pytest.raises(UserInputError, match=r"asks for num_steps_wait=5, but protocol.settle_steps is 10"):
        check(hello(), params={**PARAMS, "num_steps_wait": 5})
    with pytest.raises(UserInputError, match=r"asks for seed=0, but protocol.seed is 7"):
        check(hello(), params={**PARAMS, "seed": 0})
    with pytest.raises(UserInputError, match="absolute_action=true, but this harness executes delta actions"):
        check(hello(), params={**PARAMS, "absolute_action": True})


def test_the_config_wins_over_the_server_and_unknown_params_are_dropped() -> None:
    merged = merge_params({"send_wrist_image": False}, {"send_wrist_image": True, "send_state": True, "gpu": 3})
    assert merged == {"send_wrist_image": False, "send_state": True}


def test_null_params_leave_the_servers_value() -> None:
    assert merge_params({"send_state": None, "quat_no_antipodal": True}, {"send_state": True}) == {
        "send_state": True, "quat_no_antipodal": True}


@pytest.mark.parametrize("overrides", [
    ["policy=vla_eval", "protocol=vla_eval", "policy.port=8000", "policy.label=ckpt"],
    ["suite=libero_spatial", "policy=vla_eval", "protocol=lerobot", "policy.host=gpu-box", "policy.port=8000",
     "policy.label=ckpt", "policy.params.quat_no_antipodal=true"],  # the README's LeRobot command
    ["policy=vla_eval", "policy.params.send_wrist_image=true", "policy.binarize_gripper=false"],
])
def test_the_documented_command_lines_compose(overrides) -> None:
    from evalharness.config.conf import check_overrides

    check_overrides(overrides)
