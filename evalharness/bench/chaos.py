"""``evalharness bench --chaos``: a run under worker kills and a Ctrl-C, against a clean run.

Why it is built like this: the claim to prove is that a run which loses workers and is
interrupted still ends with every planned episode recorded exactly once, with the outcome
and the actions a clean run gets. So the supervisor treats the run as a black box, the way
an operator (or the OOM killer) does:

1. a *clean* run of the plan (real CLI, ``python -m evalharness``, scripted policy);
2. the *chaos* run of the same plan in another folder, started as a subprocess. A seeded
   supervisor SIGKILLs a random worker every few seconds (workers are found as the run's
   child processes in ``/proc``; with ``--runner ray``, Ray's ``ray::`` worker processes
   under it), sends one SIGINT to the parent once part of the plan is recorded, and
   restarts the command (a resume) until it exits 0;
3. both ``episodes.jsonl`` files are compared: episodes planned, recorded, duplicated,
   lost; outcomes and action fingerprints that differ; plus kills sent, worker processes
   that outlived their parent, videos that are missing or half-written, and the wall-time
   overhead against the clean run.

It exits 1 unless 0 are lost, 0 duplicated and 0 differ (and the chaos actually happened:
at least one kill and the SIGINT). A kill is only sent once the run has recorded a new
episode since the previous kill, so the run always makes progress whatever the machine's
speed. ``runner.max_attempts`` is raised for the chaos run: the supervisor, not the
episode, kills workers, and the designed give-up (a ``worker_crash`` record after two
deaths) would otherwise turn a kill into a different outcome.

Both modes run the scripted privileged-state policy on LIBERO-Object tasks 0 and 1 with
``suite.max_steps`` just under task 0's solve time, so outcomes are mixed (task 1
succeeds, task 0 runs out of steps) and both kinds are compared. ``quick`` (4 episodes,
one kill) is what the test suite runs; ``full`` (20 episodes, kills every 3-8 s, first
videos of each task) is the README's figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evalharness.errors import UserInputError

__all__ = ["MODES", "ChaosMode", "ChaosFigures", "add_arguments", "compare_runs", "run"]


@dataclass(frozen=True)
class ChaosMode:
    """One preset of the chaos run: the plan and how hard the supervisor hits it."""

    tasks: tuple[int, ...]
    episodes_per_task: int
    max_steps: int
    camera_size: int
    video: str
    workers: int
    kill_every_s: tuple[float, float]  # a random wait in this range between kills
    max_kills: int | None  # None: keep killing until the run completes
    sigint_at: tuple[float, float]  # SIGINT once this fraction of the plan is recorded


MODES: dict[str, ChaosMode] = {
    "quick": ChaosMode(
        tasks=(0, 1), episodes_per_task=2, max_steps=145, camera_size=32, video="none", workers=2,
        kill_every_s=(1.0, 3.0), max_kills=1, sigint_at=(0.25, 0.5),
    ),
    "full": ChaosMode(
        tasks=(0, 1), episodes_per_task=10, max_steps=145, camera_size=64, video="first_n", workers=2,
        kill_every_s=(3.0, 8.0), max_kills=None, sigint_at=(0.3, 0.6),
    ),
}

#: How long a run gets to stop after the SIGINT before a second one, then a SIGKILL.
SIGINT_GRACE_S = 120.0
SECOND_SIGINT_GRACE_S = 30.0
#: How long a worker may outlive its parent before it counts as an orphan.
ORPHAN_GRACE_S = 5.0
MAX_LAUNCHES = 25
POLL_S = 0.25


@dataclass
class ChaosFigures:
    """What the chaos run measured; ``ok`` is the verdict the exit code carries."""

    mode: str
    runner: str
    seed: int
    planned: int = 0
    recorded: int = 0
    duplicated: int = 0
    lost: int = 0
    extra: int = 0  # recorded keys the plan does not hold
    differing: int = 0
    differing_keys: list[str] = field(default_factory=list)
    errors: int = 0  # episodes recorded as errors (e.g. worker_crash)
    retried: int = 0  # episodes whose record says they ran more than once
    corrupt_lines: int = 0
    torn_tail: bool = False
    kills: int = 0
    sigints: int = 0
    launches: int = 0
    exit_codes: list[int] = field(default_factory=list)
    interrupt_exit_s: float | None = None  # from the SIGINT to the parent's exit
    orphans: int = 0  # workers still alive ORPHAN_GRACE_S after their parent exited
    videos: int = 0
    bad_videos: list[str] = field(default_factory=list)  # missing files, or partial ones left
    clean_wall_s: float = 0.0
    chaos_wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def overhead(self) -> float:
        return self.chaos_wall_s / self.clean_wall_s - 1.0 if self.clean_wall_s > 0 else float("nan")

    @property
    def ok(self) -> bool:
        return not self.problems


# -- command line -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--chaos`` flag of ``evalharness bench`` and its options."""
    group = parser.add_argument_group("chaos run (--chaos)")
    group.add_argument("--chaos", nargs="?", const="full", choices=sorted(MODES), default=None,
                       help="run the plan under worker kills and a SIGINT against a clean run (default mode: full)")
    group.add_argument("--runner", default="local", help="runner config group for both runs (local, ray, ...)")
    group.add_argument("--chaos-seed", type=int, default=0, help="seed of the supervisor's kill times and victims")
    group.add_argument("--chaos-dir", metavar="PATH", default=None,
                       help="folder for the two runs (default: results/bench-chaos-<mode>); its clean/, chaos/ and logs are replaced")


