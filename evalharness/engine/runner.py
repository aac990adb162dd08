"""Running a plan on local worker processes, with resume and crash recovery.

Design:
- The parent is the only writer of the result store. Workers report each finished
  episode; the parent appends its record atomically. A run killed at any point (even
  ``kill -9``) resumes by skipping keys already stored: nothing finished is redone,
  nothing is written twice.
- Episodes are grouped by task so each worker builds a task's env once; tasks are split
  when there are fewer tasks than workers.
- A worker that dies (segfault, OOM kill) has its in-flight episode retried on a fresh
  worker, then recorded as a ``worker_crash`` error; the rest of its group is requeued
  (:mod:`evalharness.engine.crash_accounting`, shared with the Ray runner).
- Outcomes do not depend on which worker ran an episode or in what order (see
  :mod:`envs.libero.env` on determinism), so 1 and N workers give identical results.
- ``workers=0`` runs everything in this process (for debugging and profiling).
- A stop request (Ctrl-C, :mod:`evalharness.engine.interrupt`) ends the workers with SIGTERM:
  each abandons its episode, closes its env and policy, and exits; what they finished
  before is kept. Workers ignore SIGINT, and die with the parent (``PR_SET_PDEATHSIG``).

Every runner has the shape of :class:`Runner`; the one a run uses is named by
``_target_`` in ``conf/runner/*.yaml`` (:mod:`evalharness.engine.runner_settings`).
"""

from __future__ import annotations

import math
import multiprocessing as mp
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, ClassVar, Protocol

from evalharness.engine.crash_accounting import CrashAccounting, exit_cause
from evalharness.errors import UserInputError
from evalharness.engine.interrupt import StopRequest
from evalharness.engine.runner_settings import LocalRunnerSettings
from evalharness.engine.worker import USER_ERROR_PREFIX, WorkerConfig, WorkItem, _EnvCache, run_item, worker_main
from evalharness.policies.build import build_policy

RecordSink = Callable[[dict[str, Any]], None]


class Runner(Protocol):
    """Runs work items and hands each finished episode's record to ``sink``.

    ``sink`` is called in the caller's process only (the result store has one writer),
    once per item, with a record that ran to the end (a verdict or an episode error) or a
    ``worker_crash`` record from :class:`~evalharness.engine.crash_accounting.CrashAccounting`. A runner
    returns early, without error, when its stop request is set (Ctrl-C); items it did not
    report are simply not recorded and run on resume.
    """

    def run(self, items: list[WorkItem], sink: RecordSink) -> None: ...


def group_items(items: list[WorkItem], workers: int) -> list[list[WorkItem]]:
    """Groups of one task's episodes, split so that every worker has something to do."""
    by_task: dict[tuple[str, int], list[WorkItem]] = {}
    for item in items:
        by_task.setdefault((item.spec.suite, item.spec.task_index), []).append(item)
    parts = max(1, math.ceil(workers / max(1, len(by_task))))
    groups = []
    for task_items in by_task.values():
        size = max(1, math.ceil(len(task_items) / parts))
        groups.extend(task_items[i : i + size] for i in range(0, len(task_items), size))
    return groups


@dataclass
class _Slot:
    process: Any
    conn: Any
    group: list[WorkItem] | None = None
    done: int = 0


