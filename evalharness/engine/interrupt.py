"""Ctrl-C: the first SIGINT stops a run cleanly, a second one stops it at once.

Why a handler and not Python's ``KeyboardInterrupt``: that exception lands at an arbitrary
line of the parent, the only writer of the result store, and says nothing to workers. The
handler here only *records* the request and wakes the runner (a self-pipe it waits on
next to its workers), so the runner stops at a point it chooses:

1. first SIGINT: no new episode starts; workers are told to end (their policies get
   ``close()``, so remote policies delete their sessions), records already finished are
   kept, and the run exits 130 after printing the command that resumes it;
2. second SIGINT: every tracked worker process is SIGKILLed and the parent exits 130 on
   the spot. Nothing finished is lost: each record was appended atomically when it came.

Workers ignore SIGINT themselves (a terminal's Ctrl-C reaches the whole process group):
only the parent decides, so a worker never dies half-way through reporting a record.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for a Ctrl-C


class RunInterrupted(Exception):
    """The run stopped on a SIGINT; its finished episodes are stored and it can resume."""


class StopRequest:
    """A stop asked for from outside (SIGINT), which a runner can wait on like a pipe."""

    def __init__(self) -> None:
        self.requested = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._pids: set[int] = set()

    def fileno(self) -> int:
        """Readable once a stop is requested (for ``multiprocessing.connection.wait``)."""
        return self._read

    def request(self) -> None:
        if not self.requested:
            self.requested = True
            with contextlib.suppress(OSError):
                os.write(self._write, b"x")

    def track(self, pid: int) -> None:
        """A worker process to kill if the user asks to stop at once."""
        self._pids.add(pid)

    def untrack(self, pid: int) -> None:
        self._pids.discard(pid)

    def kill_workers(self) -> None:
        for pid in list(self._pids):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def sigint_stops(stop: StopRequest) -> Iterator[StopRequest]:
    """While inside, SIGINT asks ``stop`` to stop cleanly; a second SIGINT stops at once.

    Outside the main thread (signals cannot be handled there) this only yields ``stop``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if not stop.requested:
            stop.request()
            print("\nevalharness: interrupted: stopping the workers; finished episodes are kept "
                  "(Ctrl-C again to stop at once)", file=sys.stderr, flush=True)
            return
        stop.kill_workers()
        print("\nevalharness: stopped at once; finished episodes are kept", file=sys.stderr, flush=True)
        os._exit(INTERRUPTED_EXIT)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
