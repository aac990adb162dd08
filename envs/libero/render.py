"""Camera frames from a robosuite sim with only the GL draw and the readback per camera.

robosuite 1.4.0's ``MjSim.render(camera_name=..., width, height)`` per camera: looks the
camera up by name, takes a process-wide lock, checks the offscreen buffer size, rebuilds
the whole abstract scene with ``mjv_updateScene`` (every geom, light and skin, read from
the model and data), draws it (``mjr_render``) and reads the pixels back
(``mjr_readPixels``). With two cameras at one state the scene is rebuilt twice, though
only the camera differs.

:class:`FrameRenderer` draws into robosuite's own render context (same GL context,
scene, options and buffers) and per call: makes the context current once, rebuilds the
scene once, and for every further camera only moves the camera and the headlight that
follows it (``mjv_updateCamera``, ``mjv_makeLights``); the geoms do not depend on the
camera. Camera ids are looked up once. Frames are
byte-identical to ``MjSim.render`` at the same state (``tests/test_render_path.py``),
still in OpenGL's bottom-up row order; no flip or copy is added here.

What remains per frame is the draw and the readback; on a CPU (Mesa llvmpipe) they are
all but the whole cost, on a GPU the saved scene rebuild is a larger share.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class FrameRenderer:
    """Renders named cameras of ``sim`` (a robosuite ``MjSim``) at ``height`` x ``width``."""

    def __init__(self, sim, height: int, width: int, cameras: Sequence[str]) -> None:
        import mujoco

        self._mujoco = mujoco
        self._sim = sim
        self.height, self.width = height, width
        self._camera_ids = {name: sim.model.camera_name2id(name) for name in cameras}
        self._viewport = mujoco.MjrRect(0, 0, width, height)

    def render(self, cameras: Sequence[str]) -> dict[str, np.ndarray]:
        """Frames of ``cameras`` at the current state, uint8 (H, W, 3), bottom-up rows."""
        from robosuite.utils.binding_utils import _MjSim_render_lock

        mujoco = self._mujoco
        context = self._sim._render_context_offscreen
        model, data = self._sim.model._model, self._sim.data._data
        frames: dict[str, np.ndarray] = {}
        if not cameras:
            return frames
        with _MjSim_render_lock:
            # robosuite renders into whatever GL context is current; with two envs in one
            # process that is not necessarily this one's.
            context.gl_ctx.make_current()
            if self.width > context.con.offWidth or self.height > context.con.offHeight:
                context.update_offscreen_size(
                    max(self.width, model.vis.global_.offwidth), max(self.height, model.vis.global_.offheight)
                )
            camera, scene = context.cam, context.scn
            camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
            for i, name in enumerate(cameras):
                camera.fixedcamid = self._camera_ids[name]
                if i == 0:
                    mujoco.mjv_updateScene(
                        model, data, context.vopt, context.pert, camera, mujoco.mjtCatBit.mjCAT_ALL, scene
                    )
                else:
                    # The geoms do not depend on the camera; the headlight follows it.
                    mujoco.mjv_updateCamera(model, data, camera, scene)
                    mujoco.mjv_makeLights(model, data, scene)
                mujoco.mjr_render(self._viewport, scene, context.con)
                frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
                mujoco.mjr_readPixels(frame, None, self._viewport, context.con)
                frames[name] = frame
        return frames


def free_render_context(sim) -> None:
    """Free ``sim``'s GL resources while its own GL context is current.

    robosuite frees a render context in ``__del__`` without making it current, so the
    GL objects it deletes by id belong to whichever context is current then, typically
    another live env's, whose frames then come out as garbage. Freed here, the later
    ``__del__`` finds nothing left to free.
    """
    context = getattr(sim, "_render_context_offscreen", None)
    if context is None:
        return
    context.gl_ctx.make_current()
    context.con.free()
    context.gl_ctx.free()
