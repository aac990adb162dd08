"""The evaluation job: config -> plan -> runner -> result store -> summary and table.

``run_hydra(argv)`` is what ``evalharness`` / ``python -m evalharness`` call with Hydra
overrides. ``evaluate(cfg)`` does the work for one resolved config (one job of a sweep).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import re
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evalharness.errors import UserInputError, choices_error
from evalharness.mint import policy_server
from evalharness.perturb.settings import register_resolvers
from evalharness.plan import EpisodeSpec, build_plan, stable_hash
from evalharness.results.disk_full import check_record, stop_when_disk_full

register_resolvers()  # conf/config.yaml's run_name uses ${perturb_suffix:...}

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("suite", "protocol", "policy", "decoder", "normalize", "convert", "runner", "video", "perturb")
# Keys whose value is a secret whatever its type (a YAML ``password: 123456`` is an int).
SECRET_KEY = re.compile(r"api_?key|secret|passw(or)?d|credential", re.IGNORECASE)
# ``token`` / ``hf_token`` / ``access_tokens`` hold credentials when they are text; numbers
# under such names are action-token settings (``min_token``, ``skip_tokens``) to keep.
TOKEN_KEY = re.compile(r"(^|[_-])tokens?$", re.IGNORECASE)
REDACTED = "<redacted>"

_exit_code = 0


def _is_number(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_number(v) for v in value)
    return isinstance(value, (bool, int, float))


def _is_secret(key: Any, value: Any) -> bool:
    if value is None or value == "":
        return False
    name = str(key)
    return bool(SECRET_KEY.search(name)) or (bool(TOKEN_KEY.search(name)) and not _is_number(value))


def redact(obj: Any) -> Any:
    """A copy of a config with secret-looking values (also lists / dicts of them) replaced."""
    if isinstance(obj, dict):
        return {k: (REDACTED if _is_secret(k, v) else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def _recordable(obj: Any) -> Any:
    """The config as strict JSON can hold it: non-finite floats (``policy.mode=nan`` is a
    float NaN in Hydra's override grammar) are recorded as the words the user typed."""
    if isinstance(obj, dict):
        return {k: _recordable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_recordable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


def check_group_choices(argv: list[str]) -> None:
    """Reject ``group=unknown`` with one line before Hydra prints a multi-line error."""
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key in GROUPS:
            allowed = sorted(p.stem for p in (CONF_DIR / key).glob("*.yaml"))
            for choice in value.strip("[]").split(","):  # multirun sweeps a,b,c; lists [a,b]
                if choice not in allowed:
                    raise choices_error(key, choice, allowed)


def check_overrides(argv: list[str]) -> None:
    """Compose the config once so a mistyped key or bad override syntax is one line.

    Hydra reports those over several lines with a hint to set HYDRA_FULL_ERROR. Sweeps
    (``-m``) are left to Hydra, since ``a,b`` values only mean something there.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if any(arg in ("-m", "--multirun") for arg in argv):
        return
    overrides = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="evalharness"):
            cfg = compose("config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        cause = exc.__cause__
        key = getattr(cause, "full_key", None)
        if key:
            parent = key.rsplit(".", 1)[0] if "." in key else None
            allowed = _keys_at(parent) if parent else []
            hint = f"; allowed keys in {parent}: {', '.join(allowed)}" if allowed else ""
            raise UserInputError(f"config key {key!r} does not exist{hint} (use +{key}=... to add a new key)") from None
        first = str(exc).strip().splitlines()[0]
        raise UserInputError(f"override not valid: {first}") from None
    del cfg


def _keys_at(path: str) -> list[str]:
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="evalharness"):
            node = OmegaConf.select(compose("config"), path)
    except Exception:  # noqa: BLE001 - only a hint for the error message
        return []
    return sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []


def _int_setting(key: str, value: Any, *, low: int, high: int | None = None, nullable: bool = False) -> int | None:
    """An integer config value in low..high (or null when ``nullable``), else a one-line error."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
        raise UserInputError(f"{key}={value!r} is not valid; allowed: {'null or ' if nullable else ''}{allowed}")
    return value


def _policy_identity(policy_cfg: dict[str, Any], pipeline_cfg: dict[str, Any]) -> dict[str, Any]:
    """Instantiate the policy once in the parent: validates its config and yields its identity."""
    from hydra.errors import InstantiationException

    from evalharness.worker import build_policy

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
    """Refuse to mix episodes of another configuration into this run's folder."""
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


@dataclass
class PreparedRun:
    """A run whose every setting has been validated and whose episodes are planned."""

    config: dict[str, Any]
    protocol: Any
    camera_size: int
    fast_physics: bool
    max_steps: int | None
    pipeline_cfg: dict[str, Any]
    runner: Any  # RunnerSettings: which runner class (_target_) and its validated settings
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


def prepare(cfg: DictConfig) -> PreparedRun:
    """Validate every setting and plan the episodes; writes nothing."""
    from envs.libero.runtime import import_libero
    from evalharness.metadata import SIMULATOR_PACKAGES, run_metadata
    from evalharness.perturb.plan import perturb_plan
    from evalharness.perturb.settings import load_perturb_config
    from evalharness.protocol import load_protocol
    from evalharness.recording import video_decisions
    from evalharness.results.raw_outputs import record_settings
    from evalharness.runner import default_workers
    from evalharness.runner_settings import load_runner_settings

    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    protocol = load_protocol(config["protocol"])
    suite = config["suite"]
    camera_size = _int_setting("camera_size", config["camera_size"], low=8, high=2048, nullable=True) or protocol.render_size
    fast_physics = config.get("fast_physics", True)
    if not isinstance(fast_physics, bool):
        raise UserInputError(f"fast_physics={fast_physics!r} is not valid; allowed: true, false")
    max_steps = _int_setting("suite.max_steps", suite.get("max_steps"), low=1, nullable=True)
    pipeline_cfg = {part: config[part] for part in ("decoder", "normalize", "convert")}
    runner = load_runner_settings(config["runner"])
    video_cfg = config["video"]
    record = record_settings(config.get("record"))

    import_libero()  # fails with one line when assets are missing, before any worker starts
    if fast_physics:
        from envs.libero.fast_step import unavailable_reason

        reason = unavailable_reason()
        if reason is not None:
            raise UserInputError(f"fast_physics=true is not available: {reason}; set fast_physics=false")
    identity = _policy_identity(config["policy"], pipeline_cfg)
    # runner.policy_server=auto: how it is served; redacted like the config (an identity never holds a secret)
    identity = redact(policy_server.annotate_identity(identity, config))
    metadata = run_metadata()
    context_inputs = {
        "protocol": protocol.model_dump(),
        "policy": identity,
        "camera_size": camera_size,
        "max_steps_override": max_steps,
        "simulator": {k: metadata["versions"][k] for k in SIMULATOR_PACKAGES},
        "assets": metadata["assets"]["loaded_sha256"],
    }
    context = stable_hash(context_inputs)
    plan = build_plan(
        suite["name"], suite.get("tasks", "all"), suite.get("episodes_per_task"), suite.get("init_states"),
        protocol.seed, context,
    )
    # perturb: each episode's parameters are drawn here, from its seed, into its key.
    plan = perturb_plan(plan, load_perturb_config(config.get("perturb")))
    return PreparedRun(
        config=config,
        protocol=protocol,
        camera_size=camera_size,
        fast_physics=fast_physics,
        max_steps=max_steps,
        pipeline_cfg=pipeline_cfg,
        runner=runner,
        workers=default_workers() if runner.workers == "auto" else runner.workers,
        max_attempts=runner.max_attempts,
        retry_errors=runner.retry_errors,
        video_fps=_int_setting("video.fps", video_cfg.get("fps"), low=1, nullable=True) or protocol.video_fps,
        identity=identity,
        metadata=metadata,
        context_inputs=context_inputs,
        context=context,
        plan=plan,
        video=video_decisions(plan, video_cfg["mode"], video_cfg.get("first_n", 1)),
        raw_outputs=record.raw_outputs,
    )


def execute(run: PreparedRun, run_dir: Path) -> dict[str, Any]:
    """Run the planned episodes not yet recorded in ``run_dir``, then summarize all of them."""
    from evalharness.metadata import assets_footnote
    from evalharness.progress import RunProgress
    from evalharness.recording import remove_scratch
    from evalharness.results.atomic import write_json_atomic, write_text_atomic
    from evalharness.results.raw_outputs import RawOutputLog
    from evalharness.results.records import EpisodeRecord
    from evalharness.results.robustness import render_robustness_markdown
    from evalharness.results.store import ResultStore
    from evalharness.results.summary import build_summary
    from evalharness.results.tables import render_markdown
    from evalharness.interrupt import RunInterrupted, StopRequest, sigint_stops
    from evalharness.runner_settings import build_runner
    from envs.libero.runtime import render_threads_per_worker
    from evalharness.worker import WorkerConfig, WorkItem

    config = run.config
    _check_run_dir(run_dir, run.context)
    worker_config = WorkerConfig(
        policy=config["policy"], pipeline=run.pipeline_cfg, protocol=config["protocol"], run_dir=str(run_dir),
        video_fps=run.video_fps, camera_size=run.camera_size, raw_outputs=run.raw_outputs,
        fast_physics=run.fast_physics, render_threads=render_threads_per_worker(run.workers),
    )
    stop = StopRequest()
    runner = build_runner(run.runner, config=worker_config, stop=stop)  # e.g. a missing extra: one line, nothing written
    recorded_config = _recordable(redact(config))
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
    # runner.policy_server=auto: one serve process for the run, the workers query it (stopped below)
    policy_cfg, pipeline_cfg, stop_policy_server = policy_server.start_for_run(config, run.pipeline_cfg, bool(items))
    if (policy_cfg, pipeline_cfg) != (worker_config.policy, worker_config.pipeline):
        worker_config = dataclasses.replace(worker_config, policy=policy_cfg, pipeline=pipeline_cfg)
        runner = build_runner(run.runner, config=worker_config, stop=stop)  # constructors are cheap: nothing starts yet
    raw_log = RawOutputLog(run_dir, recorded) if run.raw_outputs else None
    resumed = [r.model_dump() for r in recorded if r.key in done]
    label = f"{config['suite']['name']} · {config['policy']['_target_'].rsplit('.', 1)[-1]}"
    progress = RunProgress(len(run.plan), resumed, label)

    def sink(record: dict[str, Any]) -> None:
        raw_outputs = record.pop("raw_outputs", None)
        if raw_log is not None and raw_outputs is not None:
            with stop_when_disk_full(run_dir, "appending to raw_outputs.jsonl"):
                raw_log.append(record, raw_outputs)  # before the record: a kill in between reruns the episode
        with stop_when_disk_full(run_dir, "appending to episodes.jsonl"):
            store.append(EpisodeRecord(**record))
        progress.update(record)
        check_record(run_dir, record)  # its video failed for lack of space: stop here too

    try:
        with sigint_stops(stop):
            runner.run(items, sink)
    finally:
        progress.close()
        stop_policy_server()
        stop.close()
        remove_scratch(run_dir)  # workers are stopped by now; a killed one leaves its partial video
    if stop.requested:
        recorded_now = len({r.key for r in store.records()} & planned)
        raise RunInterrupted(f"{recorded_now}/{len(run.plan)} episodes recorded in {run_dir}")

    records = [r for r in store.records() if r.key in planned]
    metadata = {
        **run.metadata,
        "run_name": config["run_name"],
        "context": run.context,
        "protocol": run.protocol.model_dump(),
        "policy": run.identity,
        "config": recorded_config,
        "camera_size": run.camera_size,
        "workers": getattr(runner, "workers", run.workers),
    }
    summary = build_summary(records, metadata, expected_episodes=len(run.plan))
    table = render_markdown(summary) + render_robustness_markdown(summary.get("robustness") or [])
    assets_note = assets_footnote(metadata["assets"])
    if assets_note:
        table += f"\n- Assets: {assets_note}\n"
    with stop_when_disk_full(run_dir, "writing summary.json and summary.md"):
        write_json_atomic(run_dir / "summary.json", summary)
        write_text_atomic(run_dir / "summary.md", table)
    print(table)
    if not summary["complete"]:
        print(f"evalharness: run incomplete: {'; '.join(summary['incomplete_reasons'])}", file=sys.stderr)
    print(f"\nresults: {run_dir}/ (episodes.jsonl, summary.json, summary.md" + (", videos/)" if any(r.video for r in records) else ")"))
    return summary


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume) one evaluation and return its summary."""
    run = prepare(cfg)  # every value is checked before anything is written
    run_dir = Path(run.config["output_dir"]).resolve()
    from evalharness.dry_run import announce_large_run

    with contextlib.suppress(Exception):  # a cost notice must never stop a run
        announce_large_run(run_cost(run, run_dir))  # a large run says what it will cost before it starts
    with stop_when_disk_full(run_dir, "creating the run folder"):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / ".lock").touch()
    with _run_dir_lock(run_dir):
        return execute(run, run_dir)


def run_cost(run: PreparedRun, run_dir: Path) -> Any:
    """What running ``run`` into ``run_dir`` will cost (:mod:`evalharness.dry_run`); reads, never writes."""
    from evalharness.dry_run import estimate_cost, recorded_episodes

    recorded, refused = recorded_episodes(run_dir, run.context)
    return estimate_cost(run, episodes_to_run(run.plan, recorded, run.retry_errors), refused)


def print_run_cost(cfg: DictConfig) -> Any:
    """``--dry-run``: validate and plan as the run would, print its cost; writes nothing, builds no env."""
    from evalharness.dry_run import render_cost

    run = prepare(cfg)
    run_dir = Path(run.config["output_dir"]).resolve()
    cost = run_cost(run, run_dir)
    print(render_cost(cost, run_dir, f"{run.config['suite']['name']} · {run.config['policy']['_target_'].rsplit('.', 1)[-1]}"))
    return cost


class _StopSweep(BaseException):
    """Ends a Hydra sweep after an interrupted job (Hydra would go on to the next one)."""


def run_hydra(argv: list[str], dry_run: bool = False) -> int:
    """Run the Hydra app with ``argv`` as its command line; returns the exit status.

    ``dry_run``: validate, plan and print the cost of each job (:mod:`evalharness.dry_run`)
    instead of running it; nothing is written."""
    import hydra

    from evalharness.interrupt import INTERRUPTED_EXIT, RunInterrupted

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
