"""``runner.workers=auto``: min(cores, MemAvailable / one worker's measured peak)."""

from __future__ import annotations

from pathlib import Path

from evalharness.engine.worker_budget import WORKER_PEAK_BYTES, auto_workers, available_memory_bytes

PEAK = WORKER_PEAK_BYTES


def _meminfo(tmp_path: Path, available_bytes: int) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       99999999 kB\nMemFree:            1000 kB\nMemAvailable:   {available_bytes // 1024} kB\n")
    return path


def test_memory_bounds_the_worker_count(tmp_path):
    assert auto_workers(cores=8, meminfo=_meminfo(tmp_path, 5 * PEAK + PEAK // 2)) == 5
    assert auto_workers(cores=2, meminfo=_meminfo(tmp_path, 100 * PEAK)) == 2
    assert auto_workers(cores=4, meminfo=_meminfo(tmp_path, PEAK // 2)) == 1  # always at least one worker
    assert auto_workers(cores=3, meminfo=tmp_path / "absent") == 3  # not Linux: cores only


def test_mem_available_is_read_from_proc_meminfo(tmp_path):
    real = available_memory_bytes()
    assert real is not None and real > 0
    assert available_memory_bytes(_meminfo(tmp_path, 4 << 30)) == 4 << 30
    assert available_memory_bytes(tmp_path / "absent") is None


def test_the_measured_peak_is_recorded():
    assert 1 << 30 < PEAK < 4 << 30  # between 1 and 4 GiB per LIBERO env (see the comment beside it)
