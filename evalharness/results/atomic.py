"""Crash-safe whole-file writes.

Summaries, tables and metadata are rewritten many times during a run. If the process is
killed half-way through a plain ``open(path, "w").write(...)``, the file is left empty or
truncated and the previous good version is gone. Writing to a temporary file in the same
directory, fsyncing it and then ``os.replace``-ing it over the destination means a reader
(or a crash) only ever sees the old complete file or the new complete file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["write_bytes_atomic", "write_text_atomic", "write_json_atomic", "fsync_dir"]

_DEFAULT_MODE = 0o644


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory entry change (create/rename) to disk; best effort off POSIX."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the data file is synced
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Atomically replace ``path`` with ``data``; creates parent directories. Returns the path."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = dest.stat().st_mode & 0o777  # keep the permissions of the file we replace
    except FileNotFoundError:
        mode = _DEFAULT_MODE
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, dest)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(dest.parent)
    return dest


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Atomically replace ``path`` with ``text``."""
    return write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2) -> Path:
    """Atomically replace ``path`` with ``obj`` as strict JSON (NaN/inf rejected), newline-terminated.

    The object is serialized before anything touches the disk, so an unserializable
    object leaves the existing file untouched.
    """
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
    return write_text_atomic(path, text)
