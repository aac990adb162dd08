"""Video names (evalharness.episode.video_names): one file per episode, checked when the plan is built.

No simulator: names are a function of the planned specs. The end-to-end check (a real
perturbed run writing two distinct, decodable videos per pair) is in
tests/test_perturb_videos.py.
"""

from __future__ import annotations

import dataclasses

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from evalharness.config.conf import CONF_DIR
from evalharness.plan.perturbed import perturb_plan
from evalharness.perturb.config import load_perturb_config
from evalharness.plan.build import build_plan
from evalharness.episode.video_selection import video_decisions
from evalharness.episode.video import video_filename
from evalharness.episode.video_names import VideoNameCollision, check_unique_video_names, video_name, video_stem

PLAN = build_plan("libero_spatial", [0, 3], None, [0, 1, 2], 7, "ctx")
OUTCOMES = ("success", "failure", "error")


def _node(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg.perturb, resolve=True)


def _perturbed(*overrides: str):
    return perturb_plan(PLAN, load_perturb_config(_node(*overrides)))


def test_unperturbed_episodes_keep_todays_names() -> None:
    """A resumed run folder stays valid: the name a perturb=none episode always had."""
    for spec in PLAN:  # the call EpisodeRecorder made before names had a perturbation tag
        for outcome in OUTCOMES:
            today = video_filename(spec.suite, spec.task_index, spec.task_name, spec.init_state, outcome)
            assert video_name(spec, outcome) == today
    assert video_name(PLAN[0], "failure") == (
        "libero_spatial_t00_pick_up_the_black_bowl_between_the_plate_and_the_ramekin_and_place_it_on_the_pla"
        "_init000_failure.mp4"
    )
    # The clean twin of a perturbed episode is the same spec, so the same name.
    clean_twins = [s for s in _perturbed("perturb=camera") if s.perturbation is None]
    assert [video_name(s, "failure") for s in clean_twins] == [video_name(s, "failure") for s in PLAN]


def test_a_perturbed_name_says_seed_dimensions_levels_and_a_digest() -> None:
    plan = _perturbed("perturb=[light,camera]", "perturb.level=2", "perturb.light.level=4")
    perturbed, clean = plan[0], plan[1]
    assert perturbed.control_key == clean.key
    name = video_name(perturbed, "failure")
    stem = video_name(clean, "failure").removesuffix("_failure.mp4")
    assert name.startswith(stem + "_s7_camera-L2.light-L4_p") and name.endswith("_failure.mp4")
    digest = name.removesuffix("_failure.mp4").rsplit("_p", 1)[1]
    assert len(digest) == 8 and all(c in "0123456789abcdef" for c in digest)
    assert video_stem(perturbed) == name.removesuffix("_failure.mp4")


def test_perturbed_episodes_and_their_twins_never_share_a_name() -> None:
    for overrides in (("perturb=camera", "perturb.level=1"), ("perturb=light",), ("perturb=[camera,image]",)):
        plan = _perturbed(*overrides)
        assert len(plan) == 2 * len(PLAN)
        names = {video_name(s, outcome) for s in plan for outcome in OUTCOMES}
        assert len(names) == len(plan) * len(OUTCOMES), overrides
        check_unique_video_names(plan)  # passes
    # Different levels or dimension settings in one folder: the perturbed names differ too.
    a = _perturbed("perturb=light", "perturb.level=3")[0]
    b = _perturbed("perturb=light", "perturb.level=3", "perturb.light.modes=[dark]")[0]
    c = _perturbed("perturb=light", "perturb.level=5")[0]
    assert len({video_stem(a), video_stem(b), video_stem(c)}) == 3


def test_a_forced_collision_is_refused_when_the_plan_is_built(monkeypatch) -> None:
    """Two episodes (distinct keys) that would write one file: a bug, raised before any episode."""
    plan = _perturbed("perturb=camera")
    # 1. Two unperturbed episodes that differ only in what a name leaves out (the run context).
    twin = dataclasses.replace(PLAN[0], context="another-context")
    assert twin.key != PLAN[0].key and video_stem(twin) == video_stem(PLAN[0])
    with pytest.raises(VideoNameCollision, match=f"{PLAN[0].key} and {twin.key} would write the same video"):
        video_decisions([*PLAN, twin], "all")
    # 2. Perturbed episodes whose digests are forced equal (as if the digest were too short).
    import evalharness.episode.video_names as names

    other = _perturbed("perturb=camera", "perturb.camera.groups=[s]")
    monkeypatch.setattr(names, "perturbation_digest", lambda perturbation: "00000000")
    with pytest.raises(VideoNameCollision, match="no episode was run"):
        video_decisions([*plan, other[0]], "none")  # checked whatever the video mode
    monkeypatch.undo()
    assert video_decisions([*plan, other[0]], "none")  # the real digests tell them apart


def test_the_same_episode_planned_twice_is_not_a_collision() -> None:
    check_unique_video_names([*PLAN, *PLAN])  # same keys: one episode, one file
