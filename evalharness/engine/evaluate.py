"""The evaluation job: config -> plan -> runner -> result store -> summary and table.

``run_hydra(argv)`` is what ``evalharness`` / ``python -m evalharness`` call with Hydra
overrides. ``evaluate(cfg)`` does the work for one resolved config (one job of a sweep).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import shlex
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evalharness.config.conf import CONF_DIR, check_group_choices, check_overrides
from evalharness.config.redaction import recordable, redact
from evalharness.errors import UserInputError
from evalharness.engine import policy_server
from evalharness.engine.episode_worker import EpisodeResult, WorkerConfig, WorkItem
from evalharness.engine.in_memory import InMemoryPolicy
from evalharness.perturb.config import register_resolvers
from evalharness.plan.spec import EpisodeSpec, stable_hash
from evalharness.plan.build import plan_from_config
from evalharness.results.disk_full import check_record, stop_when_disk_full
from evalharness.results.schema import Summary

register_resolvers()  # conf/config.yaml's run_name uses ${perturb_suffix:...}

_exit_code = 0


def _policy_identity(policy_cfg: dict[str, Any], pipeline_cfg: dict[str, Any]) -> dict[str, Any]:
    """Instantiate the policy once in the parent: validates its config and yields its identity."""
    from hydra.errors import InstantiationException

    from evalharness.policies.build import build_policy

    try:
        policy = build_policy(policy_cfg, pipeline_cfg)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, UserInputError):
            raise cause from None
        raise UserInputError(f"policy could not be built: {cause or exc}") from None
    try:
        return policy.identity()
    finally:
        policy.close()


@contextlib.contextmanager
def _run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder while the run writes to it.

    Two runs resuming into one folder would run the same episodes twice; the second is
    refused instead. The lock dies with the process, so a killed run never blocks its resume.
    """
    with open(run_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserInputError(
                f"another evalharness run is writing to {run_dir}; wait for it or pick another output_dir"
            ) from None
        yield


def _check_run_dir(run_dir: Path, context: str) -> None:
    """Refuse to mix episodes of another configuration (or results schema) into this run's folder."""
    from evalharness.results.schema import refuse_older_run_dir

    refuse_older_run_dir(run_dir)
    run_file = run_dir / "run.json"
    if run_file.exists():
        previous = json.loads(run_file.read_text()).get("context")
        if previous != context:
            raise UserInputError(
                f"{run_dir} holds a run with another configuration (context {str(previous)[:12]} != {context[:12]}); "
                "pass a new output_dir=... or run_name=..., or delete the folder"
            )


def episodes_to_run(plan: list[EpisodeSpec], recorded: list[Any], retry_errors: bool) -> list[EpisodeSpec]:
    """The planned episodes not yet recorded; with ``retry_errors``, errored ones run again."""
    finished = {r.key for r in recorded if not (retry_errors and r.outcome == "error")}
    return [spec for spec in plan if spec.key not in finished]


def in_memory_serve_identity(config: dict[str, Any]) -> dict[str, Any]:
    """How an in-memory policy is served to worker processes (part of its identity)."""
    from evalharness.engine.in_memory import serve_settings

    return serve_settings(config).identity()


def _check_in_memory(in_memory: InMemoryPolicy, config: dict[str, Any], runner: Any) -> None:
    if runner.target != "evalharness.engine.runner.LocalRunner":
        raise UserInputError(f"runner={runner.target.rsplit('.', 1)[-1]} cannot run an in-memory policy; "
                             "allowed: runner=local (workers query the model in this process)")
    if policy_server.mode(config) != "none":
        raise UserInputError("policy_server=auto is for a policy built from config; an in-memory policy "
                             "with workers > 0 is always served from this process")


@dataclass
class PreparedRun:
    """A run whose every setting has been validated and whose episodes are planned."""

    config: dict[str, Any]
    protocol: Any
    camera_size: int
    fast_physics: bool
    max_steps: int | None
    pipeline_cfg: dict[str, Any]
    runner: Any  # RunnerChoice: which runner class (_target_) and its validated settings
    workers: int
    max_attempts: int
    retry_errors: bool
    video_fps: int
    identity: dict[str, Any]
    metadata: dict[str, Any]
    context_inputs: dict[str, Any]
    context: str
    plan: list[EpisodeSpec]
    video: dict[str, str]  # episode key -> "yes" | "no" | "if_failure"
    raw_outputs: bool = False  # record.raw_outputs: keep each query's raw model output (not in the context)


def prepare(cfg: DictConfig, in_memory: InMemoryPolicy | None = None) -> PreparedRun:
    """Validate every setting and plan the episodes; writes nothing.

    ``in_memory``: the caller's policy object (:mod:`evalharness.engine.in_memory`), which
    gives the identity instead of the ``policy`` group.
    """
    from envs.libero import plus_data, pro_data
    from envs.libero.runtime import import_libero
    from evalharness.results.metadata import SIMULATOR_PACKAGES, run_metadata
    from evalharness.config.protocol import load_protocol
    from evalharness.episode.video_selection import load_video_settings, video_decisions
    from evalharness.plan.build import load_suite_settings
    from evalharness.results.raw_output_log import record_settings
    from evalharness.engine.runner import default_workers
    from evalharness.engine.run_settings import load_run_settings
    from evalharness.engine.runner_settings import load_runner_settings

    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    protocol = load_protocol(config["protocol"])
    suite = config["suite"]
    settings = load_run_settings(config)  # camera_size, fast_physics, retry_errors, policy_server
    camera_size = settings.camera_size or protocol.render_size
    fast_physics = settings.fast_physics
    max_steps = load_suite_settings(suite).max_steps
    pipeline_cfg = {part: config[part] for part in ("decoder", "normalize", "convert")}
    runner = load_runner_settings(config["runner"])
    video_settings = load_video_settings(config["video"])
    record = record_settings(config.get("record"))

    import_libero()  # fails with one line when assets are missing, before any worker starts
    if fast_physics:
        from envs.libero.fast_step import unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            raise UserInputError(f"fast_physics=true is not available: {reason}; set fast_physics=false")
    workers = default_workers() if runner.workers == "auto" else runner.workers
    if in_memory is None:
        identity = _policy_identity(config["policy"], pipeline_cfg)
        # policy_server=auto: how it is served; redacted like the config (an identity never holds a secret)
        identity = redact(policy_server.annotate_identity(identity, config))
    else:
        _check_in_memory(in_memory, config, runner)
        config["policy"] = in_memory.config()
        served = in_memory_serve_identity(config) if workers else None
        identity = redact(in_memory.identity(pipeline_cfg, served))
    metadata = run_metadata()
    context_inputs = {
        "protocol": protocol.context(),
        "policy": identity,
        "camera_size": camera_size,
        "max_steps_override": max_steps,
        "simulator": {k: metadata["versions"][k] for k in SIMULATOR_PACKAGES},
        "env": metadata["env"],
        "assets": metadata["assets"]["loaded_sha256"],
        **pro_data.context_for(suite["name"]),  # a LIBERO-PRO suite: which data snapshot ({} otherwise)
        **plus_data.context_for(suite["name"], suite.get("prompt")),  # libero_plus: snapshot and prompt
    }
    context = stable_hash(context_inputs)
    plan = plan_from_config(suite, config.get("perturb"), protocol.seed, context)
    return PreparedRun(
        config=config,
        protocol=protocol,
        camera_size=camera_size,
        fast_physics=fast_physics,
        max_steps=max_steps,
        pipeline_cfg=pipeline_cfg,
        runner=runner,
        workers=workers,
        max_attempts=runner.max_attempts,
        retry_errors=settings.retry_errors,
        video_fps=video_settings.fps or protocol.video_fps,
        identity=identity,
        metadata=metadata,
        context_inputs=context_inputs,
        context=context,
        plan=plan,
        video=video_decisions(plan, video_settings.mode, video_settings.first_n),
        raw_outputs=record.raw_outputs,
    )


#: ``(worker config, stop request) -> runner``: how :func:`execute` gets the runner of a run.
RunnerFactory = Callable[[WorkerConfig, Any], Any]


def _configured_runner(run: PreparedRun) -> RunnerFactory:
    """The runner the config names (``runner=...``), built lazily: nothing starts until it runs."""
    from evalharness.engine.runner_settings import build_runner

    return lambda worker_config, stop: build_runner(run.runner, config=worker_config, stop=stop)


def _worker_config(run: PreparedRun, run_dir: Path) -> WorkerConfig:
    """What every worker of this run gets: validated settings, picklable."""
    from envs.libero.runtime import render_threads_per_worker

    return WorkerConfig(
        policy=run.config["policy"], pipeline=run.pipeline_cfg, protocol=run.protocol, run_dir=str(run_dir),
        video_fps=run.video_fps, camera_size=run.camera_size, raw_outputs=run.raw_outputs,
        fast_physics=run.fast_physics, render_threads=render_threads_per_worker(run.workers),
    )


class _EpisodeSink:
    """The one writer of a run's results: each finished episode's raw outputs, record and progress."""

    def __init__(self, run_dir: Path, store: Any, raw_log: Any, progress: Any) -> None:
        self.run_dir, self.store, self.raw_log, self.progress = run_dir, store, raw_log, progress

    def __call__(self, result: EpisodeResult) -> None:
        record = result.record
        if self.raw_log is not None and result.raw_outputs is not None:
            with stop_when_disk_full(self.run_dir, "appending to raw_outputs.jsonl"):
                self.raw_log.append(record, result.raw_outputs)  # before the record: a kill in between reruns the episode
        with stop_when_disk_full(self.run_dir, "appending to episodes.jsonl"):
            self.store.append(record)
        self.progress.update(record)
        check_record(self.run_dir, record)  # its video failed for lack of space: stop here too


def _run_label(config: dict[str, Any]) -> str:
    return f"{config['suite']['name']} · {config['policy']['_target_'].rsplit('.', 1)[-1]}"


def _write_summary(run: PreparedRun, run_dir: Path, records: list[Any], workers: int, recorded_config: dict[str, Any]) -> Summary:
    """Summarize the run's records into summary.json and summary.md, print the table, return the summary."""
    from evalharness.results.atomic import write_json_atomic, write_text_atomic
    from evalharness.results.metadata import assets_footnote
    from evalharness.results.robustness import render_robustness_markdown
    from evalharness.results.summary import build_summary
    from evalharness.results.summary_table import render_markdown

    config = run.config
    metadata = {
        **run.metadata,
        "run_name": config["run_name"],
        "context": run.context,
        "protocol": run.protocol.model_dump(),
        "policy": run.identity,
        "config": recorded_config,
        "camera_size": run.camera_size,
        "workers": workers,
    }
    summary = build_summary(records, metadata, expected_episodes=len(run.plan))
    document = summary.to_document()
    table = render_markdown(document) + render_robustness_markdown(document.get("robustness") or [])
    assets_note = assets_footnote(metadata["assets"])
    if assets_note:
        table += f"\n- Assets: {assets_note}\n"
    with stop_when_disk_full(run_dir, "writing summary.json and summary.md"):
        write_json_atomic(run_dir / "summary.json", document)
        write_text_atomic(run_dir / "summary.md", table)
    print(table)
    if not summary.complete:
        print(f"evalharness: run incomplete: {'; '.join(summary.incomplete_reasons)}", file=sys.stderr)
    print(f"\nresults: {run_dir}/ (episodes.jsonl, summary.json, summary.md" + (", videos/)" if any(r.video for r in records) else ")"))
    return summary


def execute(run: PreparedRun, run_dir: Path, runner_for: RunnerFactory | None = None) -> Summary:
    """Run the planned episodes not yet recorded in ``run_dir``, then summarize all of them.

    ``runner_for(worker_config, stop)``: the runner to use, for a caller that keeps its
    own workers (the warm :class:`evalharness.api.Evaluator`); by default the configured
    runner, with ``runner.policy_server=auto`` handled here.
    """
    from evalharness.engine.interrupt import RunInterrupted, StopRequest, sigint_stops
    from evalharness.engine.progress import RunProgress
    from evalharness.episode.video_selection import remove_scratch
    from evalharness.results.atomic import write_json_atomic
    from evalharness.results.raw_output_log import RawOutputLog
    from evalharness.results.store import ResultStore

    config = run.config
    _check_run_dir(run_dir, run.context)
    worker_config = _worker_config(run, run_dir)
    stop = StopRequest()
    runner = (runner_for or _configured_runner(run))(worker_config, stop)  # e.g. a missing extra: one line, nothing written
    recorded_config = recordable(redact(config))
    with stop_when_disk_full(run_dir, "writing run.json"):
        write_json_atomic(run_dir / "run.json", {"context": run.context, "context_inputs": run.context_inputs, "config": recorded_config})
    remove_scratch(run_dir)  # videos of episodes a killed run did not finish

    with stop_when_disk_full(run_dir, "opening episodes.jsonl"):
        store = ResultStore(run_dir)
    planned = {spec.key for spec in run.plan}
    recorded = store.records()
    todo = episodes_to_run(run.plan, recorded, run.retry_errors)
    done = planned - {spec.key for spec in todo}
    items = [WorkItem(spec, run.video[spec.key], run.max_steps) for spec in todo]
    stop_policy_server: Callable[[], None] = lambda: None
    if runner_for is None:
        # policy_server=auto: one serve process for the run, the workers query it (stopped below)
        policy_cfg, pipeline_cfg, stop_policy_server = policy_server.start_for_run(config, run.pipeline_cfg, bool(items))
        if (policy_cfg, pipeline_cfg) != (worker_config.policy, worker_config.pipeline):
            worker_config = dataclasses.replace(worker_config, policy=policy_cfg, pipeline=pipeline_cfg)
            runner = _configured_runner(run)(worker_config, stop)  # constructors are cheap: nothing starts yet
    raw_log = RawOutputLog(run_dir, recorded) if run.raw_outputs else None
    progress = RunProgress(len(run.plan), [r for r in recorded if r.key in done], _run_label(config))
    try:
        with sigint_stops(stop):
            runner.run(items, _EpisodeSink(run_dir, store, raw_log, progress))
    finally:
        progress.close()
        stop_policy_server()
        stop.close()
        remove_scratch(run_dir)  # workers are stopped by now; a killed one leaves its partial video
    if stop.requested:
        recorded_now = len({r.key for r in store.records()} & planned)
        raise RunInterrupted(f"{recorded_now}/{len(run.plan)} episodes recorded in {run_dir}")
    records = [r for r in store.records() if r.key in planned]
    return _write_summary(run, run_dir, records, getattr(runner, "workers", run.workers), recorded_config)


def evaluate(cfg: DictConfig) -> Summary:
    """Run (or resume) one evaluation and return its summary."""
    run = prepare(cfg)  # every value is checked before anything is written
    run_dir = Path(run.config["output_dir"]).resolve()
    from evalharness.engine.dry_run import announce_large_run

    with contextlib.suppress(Exception):  # a cost notice must never stop a run
        announce_large_run(run_cost(run, run_dir))  # a large run says what it will cost before it starts
    with stop_when_disk_full(run_dir, "creating the run folder"):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / ".lock").touch()
    with _run_dir_lock(run_dir):
        return execute(run, run_dir)