def run(args: argparse.Namespace) -> int:
    mode_name = args.chaos
    if mode_name not in MODES:
        raise UserInputError(f"--chaos {mode_name!r} is not valid; allowed: {', '.join(sorted(MODES))}")
    from evalharness.config.conf import CONF_DIR

    runners = sorted(p.stem for p in (CONF_DIR / "runner").glob("*.yaml"))
    if args.runner not in runners:
        raise UserInputError(f"--runner {args.runner!r} is not valid; allowed: {', '.join(runners)}")
    if not Path("/proc/self/stat").exists():
        raise UserInputError("bench --chaos finds worker processes in /proc, which this system does not have")
    root = Path(args.chaos_dir or f"results/bench-chaos-{mode_name}").resolve()
    figures = chaos_run(MODES[mode_name], mode_name, args.runner, args.chaos_seed, root)
    print_figures(figures, root)
    json_path = getattr(args, "json", None)
    if json_path:
        payload = {**asdict(figures), "overhead": figures.overhead, "ok": figures.ok}
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if figures.ok else 1


# -- the two runs -------------------------------------------------------------------------


def run_command(mode: ChaosMode, runner: str, output_dir: Path, max_attempts: int) -> list[str]:
    """The evaluation command line of one of the two runs."""
    tasks = ",".join(str(t) for t in mode.tasks)
    return [
        sys.executable, "-m", "evalharness",
        "suite=libero_object", f"suite.tasks=[{tasks}]", f"suite.episodes_per_task={mode.episodes_per_task}",
        f"suite.max_steps={mode.max_steps}", "policy=scripted", f"camera_size={mode.camera_size}",
        f"video={mode.video}", f"runner={runner}", f"runner.workers={mode.workers}",
        f"runner.max_attempts={max_attempts}", "run_name=bench-chaos", f"output_dir={output_dir}",
    ]  # fmt: skip


