"""The bounds of the 8-D proprioceptive state that hold for every step (see env.py).

Only the end-effector position has one: the grip site hangs from the arm's mount through
rigid links and hinge joints, so however the joints turn, its distance from the mount is
at most the sum of the links' offsets (the triangle inequality). MuJoCo computes the
site's position from that chain by forward kinematics, so no physics error (a soft joint
limit overshot, a solver blow-up) can put it further away. The mount is fixed in the
world but placed per scene, so the bound is computed from each env's model.

The axis-angle and the gripper have no such bound (env.py says why) and stay infinite.
"""

from __future__ import annotations

import numpy as np

# Room for the rounding of forward kinematics (float64 sums over ~12 bodies): far above it,
# far below anything a policy would notice.
ROUNDING_MARGIN_M = 1e-4

_HINGE, _BALL = 3, 1  # mujoco.mjtJoint: rotations keep the distance to the joint's anchor


def reach_radius(model, site_id: int) -> tuple[int, float] | None:
    """(the deepest body fixed to the world above the site, an upper bound on the site's
    distance from that body's origin), or None when a joint on the way translates (slide,
    free), so that no such bound exists.

    Each body below the fixed one adds its offset from its parent; each rotating joint in it
    moves the body's origin around the joint's anchor, by at most twice the anchor's offset.
    """
    radius = float(np.linalg.norm(model.site_pos[site_id]))
    body = int(model.site_bodyid[site_id])
    while int(model.body_weldid[body]) != 0:  # weldid 0: rigidly attached to the world
        radius += float(np.linalg.norm(model.body_pos[body]))
        first, count = int(model.body_jntadr[body]), int(model.body_jntnum[body])
        for joint in range(first, first + count):
            if int(model.jnt_type[joint]) not in (_HINGE, _BALL):
                return None
            radius += 2.0 * float(np.linalg.norm(model.jnt_pos[joint]))
        body = int(model.body_parentid[body])
    return body, radius


def state_bounds(model, eef_site_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)`` float32[8] for ``LiberoEnv``'s state: the position inside the box
    around the arm's mount that its reach allows; everything else infinite."""
    import mujoco

    low = np.full(8, -np.inf)
    high = np.full(8, np.inf)
    reach = reach_radius(model, eef_site_id)
    if reach is not None:
        mount, radius = reach
        data = mujoco.MjData(model)  # a scratch copy: the env's own state is not touched
        mujoco.mj_kinematics(model, data)
        center = np.array(data.xpos[mount], dtype=np.float64)
        low[:3] = center - (radius + ROUNDING_MARGIN_M)
        high[:3] = center + (radius + ROUNDING_MARGIN_M)
    # float32 rounding outward, so a float32 observation on the bound is inside.
    low32 = np.nextafter(low.astype(np.float32), np.float32(-np.inf))
    high32 = np.nextafter(high.astype(np.float32), np.float32(np.inf))
    return np.where(np.isinf(low), -np.inf, low32).astype(np.float32), np.where(np.isinf(high), np.inf, high32).astype(np.float32)
