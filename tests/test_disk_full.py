"""A results folder that runs out of space, for real.

The folder is a small tmpfs (mounted here when the tests run as root), filled to the
last page by a filler file; without root, a file-size limit (``RLIMIT_FSIZE``, in a child
process) plays the full disk for the store. Checked: the store never keeps a partial
line; a video that cannot be written is recorded as missing (``video: null`` plus an
event), never kept half-written; the real command stops with one line naming the folder
and the cause; after space is freed the same command resumes to completion with nothing
lost or duplicated.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from evalharness.plan.spec import EpisodeSpec
from evalharness.episode.video_selection import SCRATCH_DIR, EpisodeRecorder
from evalharness.results.disk_full import DiskFull, disk_full_cause, disk_full_in_events, stop_when_disk_full
from evalharness.results.records import EpisodeRecord
from evalharness.results.store import ResultStore
from evalharness.episode.video import EpisodeVideo, mp4_is_complete
from factories import record_fields

REPO = Path(__file__).resolve().parents[1]
PAGE = 4096


class SmallDisk:
    """A tmpfs of ``size`` bytes that a filler file can fill to the last page."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler.bin"

    def fill(self, leave: int = 0) -> None:
        """Fill the disk completely, then free ``leave`` bytes (whole pages)."""
        reserve = self.root / "reserve.bin"
        if leave:
            reserve.write_bytes(b"\0" * leave)
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                try:
                    os.write(fd, b"\0" * PAGE)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
        finally:
            os.close(fd)
        reserve.unlink(missing_ok=True)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the RLIMIT_FSIZE tests cover the store without it")
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(root)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def _records(n: int, start: int = 0) -> list[EpisodeRecord]:
    return [EpisodeRecord(**record_fields(key=f"k{i:04d}", init_state=i)) for i in range(start, start + n)]


def _lines_are_records(path: Path) -> list[EpisodeRecord]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "torn tail left behind"
    return [EpisodeRecord.from_json_line(line) for line in data.splitlines()]


# -- the store -------------------------------------------------------------------------------


def test_an_append_on_a_full_disk_raises_enospc_and_leaves_the_store_valid(small_disk: SmallDisk) -> None:
    store = ResultStore(small_disk.root / "run")
    for record in _records(3):
        store.append(record)
    small_disk.fill()
    big = EpisodeRecord(**record_fields(key="big", events=["x" * 9000]))  # needs pages the disk lacks
    with pytest.raises(OSError) as info:
        store.append(big)
    assert info.value.errno == errno.ENOSPC and "partial line was removed" in str(info.value)
    assert [r.key for r in _lines_are_records(store.path)] == ["k0000", "k0001", "k0002"]

    small_disk.free()
    store.append(big)
    scan = ResultStore(store.run_dir).scan()
    assert [r.key for r in scan.records] == ["k0000", "k0001", "k0002", "big"]
    assert (scan.duplicates, scan.corrupt_lines, scan.torn_tail) == (0, 0, False)


def test_a_short_write_into_the_last_page_is_removed(small_disk: SmallDisk) -> None:
    # The file's last page has room for part of the line: os.write writes that part and
    # returns short; the store must take it back out rather than leave half a record.
    store = ResultStore(small_disk.root / "run")
    store.append(_records(1)[0])
    size = store.path.stat().st_size
    assert size % PAGE and size % PAGE < PAGE - 200  # room left in the page, not enough for a big record
    small_disk.fill()
    with pytest.raises(OSError) as info:
        store.append(EpisodeRecord(**record_fields(key="big", events=["x" * 6000])))
    assert info.value.errno == errno.ENOSPC
    assert store.path.stat().st_size == size
    assert [r.key for r in _lines_are_records(store.path)] == ["k0000"]


_FSIZE_CHILD = """
import errno, resource, sys
from evalharness.results.records import EpisodeRecord
from evalharness.results.store import ResultStore
from factories import record_fields
store = ResultStore(sys.argv[1])
store.append(EpisodeRecord(**record_fields(key="small")))
size = store.path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, resource.RLIM_INFINITY))
try:
    store.append(EpisodeRecord(**record_fields(key="big", events=["x" * 4000])))
except OSError as exc:
    print("errno", errno.errorcode[exc.errno], store.path.stat().st_size == size)
"""


def test_a_file_size_limit_gives_efbig_and_no_partial_line(tmp_path: Path) -> None:
    # Works without root: RLIMIT_FSIZE in a child (Python ignores SIGXFSZ, so the write
    # fails with EFBIG after a short write up to the limit).
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, "-c", _FSIZE_CHILD, str(run)], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"}, timeout=120)
    assert out.stdout.split() == ["errno", "EFBIG", "True"], out.stderr
    assert [r.key for r in _lines_are_records(run / "episodes.jsonl")] == ["small"]


# -- the error and its message ---------------------------------------------------------------


def test_a_full_disk_is_one_line_naming_the_folder_and_the_cause(tmp_path: Path) -> None:
    with pytest.raises(DiskFull) as info:
        with stop_when_disk_full(tmp_path, "appending to episodes.jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"results folder {tmp_path}: no space left on device (ENOSPC) while appending")
    assert "rerun the same command to resume" in message
    with pytest.raises(PermissionError):  # anything else is not a full disk
        with stop_when_disk_full(tmp_path, "x"):
            raise PermissionError(errno.EACCES, "denied")
    assert disk_full_cause(OSError(errno.EFBIG, "File too large")) == "file too large (EFBIG)"
    assert disk_full_cause(OSError("ffmpeg: av_interleaved_write_frame(): No space left on device")) == (
        "no space left on device (ENOSPC)")
    assert disk_full_in_events(["other", "video_not_written: disk quota exceeded (EDQUOT)"]) == "disk quota exceeded (EDQUOT)"
    assert disk_full_in_events(["video_not_written: RuntimeError: codec"]) is None


# -- videos ----------------------------------------------------------------------------------


def _noise_frames(n: int, size: int = 96) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(0)
    for _ in range(n):
        yield rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)  # incompressible


