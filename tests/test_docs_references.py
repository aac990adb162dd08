"""The facts the code cites live in the repo (docs/reference/), and every citation resolves.

A user who clones the project has no ``../shared`` folder beside it, so no tracked file
outside tests/ may point there, and every ``docs/reference/<name>.md`` a file cites must
exist. Each reference file must in turn be cited somewhere (a page nobody cites is a page
nobody keeps true) and open with what it is for and which code relies on it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
# Paths into the sibling folder the project was developed beside; users do not have it.
FORBIDDEN = ("shared/reference", "../shared", "shared/DESIGN", "shared/libero-assets")
CITATION = re.compile(r"docs/reference/([A-Za-z0-9_.-]+\.md)")
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    files = [ROOT / name for name in out.decode().split("\0") if name]
    return [path for path in files if path.is_file()]


def _text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="ignore")


def _citations() -> dict[str, list[str]]:
    """Reference file name -> the tracked files (outside docs/reference/) that cite it."""
    cited: dict[str, list[str]] = {}
    for path in _tracked_files():
        if path.is_relative_to(REFERENCE):
            continue
        for name in CITATION.findall(_text(path)):
            cited.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return cited


def test_no_tracked_file_outside_tests_mentions_shared() -> None:
    offenders = []
    for path in _tracked_files():
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "tests":
            continue
        for lineno, line in enumerate(_text(path).splitlines(), 1):
            if any(pattern in line for pattern in FORBIDDEN):
                offenders.append(f"{rel}:{lineno}: {line.strip()}")
    assert not offenders, "cite docs/reference/ instead of ../shared:\n" + "\n".join(offenders)


def test_every_cited_reference_file_exists() -> None:
    cited = _citations()
    assert cited, "no file cites docs/reference/ at all: the citation pattern is broken"
    missing = {name: sources for name, sources in cited.items() if not (REFERENCE / name).is_file()}
    assert not missing, f"cited but absent from docs/reference/: {missing}"


def test_every_reference_file_is_cited_and_says_what_it_is_for() -> None:
    pages = sorted(REFERENCE.glob("*.md"))
    assert pages, "docs/reference/ holds no pages"
    cited = _citations()
    for page in pages:
        assert page.name in cited, f"docs/reference/{page.name} is cited by no file"
        head = page.read_text()[:1500]
        assert "**What this file is for.**" in head, f"{page.name}: no header saying what it is for"
        assert "**Code that relies on it:**" in head, f"{page.name}: no header naming the code that relies on it"


def test_markdown_links_to_and_within_the_reference_resolve() -> None:
    pages = sorted(REFERENCE.glob("*.md")) + sorted((ROOT / "docs").glob("*.md"))
    broken = []
    for page in pages:
        for target in MARKDOWN_LINK.findall(page.read_text()):
            if "://" not in target and not (page.parent / target).is_file():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "broken links: " + ", ".join(broken)