def run_cost(run: PreparedRun, run_dir: Path) -> Any:
    """What running ``run`` into ``run_dir`` will cost (:mod:`evalharness.engine.dry_run`); reads, never writes."""
    from evalharness.engine.dry_run import estimate_cost, recorded_episodes

    recorded, refused = recorded_episodes(run_dir, run.context)
    return estimate_cost(run, episodes_to_run(run.plan, recorded, run.retry_errors), refused)


def print_run_cost(cfg: DictConfig) -> Any:
    """``--dry-run``: validate and plan as the run would, print its cost; writes nothing, builds no env."""
    from evalharness.engine.dry_run import render_cost

    run = prepare(cfg)
    run_dir = Path(run.config["output_dir"]).resolve()
    cost = run_cost(run, run_dir)
    print(render_cost(cost, run_dir, f"{run.config['suite']['name']} · {run.config['policy']['_target_'].rsplit('.', 1)[-1]}"))
    return cost


class _StopSweep(BaseException):
    """Ends a Hydra sweep after an interrupted job (Hydra would go on to the next one)."""


def run_hydra(argv: list[str], dry_run: bool = False) -> int:
    """Run the Hydra app with ``argv`` as its command line; returns the exit status.

    ``dry_run``: validate, plan and print the cost of each job (:mod:`evalharness.engine.dry_run`)
    instead of running it; nothing is written."""
    import hydra

    from evalharness.engine.interrupt import INTERRUPTED_EXIT, RunInterrupted

    check_group_choices(argv)
    check_overrides(argv)
    global _exit_code
    _exit_code = 0

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def _app(cfg: DictConfig) -> None:
        global _exit_code
        try:
            if dry_run:
                print_run_cost(cfg)
            else:
                evaluate(cfg)
        except UserInputError as exc:
            print(f"evalharness: error: {exc}", file=sys.stderr)
            _exit_code = 2
        except RunInterrupted as exc:
            print(f"evalharness: interrupted: {exc}; resume with: evalharness {shlex.join(argv)}", file=sys.stderr)
            _exit_code = INTERRUPTED_EXIT
            raise _StopSweep from None

    saved = sys.argv
    sys.argv = [saved[0] if saved else "evalharness", *argv]
    try:
        _app()
    except _StopSweep:
        pass
    except KeyboardInterrupt:  # before any episode ran: nothing to keep
        print("\nevalharness: interrupted before the run started", file=sys.stderr)
        _exit_code = INTERRUPTED_EXIT
    finally:
        sys.argv = saved
    return _exit_code
