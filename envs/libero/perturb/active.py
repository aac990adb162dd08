"""The perturbation of one episode: its dimensions, their drawn parameters, validity.

The env holds one of these between resets (``LiberoEnv.reset_to(..., perturbation=...)``)
and calls its hooks; the harness resamples (``attempt``) when :meth:`problems` reports the
perturbed scene invalid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from envs.libero.perturb.base import ModelPatch, Perturbation
from envs.libero.perturb.scene import contact_pairs, object_positions, object_speeds, refresh

if TYPE_CHECKING:
    from envs.libero.env import LiberoEnv

#: An object still moving faster than this after the settle steps makes the scene unstable.
STABLE_SPEED_M_S = 0.05


class ActivePerturbation:
    """``candidates[attempt][dimension name]`` holds the parameters of each resample."""

    def __init__(self, parts: list[Perturbation], candidates: list[dict[str, dict[str, Any]]]) -> None:
        if not candidates:
            raise ValueError("a perturbation needs at least one candidate parameter set")
        self.parts = parts
        self.candidates = candidates
        self.attempt = 0
        self.applied: dict[str, dict[str, Any]] = {}
        self.new_contacts: list[tuple[str, str]] = []
        self.runtime: dict[str, dict[str, Any]] = {}
        self._patch = ModelPatch()
        self._start: dict[str, np.ndarray] = {}
        self._frame = 0
        self._step = 0
        self._armed = False

    @property
    def params(self) -> dict[str, dict[str, Any]]:
        return self.candidates[self.attempt]

    @property
    def physical(self) -> bool:
        return any(p.physical for p in self.parts)

    # ----- env hooks ------------------------------------------------------------------

    def apply(self, env: "LiberoEnv") -> None:
        """Called by the env right after the init state is set."""
        self._frame, self._step, self._armed = 0, 0, False
        self.applied, self.runtime = {}, {p.name: {} for p in self.parts}
        env._sim.forward()
        before = contact_pairs(env)
        for part in self.parts:
            self.applied[part.name] = part.apply(env, self.params[part.name], self._patch)
        if self.physical:
            refresh(env)  # the state changed: the observables must show it
        else:
            # Render-only edits: recompute camera and light poses, but leave robosuite's
            # observables alone (a forced update shifts what the policy reads next step).
            env._sim.forward()
        self.new_contacts = sorted(contact_pairs(env) - before)
        self._start = object_positions(env)
        # mj_forward leaves its solution in the solver's warm start; clear it as reset_to
        # does, or a render-only edit would still change the next steps' physics.
        env._sim.data.qacc_warmstart[:] = 0.0

    def undo(self) -> None:
        """Restore every model value a dimension changed (called before the next reset)."""
        self._patch.undo()

    def corrupt(self, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for part in self.parts:
            images = part.corrupt(images, self.params[part.name], self._frame)
        self._frame += 1
        return images

    def corrupt_view(self, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The same corruption for a frame the policy does not see (a video's), not counted.

        Videos also film the control steps between queries; without this those frames would
        show the clean image in an ``image``-perturbed episode. The frame count (which seeds
        per-frame noise) is left alone, so the policy's images are the same either way.
        """
        for part in self.parts:
            images = part.corrupt(images, self.params[part.name], self._frame)
        return images

    def instruction(self) -> str | None:
        for part in self.parts:
            text = part.instruction(self.params[part.name])
            if text is not None:
                return text
        return None

    def arm(self) -> None:
        """Start counting policy steps (after the settle steps)."""
        self._armed = True

    def after_step(self, env: "LiberoEnv") -> bool:
        if not self._armed:
            return False
        self._step += 1
        changed = False
        for part in self.parts:
            if part.after_step(env, self.params[part.name], self.runtime[part.name], self._step):
                changed = True
        if changed:
            refresh(env)
        return changed

    # ----- validity -------------------------------------------------------------------

    def problems(self, env: "LiberoEnv") -> list[str]:
        """Why the perturbed scene is not a fair start (empty when it is), after settling."""
        if not self.physical:
            return []
        found = []
        if self.new_contacts:
            shown = ", ".join("-".join(p) for p in self.new_contacts[:3])
            found.append(f"new initial contacts ({shown})")
        if env.success:
            found.append("the goal is already satisfied")
        # LIBERO's init states drop objects a few cm onto their supports during the settle
        # steps, so "stable" means at rest once settled, not "where it was put".
        speeds = object_speeds(env)
        moving = {n: v for n, v in speeds.items() if v > STABLE_SPEED_M_S}
        if moving:
            name, speed = max(moving.items(), key=lambda kv: kv[1])
            found.append(f"unstable after settling ({name} still moving at {speed:.3f} m/s)")
        return found

    def record(self) -> dict[str, Any]:
        """What was applied, for the episode record (enough to replay the episode)."""
        return {
            "dimensions": {p.name: {"level": p.level, "params": self.params[p.name]} for p in self.parts},
            "attempt": self.attempt,
            "applied": self.applied,
            "runtime": {k: v for k, v in self.runtime.items() if v},
        }
