"""`make system-deps` (a prerequisite of `make test`): it checks the Debian packages the
tests need, installs the missing ones as root with one `apt-get update` first, and
otherwise names them in one line and fails. Run on the real Makefile with a package that
does not exist; SYSTEM_DEPS_DRY_RUN prints the apt-get commands instead of running them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MISSING = "no-such-package-evalharness"


def _make(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"PATH": path} if path else {})}
    return subprocess.run([shutil.which("make") or "make", "-s", "-C", str(REPO), "system-deps", *args],
                          capture_output=True, text=True, timeout=60, env=env)


def test_nothing_missing_says_nothing():
    proc = _make("SYSTEM_DEPS=")
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_missing_package_is_installed_after_one_update(tmp_path):
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        # Not root or no apt: the other branch, which must name the package and fail.
        proc = _make(f"SYSTEM_DEPS={MISSING}", "SYSTEM_DEPS_DRY_RUN=1")
        assert proc.returncode != 0 and MISSING in proc.stderr
        return
    proc = _make(f"SYSTEM_DEPS={MISSING}", "SYSTEM_DEPS_DRY_RUN=1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"installing Debian packages make test needs: {MISSING}"
    assert [line for line in lines if "apt-get update" in line] == ["would run: apt-get update -qq"]
    assert lines[-1].endswith(f"apt-get install -y -qq --no-install-recommends {MISSING}")


def test_without_apt_get_one_line_names_what_to_install(tmp_path):
    fake_bin = tmp_path / "bin"  # the tools the recipe uses, but no apt-get
    fake_bin.mkdir()
    for tool in ("sh", "make", "dpkg-query", "grep", "id", "env"):
        found = shutil.which(tool)
        if found:
            (fake_bin / tool).symlink_to(found)
    proc = _make(f"SYSTEM_DEPS={MISSING} make", path=str(fake_bin))
    assert proc.returncode != 0 and proc.stdout == ""
    # make's own "*** Error" line (make[1]: when make test itself runs under make) is not ours
    ours = [line for line in proc.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
    assert len(ours) == 1, proc.stderr
    assert f"missing: {MISSING}; install them with: sudo apt-get install {MISSING}" in ours[0]
    if shutil.which("dpkg-query"):
        assert f"{MISSING} make;" not in ours[0]  # make itself is installed: not named


def test_make_run_checks_only_the_rendering_packages():
    """`make run` renders (EGL) but opens no browser: it must not install chromium."""
    proc = subprocess.run([shutil.which("make") or "make", "-s", "-n", "-C", str(REPO), "render-deps"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "libegl-mesa0" in proc.stdout and "chromium" not in proc.stdout
    run_plan = subprocess.run([shutil.which("make") or "make", "-n", "-C", str(REPO), "run"],
                              capture_output=True, text=True, timeout=60).stdout
    assert "make run needs" in run_plan  # run depends on render-deps
