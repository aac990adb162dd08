"""evalharness: trustworthy LIBERO evaluation for vision-language-action policies.

From Python: ``evalharness.evaluate(...)``, ``evalharness.Evaluator``,
``evalharness.weights_digest`` (:mod:`evalharness.api`) and ``evalharness.CallablePolicy``
(:mod:`evalharness.policies.callable`), imported on first use so that ``import evalharness``
stays cheap. The import is by name (``importlib``), not an ``import`` statement: modules of
every layer import this package for ``__version__``, and must not appear to import the API
above them (the layers contract in ``pyproject.toml``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["Evaluator", "evaluate", "weights_digest", "CallablePolicy"]

_LAZY = {"Evaluator": "evalharness.api", "evaluate": "evalharness.api", "weights_digest": "evalharness.api",
         "CallablePolicy": "evalharness.policies.callable"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evalharness' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
