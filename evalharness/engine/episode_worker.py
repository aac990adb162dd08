"""The episode worker: what runs episodes wherever they run, with its envs, policy and settings.

A local worker process (:mod:`evalharness.engine.worker`), the in-process runner
(``runner.workers=0``) and a Ray actor (:mod:`evalharness.engine.ray_runner`) all hold one
:class:`EpisodeWorker` and call :meth:`EpisodeWorker.run` on each work item, so an episode
runs the same code, with the same env reuse, wherever it runs.

What crosses a process boundary is typed and validated once, in the parent:
:class:`WorkerConfig` carries the validated :class:`~evalharness.config.protocol.Protocol`
(not its raw config), and a worker answers each item with an :class:`EpisodeResult`, the
:class:`~evalharness.results.records.EpisodeRecord` itself plus the raw model outputs of the
episode when ``record.raw_outputs`` is on. All of them pickle.
"""

from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalharness.config.protocol import Protocol
from evalharness.plan.spec import EpisodeSpec
from evalharness.results.records import EpisodeRecord

if TYPE_CHECKING:
    from evalharness.episode.rollout import EpisodeOutcome, RolloutSettings
    from evalharness.policies.base import Policy

#: A file each worker appends its env build count to when it closes (``bench --repeated``).
REPORT_ENV_BUILDS = "EVALHARNESS_REPORT_ENV_BUILDS"


