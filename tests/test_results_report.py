"""The HTML report, opened in real headless Chromium (Debian's ``chromium``).

Checks what a person would: the page loads without console errors, the charts are real
images, every video is a <video> whose file exists (and decodes), a run in progress says
it is partial, and the screenshot is not blank. A control page with a script error proves
the console scan can fail.
"""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from evalharness.cli import main
from factories import outcomes_records, run_metadata, write_run

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]


def chromium(tmp_path: Path, url: str, *extra: str) -> tuple[str, list[str]]:
    """(stdout, console lines) of one headless Chromium run on ``url``."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make test does: make system-deps)")
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return proc.stdout, console


def write_video(path: Path, color: tuple[int, int, int]) -> None:
    frames = np.zeros((12, 64, 64, 3), dtype=np.uint8)
    frames[:] = color
    frames[:, 16:48, ::4] = 255  # stripes: something to see
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, frames, fps=10, codec="libx264")


@pytest.fixture
def runs(tmp_path):
    """A finished run with videos and an error, and a run still in progress."""
    done = outcomes_records("libero_object", 0, "SSF", policy="a") + outcomes_records("libero_object", 1, "SE", policy="a")
    with_videos = []
    for i, r in enumerate(done):
        video = f"videos/ep{i}_{r.outcome}.mp4" if r.outcome != "error" else None
        message = "<script>console.error('injected')</script> physics diverged" if r.outcome == "error" else None
        with_videos.append(r.model_copy(update={"video": video, "error_message": message or r.error_message}))
    finished = write_run(tmp_path / "runs" / "finished run", with_videos, run_metadata("scripted"))
    for i, r in enumerate(with_videos):
        if r.video:
            write_video(finished / r.video, (40 * i, 120, 200 - 30 * i))
    going = write_run(tmp_path / "runs" / "going", outcomes_records("libero_object", 0, "FS", policy="b"),
                      run_metadata("zero"), summary=False)
    return finished, going


def test_report_renders_in_chromium(tmp_path, runs, capsys):
    finished, going = runs
    page = tmp_path / "out" / "report.html"
    assert main(["report", str(finished), str(going), "-o", str(page)]) == 0
    assert "partial: zero" in capsys.readouterr().out
    html = page.read_text()

    dom, console = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert console == [], console
    assert '<table id="summary-table">' in dom
    assert "Partial:</strong> zero: run in progress (no summary.json yet): 2 episodes recorded" in dom
    # Error messages are text, never markup: the injected script is escaped, not run.
    assert "&lt;script&gt;console.error('injected')&lt;/script&gt; physics diverged" in dom
    assert "<script" not in dom
    # The charts are real images.
    for chart in ("chart-per-task", "chart-length"):
        match = re.search(rf'<figure id="{chart}"><img alt="[^"]+" src="data:image/png;base64,([^"]+)"', dom)
        assert match, chart
        image = Image.open(io.BytesIO(base64.b64decode(match.group(1))))
        assert image.width > 300 and image.height > 150
    # One playable video element per recorded video; its relative link resolves and decodes.
    sources = re.findall(r'<video controls="" muted="" playsinline="" preload="metadata" src="([^"]+)"', dom)
    assert len(sources) == 4
    for src in sources:
        video = (page.parent / unquote(src)).resolve()
        assert video.is_file() and video.parent.parent == finished.resolve()
        assert iio.imread(video).shape == (12, 64, 64, 3)
    assert dom.count('class="outcome-error"') == 1 and "env_error" in dom

    shot = tmp_path / "shot.png"
    _, console = chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1200,1400")
    assert console == [], console
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (1400, 1200)
    assert (pixels.min(axis=2) < 200).mean() > 0.02  # text, tables and charts, not a white page
    assert pixels.std() > 20
    assert len(html) < 400_000  # self-contained but small: videos linked, not inlined


def test_console_scan_catches_a_script_error(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    _, console = chromium(tmp_path, bad.as_uri(), "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console)


def test_embedded_videos_make_one_file(tmp_path, runs):
    finished, _ = runs
    page = tmp_path / "embedded.html"
    assert main(["report", str(finished), "-o", str(page), "--embed-videos", "--title", "one file"]) == 0
    html = page.read_text()
    sources = re.findall(r'<video [^>]*src="([^"]+)"', html)
    assert len(sources) == 4 and all(s.startswith("data:video/mp4;base64,") for s in sources)
    first = base64.b64decode(sources[0].split(",", 1)[1])
    assert first == (finished / "videos" / "ep0_success.mp4").read_bytes()
    assert "<title>one file</title>" in html


def test_serve_serves_the_page_and_the_videos(tmp_path, runs):
    import httpx

    finished, _ = runs
    page = tmp_path / "out" / "served.html"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "evalharness", "report", str(finished), "-o", str(page), "--serve",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        url = next(line.split()[1] for line in lines if line.startswith("serving "))
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200 and "evalharness report" in response.text
        src = re.search(r'<video [^>]*src="([^"]+)"', response.text).group(1)
        video = httpx.get(httpx.URL(url).join(src), timeout=30)
        assert video.status_code == 200 and video.content == (finished / "videos" / "ep0_success.mp4").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evalharness: error: ") and "does not exist" in err and err.count("\n") == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty)]) == 2
    assert "has neither summary.json nor episodes.jsonl" in capsys.readouterr().err


def test_a_perturbed_episode_is_shown_beside_its_clean_twin(tmp_path):
    """Issue 22: the pair a user wants to compare, side by side, with the drawn parameters."""
    clean = outcomes_records("libero_spatial", 0, "SF", policy="c")
    perturbation = {"parts": {"camera": {"_target_": "envs.libero.perturb.camera.CameraOrbit", "level": 2}},
                    "dimensions": {"camera": {"level": 2, "params": {"group": "h", "H": -21.123456, "V": 0.0, "S": 1.0}}},
                    "attempt": 0, "applied": {}, "runtime": {}}
    records = [r.model_copy(update={"video": f"videos/clean{i}_{r.outcome}.mp4"}) for i, r in enumerate(clean)]
    records.append(clean[0].model_copy(update={
        "key": "perturbed-0", "success": False, "perturbation": perturbation, "control_key": clean[0].key,
        "video": "videos/perturbed0_failure.mp4"}))
    records.append(clean[1].model_copy(update={  # a twin never run (perturb.control=false)
        "key": "perturbed-1", "perturbation": perturbation, "control_key": None, "video": None}))
    run = write_run(tmp_path / "runs" / "camera-L2", records, run_metadata("scripted"))
    for i, r in enumerate(records):
        if r.video:
            write_video(run / r.video, (60 * i, 100, 180))
    page = tmp_path / "report.html"
    assert main(["report", str(run), "-o", str(page)]) == 0
    dom, console = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert console == [], console
    section = dom[dom.index("Perturbed episodes beside their clean twins"):]
    rows = section.split("<tr>")[2:]
    assert len(rows) == 2
    pair = re.findall(r'<video [^>]*src="([^"]+)"', rows[0])
    assert [unquote(s).rsplit("/", 1)[1] for s in pair] == ["perturbed0_failure.mp4", "clean0_success.mp4"]
    assert "camera L2: H=-21.12, S=1, V=0, group=h" in rows[0]
    assert "clean twin: not run (perturb.control=false)" in rows[1]
    assert dom.count("<td>camera L2</td>") == 2 and dom.count("<td>clean</td>") == 2  # the episodes table says which is which
