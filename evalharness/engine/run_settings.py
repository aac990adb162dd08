"""The run's own settings: the top-level keys of ``conf/config.yaml`` that are no group's.

``camera_size``, ``fast_physics``, ``retry_errors`` (what a resume reruns) and
``policy_server`` (one ``evalharness serve`` for the run) are validated here, once, by one
pydantic model. ``retry_errors`` and ``policy_server`` used to sit in the ``runner`` group,
which never received them; ``runner.retry_errors=...`` and ``runner.policy_server=...``
still work: a value given there is validated under its old name and forwarded here (giving
both with different values is refused, so no command line is read two ways).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainValidator

from evalharness.config.fields import Bool
from evalharness.config.validation import validate_settings
from evalharness.errors import UserInputError

__all__ = ["RunSettings", "load_run_settings"]

FORWARDED = ("retry_errors", "policy_server")


def _camera_size(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 8 <= value <= 2048:
        raise ValueError("allowed: null or an integer in 8..2048")
    return value


class RunSettings(BaseModel):
    """Top-level settings of a run (defaults: ``conf/config.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera_size: Annotated[int | None, PlainValidator(_camera_size)] = None  # null: the protocol's render_size
    fast_physics: Bool = True
    retry_errors: Bool = False
    policy_server: Annotated[Literal["none", "auto"],
                             BeforeValidator(lambda v: "none" if v in (None, False) else v)] = "none"


def _spelled(value: Any) -> str:
    """A value as the command line spells it (true, none, auto)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_run_settings(config: dict[str, Any]) -> RunSettings:
    """The run's settings from a resolved config, with ``runner.<key>`` forwarded to ``<key>``."""
    values = {key: config[key] for key in RunSettings.model_fields if key in config}
    runner = config.get("runner") or {}
    for key in FORWARDED:
        if runner.get(key) is None:
            continue
        old = getattr(validate_settings(RunSettings, {key: runner[key]}, "runner"), key)
        if key in values:
            new = getattr(validate_settings(RunSettings, {key: values[key]}, ""), key)
            if new != RunSettings.model_fields[key].default and new != old:
                raise UserInputError(f"runner.{key}={_spelled(runner[key])} and {key}={_spelled(values[key])} "
                                     f"disagree; set only {key} (runner.{key} is its old name)")
        values[key] = old
    return validate_settings(RunSettings, values, "")
