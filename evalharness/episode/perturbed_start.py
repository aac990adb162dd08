"""Start a (possibly perturbed) episode: reset, apply, settle, check validity, resample.

An unperturbed episode is exactly the old ``reset_to`` + settle. A perturbed one tries
its candidate parameter sets in order (all drawn from the episode's seed when it was
planned) until the settled scene is valid; if none is, the episode ends with
:class:`~evalharness.errors.InvalidPerturbation`, an error counted apart, never a failure.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from envs.libero.env import LiberoEnv
from envs.libero.perturb import ActivePerturbation, PlacementImpossible
from evalharness.errors import InvalidPerturbation
from evalharness.plan.spec import EpisodeSpec


@functools.lru_cache(maxsize=8)
def _parts(parts_json: str) -> list[Any]:
    from evalharness.perturb.config import build_parts

    return build_parts(json.loads(parts_json))


def active_perturbation(spec: EpisodeSpec) -> ActivePerturbation | None:
    """The spec's perturbation, ready for the env (None when it has none)."""
    if spec.perturbation is None:
        return None
    data = json.loads(spec.perturbation)
    parts = _parts(json.dumps(data["parts"], sort_keys=True))
    active = ActivePerturbation(parts, data["candidates"])
    active.parts_config = data["parts"]  # type: ignore[attr-defined]
    return active


def start_episode(
    env: LiberoEnv, spec: EpisodeSpec, active: ActivePerturbation | None,
    reset: Callable[[], None], settle: Callable[[], None],
) -> None:
    """Reset and settle; with a perturbation, until a candidate gives a valid scene.

    ``reset`` calls ``env.reset_to`` (with ``active``), ``settle`` runs the settle steps.
    """
    if active is None:
        reset()
        settle()
        return
    reasons: list[str] = []
    for attempt in range(len(active.candidates)):
        active.attempt = attempt
        try:
            reset()
        except PlacementImpossible as exc:
            reasons.append(str(exc))
            continue
        settle()
        problems = active.problems(env)
        if not problems:
            active.arm()
            return
        reasons.append("; ".join(problems))
    raise InvalidPerturbation(
        f"no valid perturbed scene after {len(active.candidates)} candidate(s); last: {reasons[-1]}"
    )


def perturbation_record(active: ActivePerturbation | None) -> dict[str, Any] | None:
    """What the episode record keeps: the dimensions' configs and what was applied."""
    if active is None:
        return None
    return {"parts": active.parts_config, **active.record()}  # type: ignore[attr-defined]
