"""The results layer: episode records, their store, statistics, summaries and tables,
and the readers built on them (cross-run tables, the regression gate, the HTML report).

Data flows one way: the rollout produces an :class:`EpisodeRecord`, the
:class:`ResultStore` appends it to ``episodes.jsonl``, and everything else (summary,
tables, gates) is rebuilt from the stored records, so a crashed or resumed run reports
exactly what was recorded.
"""

from evalharness.results.atomic import write_json_atomic, write_text_atomic
from evalharness.results.records import EpisodeRecord
from evalharness.results.runs import LoadedRun, load_run, load_runs
from evalharness.results.schema import SCHEMA_VERSION, Summary
from evalharness.results.stats import RateSummary, holm, mcnemar_exact, rate_summary, wilson_interval
from evalharness.results.store import ResultStore, StoreScan, StoreWarning
from evalharness.results.summary import build_summary
from evalharness.results.summary_table import render_csv, render_latex, render_markdown

__all__ = [
    "EpisodeRecord",
    "LoadedRun",
    "SCHEMA_VERSION",
    "Summary",
    "load_run",
    "load_runs",
    "ResultStore",
    "StoreScan",
    "StoreWarning",
    "RateSummary",
    "build_summary",
    "holm",
    "mcnemar_exact",
    "rate_summary",
    "render_csv",
    "render_latex",
    "render_markdown",
    "wilson_interval",
    "write_json_atomic",
    "write_text_atomic",
]
