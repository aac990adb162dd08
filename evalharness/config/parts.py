"""Choosing a part: the one way every configurable piece is picked and configured.

A part is a class with one pydantic settings model (``Settings``) and a classmethod
``from_settings(settings)``. Its config (``conf/<group>/<name>.yaml``) names the class by
Hydra's ``_target_`` and spells out every setting::

    # What it is, in one line.
    _target_: evalharness.actions.decoders.mint_uniform.MintUniformDecoder
    name: mint_uniform
    divisor: 256

:func:`build_part` loads the class, validates the rest of the config with
:func:`~evalharness.config.validation.validate_settings` (a bad key or value is one line
naming it) and builds the part. A config without ``_target_`` but with ``name: <name>``
(what a checkpoint's ``policy.yaml`` declares, and what code writes for a plain
``{"name": "none"}``) is read as ``conf/<group>/<name>.yaml`` with its keys laid over it, so
the YAML stays the single source of a part's defaults. There is no registry of names:
adding a part is adding a class and a YAML file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from evalharness.config.conf import CONF_DIR, load_preset
from evalharness.config.validation import validate_settings
from evalharness.errors import UserInputError, choices_error

__all__ = ["Part", "build_part", "build_steps", "check_steps", "is_none", "load_part", "part_names", "plain", "resolve_part"]

T = TypeVar("T")


class Part(Protocol):
    """What :func:`build_part` needs of a class named by ``_target_``."""

    Settings: type[BaseModel]

    @classmethod
    def from_settings(cls, settings: Any) -> Any: ...


def plain(cfg: Any, where: str = "config") -> dict[str, Any]:
    """A plain dict from a mapping or an OmegaConf DictConfig (resolved; lists become lists)."""
    if cfg is None:
        return {}
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    if not isinstance(cfg, Mapping):
        raise UserInputError(f"{where} {cfg!r} is not valid; allowed: a mapping")
    return dict(cfg)


def is_none(cfg: Any) -> bool:
    """A stage that does nothing: ``name: none``, or no config at all (a ``_target_`` without
    a ``name`` is a part, not ``none``)."""
    cfg = plain(cfg)
    return cfg.get("name", None if "_target_" in cfg else "none") == "none"


def part_names(group: str) -> list[str]:
    """The names a ``name:`` may take in ``group``: the stems of ``conf/<group>/*.yaml``."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def resolve_part(group: str, cfg: Any, *, default: str = "none") -> dict[str, Any]:
    """``cfg`` with its ``_target_``: as given when it names one, else from ``conf/<group>/<name>.yaml``.

    ``name`` defaults to ``default``; the keys of ``cfg`` override the file's. A config that
    gave no ``name`` keeps ``name: null`` (what it recorded before parts had files).
    """
    given = plain(cfg, f"{group} config")
    if "_target_" in given:
        return given
    name = given.get("name", default)
    allowed = part_names(group)
    if not isinstance(name, str) or name not in allowed:
        raise choices_error(group, name, allowed)
    merged = {**load_preset(group, name), **given}
    if "name" not in given:
        merged["name"] = None
    return merged


def load_part(group: str, cfg: Any, base: type[T], *, prefix: str | None = None,
              default: str = "none") -> tuple[type[T], Any]:
    """(the class ``_target_`` names, its validated settings) for a ``group`` config."""
    from hydra.utils import get_class

    resolved = resolve_part(group, cfg, default=default)
    target = resolved.pop("_target_")
    try:
        cls = get_class(str(target))
    except Exception as exc:  # noqa: BLE001 - Hydra raises ImportError or ValueError, worded its way
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserInputError(f"{prefix or group}._target_={target!r} cannot be loaded: {reason}") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise UserInputError(f"{prefix or group}._target_={target!r} is not valid; allowed: a subclass of "
                             f"{base.__module__}.{base.__qualname__}")
    settings_model = getattr(cls, "Settings", None)
    if not (isinstance(settings_model, type) and issubclass(settings_model, BaseModel)):
        raise UserInputError(f"{prefix or group}._target_={target!r} has no pydantic Settings model; a part "
                             "declares its settings as one (see evalharness/config/parts.py)")
    return cls, validate_settings(settings_model, resolved, prefix or group)


def build_part(group: str, cfg: Any, base: type[T], *, prefix: str | None = None, default: str = "none") -> T:
    """The part a ``group`` config chooses, built from its validated settings."""
    cls, settings = load_part(group, cfg, base, prefix=prefix, default=default)
    return cls.from_settings(settings)  # type: ignore[attr-defined]


def build_steps(group: str, steps: Any, base: type[T], *, where: str) -> list[T]:
    """A list of steps, each ``name``, ``{name: argument}`` or a mapping with ``_target_``.

    ``{name: argument}`` sets the one setting of ``conf/<group>/<name>.yaml`` (a scalar), or
    several (a mapping), e.g. ``{resize_with_pad: 224}`` or ``{jpeg_roundtrip: {quality: 90}}``.
    """
    if isinstance(steps, (str, bytes, Mapping)) or not isinstance(steps, Sequence):
        raise UserInputError(f"{where} {steps!r} is not valid; allowed: a list of steps")
    built: list[T] = []
    for i, step in enumerate(steps):
        built.append(build_part(group, _step_config(group, step, f"{where}[{i}]"), base, prefix=f"{where}[{i}]"))
    return built


def check_steps(group: str, steps: Any, *, where: str) -> None:
    """Validate a list of steps (names, classes, settings) without building them.

    For a config model (the protocol's ``image_transforms``) that sits below the parts it
    names; building checks the same and more.
    """
    if isinstance(steps, (str, bytes, Mapping)) or not isinstance(steps, Sequence):
        raise UserInputError(f"{where} {steps!r} is not valid; allowed: a list of steps")
    for i, step in enumerate(steps):
        load_part(group, _step_config(group, step, f"{where}[{i}]"), object, prefix=f"{where}[{i}]")


def _step_config(group: str, step: Any, where: str) -> dict[str, Any]:
    if isinstance(step, str):
        return {"name": step}
    if isinstance(step, Mapping) and "_target_" in step:
        return dict(step)
    if isinstance(step, Mapping) and len(step) == 1:
        (name, arg), = step.items()
        if isinstance(arg, Mapping):
            return {"name": name, **arg}
        if name not in part_names(group):
            raise choices_error(group, name, part_names(group))
        own = [key for key in load_preset(group, name) if key not in ("_target_", "name")]
        if len(own) != 1:
            raise UserInputError(f"{where} {{{name}: {arg!r}}} is not valid; allowed: {{{name}: {{key: value}}}} "
                                 f"with the keys of conf/{group}/{name}.yaml")
        return {"name": name, own[0]: arg}
    raise UserInputError(f"{where} {step!r} is not valid; allowed: a name or {{name: argument}}")
