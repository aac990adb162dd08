"""Gathers concurrent queries of different sessions into one ``Policy.act_batch`` call.

One thread owns the model. It takes the oldest waiting query, then waits up to
``max_wait_ms`` for more, until ``max_batch`` queries of *distinct* sessions are
gathered or every open session has a query in the batch (no other session could add
one, so waiting would only add latency: a single session never waits) (a session's queries run one at a time and in order: a second query of a session
already in the batch waits for the next one). ``act_batch`` gets the sessions' own forks,
so each keeps its own random state and its answer does not depend on what else was in
the batch. ``max_batch=1`` calls ``act`` one query at a time, for bit-exact comparisons
with a policy whose batched float kernels differ in the last bits.

A failure inside ``act_batch`` fails every query of that batch (the forward pass is
shared); failures of one query's own post-processing (decoding its tokens) fail only it.

Each result gets ``server_timing``: ``decode_ms`` (given by the route: request arrival to
queued), ``wait_ms`` (queued to its batch's start), ``model_ms`` (the forward pass),
``reply_ms`` (building the result body).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from evalharness.transports.mint.sessions import Session

#: (session, model output, infer_ms) -> the result body sent to the client
Finish = Callable[[Session, Any, float], dict[str, Any]]


@dataclass
class Query:
    session: Session
    observation: dict[str, Any]
    finish: Finish
    future: Future
    decode_ms: float = 0.0
    queued: float = 0.0


class Batcher:
    """A daemon thread running queries through the policy in batches."""

    def __init__(self, max_batch: int, max_wait_ms: float, active_sessions: Callable[[], int] | None = None) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._active = active_sessions
        self._queue: queue.Queue[Query | None] = queue.Queue()
        self._carry: deque[Query] = deque()
        self._thread = threading.Thread(target=self._loop, name="evalharness-batcher", daemon=True)
        self._stopped = False
        self.batches = 0
        self.queries = 0
        self._thread.start()

    def submit(self, session: Session, observation: dict[str, Any], finish: Finish, decode_ms: float = 0.0) -> Future:
        future: Future = Future()
        session.in_flight += 1
        self._queue.put(Query(session, observation, finish, future, decode_ms, time.perf_counter()))
        return future

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout=10)

    # ---------------------------------------------------------------- the thread
    def _next(self, timeout: float | None) -> Query | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _gather(self) -> list[Query] | None:
        """The next batch, or None when stopping."""
        batch: list[Query] = []
        sessions: set[str] = set()
        waiting: deque[Query] = deque()

        def take(query: Query) -> None:
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
            left = deadline - time.monotonic()
            query = self._next(left) if left > 0 else self._next_nowait()
            if query is None:
                if self._stopped:
                    return None
                break
            take(query)
        self._carry.extend(waiting)
        return batch

    def _next_nowait(self) -> Query | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _loop(self) -> None:
        while not self._stopped:
            batch = self._gather()
            if batch is None:
                break
            self._run(batch)
        for query in list(self._carry):
            _fail(query, RuntimeError("the server is shutting down"))

    def _run(self, batch: list[Query]) -> None:
        ready: list[Query] = []
        for query in batch:
            session = query.session
            instruction = query.observation["instruction"]
            try:
                if session.instruction is None:
                    session.policy.reset(instruction, seed=session.seed)
                    session.instruction = instruction
                elif instruction != session.instruction:
                    raise ValueError("a session serves one episode: the instruction changed; open a new session")
            except Exception as exc:  # noqa: BLE001 - reported to that query's client
                _fail(query, exc)
            else:
                ready.append(query)
        if not ready:
            return
        policies = [q.session.policy for q in ready]
        observations = [q.observation for q in ready]
        start = time.perf_counter()
        try:
            if len(ready) == 1:
                outputs = [policies[0].act(observations[0])]
            else:
                outputs = type(policies[0]).act_batch(policies, observations)
        except Exception as exc:  # noqa: BLE001 - the shared forward pass failed: every query learns why
            for query in ready:
                _fail(query, exc)
            return
        end = time.perf_counter()
        infer_ms = 1000.0 * (end - start)
        self.batches += 1
        self.queries += len(ready)
        for query, output in zip(ready, outputs, strict=True):
            try:
                body = query.finish(query.session, output, infer_ms)
            except Exception as exc:  # noqa: BLE001 - this query's output could not be sent
                _fail(query, exc)
                continue
            body["server_timing"] = {"decode_ms": query.decode_ms, "wait_ms": 1000.0 * (start - query.queued),
                                     "model_ms": infer_ms, "reply_ms": 1000.0 * (time.perf_counter() - end)}
            query.session.in_flight -= 1
            query.session.touch()
            query.future.set_result(body)


def _fail(query: Query, exc: BaseException) -> None:
    query.session.in_flight -= 1
    query.session.touch()
    query.future.set_exception(exc)