class LocalRunner:
    """Runs work items on ``workers`` spawned processes and hands each record to ``sink``."""

    Settings: ClassVar[type[LocalRunnerSettings]] = LocalRunnerSettings

    def __init__(
        self, config: WorkerConfig, workers: int | str = "auto", max_attempts: int = 2, stop: StopRequest | None = None,
    ) -> None:
        if workers == "auto":  # validated by its Settings (LocalRunnerSettings)
            workers = default_workers()
        self.config = config
        self.workers = workers
        self.max_attempts = max_attempts
        self.accounting = CrashAccounting(max_attempts)
        self.stop = stop or StopRequest()

    def run(self, items: list[WorkItem], sink: RecordSink) -> None:
        if not items:
            return
        if self.workers == 0:
            self._run_inline(items, sink)
        else:
            self._run_processes(items, sink)

    def _run_inline(self, items: Iterable[WorkItem], sink: RecordSink) -> None:
        policy = build_policy(self.config.policy, self.config.pipeline, record_raw=self.config.raw_outputs)
        envs = _EnvCache(self.config.camera_size)
        settings: dict = {}
        try:
            for item in items:
                if self.stop.requested:  # in-process: stop between episodes
                    break
                sink(run_item(item, self.config, envs, policy, settings))
        finally:
            envs.close()
            policy.close()

    def _start(self, ctx) -> _Slot:
        parent_conn, child_conn = ctx.Pipe()
        process = ctx.Process(target=worker_main, args=(child_conn, self.config), daemon=True)
        process.start()
        self.stop.track(process.pid)
        child_conn.close()
        return _Slot(process=process, conn=parent_conn)

    def _run_processes(self, items: list[WorkItem], sink: RecordSink) -> None:
        ctx = mp.get_context("spawn")  # fork would copy EGL / torch state into children
        groups = group_items(items, self.workers)
        pending: deque[list[WorkItem]] = deque(groups)
        slots = [self._start(ctx) for _ in range(min(self.workers, len(groups)))]
        fatal: str | None = None
        try:
            while slots and fatal is None and not self.stop.requested:
                for slot in slots:
                    if slot.group is None and pending:
                        slot.group, slot.done = pending.popleft(), 0
                        slot.conn.send(slot.group)
                idle = [s for s in slots if s.group is None]
                if idle and not pending:
                    for slot in idle:
                        self._stop(slot)
                        slots.remove(slot)
                    continue
                ready = wait([s.conn for s in slots] + [s.process.sentinel for s in slots] + [self.stop])
                if self.stop.requested:
                    break
                for slot in list(slots):
                    if slot.conn in ready:
                        try:
                            while slot.conn.poll():
                                fatal = fatal or self._handle(slot, slot.conn.recv(), sink)
                        except (EOFError, OSError):
                            pass
                    if slot.process.sentinel in ready and not slot.process.is_alive():
                        slot.process.join()
                        self.stop.untrack(slot.process.pid)
                        self._recover(slot, pending, sink)
                        slots.remove(slot)
                        if pending or any(s.group for s in slots):
                            slots.append(self._start(ctx))
        finally:
            if slots:  # ended early (a stop request, a failed worker, the sink raised): do not wait for groups
                self._end_now(slots, sink if self.stop.requested else None)
            for slot in slots:
                self._stop(slot)
        if fatal is not None:
            if fatal.startswith(USER_ERROR_PREFIX):  # e.g. a checkpoint whose tensors do not fit its model
                raise UserInputError(fatal.removeprefix(USER_ERROR_PREFIX))
            raise RuntimeError(f"a worker failed: {fatal}")

    def _handle(self, slot: _Slot, message: tuple[str, Any], sink: RecordSink) -> str | None:
        kind, payload = message
        if kind == "done":
            sink(payload)
            slot.done += 1
        elif kind == "idle":
            slot.group = None
        elif kind == "fatal":
            return payload
        return None

    def _recover(self, slot: _Slot, pending: deque, sink: RecordSink) -> None:
        """A worker died: the crash accounting retries its episode (or records the crash)."""
        if slot.group is None:
            return
        requeue, crash = self.accounting.worker_died(slot.group[slot.done :], exit_cause(slot.process.exitcode))
        if crash is not None:
            sink(crash)
        if requeue:
            pending.appendleft(requeue)

    def _end_now(self, slots: list[_Slot], sink: RecordSink | None) -> None:
        """Every worker abandons its episode, closes its policy, and exits; with ``sink``,
        the records they finished meanwhile are kept."""
        for slot in slots:
            if slot.process.is_alive():
                slot.process.terminate()  # SIGTERM: the worker unwinds and closes (worker.py)
        for slot in slots:
            slot.process.join(timeout=30)
            if sink is not None:
                self._keep_finished(slot, sink)

    @staticmethod
    def _keep_finished(slot: _Slot, sink: RecordSink) -> None:
        """Store the records a worker sent before it ended."""
        try:
            while slot.conn.poll():
                kind, payload = slot.conn.recv()
                if kind == "done":
                    sink(payload)
        except (EOFError, OSError):
            pass

    def _stop(self, slot: _Slot) -> None:
        try:
            slot.conn.send(None)
        except (OSError, ValueError):
            pass
        slot.process.join(timeout=30)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
        self.stop.untrack(slot.process.pid)
        slot.conn.close()


def default_workers() -> int:
    """``runner.workers=auto``: one worker per core, as many as memory holds."""
    from evalharness.engine.worker_budget import auto_workers

    return auto_workers()
