"""Server-side state: open sessions (one policy fork each) and pending results (futures).

Each session holds its own :meth:`~evalharness.policies.base.Policy.fork` of the served
policy. MinT requests carry no seed, so the session's random state comes from its
client-chosen ``session_id``: an id ending in ``:seed=<N>`` (what ``policy=mint`` sends,
N = the episode's seed) seeds the fork with N, any other id with the first 8 bytes of its
sha256. The fork is reset lazily at the session's first query, because the instruction
arrives only then (inside the prompt's tokens).
"""

from __future__ import annotations

import collections
import hashlib
import re
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from evalharness.policies.base import Policy

_SEED = re.compile(r":seed=(\d{1,19})$")
RESULT_TTL_S = 600.0


def seed_from_session_id(session_id: str) -> int:
    """The seed a session's policy starts from (see the module docstring)."""
    match = _SEED.search(session_id)
    if match is not None:
        return int(match[1]) % 2**63
    return int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big") % 2**63


@dataclass
class Session:
    id: str
    kind: str  # "action" | "sampling"
    client_session_id: str
    model_path: str
    policy: Policy
    seed: int
    instruction: str | None = None  # set at the first query, when the fork is reset


class SessionTable:
    """Open sessions by id; thread-safe."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, kind: str, client_session_id: str, model_path: str) -> Session:
        session = Session(
            id=f"{kind[:3]}-{uuid.uuid4().hex}", kind=kind, client_session_id=client_session_id,
            model_path=model_path, policy=self._policy.fork(), seed=seed_from_session_id(client_session_id),
        )
        with self._lock:
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str, kind: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(session_id)
        return session if session is not None and session.kind == kind else None

    def close(self, session_id: str, kind: str) -> bool:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.kind != kind:
                return False
            del self._sessions[session_id]
        session.policy.close()
        return True

    def count(self) -> dict[str, int]:
        with self._lock:
            kinds = collections.Counter(s.kind for s in self._sessions.values())
        return {"action": kinds.get("action", 0), "sampling": kinds.get("sampling", 0)}


@dataclass
class _Entry:
    future: Future
    created: float = field(default_factory=time.monotonic)


class FutureTable:
    """Results by request_id, kept until retrieved once (or for RESULT_TTL_S)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._retrieved: collections.deque[str] = collections.deque(maxlen=10_000)
        self._lock = threading.Lock()

    def add(self, future: Future) -> str:
        request_id = f"req-{uuid.uuid4().hex}"
        now = time.monotonic()
        with self._lock:
            expired = [k for k, e in self._entries.items() if now - e.created > RESULT_TTL_S]
            for key in expired:
                del self._entries[key]
            self._entries[request_id] = _Entry(future)
        return request_id

    def get(self, request_id: str) -> Future | None:
        with self._lock:
            entry = self._entries.get(request_id)
        return None if entry is None else entry.future

    def was_retrieved(self, request_id: str) -> bool:
        with self._lock:
            return request_id in self._retrieved

    def mark_retrieved(self, request_id: str) -> None:
        with self._lock:
            self._entries.pop(request_id, None)
            self._retrieved.append(request_id)

    def pending(self) -> int:
        with self._lock:
            return sum(not e.future.done() for e in self._entries.values())


def describe_error(exc: BaseException) -> dict[str, Any]:
    """A 200-with-error body for a failed request (MinT's shape).

    The category is the harness's error kind when the policy raised one (``decode_error``,
    ``invalid_action``, ...), else ``policy_error``: ``policy=mint`` raises the same kind,
    so a served episode's error is recorded as the in-process one would be.
    """
    from evalharness.errors import EpisodeError

    kind = exc.kind if isinstance(exc, EpisodeError) else "policy_error"
    return {"error": f"{type(exc).__name__}: {exc}"[:500], "category": kind}
