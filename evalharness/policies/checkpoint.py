"""``policy=checkpoint policy.path=DIR``: a trained network from a local checkpoint directory.

The directory (``docs/checkpoints.md``) holds ``policy.yaml`` (the model class as a Hydra
``_target_`` with its arguments, its inputs, its output and the pipeline that output
needs), ``model.safetensors`` and ``norm_stats.json`` (openpi's format).

Following the contract of :mod:`evalharness.policies.base`, ``act`` returns the model's
raw output: token ids (``output.type: tokens``; greedy at ``temperature`` 0, else sampled
per position from the fork's own generator) or a normalized chunk (``output.type:
chunk``). The pipeline the checkpoint declares turns it into actions
(:meth:`declared_pipeline`; how it combines with the command line's ``decoder`` /
``normalize`` / ``convert`` groups is in :mod:`evalharness.policies.pipelined`).

Where the weights are. Building this policy reads and validates the files but loads no
weight and imports no torch (:mod:`evalharness.models.checkpoint_files`): the parent
builds it once for the identity, which is the sha256 of the three files. The model loads
on first use (``reset`` / ``act``) in the process that runs episodes. :meth:`fork` shares
the loaded module (one copy per process, however many sessions a server holds), and
:meth:`act_batch` runs one forward pass over the forks' observations. Each fork keeps its
own ``torch.Generator``, seeded at ``reset``, and samples on the CPU from its own row of
the batch, so its answer never depends on its batch-mates.

Per-query sampling (``observation["sampling"]``, what ``evalharness serve`` passes on,
:mod:`evalharness.policies.sampling`): a token checkpoint honours ``temperature`` (0 =
argmax), ``top_k`` and ``top_p`` (per position, over the classes, before the softmax
draw) and ``seed`` (a generator seeded with it for that query only). Without it the
draw is exactly the configured one. A chunk checkpoint is deterministic and honours none.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from evalharness.errors import PolicyError
from evalharness.models.checkpoint_files import FORMAT_VERSION, CheckpointFiles
from evalharness.models.loading import DEVICE_PATTERN, DEVICES_ALLOWED
from evalharness.policies.base import Observation, Policy
from evalharness.config.validation import validate_settings

class CheckpointSettings(BaseModel):
    """``policy=checkpoint`` settings (``conf/policy/checkpoint.yaml``), validated in one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = Field(None, description="the checkpoint directory (required; checked by CheckpointFiles)")
    device: str = Field("auto", description=f"one of {DEVICES_ALLOWED}")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    temperature: Annotated[float, Field(strict=True, ge=0, lt=1e6)] = Field(0.0, description="0 = greedy")
    pipeline: Literal["declared", "command_line"] = Field(
        "declared", description="declared: the checkpoint's pipeline, stages set on the command line replace it; "
                                "command_line: only the command line's decoder/normalize/convert")
    threads: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        1, description="torch CPU threads per process; null = torch's default (one per core)")

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        if not DEVICE_PATTERN.match(device):
            raise ValueError(f"allowed: {DEVICES_ALLOWED}")
        return device


class _LoadedModel:
    """The module, its device and input transform: loaded once, shared by every fork."""

    def __init__(self) -> None:
        self.model: Any = None
        self.device: Any = None
        self.inputs: Any = None


