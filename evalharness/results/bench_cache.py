"""The last ``evalharness bench`` figures on this machine, kept for cost estimates (``--dry-run``).

``evalharness bench`` writes its figures here after every run; ``evalharness ... --dry-run``
reads them to estimate a run's wall time. The file lives in the user's cache folder
(``$XDG_CACHE_HOME/evalharness/bench.json``, default ``~/.cache``), or where
``$EVALHARNESS_BENCH_CACHE`` points. It is a cache: losing it loses nothing but the estimate.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["cache_path", "save_figures", "load_figures"]


def cache_path() -> Path:
    explicit = os.environ.get("EVALHARNESS_BENCH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "evalharness" / "bench.json"


def save_figures(figures: dict[str, Any]) -> Path | None:
    """Write the figures with the time they were measured; None when the cache cannot be written."""
    from evalharness.results.atomic import write_json_atomic

    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **figures})
    except OSError:
        return None
    return path


def load_figures() -> dict[str, Any] | None:
    """The cached figures, or None when there are none (or they cannot be read)."""
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
