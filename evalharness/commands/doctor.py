"""Check that this machine can run evaluations, and say what is wrong if not.

Checks: Python and the pinned packages, LIBERO's config file, the installed assets (their
files verified against LIBERO's manifest), and the render backend (one real LIBERO frame is rendered).
Exits 1 when anything is broken, with the reason in the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from evalharness.results.metadata import package_versions


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    warn: bool = False  # usable, but results will carry a caveat


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-render", action="store_true", help="do not build an env to render a frame (~10 s)")


def _versions() -> list[Check]:
    v = package_versions()
    checks = [Check("python", sys.version_info >= (3, 11), v["python"] or "?")]
    expectations: dict[str, tuple[Callable[[str], bool], str]] = {
        "mujoco": (lambda s: s == "3.3.2", "3.3.2 (pinned: pixels change with MuJoCo's version)"),
        "robosuite": (lambda s: s.startswith("1.4."), "1.4.x (LIBERO breaks on 1.5)"),
        "hf-libero": (lambda s: True, "installed"),
        "torch": (lambda s: True, "installed"),
        "evalharness": (lambda s: True, "installed"),
    }
    for name, (accept, wanted) in expectations.items():
        found = v.get(name)
        ok = found is not None and accept(found)
        checks.append(Check(name, ok, f"{found}" if ok else f"{found}; expected {wanted}"))
    return checks


def _config() -> Check:
    from envs.libero.home import ensure_libero_config

    try:
        path = ensure_libero_config()
    except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not crash
        return Check("LIBERO config", False, str(exc))
    return Check("LIBERO config", True, str(path))


def _assets() -> Check:
    from envs.libero.home import installed_assets, not_set_up_error
    from envs.libero.manifest import verify_tree

    info = installed_assets()
    if info is None:
        return Check("assets", False, str(not_set_up_error()))
    verification = verify_tree(info.path, full=True)
    if not verification.usable:
        return Check("assets", False, f"{info.path}: {verification.problem()}; rerun 'evalharness setup'")
    detail = f"{info.path} ({info.source}): {verification.checked} files checked, {verification.provenance}"
    if verification.differ:
        return Check("assets", True, f"{detail}; {verification.problem()}", warn=True)
    return Check("assets", True, detail)


def _render() -> Check:
    backend = os.environ.get("MUJOCO_GL", "egl (default)")
    try:
        from envs.libero.env import LiberoEnv

        start = time.perf_counter()
        env = LiberoEnv("libero_object", 0, camera_size=64)
        try:
            env.reset_to(0)
            frame = env.render_images()["base_0_rgb"]
        finally:
            env.close()
        elapsed = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001
        return Check("render", False, f"MUJOCO_GL={backend}: {type(exc).__name__}: {exc}")
    if frame.std() < 1.0:
        return Check("render", False, f"MUJOCO_GL={backend}: the rendered frame is blank")
    return Check("render", True, f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}: 64 px LIBERO frame in {elapsed:.1f} s (incl. env build)")


def run(args: argparse.Namespace) -> int:
    from envs.libero.runtime import prepare_process

    prepare_process()
    checks = _versions() + [_config(), _assets()]
    if not args.skip_render:
        checks.append(_render() if checks[-1].ok else Check("render", False, "skipped: assets missing"))
    table = Table(title="evalharness doctor")
    table.add_column("check")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for check in checks:
        status = "[red]FAIL[/red]" if not check.ok else "[yellow]warn[/yellow]" if check.warn else "[green]ok[/green]"
        table.add_row(check.name, status, check.detail)
    Console().print(table)
    broken = [c.name for c in checks if not c.ok]
    if broken:
        print(f"evalharness doctor: broken: {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0
