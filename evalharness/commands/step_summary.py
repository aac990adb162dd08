"""The GitHub Actions job summary: gate commands append their Markdown to ``$GITHUB_STEP_SUMMARY``.

Shared by ``gate`` and ``gate --sequential`` (its own module, so neither command imports the other).
"""

from __future__ import annotations

import os

from evalharness.errors import UserInputError


def append_step_summary(text: str) -> None:
    """Append ``text`` to the file ``$GITHUB_STEP_SUMMARY`` names; nothing when it is not set."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except OSError as exc:
        raise UserInputError(f"cannot append to $GITHUB_STEP_SUMMARY={path}: {exc.strerror}") from None
