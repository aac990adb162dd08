"""``die_with_parent``: a child that asked for it is killed when its parent is SIGKILLed.

Real processes: a parent starts a child (which calls it, or not) and is then killed with
SIGKILL, the one way a run cannot clean up after itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", {child!r}])
print(child.pid, flush=True)
time.sleep(60)
"""
CHILD = "{call}import time; print('ready', flush=True); time.sleep(60)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (reaped by init later) is dead already
        return stat.read().split(") ", 1)[1][0] != "Z"


def _child_after_parent_killed(call: str, wait_for_death: bool) -> int:
    child_code = CHILD.format(call=call)
    parent = subprocess.Popen([sys.executable, "-c", PARENT.format(child=child_code)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    pid = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "ready"  # the child (same stdout) has made its call
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + (5 if wait_for_death else 0.5)
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_child_that_asked_dies_with_its_parent_and_one_that_did_not_survives() -> None:
    pid = _child_after_parent_killed("from evalharness.engine.child_process import die_with_parent; die_with_parent(); ", True)
    assert not _alive(pid)
    pid = _child_after_parent_killed("", False)  # the control: without the call, the child is orphaned
    try:
        assert _alive(pid)
    finally:
        os.kill(pid, signal.SIGKILL)
