"""The thread that gathers queries of different sessions into batches: what every server shares.

``evalharness serve`` (MinT, :mod:`evalharness.transports.mint.batcher`) and the websocket
servers (openpi's, vla-eval's, :mod:`evalharness.transports.serving`) serve one model to
many sessions the same way. One daemon thread owns the model. It takes the oldest waiting
query, then waits up to ``max_wait_ms`` for more, until ``max_batch`` queries of
*distinct* sessions are gathered (a session's queries run one at a time and in order: a
second query of a session already in the batch waits for the next one) or, when the server
says how many sessions are open (``active_sessions``), every open session has a query in
the batch (no other session could add one, so waiting would only add latency: a single
session never waits). What a batch does is the subclass's :meth:`BatchLoop._run`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class _Query(Protocol):
    session: Any  # has an ``id``


Q = TypeVar("Q", bound=_Query)


class BatchLoop(Generic[Q]):
    """The gathering thread; subclasses run a batch (:meth:`_run`) and fail a query (:meth:`_fail`)."""

    def __init__(self, max_batch: int, max_wait_ms: float, *, name: str,
                 active_sessions: Callable[[], int] | None = None) -> None:
        self.max_batch = max(1, int(max_batch))
        self.max_wait_s = max(0.0, float(max_wait_ms)) / 1000.0
        self._active = active_sessions
        self._queue: queue.Queue[Q | None] = queue.Queue()
        self._carry: deque[Q] = deque()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _start(self) -> None:
        """Start the thread (a subclass calls it once its own state is set)."""
        self._thread.start()

    def _put(self, query: Q) -> None:
        self._queue.put(query)

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _next(self, timeout: float | None) -> Q | None:
        """The next query; None on a timeout (or ``timeout <= 0`` and nothing queued) or a stop."""
        try:
            return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _gather(self) -> list[Q] | None:
        """The next batch, or None when stopping."""
        batch: list[Q] = []
        sessions: set[str] = set()
        waiting: deque[Q] = deque()

        def take(query: Q) -> None:
            if query.session.id in sessions or len(batch) >= self.max_batch:
                waiting.append(query)
            else:
                batch.append(query)
                sessions.add(query.session.id)

        while self._carry:
            take(self._carry.popleft())
        if not batch:
            first = self._next(None)
            if first is None:
                return None
            take(first)
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch and (self._active is None or len(batch) < self._active()):
            query = self._next(deadline - time.monotonic())
            if query is None:
                if self._stopped:
                    return None
                break
            take(query)
        self._carry.extend(waiting)
        return batch

    def _loop(self) -> None:
        while not self._stopped:
            batch = self._gather()
            if batch is None:
                break
            self._run(batch)
        for query in list(self._carry):
            self._fail(query, RuntimeError("the server is shutting down"))

    def _run(self, batch: list[Q]) -> None:
        raise NotImplementedError

    def _fail(self, query: Q, exc: BaseException) -> None:
        raise NotImplementedError
