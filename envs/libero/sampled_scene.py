"""The scene at the substep where robosuite sampled the step's observation.

robosuite 1.4.0 samples its observables (the proprioception, and the camera images when
they are on) inside a control step's physics loop: an observable samples on the substep
after its sampling timer wraps, and the timer adds up float substep lengths. On LIBERO
that is the 24th of 25 substeps (``scripts/robosuite_image_lag.py`` prints it), so the
observation a step returns describes the scene one substep before the step's end. Every
peer's LIBERO loop (openpi's example, LeRobot, OpenVLA, vla-eval) gives the policy those
images, and the proprioception that goes with them.

:class:`envs.libero.env.LiberoEnv` turns robosuite's camera observables off and renders on
demand, which at the end of the step would show the arm one substep further on than the
state the policy is given (a few hundred pixels of a 128 px frame). So it watches one
proprioceptive observable instead: camera and proprioception share robosuite's sampling
rate, delay and reset, so their timers agree on every substep. When that observable
samples, :class:`SampledScene` copies the data fields the renderer reads, and the env
renders with them swapped in. The frames equal robosuite's own camera observations byte
for byte (``tests/test_vla_eval_libero.py``, ``tests/test_sampled_scene.py``).

The fields are the outputs of MuJoCo's position stage that ``mjv_updateScene``,
``mjv_updateCamera`` and ``mjv_makeLights`` read (body, geom, site, camera and light
poses, tendon wrapping, flex vertices) plus the positions they are computed from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

# Recorded in a run's metadata and context (so in every episode key): which moment the
# frames show. Runs before this module rendered at the step's end and recorded nothing.
FRAME_TIMING = "observation_sample"

# What the renderer reads from mjData; each is copied as it was when the observation sampled.
SCENE_FIELDS = (
    "qpos", "mocap_pos", "mocap_quat",
    "xpos", "xquat", "xmat", "xipos", "ximat", "xanchor", "xaxis", "subtree_com",
    "geom_xpos", "geom_xmat", "site_xpos", "site_xmat",
    "cam_xpos", "cam_xmat", "light_xpos", "light_xdir",
    "ten_wrapadr", "ten_wrapnum", "wrap_obj", "wrap_xpos", "flexvert_xpos",
)


class SampledScene:
    """Keeps the scene fields of the last substep on which ``observable`` sampled.

    ``data`` returns the env's current ``mjData`` (a hard reset would build a new one).
    Call :meth:`after_observables` after every substep's observable update, :meth:`forget`
    when the state is set outside a step (a reset), and render inside :meth:`swapped_in`.
    """

    def __init__(self, observable: Any, data: Callable[[], Any]) -> None:
        self._observable = observable
        self._data = data
        self._seen: Any = None
        self._saved: dict[str, np.ndarray] | None = None
        self._current: dict[str, np.ndarray] | None = None

    def after_observables(self) -> None:
        """Copy the scene if the watched observable sampled on this substep."""
        value = self._observable._current_observed_value  # robosuite assigns a new array per sample
        if value is self._seen:
            return
        self._seen = value
        self._saved = _copy_into(self._saved, self._data())

    def forget(self) -> None:
        """Render the live state until the next sample (after a reset: no step has run)."""
        self._seen = self._observable._current_observed_value
        self._saved = None

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The sampled fields in the live ``mjData`` for the block, the live ones restored after."""
        if self._saved is None:
            yield
            return
        data = self._data()
        live = {name: getattr(data, name) for name in SCENE_FIELDS}
        self._current = _copy_into(self._current, data)
        for name, array in live.items():
            np.copyto(array, self._saved[name])
        try:
            yield
        finally:
            for name, array in live.items():
                np.copyto(array, self._current[name])


def _copy_into(buffers: dict[str, np.ndarray] | None, data: Any) -> dict[str, np.ndarray]:
    """``data``'s scene fields copied into ``buffers`` (reused when the shapes still fit)."""
    if buffers is None:
        buffers = {}
    for name in SCENE_FIELDS:
        array = getattr(data, name)
        held = buffers.get(name)
        if held is None or held.shape != array.shape:
            buffers[name] = np.array(array)
        else:
            np.copyto(held, array)
    return buffers
