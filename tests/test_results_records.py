"""EpisodeRecord: strictness and the outcome rule (errors are never successes or failures)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evalharness.results.records import EpisodeRecord
from factories import record_fields


_fields = record_fields


def test_outcomes():
    assert EpisodeRecord(**_fields()).outcome == "success"
    assert EpisodeRecord(**_fields(success=False)).outcome == "failure"
    errored = EpisodeRecord(**_fields(success=False, error_kind="env_error", error_message="boom"))
    assert errored.outcome == "error"


def test_errored_episode_cannot_claim_success():
    with pytest.raises(ValidationError, match="errored"):
        EpisodeRecord(**_fields(success=True, error_kind="policy_error"))


def test_frozen_and_extra_forbidden():
    rec = EpisodeRecord(**_fields())
    with pytest.raises(ValidationError):
        rec.success = False  # type: ignore[misc]
    with pytest.raises(ValidationError):
        EpisodeRecord(**_fields(sucess=True))


@pytest.mark.parametrize(
    "bad",
    [
        {"action_fingerprint": "not-hex"},
        {"steps": -1},
        {"wall_time_s": float("nan")},
        {"attempts": 0},
        {"key": ""},
        {"error_kind": ""},
    ],
)
def test_invalid_values_rejected(bad):
    with pytest.raises(ValidationError):
        EpisodeRecord(**_fields(**bad))


def test_json_line_roundtrip_is_one_line():
    rec = EpisodeRecord(**_fields(events=["fallback\nused", "ü"], error_message=None, attempts=2))
    line = rec.to_json_line()
    assert "\n" not in line
    assert EpisodeRecord.from_json_line(line) == rec
    assert EpisodeRecord.from_json_line(line.encode()).attempts == 2
