"""Validating one config group's settings with its pydantic model, as one clear line.

Each config group (or policy) that takes settings describes them with a pydantic model
(``extra="forbid"``); :func:`validate_settings` turns the model's first complaint into a
:class:`~evalharness.errors.UserInputError` naming the key, the value and what is allowed,
instead of pydantic's multi-line report. A ``Literal`` field's message lists its choices; a
field validator raises ``ValueError("allowed: ...")`` to say what is allowed in its words.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from evalharness.errors import UserInputError

__all__ = ["validate_settings"]

Model = TypeVar("Model", bound=BaseModel)


def validate_settings(model: type[Model], values: Any, prefix: str, *, source: str | None = None,
                      error: type[Exception] = UserInputError) -> Model:
    """``model`` built from ``values``; a bad key or value raises one line starting ``prefix.key``.

    ``prefix`` is where the settings sit in the config (``decoder``, ``runner``); ``""`` for
    top-level keys (``camera_size``) and whole files. ``source`` leads the line when the
    values come from a file or a peer (``".../policy.yaml is not valid"``); ``error`` is the
    exception raised (a :class:`~evalharness.errors.UserInputError` unless the values are
    not the user's, e.g. a server's answer).
    """
    try:
        return model.model_validate(values if values is not None else {})
    except ValidationError as exc:
        line = _one_line(model, exc.errors()[0], prefix)
        raise error(f"{source}: {line}" if source else line) from None


def _one_line(model: type[BaseModel], first: Any, prefix: str) -> str:
    key = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "") or "(top level)"
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(_model_at(model, first["loc"][:-1]).model_fields)
        return f"{key} is not a setting; allowed: {allowed}"
    if first["type"] == "missing":
        return f"{key} is required but not given"
    given = first.get("input")
    value = f"{key} is not valid" if isinstance(given, dict) else f"{key}={given!r} is not valid"
    if first["type"].startswith("bool"):
        return f"{value}; allowed: true, false"
    if first["type"] == "literal_error":  # expected: "'a', 'b' or 'c'"
        allowed = str(first["ctx"]["expected"]).replace("'", "").replace(" or ", ", ")
        return f"{value}; allowed: {allowed}"
    if first["type"] == "value_error":  # a validator's own words ("allowed: ...")
        return f"{value}; {first['ctx']['error']}"
    return f"{value}: {first['msg'][0].lower()}{first['msg'][1:]}"


def _model_at(model: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel]:
    """The (nested) settings model at ``path`` (e.g. ``("timeouts",)``), so an unknown key lists its siblings."""
    for part in path:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return model
