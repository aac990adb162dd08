"""Raw model outputs kept beside the episodes (``record.raw_outputs=true``) and replayed
from them (``policy=replay policy.from_run=DIR``).

- encoding is exact (float bits, NaN, token ids) and readable for ids;
- the sidecar follows the store's rules: a line per counted episode, orphans of a killed
  run and duplicates dropped when a run reopens it, torn tails repaired;
- end to end in real LIBERO: a recorded run replayed under the same pipeline executes the
  very same actions (fingerprints), under another normalization different ones; a run
  killed between the sidecar line and the record resumes without duplicates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalharness.errors import PolicyError, UserInputError
from evalharness.policies.raw_output_recorder import RawOutputRecorder, decode_output, encode_output, take_raw_outputs
from evalharness.policies.replay import ReplayPolicy
from evalharness.results.raw_output_log import RAW_OUTPUTS_FILENAME, RawOutputLog, load_raw_outputs, record_settings
from evalharness.results.store import ResultStore, StoreWarning
from factories import episode_record


@pytest.mark.parametrize("output", [
    np.array([[0.1, -np.nan, 1e-30]], dtype=np.float32),
    np.random.default_rng(0).normal(size=(10, 7)),
    np.array([257000, 3, 1], dtype=np.int64),
    [5, 6, 7],
])
def test_encoding_is_exact(output) -> None:
    encoded = json.loads(json.dumps(encode_output(output), allow_nan=False))  # strict JSON
    decoded = decode_output(encoded)
    expected = np.asarray(output)
    assert decoded.dtype == expected.dtype and decoded.shape == expected.shape
    assert decoded.tobytes() == expected.tobytes()


def test_token_ids_stay_readable_and_odd_outputs_are_kept_for_diagnosis() -> None:
    assert encode_output([5, 6, 7])["values"] == [5, 6, 7]
    odd = encode_output([[1, 2], [3]])
    assert "repr" in odd
    with pytest.raises(PolicyError, match="cannot be replayed"):
        decode_output(odd)


def test_the_recorder_changes_nothing_and_keeps_each_query() -> None:
    from evalharness.policies.baselines import RandomPolicy
    from evalharness.policies.pipelined import wrap_with_pipeline

    none = {"name": "none"}
    plain, recorded = RandomPolicy(horizon=3), wrap_with_pipeline(RawOutputRecorder(RandomPolicy(horizon=3)),
                                                                   {"decoder": none, "normalize": {"name": "range", "low": -0.5, "high": 0.5}, "convert": none})
    assert recorded.identity()["name"] == "random" and take_raw_outputs(plain) is None
    for policy in (plain, recorded):
        policy.reset("x", seed=11)
    outputs = [plain.act({}) for _ in range(2)]
    actions = [recorded.act({}) for _ in range(2)]
    raw = take_raw_outputs(recorded)
    assert [decode_output(r).tobytes() for r in raw] == [o.tobytes() for o in outputs]  # before the pipeline
    assert np.allclose(actions[0], outputs[0] * 0.5)  # the pipeline still ran
    assert take_raw_outputs(recorded) == []
    # batched (a policy server's forks): each fork keeps its own outputs
    forks = [RawOutputRecorder(RandomPolicy(horizon=2)) for _ in range(2)]
    for seed, fork in enumerate(forks):
        fork.reset("x", seed=seed)
    batch = RawOutputRecorder.act_batch(forks, [{}, {}])
    assert [decode_output(f.take()[0]).tobytes() for f in forks] == [b.tobytes() for b in batch]


def test_record_settings_are_validated() -> None:
    assert record_settings(None).raw_outputs is False
    assert record_settings({"raw_outputs": True}).raw_outputs is True
    with pytest.raises(UserInputError, match=r"record.raw_outputs='yes' is not valid; allowed: true, false"):
        record_settings({"raw_outputs": "yes"})
    with pytest.raises(UserInputError, match="record.tokens is not a setting; allowed: raw_outputs"):
        record_settings({"tokens": True})


def _line(record, outputs) -> dict:
    return {**record.model_dump(), "outputs": outputs}


def test_reopening_the_sidecar_drops_orphans_duplicates_and_torn_tails(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    a, b = episode_record(init_state=0, action_fingerprint="aa"), episode_record(init_state=1, action_fingerprint="bb")
    log = RawOutputLog(tmp_path, [])
    log.append(a, [encode_output([1])])
    store.append(a)
    log.append(b, [encode_output([2])])  # killed here: b's record was never written
    log.append(a, [encode_output([3])])  # a duplicate (same key and fingerprint)
    with open(tmp_path / RAW_OUTPUTS_FILENAME, "ab") as handle:
        handle.write(b'{"key": "torn')
    with pytest.warns(StoreWarning, match="torn"):
        RawOutputLog(tmp_path, store.records())  # what a resumed run does under the run lock
    lines = [json.loads(x) for x in (tmp_path / RAW_OUTPUTS_FILENAME).read_text().splitlines()]
    assert [(x["key"], x["outputs"][0]["values"]) for x in lines] == [(a.key, [3])]
    (episode,) = load_raw_outputs(tmp_path)
    assert (episode.spec.init_state, episode.outputs) == (0, [encode_output([3])])


# ----- end to end in LIBERO ---------------------------------------------------------------------------------

def sim(test):
    return pytest.mark.sim(pytest.mark.usefixtures("assets_installed")(test))


RUN = ["suite=libero_object", "suite.tasks=[0]", "suite.episodes_per_task=2", "suite.max_steps=12",
       "protocol.render_size=32", "video=none", "runner.workers=0"]
RANGE = ["normalize=range", "normalize.low=-0.8", "normalize.high=0.6"]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _fingerprints(run_dir: Path) -> dict[int, str]:
    records = [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]
    assert all(r["error_kind"] is None for r in records), [r["error_message"] for r in records]
    return {r["init_state"]: r["action_fingerprint"] for r in records}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    out = root / "recorded"
    _cli([*RUN, "policy=random", "policy.horizon=8", *RANGE, "record.raw_outputs=true", f"output_dir={out}"], root)
    return out


@sim
def test_the_sidecar_holds_every_query_of_every_episode(recorded: Path) -> None:
    lines = [json.loads(x) for x in (recorded / RAW_OUTPUTS_FILENAME).read_text().splitlines()]
    records = {r.key: r for r in ResultStore(recorded, readonly=True).records()}
    assert sorted(x["init_state"] for x in lines) == [0, 1] and {x["key"] for x in lines} == set(records)
    for line in lines:
        assert line["action_fingerprint"] == records[line["key"]].action_fingerprint
        assert len(line["outputs"]) == 3  # 12 steps, 5 per query
        chunk = decode_output(line["outputs"][0])
        assert chunk.shape == (8, 7) and np.abs(chunk[:, :6]).max() <= 1.0  # normalized: before the range


@sim
def test_replay_reproduces_the_run_under_its_pipeline_and_differs_under_another(recorded: Path, tmp_path: Path) -> None:
    same, other = tmp_path / "same", tmp_path / "other"
    _cli([*RUN, "policy=replay", f"policy.from_run={recorded}", *RANGE, f"output_dir={same}"], tmp_path)
    _cli([*RUN, "policy=replay", f"policy.from_run={recorded}", "normalize=range", "normalize.low=-0.6",
          "normalize.high=0.8", f"output_dir={other}"], tmp_path)
    original = _fingerprints(recorded)
    assert _fingerprints(same) == original
    changed = _fingerprints(other)
    assert set(changed) == set(original) and all(changed[k] != original[k] for k in original)


@sim
def test_a_run_killed_before_its_record_resumes_without_duplicates(recorded: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(recorded, run)
    episodes = (run / "episodes.jsonl").read_text().splitlines(keepends=True)
    (run / "episodes.jsonl").write_text(episodes[0])  # killed after episode 1's sidecar line, before its record
    _cli([*RUN, "policy=random", "policy.horizon=8", *RANGE, "record.raw_outputs=true", f"output_dir={run}"], tmp_path)
    lines = (run / RAW_OUTPUTS_FILENAME).read_text().splitlines()
    assert len(lines) == 2 and lines == (recorded / RAW_OUTPUTS_FILENAME).read_text().splitlines()
    assert _fingerprints(run) == _fingerprints(recorded)


def test_replay_from_a_run_without_raw_outputs_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="holds no raw_outputs.jsonl; run the evaluation with record.raw_outputs=true"):
        ReplayPolicy(from_run=str(tmp_path))
    with pytest.raises(UserInputError, match="exactly one of"):
        ReplayPolicy(outputs=[[1]], from_run=str(tmp_path))
