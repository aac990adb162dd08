"""The retry/backoff model every transport shares, and openpi's old key names still working."""

from __future__ import annotations

import random

import pytest

from evalharness.errors import UserInputError
from evalharness.transports.openpi.policy import OpenpiPolicy, OpenpiSettings
from evalharness.transports.retry import RetrySettings, load_retry_settings
from evalharness.config.conf import load_preset


def test_delay_doubles_up_to_the_cap() -> None:
    r = RetrySettings(max_retries=5, backoff_s=0.5, max_backoff_s=3.0)
    assert [r.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert r.worst_case_wait_s() == pytest.approx(9.5)


def test_jitter_only_shortens_waits() -> None:
    r = RetrySettings(backoff_s=1.0, max_backoff_s=8.0, jitter=0.5)
    rng = random.Random(0)
    waits = [r.delay(3, rng) for _ in range(200)]
    assert all(2.0 <= w <= 4.0 for w in waits) and len(set(waits)) > 100
    assert r.delay(3) == 4.0  # no rng: no jitter


def test_bad_value_is_one_line_naming_the_key() -> None:
    with pytest.raises(UserInputError, match=r"^policy\.retries\.max_retries=-1 is not valid"):
        load_retry_settings({"max_retries": -1})
    with pytest.raises(UserInputError, match=r"^policy\.retries\.max_backof is not a setting; allowed: max_retries"):
        load_retry_settings({"max_backof": 1})


def test_openpi_preset_and_old_names() -> None:
    preset = load_preset("policy", "openpi")
    preset.pop("_target_")
    assert OpenpiSettings(**preset).retries == RetrySettings(max_retries=3, backoff_s=0.5, max_backoff_s=8.0)
    old = OpenpiSettings(**{**preset, "reconnects": 7, "backoff_s": 0.1, "backoff_max_s": 2})
    assert old.retries == RetrySettings(max_retries=7, backoff_s=0.1, max_backoff_s=2.0)
    # the flat old keys without the preset (how tests and older configs pass them)
    assert OpenpiPolicy(reconnects=0).settings.retries.max_retries == 0
    with pytest.raises(UserInputError, match=r"^policy\.retries\.max_retries=-2 is not valid"):
        OpenpiPolicy(reconnects=-2)
    # a fork keeps the settings (dumped in the new shape, validated again)
    assert OpenpiPolicy(reconnects=4).fork().settings.retries.max_retries == 4
