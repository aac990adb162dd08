"""Write one self-contained HTML report of one or more runs.

The page holds the summary table, a per-task bar chart with 95% interval whiskers (one
bar per run), episode length against outcome, and every episode (outcome, steps, error
kind and message) with its video playable in place. Videos are linked relative to the
page unless --embed-videos. A run still in progress is shown as far as it got and
marked partial. --serve serves the page on 127.0.0.1 until Ctrl-C.

examples:
  evalharness report results/libero_object-scripted-openpi -o report.html
  evalharness report results/run-a results/run-b -o results/compare.html --embed-videos
  evalharness report results/libero_object-scripted-openpi -o report.html --serve --port 8000
"""

from __future__ import annotations

import argparse
import functools
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from evalharness.errors import UserInputError
from evalharness.results.atomic import write_text_atomic
from evalharness.results.report import render_report
from evalharness.results.runs import load_runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (results/<run>/) or summary.json files")
    parser.add_argument("-o", "--output", default="report.html", metavar="FILE", help="HTML file to write (default report.html)")
    parser.add_argument("--label", action="append", metavar="NAME", help="name for each run, in order")
    parser.add_argument("--title", help="page title")
    parser.add_argument("--embed-videos", action="store_true", help="inline the videos (one file to send; larger)")
    parser.add_argument("--serve", action="store_true", help="serve the report on 127.0.0.1 after writing it")
    parser.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000; 0 = any free port)")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


def serve(page: Path, roots: list[Path], port: int) -> None:
    """Serve the folder holding the page and every run folder (relative video links must resolve)."""
    root = Path(os.path.commonpath([str(page.parent.resolve())] + [str(r.resolve()) for r in roots]))
    handler = functools.partial(_QuietHandler, directory=str(root))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise UserInputError(f"--port {port}: cannot listen on 127.0.0.1:{port} ({exc.strerror}); try --port 0") from None
    url = f"http://127.0.0.1:{server.server_address[1]}/{quote(str(page.resolve().relative_to(root)))}"
    print(f"serving {url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UserInputError(f"--port {args.port} is not valid; allowed: 0..65535")
    runs = load_runs(args.runs, args.label)
    html = render_report(runs, args.output, embed_videos=args.embed_videos, title=args.title)
    page = write_text_atomic(args.output, html)
    partial = [r.label for r in runs if r.partial]
    print(f"report: {page} ({len(html) // 1024} kB)" + (f"; partial: {', '.join(partial)}" if partial else ""))
    if args.serve:
        serve(page, [r.run_dir for r in runs], args.port)
    return 0
