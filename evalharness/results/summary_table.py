"""Render a summary document (``build_summary(...).to_document()``, as in summary.json) as tables.

Each rendering shows a rate only next to its count and its 95% Wilson interval, and
errors in their own column, so a table cut out of its context still cannot be read as
more certain than it is. The Markdown version also states, above the table, when the run
is incomplete and when episodes errored, since that is the form people paste into
reports. Renderers read the summary dict only (not records), so a table can be
regenerated from an old ``summary.json``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

__all__ = ["render_markdown", "render_latex", "render_csv"]

_HEADER = ("task", "successes/episodes", "rate %", "95% CI", "errors")
_DASH = "—"


def _pct(value: float | None) -> str:
    return _DASH if value is None else f"{100.0 * value:.1f}"


def _ci(block: Mapping[str, Any]) -> str:
    if not block["episodes"]:
        return _DASH
    return f"[{_pct(block['ci_low'])}, {_pct(block['ci_high'])}]"


def _cells(label: str, block: Mapping[str, Any]) -> list[str]:
    return [
        label,
        f"{block['successes']}/{block['episodes']}",
        _pct(block["rate"]),
        _ci(block),
        str(block["errors"]),
    ]


def _task_label(task: Mapping[str, Any]) -> str:
    return f"{task['task_index']}: {task['task_name']}"


def _rows(summary: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(kind, cells) for each row: "task", "suite" (total of a suite) or "total"."""
    rows: list[tuple[str, list[str]]] = []
    for suite, block in summary["suites"].items():
        for task in summary["tasks"]:
            if task["suite"] == suite:
                rows.append(("task", _cells(_task_label(task), task)))
        rows.append(("suite", _cells(f"{suite} total ({_plural(block['num_tasks'], 'task')})", block)))
    if len(summary["suites"]) > 1:
        rows.append(("total", _cells("all suites (pooled)", summary["totals"])))
    return rows


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _error_kinds(block: Mapping[str, Any]) -> str:
    return ", ".join(f"{kind}: {n}" for kind, n in block["errors_by_kind"].items())


# -- Markdown ------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: Mapping[str, Any]) -> str:
    """A Markdown table: one row per task, a total row per suite, notes on completeness."""
    lines: list[str] = []
    totals = summary["totals"]
    if not summary["complete"]:
        reasons = "; ".join(summary.get("incomplete_reasons") or ["see summary.json"])
        lines.append(f"> **Incomplete run:** {reasons}. These numbers may change when it is finished.")
    if totals["errors"]:
        lines.append(
            f"> **{totals['errors']} episode(s) errored** ({_error_kinds(totals)}). Errored "
            "episodes could not run to a verdict: they are excluded from the rates and are "
            "not counted as failures."
        )
    if lines:
        lines.append("")

    lines.append("| " + " | ".join(_HEADER) + " |")
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for kind, cells in _rows(summary):
        cells = [_md_escape(c) for c in cells]
        if kind != "task":
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")

    lines.append("")
    for suite, block in summary["suites"].items():
        if block["task_rate_min"] is not None:
            rated = sum(1 for t in summary["tasks"] if t["suite"] == suite and t["rate"] is not None)
            over = _plural(rated, "task")
            if rated != block["num_tasks"]:
                over += f" of {block['num_tasks']} (the others have no verdict yet)"
            lines.append(
                f"- {_md_escape(suite)}: pooled rate {_pct(block['rate'])}% "
                f"({block['successes']}/{block['episodes']}); task rates range "
                f"{_pct(block['task_rate_min'])}–{_pct(block['task_rate_max'])}% over {over}."
            )
    if len(summary["suites"]) > 1 and totals.get("mean_suite_rate") is not None:
        lines.append(f"- Mean of suite rates: {_pct(totals['mean_suite_rate'])}%.")
    confidence = summary.get("confidence", 0.95)
    lines.append(
        f"- Intervals: {100 * confidence:g}% Wilson score; rate = successes / episodes with a "
        "verdict."
    )
    return "\n".join(lines) + "\n"


# -- LaTeX ---------------------------------------------------------------------------------

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _tex_escape(text: str) -> str:
    text = text.replace("\n", " ")
    if text == _DASH:
        return "---"
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def render_latex(summary: Mapping[str, Any]) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``); incompleteness as a comment."""
    out: list[str] = []
    if not summary["complete"]:
        reasons = "; ".join(summary.get("incomplete_reasons") or [])
        out.append(f"% INCOMPLETE RUN: {reasons}")
    out.append(r"\begin{tabular}{lrrrr}")
    out.append(r"\toprule")
    out.append(r"Task & Successes/Episodes & Rate (\%) & 95\% CI & Errors \\")
    out.append(r"\midrule")
    for kind, cells in _rows(summary):
        cells = [_tex_escape(c) for c in cells]
        if kind != "task":
            out.append(r"\midrule")
            cells = [rf"\textbf{{{c}}}" for c in cells]
        out.append(" & ".join(cells) + r" \\")
    out.append(r"\bottomrule")
    out.append(r"\end{tabular}")
    return "\n".join(out) + "\n"


# -- CSV -----------------------------------------------------------------------------------

_CSV_COLUMNS = (
    "level",
    "suite",
    "task_index",
    "task_name",
    "successes",
    "failures",
    "episodes",
    "errors",
    "errors_by_kind",
    "rate",
    "ci_low",
    "ci_high",
    "mean_steps",
)


def _csv_row(level: str, suite: str, task_index: Any, task_name: str, block: Mapping[str, Any]) -> list[Any]:
    def num(v: Any) -> Any:
        return "" if v is None else v

    return [
        level,
        suite,
        num(task_index),
        task_name,
        block["successes"],
        block["failures"],
        block["episodes"],
        block["errors"],
        ";".join(f"{k}:{n}" for k, n in block["errors_by_kind"].items()),
        num(block["rate"]),
        num(block["ci_low"]),
        num(block["ci_high"]),
        num(block["mean_steps"]),
    ]


def render_csv(summary: Mapping[str, Any]) -> str:
    """Machine-readable rows (level = task | suite | total); rates as fractions, null -> empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for task in summary["tasks"]:
        writer.writerow(_csv_row("task", task["suite"], task["task_index"], task["task_name"], task))
    for suite, block in summary["suites"].items():
        writer.writerow(_csv_row("suite", suite, None, "", block))
    writer.writerow(_csv_row("total", "", None, "", summary["totals"]))
    return buf.getvalue()
