"""The ``perturb`` group's settings: one pydantic model plus the chosen dimensions.

The group's node holds the shared settings (``level``, ``control``, ``max_resamples``)
and one sub-node per chosen dimension with its Hydra ``_target_`` (see conf/perturb/);
each dimension class declares its keys in its own pydantic ``Settings`` model (see
"Adding a perturbation" in :mod:`envs.libero.perturb`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from evalharness.errors import UserInputError
from evalharness.config.parts import load_part
from evalharness.config.validation import validate_settings

SHARED = ("level", "control", "max_resamples")


class PerturbSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    level: int = Field(default=3, ge=1, le=5)
    control: bool | None = None
    max_resamples: int = Field(default=5, ge=0, le=50)


@dataclass(frozen=True)
class PerturbConfig:
    """The validated group: shared settings and each dimension's config (level filled in)."""

    settings: PerturbSettings
    parts: dict[str, dict[str, Any]]

    @property
    def active(self) -> bool:
        return bool(self.parts)

    @property
    def control(self) -> bool:
        return self.active and self.settings.control is not False


def load_perturb_config(node: dict[str, Any] | None) -> PerturbConfig:
    """Validate the ``perturb`` node; every dimension is built once to check its settings."""
    node = dict(node or {})
    parts = {k: v for k, v in node.items() if k not in SHARED}
    settings = validate_settings(PerturbSettings, {k: node[k] for k in SHARED if k in node}, "perturb")
    resolved: dict[str, dict[str, Any]] = {}
    for name, cfg in sorted(parts.items()):
        if not isinstance(cfg, dict) or "_target_" not in cfg:
            raise UserInputError(
                f"perturb.{name} is not a setting or a dimension; allowed: {', '.join(SHARED)}, "
                "or a dimension chosen with perturb=<name> (see conf/perturb/)"
            )
        cfg = dict(cfg)
        if cfg.get("level") is None:
            cfg["level"] = settings.level
        resolved[name] = cfg
    config = PerturbConfig(settings, resolved)
    build_parts(config.parts)  # bad dimension settings fail here, with one line
    return config


def build_parts(parts: dict[str, dict[str, Any]]) -> list[Any]:
    """The dimensions, built in name order (the order they are applied in).

    Each is a part (:mod:`evalharness.config.parts`): the class its ``_target_`` names,
    built from its ``Settings`` model validated with one-line errors (``perturb.<name>.<key>``).
    """
    from envs.libero.perturb.base import Perturbation

    built = []
    for name in sorted(parts):
        cls, settings = load_part("perturb", parts[name], Perturbation, prefix=f"perturb.{name}")
        if cls.name != name:
            raise UserInputError(f"perturb.{name}: its _target_ is the {cls.name!r} dimension; allowed: a {name} dimension")
        built.append(cls(**{key: getattr(settings, key) for key in type(settings).model_fields}))
    return built


def run_name_suffix(node: Any) -> str:
    """``-camera+light-L3`` for a perturbed run, ``""`` for perturb=none (names unchanged).

    Used by conf/config.yaml's ``run_name`` (resolver ``perturb_suffix``), so a perturbed
    run (and each level) gets its own results folder by default.
    """
    from omegaconf import DictConfig, OmegaConf

    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    parts = sorted(k for k, v in (node or {}).items() if k not in SHARED and isinstance(v, dict))
    if not parts:
        return ""
    return f"-{'+'.join(parts)}-L{(node or {}).get('level')}"


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("perturb_suffix", run_name_suffix, replace=True)
