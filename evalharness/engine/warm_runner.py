"""Local workers kept warm between runs: the runner of :class:`evalharness.api.Evaluator`.

A training loop evaluates every few thousand steps. Starting the workers and building each
task's env costs seconds per task and worker, every call; :class:`WarmLocalRunner` keeps
them between its runs:

- after a run, its worker processes are parked, not stopped; the next run reuses them and
  sends each one the new :class:`~evalharness.engine.episode_worker.WorkerConfig` (the
  worker keeps its envs and rebuilds only what changed, :meth:`EpisodeWorker.reconfigure`);
- a worker is given a group of the task it ran last when there is one, so its env is reused;
- ``workers=0`` keeps one in-process :class:`EpisodeWorker` the same way, optionally with
  the caller's own policy object (an in-memory model, never copied);
- :attr:`env_builds` counts the envs built so far, over every worker, dead ones included.

Everything else is the :class:`~evalharness.engine.runner.LocalRunner`: same groups, crash
accounting and stop handling, so outcomes are the same. A run that ends early (Ctrl-C, an
exception in the sink, a failed worker) ends its workers as the local runner does; the next
run starts fresh ones. :meth:`close` stops the parked workers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from evalharness.engine.crash_accounting import CrashAccounting
from evalharness.engine.episode_worker import EpisodeWorker, WorkerConfig, WorkItem
from evalharness.engine.interrupt import StopRequest
from evalharness.engine.runner import LocalRunner, RecordSink, _Slot


class WarmLocalRunner(LocalRunner):
    """A :class:`LocalRunner` whose workers (and their envs) outlive a run; call :meth:`close`."""

    def __init__(self, config: WorkerConfig, workers: int | str = "auto", max_attempts: int = 2,
                 stop: StopRequest | None = None, env_capacity: int = 1) -> None:
        super().__init__(config, workers, max_attempts, stop)
        self.env_capacity = env_capacity
        self.inline_policy: Any = None  # workers=0: the caller's policy object for the next run
        self._parked: list[_Slot] = []
        self._inline: EpisodeWorker | None = None
        self._retired_builds = 0  # env builds of workers no longer running
        self._retired_torch = False

    def use(self, config: WorkerConfig, stop: StopRequest, inline_policy: Any = None) -> "WarmLocalRunner":
        """Prepare the next run: its worker config, its stop request, and (workers=0) its policy."""
        self.config, self.stop, self.inline_policy = config, stop, inline_policy
        self.accounting = CrashAccounting(self.max_attempts)
        for slot in self._parked:
            stop.track(slot.process.pid)
        return self

    # ----- what the caller reads ---------------------------------------------------------------

    @property
    def env_builds(self) -> int:
        """Envs built so far by every worker of this runner (in-process, parked and retired)."""
        inline = self._inline.envs.builds if self._inline is not None else 0
        return self._retired_builds + inline + sum((s.facts or {}).get("env_builds", 0) for s in self._parked)

    @property
    def workers_imported_torch(self) -> bool:
        """True when any worker process imported torch (reported by the workers themselves)."""
        return self._retired_torch or any((s.facts or {}).get("torch_imported", False) for s in self._parked)

    @property
    def worker_pids(self) -> list[int]:
        return [s.process.pid for s in self._parked if s.process.is_alive()]

    # ----- in-process ---------------------------------------------------------------------------

    def _run_inline(self, items: Iterable[WorkItem], sink: RecordSink) -> None:
        if self._inline is None:
            self._inline = EpisodeWorker(self.config, policy=self.inline_policy, env_capacity=self.env_capacity)
        else:
            self._inline.reconfigure(self.config, policy=self.inline_policy)
        for item in items:
            if self.stop.requested:  # in-process: stop between episodes
                break
            sink(self._inline.run(item))

    # ----- processes ----------------------------------------------------------------------------

    def _acquire(self, ctx, count: int) -> list[_Slot]:
        slots: list[_Slot] = []
        while self._parked and len(slots) < count:
            slot = self._parked.pop(0)
            if not slot.process.is_alive():
                self._retire(slot)
                continue
            if slot.config != self.config:
                slot.conn.send(self.config)  # the worker keeps its envs, rebuilds what changed
                slot.config = self.config
            slots.append(slot)
        slots.extend(self._start(ctx) for _ in range(count - len(slots)))
        return slots

    def _release(self, slot: _Slot) -> None:
        self.stop.untrack(slot.process.pid)
        self._parked.append(slot)

    @staticmethod
    def _next_group(slot: _Slot, pending: deque[list[WorkItem]]) -> list[WorkItem]:
        """A group of the worker's last task when one is pending (its env is built), else the next."""
        for index, group in enumerate(pending):
            if (group[0].spec.suite, group[0].spec.task_index) == slot.task:
                del pending[index]
                return group
        return pending.popleft()

    def _stop(self, slot: _Slot) -> None:
        super()._stop(slot)
        self._retire(slot)

    def _retire(self, slot: _Slot) -> None:
        facts = slot.facts or {}
        self._retired_builds += facts.get("env_builds", 0)
        self._retired_torch = self._retired_torch or bool(facts.get("torch_imported", False))
        slot.facts = None

    def close(self) -> None:
        """Stop the parked workers and the in-process worker (never the caller's policy)."""
        parked, self._parked = self._parked, []
        for slot in parked:
            self.stop.track(slot.process.pid)
            self._stop(slot)
        if self._inline is not None:
            self._retired_builds += self._inline.envs.builds
            self._inline.close()
            self._inline = None
