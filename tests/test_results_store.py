"""ResultStore: append/read, dedup, torn-line tolerance and repair, multi-process appends."""

from __future__ import annotations

import json
import multiprocessing
import warnings

import pytest

from evalharness.results.records import EpisodeRecord
from factories import episode_record
from evalharness.results.store import EPISODES_FILENAME, ResultStore, StoreWarning


def make_record(key: str, *, success: bool = True, error_kind: str | None = None, events=None) -> EpisodeRecord:
    return episode_record(
        key=key, suite="libero_spatial", task_index=1, task_name="pick_up_the_black_bowl",
        instruction="pick up the black bowl", init_state=0, success=success and error_kind is None, steps=50,
        error_kind=error_kind, error_message="boom" if error_kind else None, wall_time_s=1.0, policy_time_s=0.5,
        env_time_s=0.4, render_time_s=0.1, action_fingerprint="ab12", events=list(events or []),
    )


def test_append_and_read_back(tmp_path):
    store = ResultStore(tmp_path / "run")
    recs = [make_record("a"), make_record("b", success=False), make_record("c", error_kind="env_error")]
    for r in recs:
        store.append(r)
    assert store.records() == recs
    assert store.completed_keys() == {"a", "b", "c"}
    lines = (tmp_path / "run" / EPISODES_FILENAME).read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b", "c"]
    # A second store object on the same run sees the same data (resume).
    assert ResultStore(tmp_path / "run").records() == recs


def test_empty_store(tmp_path):
    store = ResultStore(tmp_path, readonly=True)
    assert store.records() == []
    assert store.completed_keys() == set()
    assert not (tmp_path / EPISODES_FILENAME).exists()


def test_duplicates_keep_first_and_are_counted(tmp_path):
    store = ResultStore(tmp_path)
    store.append(make_record("a", success=True))
    store.append(make_record("b"))
    store.append(make_record("a", success=False))
    store.append(make_record("a", error_kind="worker_crash"))
    recs = store.records()
    assert [r.key for r in recs] == ["a", "b"]
    assert recs[0].success is True
    assert store.duplicate_count() == 2
    assert store.scan().duplicates == 2


def test_a_retry_supersedes_an_error_but_not_a_verdict(tmp_path):
    store = ResultStore(tmp_path)
    store.append(make_record("a", error_kind="policy_error"))
    store.append(make_record("b"))
    store.append(make_record("a", success=False))  # the retry reached a verdict
    store.append(make_record("a", error_kind="env_error"))  # a later error does not undo it
    recs = store.records()
    assert [r.key for r in recs] == ["a", "b"]  # order of first appearance
    assert recs[0].outcome == "failure"
    assert store.duplicate_count() == 1


def test_latest_of_several_errors_is_kept(tmp_path):
    store = ResultStore(tmp_path)
    store.append(make_record("a", error_kind="policy_error"))
    store.append(make_record("a", error_kind="worker_crash"))
    (rec,) = store.records()
    assert rec.error_kind == "worker_crash" and store.duplicate_count() == 0


def test_torn_final_line_ignored_then_repaired(tmp_path):
    path = tmp_path / EPISODES_FILENAME
    good = make_record("a").to_json_line() + "\n"
    torn = make_record("b").to_json_line()[:37]  # a crash mid-write: no newline
    path.write_text(good + torn)

    reader = ResultStore(tmp_path, readonly=True)
    with pytest.warns(StoreWarning, match="torn"):
        scan = reader.scan()
    assert scan.torn_tail and [r.key for r in scan.records] == ["a"]
    assert path.read_text() == good + torn  # read-only never modifies

    with pytest.warns(StoreWarning, match="removed a torn"):
        store = ResultStore(tmp_path)
    assert path.read_text() == good
    store.append(make_record("c"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # clean file now: no warnings at all
        assert [r.key for r in store.records()] == ["a", "c"]


def test_append_repairs_tail_torn_after_open(tmp_path):
    store = ResultStore(tmp_path)
    store.append(make_record("a"))
    with open(tmp_path / EPISODES_FILENAME, "a") as f:  # another writer crashed mid-line
        f.write('{"key": "half')
    with pytest.warns(StoreWarning):
        store.append(make_record("b"))
    assert [r.key for r in store.records()] == ["a", "b"]


def test_torn_file_without_any_newline(tmp_path):
    (tmp_path / EPISODES_FILENAME).write_text('{"key": "x"')
    with pytest.warns(StoreWarning):
        store = ResultStore(tmp_path)
    assert (tmp_path / EPISODES_FILENAME).read_bytes() == b""
    store.append(make_record("a"))
    assert store.completed_keys() == {"a"}


def test_corrupt_middle_line_skipped_with_warning(tmp_path):
    path = tmp_path / EPISODES_FILENAME
    path.write_text(
        make_record("a").to_json_line() + "\n" + "{not json}\n" + '{"key": "y"}\n' + make_record("b").to_json_line() + "\n"
    )
    with pytest.warns(StoreWarning, match="2 line"):
        scan = ResultStore(tmp_path).scan()
    assert [r.key for r in scan.records] == ["a", "b"]
    assert scan.corrupt_lines == 2 and not scan.torn_tail


def test_readonly_store_refuses_append(tmp_path):
    with pytest.raises(PermissionError):
        ResultStore(tmp_path, readonly=True).append(make_record("a"))


def test_append_rejects_non_records(tmp_path):
    with pytest.raises(TypeError):
        ResultStore(tmp_path).append({"key": "a"})  # type: ignore[arg-type]


def _append_many(run_dir: str, worker: int, count: int) -> None:
    store = ResultStore(run_dir)
    # Lines well above PIPE_BUF (4 KiB), so interleaving would show if writes were split.
    padding = ["x" * 200] * 60
    for i in range(count):
        store.append(make_record(f"w{worker}-{i}", events=padding))


def test_concurrent_appends_from_two_processes(tmp_path):
    count = 150
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(tmp_path), w, count)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    raw = (tmp_path / EPISODES_FILENAME).read_bytes()
    assert raw.endswith(b"\n")
    lines = raw.split(b"\n")[:-1]
    assert len(lines) == 2 * count
    for line in lines:  # every line is a whole, valid record
        EpisodeRecord.from_json_line(line)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scan = ResultStore(tmp_path, readonly=True).scan()
    assert scan.duplicates == 0 and scan.corrupt_lines == 0
    assert scan.records and {r.key for r in scan.records} == {f"w{w}-{i}" for w in range(2) for i in range(count)}
    # Each writer's own lines stay in its order.
    for w in range(2):
        mine = [r.key for r in scan.records if r.key.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(count)]
