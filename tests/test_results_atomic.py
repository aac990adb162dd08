"""Atomic writes: complete content, no temp files left, old file kept on failure."""

from __future__ import annotations

import json
import math
import os

import pytest

from evalharness.results.atomic import write_json_atomic, write_text_atomic


def test_write_text_and_replace(tmp_path):
    path = tmp_path / "sub" / "table.md"
    assert write_text_atomic(path, "one\n") == path
    write_text_atomic(path, "two\n")
    assert path.read_text() == "two\n"
    assert sorted(os.listdir(path.parent)) == ["table.md"]  # no temp files left


def test_write_json(tmp_path):
    path = write_json_atomic(tmp_path / "summary.json", {"rate": None, "name": "ü"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"rate": None, "name": "ü"}
    assert path.read_text(encoding="utf-8").endswith("\n")


def test_unserializable_leaves_old_file(tmp_path):
    path = tmp_path / "summary.json"
    write_json_atomic(path, {"ok": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"rate": math.nan})  # strict JSON: NaN is not allowed
    with pytest.raises(TypeError):
        write_json_atomic(path, {"x": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert os.listdir(tmp_path) == ["summary.json"]


def test_keeps_existing_permissions(tmp_path):
    path = tmp_path / "f.txt"
    write_text_atomic(path, "a")
    assert path.stat().st_mode & 0o777 == 0o644
    os.chmod(path, 0o600)
    write_text_atomic(path, "b")
    assert path.stat().st_mode & 0o777 == 0o600