class CheckpointPolicy(Policy):
    """A ``torch.nn.Module`` described by ``policy.yaml`` in ``path``."""

    name = "checkpoint"

    def __init__(self, path: str | None = None, device: str = "auto", dtype: str = "float32",
                 temperature: float = 0.0, pipeline: str = "declared", threads: int | None = 1) -> None:
        settings = validate_settings(CheckpointSettings, {
            "path": path, "device": device, "dtype": dtype, "temperature": temperature, "pipeline": pipeline,
            "threads": threads}, "policy")
        self.files = CheckpointFiles(settings.path)  # one-line errors for every file problem, no torch
        self.device = settings.device
        self.dtype = settings.dtype
        self.temperature = float(settings.temperature)
        self.pipeline_mode = settings.pipeline
        self.threads = settings.threads
        self.cameras = tuple(self.files.spec.inputs.cameras)
        if self.files.spec.output.type == "tokens":
            self.sampling_parameters = frozenset({"temperature", "top_k", "top_p", "seed"})
        self._shared = _LoadedModel()
        self._generator: Any = None
        self._seed = 0
        self._queries = 0

    # --- identity and pipeline (no torch) ---------------------------------------------------

    def identity(self) -> dict[str, Any]:
        spec = self.files.spec
        return {
            "name": self.name,
            "format": FORMAT_VERSION,
            "files_sha256": dict(self.files.sha256),
            "model": dict(spec.model),
            "inputs": spec.inputs.model_dump(),
            "output": {"type": spec.output.type, "horizon": spec.output.horizon,
                       "action_dim": spec.output.action_dim},
            "temperature": self.temperature,
            "device": self.device,
            "dtype": self.dtype,
            "pipeline": self.pipeline_mode,
            "threads": self.threads,
        }

    def declared_pipeline(self) -> dict[str, dict[str, Any]] | None:
        if self.pipeline_mode == "command_line":
            return None
        return self.files.declared_pipeline()

    # --- the model (loaded in the process that runs episodes) ---------------------------------

    def load(self) -> None:
        """Load the weights now (otherwise done on first use); shared with every fork."""
        if self._shared.model is None:
            from evalharness.models.inputs import InputTransform
            from evalharness.models.loading import load_model

            if self.threads is not None:
                import torch

                # Several workers each using every core slow each other down by 100x on a
                # loaded CPU; the thread count can also change float sums in the last bits.
                torch.set_num_threads(self.threads)
            self._shared.inputs = InputTransform(self.files)
            self._shared.model, self._shared.device = load_model(self.files, self.device, self.dtype)

    @property
    def loaded(self) -> bool:
        return self._shared.model is not None

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self.load()
        self._seed = int(seed) % (2**63)
        self._generator = None  # created (and seeded) on first sampling, only when temperature > 0
        self._queries = 0

    def act(self, observation: Observation) -> np.ndarray:
        return type(self).act_batch([self], [observation])[0]

    def fork(self) -> "CheckpointPolicy":
        """Same loaded module (not copied), own generator and counters."""
        clone = copy.copy(self)
        clone._generator = None
        clone._seed = 0
        clone._queries = 0
        return clone

    @classmethod
    def act_batch(cls, policies: Sequence[Policy], observations: Sequence[Observation]) -> list[Any]:
        """One forward pass over all forks' observations; per-fork sampling from its own row."""
        import torch

        forks = list(policies)
        if not forks:
            return []
        first = forks[0]
        if not all(isinstance(p, CheckpointPolicy) and p._shared is first._shared for p in forks):
            raise TypeError("CheckpointPolicy.act_batch takes forks of one CheckpointPolicy")
        if len(observations) != len(forks):
            raise ValueError(f"{len(forks)} policies but {len(observations)} observations")
        first.load()
        shared = first._shared
        prepared = [shared.inputs(obs) for obs in observations]
        dtype = getattr(torch, first.dtype)
        batch = {
            "images": torch.from_numpy(np.stack([p["images"] for p in prepared])).to(shared.device, dtype),
            "image_mask": torch.from_numpy(np.stack([p["image_mask"] for p in prepared])).to(shared.device),
            "state": torch.from_numpy(np.stack([p["state"] for p in prepared])).to(shared.device, dtype),
            "prompt_ids": torch.from_numpy(np.stack([p["prompt_ids"] for p in prepared])).to(shared.device),
        }
        with torch.inference_mode():
            out = shared.model(**batch)
        out = out.detach().to("cpu", torch.float32)
        rows = first._check_output(out, len(forks))
        return [fork._output(row, obs.get("sampling")) for fork, row, obs in zip(forks, rows, observations, strict=True)]

    def _check_output(self, out: Any, batch: int) -> Any:
        spec = self.files.spec.output
        if spec.type == "tokens":
            ok = out.ndim == 3 and out.shape[0] == batch
            wanted = "(batch, positions, classes) logits"
        else:
            ok = out.ndim == 3 and tuple(out.shape) == (batch, spec.horizon, spec.action_dim)
            wanted = f"a (batch, {spec.horizon}, {spec.action_dim}) chunk"
        if not ok:
            raise PolicyError(f"checkpoint model returned shape {tuple(out.shape)}; policy.yaml output.type "
                              f"{spec.type} needs {wanted}")
        return out

    def _output(self, row: Any, sampling: Any = None) -> np.ndarray:
        import torch

        self._queries += 1
        if self.files.spec.output.type == "chunk":
            return row.numpy().astype(np.float64)
        temperature = self.temperature
        if sampling is not None and sampling.temperature is not None:
            temperature = float(sampling.temperature)
        if temperature == 0.0:
            return row.argmax(dim=-1).numpy().astype(np.int64)
        if sampling is not None and sampling.seed is not None:
            generator = torch.Generator().manual_seed(int(sampling.seed) % 2**63)
        else:
            if self._generator is None:
                self._generator = torch.Generator().manual_seed(self._seed)
            generator = self._generator
        logits = row / temperature
        if sampling is not None:
            logits = _top_k_top_p(logits, sampling.top_k, sampling.top_p)
        probs = torch.softmax(logits, dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1).numpy().astype(np.int64)

    def episode_stats(self) -> dict[str, float | int]:
        return {"queries": self._queries}

    def close(self) -> None:
        """Forks share the module; it is freed with the last reference to it."""
        self._generator = None


def _top_k_top_p(logits: Any, top_k: int | None, top_p: float | None) -> Any:
    """Logits (positions, classes) with every class outside the top ``k`` and outside the
    nucleus of probability ``p`` (the smallest most-likely set reaching p; the best class
    always stays) set to -inf."""
    import torch

    classes = logits.shape[-1]
    if top_k is not None and 0 < top_k < classes:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
        drop = cumulative - torch.softmax(ordered, dim=-1) >= top_p  # the mass before a class already reaches p
        drop[..., 0] = False
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
    return logits
