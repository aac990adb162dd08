"""The ``runner`` config group: one validated settings model, and the runner it names.

``conf/runner/local.yaml`` and ``conf/runner/ray.yaml`` name their class by ``_target_``
(any class with the :class:`~evalharness.engine.runner.Runner` shape will do); Hydra builds it
from the settings that class takes. A bad value is one line naming the key, the value and
what is allowed, before anything is written.

Settings every runner shares: ``workers``, ``max_attempts`` (crash accounting) and
``retry_errors`` (what a resume reruns; used by :mod:`evalharness.engine.evaluate`, not by the
runner), and ``policy_server`` (also evaluate's). The Ray runner adds where the cluster
is and how big a local one may be.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evalharness.errors import UserInputError

# Settings that are not handed to the runner class: evaluate.py acts on them
# (policy_server: the mint helper's runner.policy_server, validated where it is used).
_NOT_RUNNER_ARGS = {"target", "retry_errors", "policy_server"}


def _int_at_least(value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"allowed: an integer >= {low}")
    return value


class RunnerSettings(BaseModel):
    """Every key a runner config may hold; only those set in its YAML reach the class."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    target: str = Field(alias="_target_")
    workers: int | str = "auto"
    max_attempts: int = 2
    retry_errors: bool = False
    policy_server: Any = "none"  # runner.policy_server (conf/runner/local.yaml on main)
    # Ray only (conf/runner/ray.yaml)
    address: str | None = None  # null: start a local Ray instance
    num_cpus: int | None = None  # of a local instance; null: Ray's default (all cores)
    object_store_mb: int | None = None  # of a local instance
    gpus_per_worker: float | None = None

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> int | str:
        if value in ("auto", None):
            return "auto"
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("allowed: auto, 0 (in-process) or a positive integer")
        return value

    @field_validator("max_attempts", mode="before")
    @classmethod
    def _attempts(cls, value: Any) -> int:
        return _int_at_least(value, 1)

    @field_validator("retry_errors", mode="before")
    @classmethod
    def _bool(cls, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError("allowed: true, false")
        return value

    @field_validator("num_cpus", "object_store_mb", mode="before")
    @classmethod
    def _positive(cls, value: Any) -> int | None:
        return None if value is None else _int_at_least(value, 1)

    @field_validator("gpus_per_worker", mode="before")
    @classmethod
    def _gpus(cls, value: Any) -> float | None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ValueError("allowed: null or a number >= 0")
        return value

    def runner_kwargs(self) -> dict[str, Any]:
        """The settings the runner class takes: the shared ones and those its YAML sets."""
        return {
            name: getattr(self, name)
            for name in self.model_fields_set | {"workers", "max_attempts"}
            if name not in _NOT_RUNNER_ARGS
        }


def load_runner_settings(config: dict[str, Any]) -> RunnerSettings:
    """Validate the ``runner`` group; a bad value is one line."""
    try:
        settings = RunnerSettings.model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise UserInputError(f"runner.{key}={first.get('input')!r} is not valid; {message}") from None
    module, _, name = settings.target.rpartition(".")
    try:
        getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UserInputError(f"runner._target_={settings.target!r} cannot be loaded: {exc}") from None
    return settings


def build_runner(settings: RunnerSettings, **parts: Any):
    """Instantiate the runner class named by ``_target_`` with its settings and ``parts``
    (the worker config, the stop request), which are objects, not config."""
    from hydra.utils import instantiate

    factory = instantiate({"_target_": settings.target, **settings.runner_kwargs()}, _partial_=True)
    return factory(**parts)
