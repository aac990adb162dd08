"""Live progress of a run: episodes done, ETA, and the running success rate.

On a terminal it is a rich progress bar; elsewhere (CI logs, files) one line per episode,
so a log shows what happened without control characters.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from evalharness.results.records import EpisodeRecord


class RunProgress:
    """Counts outcomes as records arrive and shows them."""

    def __init__(self, total: int, resumed: Sequence[EpisodeRecord], label: str) -> None:
        self.total = total
        self.successes = sum(1 for r in resumed if r.success)
        self.errors = sum(1 for r in resumed if r.error_kind)
        self.done = len(resumed)
        self.start_done = self.done
        self.started = time.monotonic()
        self.live = sys.stderr.isatty()
        self.console = Console(stderr=True)
        self._progress = None
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console,
            )
            self._task = self._progress.add_task(label, total=total, completed=self.done, rate=self._rate_text())
            self._progress.start()
        elif self.done:
            print(f"resuming: {self.done}/{total} episodes already recorded", file=sys.stderr)

    def _rate_text(self) -> str:
        verdicts = self.done - self.errors
        rate = f"{100 * self.successes / verdicts:.0f}%" if verdicts else "-"
        errors = f", {self.errors} errors" if self.errors else ""
        return f"success {self.successes}/{verdicts} ({rate}){errors}"

    def _eta(self) -> str:
        ran = self.done - self.start_done
        if ran == 0:
            return "?"
        remaining = (time.monotonic() - self.started) / ran * (self.total - self.done)
        return time.strftime("%H:%M:%S", time.gmtime(remaining))

    def update(self, record: EpisodeRecord) -> None:
        self.done += 1
        self.successes += bool(record.success)
        self.errors += bool(record.error_kind)
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, rate=self._rate_text())
            return
        outcome = record.error_kind or ("success" if record.success else "failure")
        print(
            f"[{self.done}/{self.total}] {record.suite} task {record.task_index} init {record.init_state}: "
            f"{outcome} ({record.steps} steps, {record.wall_time_s:.1f} s) | {self._rate_text()} | ETA {self._eta()}",
            file=sys.stderr, flush=True,
        )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
