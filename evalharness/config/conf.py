"""The Hydra config tree (``conf/``) and the checks that make a bad override one line.

Hydra reports an unknown group choice, a mistyped key or bad override syntax over several
lines with a hint to set ``HYDRA_FULL_ERROR``; these checks compose the config first and
raise one :class:`~evalharness.errors.UserInputError` naming the value and what is allowed.
Every reader of ``conf/`` (the run, ``serve``, the policy checker, the results readers)
finds it through :data:`CONF_DIR`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evalharness.errors import UserInputError, choices_error

__all__ = ["CONF_DIR", "GROUPS", "check_group_choices", "check_overrides", "load_preset", "search_dirs"]

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
GROUPS = ("suite", "protocol", "policy", "decoder", "normalize", "convert", "runner", "video", "perturb")
def search_dirs(argv: list[str]) -> list[Path]:
    """``conf/`` and the folders ``hydra.searchpath=[file://DIR,...]`` adds (a user's own parts)."""
    dirs = [CONF_DIR]
    for arg in argv:
        if arg.startswith("hydra.searchpath="):
            for item in arg.split("=", 1)[1].strip("[]").split(","):
                item = item.strip().strip("'\"")
                if item.startswith("file://"):
                    dirs.append(Path(item.removeprefix("file://")))
    return dirs


def check_group_choices(argv: list[str]) -> None:
    """Reject ``group=unknown`` with one line before Hydra prints a multi-line error."""
    dirs = search_dirs(argv)
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key in GROUPS:
            allowed = sorted({p.stem for d in dirs for p in (d / key).glob("*.yaml")})
            for choice in value.strip("[]").split(","):  # multirun sweeps a,b,c; lists [a,b]
                if choice not in allowed:
                    raise choices_error(key, choice, allowed)


def check_overrides(argv: list[str]) -> None:
    """Compose the config once so a mistyped key or bad override syntax is one line.

    Hydra reports those over several lines with a hint to set HYDRA_FULL_ERROR. Sweeps
    (``-m``) are left to Hydra, since ``a,b`` values only mean something there.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if any(arg in ("-m", "--multirun") for arg in argv):
        return
    overrides = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="evalharness"):
            cfg = compose("config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        cause = exc.__cause__
        key = getattr(cause, "full_key", None)
        if key:
            parent = key.rsplit(".", 1)[0] if "." in key else None
            allowed = _keys_at(parent) if parent else []
            hint = f"; allowed keys in {parent}: {', '.join(allowed)}" if allowed else ""
            raise UserInputError(f"config key {key!r} does not exist{hint} (use +{key}=... to add a new key)") from None
        first = str(exc).strip().splitlines()[0]
        raise UserInputError(f"override not valid: {first}") from None
    del cfg


def _keys_at(path: str) -> list[str]:
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="evalharness"):
            node = OmegaConf.select(compose("config"), path)
    except Exception:  # noqa: BLE001 - only a hint for the error message
        return []
    return sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []


def load_preset(group: str, name: str) -> dict[str, Any]:
    """``conf/<group>/<name>.yaml`` as a plain dict (resolved)."""
    container = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml"), resolve=True)
    assert isinstance(container, dict)
    return container
