"""Crash accounting shared by every runner: which episode a dead worker costs, and when to give up.

A worker (a local process or a Ray actor) that dies mid-run loses the episode it was on
and the rest of its group. Every runner hands the unfinished items of a dead worker to
:meth:`CrashAccounting.worker_died`, which decides, the same way for all of them:

- the *first* unfinished item is charged one attempt (the worker runs its group in
  order, so it died on that episode, or before it, while starting up or building the
  policy; charging it keeps a worker that can never start from being respawned forever);
- once an item has used ``max_attempts`` attempts it is recorded as a ``worker_crash``
  error, reporting the attempts that actually ran;
- everything else is requeued, the charged item with its next attempt number.

The attempt number travels with the item (:attr:`WorkItem.attempt`), so the worker that
runs an episode knows which attempt it is (a test policy can fault on the first one only)
and records it in the episode's ``attempts`` field. The accounting is plain data with no
process handling, so the chaos bench and other runners can use and count on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from evalharness.engine.episode_worker import WorkItem, make_record
from evalharness.errors import WorkerCrash
from evalharness.results.records import EpisodeRecord


def exit_cause(exitcode: int | None) -> str:
    """How a local process ended, in words (``signal 9``, ``exit code 1``)."""
    return f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"


def crash_record(item: WorkItem, attempts: int, cause: str) -> EpisodeRecord:
    """The record of an episode whose worker died on each of its ``attempts`` attempts."""
    from evalharness.episode.rollout import EpisodeOutcome

    error = WorkerCrash(f"the worker process died ({cause}) on each of {attempts} attempts")
    return make_record(item.spec, EpisodeOutcome.error_only(error), attempts=attempts)


@dataclass
class CrashAccounting:
    """Attempts, requeue and ``worker_crash`` records for the episodes of dead workers."""

    max_attempts: int = 2
    deaths: int = 0  # worker deaths seen that cost an episode attempt
    crashes: list[str] = field(default_factory=list)  # keys recorded as worker_crash

    def worker_died(self, unfinished: list[WorkItem], cause: str) -> tuple[list[WorkItem], EpisodeRecord | None]:
        """Charge the first unfinished item; return (items to requeue, crash record or None)."""
        if not unfinished:
            return [], None
        self.deaths += 1
        first, rest = unfinished[0], list(unfinished[1:])
        attempts = first.attempt + 1
        if attempts > self.max_attempts:
            self.crashes.append(first.spec.key)
            return rest, crash_record(first, first.attempt, cause)
        return [dataclasses.replace(first, attempt=attempts), *rest], None
