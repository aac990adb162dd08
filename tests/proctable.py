"""Reading the process table (/proc) in tests: which processes a run started, and whether
any of them still runs (a zombie counts as gone: it holds no resources)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a live process, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], int(fields[19])


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace").replace("\0", " ")
    except OSError:
        return ""


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every live descendant of ``root``."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (info := stat(int(entry))) is not None:
            children.setdefault(info[0], []).append(int(entry))
            starts[int(entry)] = info[2]
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def alive(processes: dict[int, int]) -> list[int]:
    """The given processes (pid -> start time) still running: same pid and start time, not a zombie."""
    running = []
    for pid, start in processes.items():
        info = stat(pid)
        if info is not None and info[2] == start and info[1] != "Z":
            running.append(pid)
    return running


def gone_within(processes: dict[int, int], seconds: float) -> list[int]:
    """Wait up to ``seconds`` for the processes to end; return those still running."""
    deadline = time.monotonic() + seconds
    while (running := alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running


def kill_group_after_first_record(proc, episodes: Path, timeout: float = 300) -> None:
    """SIGKILL ``proc``'s process group (the run and its workers, mid-run) as soon as
    ``episodes`` holds one complete line, or when the run ends or ``timeout`` passes.
    ``proc`` must have been started with ``start_new_session=True``."""
    import signal

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if episodes.exists() and episodes.read_bytes().count(b"\n") >= 1:
                break
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
