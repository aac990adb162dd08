"""Paper-style tables across runs: one row per run, one column per LIBERO suite.

The layout follows the published LIBERO tables (docs/reference/protocols.md): Spatial /
Object / Goal / Long / 90 / Average, restricted to the suites present. What the published
tables leave out, these keep (docs/reference/statistics.md): each rate carries its 95%
Wilson interval (or its k/n), "best" is only claimed where the intervals say so, and every
way a run departs from the standard (fewer than 50 episodes per task, modified assets,
another MuJoCo, errors, a run still going) is a footnote on its row, so a pasted table
cannot overstate itself.

:func:`build_table` computes a :class:`Table` (cells, marks, footnotes) once; the three
renderers only format it, so Markdown, LaTeX and CSV always say the same thing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from evalharness.errors import UserInputError
from evalharness.results.aggregate import IQM_BOOTSTRAP_REPS, IQM_BOOTSTRAP_SEED, iqm_with_interval
from evalharness.results.context import conditions_key, describe_conditions, run_notes, version_notes
from evalharness.results.runs import LoadedRun
from evalharness.results.stats import wilson_interval
from evalharness.results.summary_table import _md_escape, _tex_escape

__all__ = ["CELL_MODES", "MARK_MODES", "FORMATS", "SUITE_COLUMNS", "Cell", "Table", "build_table", "render"]

SUITE_COLUMNS = {
    "libero_spatial": "Spatial",
    "libero_object": "Object",
    "libero_goal": "Goal",
    "libero_10": "Long",
    "libero_90": "90",
}
CELL_MODES = ("rate", "count")
MARK_MODES = ("overlap", "best", "none")
FORMATS = ("md", "latex", "csv")
_DASH = "—"


@dataclass
class Cell:
    """One number of the table: a rate with its interval and, where meaningful, k/n."""

    rate: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    successes: int | None = None
    episodes: int | None = None
    marked: bool = False

    @classmethod
    def from_counts(cls, k: int, n: int, rate: float | None, low: float, high: float) -> "Cell":
        return cls(rate, low if n else None, high if n else None, k, n)


@dataclass
class Row:
    label: str
    notes: list[str] = field(default_factory=list)  # footnote markers
    cells: list[Cell | None] = field(default_factory=list)  # None: not measured


@dataclass
class Table:
    title: str  # header of the label column
    columns: list[str]
    column_notes: list[list[str]]
    rows: list[Row]
    footnotes: list[tuple[str, str]]  # (marker, text)
    preamble: list[str]  # statements above the footnotes (protocol, intervals, marks)
    cells: str


class _Notes:
    """Footnote texts -> letters, the same text always the same letter."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}

    def mark(self, text: str) -> str:
        if text not in self.items:
            n = len(self.items)
            self.items[text] = chr(ord("a") + n) if n < 26 else f"n{n}"
        return self.items[text]

    def listing(self) -> list[tuple[str, str]]:
        return [(m, t) for t, m in self.items.items()]


def _suite_order(runs: Sequence[LoadedRun]) -> list[str]:
    present = {s for r in runs for s in r.summary.suites}
    known = [s for s in SUITE_COLUMNS if s in present]
    return known + sorted(present - set(known))


def _check_protocols(runs: Sequence[LoadedRun], force: bool) -> bool:
    """True when the runs are under different conditions (allowed only with ``force``)."""
    keys = {conditions_key(r.summary) for r in runs}
    if len(keys) <= 1:
        return False
    if not force:
        shown = "; ".join(f"{r.source}: {describe_conditions(r.summary)}" for r in runs)
        raise UserInputError(
            f"runs were made under different protocols and are not comparable ({shown}); "
            "pass --force to tabulate them anyway (each row is then marked with its protocol)"
        )
    return True


def _average(cells: list[Cell | None]) -> Cell | None:
    """Mean of the suite rates (what papers print); its interval pools the episodes, which
    is the same estimate when every suite has the same n, and is left out otherwise."""
    if any(c is None or c.rate is None for c in cells) or not cells:
        return None
    rates = [c.rate for c in cells if c is not None and c.rate is not None]
    k = sum(c.successes or 0 for c in cells if c is not None)
    n = sum(c.episodes or 0 for c in cells if c is not None)
    mean = sum(rates) / len(rates)
    if len({c.episodes for c in cells if c is not None}) == 1:
        low, high = wilson_interval(k, n)
        return Cell(mean, low, high, k, n)
    return Cell(mean, None, None, k, n)


def _iqm_cell(run: LoadedRun, suite: str) -> Cell | None:
    tasks = [t for t in run.summary.tasks if t.suite == suite and t.episodes]
    if not tasks:
        return None
    est = iqm_with_interval([t.successes for t in tasks], [t.episodes for t in tasks])
    return Cell(est.value, est.ci_low, est.ci_high)


