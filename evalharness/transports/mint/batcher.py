"""Gathers concurrent queries of different sessions into one ``Policy.act_batch`` call.

The gathering is :class:`~evalharness.transports.batch_loop.BatchLoop`'s, with the open
sessions counted (a batch holding every open session does not wait, so a single session
never waits). ``act_batch`` gets the sessions' own forks, so each keeps its own random
state and its answer does not depend on what else was in the batch. ``max_batch=1`` calls
``act`` one query at a time, for bit-exact comparisons with a policy whose batched float
kernels differ in the last bits.

A failure inside ``act_batch`` fails every query of that batch (the forward pass is
shared); failures of one query's own post-processing (decoding its tokens) fail only it.

Each result gets ``server_timing``: ``decode_ms`` (given by the route: request arrival to
queued), ``wait_ms`` (queued to its batch's start), ``model_ms`` (the forward pass),
``reply_ms`` (building the result body).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from evalharness.transports.batch_loop import BatchLoop
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


class Batcher(BatchLoop[Query]):
    """A daemon thread running queries through the policy in batches
    (:class:`~evalharness.transports.batch_loop.BatchLoop`)."""

    def __init__(self, max_batch: int, max_wait_ms: float, active_sessions: Callable[[], int] | None = None) -> None:
        super().__init__(max_batch, max_wait_ms, name="evalharness-batcher", active_sessions=active_sessions)
        self.batches = 0
        self.queries = 0
        self._start()

    def submit(self, session: Session, observation: dict[str, Any], finish: Finish, decode_ms: float = 0.0) -> Future:
        future: Future = Future()
        session.in_flight += 1
        self._put(Query(session, observation, finish, future, decode_ms, time.perf_counter()))
        return future

    def _fail(self, query: Query, exc: BaseException) -> None:
        _fail(query, exc)

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