class _Outcome:
    error_kind = None
    success = False


def _spec() -> EpisodeSpec:
    return EpisodeSpec(suite="libero_object", task_index=0, task_name="t", instruction="i", init_state=0, seed=7,
                       context="c")


def test_a_video_that_does_not_fit_is_recorded_missing_and_leaves_no_file(small_disk: SmallDisk) -> None:
    run = small_disk.root / "run"
    run.mkdir()
    small_disk.fill(leave=8 * PAGE)  # room for a record, not for 40 frames of noise
    recorder = EpisodeRecorder(run, _spec(), "yes", fps=10)
    for frame in _noise_frames(40):
        recorder.sink(frame)  # never raises: the episode goes on without its video
    assert recorder.finish(_Outcome()) is None
    assert recorder.events == ["video_not_written: no space left on device (ENOSPC)"]
    assert not list((run / SCRATCH_DIR).rglob("*")) and not (run / "videos").exists()


def test_the_same_video_is_kept_when_there_is_room(small_disk: SmallDisk) -> None:
    run = small_disk.root / "run"
    recorder = EpisodeRecorder(run, _spec(), "yes", fps=10)
    for frame in _noise_frames(40):
        recorder.sink(frame)
    path = recorder.finish(_Outcome())
    assert path is not None and recorder.events == []
    assert (run / path).stat().st_size > 8 * PAGE  # the previous test's video really did not fit
    assert mp4_is_complete(run / path)


def test_an_mp4_cut_anywhere_is_not_complete(tmp_path: Path) -> None:
    with EpisodeVideo(tmp_path / "v.mp4", fps=10) as video:
        for frame in _noise_frames(5, 32):
            video.add_frame(frame)
        path = video.finish(keep=True)
    data = path.read_bytes()
    assert mp4_is_complete(path)
    for cut in (len(data) - 1, len(data) // 2, 40, 0):
        (tmp_path / "cut.mp4").write_bytes(data[:cut])
        assert not mp4_is_complete(tmp_path / "cut.mp4"), cut


# -- the real command ------------------------------------------------------------------------


def _evalharness(*overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    return subprocess.run([sys.executable, "-m", "evalharness", *overrides], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def _fill_when_started(disk: SmallDisk, run: Path, leave: int) -> threading.Thread:
    """Fill the disk as soon as the run has written run.json (before any episode ends)."""

    def fill() -> None:
        deadline = time.monotonic() + 300
        while not (run / "run.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        disk.fill(leave)

    thread = threading.Thread(target=fill, daemon=True)
    thread.start()
    return thread


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("evalharness: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


BASE = ["suite=libero_object", "suite.tasks=[0]", "suite.episodes_per_task=2", "suite.max_steps=20", "policy=zero"]


@pytest.mark.sim
def test_a_run_whose_store_fills_stops_with_one_line_and_resumes(small_disk: SmallDisk, assets_installed) -> None:
    run = small_disk.root / "run"
    args = [*BASE, "camera_size=32", "video=none", "runner.workers=1", f"output_dir={run}"]
    filler = _fill_when_started(small_disk, run, leave=0)
    stopped = _evalharness(*args)
    filler.join()
    assert stopped.returncode == 2
    line = _one_error_line(stopped.stderr)
    assert line == (f"evalharness: error: results folder {run}: no space left on device (ENOSPC) while appending to "
                    "episodes.jsonl; free space there and rerun the same command to resume")
    assert _lines_are_records(run / "episodes.jsonl") == []

    small_disk.free()
    resumed = _evalharness(*args)
    assert resumed.returncode == 0, resumed.stderr
    records = _lines_are_records(run / "episodes.jsonl")
    assert sorted(r.init_state for r in records) == [0, 1]  # nothing lost, nothing twice
    assert json.loads((run / "summary.json").read_text())["complete"] is True


@pytest.mark.sim
def test_a_video_that_fills_the_disk_is_recorded_missing_then_the_run_stops_and_resumes(
    small_disk: SmallDisk, assets_installed
) -> None:
    run = small_disk.root / "run"
    args = [*BASE, "camera_size=128", "video=all", "runner.workers=0", f"output_dir={run}"]
    filler = _fill_when_started(small_disk, run, leave=PAGE)  # a record fits, a video does not
    stopped = _evalharness(*args)
    filler.join()
    assert stopped.returncode == 2
    line = _one_error_line(stopped.stderr)
    assert line.startswith(f"evalharness: error: results folder {run}: no space left on device (ENOSPC) while filming")
    [first] = _lines_are_records(run / "episodes.jsonl")
    assert first.video is None and "video_not_written: no space left on device (ENOSPC)" in first.events
    assert first.error_kind is None and first.steps == 20  # the episode itself kept its verdict

    small_disk.free()
    resumed = _evalharness(*args)
    assert resumed.returncode == 0, resumed.stderr
    records = _lines_are_records(run / "episodes.jsonl")
    assert [r.init_state for r in records] == [first.init_state, 1 - first.init_state]  # not rerun, not lost
    assert records[0].video is None and records[1].video is not None
    assert mp4_is_complete(run / records[1].video)
    left = [p.name for p in (run / "videos").iterdir()]
    assert left == [Path(records[1].video).name] and not (run / SCRATCH_DIR).exists()
