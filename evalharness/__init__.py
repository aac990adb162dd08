"""evalharness: trustworthy LIBERO evaluation for vision-language-action policies.

From Python: ``evalharness.evaluate(...)``, ``evalharness.Evaluator`` and
``evalharness.weights_digest`` (:mod:`evalharness.api`), imported on first use so that
``import evalharness`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Evaluator", "evaluate", "weights_digest", "CallablePolicy"]

if TYPE_CHECKING:
    from evalharness.api import Evaluator, evaluate, weights_digest
    from evalharness.policies.callable import CallablePolicy


def __getattr__(name: str) -> Any:
    if name in ("Evaluator", "evaluate", "weights_digest"):
        from evalharness import api

        return getattr(api, name)
    if name == "CallablePolicy":
        from evalharness.policies.callable import CallablePolicy

        return CallablePolicy
    raise AttributeError(f"module 'evalharness' has no attribute {name!r}")
