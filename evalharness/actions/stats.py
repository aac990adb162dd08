"""Normalization statistics files: openpi's ``norm_stats.json`` and OpenVLA's dataset statistics.

openpi writes ``{"norm_stats": {"state": {...}, "actions": {...}}}`` where each entry holds
``mean``, ``std``, ``q01`` and ``q99`` lists shaped like the vector. OpenVLA checkpoints
carry ``{"<dataset>": {"action": {"q01": ..., "q99": ..., "mask": ...}, "proprio": ...}}``.
One loader reads both: ``key`` is a ``/``-separated path into the file, looked up under
``norm_stats`` when the file has that wrapper (so ``actions`` for openpi,
``libero_spatial_no_noops/action`` for OpenVLA). The file's sha256 is kept so that a
result records exactly which statistics produced it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalharness.actions.files import existing_file, sha256_file
from evalharness.errors import UserInputError, choices_error


@dataclass(frozen=True)
class NormStats:
    """The numeric lists found under one key of a stats file."""

    path: Path
    key: str
    sha256: str
    fields: dict[str, np.ndarray]

    def vectors(self, names: tuple[str, ...], dims: int | None, where: str) -> list[np.ndarray]:
        """The named fields, each cut to its first ``dims`` entries (all when None)."""
        out = []
        for name in names:
            if name not in self.fields:
                found = ", ".join(sorted(self.fields)) or "(no numeric lists)"
                raise UserInputError(f"{where}: stats under {self.key!r} in {str(self.path)!r} have no field "
                                     f"{name!r}; found: {found}; needed: {', '.join(names)}")
            out.append(self.fields[name])
        sizes = {v.size for v in out}
        if len(sizes) != 1:
            shapes = ", ".join(f"{n}: {v.size}" for n, v in zip(names, out))
            raise UserInputError(f"{where}: stats fields under {self.key!r} in {str(self.path)!r} have "
                                 f"different lengths ({shapes})")
        size = sizes.pop()
        if dims is not None:
            if dims > size:
                raise UserInputError(f"{where} dims {dims} is not valid; allowed: at most {size}, the length "
                                     f"of the stats under {self.key!r}")
            out = [v[:dims] for v in out]
        return out


def load_norm_stats(path: str | Path | None, key: str = "actions", *, where: str = "normalize") -> NormStats:
    """Read ``key``'s numeric lists from a stats JSON file (openpi or OpenVLA layout)."""
    file = existing_file(where, "stats_path", path)
    if not isinstance(key, str) or not key:
        raise UserInputError(f"{where} key {key!r} is not valid; allowed: a key such as 'actions'")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserInputError(f"{where} stats_path {str(file)!r} is not valid JSON ({exc})") from None
    node: Any = data.get("norm_stats", data) if isinstance(data, dict) else data
    for part in key.split("/"):
        if not isinstance(node, dict) or part not in node:
            available = sorted(node) if isinstance(node, dict) else "(not a mapping)"
            raise choices_error(f"{where} key part in {str(file)!r}:", part, available)
        node = node[part]
    if not isinstance(node, dict):
        raise UserInputError(f"{where} key {key!r} in {str(file)!r} does not hold a mapping of statistics")
    fields: dict[str, np.ndarray] = {}
    for name, value in node.items():
        if not isinstance(value, list) or not value:
            continue
        arr = np.asarray(value)
        if arr.dtype == bool:
            fields[name] = arr
        elif arr.dtype.kind in "iuf" and arr.ndim == 1:
            arr = arr.astype(np.float64)
            if not np.isfinite(arr).all():
                raise UserInputError(f"{where}: stats field {name!r} under {key!r} in {str(file)!r} "
                                     "contains NaN or infinity")
            fields[name] = arr
    return NormStats(path=file, key=key, sha256=sha256_file(file), fields=fields)
