"""``scripted``: a pick-and-place controller that reads object poses from the simulator.

It completes LIBERO-Object tasks ("pick up the X and place it in the basket") without
looking at images, so a low score means the harness (env, protocol, action path) is
broken, not that a model is weak. It is also the default demo, so it is kept simple and
deterministic: a phase state machine driving a proportional controller on the
end-effector position, with the orientation held where the episode started.

Phases (one action per query, closed loop):

``approach``  move above the grasp point at ``transit_z`` (high enough to clear every
              object); the grasp point is the object's centre, or for a flat box with a
              taller object beside it, a point along the box that keeps the palm off that
              object (:func:`grasp_offset_x`);
``descend``   go straight down to the grasp height, tracking the object's x-y;
``grasp``     hold still and close the gripper for ``grasp_steps`` steps;
``lift``      raise the object to ``carry_z`` (its bottom clears the basket rim);
``transport`` carry it until the *object* (not the hand) is above the basket;
``lower``     lower it until its centre is ``release_height`` above the basket base;
``release``   open the gripper for ``release_steps`` steps;
``retreat``   go back up; the engine has normally stopped on success by then.

If the object slips (it stops following the hand) or lands outside the basket, the
controller opens, rises and starts again from ``approach``. Every moving phase has a
timeout after which it moves on, so the machine never stalls.

Geometry facts it relies on (measured in LIBERO-Object, MuJoCo 3.3.2): the floor is at
world z = 0; every object's ``<name>_pos`` is its geometric centre; objects stand axis-
aligned with their narrow side along world y, which is the axis the Panda fingers close
along when the hand points down as in LIBERO's initial states; the tallest object is
0.146 m and the basket rim is 0.141 m above the floor; a robosuite OSC_POSE delta of 1.0
moves the hand about 1.2 cm per 20 Hz step.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import numpy as np

from pydantic import BaseModel, ConfigDict, Field

from evalharness.config.validation import validate_settings
from evalharness.policies.base import Policy

_Positive = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
_Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_Steps = Annotated[int, Field(strict=True, ge=1)]


class ScriptedSettings(BaseModel):
    """``policy=scripted`` (``conf/policy/scripted.yaml``; the defaults are the constructor's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    position_gain: _Positive
    rotation_gain: Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
    transit_z: _Number
    carry_z: _Number
    grasp_offset: _Number
    min_grasp_z: _Number
    release_height: _Number
    grasp_steps: _Steps
    release_steps: _Steps
    position_tolerance: _Positive
    slip_tolerance: _Positive
    basket_radius: _Positive
    phase_timeout: _Steps

#: Objects LIBERO-Object instructions name, as they appear in the simulator
#: (``<name>_<n>_pos``). Multi-word names are matched as whole word sequences.
KNOWN_OBJECTS: tuple[str, ...] = (
    "alphabet_soup",
    "cream_cheese",
    "salad_dressing",
    "bbq_sauce",
    "ketchup",
    "tomato_sauce",
    "butter",
    "milk",
    "chocolate_pudding",
    "orange_juice",
)

#: Containers an object can be placed in.
KNOWN_CONTAINERS: tuple[str, ...] = ("basket",)

#: Half extents (x, y, z) in metres of the objects' collision geometry as they stand in
#: LIBERO-Object scenes (always axis-aligned the same way; measured with MuJoCo 3.3.2).
#: Used only to grasp flat boxes off-centre when a taller neighbour is under the hand.
OBJECT_HALF_EXTENTS: dict[str, tuple[float, float, float]] = {
    "alphabet_soup": (0.031, 0.031, 0.038),
    "cream_cheese": (0.041, 0.022, 0.009),
    "salad_dressing": (0.018, 0.027, 0.073),
    "bbq_sauce": (0.015, 0.024, 0.054),
    "ketchup": (0.019, 0.028, 0.073),
    "tomato_sauce": (0.031, 0.031, 0.038),
    "butter": (0.038, 0.020, 0.009),
    "milk": (0.027, 0.027, 0.066),
    "chocolate_pudding": (0.040, 0.023, 0.014),
    "orange_juice": (0.027, 0.027, 0.066),
    "basket": (0.079, 0.085, 0.075),
}
#: Assumed for objects not in the table: a large bottle (never grasped off-centre).
DEFAULT_HALF_EXTENTS: tuple[float, float, float] = (0.035, 0.035, 0.075)

# The Panda hand (palm) seen from above, relative to the grip site, hand pointing down:
# x within +-HAND_HALF_X, y (the finger axis) within +-HAND_HALF_Y, lowest point
# HAND_BOTTOM above the grip site. Anything taller under it stops the descent.
HAND_HALF_X = 0.022
HAND_HALF_Y = 0.10
HAND_BOTTOM = 0.03
#: The finger pads (0.016 m wide in x) stay this far inside a box grasped off-centre.
PAD_MARGIN_X = 0.012

#: Spellings normalized to the simulator's words before matching.
_ALIASES: dict[str, str] = {"barbecue": "bbq", "barbeque": "bbq", "b.b.q.": "bbq"}

PHASES: tuple[str, ...] = ("approach", "descend", "grasp", "lift", "transport", "lower", "release", "retreat")
# Phases in which the object is in the hand: a slip sends the machine back to approach.
CARRYING: frozenset[str] = frozenset({"lift", "transport", "lower"})
#: One step of the machine: (hand target xyz, gripper command: -1 open, 1 closed).
Step = tuple[np.ndarray, float]


def _words(text: str) -> list[str]:
    """Lower-case words of ``text`` with aliases applied (punctuation and '_' split words)."""
    lowered = text.lower()
    for alias, word in _ALIASES.items():
        lowered = lowered.replace(alias, word)
    return re.findall(r"[a-z0-9]+", lowered)


def _find_name(words: list[str], names: tuple[str, ...]) -> str | None:
    """The longest name whose words occur contiguously in ``words``; the first on ties."""
    best: str | None = None
    for name in names:
        parts = name.split("_")
        n = len(parts)
        if any(words[i : i + n] == parts for i in range(len(words) - n + 1)):
            if best is None or n > len(best.split("_")):
                best = name
    return best


def object_from_instruction(instruction: str) -> str:
    """The simulator name (e.g. ``"alphabet_soup"``) of the object the instruction picks up.

    Raises ``ValueError`` naming the instruction when no known object is mentioned.
    """
    words = _words(instruction)
    # Only the part before "place"/"put" names the object; the rest names the container.
    for verb in ("place", "put"):
        if verb in words:
            words = words[: words.index(verb)]
            break
    name = _find_name(words, KNOWN_OBJECTS)
    if name is None:
        raise ValueError(
            f"scripted policy: instruction {instruction!r} names none of the objects it can "
            f"pick up ({', '.join(n.replace('_', ' ') for n in KNOWN_OBJECTS)})"
        )
    return name


def container_from_instruction(instruction: str) -> str:
    """The simulator name of the container the instruction places the object in."""
    name = _find_name(_words(instruction), KNOWN_CONTAINERS)
    if name is None:
        raise ValueError(
            f"scripted policy: instruction {instruction!r} names none of the containers it can "
            f"place into ({', '.join(KNOWN_CONTAINERS)})"
        )
    return name


def resolve_instance(name: str, privileged: dict[str, Any]) -> str:
    """The instance key prefix (``"alphabet_soup_1"``) of ``name`` in the privileged state.

    Takes the lowest-numbered instance; raises ``ValueError`` listing what is there if none.
    """
    pattern = re.compile(rf"^{re.escape(name)}_(\d+)_pos$")
    found = sorted((int(m.group(1)), key[: -len("_pos")]) for key in privileged if (m := pattern.match(key)))
    if not found:
        present = sorted(key[: -len("_pos")] for key in privileged if key.endswith("_pos"))
        raise ValueError(f"scripted policy: no {name!r} in the privileged state; objects present: {present}")
    return found[0][1]


def _category(instance: str) -> str:
    """``"tomato_sauce_1"`` -> ``"tomato_sauce"``."""
    return re.sub(r"_\d+$", "", instance)


def grasp_offset_x(
    target: str,
    target_pos: np.ndarray,
    others: dict[str, np.ndarray],
    grasp_z: float,
    margin: float = 0.005,
    step: float = 0.002,
) -> float:
    """How far along x to grasp ``target`` from its centre so the palm misses its neighbours.

    The palm is long along y (the finger axis) and reaches down to ``HAND_BOTTOM`` above
    the grip site, so when a flat box is grasped near the floor a taller object beside it
    (within the palm's y span) can stop the hand before the fingers reach the box. Boxes
    longer in x than the pads can be held off-centre: this returns the smallest shift
    (within the box's slack) that leaves ``margin`` between palm and every such object,
    or the shift with the most room when none does. Only boxes longer in x than in y
    (cream cheese, butter, chocolate pudding) are shifted; round and narrow objects get 0.

    ``others`` maps instance names (``"milk_1"``) to centre positions; objects are assumed
    to stand on their base, axis-aligned as in LIBERO-Object.
    """
    half_x, half_y, _ = OBJECT_HALF_EXTENTS.get(_category(target), DEFAULT_HALF_EXTENTS)
    is_box_along_x = _category(target) in OBJECT_HALF_EXTENTS and half_x > half_y + 0.005
    slack = max(0.0, half_x - PAD_MARGIN_X) if is_box_along_x else 0.0
    hand_bottom = grasp_z + HAND_BOTTOM
    blockers = []
    for name, pos in others.items():
        ox, oy, oz = OBJECT_HALF_EXTENTS.get(_category(name), DEFAULT_HALF_EXTENTS)
        if pos[2] + oz > hand_bottom and abs(pos[1] - target_pos[1]) < HAND_HALF_Y + oy:
            blockers.append((float(pos[0]) - ox, float(pos[0]) + ox))

    def clearance(dx: float) -> float:
        lo = target_pos[0] + dx - HAND_HALF_X
        hi = target_pos[0] + dx + HAND_HALF_X
        return min((max(b_lo - hi, lo - b_hi) for b_lo, b_hi in blockers), default=np.inf)

    n = int(np.floor(slack / step + 1e-9))
    candidates = [0.0] + [sign * i * step for i in range(1, n + 1) for sign in (-1.0, 1.0)]
    for dx in candidates:
        if clearance(dx) >= margin:
            return dx
    return max(candidates, key=clearance)  # first (smallest shift) among equals


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of quaternions in x, y, z, w order."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def orientation_error(target_xyzw: np.ndarray, current_xyzw: np.ndarray) -> np.ndarray:
    """World-frame axis-angle (rad) rotating ``current`` onto ``target``.

    robosuite's OSC applies rotation deltas in the world frame (goal = R(delta) @ current),
    so this is the delta that removes the error.
    """
    target = np.asarray(target_xyzw, dtype=np.float64)
    current = np.asarray(current_xyzw, dtype=np.float64)
    target = target / np.linalg.norm(target)
    current = current / np.linalg.norm(current)
    conj = np.array([-current[0], -current[1], -current[2], current[3]])
    q = _quat_mul(target, conj)
    if q[3] < 0.0:  # the short way round
        q = -q
    sin_half = float(np.linalg.norm(q[:3]))
    if sin_half < 1e-9:
        return np.zeros(3)
    angle = 2.0 * np.arctan2(sin_half, q[3])
    return q[:3] / sin_half * angle


def _clip_vector(v: np.ndarray) -> np.ndarray:
    """Scale ``v`` down so that every entry is within [-1, 1], keeping its direction."""
    peak = float(np.max(np.abs(v))) if v.size else 0.0
    return v / peak if peak > 1.0 else v


class ScriptedPickPlace(Policy):
    """Privileged-state pick-and-place for "pick up the X and place it in the basket".

    Parameters (metres in the world frame, floor at z = 0):

    - ``position_gain``: action units per metre of position error (10: saturate beyond
      10 cm); higher overshoots because the OSC lags about two steps.
    - ``rotation_gain``: action units per radian of orientation error, holding the
      orientation the hand had at the episode's first query.
    - ``transit_z``: hand height when moving over the table empty; the open fingers
      (1 cm below the grip site) clear the tallest object (0.146 m).
    - ``carry_z``: hand height when carrying; the object hangs up to ~7 cm below the hand
      and must clear the basket rim (0.141 m) and the other objects.
    - ``grasp_offset``: grasp height relative to the object's centre.
    - ``min_grasp_z``: lowest grasp height, so the fingertips (1 cm below the grip site)
      stay off the floor when grasping flat objects (cream cheese, butter).
    - ``release_height``: the object's centre above the basket base when it is let go
      (above the rim, so the fingers never touch the basket).
    - ``grasp_steps`` / ``release_steps``: steps the gripper is commanded closed / open
      before moving on; the fingers take ~8 steps to close.
    - ``position_tolerance``: how close (m) a target must be to count as reached.
    - ``slip_tolerance``: how far (m) the object may drift from where it sat in the hand
      before the grasp counts as lost.
    - ``basket_radius``: how far (m, in x-y) from the basket centre a released object may
      be and still count as in the basket (LIBERO's region is +-0.061 m).
    - ``phase_timeout``: steps after which a moving phase moves on regardless.
    """

    name = "scripted"
    needs_privileged_state = True
    cameras: tuple[str, ...] = ()  # reads object poses, never images: nothing to render

    def __init__(
        self,
        position_gain: float = 10.0,
        rotation_gain: float = 1.0,
        transit_z: float = 0.25,
        carry_z: float = 0.30,
        grasp_offset: float = 0.0,
        min_grasp_z: float = 0.012,
        release_height: float = 0.17,
        grasp_steps: int = 10,
        release_steps: int = 8,
        position_tolerance: float = 0.01,
        slip_tolerance: float = 0.04,
        basket_radius: float = 0.05,
        phase_timeout: int = 60,
    ) -> None:
        settings = validate_settings(ScriptedSettings, {
            "position_gain": position_gain, "rotation_gain": rotation_gain, "transit_z": transit_z,
            "carry_z": carry_z, "grasp_offset": grasp_offset, "min_grasp_z": min_grasp_z,
            "release_height": release_height, "grasp_steps": grasp_steps, "release_steps": release_steps,
            "position_tolerance": position_tolerance, "slip_tolerance": slip_tolerance,
            "basket_radius": basket_radius, "phase_timeout": phase_timeout}, "policy")
        for key, value in settings.model_dump().items():
            setattr(self, key, value)
        self._object: str | None = None
        self._container: str | None = None
        self._reset_episode_state()

    # ----- Policy interface ------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "position_gain": self.position_gain,
            "rotation_gain": self.rotation_gain,
            "transit_z": self.transit_z,
            "carry_z": self.carry_z,
            "grasp_offset": self.grasp_offset,
            "min_grasp_z": self.min_grasp_z,
            "release_height": self.release_height,
            "grasp_steps": self.grasp_steps,
            "release_steps": self.release_steps,
            "position_tolerance": self.position_tolerance,
            "slip_tolerance": self.slip_tolerance,
            "basket_radius": self.basket_radius,
            "phase_timeout": self.phase_timeout,
        }

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        """Parse the instruction (``ValueError`` if it names no known object) and start over.

        ``seed`` and ``init_state`` are ignored: the controller is deterministic and must
        not know which init state it is in.
        """
        self._object = object_from_instruction(instruction)
        self._container = container_from_instruction(instruction)
        self._reset_episode_state()

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        """One action, shape (1, 7): closed loop, so the engine re-plans every step."""
        if self._object is None or self._container is None:
            raise RuntimeError("scripted policy: call reset(instruction, seed=...) before act()")
        privileged = observation.get("privileged")
        if not privileged:
            raise ValueError("scripted policy: the observation has no 'privileged' state (needs_privileged_state)")
        robot = observation["robot"]
        eef = np.asarray(robot["robot0_eef_pos"], dtype=np.float64)
        quat = np.asarray(robot["robot0_eef_quat"], dtype=np.float64)
        if self._obj_key is None or self._box_key is None:
            self._obj_key = resolve_instance(self._object, privileged)
            self._box_key = resolve_instance(self._container, privileged)
        obj = np.asarray(privileged[f"{self._obj_key}_pos"], dtype=np.float64)
        box = np.asarray(privileged[f"{self._box_key}_pos"], dtype=np.float64)
        if self._hold_quat is None:
            self._hold_quat = quat.copy()
        if self._phase == "approach":
            others = {
                key[: -len("_pos")]: np.asarray(value, dtype=np.float64)
                for key, value in privileged.items()
                if key.endswith("_pos") and key != f"{self._obj_key}_pos"
            }
            self._dx = grasp_offset_x(self._obj_key, obj, others, self._grasp_z(obj))

        target, gripper = self._step_machine(eef, obj, box)
        action = np.zeros(7)
        action[:3] = _clip_vector(self.position_gain * (target - eef))
        action[3:6] = _clip_vector(self.rotation_gain * orientation_error(self._hold_quat, quat))
        action[6] = gripper
        return action[None, :]

    # ----- the phase machine -----------------------------------------------------------

    @property
    def phase(self) -> str:
        """The current phase (for tests and debugging)."""
        return self._phase

    @property
    def retries(self) -> int:
        """How many times this episode the controller started over."""
        return self._retries

    def _reset_episode_state(self) -> None:
        self._phase = "approach"
        self._phase_steps = 0
        self._retries = 0
        self._obj_key: str | None = None
        self._box_key: str | None = None
        self._hold_quat: np.ndarray | None = None
        self._dx = 0.0  # grasp point along x from the object's centre (see grasp_offset_x)
        self._grasp_xyz = np.zeros(3)  # where the hand closed
        self._in_hand = np.zeros(3)  # object centre minus hand once grasped
        self._release_xyz = np.zeros(3)  # where the hand opened
        self._start_over = False  # retreat leads back to approach whatever the object does

    def _enter(self, phase: str) -> None:
        self._phase = phase
        self._phase_steps = 0

    def _grasp_z(self, obj: np.ndarray) -> float:
        return max(float(obj[2]) + self.grasp_offset, self.min_grasp_z)

    def _slipped(self, eef: np.ndarray, obj: np.ndarray) -> bool:
        return float(np.linalg.norm(obj - eef - self._in_hand)) > self.slip_tolerance

    def _give_up_grasp(self) -> None:
        """Open, rise to transit height, then start again from ``approach``."""
        self._retries += 1
        self._start_over = True
        self._enter("retreat")

    def _step_machine(self, eef: np.ndarray, obj: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float]:
        """Advance the phase given the current poses; return (hand target, gripper command).

        Each phase is a method that returns the step, or None when its exit condition
        already holds: it has entered the next phase, which then runs within the same
        step, so no step is wasted. The loop is bounded because every chain of hand-overs
        ends in a phase that returns.
        """
        for _ in range(2 * len(PHASES)):
            self._phase_steps += 1
            timed_out = self._phase_steps > self.phase_timeout
            if self._phase in CARRYING and self._slipped(eef, obj):
                self._give_up_grasp()
                continue
            phase_step = getattr(self, f"_phase_{self._phase}", None)
            if phase_step is None:
                raise AssertionError(f"unknown phase {self._phase!r}")
            step = phase_step(eef, obj, box, timed_out)
            if step is not None:
                return step
        raise AssertionError("scripted policy: the phase machine did not settle")  # pragma: no cover

    def _over_box(self, box: np.ndarray) -> np.ndarray:
        """Where the hand goes to put the object, not the hand, above the basket centre."""
        return np.array([box[0] - self._in_hand[0], box[1] - self._in_hand[1], self.carry_z])

    def _phase_approach(self, eef: np.ndarray, obj: np.ndarray, box: np.ndarray, timed_out: bool) -> Step | None:
        target = np.array([obj[0] + self._dx, obj[1], max(self.transit_z, self._grasp_z(obj))])
        if np.linalg.norm((target - eef)[:2]) < 1.5 * self.position_tolerance or timed_out:
            self._enter("descend")
            return None
        return target, -1.0

    def _phase_descend(self, eef: np.ndarray, obj: np.ndarray, box: np.ndarray, timed_out: bool) -> Step | None:
        tol = self.position_tolerance
        target = np.array([obj[0] + self._dx, obj[1], self._grasp_z(obj)])
        err = target - eef
        if np.linalg.norm(err[:2]) > 4 * tol:
            # The object moved (pushed by a finger): line up again from above.
            self._enter("approach")
            return np.array([eef[0], eef[1], self.transit_z]), -1.0
        if (np.linalg.norm(err[:2]) < tol and abs(err[2]) < tol) or timed_out:
            self._grasp_xyz = target
            self._enter("grasp")
            return None
        return target, -1.0

    def _phase_grasp(self, eef: np.ndarray, obj: np.ndarray, box: np.ndarray, timed_out: bool) -> Step | None:
        if self._phase_steps > self.grasp_steps:
            self._in_hand = obj - eef
            self._enter("lift")
            return None
        return self._grasp_xyz, 1.0

    def _phase_lift(self, eef: np.ndarray, obj: np.ndarray, box: np.ndarray, timed_out: bool) -> Step | None:
        if eef[2] > self.carry_z - 2 * self.position_tolerance or timed_out:
            self._enter("transport")
            return None
        return np.array([self._grasp_xyz[0], self._grasp_xyz[1], self.carry_z]), 1.0

    def _phase_transport(self, eef: np.ndarray, obj: np.ndarray, box: np.ndarray, timed_out: bool) -> Step | None:
        if np.linalg.norm((box - obj)[:2]) < 1.5 * self.position_tolerance or timed_out:
            self._enter("lower")
            return None
        return self._over_box(box), 1.0

    def _phase_lower(self, eef: np.ndarray, obj: np.ndarray, box: np.ndarray, timed_out: bool) -> Step | None:
        target = self._over_box(box)
        target[2] = box[2] + self.release_height - self._in_hand[2]
        if abs(eef[2] - target[2]) < self.position_tolerance or timed_out:
            self._release_xyz = target
            self._enter("release")
            return None
        return target, 1.0

    def _phase_release(self, eef: np.ndarray, obj: np.ndarray, box: np.ndarray, timed_out: bool) -> Step | None:
        if self._phase_steps > self.release_steps:
            self._enter("retreat")
            return None
        return self._release_xyz, -1.0

    def _phase_retreat(self, eef: np.ndarray, obj: np.ndarray, box: np.ndarray, timed_out: bool) -> Step | None:
        if eef[2] > self.transit_z - 2 * self.position_tolerance or timed_out:
            missed = float(np.linalg.norm((obj - box)[:2])) > self.basket_radius
            if self._start_over or missed:
                if missed and not self._start_over:
                    self._retries += 1
                self._start_over = False
                self._enter("approach")
                return None
            self._phase_steps = 0  # done: wait (the engine stops on success)
        return np.array([eef[0], eef[1], self.transit_z]), -1.0