def _apply_marks(cells: list[Cell | None], mode: str) -> None:
    """Mark the best cell of a column (see the module docstring for ``overlap``)."""
    rated = [c for c in cells if c is not None and c.rate is not None]
    if mode == "none" or len(rated) < 2:
        return
    best = max(c.rate for c in rated)  # type: ignore[type-var]
    top = [c for c in rated if c.rate == best]
    if mode == "best":
        for c in top:
            c.marked = True
        return
    if len(top) != 1 or top[0].ci_low is None:
        return
    winner = top[0]
    others = [c for c in rated if c is not winner]
    if all(c.ci_high is not None and c.ci_high < winner.ci_low for c in others):  # type: ignore[operator]
        winner.marked = True


def build_table(
    runs: Sequence[LoadedRun], *, cells: str = "rate", mark: str = "overlap", per_task: bool = False,
    force: bool = False,
) -> Table:
    """The table for ``runs`` (labels already set, see :func:`evalharness.results.runs.load_runs`)."""
    if cells not in CELL_MODES:
        raise UserInputError(f"--cells {cells!r} is not valid; allowed: {', '.join(CELL_MODES)}")
    if mark not in MARK_MODES:
        raise UserInputError(f"--mark {mark!r} is not valid; allowed: {', '.join(MARK_MODES)}")
    mixed = _check_protocols(runs, force)
    notes = _Notes()
    run_markers: list[list[str]] = []
    for run, versions in zip(runs, version_notes([r.summary for r in runs])):
        texts = run_notes(run.summary, run.partial) + versions
        if mixed:
            texts.insert(0, f"protocol: {describe_conditions(run.summary)}")
        run_markers.append([notes.mark(t) for t in texts])

    suites = _suite_order(runs)
    if per_task:  # runs are columns: the best is found along each task's row
        table = _per_task(runs, suites, run_markers, cells)
        for row in table.rows:
            _apply_marks(row.cells, mark)
    else:
        table = _per_suite(runs, suites, run_markers, cells)
        for j in range(len(table.columns)):
            _apply_marks([row.cells[j] for row in table.rows], mark)
    along = "row" if per_task else "column"

    preamble = []
    if mixed:
        preamble.append("Runs under DIFFERENT protocols (--force): their numbers are not comparable.")
    else:
        preamble.append(f"Protocol: {describe_conditions(runs[0].summary)}.")
    if cells == "rate":
        preamble.append("Success rate (%) with its 95% Wilson score interval; errored episodes are excluded.")
    else:
        preamble.append("Successes / episodes with a verdict; errored episodes are excluded.")
    if "Average" in table.columns:
        preamble.append(
            "Average: the mean of the suite rates (its interval pools the episodes, shown only when every "
            "suite has the same number)."
        )
    if "90 IQM" in table.columns:
        preamble.append(
            "90 IQM: interquartile mean of the libero_90 task rates, with a 95% stratified bootstrap "
            f"interval ({IQM_BOOTSTRAP_REPS} replicates resampling episodes within each task, seed "
            f"{IQM_BOOTSTRAP_SEED})."
        )
    if mark == "overlap":
        preamble.append(f"Bold: best in its {along}, only where its interval overlaps no other run's.")
    elif mark == "best":
        preamble.append(f"Bold: best in its {along} (intervals may overlap).")
    table.footnotes = notes.listing()
    table.preamble = preamble
    table.cells = cells
    return table


def _per_suite(runs: Sequence[LoadedRun], suites: list[str], markers: list[list[str]], cells: str) -> Table:
    columns = [SUITE_COLUMNS.get(s, s) for s in suites]
    with_average = len(suites) > 1
    with_iqm = "libero_90" in suites
    if with_average:
        columns.append("Average")
    if with_iqm:
        columns.append("90 IQM")
    rows = []
    for run, marks in zip(runs, markers):
        row = Row(run.label, marks)
        for suite in suites:
            block = run.summary.suites.get(suite)
            row.cells.append(
                None if block is None else Cell.from_counts(block.successes, block.episodes, block.rate, block.ci_low, block.ci_high)
            )
        if with_average:
            row.cells.append(_average(row.cells[: len(suites)]))
        if with_iqm:
            row.cells.append(_iqm_cell(run, "libero_90"))
        rows.append(row)
    return Table("Policy", columns, [[] for _ in columns], rows, [], [], cells)


