"""The ``runner`` config group: which class runs the episodes, and that class's own settings.

``conf/runner/local.yaml`` and ``conf/runner/ray.yaml`` name their class by ``_target_``; each
runner class points ``Settings`` at its own pydantic model (:class:`LocalRunnerSettings`,
:class:`RayRunnerSettings`), validated with
:func:`~evalharness.config.validation.validate_settings`, and is built from those settings
plus the run's objects (worker config, stop request). A bad value is one line naming the
key, the value and what is allowed, before anything is written.

``runner.retry_errors`` and ``runner.policy_server`` are not the runner's: they are the
run's top-level ``retry_errors`` and ``policy_server`` (:mod:`evalharness.engine.run_settings`).
The runner files keep the two keys, null, so that command lines written for the old place
still work; :func:`~evalharness.engine.run_settings.load_run_settings` forwards a value
given there.

Adding a runner
===============

1. **The class.** Write a class with the shape of :class:`~evalharness.engine.runner.Runner`
   (``run(items, sink)``: run each :class:`~evalharness.engine.worker.WorkItem`, hand every
   record to ``sink`` in the calling process, return early when ``stop`` is set). Its
   constructor takes ``config`` (the :class:`~evalharness.engine.worker.WorkerConfig`),
   ``stop`` and one keyword per setting.
2. **Its settings**: a subclass of :class:`RunnerSettings` (which brings ``workers`` and
   ``max_attempts``) with one field per extra key, set as the class's ``Settings``.
   Narrow a shared field by redeclaring it (as :class:`RayRunnerSettings` does for
   ``workers``).
3. **Its config**, ``conf/runner/<name>.yaml``: ``_target_`` naming the class and every
   setting with its default and a comment (plus ``retry_errors: null`` and
   ``policy_server: null``, the old spellings every runner file accepts)::

       # Where it runs, in one line.
       _target_: mypackage.MyRunner
       workers: auto
       max_attempts: 2
       retry_errors: null
       policy_server: null

   Then ``evalharness runner=<name> runner.workers=4`` selects and configures it.
4. **Test it** like ``tests/test_runner_settings.py`` and ``tests/test_engine_runner.py``:
   the same plan gives the same records as the local runner, a killed run resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator

from evalharness.config.fields import Count, OptionalCount
from evalharness.config.parts import load_part

__all__ = ["LocalRunnerSettings", "RayRunnerSettings", "RunnerChoice", "RunnerSettings", "build_runner",
           "load_runner_settings"]

#: Keys of the runner files that belong to the run (forwarded by engine.run_settings).
FORWARDED = ("retry_errors", "policy_server")


def _workers(*, in_process: bool):
    def check(value: Any) -> int | str:
        if value in ("auto", None):
            return "auto"
        low = 0 if in_process else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError("allowed: auto, 0 (in-process) or a positive integer" if in_process
                             else "allowed: auto or a positive integer")
        return value

    return PlainValidator(check)


def _gpus(value: Any) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise ValueError("allowed: null or a number >= 0")
    return None if value is None else float(value)


class RunnerSettings(BaseModel):
    """What every runner takes: how many workers, how often an episode whose worker died is tried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: Annotated[int | str, _workers(in_process=True)]  # auto: one per core that memory allows
    max_attempts: Count  # a worker that dies has its episode retried, then recorded as an error
    retry_errors: Any = None  # old place of the run's retry_errors (forwarded, not the runner's)
    policy_server: Any = None  # old place of the run's policy_server (forwarded, not the runner's)

    def runner_kwargs(self) -> dict[str, Any]:
        """The settings the runner class takes (all but the forwarded run settings)."""
        return {name: getattr(self, name) for name in type(self).model_fields if name not in FORWARDED}


class LocalRunnerSettings(RunnerSettings):
    """``conf/runner/local.yaml``: local worker processes (``workers: 0`` runs in this process)."""


class RayRunnerSettings(RunnerSettings):
    """``conf/runner/ray.yaml``: Ray actors on a cluster, or on a local instance of this size."""

    workers: Annotated[int | str, _workers(in_process=False)]  # actors; auto = one per CPU of the cluster
    address: str | None  # null: start a local Ray instance; "auto" or "host:port": join that cluster
    num_cpus: OptionalCount  # of a local instance; null: Ray's default (all cores)
    object_store_mb: OptionalCount  # of a local instance
    gpus_per_worker: Annotated[float | None, PlainValidator(_gpus)]


@dataclass(frozen=True)
class RunnerChoice:
    """The runner class a config names (``_target_``) and its validated settings."""

    target: str
    cls: type
    settings: RunnerSettings

    @property
    def workers(self) -> int | str:
        return self.settings.workers

    @property
    def max_attempts(self) -> int:
        return self.settings.max_attempts

    def runner_kwargs(self) -> dict[str, Any]:
        return self.settings.runner_kwargs()


def load_runner_settings(config: dict[str, Any]) -> RunnerChoice:
    """Validate the ``runner`` group with its class's settings model; a bad value is one line."""
    cls, settings = load_part("runner", config, object)
    if not isinstance(settings, RunnerSettings):
        from evalharness.errors import UserInputError

        raise UserInputError(f"runner._target_={config.get('_target_')!r} is not valid; allowed: a class whose "
                             "Settings subclass evalharness.engine.runner_settings.RunnerSettings")
    return RunnerChoice(target=str(config["_target_"]), cls=cls, settings=settings)


def build_runner(choice: RunnerChoice, **parts: Any):
    """The runner class built from its settings and ``parts`` (the worker config, the stop
    request), which are objects, not config."""
    return choice.cls(**choice.runner_kwargs(), **parts)
