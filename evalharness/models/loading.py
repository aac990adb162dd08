"""Build the ``torch.nn.Module`` a checkpoint names and load its weights: the only torch step.

Runs in the process that runs episodes (a worker, the in-process runner, a policy server),
never in the parent that only computes identities. Every way a checkpoint can fail to load
is one line naming the file and what is wrong: a ``_target_`` class that cannot be
imported or built, a tensor the model does not have, a tensor of the wrong shape, a
tensor the file lacks. ``device`` is ``auto`` (CUDA when available, else CPU), ``cpu``
or ``cuda[:i]``; ``dtype`` is ``float32``, ``bfloat16`` or ``float16``.
"""

from __future__ import annotations

import re

from evalharness.errors import UserInputError
from evalharness.models.checkpoint_files import SPEC_FILE, WEIGHTS_FILE, CheckpointFiles

DTYPES = ("float32", "bfloat16", "float16")
#: What ``policy.device`` may be (validated as text, without torch).
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
DEVICES_ALLOWED = "auto, cpu, cuda, cuda:<index>"


def resolve_device(device: str):
    """The torch.device for a validated ``device`` string; CUDA asked for but absent is an error."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise UserInputError(f"policy.device={device!r} is not available on this machine "
                                 f"({torch.cuda.device_count()} CUDA devices); allowed: auto, cpu")
    return torch.device(device)


def _import_target(files: CheckpointFiles, target: str) -> None:
    """Import ``package.module.Class`` ourselves, so each failure reads as one plain line."""
    import importlib

    module_name, _, attribute = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of the user's module is reported
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserInputError(f"{files.where(SPEC_FILE)} model._target_ {target!r} cannot be imported "
                             f"({type(exc).__name__}: {reason})") from None
    if not callable(getattr(module, attribute, None)):
        raise UserInputError(f"{files.where(SPEC_FILE)} model._target_ {target!r} cannot be imported: module "
                             f"{module_name!r} has no class {attribute!r}")


def load_model(files: CheckpointFiles, device: str = "auto", dtype: str = "float32"):
    """The checkpoint's module with its weights, in eval mode on ``device`` / ``dtype``."""
    import torch
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from safetensors.torch import load_file

    target = files.spec.model["_target_"]
    _import_target(files, target)
    try:
        model = instantiate(dict(files.spec.model), _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise UserInputError(f"{files.where(SPEC_FILE)} model._target_ {target!r} cannot be imported or built "
                             f"({type(cause).__name__}: {reason})") from None
    if not isinstance(model, torch.nn.Module):
        raise UserInputError(f"{files.where(SPEC_FILE)} model._target_ {target!r} built a "
                             f"{type(model).__name__}; allowed: a torch.nn.Module")
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    found = {name: tuple(entry["shape"]) for name, entry in files.tensors.items()}
    for name, shape in sorted(found.items()):  # sorted: the same checkpoint always names the same tensor
        if name not in expected:
            raise UserInputError(f"{files.where(WEIGHTS_FILE)} holds tensor {name!r}, which {target} does not have "
                                 f"(the model's tensors: {', '.join(sorted(expected)[:6])}, ...)")
        if shape != expected[name]:
            raise UserInputError(f"{files.where(WEIGHTS_FILE)} tensor {name!r} has shape {list(shape)}; {target} "
                                 f"with the arguments in policy.yaml expects {list(expected[name])}")
    missing = sorted(set(expected) - set(found))
    if missing:
        raise UserInputError(f"{files.where(WEIGHTS_FILE)} lacks tensor {missing[0]!r} of {target} "
                             f"({len(missing)} missing)")
    state = load_file(str(files.file(WEIGHTS_FILE)), device="cpu")
    model.load_state_dict(state, strict=True)
    torch_device = resolve_device(device)
    return model.to(device=torch_device, dtype=getattr(torch, dtype)).eval(), torch_device
