"""Running a plan on a Ray cluster (``runner=ray``), with the local runner's guarantees.

- The driver (this process) is the only writer: each actor returns an episode's record
  *and its video bytes*; the driver writes the video into the run folder and hands the
  record to the sink. Nodes share no filesystem; an actor films into its own temp folder.
- Same outcomes as the local runner: an actor runs exactly the code a local worker runs
  (:func:`evalharness.engine.worker.run_item`) on the same work items, grouped by task the same
  way (:func:`evalharness.engine.runner.group_items`), and the env owns determinism.
- Resume is the caller's: only items not yet stored reach :meth:`RayRunner.run`.
- A dead actor (killed process, lost node) costs its episode one attempt through the
  same :class:`~evalharness.engine.crash_accounting.CrashAccounting` as local workers: retried on a new
  actor, then recorded as ``worker_crash``.
- Before an actor runs anything it compares its simulator versions and assets checksum
  with the driver's (:func:`evalharness.results.metadata.simulator_identity`); a node that
  differs is refused with one line, since its outcomes would not be comparable.
- On GPU nodes (``gpus_per_worker`` > 0) each actor renders on the GPU Ray assigned it:
  ``MUJOCO_EGL_DEVICE_ID`` is set from ``ray.get_gpu_ids()`` before MuJoCo is imported.

The driver submits one episode at a time per actor, so a dead actor's unfinished items
are exactly those of its group not yet returned. A stop request (Ctrl-C) stops handing
out episodes; actor calls cannot be interrupted, so episodes in flight get a short grace
to finish (their records are kept), then every actor closes its policy and is killed.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from evalharness.engine.crash_accounting import CrashAccounting
from evalharness.errors import UserInputError
from evalharness.engine.interrupt import StopRequest
from evalharness.results.metadata import simulator_identity
from evalharness.engine.runner import RecordSink, group_items
from evalharness.engine.runner_settings import RayRunnerSettings
from evalharness.engine.worker import WorkerConfig, WorkItem

MISSING_RAY = "runner=ray needs Ray, which is not installed; install it with: pip install 'evalharness[ray]'"
STOP_GRACE_S = 10.0  # after Ctrl-C: how long episodes in flight may take to finish


def render_device(gpu_ids: list[Any]) -> str | None:
    """The EGL device to render on, from the GPUs Ray assigned this actor (None: default).

    Ray hands out physical GPU ids (and sets CUDA_VISIBLE_DEVICES to them); EGL counts
    devices the same way, and robosuite requires the id to be one of CUDA_VISIBLE_DEVICES.
    """
    return str(gpu_ids[0]) if gpu_ids else None


def simulator_mismatch(expected: dict[str, Any], actual: dict[str, Any], where: str) -> str | None:
    """One line saying how this node's simulator differs from the driver's, or None."""
    diffs = [f"{k} {actual.get(k)!r} (driver: {v!r})" for k, v in expected.items() if actual.get(k) != v]
    if not diffs:
        return None
    return f"Ray worker on {where} refused: {', '.join(diffs)}; install the same simulator and assets on every node"


class EpisodeActor:
    """One Ray actor: a worker process that keeps an env and a policy between episodes."""

    def __init__(self, config: WorkerConfig, expected: dict[str, Any]) -> None:
        import ray

        device = render_device(ray.get_gpu_ids())
        if device is not None:
            os.environ["MUJOCO_EGL_DEVICE_ID"] = device  # before anything imports mujoco
        self.problem: str | None = simulator_mismatch(expected, simulator_identity(), ray.util.get_node_ip_address())
        self.policy = None
        self.envs = None
        if self.problem is not None:
            return
        from envs.libero.runtime import prepare_process
        from evalharness.engine.worker import _EnvCache
        from evalharness.policies.build import build_policy

        prepare_process()
        self.scratch = Path(tempfile.mkdtemp(prefix="evalharness-ray-"))  # this node's run folder stand-in
        self.config = dataclasses.replace(config, run_dir=str(self.scratch))
        self.settings: dict = {}
        self.envs = _EnvCache(config.camera_size)
        try:
            self.policy = build_policy(config.policy, config.pipeline, record_raw=config.raw_outputs)
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which stops the run
            self.problem = f"fatal: {type(exc).__name__}: {exc}"

    def ready(self) -> tuple[str | None, int]:
        """(why this actor cannot run, or None; its process id)."""
        return self.problem, os.getpid()

    def run_item(self, item: WorkItem) -> tuple[dict[str, Any], bytes | None]:
        from evalharness.engine.worker import run_item

        record = run_item(item, self.config, self.envs, self.policy, self.settings)
        video = None
        if record["video"]:
            path = self.scratch / record["video"]
            video = path.read_bytes()
            path.unlink()
        return record, video

    def close(self) -> None:
        if self.envs is not None:
            self.envs.close()
        if self.policy is not None:
            self.policy.close()
        if hasattr(self, "scratch"):
            shutil.rmtree(self.scratch, ignore_errors=True)


@dataclass
class _Slot:
    actor: Any
    group: list[WorkItem]
    done: int = 0
    ref: Any = None  # the call in flight: ready() first, then one run_item() at a time
    started: bool = False
    pid: int | None = None


class RayRunner:
    """Runs work items on ``workers`` Ray actors and hands each record to ``sink``."""

    Settings: ClassVar[type[RayRunnerSettings]] = RayRunnerSettings  # workers: auto or >= 1

    def __init__(
        self,
        config: WorkerConfig,
        workers: int | str = "auto",
        max_attempts: int = 2,
        address: str | None = None,
        num_cpus: int | None = None,
        object_store_mb: int | None = None,
        gpus_per_worker: float | None = None,
        stop: StopRequest | None = None,
    ) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserInputError(MISSING_RAY) from None
        self.config = config
        self.workers = workers
        self.address = address
        self.num_cpus = num_cpus
        self.object_store_mb = object_store_mb
        self.gpus_per_worker = gpus_per_worker or 0
        self.accounting = CrashAccounting(max_attempts)
        self.max_attempts = max_attempts
        self.stop = stop or StopRequest()
        self.actor_pids: list[int] = []  # every actor process started (the chaos bench kills them)

    # ----- cluster ---------------------------------------------------------------------------------------

    def _connect(self) -> bool:
        """Join (or start) the cluster; True when this call started the connection."""
        import ray

        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "ERROR", "log_to_driver": False}
        if self.address is None:  # a local instance sized for this machine
            kwargs["num_cpus"] = self.num_cpus
            if self.object_store_mb is not None:
                kwargs["object_store_memory"] = self.object_store_mb * 1024 * 1024
        else:
            env = {k: os.environ[k] for k in ("MUJOCO_GL", "PYOPENGL_PLATFORM") if k in os.environ}
            kwargs["runtime_env"] = {"env_vars": env} if env else None
        try:
            ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserInputError(f"runner.address={self.address!r}: cannot start or join Ray: {first}") from None
        return True

    def _actor_count(self) -> int:
        """``workers``, with auto resolved to one actor per CPU of the cluster."""
        import ray

        if self.workers == "auto":
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return int(self.workers)

    # ----- the run ---------------------------------------------------------------------------------------

    def run(self, items: list[WorkItem], sink: RecordSink) -> None:
        if not items:
            return
        import ray

        started = self._connect()
        try:
            self._run(ray, items, sink)
        finally:
            if started:
                ray.shutdown()

    def _start(self, ray, remote_class, group: list[WorkItem], expected: dict[str, Any]) -> _Slot:
        actor = remote_class.remote(self.config, expected)
        return _Slot(actor=actor, group=group, ref=actor.ready.remote())

    def _run(self, ray, items: list[WorkItem], sink: RecordSink) -> None:
        from ray.exceptions import RayActorError, RayTaskError

        remote_class = ray.remote(num_cpus=1, num_gpus=self.gpus_per_worker, max_restarts=0)(EpisodeActor)
        expected = simulator_identity()
        actors = self._actor_count()
        pending: deque[list[WorkItem]] = deque(group_items(items, actors))
        slots = [self._start(ray, remote_class, pending.popleft(), expected) for _ in range(min(actors, len(pending)))]
        try:
            while slots and not self.stop.requested:
                ready, _ = ray.wait([s.ref for s in slots], num_returns=1, timeout=0.5)
                for ref in ready:
                    slot = next(s for s in slots if s.ref is ref)
                    try:
                        result = ray.get(ref)
                    except RayActorError as exc:
                        if self.stop.requested:  # a terminal's Ctrl-C may reach Ray's processes: not a crash
                            break
                        self._recover(slot, pending, sink, exc)
                        slots.remove(slot)
                        ray.kill(slot.actor)
                        if pending:
                            slots.append(self._start(ray, remote_class, pending.popleft(), expected))
                        continue
                    except RayTaskError as exc:  # a harness bug inside run_item: stop, do not hang
                        raise RuntimeError(f"a Ray worker failed: {exc}") from None
                    if not slot.started:
                        problem, slot.pid = result
                        self.actor_pids.append(slot.pid)
                        if problem is not None:
                            if problem.startswith("fatal: "):
                                raise RuntimeError(f"a worker failed: {problem.removeprefix('fatal: ')}")
                            raise UserInputError(problem)
                        slot.started = True
                    else:
                        self._keep(result, sink)
                        slot.done += 1
                    slot.ref = None
                    if slot.done == len(slot.group):
                        if not pending:
                            self._retire(ray, slot)
                            slots.remove(slot)
                            continue
                        slot.group, slot.done = pending.popleft(), 0
                    slot.ref = slot.actor.run_item.remote(slot.group[slot.done])
        finally:
            if self.stop.requested:
                self._finish_in_flight(ray, slots, sink)
            for slot in slots:
                self._retire(ray, slot)

    def _keep(self, result: tuple[dict[str, Any], bytes | None], sink: RecordSink) -> None:
        """Write the episode's video into the run folder (the driver is the only writer), then store the record."""
        from evalharness.results.atomic import write_bytes_atomic

        record, video = result
        if video is not None:
            write_bytes_atomic(Path(self.config.run_dir) / record["video"], video)
        sink(record)

    def _recover(self, slot: _Slot, pending: deque, sink: RecordSink, exc: Exception) -> None:
        cause = "its Ray actor died: " + (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        requeue, crash = self.accounting.worker_died(slot.group[slot.done :], cause)
        if crash is not None:
            sink(crash)
        if requeue:
            pending.appendleft(requeue)

    def _finish_in_flight(self, ray, slots: list[_Slot], sink: RecordSink) -> None:
        """Stop requested: keep the episodes that finish within the grace period."""
        running = {s.ref: s for s in slots if s.started and s.ref is not None}
        deadline = time.monotonic() + STOP_GRACE_S
        while running and time.monotonic() < deadline:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                running.pop(ref).ref = None
                try:
                    self._keep(ray.get(ref), sink)
                except Exception:  # noqa: BLE001 - a dead actor's episode runs on resume
                    pass

    @staticmethod
    def _retire(ray, slot: _Slot) -> None:
        """Close an idle actor's policy and env (remote policies delete their sessions), then end it.

        An actor still busy with an episode (a stop past the grace period) is killed as is.
        """
        if slot.ref is None:
            try:
                ray.get(slot.actor.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead actor: nothing left to close
                pass
        ray.kill(slot.actor)