def _per_task(runs: Sequence[LoadedRun], suites: list[str], markers: list[list[str]], cells: str) -> Table:
    tasks: dict[tuple[str, int], str] = {}
    for run in runs:
        for t in run.summary.tasks:
            tasks.setdefault((t.suite, t.task_index), t.task_name)
    order = sorted(tasks, key=lambda st: (suites.index(st[0]), st[1]))
    rows = []
    for suite, index in order:
        row = Row(f"{SUITE_COLUMNS.get(suite, suite)} {index}: {tasks[(suite, index)]}")
        for run in runs:
            t = next((t for t in run.summary.tasks if (t.suite, t.task_index) == (suite, index)), None)
            row.cells.append(None if t is None else Cell.from_counts(t.successes, t.episodes, t.rate, t.ci_low, t.ci_high))
        rows.append(row)
    return Table("Task", [r.label for r in runs], list(markers), rows, [], [], cells)


# -- formatting ----------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _cell_parts(cell: Cell | None, mode: str) -> tuple[str, str]:
    """(main value, interval text or "") for a cell."""
    if cell is None or cell.rate is None:
        return (_DASH, "")
    if mode == "count" and cell.episodes is not None:
        return (f"{cell.successes}/{cell.episodes}", "")
    interval = "" if cell.ci_low is None else f"[{_pct(cell.ci_low)}, {_pct(cell.ci_high)}]"  # type: ignore[arg-type]
    return (_pct(cell.rate), interval)


def render_markdown(table: Table) -> str:
    def label(text: str, markers: list[str]) -> str:
        sup = f"<sup>{','.join(markers)}</sup>" if markers else ""
        return _md_escape(text) + sup

    header = [table.title] + [label(c, n) for c, n in zip(table.columns, table.column_notes)]
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(table.columns)]
    for row in table.rows:
        out = [label(row.label, row.notes)]
        for cell in row.cells:
            value, interval = _cell_parts(cell, table.cells)
            if cell is not None and cell.marked:
                value = f"**{value}**"
            out.append(f"{value} {interval}".strip())
        lines.append("| " + " | ".join(out) + " |")
    notes = [_md_escape(p) for p in table.preamble] + [f"<sup>{m}</sup> {_md_escape(t)}" for m, t in table.footnotes]
    return "\n".join(lines) + "\n\n" + "  \n".join(notes) + "\n"


def render_latex(table: Table) -> str:
    def label(text: str, markers: list[str]) -> str:
        sup = rf"\textsuperscript{{{','.join(markers)}}}" if markers else ""
        return _tex_escape(text) + sup

    out = [
        "% evalharness table; needs \\usepackage{booktabs}",
        r"\begin{tabular}{l" + "r" * len(table.columns) + "}",
        r"\toprule",
        " & ".join([_tex_escape(table.title)] + [label(c, n) for c, n in zip(table.columns, table.column_notes)]) + r" \\",
        r"\midrule",
    ]
    for row in table.rows:
        cells = [label(row.label, row.notes)]
        for cell in row.cells:
            value, interval = _cell_parts(cell, table.cells)
            value = "---" if value == _DASH else value
            if cell is not None and cell.marked:
                value = rf"\textbf{{{value}}}"
            cells.append(value + (rf" {{\scriptsize {interval}}}" if interval else ""))
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip", r"{\footnotesize"]
    notes = [_tex_escape(p) for p in table.preamble] + [rf"\textsuperscript{{{m}}}~{_tex_escape(t)}" for m, t in table.footnotes]
    out += [n + r"\\" for n in notes[:-1]] + notes[-1:] + ["}"]
    return "\n".join(out) + "\n"


def render_csv(table: Table) -> str:
    """One row per table row: for each column its rate, interval, k, n and mark (fractions;
    empty when not measured), then the row's footnotes spelled out. (In the per-task
    form the runs are columns, and their footnotes are in the Markdown / LaTeX forms.)"""
    notes = dict(table.footnotes)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = [table.title.lower()]
    for column in table.columns:
        header += [f"{column} {part}" for part in ("rate", "ci_low", "ci_high", "successes", "episodes", "best")]
    writer.writerow(header + ["notes"])

    def num(value: object) -> object:
        return "" if value is None else value

    for row in table.rows:
        out: list[object] = [row.label]
        for cell in row.cells:
            if cell is None:
                out += [""] * 6
            else:
                out += [num(cell.rate), num(cell.ci_low), num(cell.ci_high), num(cell.successes), num(cell.episodes),
                        int(cell.marked)]
        out.append("; ".join(notes[m] for m in row.notes))
        writer.writerow(out)
    return buf.getvalue()


def render(table: Table, fmt: str) -> str:
    if fmt not in FORMATS:
        raise UserInputError(f"--format {fmt!r} is not valid; allowed: {', '.join(FORMATS)}")
    return {"md": render_markdown, "latex": render_latex, "csv": render_csv}[fmt](table)
