"""What runs inside one worker process: build envs and the policy, run episodes, report.

A worker receives a *group* of episode specs of one task, builds that task's env once
(~7 s) and runs the episodes in order, sending ``("done", record)`` after each one and
``("idle", None)`` after the group. The parent owns the result store; a worker never
writes results itself, so a worker dying mid-episode loses nothing already reported.

Signals: a worker ignores SIGINT (the parent decides what a Ctrl-C means) and takes
SIGTERM as "stop now": it abandons its episode, closes its env and policy (a remote
policy deletes its session), and exits. SIGTERM is held back while a record is being sent,
so the parent never reads half a message.
"""

from __future__ import annotations

import dataclasses
import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from evalharness.engine.child_process import die_with_parent
from evalharness.errors import UserInputError
from evalharness.plan.spec import EpisodeSpec
from evalharness.policies.build import build_policy


#: A worker's fatal message that is a user's mistake (one line for the user, exit 2).
USER_ERROR_PREFIX = "UserInputError: "


@dataclass(frozen=True)
class WorkItem:
    """One episode as sent to a worker: the spec and whether to film it."""

    spec: EpisodeSpec
    video: str  # "no", "yes", or "if_failure"
    max_steps: int | None = None
    attempt: int = 1  # numbered by the runner's crash accounting (evalharness.engine.crash_accounting)


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
    fast_physics: bool = True  # envs.libero.fast_step: same trajectories, less repeated work
    render_threads: int | None = None  # LP_NUM_THREADS for the worker (envs.libero.runtime)


class _Stopped(BaseException):
    """SIGTERM from the parent: unwind whatever runs, through the ``finally`` that closes."""


_stopping = False  # set by SIGTERM: the episode in flight is abandoned, never reported


def _on_sigterm(signum: int, frame: Any) -> None:
    global _stopping
    _stopping = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the closing finish
    raise _Stopped


def _handle_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _send(conn: Connection, message: tuple[str, Any]) -> None:
    """Send a whole message: a SIGTERM arriving meanwhile is handled right after."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        conn.send(message)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


class _EnvCache:
    """Keeps the env of the current task; building one costs ~7 s, keeping many costs memory."""

    def __init__(self, camera_size: int, fast_physics: bool = True) -> None:
        self.camera_size = camera_size
        self.fast_physics = fast_physics
        self.key: tuple[str, int, str | None] | None = None
        self.env = None

    def get(self, suite: str, task_index: int, instruction: str | None = None):
        """The env of the task; ``instruction`` = the plan's, when it is not the task's own (LIBERO-Plus's prompt)."""
        from envs.libero.env import LiberoEnv

        if self.key != (suite, task_index, instruction):
            self.close()
            self.env = LiberoEnv(suite, task_index, camera_size=self.camera_size, fast_physics=self.fast_physics,
                                 instruction=instruction)
            self.key = (suite, task_index, instruction)
        elif self.env.fast_physics != self.fast_physics:
            self.env.fast_physics = self.fast_physics
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
        perturbation=getattr(outcome, "perturbation", None),
        control_key=spec.control_key,
    )
    return record.model_dump()


def run_item(item: WorkItem, config: WorkerConfig, envs: _EnvCache, policy, settings_cache: dict) -> dict[str, Any]:
    """Run one episode and return its record as a dict (video finalized)."""
    from evalharness.errors import EnvError
    from evalharness.policies.raw_output_recorder import take_raw_outputs
    from evalharness.config.protocol import load_protocol
    from evalharness.episode.video_selection import EpisodeRecorder
    from evalharness.episode.rollout import EpisodeOutcome, RolloutSettings, run_episode

    spec = item.spec
    from envs.libero.catalog import base_suite

    protocol_suite = base_suite(spec.suite, spec.task_index)  # PRO / Plus: the base suite's max steps
    cache_key = (protocol_suite, item.max_steps)
    if cache_key not in settings_cache:
        protocol = load_protocol(config.protocol)
        settings_cache[cache_key] = RolloutSettings.from_protocol(protocol, protocol_suite, item.max_steps)
    settings = settings_cache[cache_key]

    recorder = EpisodeRecorder(Path(config.run_dir), spec, item.video, config.video_fps)
    envs.fast_physics = config.fast_physics
    try:
        # LIBERO-Plus's suite.prompt chooses the instruction in the plan; other suites use the task's
        env = envs.get(spec.suite, spec.task_index, spec.instruction if spec.suite == "libero_plus" else None)
    except Exception as exc:  # noqa: BLE001 - an env that cannot be built is this episode's error
        envs.close()
        error = EnvError(f"building the env failed: {type(exc).__name__}: {exc}")
        outcome = EpisodeOutcome.error_only(error)
    else:
        outcome = run_episode(env, policy, spec, settings, recorder.sink, attempt=item.attempt)
        if outcome.error_kind == "env_error":
            envs.close()  # do not reuse a simulator that threw
    video = recorder.finish(outcome)
    if recorder.events:  # the video could not be written: say so in the record
        outcome = dataclasses.replace(outcome, events=[*outcome.events, *recorder.events])
    record = make_record(spec, outcome, video=video, attempts=item.attempt)
    raw_outputs = take_raw_outputs(policy)
    if raw_outputs is not None:
        record["raw_outputs"] = raw_outputs  # the parent writes them to the sidecar, then the record
    return record


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of a worker process (started with the 'spawn' method)."""
    die_with_parent()
    _handle_signals()
    policy = None
    from envs.libero.runtime import limit_render_threads

    limit_render_threads(config.render_threads)
    envs = _EnvCache(config.camera_size)
    try:
        from envs.libero.runtime import prepare_process

        prepare_process()
        settings_cache: dict = {}
        try:
            policy = build_policy(config.policy, config.pipeline, record_raw=config.raw_outputs)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the run
            _send(conn, ("fatal", f"{type(exc).__name__}: {exc}"))
            return
        while True:
            items = conn.recv()
            if items is None:
                break
            for item in items:
                try:
                    record = run_item(item, config, envs, policy, settings_cache)
                    if _stopping:
                        # SIGTERM arrived inside native code (numba, MuJoCo), which turned
                        # _Stopped into an ordinary exception the rollout recorded as the
                        # episode's error: the episode was abandoned, not run, so drop it.
                        return
                except UserInputError as exc:  # a configuration mistake found late (checkpoint weights)
                    _send(conn, ("fatal", f"{USER_ERROR_PREFIX}{exc}"))
                    return
                except Exception:  # noqa: BLE001 - a harness bug: report it, do not hang the run
                    if not _stopping:  # (else it is _Stopped, converted by native code)
                        _send(conn, ("fatal", traceback.format_exc()))
                    return
                _send(conn, ("done", record))
            _send(conn, ("idle", None))
    except (EOFError, BrokenPipeError, KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stop request during cleanup must not cut it short
        envs.close()
        if policy is not None:
            policy.close()