@dataclass(frozen=True)
class WorkItem:
    """One episode as sent to a worker: the spec and whether to film it."""

    spec: EpisodeSpec
    video: str  # "no", "yes", or "if_failure"
    max_steps: int | None = None
    attempt: int = 1  # numbered by the runner's crash accounting (evalharness.engine.crash_accounting)


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs to rebuild the run's parts, validated in the parent (picklable).

    ``policy`` and ``pipeline`` are the Hydra configs the worker instantiates (each part
    validates its own settings model when it is built); ``protocol`` is already validated.
    """

    policy: dict[str, Any]
    pipeline: dict[str, Any]
    protocol: Protocol
    run_dir: str
    video_fps: int
    camera_size: int
    raw_outputs: bool = False  # record.raw_outputs: send each query's raw model output with the record
    fast_physics: bool = True  # envs.libero.fast_step: same trajectories, less repeated work
    render_threads: int | None = None  # LP_NUM_THREADS for the worker (envs.libero.runtime)


@dataclass(frozen=True)
class EpisodeResult:
    """A worker's answer for one item: the record to store and, when recorded, the raw outputs.

    The parent writes ``raw_outputs`` to ``raw_outputs.jsonl`` before it appends ``record``.
    """

    record: EpisodeRecord
    raw_outputs: list[dict[str, Any]] | None = None


class EnvCache:
    """Keeps the envs of the last ``capacity`` tasks; building one costs ~7 s, keeping one ~2 GB.

    ``builds`` counts the envs built (the warm :class:`evalharness.api.Evaluator` reports it).
    """

    def __init__(self, camera_size: int, fast_physics: bool = True, capacity: int = 1) -> None:
        self.camera_size = camera_size
        self.fast_physics = fast_physics
        self.capacity = max(1, capacity)
        self.builds = 0
        self._envs: OrderedDict[tuple[str, int, str | None], Any] = OrderedDict()

    def get(self, suite: str, task_index: int, instruction: str | None = None):
        """The env of the task; ``instruction`` = the plan's, when it is not the task's own (LIBERO-Plus's prompt)."""
        from envs.libero.env import LiberoEnv

        key = (suite, task_index, instruction)
        env = self._envs.get(key)
        if env is None:
            while len(self._envs) >= self.capacity:
                self._envs.popitem(last=False)[1].close()
            env = LiberoEnv(suite, task_index, camera_size=self.camera_size, fast_physics=self.fast_physics,
                            instruction=instruction)
            self.builds += 1
            self._envs[key] = env
        else:
            self._envs.move_to_end(key)
            if env.fast_physics != self.fast_physics:
                env.fast_physics = self.fast_physics
        return env

    def drop(self, suite: str, task_index: int, instruction: str | None = None) -> None:
        """Close one task's env (a simulator that threw is not reused)."""
        env = self._envs.pop((suite, task_index, instruction), None)
        if env is not None:
            env.close()

    def close(self) -> None:
        while self._envs:
            self._envs.popitem(last=False)[1].close()


def make_record(spec: EpisodeSpec, outcome: EpisodeOutcome, video: str | None = None, attempts: int = 1) -> EpisodeRecord:
    """The stored record of an episode: its spec's coordinates plus what the rollout measured."""
    return EpisodeRecord(
        key=spec.key,
        suite=spec.suite,
        task_index=spec.task_index,
        task_name=spec.task_name,
        instruction=spec.instruction,
        init_state=spec.init_state,
        seed=spec.seed,
        success=outcome.success,
        steps=outcome.steps,
        error_kind=outcome.error_kind,
        error_message=outcome.error_message,
        wall_time_s=outcome.wall_time_s,
        policy_time_s=outcome.policy_time_s,
        env_time_s=outcome.env_time_s,
        render_time_s=outcome.render_time_s,
        video=video,
        action_fingerprint=outcome.action_fingerprint,
        events=outcome.events,
        policy_stats=outcome.policy_stats,
        attempts=attempts,
        perturbation=getattr(outcome, "perturbation", None),
        control_key=spec.control_key,
    )


class EpisodeWorker:
    """The envs, the policy and the rollout settings of one worker, kept between episodes.

    The policy is built from ``config`` unless one is given (a caller that already holds
    it, e.g. an in-memory model: then the caller owns it and ``close`` leaves it open).
    Rollout settings are resolved once per (suite, max_steps) from the validated
    protocol. ``close`` closes the envs and the policy (a remote policy ends its session).
    """

    def __init__(self, config: WorkerConfig, policy: Policy | None = None, env_capacity: int = 1) -> None:
        self.config = config
        self.envs = EnvCache(config.camera_size, config.fast_physics, capacity=env_capacity)
        self._settings: dict[tuple[str, int | None], RolloutSettings] = {}
        self.owns_policy = policy is None
        if policy is None:
            from evalharness.policies.build import build_policy

            policy = build_policy(config.policy, config.pipeline, record_raw=config.raw_outputs)
        self.policy = policy

    def reconfigure(self, config: WorkerConfig, policy: Policy | None = None) -> None:
        """Take the next run's config, keeping what it shares with this one (a warm worker).

        The envs are kept unless the camera size changed; the policy is rebuilt when its
        config changed; the rollout settings are resolved again when the protocol changed.
        """
        old, self.config = self.config, config
        if (config.camera_size, config.fast_physics) != (old.camera_size, old.fast_physics):
            self.envs.close()
            self.envs = EnvCache(config.camera_size, config.fast_physics, capacity=self.envs.capacity)
        if config.protocol != old.protocol:
            self._settings.clear()
        if policy is not None:  # the caller's (in-memory) policy for this run
            self._close_policy()
            self.policy, self.owns_policy = policy, False
        elif not self.owns_policy or (config.policy, config.pipeline, config.raw_outputs) != (
                old.policy, old.pipeline, old.raw_outputs):
            from evalharness.policies.build import build_policy

            self._close_policy()
            self.policy = build_policy(config.policy, config.pipeline, record_raw=config.raw_outputs)
            self.owns_policy = True

    def _close_policy(self) -> None:
        if self.owns_policy:
            self.policy.close()

    def settings(self, suite: str, max_steps: int | None) -> RolloutSettings:
        """The rollout settings of ``suite`` (a base LIBERO suite: PRO / Plus tasks use their base's max steps)."""
        from evalharness.episode.rollout import RolloutSettings

        key = (suite, max_steps)
        if key not in self._settings:
            self._settings[key] = RolloutSettings.from_protocol(self.config.protocol, suite, max_steps)
        return self._settings[key]

    def run(self, item: WorkItem) -> EpisodeResult:
        """Run one episode; its video is finalized in the run folder before this returns."""
        from evalharness.episode.video_selection import EpisodeRecorder
        from evalharness.policies.raw_output_recorder import take_raw_outputs

        spec = item.spec
        recorder = EpisodeRecorder(Path(self.config.run_dir), spec, item.video, self.config.video_fps)
        outcome = self._roll_out(item, recorder.sink)
        video = recorder.finish(outcome)
        if recorder.events:  # the video could not be written: say so in the record
            outcome = dataclasses.replace(outcome, events=[*outcome.events, *recorder.events])
        record = make_record(spec, outcome, video=video, attempts=item.attempt)
        return EpisodeResult(record, take_raw_outputs(self.policy))

    def _roll_out(self, item: WorkItem, frame_sink: Any) -> EpisodeOutcome:
        from evalharness.episode.rollout import EpisodeOutcome, run_episode
        from evalharness.errors import EnvError

        from envs.libero.catalog import base_suite

        spec = item.spec
        settings = self.settings(base_suite(spec.suite, spec.task_index), item.max_steps)
        # LIBERO-Plus's suite.prompt chooses the instruction in the plan; other suites use the task's
        instruction = spec.instruction if spec.suite == "libero_plus" else None
        try:
            env = self.envs.get(spec.suite, spec.task_index, instruction)
        except Exception as exc:  # noqa: BLE001 - an env that cannot be built is this episode's error
            self.envs.close()
            return EpisodeOutcome.error_only(EnvError(f"building the env failed: {type(exc).__name__}: {exc}"))
        outcome = run_episode(env, self.policy, spec, settings, frame_sink, attempt=item.attempt)
        if outcome.error_kind == "env_error":
            self.envs.drop(spec.suite, spec.task_index, instruction)  # do not reuse a simulator that threw
        return outcome

    def close(self) -> None:
        report = os.environ.get(REPORT_ENV_BUILDS)
        if report:  # bench --repeated counts the envs a CLI run built
            with open(report, "a") as handle:
                handle.write(f"{self.envs.builds}\n")
        try:
            self.envs.close()
        finally:
            self._close_policy()
