"""How many worker processes ``runner.workers=auto`` starts: bounded by cores and by memory.

Each worker builds its own LIBERO env. With LIBERO's original assets (4K textures, full
visual meshes) one worker's resident memory peaks at about ``WORKER_PEAK_BYTES``, so a
machine with many cores and little memory must start fewer workers than it has cores, or
the kernel's OOM killer ends the run. The policy's own memory (a VLA checkpoint) comes on
top of this and is not known here; pass ``runner.workers=N`` for large models.
"""

from __future__ import annotations

import os
from pathlib import Path

# Peak RSS of one process running one episode (zero policy, both 256 px cameras rendered
# at every query, openpi protocol) on LIBERO's original assets, largest over one task of
# each scene style, measured on 2026-12-01 with MuJoCo 3.3.2 / llvmpipe by
#   MUJOCO_GL=egl scripts/worker_peak_rss.sh
# which runs, per task, /usr/bin/time -f %M python -m evalharness suite=S 'suite.tasks=[T]'
#   suite.episodes_per_task=1 suite.max_steps=40 runner.workers=0 policy=zero video=none
# KB: libero_spatial 0: 2191996, libero_object 0: 2225660, libero_goal 0: 1939152,
#     libero_10 0 (living room): 2616108, libero_90 0 (kitchen): 2171980, libero_90 73 (study): 1995384.
WORKER_PEAK_BYTES = 2_616_108 * 1024  # 2.5 GiB


MEMINFO = Path("/proc/meminfo")


def available_memory_bytes(meminfo: Path = MEMINFO) -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` (the kernel's estimate of what can be used without
    swapping), or None where that file does not exist (not Linux)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def auto_workers(cores: int | None = None, meminfo: Path = MEMINFO, per_worker: int = WORKER_PEAK_BYTES) -> int:
    """``min(cores, MemAvailable // per-worker peak)``, at least 1 (cores only without meminfo)."""
    cores = usable_cores() if cores is None else cores
    available = available_memory_bytes(meminfo)
    by_memory = cores if available is None else available // per_worker
    return max(1, min(cores, by_memory))
