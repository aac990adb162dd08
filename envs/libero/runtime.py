"""Preparing the process before LIBERO, robosuite and MuJoCo are imported.

Three things must happen before those imports, in every process that builds an env
(including worker processes): pick a headless render backend (``MUJOCO_GL``), point LIBERO
at the harness's config file so it never prompts, and tell LIBERO where the assets tree
chosen by setup is (``hf-libero`` otherwise looks in its own package folder, then downloads).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from types import ModuleType

from envs.libero.home import assets_dir, ensure_libero_config, installed_assets, not_set_up_error

_prepared = False


def prepare_process() -> None:
    """Set the render backend default and LIBERO's config path. Cheap and idempotent."""
    global _prepared
    if _prepared:
        return
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    ensure_libero_config()
    _prepared = True


def render_threads_per_worker(workers: int) -> int | None:
    """Mesa llvmpipe render threads for each of ``workers`` processes sharing this machine.

    llvmpipe starts one render thread per core in every process; with one worker per core
    the workers' threads then compete for every core. Splitting the cores keeps them
    apart. Frames do not depend on the thread count (``tests/test_render_path.py``).
    None for one worker: llvmpipe's own default.
    """
    if workers <= 1:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)


def limit_render_threads(threads: int | None) -> None:
    """Set ``LP_NUM_THREADS`` for this process before GL starts, unless the user set it."""
    if threads is not None and "LP_NUM_THREADS" not in os.environ:
        os.environ["LP_NUM_THREADS"] = str(threads)


@contextlib.contextmanager
def _quiet_imports():
    """Hide robosuite's 'no private macro file' warnings and LIBERO's import-time prints."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        logging.disable(previous)


def import_libero() -> ModuleType:
    """Import ``libero.libero`` with the process prepared and the assets wired in.

    Raises a one-line :class:`UserInputError` when the assets are not installed, instead
    of letting LIBERO try to download them.
    """
    prepare_process()
    if installed_assets() is None:
        raise not_set_up_error()
    with _quiet_imports():
        import robosuite  # noqa: F401  (import under the silencer)
        import libero.libero as libero_pkg
        from libero.libero.envs import OffScreenRenderEnv  # noqa: F401
    # hf-libero resolves assets through a module-level cache before its package folder.
    libero_pkg._assets_path_cache = str(assets_dir())
    if libero_pkg.get_assets_path() != str(assets_dir()):
        raise RuntimeError("could not point hf-libero at the installed assets; its layout changed")
    return libero_pkg
