"""Secrets out of what is recorded: the resolved config and every policy identity.

A run writes its config to ``run.json`` and ``summary.json`` and its policy identity into
every episode key; a key like ``api_key`` or a credential-looking ``token`` must never reach
them. :func:`redact` replaces those values (at any depth) with ``<redacted>``;
:func:`recordable` makes the config strict-JSON (Hydra parses ``nan`` as a float).
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["REDACTED", "redact", "recordable"]

# Keys whose value is a secret whatever its type (a YAML ``password: 123456`` is an int).
SECRET_KEY = re.compile(r"api_?key|secret|passw(or)?d|credential", re.IGNORECASE)
# ``token`` / ``hf_token`` / ``access_tokens`` hold credentials when they are text; numbers
# under such names are action-token settings (``min_token``, ``skip_tokens``) to keep.
TOKEN_KEY = re.compile(r"(^|[_-])tokens?$", re.IGNORECASE)
REDACTED = "<redacted>"

def _is_number(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_number(v) for v in value)
    return isinstance(value, (bool, int, float))


def _is_secret(key: Any, value: Any) -> bool:
    if value is None or value == "":
        return False
    name = str(key)
    return bool(SECRET_KEY.search(name)) or (bool(TOKEN_KEY.search(name)) and not _is_number(value))


def redact(obj: Any) -> Any:
    """A copy of a config with secret-looking values (also lists / dicts of them) replaced."""
    if isinstance(obj, dict):
        return {k: (REDACTED if _is_secret(k, v) else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def recordable(obj: Any) -> Any:
    """The config as strict JSON can hold it: non-finite floats (``policy.mode=nan`` is a
    float NaN in Hydra's override grammar) are recorded as the words the user typed."""
    if isinstance(obj, dict):
        return {k: recordable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [recordable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj
