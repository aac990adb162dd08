"""What runs inside one worker process: build envs and the policy, run episodes, report.

A worker receives a *group* of episode specs of one task, builds that task's env once
(~7 s) and runs the episodes in order, sending ``("done", record)`` after each one and
``("idle", None)`` after the group. The parent owns the result store; a worker never
writes results itself, so a worker dying mid-episode loses nothing already reported.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from evalharness.child_process import die_with_parent
from evalharness.plan import EpisodeSpec


#: A worker's fatal message that is a user's mistake (one line for the user, exit 2).
USER_ERROR_PREFIX = "UserInputError: "


@dataclass(frozen=True)
class WorkItem:
    """One episode as sent to a worker: the spec and whether to film it."""

    spec: EpisodeSpec
    video: str  # "no", "yes", or "if_failure"
    max_steps: int | None = None


@dataclass
class WorkerConfig:
    """Everything a worker needs to rebuild the run's parts (plain data, picklable)."""

    policy: dict[str, Any]
    pipeline: dict[str, Any]
    protocol: dict[str, Any]
    run_dir: str
    video_fps: int
    camera_size: int
    raw_outputs: bool = False  # record.raw_outputs: send each query's raw model output with the record


def build_policy(policy_cfg: dict[str, Any], pipeline_cfg: dict[str, Any], *, record_raw: bool = False):
    """Instantiate the configured policy, wrapped in the action pipeline when one is set.

    ``record_raw`` puts a :class:`~evalharness.policies.raw_outputs.RawOutputRecorder`
    between the model and the pipeline, so that what the model emitted is kept.
    """
    from hydra.utils import instantiate

    from evalharness.policies.pipelined import wrap_with_pipeline
    from evalharness.policies.raw_outputs import RawOutputRecorder

    policy = instantiate(policy_cfg, _convert_="all")
    if record_raw:
        policy = RawOutputRecorder(policy)
    return wrap_with_pipeline(policy, pipeline_cfg)


class _EnvCache:
    """Keeps the env of the current task; building one costs ~7 s, keeping many costs memory."""

    def __init__(self, camera_size: int) -> None:
        self.camera_size = camera_size
        self.key: tuple[str, int] | None = None
        self.env = None

    def get(self, suite: str, task_index: int):
        from envs.libero.env import LiberoEnv

        if self.key != (suite, task_index):
            self.close()
            self.env = LiberoEnv(suite, task_index, camera_size=self.camera_size)
            self.key = (suite, task_index)
        return self.env

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
        self.env, self.key = None, None


def make_record(spec: EpisodeSpec, outcome: Any, video: str | None = None, attempts: int = 1) -> dict[str, Any]:
    """The stored record of an episode: its spec's coordinates plus what the rollout measured."""
    from evalharness.results.records import EpisodeRecord

    record = EpisodeRecord(
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
    )
    return record.model_dump()


def run_item(item: WorkItem, config: WorkerConfig, envs: _EnvCache, policy, settings_cache: dict) -> dict[str, Any]:
    """Run one episode and return its record as a dict (video finalized)."""
    from evalharness.errors import EnvError
    from evalharness.policies.raw_outputs import take_raw_outputs
    from evalharness.protocol import load_protocol
    from evalharness.recording import EpisodeRecorder
    from evalharness.rollout import EpisodeOutcome, RolloutSettings, run_episode

    spec = item.spec
    cache_key = (spec.suite, item.max_steps)
    if cache_key not in settings_cache:
        protocol = load_protocol(config.protocol)
        settings_cache[cache_key] = RolloutSettings.from_protocol(protocol, spec.suite, item.max_steps)
    settings = settings_cache[cache_key]

    recorder = EpisodeRecorder(Path(config.run_dir), spec, item.video, config.video_fps)
    try:
        env = envs.get(spec.suite, spec.task_index)
    except Exception as exc:  # noqa: BLE001 - an env that cannot be built is this episode's error
        envs.close()
        error = EnvError(f"building the env failed: {type(exc).__name__}: {exc}")
        outcome = EpisodeOutcome.error_only(error)
    else:
        outcome = run_episode(env, policy, spec, settings, recorder.sink)
        if outcome.error_kind == "env_error":
            envs.close()  # do not reuse a simulator that threw
    record = make_record(spec, outcome, video=recorder.finish(outcome))
    raw_outputs = take_raw_outputs(policy)
    if raw_outputs is not None:
        record["raw_outputs"] = raw_outputs  # the parent writes them to the sidecar, then the record
    return record


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of a worker process (started with the 'spawn' method)."""
    die_with_parent()
    from envs.libero.runtime import prepare_process

    prepare_process()
    envs = _EnvCache(config.camera_size)
    settings_cache: dict = {}
    try:
        policy = build_policy(config.policy, config.pipeline, record_raw=config.raw_outputs)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the run
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    from evalharness.errors import UserInputError

    try:
        while True:
            items = conn.recv()
            if items is None:
                break
            for item in items:
                try:
                    record = run_item(item, config, envs, policy, settings_cache)
                except UserInputError as exc:  # a configuration mistake found late (checkpoint weights)
                    conn.send(("fatal", f"{USER_ERROR_PREFIX}{exc}"))
                    return
                except Exception:  # noqa: BLE001 - a harness bug: report it, do not hang the run
                    conn.send(("fatal", traceback.format_exc()))
                    return
                conn.send(("done", record))
            conn.send(("idle", None))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        envs.close()
        policy.close()
