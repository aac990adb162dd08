"""What runs inside one worker process: build envs and the policy, run episodes, report.

A worker receives a *group* of episode specs of one task, builds that task's env once
(~7 s) and runs the episodes in order, sending ``("done", EpisodeResult)`` after each one and
``("idle", worker_facts)`` after the group; a ``WorkerConfig`` instead of a group is a
warm runner's next run (:meth:`EpisodeWorker.reconfigure`). The parent owns the result store; a worker never
writes results itself, so a worker dying mid-episode loses nothing already reported.

Signals: a worker ignores SIGINT (the parent decides what a Ctrl-C means) and takes
SIGTERM as "stop now": it abandons its episode, closes its env and policy (a remote
policy deletes its session), and exits. SIGTERM is held back while a record is being sent,
so the parent never reads half a message.
"""

from __future__ import annotations

import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any

from evalharness.engine.child_process import die_with_parent
from evalharness.engine.episode_worker import EpisodeResult, EpisodeWorker, WorkerConfig, WorkItem
from evalharness.errors import UserInputError

__all__ = ["USER_ERROR_PREFIX", "EpisodeResult", "WorkItem", "WorkerConfig", "worker_main"]


#: A worker's fatal message that is a user's mistake (one line for the user, exit 2).
USER_ERROR_PREFIX = "UserInputError: "


class _Stopped(BaseException):
    """SIGTERM from the parent: unwind whatever runs, through the ``finally`` that closes."""


_stopping = False  # set by SIGTERM: the episode in flight is abandoned, never reported


def _on_sigterm(signum: int, frame: Any) -> None:
    global _stopping
    _stopping = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the closing finish
    raise _Stopped


def _handle_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _send(conn: Connection, message: tuple[str, Any]) -> None:
    """Send a whole message: a SIGTERM arriving meanwhile is handled right after."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        conn.send(message)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def worker_facts(worker: EpisodeWorker) -> dict[str, Any]:
    """What a worker reports when idle: envs built so far, and whether torch was ever imported
    here (an in-memory model is served by the parent; its workers never load it)."""
    import sys

    return {"env_builds": worker.envs.builds, "torch_imported": "torch" in sys.modules}


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of a worker process (started with the 'spawn' method)."""
    die_with_parent()
    _handle_signals()
    worker: EpisodeWorker | None = None
    from envs.libero.runtime import limit_render_threads

    limit_render_threads(config.render_threads)
    try:
        from envs.libero.runtime import prepare_process

        prepare_process()
        try:
            worker = EpisodeWorker(config)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the run
            _send(conn, ("fatal", f"{type(exc).__name__}: {exc}"))
            return
        while True:
            items = conn.recv()
            if items is None:
                break
            if isinstance(items, WorkerConfig):  # a warm runner's next run: keep envs, rebuild what changed
                try:
                    worker.reconfigure(items)
                except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the run
                    _send(conn, ("fatal", f"{type(exc).__name__}: {exc}"))
                    return
                continue
            for item in items:
                try:
                    result = worker.run(item)
                    if _stopping:
                        # SIGTERM arrived inside native code (numba, MuJoCo), which turned
                        # _Stopped into an ordinary exception the rollout recorded as the
                        # episode's error: the episode was abandoned, not run, so drop it.
                        return
                except UserInputError as exc:  # a configuration mistake found late (checkpoint weights)
                    _send(conn, ("fatal", f"{USER_ERROR_PREFIX}{exc}"))
                    return
                except Exception:  # noqa: BLE001 - a harness bug: report it, do not hang the run
                    if not _stopping:  # (else it is _Stopped, converted by native code)
                        _send(conn, ("fatal", traceback.format_exc()))
                    return
                _send(conn, ("done", result))
            _send(conn, ("idle", worker_facts(worker)))
    except (EOFError, BrokenPipeError, KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stop request during cleanup must not cut it short
        if worker is not None:
            worker.close()
