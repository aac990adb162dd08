"""The ``serve`` config group: how ``evalharness serve`` runs (validated in one model).

Only the serving mechanics live here; *what* is served is the run's own ``policy`` and
``decoder`` groups, so ``evalharness serve policy=checkpoint policy.path=DIR`` serves
exactly what ``evalharness policy=checkpoint policy.path=DIR`` evaluates in-process.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evalharness.errors import UserInputError
from evalharness.config.validation import validate_settings

#: The line `evalharness serve` prints on stdout once it accepts requests (then its URL);
#: runner.policy_server=auto waits for it.
READY = "evalharness serve: listening on "


class ServeSettings(BaseModel):
    """Every setting of ``evalharness serve`` (the ``serve:`` block of ``conf/config.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535, description="0 = a free port (printed when ready)")
    max_batch: int = Field(8, ge=1, description="act requests of different sessions per forward pass; 1 = unbatched")
    max_wait_ms: float = Field(5.0, ge=0, description="how long a batch waits for more requests after its first")
    long_poll_s: float = Field(2.0, ge=0, description="retrieve_future waits this long for a result before 408")
    retry_after_s: int = Field(1, ge=1, le=30, description="Retry-After of a 408 (MinT: an integer 1-30)")
    tokenizer: str | None = Field(None, description="SentencePiece model that reads the prompt (null: utf8-bytes)")
    state_space: Literal["raw", "normalized"] = "raw"
    stats_path: str | None = Field(None, description="norm_stats.json to unnormalize a normalized state")
    auth: Literal["none", "env"] = Field("none", description="env: require X-API-Key = MINT_API_KEY / TINKER_API_KEY")
    max_body_mb: float = Field(4.0, gt=0, le=1024, description="largest request body (413 above; checked before parsing)")
    max_sessions: int = Field(64, ge=1, le=100_000, description="open sessions at most (429 + Retry-After when full)")
    session_ttl_s: float = Field(600.0, gt=0, description="an idle session expires after this long (404 afterwards)")

    def identity(self) -> dict[str, Any]:
        """The settings that can change an answer or whether an episode can finish: batching
        may move float results in the last bits; the session bounds decide whether a run's
        sessions fit and live long enough."""
        return {"max_batch": self.max_batch, "state_space": self.state_space, "max_sessions": self.max_sessions,
                "session_ttl_s": self.session_ttl_s}

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


def load_serve_settings(config: dict[str, Any] | None) -> ServeSettings:
    """Validate the ``serve`` group; one line naming the bad value."""
    settings = validate_settings(ServeSettings, config, "serve")
    if settings.state_space == "normalized" and not settings.stats_path:
        raise UserInputError("serve.stats_path is required with serve.state_space=normalized (the norm_stats.json "
                             "whose 'state' entry the clients normalized with)")
    return settings
