"""The harness's soft reset gives the MuJoCo state a peer's hard reset gives, bit for bit, on every suite (issue 25).

LeRobot (``hard_reset=True``) and OpenVLA's LIBERO wrapper rebuild the MuJoCo model at
every episode; the harness keeps it (``LiberoEnv`` builds robosuite with
``hard_reset=False``) and instead clears what LIBERO's soft reset leaves behind: the
gripper's last command and the solver's warm start. If that left any trace of the previous
episode, an episode would depend on what ran before it. So here, per suite, two envs of
the same task run the same previous episode; one then resets softly (the harness), the
other with robosuite's hard reset (the peers), into the same init state. The full MuJoCo
state (time, qpos, qvel, act, ctrl) must be identical right after the reset, and all of it,
the solver's warm start included, after the protocols' 10 settle steps, which is where the
policy starts. (Right after the reset the warm starts differ: the harness zeroes it, a
hard reset keeps what its own reset computed; the first settle steps erase that without
changing a bit of the trajectory.) That holds bit for bit on libero_spatial, libero_goal,
libero_10 and libero_90. On libero_object the settled states differ by about one ulp,
and so do two *hard* resets into the same init state whose only difference is the random
object placement drawn while the model is rebuilt (which ``set_init_state`` then
overwrites): the peer's own hard reset is not bit-determined there, and the harness's soft
reset lies within that spread (``NOT_BIT_IDENTICAL``, asserted against it).
"""

from __future__ import annotations

import numpy as np
import pytest

SUITE_TASKS = (("libero_spatial", 0), ("libero_object", 1), ("libero_goal", 2), ("libero_10", 3), ("libero_90", 4))
#: Where the soft reset is not bit-identical to a hard one after settling, the measured bound.
#: libero_object: right after the reset only the warm start differs (also when the kept
#: model's data are reset with mj_resetData first), and the settled qpos differ by about one
#: ulp (1.1e-16, qvel 1.3e-14, warm start 1.1e-12): no more than two hard resets differ
#: from each other there (WITHIN_HARD_RESET_SPREAD; docs/fidelity.md).
NOT_BIT_IDENTICAL = {"libero_object": {"time": 0.0, "qpos": 1e-15, "qvel": 1e-13, "act": 0.0, "ctrl": 0.0,
                                       "qacc_warmstart": 1e-11}}
#: Measured on libero_object task 1 (soft vs hard / hard vs hard with another placement draw;
#: ``python tests/test_fidelity_reset.py``): qpos 1.1e-16 / 2.2e-16, qvel 1.3e-14 / 5.5e-15,
#: warm start 1.1e-12 / 9.9e-13.
#: The soft reset's distance to a hard reset is at most this many times two hard resets'.
WITHIN_HARD_RESET_SPREAD = 4.0
SETTLE = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0])


def _state(env) -> dict[str, np.ndarray]:
    sim = env._env.env.sim  # robosuite's current sim (a hard reset replaces it)
    data = sim.data
    return {"time": np.array([data.time]), "qpos": np.array(data.qpos), "qvel": np.array(data.qvel),
            "act": np.array(data.act), "ctrl": np.array(data.ctrl), "qacc_warmstart": np.array(data.qacc_warmstart)}


def _episode_then_reset(suite: str, task: int, *, hard: bool, placement_seed: int = 0) -> tuple[dict, dict]:
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(suite, task, camera_size=32, fast_physics=False)
    try:
        rng = np.random.default_rng(0)
        env.reset_to(0)
        for _ in range(15):  # a previous episode: the gripper closes, the arm moves, the solver warms up
            env._env.step(np.concatenate([rng.uniform(-1, 1, 6), [1.0]]))
        if hard:  # what the peers do: robosuite rebuilds the model, then the init state is set
            env._env.env.hard_reset = True
            saved = np.random.get_state()
            # reset_to's layout seed (placement_seed 0), or another draw of the rebuild's placements
            np.random.seed(np.random.SeedSequence([placement_seed, 1]).generate_state(1)[0])
            try:
                env._env.reset()
            finally:
                np.random.set_state(saved)
            env._env.set_init_state(env.init_states[1])
        else:
            env.reset_to(1)
        after_reset = _state(env)
        for _ in range(10):
            env._env.step(SETTLE)
        return after_reset, _state(env)
    finally:
        env.close()


@pytest.mark.sim
@pytest.mark.parametrize("suite, task", SUITE_TASKS)
def test_soft_reset_equals_a_hard_reset_bit_for_bit(suite, task, assets_installed):
    soft_reset, soft_settled = _episode_then_reset(suite, task, hard=False)
    hard_reset, hard_settled = _episode_then_reset(suite, task, hard=True)
    for name in soft_reset:
        if name != "qacc_warmstart":
            assert np.array_equal(soft_reset[name], hard_reset[name]), (suite, "after reset", name)
        if suite in NOT_BIT_IDENTICAL:
            worst = float(np.abs(soft_settled[name] - hard_settled[name]).max()) if soft_settled[name].size else 0.0
            assert worst <= NOT_BIT_IDENTICAL[suite][name], (suite, "after settling", name, worst)
        else:
            assert np.array_equal(soft_settled[name], hard_settled[name]), (suite, "after settling", name)
    if suite in NOT_BIT_IDENTICAL:  # the known difference is real (else this entry must go) ...
        assert not np.array_equal(soft_settled["qpos"], hard_settled["qpos"])
        # ... and it is of the size by which the peer's own hard resets differ from each other
        # when only the (overwritten) placement draw of the rebuild differs.
        _, other_hard = _episode_then_reset(suite, task, hard=True, placement_seed=1)
        for name in ("qpos", "qvel", "qacc_warmstart"):
            spread = float(np.abs(other_hard[name] - hard_settled[name]).max())
            assert spread > 0.0, (suite, name, "two hard resets were identical")
            soft = float(np.abs(soft_settled[name] - hard_settled[name]).max())
            assert soft <= WITHIN_HARD_RESET_SPREAD * spread, (suite, name, soft, spread)
    # Right after the reset only the solver's warm start differs: the harness clears it, a hard
    # reset keeps the one its own reset computed. It does not change a bit of the trajectory
    # (the settled states above, warm start included, are identical).
    assert not soft_reset["qacc_warmstart"].any()
    assert not np.array_equal(soft_settled["qpos"], soft_reset["qpos"])  # settling moved something: not vacuous


if __name__ == "__main__":  # the figures of docs/fidelity.md: python tests/test_fidelity_reset.py
    _, soft_settled = _episode_then_reset("libero_object", 1, hard=False)
    _, hard_settled = _episode_then_reset("libero_object", 1, hard=True)
    _, other_hard = _episode_then_reset("libero_object", 1, hard=True, placement_seed=1)
    for name in ("qpos", "qvel", "qacc_warmstart"):
        print(f"libero_object task 1, settled {name}: soft vs hard "
              f"{np.abs(soft_settled[name] - hard_settled[name]).max():.2g}, hard vs hard (another placement draw) "
              f"{np.abs(other_hard[name] - hard_settled[name]).max():.2g}")
