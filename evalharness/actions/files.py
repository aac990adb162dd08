"""Files a part reads (statistics, tokenizers): present, and traced by their sha256.

A result records the sha256 of every file that shaped its actions, so it can be traced to
the exact statistics or tokenizer; a missing file stops the run before the first episode.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from evalharness.errors import UserInputError

__all__ = ["existing_file", "sha256_file"]


def existing_file(section: str, key: str, value: Any) -> Path:
    """``value`` as the path of an existing file, else a one-line error naming ``section key``."""
    if value is None or value == "":
        raise UserInputError(f"{section} {key} is required; set it to the path of the file")
    if not isinstance(value, (str, Path)):
        raise UserInputError(f"{section} {key} {value!r} is not valid; allowed: a file path")
    path = Path(value).expanduser()
    if not path.is_file():
        raise UserInputError(f"{section} {key} {str(path)!r} is not an existing file")
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, recorded so a result can be traced to the exact stats/tokenizer."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
