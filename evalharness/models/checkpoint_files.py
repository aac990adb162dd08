"""A checkpoint directory: its files, the ``policy.yaml`` schema, and validation without torch.

The parent process validates a checkpoint and computes its identity (sha256 of the files)
with this module alone: it never imports torch and never materializes a weight, so N
workers plus the parent do not hold N + 1 copies of a model. Everything checkable without
the model class is checked here, each failure one line naming the file and what is
allowed: a missing file, ``policy.yaml`` not matching the schema, a ``_target_`` whose
module cannot be found, a ``model.safetensors`` that is not a safetensors file, a
malformed ``norm_stats.json``. What needs the model (a tensor of the wrong shape, a class
missing from its module) is checked by :mod:`evalharness.models.loading` where the weights
load. The format is documented in ``docs/checkpoints.md``.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from envs.libero.env import CAMERAS
from evalharness.actions.files import sha256_file
from evalharness.actions.stats import load_norm_stats
from evalharness.config.parts import is_none
from evalharness.config.validation import validate_settings
from evalharness.errors import UserInputError

SPEC_FILE = "policy.yaml"
WEIGHTS_FILE = "model.safetensors"
STATS_FILE = "norm_stats.json"
FILES = (SPEC_FILE, WEIGHTS_FILE, STATS_FILE)
FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptSpec(_Strict):
    """How the instruction becomes model input: a format string, then hashed word ids."""

    format: str = Field("{instruction}", description="'{instruction}' is replaced by the task's instruction")
    tokenizer: Literal["hashed_words"] = "hashed_words"
    vocab: int = Field(4096, ge=2, description="ids 1..vocab-1 (crc32 of each lower-cased word); 0 = padding")
    max_words: int = Field(24, ge=1, description="the prompt is cut or zero-padded to this many ids")

    @field_validator("format")
    @classmethod
    def _has_instruction(cls, value: str) -> str:
        if "{instruction}" not in value:
            raise ValueError("must contain '{instruction}'")
        return value


class InputSpec(_Strict):
    """What the model sees: which cameras in which order, their size, the state, the prompt."""

    cameras: list[str] = Field(min_length=1, description="camera slots, in the order the model takes them")
    image_size: int = Field(ge=8, le=1024, description="images reach the model as image_size x image_size")
    image_transforms: list[Any] = Field(default_factory=list,
                                        description="named steps after the protocol's, e.g. [{resize: 64}]")
    state: Literal["normalized", "raw", "none"] = Field(
        "normalized", description="normalized: quantile with norm_stats.json's 'state'; none: zeros")
    state_dim: int = Field(8, ge=1)
    prompt: PromptSpec = Field(default_factory=PromptSpec)

    @field_validator("cameras")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if c not in CAMERAS]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a camera; allowed: {', '.join(CAMERAS)}")
        if len(set(value)) != len(value):
            raise ValueError("a camera is listed twice")
        return value

    @field_validator("image_transforms")
    @classmethod
    def _steps(cls, value: list[Any]) -> list[Any]:
        from evalharness.transforms.images import build_image_transform

        build_image_transform(value)
        return value


class OutputSpec(_Strict):
    """What the model returns, and the pipeline that turns it into LIBERO actions."""

    type: Literal["tokens", "chunk"] = Field(description="tokens: logits (B, T, classes), ids are sampled; "
                                                         "chunk: a normalized (B, H, D) chunk")
    horizon: int = Field(ge=1)
    action_dim: int = Field(ge=1)
    decoder: dict[str, Any] | None = None
    normalize: dict[str, Any] | None = None
    convert: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _decoder_for_tokens(self) -> "OutputSpec":
        if self.type == "tokens" and is_none(self.decoder):
            raise ValueError("output.type tokens needs a decoder (e.g. {name: mint_uniform, horizon: 10})")
        return self


class PolicySpec(_Strict):
    """The whole ``policy.yaml``."""

    format: Literal[1]
    model: dict[str, Any]
    inputs: InputSpec
    output: OutputSpec

    @field_validator("model")
    @classmethod
    def _target(cls, value: dict[str, Any]) -> dict[str, Any]:
        target = value.get("_target_")
        if not isinstance(target, str) or "." not in target:
            raise ValueError("needs '_target_: package.module.Class' (the torch.nn.Module to build)")
        return value


class CheckpointFiles:
    """A validated checkpoint directory (no torch involved)."""

    def __init__(self, path: str | Path) -> None:
        if path in (None, ""):
            raise UserInputError("policy.path is required for policy=checkpoint; set it to a checkpoint "
                                 f"directory ({', '.join(FILES)}), e.g. one written by 'evalharness checkpoint init'")
        self.directory = Path(path).expanduser().resolve()
        if not self.directory.is_dir():
            raise UserInputError(f"checkpoint {str(self.directory)!r} is not a directory; expected one holding "
                                 f"{', '.join(FILES)}")
        for name in FILES:
            if not (self.directory / name).is_file():
                raise UserInputError(f"checkpoint {str(self.directory)!r} has no {name}; a checkpoint holds "
                                     f"{', '.join(FILES)} (see docs/checkpoints.md)")
        self.spec = self._read_spec()
        self._check_target_module()
        self.tensors = self._read_weights_header()
        self._check_stats()

    def file(self, name: str) -> Path:
        return self.directory / name

    def where(self, name: str) -> str:
        return f"checkpoint {str(self.directory)!r}: {name}"

    def _read_spec(self) -> PolicySpec:
        try:
            data = yaml.safe_load(self.file(SPEC_FILE).read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserInputError(f"{self.where(SPEC_FILE)} is not valid YAML ({first})") from None
        if not isinstance(data, dict):
            raise UserInputError(f"{self.where(SPEC_FILE)} is not a mapping; expected keys format, model, inputs, "
                                 "output")
        return validate_settings(PolicySpec, data, "", source=self.where(SPEC_FILE))

    def _check_target_module(self) -> None:
        """The ``_target_``'s module must exist; found by name only (importing it would import torch)."""
        target = self.spec.model["_target_"]
        module = target.rsplit(".", 1)[0]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise UserInputError(f"{self.where(SPEC_FILE)} model._target_ {target!r} cannot be imported: no "
                                 f"module {module!r}; allowed: an importable 'package.module.Class'")

    def _read_weights_header(self) -> dict[str, dict[str, Any]]:
        """Tensor names -> {dtype, shape} from the safetensors header (8-byte length + JSON)."""
        path = self.file(WEIGHTS_FILE)
        size = path.stat().st_size
        try:
            with open(path, "rb") as handle:
                length = int.from_bytes(handle.read(8), "little")
                if size < 8 or not 0 < length <= min(_MAX_HEADER, size - 8):
                    raise ValueError("bad header length")
                header = json.loads(handle.read(length))
            header.pop("__metadata__", None)
            ends = [int(entry["data_offsets"][1]) for entry in header.values()]
            if 8 + length + max(ends, default=0) > size:
                raise ValueError("the file is shorter than its header says")
            tensors = {name: {"dtype": entry["dtype"], "shape": list(entry["shape"])} for name, entry in header.items()}
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"{self.where(WEIGHTS_FILE)} is not a safetensors file ({exc})") from None
        if not tensors:
            raise UserInputError(f"{self.where(WEIGHTS_FILE)} holds no tensors")
        return tensors

    def _check_stats(self) -> None:
        """``norm_stats.json`` in openpi's layout, with what this checkpoint uses from it."""
        where = self.where(STATS_FILE)
        path = self.file(STATS_FILE)
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"{where} is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("norm_stats"), dict):
            raise UserInputError(f"{where} is not in openpi's format; expected "
                                 '{"norm_stats": {"actions": {"mean", "std", "q01", "q99"}, "state": {...}}}')
        needs: list[tuple[str, tuple[str, ...], int | None]] = []
        if self.spec.inputs.state == "normalized":
            needs.append(("state", ("q01", "q99"), self.spec.inputs.state_dim))
        normalize = self.spec.output.normalize or {}
        if not is_none(normalize) and normalize.get("stats_path") in (None, ""):
            fields = ("mean", "std") if normalize.get("name") == "zscore" else ("q01", "q99")
            needs.append((normalize.get("key", "actions"), fields, None))
        for key, fields, dims in needs:
            stats = load_norm_stats(path, key, where=where)
            vectors = stats.vectors(fields, None, where)
            if dims is not None and vectors[0].size < dims:
                raise UserInputError(f"{where} {key!r} stats have {vectors[0].size} entries; inputs.state_dim is "
                                     f"{dims}")

    @cached_property
    def sha256(self) -> dict[str, str]:
        """sha256 of each file: the checkpoint's identity (read once, never parsed as weights)."""
        return {name: sha256_file(self.file(name)) for name in FILES}

    def declared_pipeline(self) -> dict[str, dict[str, Any]]:
        """``output``'s decoder / normalize / convert; stats default to this checkpoint's norm_stats.json."""
        out = self.spec.output
        declared: dict[str, dict[str, Any]] = {}
        for group in ("decoder", "normalize", "convert"):
            cfg = getattr(out, group)
            if cfg is not None:
                declared[group] = dict(cfg)
        normalize = declared.get("normalize")
        if normalize and not is_none(normalize) and normalize.get("stats_path") in (None, ""):
            normalize["stats_path"] = str(self.file(STATS_FILE))
        return declared
