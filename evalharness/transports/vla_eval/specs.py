"""Before the first episode: does the server's HELLO fit what this run sends and executes?

A vla-eval model server declares, in its HELLO, ``action_spec`` and
``observation_spec`` (``{component: {name, dims, format, range?, accepts?}}``, vla-eval's
``DimSpec``) and ``observation_params`` (the LIBERO benchmark's constructor arguments it
wants: ``send_wrist_image``, ``send_state``, ``quat_no_antipodal``...). vla-eval's own
orchestrator merges those params (the eval config wins) and only *logs* spec mismatches.
Here a mismatch stops the run before any episode with one line naming both sides,
because 500 episodes on a wrong convention are worse than none.

What is compared, and against what:

- **action** (server produces, LIBERO consumes): the components ``position``,
  ``rotation``, ``gripper`` against vla-eval's LIBERO spec (delta_xyz 3-D in [-1, 1],
  axis_angle 3-D in [-3.15, 3.15], binary_close_positive 1-D in [-1, 1]) when the action
  pipeline is all ``none`` (the server's actions go to the simulator as they are):
  format (or the consumer's ``accepts``), dims, and the declared range inside LIBERO's.
  A server that declares only ``raw`` components (LeRobot's declares ``{"actions":
  raw}``: its convention is the checkpoint's) cannot be checked and is not; the
  declaration still enters the identity. Any ``decoder`` / ``normalize`` but ``none`` is
  refused (the server already returns actions), and so is a ``convert`` but ``none``
  when the server declares LIBERO components.
- **observation** (the run produces, the server consumes): ``agentview`` needs the
  protocol's ``base_0_rgb`` camera, ``wrist`` needs ``left_wrist_0_rgb`` *and*
  ``send_wrist_image``, ``state`` needs ``protocol.state`` and ``send_state`` and the
  format ``eef_pos3_axisangle3_gripper2`` (or ``raw``), ``language`` is always sent.
  Other components (a server's own camera names) cannot be mapped and are not checked.
- **observation_params** against the protocol: ``num_steps_wait`` = ``settle_steps``,
  ``seed`` = ``protocol.seed``, ``max_steps`` = the suite's ``max_steps`` when given;
  ``absolute_action: true`` is refused (this harness executes delta actions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalharness.errors import UserInputError

__all__ = ["LIBERO_ACTION_SPEC", "check_server_specs", "merge_params", "BENCHMARK_PARAMS"]

#: vla-eval's LIBEROBenchmark.get_action_spec(), as wire dicts
LIBERO_ACTION_SPEC: dict[str, dict[str, Any]] = {
    "position": {"name": "position", "dims": 3, "format": "delta_xyz", "range": [-1, 1]},
    "rotation": {"name": "rotation", "dims": 3, "format": "axis_angle", "range": [-3.15, 3.15]},
    "gripper": {"name": "gripper", "dims": 1, "format": "binary_close_positive", "range": [-1, 1]},
}
STATE_FORMAT = "eef_pos3_axisangle3_gripper2"
#: LIBEROBenchmark's constructor arguments and their defaults
BENCHMARK_PARAMS: dict[str, Any] = {
    "send_wrist_image": False, "send_state": False, "quat_no_antipodal": False, "absolute_action": False,
    "num_steps_wait": 10, "seed": 7, "max_steps": None, "env_seed": None, "suite": None,
}
RAW = "raw"


def merge_params(configured: Mapping[str, Any], from_server: Mapping[str, Any]) -> dict[str, Any]:
    """The benchmark params of vla-eval's orchestrator: the config's, then the server's for keys it lacks.

    Keys LIBERO's benchmark does not take are dropped (vla-eval drops them with a warning).
    """
    merged = {key: value for key, value in configured.items() if value is not None}  # null: not set
    for key, value in from_server.items():
        if key not in merged and key in BENCHMARK_PARAMS:
            merged[key] = value
    return merged


def _describe(spec: Mapping[str, Any]) -> str:
    text = f"{spec.get('format')} {spec.get('dims')}-D"
    if spec.get("range") is not None:
        lo, hi = spec["range"]
        text += f" in [{lo:g}, {hi:g}]"
    return text


def _compatible(producer: Mapping[str, Any], consumer: Mapping[str, Any]) -> bool:
    accepts = consumer.get("accepts")
    if accepts is not None:
        if producer.get("format") not in accepts:
            return False
    elif producer.get("format") != consumer.get("format"):
        return False
    p_dims, c_dims = int(producer.get("dims", 0)), int(consumer.get("dims", 0))
    if p_dims > 0 and c_dims > 0 and p_dims != c_dims:
        return False
    p_range, c_range = producer.get("range"), consumer.get("range")
    if p_range is not None and c_range is not None:
        if float(p_range[0]) < float(c_range[0]) - 1e-9 or float(p_range[1]) > float(c_range[1]) + 1e-9:
            return False
    return True


def check_server_specs(server: str, hello: Mapping[str, Any], params: Mapping[str, Any], run: Mapping[str, Any]) -> None:
    """Raise one :class:`UserInputError` line at the first mismatch; return when everything fits.

    ``server`` names it in messages; ``hello`` is its HELLO payload; ``params`` the merged
    benchmark params; ``run`` holds ``cameras``, ``state`` (protocol), ``settle_steps``,
    ``seed``, ``max_steps`` (this suite's, or None), ``pipeline`` (stage -> name).
    """
    prefix = f"policy=vla_eval: {server}"
    pipeline = run.get("pipeline") or {}
    for stage in ("decoder", "normalize"):
        if pipeline.get(stage, "none") != "none":
            raise UserInputError(f"{prefix} returns robot actions, but {stage}={pipeline[stage]} would decode them "
                                 f"again; allowed: {stage}=none")

    action_spec = hello.get("action_spec") or {}
    declared = {k: v for k, v in action_spec.items() if isinstance(v, Mapping) and v.get("format") != RAW}
    libero_keys = [k for k in declared if k in LIBERO_ACTION_SPEC]
    if libero_keys:
        convert = pipeline.get("convert", "none")
        if convert != "none":
            raise UserInputError(f"{prefix} declares LIBERO action components {sorted(libero_keys)}, but "
                                 f"convert={convert} would convert them again; allowed: convert=none")
        for key, expected in LIBERO_ACTION_SPEC.items():
            got = declared.get(key)
            if got is None:
                raise UserInputError(f"{prefix} declares no action component {key!r} (it declares "
                                     f"{sorted(declared)}), but LIBERO executes {key} as {_describe(expected)}")
            if not _compatible(got, expected):
                raise UserInputError(f"{prefix} sends action {key} as {_describe(got)}, but LIBERO with "
                                     f"convert=none executes {_describe(expected)}")
    unknown = sorted(k for k in declared if k not in LIBERO_ACTION_SPEC)
    if unknown and not libero_keys:
        raise UserInputError(f"{prefix} declares action components {unknown}, which LIBERO does not execute; "
                             f"allowed: position, rotation, gripper (or raw)")

    if params.get("absolute_action"):
        raise UserInputError(f"{prefix} asks for absolute_action=true, but this harness executes delta actions; "
                             "allowed: absolute_action=false")
    for key, run_key, label in (("num_steps_wait", "settle_steps", "protocol.settle_steps"),
                                ("seed", "seed", "protocol.seed"), ("max_steps", "max_steps", "the suite's max steps")):
        if params.get(key) is not None and run.get(run_key) is not None and int(params[key]) != int(run[run_key]):
            raise UserInputError(f"{prefix} asks for {key}={params[key]}, but {label} is {run[run_key]}; "
                                 f"use a protocol with {run_key}={params[key]} or set policy.params.{key}")

    cameras = set(run.get("cameras") or ())
    observation_spec = hello.get("observation_spec") or {}
    for key, spec in observation_spec.items():
        if not isinstance(spec, Mapping):
            continue
        if key == "agentview" and "base_0_rgb" not in cameras:
            raise UserInputError(f"{prefix} expects the agentview image, but the protocol's cameras are "
                                 f"{sorted(cameras)}; it needs base_0_rgb")
        if key == "wrist":
            if not params.get("send_wrist_image"):
                raise UserInputError(f"{prefix} expects a wrist image, but send_wrist_image is false; "
                                     "set policy.params.send_wrist_image=true")
            if "left_wrist_0_rgb" not in cameras:
                raise UserInputError(f"{prefix} expects a wrist image, but the protocol's cameras are "
                                     f"{sorted(cameras)}; it needs left_wrist_0_rgb")
        if key == "state":
            if spec.get("format") not in (RAW, STATE_FORMAT):
                raise UserInputError(f"{prefix} expects state as {_describe(spec)}, but vla-eval's LIBERO "
                                     f"sends {STATE_FORMAT} 8-D")
            if not params.get("send_state"):
                raise UserInputError(f"{prefix} expects state, but send_state is false; "
                                     "set policy.params.send_state=true")
    if params.get("send_state") and not run.get("state", True):
        raise UserInputError(f"{prefix} asks for the robot state (send_state=true), but this protocol gives "
                             "the policy no state (protocol.state=false)")
    if params.get("send_wrist_image") and "left_wrist_0_rgb" not in cameras:
        raise UserInputError(f"{prefix} asks for the wrist image (send_wrist_image=true), but the protocol's "
                             f"cameras are {sorted(cameras)}; it needs left_wrist_0_rgb")
