"""Tying a child process's life to its parent's.

A run starts child processes (simulation workers, the ``runner.policy_server=auto`` policy
server). When the run is killed with SIGKILL it cannot stop them, and an orphaned worker
holds 1.3-2 GB and an orphaned server a model and a port. Linux can do it instead: a child
that asks for a parent-death signal is killed the moment its parent dies.
"""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``).

    Call it first thing in the child. A no-op where there is no such call (not Linux).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
