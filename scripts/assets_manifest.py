"""Regenerate ``envs/libero/assets-manifest.sha256``: the files LIBERO's 130 tasks load.

For every task of every suite, LIBERO's env is built on the installed PyPI assets (the
original files) while :func:`envs.libero.model_files.record_loaded_files` watches: the XML
files Python opens below the assets root, and the mesh / texture files named by the XML
MuJoCo compiles. The union is hashed from the wheel tree and written in ``sha256sum``
format (``<sha256>  <path relative to assets/>``), sorted by path, so the file can also be
checked by hand: ``cd <assets root> && sha256sum -c <manifest>``.

Run it (about 10 minutes on 2 cores; it needs no camera):

    MUJOCO_GL=egl python scripts/assets_manifest.py            # writes the manifest
    MUJOCO_GL=egl python scripts/assets_manifest.py --check    # exit 1 if it would change
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def loaded_files(root: Path, limit: int | None) -> set[str]:
    """Build each task's env without a renderer and collect what it loaded from ``root``."""
    from envs.libero.catalog import all_tasks
    from envs.libero.model_files import record_loaded_files
    from envs.libero.runtime import import_libero

    import_libero()
    from libero.libero.envs.env_wrapper import ControlEnv

    files: set[str] = set()
    tasks = all_tasks()[:limit]
    for n, task in enumerate(tasks, 1):
        start = time.perf_counter()
        with record_loaded_files(root) as seen:
            env = ControlEnv(
                bddl_file_name=str(task.bddl_path), has_offscreen_renderer=False, use_camera_obs=False,
            )
            env.close()
        if not seen.compiled_xml:
            raise RuntimeError(f"{task.suite}[{task.index}]: no model was compiled; robosuite's layout changed")
        mine = seen.files_under_root()
        files |= mine
        del env
        gc.collect()
        print(f"[{n}/{len(tasks)}] {task.suite}[{task.index}] {len(mine)} files "
              f"({len(files)} in all) {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the committed manifest)")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the manifest would change")
    parser.add_argument("--limit", type=int, default=None, help="only the first N tasks (for trying the script)")
    args = parser.parse_args()

    from envs.libero.manifest import file_sha256
    from envs.libero.home import AssetsInfo, select_assets
    from envs.libero.manifest import MANIFEST_PATH, format_manifest
    from envs.libero.pypi_assets import SOURCE, pypi_assets_root

    root = pypi_assets_root()
    # A scratch harness home pointing at the wheels, so the user's own home is untouched.
    with tempfile.TemporaryDirectory(prefix="evalharness-manifest-") as home:
        os.environ["EVALHARNESS_HOME"] = home
        select_assets(AssetsInfo(path=str(root), source=SOURCE, kind="pypi"))
        files = loaded_files(root, args.limit)
    text = format_manifest({rel: file_sha256(root / rel) for rel in files})
    out = args.out or MANIFEST_PATH
    if args.check:
        same = out.is_file() and out.read_text() == text
        print(f"{out}: {'up to date' if same else 'would change'} ({len(files)} files)")
        return 0 if same else 1
    out.write_text(text)
    print(f"wrote {out}: {len(files)} files loaded by {args.limit or 'all'} tasks, hashed from {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