def chaos_run(mode: ChaosMode, mode_name: str, runner: str, seed: int, root: Path) -> ChaosFigures:
    """Run the clean and the chaos run under ``root`` and compare them."""
    clean_dir, chaos_dir = root / "clean", root / "chaos"
    for folder in (clean_dir, chaos_dir):
        shutil.rmtree(folder, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    for log in ("clean.log", "chaos.log"):  # the runs' output, for when a figure is wrong
        (root / log).write_bytes(b"")
    figures = ChaosFigures(mode=mode_name, runner=runner, seed=seed)

    print(f"chaos [{mode_name}]: clean run -> {clean_dir}", flush=True)
    start = time.monotonic()
    code = _run_quietly(run_command(mode, runner, clean_dir, max_attempts=2), root / "clean.log")
    figures.clean_wall_s = time.monotonic() - start
    if code != 0:
        figures.problems.append(f"the clean run failed (exit {code}); see {root / 'clean.log'}")
        return figures

    print(f"chaos [{mode_name}]: chaos run -> {chaos_dir} (seed {seed})", flush=True)
    supervisor = Supervisor(mode, runner, random.Random(seed), root / "chaos.log")
    start = time.monotonic()
    planned = _count_lines(clean_dir / "episodes.jsonl")
    supervisor.drive(run_command(mode, runner, chaos_dir, max_attempts=1000), chaos_dir, planned)
    figures.chaos_wall_s = time.monotonic() - start
    for name in ("kills", "sigints", "launches", "exit_codes", "interrupt_exit_s", "orphans"):
        setattr(figures, name, getattr(supervisor, name))
    figures.problems.extend(supervisor.problems)
    compare_runs(clean_dir, chaos_dir, figures)
    return figures


def _run_quietly(cmd: list[str], log_path: Path) -> int:
    with open(log_path, "ab") as log:
        return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False).returncode


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


# -- processes ----------------------------------------------------------------------------


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process visible in /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read().decode(errors="replace")
            with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone meanwhile
        # the command name is in parentheses and may hold spaces: the ppid follows the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[0] != "Z":  # a zombie is already dead
            table[int(entry.name)] = (int(fields[1]), cmdline)
    return table


def find_workers(pid: int, runner: str) -> list[int]:
    """The worker processes of the run whose parent is ``pid``.

    Local workers are its direct children started by multiprocessing's spawn (not its
    resource tracker); Ray's are ``ray::`` processes anywhere below it (under the raylet).
    """
    table = _processes()
    if runner == "ray":
        below = _descendants(pid, table)
        return sorted(p for p in below if table[p][1].startswith("ray::") and not table[p][1].startswith("ray::IDLE"))
    return sorted(p for p, (ppid, cmd) in table.items() if ppid == pid and "spawn_main" in cmd)


