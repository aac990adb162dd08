"""Server-side state: open sessions (one policy fork each) and pending results (futures).

Each session holds its own :meth:`~evalharness.policies.base.Policy.fork` of the served
policy. MinT requests carry no seed, so the session's random state comes from its
client-chosen ``session_id``: an id ending in ``:seed=<N>`` (what ``policy=mint`` sends,
N = the episode's seed) seeds the fork with N, any other id with the first 8 bytes of its
sha256. The fork is reset lazily at the session's first query, because the instruction
arrives only then (inside the prompt's tokens).

Bounds (``serve.max_sessions``, ``serve.session_ttl_s``): at most ``max_sessions`` sessions
are open at once (action and sampling sessions and the SDK's client sessions together); a
session idle for longer than ``session_ttl_s`` (no request, no query in flight) is closed
when the table is next touched, and its id is remembered (a bounded list) so that a late
request hears "expired", not "unknown". Results wait in a :class:`FutureTable`, at most
``MAX_PENDING_PER_SESSION`` unretrieved per session.
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
#: Results a session may leave unretrieved before its next query is refused (429).
MAX_PENDING_PER_SESSION = 8
#: How many expired / closed session ids are remembered for a clear 404.
REMEMBERED_IDS = 10_000


class SessionsFull(Exception):
    """No room for one more session (``serve.max_sessions``); the server answers 429."""


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
    last_used: float = field(default_factory=time.monotonic)
    in_flight: int = 0  # queries submitted and not yet finished (never expired while > 0)

    def touch(self) -> None:
        self.last_used = time.monotonic()


class SessionTable:
    """Open sessions by id, bounded in number and idle time; thread-safe."""

    def __init__(self, policy: Policy, max_sessions: int = 64, ttl_s: float = 600.0,
                 clock: Any = time.monotonic) -> None:
        self._policy = policy
        self.max_sessions = max_sessions
        self.ttl_s = ttl_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._clients: dict[str, float] = {}  # the SDK's client sessions: id -> last heartbeat
        self._expired: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.expired_count = 0

    # ---------------------------------------------------------------- expiry (caller holds the lock)
    def _sweep(self) -> list[Session]:
        now = self._clock()
        gone = [s for s in self._sessions.values() if s.in_flight == 0 and now - s.last_used > self.ttl_s]
        for session in gone:
            del self._sessions[session.id]
            self._remember(session.id)
        for client_id in [c for c, seen in self._clients.items() if now - seen > self.ttl_s]:
            del self._clients[client_id]
            self._remember(client_id)
        self.expired_count += len(gone)
        return gone

    def _remember(self, session_id: str) -> None:
        self._expired[session_id] = None
        while len(self._expired) > REMEMBERED_IDS:
            self._expired.popitem(last=False)

    def _room(self) -> None:
        if len(self._sessions) + len(self._clients) >= self.max_sessions:
            raise SessionsFull(f"{self.max_sessions} sessions are open (serve.max_sessions); close one or retry later")

    def _close_all(self, sessions: list[Session]) -> None:
        for session in sessions:
            session.policy.close()

    # ---------------------------------------------------------------- sessions
    def open(self, kind: str, client_session_id: str, model_path: str | None, seq_id: int = 0) -> Session:
        """A new session; :class:`SessionsFull` when ``max_sessions`` are open."""
        with self._lock:
            gone = self._sweep()
            self._room()
        self._close_all(gone)
        seed_key = client_session_id if not seq_id else f"{client_session_id}#{seq_id}"
        session = Session(
            id=f"{kind[:3]}-{uuid.uuid4().hex}", kind=kind, client_session_id=client_session_id,
            model_path=model_path or "", policy=self._policy.fork(), seed=seed_from_session_id(seed_key),
            last_used=self._clock(),
        )
        with self._lock:
            if len(self._sessions) + len(self._clients) >= self.max_sessions:  # filled meanwhile
                session.policy.close()
                self._room()
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str, kind: str) -> Session | None:
        """The open session (and marks it used), or None."""
        with self._lock:
            gone = self._sweep()
            session = self._sessions.get(session_id)
            if session is not None and session.kind == kind:
                session.last_used = self._clock()
            else:
                session = None
        self._close_all(gone)
        return session

    def expired(self, session_id: str) -> bool:
        """Whether ``session_id`` was open here and expired (or was closed)."""
        with self._lock:
            return session_id in self._expired

    def close(self, session_id: str, kind: str) -> bool:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.kind != kind:
                return False
            del self._sessions[session_id]
            self._remember(session_id)
        session.policy.close()
        return True

    # ---------------------------------------------------------------- the SDK's client sessions
    def open_client(self) -> str:
        with self._lock:
            gone = self._sweep()
            self._room()
            client_id = f"ses-{uuid.uuid4().hex}"
            self._clients[client_id] = self._clock()
        self._close_all(gone)
        return client_id

    def heartbeat(self, client_id: str) -> bool:
        with self._lock:
            if client_id not in self._clients:
                return False
            self._clients[client_id] = self._clock()
            now = self._clock()
            for session in self._sessions.values():  # a live client keeps its sampling sessions alive
                if session.client_session_id == client_id:
                    session.last_used = now
            return True

    def count(self) -> dict[str, int]:
        with self._lock:
            kinds = collections.Counter(s.kind for s in self._sessions.values())
        return {"action": kinds.get("action", 0), "sampling": kinds.get("sampling", 0)}

    def client_count(self) -> int:
        with self._lock:
            return len(self._clients)

    def sweep(self) -> int:
        """Close idle sessions now; how many were closed."""
        with self._lock:
            gone = self._sweep()
        self._close_all(gone)
        return len(gone)


@dataclass
class _Entry:
    future: Future
    session_id: str
    created: float = field(default_factory=time.monotonic)


class TooManyPending(Exception):
    """A session (or the server) holds too many unretrieved results; the server answers 429."""


class FutureTable:
    """Results by request_id, kept until retrieved once (or for RESULT_TTL_S), bounded:
    ``MAX_PENDING_PER_SESSION`` per session and ``max_entries`` in all."""

    def __init__(self, max_entries: int = 64 * MAX_PENDING_PER_SESSION) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._retrieved: collections.deque[str] = collections.deque(maxlen=10_000)
        self._lock = threading.Lock()

    def reserve(self, session_id: str) -> None:
        """Raise :class:`TooManyPending` unless one more result of ``session_id`` fits."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, e in self._entries.items() if now - e.created > RESULT_TTL_S]:
                del self._entries[key]
            if sum(e.session_id == session_id for e in self._entries.values()) >= MAX_PENDING_PER_SESSION:
                raise TooManyPending(f"this session has {MAX_PENDING_PER_SESSION} results not yet retrieved; "
                                     "retrieve them first")
            if len(self._entries) >= self.max_entries:
                done = [k for k, e in self._entries.items() if e.future.done()]
                if not done:
                    raise TooManyPending("the server holds too many pending results; retry later")
                del self._entries[done[0]]  # the oldest finished, never-retrieved result

    def add(self, future: Future, session_id: str = "") -> str:
        request_id = f"req-{uuid.uuid4().hex}"
        with self._lock:
            self._entries[request_id] = _Entry(future, session_id)
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

    def size(self) -> int:
        with self._lock:
            return len(self._entries)


def describe_error(exc: BaseException) -> dict[str, Any]:
    """A 200-with-error body for a failed request (MinT's shape).

    ``kind`` is the harness's error kind when the policy raised one (``decode_error``,
    ``invalid_action``, ...), else ``policy_error``: ``policy=mint`` raises the same kind,
    so a served episode's error is recorded as the in-process one would be. ``category``
    is one of the SDK's (``server``).
    """
    from evalharness.errors import EpisodeError

    kind = exc.kind if isinstance(exc, EpisodeError) else "policy_error"
    # category: one the SDK's RequestErrorCategory knows (the policy failed on the server's
    # side); kind: the harness error kind, which policy=mint reads first.
    return {"error": f"{type(exc).__name__}: {exc}"[:500], "category": "server", "kind": kind}
