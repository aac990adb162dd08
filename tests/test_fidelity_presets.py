"""The pieces issue 25 added that need no openpi: decoder=pi0_fast's derivation and one-line errors,
state_out_of_range=openpi on non-finite values, and the refusal of a run folder of the old schema."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fidelity_fixtures as ff
from evalharness.actions.decoders import build_decoder
from evalharness.actions.state_tokens import discretize_state
from evalharness.errors import UserInputError
from evalharness.results.schema import SCHEMA_VERSION, refuse_older_run_dir


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    root = tmp_path_factory.mktemp("pi0_fast")
    return ff.paligemma_like_sentencepiece(root), ff.fitted_fast_tokenizer(root, vocab_size=300)


def test_pi0_fast_derives_the_markers_from_the_paligemma_tokenizer(tokenizers):
    import sentencepiece

    sp_path, fast = tokenizers
    sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_path))
    decoder = build_decoder({"name": "pi0_fast", "tokenizer_path": fast["tokenizer_path"],
                             "paligemma_tokenizer": str(sp_path), "min_token": fast["min_token"]})
    described = decoder.describe()
    assert described["action_prefix_ids"] == sp.encode("Action: ")
    assert described["action_end_ids"] == sp.encode("|")
    assert described["eos_id"] == sp.eos_id() == 1
    assert described["vocab_size"] == sp.vocab_size()
    assert described["malformed_output"] == "openpi"
    chunk = ff.smooth_chunks(1, seed=3)[0]
    row = [*sp.encode("Action: "), *decoder.encode(chunk).tolist(), *sp.encode("|"), 1, 0, 0]
    events: list[str] = []
    assert np.abs(decoder.decode(np.asarray(row), events) - chunk).max() < 0.1  # FAST rounds at scale 10
    assert events == []


@pytest.mark.parametrize("bad, message", [
    (None, r"^decoder 'pi0_fast' paligemma_tokenizer is required"),
    ("missing.model", r"^decoder 'pi0_fast' paligemma_tokenizer '.*missing.model' is not an existing file$"),
    ("not_a_model", r"^decoder 'pi0_fast' paligemma_tokenizer '.*' is not a SentencePiece model \("),
])
def test_pi0_fast_refuses_underivable_markers_in_one_line(tokenizers, tmp_path, bad, message):
    _, fast = tokenizers
    if bad == "not_a_model":
        bad = str(tmp_path / "tokenizer.json")
        (tmp_path / "tokenizer.json").write_text("{}")
    elif bad is not None:
        bad = str(tmp_path / bad)
    with pytest.raises(UserInputError, match=message) as info:
        build_decoder({"name": "pi0_fast", "tokenizer_path": fast["tokenizer_path"], "paligemma_tokenizer": bad})
    assert "\n" not in str(info.value)


def test_pi0_fast_on_error_choices(tokenizers):
    sp_path, fast = tokenizers
    with pytest.raises(UserInputError, match="on_error='maybe' is not valid; allowed: error, zeros, openpi"):
        build_decoder({"name": "pi0_fast", "tokenizer_path": fast["tokenizer_path"],
                       "paligemma_tokenizer": str(sp_path), "on_error": "maybe"})


def test_openpi_bins_non_finite_values_as_openpi_and_says_so():
    tokens = discretize_state([np.nan, np.inf, -np.inf, -1.2, 0.5], out_of_range="openpi")
    # np.digitize(x, linspace(-1, 1, 257)[:-1]) - 1, as openpi's FASTTokenizer.tokenize
    expected = np.digitize([np.nan, np.inf, -np.inf, -1.2, 0.5], np.linspace(-1, 1, 257)[:-1]) - 1
    assert tokens.bins == tuple(int(b) for b in expected) == (255, 255, -1, -1, 192)
    assert any("not finite" in e for e in tokens.events) and any("outside [-1, 1]" in e for e in tokens.events)


def test_a_run_folder_of_the_old_schema_is_refused_in_one_line(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(UserInputError, match=r"holds a run of results schema_version 1; this evalharness writes "
                                             rf"{SCHEMA_VERSION} \(issue 25: policy=mint's prompt") as info:
        refuse_older_run_dir(tmp_path)
    assert "\n" not in str(info.value)
    (tmp_path / "summary.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION}))
    refuse_older_run_dir(tmp_path)  # the current version resumes


def test_decode_events_are_counted_per_episode_and_in_the_summary(tokenizers):
    """A policy emitting malformed pi0-FAST rows: each becomes openpi's zero chunk, an event, and a count."""
    import sentencepiece

    from evalharness.policies.base import Policy
    from evalharness.policies.pipelined import PipelinedPolicy
    from evalharness.results.summary import build_summary
    from factories import episode_record, run_metadata

    sp_path, fast = tokenizers
    sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_path))

    class Malformed(Policy):
        name = "malformed"

        def act(self, observation):
            return np.asarray([*sp.encode("|"), 1])  # no "Action: " at all

    decoder = {"name": "pi0_fast", "tokenizer_path": fast["tokenizer_path"], "paligemma_tokenizer": str(sp_path),
               "min_token": fast["min_token"]}
    policy = PipelinedPolicy(Malformed(), {"decoder": decoder, "normalize": {"name": "none"},
                                           "convert": {"name": "none"}})
    policy.reset("x", seed=0)
    for _ in range(3):
        assert not policy.act({"state": np.zeros(8)}).any()
    assert sum(e.startswith("decode_event: ") for e in policy.drain_events()) == 3
    stats = policy.episode_stats()
    assert stats["decode_events"] == 3
    records = [episode_record(key="a" * 16, policy_stats=stats),
               episode_record(key="b" * 16, init_state=1, policy_stats={"prompt_truncations": 2}),
               episode_record(key="c" * 16, init_state=2)]
    totals = build_summary(records, run_metadata()).to_document()["totals"]
    assert totals["fidelity_events"] == {"decode_events": 3, "episodes_with_decode_events": 1,
                                         "prompt_truncations": 2, "episodes_with_prompt_truncations": 1}
    assert "fidelity_events" not in build_summary(records[2:], run_metadata()).to_document()["totals"]


def test_cli_decoder_pi0_fast_without_the_paligemma_tokenizer_is_one_line(tokenizers, tmp_path, assets_installed):
    """Through the real command: exit 2, one line naming the value and what is allowed, nothing run."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    _, fast = tokenizers
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "evalharness", "suite=smoke", "policy=zero", "video=none", "runner.workers=0",
         "decoder=pi0_fast", f"decoder.tokenizer_path={fast['tokenizer_path']}", f"output_dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["evalharness: error: decoder 'pi0_fast' paligemma_tokenizer is required; set it to the path "
                     "of the file"], done.stderr[-2000:]
    assert not (tmp_path / "run" / "episodes.jsonl").exists()
