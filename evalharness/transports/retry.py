"""The retry and backoff settings every remote transport shares (``policy.retries``).

Each transport retries a transient failure (a refused or dropped connection, a 5xx, a
timeout where that is safe) a bounded number of times, waiting longer after each
failure. Before this model the transports said the same thing in two vocabularies
(``max_backoff_s`` for MinT, ``backoff_max_s`` for openpi); now one model names it,
``policy.retries: {max_retries, backoff_s, max_backoff_s, jitter}``, and each transport's
module docstring says only *what* it retries.

The wait before retry ``n`` (1-based) is ``min(max_backoff_s, backoff_s * 2**(n-1))``,
multiplied by a random factor in ``[1 - jitter, 1]`` when ``jitter > 0`` (spreads the
reconnects of many workers after a server restart). Jitter changes only how long a
client waits, never what an episode does.

Old names stay accepted where a transport used them: :func:`accept_old_names` maps a
transport's legacy flat keys (openpi's ``reconnects`` / ``backoff_s`` / ``backoff_max_s``)
into ``retries`` before validation, so existing configs and command lines keep working.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from evalharness.config.validation import validate_settings

__all__ = ["RetrySettings", "accept_old_names", "load_retry_settings"]

NonNegative = Annotated[float, Field(strict=False, ge=0, le=600)]


class RetrySettings(BaseModel):
    """Bounded exponential backoff for a transport's transient failures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_retries: Annotated[int, Field(strict=True, ge=0, le=100)] = Field(
        3, description="retries after the first failure; then the episode ends as policy_unavailable")
    backoff_s: NonNegative = Field(0.5, description="wait before the first retry; doubles after each failure")
    max_backoff_s: NonNegative = Field(8.0, description="the longest wait between two attempts")
    jitter: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.0, description="each wait is multiplied by a random factor in [1 - jitter, 1]")

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``failures`` (1 for the first retry)."""
        base = min(self.max_backoff_s, self.backoff_s * 2 ** max(0, failures - 1))
        if self.jitter and rng is not None:
            base *= rng.uniform(1.0 - self.jitter, 1.0)
        return base

    def worst_case_wait_s(self) -> float:
        """The sum of every backoff when all retries are spent (for docs and bounds)."""
        return sum(self.delay(n) for n in range(1, self.max_retries + 1))

    def sleep(self, failures: int, rng: random.Random | None = None,
              sleep: Callable[[float], None] = time.sleep) -> None:
        """Wait :meth:`delay` seconds."""
        sleep(self.delay(failures, rng))


def accept_old_names(values: Any, old_names: Mapping[str, str]) -> Any:
    """``values`` with legacy flat keys moved into ``values["retries"]``.

    ``old_names`` maps a legacy key (``"reconnects"``) to its field of
    :class:`RetrySettings` (``"max_retries"``). A legacy key set to ``None`` (how a
    preset lists it for the command line) is dropped. A value given both ways takes the
    legacy key's: that is what a user typed on an old command line, over a preset's
    ``retries``.
    """
    if not isinstance(values, Mapping):
        return values
    out = dict(values)
    moved: dict[str, Any] = {}
    for old, new in old_names.items():
        if old in out:
            value = out.pop(old)
            if value is not None:
                moved[new] = value
    if moved:
        retries = out.get("retries")
        merged = dict(retries) if isinstance(retries, Mapping) else {}
        merged.update(moved)
        out["retries"] = merged
    return out


def load_retry_settings(values: Any, prefix: str = "policy.retries") -> RetrySettings:
    """:class:`RetrySettings` from a config mapping, a bad value as one line naming ``prefix.key``."""
    if isinstance(values, RetrySettings):
        return values
    return validate_settings(RetrySettings, values, prefix)