def _descendants(pid: int, table: dict[int, tuple[int, str]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _like_a_terminal_job() -> None:
    """In the run's child process before exec: a session of its own, SIGINT as a shell gives it.

    The own session means the run sees only the signals sent here, never a Ctrl-C meant
    for this supervisor. SIGINT is reset to its default because a job started in the
    background of a non-interactive shell (CI, ``cmd &``) inherits it *ignored*, and
    Python then installs no KeyboardInterrupt handler: the interrupt would be a no-op.
    """
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] != b"Z"


class Supervisor:
    """Starts the run, kills its workers, interrupts it once, and resumes it to completion."""

    def __init__(self, mode: ChaosMode, runner: str, rng: random.Random, log_path: Path) -> None:
        self.mode = mode
        self.runner = runner
        self.rng = rng
        self.log_path = log_path
        self.kills = 0
        self.sigints = 0
        self.launches = 0
        self.exit_codes: list[int] = []
        self.interrupt_exit_s: float | None = None
        self.orphans = 0
        self.problems: list[str] = []
        self._sigint_at: int | None = None

    def drive(self, cmd: list[str], run_dir: Path, planned: int) -> None:
        low, high = self.mode.sigint_at
        self._sigint_at = max(1, min(planned - 1, round(planned * self.rng.uniform(low, high))))
        while self.launches < MAX_LAUNCHES:
            self.launches += 1
            code = self._one_launch(cmd, run_dir, planned)
            self.exit_codes.append(code)
            if code == 0:
                return
            print(f"  launch {self.launches} ended with exit {code}; resuming", flush=True)
        self.problems.append(f"the chaos run did not complete in {MAX_LAUNCHES} launches")

    def _one_launch(self, cmd: list[str], run_dir: Path, planned: int) -> int:
        store = run_dir / "episodes.jsonl"
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- launch {self.launches}: {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_like_a_terminal_job)
        seen_workers: set[int] = set()
        interrupted_at: float | None = None
        second_sent = forced = False
        last_kill_records = -1
        next_kill = time.monotonic() + self.rng.uniform(*self.mode.kill_every_s)
        try:
            while proc.poll() is None:
                time.sleep(POLL_S)
                now = time.monotonic()
                workers = find_workers(proc.pid, self.runner)
                seen_workers.update(workers)
                records = _count_lines(store)
                if interrupted_at is not None:
                    if not second_sent and now - interrupted_at > SIGINT_GRACE_S:
                        self._signal(proc.pid, signal.SIGINT)
                        second_sent = True
                    elif second_sent and not forced and now - interrupted_at > SIGINT_GRACE_S + SECOND_SIGINT_GRACE_S:
                        self.problems.append("the run ignored two SIGINTs; it was SIGKILLed")
                        os.killpg(proc.pid, signal.SIGKILL)
                        forced = True
                    continue
                # Only mid-run: a SIGINT as the run exits would prove nothing.
                if self.sigints == 0 and self._sigint_at is not None and self._sigint_at <= records < planned:
                    self._signal(proc.pid, signal.SIGINT)
                    self.sigints += 1
                    interrupted_at = now
                    print(f"  SIGINT to the run at {records} recorded episodes", flush=True)
                    continue
                can_kill = self.mode.max_kills is None or self.kills < self.mode.max_kills
                if can_kill and now >= next_kill and records > last_kill_records and workers:
                    victim = self.rng.choice(workers)
                    if self._signal(victim, signal.SIGKILL):
                        self.kills += 1
                        last_kill_records = records
                        print(f"  SIGKILL to worker {victim} at {records} recorded episodes", flush=True)
                    next_kill = now + self.rng.uniform(*self.mode.kill_every_s)
        finally:
            if proc.poll() is None:  # this supervisor itself is stopping: take the run down
                os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        if interrupted_at is not None and self.interrupt_exit_s is None:
            self.interrupt_exit_s = time.monotonic() - interrupted_at
            if code == 0:  # it had episodes left when the SIGINT came, and ran them anyway
                self.problems.append("the SIGINT did not stop the run: it went on to complete")
        self._reap_orphans(seen_workers)
        return code

    @staticmethod
    def _signal(pid: int, sig: int) -> bool:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return False
        return True

    def _reap_orphans(self, workers: set[int]) -> None:
        """Count workers that outlive their parent, then end them (they belong to this run)."""
        deadline = time.monotonic() + ORPHAN_GRACE_S
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(POLL_S)
        left = [p for p in workers if _alive(p)]
        self.orphans += len(left)
        for pid in left:
            self._signal(pid, signal.SIGKILL)


# -- the comparison -----------------------------------------------------------------------


def _raw_records(path: Path) -> list[dict[str, Any]]:
    """Every complete line of a store as JSON (duplicates included); bad lines skipped."""
    records = []
    data = path.read_bytes() if path.exists() else b""
    for line in data.split(b"\n")[:-1]:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _verdict(record: dict[str, Any]) -> str:
    if record.get("error_kind"):
        return f"error:{record['error_kind']}"
    return "success" if record.get("success") else "failure"


def compare_runs(clean_dir: Path, chaos_dir: Path, figures: ChaosFigures) -> ChaosFigures:
    """Fill ``figures`` from the two run folders; every shortfall becomes a problem."""
    import warnings

    from evalharness.results.store import ResultStore, StoreWarning

    clean_lines = _raw_records(clean_dir / "episodes.jsonl")
    clean = {r["key"]: r for r in clean_lines}
    try:
        complete = json.loads((clean_dir / "summary.json").read_text())["complete"]
    except (OSError, ValueError, KeyError):
        complete = False
    if not complete or len(clean) != len(clean_lines) or any(_verdict(r).startswith("error") for r in clean_lines):
        figures.problems.append("the clean run is not a valid baseline (incomplete, duplicates or errors in it)")
    figures.planned = len(clean)
    try:
        clean_context = json.loads((clean_dir / "run.json").read_text())["context"]
        chaos_context = json.loads((chaos_dir / "run.json").read_text())["context"]
    except (OSError, ValueError, KeyError):
        clean_context, chaos_context = "clean", None
    if clean_context != chaos_context:
        figures.problems.append("the two runs do not share a plan (their run contexts differ)")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        scan = ResultStore(chaos_dir, readonly=True).scan()
    figures.corrupt_lines, figures.torn_tail = scan.corrupt_lines, scan.torn_tail
    lines = _raw_records(chaos_dir / "episodes.jsonl")
    first: dict[str, dict[str, Any]] = {}
    for record in lines:
        if record.get("key") in first:
            figures.duplicated += 1
        else:
            first[record.get("key")] = record
    figures.recorded = len(set(first) & set(clean))
    figures.lost = len(set(clean) - set(first))
    figures.extra = len(set(first) - set(clean))
    figures.errors = sum(1 for r in first.values() if _verdict(r).startswith("error"))
    figures.retried = sum(1 for r in first.values() if (r.get("attempts") or 1) > 1)
    for key, record in first.items():
        reference = clean.get(key)
        if reference is None:
            continue
        if _verdict(record) != _verdict(reference) or record.get("action_fingerprint") != reference.get("action_fingerprint"):
            figures.differing += 1
            figures.differing_keys.append(key)
    _check_videos(chaos_dir, first.values(), figures)

    for count, label in ((figures.lost, "lost"), (figures.duplicated, "duplicated"), (figures.differing, "differing"),
                         (figures.extra, "not in the plan"), (figures.corrupt_lines, "corrupt lines"),
                         (len(figures.bad_videos), "bad videos"), (figures.orphans, "orphaned workers")):
        if count:
            figures.problems.append(f"{count} {label}")
    if figures.kills == 0 or figures.sigints == 0:
        figures.problems.append(f"no chaos happened ({figures.kills} kills, {figures.sigints} SIGINT): the run was too quick to hit")
    return figures


def _check_videos(run_dir: Path, records, figures: ChaosFigures) -> None:
    """Every recorded video is a whole mp4; no partial or scratch file is left in the run folder."""
    from evalharness.episode.video import mp4_is_complete

    for record in records:
        if record.get("video"):
            figures.videos += 1
            if not mp4_is_complete(run_dir / record["video"]):
                figures.bad_videos.append(record["video"])
    videos = run_dir / "videos"
    if videos.is_dir():
        figures.bad_videos.extend(f"videos/{p.name}" for p in videos.iterdir() if p.name.startswith("."))
    if (run_dir / ".scratch").exists():
        figures.bad_videos.append(".scratch/")


def print_figures(figures: ChaosFigures, root: Path) -> None:
    f = figures
    print(f"\nchaos run ({f.mode}, runner={f.runner}, seed {f.seed}): {root}")
    print(f"  episodes planned                    {f.planned:8d}")
    print(f"  episodes recorded                   {f.recorded:8d}")
    print(f"  episodes duplicated                 {f.duplicated:8d}")
    print(f"  episodes lost                       {f.lost:8d}")
    print(f"  outcomes/fingerprints differing     {f.differing:8d}   (vs the clean run of the same plan)")
    print(f"  episodes retried after a kill       {f.retried:8d}")
    print(f"  errors recorded                     {f.errors:8d}")
    print(f"  worker SIGKILLs sent                {f.kills:8d}")
    interrupt = f"exit after {f.interrupt_exit_s:.1f} s" if f.interrupt_exit_s is not None else "not sent"
    print(f"  SIGINTs to the run                  {f.sigints:8d}   ({interrupt})")
    print(f"  launches (1 + resumes)              {f.launches:8d}   (exit codes {f.exit_codes})")
    print(f"  workers outliving their parent      {f.orphans:8d}")
    print(f"  videos kept / bad                   {f.videos:4d} / {len(f.bad_videos)}")
    print(f"  wall time clean / chaos             {f.clean_wall_s:7.1f} s / {f.chaos_wall_s:.1f} s"
          f"   (overhead {100 * f.overhead:+.0f}%)")
    if f.ok:
        print("  result: OK (0 lost, 0 duplicated, 0 differing)")
    else:
        print(f"  result: FAILED: {'; '.join(f.problems)}")
