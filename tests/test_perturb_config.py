"""The perturb group without a simulator: config, keys, seeded draws, corruptions, statistics.

- perturb=none plans exactly today's episodes and keys; dimensions compose;
- parameters are drawn per episode and per dimension from the seed, whatever the order;
- bad settings are one line; image corruptions and the camera orbit do what they say;
- the clean-control statistics are the exact McNemar test (checked against scipy).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from envs.libero.perturb.camera import PIVOT, TABLE_AGENTVIEW_POS, TABLE_AGENTVIEW_QUAT, orbit
from envs.libero.perturb.image import KINDS, corrupt_image
from evalharness.errors import UserInputError
from evalharness.config.conf import CONF_DIR, check_group_choices
from evalharness.plan.perturbed import perturb_plan
from evalharness.perturb.config import load_perturb_config
from evalharness.plan.spec import stable_hash
from evalharness.plan.build import build_plan
from evalharness.results.records import EpisodeRecord
from evalharness.results.robustness import robustness_groups, robustness_table
from factories import record_fields


def _node(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg.perturb, resolve=True)


PLAN = build_plan("libero_spatial", [0, 3], None, [0, 1, 2], 7, "ctx")


def test_perturb_none_is_the_default_and_keeps_todays_keys() -> None:
    config = load_perturb_config(_node())
    assert not config.active and not config.control
    plan = perturb_plan(PLAN, config)
    assert plan == PLAN
    for spec in plan:  # the key formula before the perturb group existed
        assert spec.key == stable_hash([spec.context, spec.suite, spec.task_name, spec.init_state, spec.seed])[:32]
        assert spec.perturbation is None and spec.control_key is None


def test_dimensions_compose_and_take_the_group_level() -> None:
    config = load_perturb_config(_node("perturb=[camera,light]", "perturb.level=5"))
    assert sorted(config.parts) == ["camera", "light"] and config.control
    assert {cfg["level"] for cfg in config.parts.values()} == {5}
    own = load_perturb_config(_node("perturb=camera", "perturb.camera.level=1", "perturb.level=4"))
    assert own.parts["camera"]["level"] == 1


def test_perturbed_episodes_get_drawn_parameters_in_their_keys_and_clean_twins() -> None:
    config = load_perturb_config(_node("perturb=[camera,light]"))
    plan = perturb_plan(PLAN, config)
    assert len(plan) == 2 * len(PLAN)
    perturbed, clean = plan[0::2], plan[1::2]
    assert clean == PLAN  # the twins are the unperturbed episodes themselves
    assert [p.control_key for p in perturbed] == [c.key for c in clean]
    assert len({p.key for p in perturbed} | {c.key for c in clean}) == 2 * len(PLAN)
    draws = [json.loads(p.perturbation)["candidates"][0] for p in perturbed]
    assert len({json.dumps(d, sort_keys=True) for d in draws}) == len(PLAN)  # each episode its own draw
    # Worker count / order independence: the plan reversed draws the same per episode.
    again = {s.key: s for s in perturb_plan(list(reversed(PLAN)), config)}
    assert all(again[s.key] == s for s in plan)
    # Each dimension has its own stream: camera alone draws what camera drew composed.
    alone = perturb_plan(PLAN, load_perturb_config(_node("perturb=camera")))[0::2]
    for a, b in zip(alone, perturbed):
        assert json.loads(a.perturbation)["candidates"][0]["camera"] == json.loads(b.perturbation)["candidates"][0]["camera"]
    # Another level is another episode.
    level5 = perturb_plan(PLAN, load_perturb_config(_node("perturb=[camera,light]", "perturb.level=5")))
    assert not {s.key for s in level5[0::2]} & {s.key for s in perturbed}
    without_control = perturb_plan(PLAN, load_perturb_config(_node("perturb=camera", "perturb.control=false")))
    assert len(without_control) == len(PLAN) and all(s.control_key is None for s in without_control)


def test_language_plans_the_paraphrase_as_the_instruction() -> None:
    plan = perturb_plan(PLAN, load_perturb_config(_node("perturb=language")))
    for perturbed, clean in zip(plan[0::2], plan[1::2]):
        assert perturbed.instruction != clean.instruction and "bowl" in perturbed.instruction


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["perturb=camera", "perturb.level=7"], "perturb.level=7 is not valid"),
        (["perturb=camera", "perturb.camera.groups=[hv,zoom]"], "perturb.camera.groups=['hv', 'zoom'] is not valid"),
        (["perturb=image", "perturb.image.cameras=[right_wrist_0_rgb]"], "perturb.image.cameras"),
        (["perturb=light", "perturb.max_resamples=-1"], "perturb.max_resamples=-1 is not valid"),
        (["perturb=language", "perturb.language.path=/nonexistent.json"], "perturb.language.path='/nonexistent.json' could not be read"),
    ],
)
def test_bad_settings_are_one_line(overrides, message) -> None:
    with pytest.raises(UserInputError, match=None) as info:
        load_perturb_config(_node(*overrides))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_uncovered_task_for_language_is_refused_at_planning(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"some_other_task": ["do it"]}))
    config = load_perturb_config(_node("perturb=language", f"perturb.language.path={path}"))
    with pytest.raises(UserInputError, match="has no paraphrase for task"):
        perturb_plan(PLAN, config)


def test_group_choice_lists_are_checked() -> None:
    check_group_choices(["perturb=[camera,light]"])
    with pytest.raises(UserInputError, match="perturb"):
        check_group_choices(["perturb=[camera,nope]"])


def test_cli_rejects_a_bad_level_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "evalharness", "perturb=camera", "perturb.level=0", f"output_dir={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("evalharness: error: perturb.level=0 is not valid")


# ----- image corruptions and the camera orbit ----------------------------------------------------------------

def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[16:48, 16:48] = rng.integers(60, 200, size=(32, 32, 3))
    return img


@pytest.mark.parametrize("kind", KINDS)
def test_each_corruption_changes_the_image_more_at_higher_severity(kind) -> None:
    img = _image()
    params = {"kind": kind, "seed": 3, "angle": 20.0, "sign": 1.0}
    change = []
    for severity in (1, 5):
        out = corrupt_image(img, params, severity, frame=0)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert np.array_equal(out, corrupt_image(img, params, severity, frame=0))  # deterministic
        change.append(float(np.abs(out.astype(int) - img).mean()))
    assert 0 < change[0] < change[1], (kind, change)


def test_camera_orbit_follows_libero_plus_geometry() -> None:
    base = dict(H=0.0, V=0.0, S=1.0, R=0.0, E=0.0)
    r0 = np.linalg.norm(TABLE_AGENTVIEW_POS - PIVOT)
    for p in ({"H": 60.0}, {"V": 15.0}, {"H": -75.0, "V": 10.0}):
        pos, _ = orbit(TABLE_AGENTVIEW_POS, TABLE_AGENTVIEW_QUAT, {**base, **p})
        assert np.linalg.norm(pos - PIVOT) == pytest.approx(r0)
    pos, quat = orbit(TABLE_AGENTVIEW_POS, TABLE_AGENTVIEW_QUAT, {**base, "S": 1.5})
    assert np.linalg.norm(pos - PIVOT) == pytest.approx(1.5 * r0) and np.allclose(quat, TABLE_AGENTVIEW_QUAT)
    pos, _ = orbit(TABLE_AGENTVIEW_POS, TABLE_AGENTVIEW_QUAT, {**base, "V": 15.0})
    assert pos[2] > TABLE_AGENTVIEW_POS[2]  # elevation raises the camera
    pos, quat = orbit(TABLE_AGENTVIEW_POS, TABLE_AGENTVIEW_QUAT, {**base, "R": 10.0, "E": -5.0})
    assert np.allclose(pos, TABLE_AGENTVIEW_POS) and not np.allclose(quat, TABLE_AGENTVIEW_QUAT)
    pos, _ = orbit(TABLE_AGENTVIEW_POS, TABLE_AGENTVIEW_QUAT, {**base, "H": 90.0})
    assert pos[1] == pytest.approx(TABLE_AGENTVIEW_POS[0]) and pos[0] == pytest.approx(0.0, abs=1e-9)


# ----- clean-control statistics ------------------------------------------------------------------------------

def _pairs(outcomes: list[tuple[bool | None, bool]], level: int = 3) -> list[EpisodeRecord]:
    """(perturbed success or None for invalid_perturbation, control success) per init state."""
    records = []
    for k, (pert, ctrl) in enumerate(outcomes):
        control = EpisodeRecord(**record_fields(key=f"c{k}", init_state=k, success=ctrl))
        dims = {"camera": {"level": level, "params": {}}}
        error = {"error_kind": "invalid_perturbation", "error_message": "x"} if pert is None else {}
        records += [control, EpisodeRecord(**record_fields(
            key=f"p{level}-{k}", init_state=k, success=bool(pert), control_key=control.key,
            perturbation={"parts": {}, "dimensions": dims, "attempt": 0, "applied": {}, "runtime": {}}, **error))]
    return records


def test_paired_difference_uses_the_exact_mcnemar_test() -> None:
    from scipy.stats import binomtest

    outcomes = [(False, True)] * 7 + [(True, True)] * 3 + [(True, False)] * 1 + [(None, True)] * 2
    [group] = robustness_groups(_pairs(outcomes))
    assert group["dimension"] == "camera" and group["level"] == 3 and group["pairs"] == 11
    assert group["discordant"] == [7, 1] and group["invalid_perturbation"] == 2
    assert group["perturbed"]["episodes"] == 11 and group["perturbed"]["errors"] == 2
    assert group["p_value"] == pytest.approx(binomtest(7, 8, 0.5).pvalue)
    assert group["diff"] == pytest.approx((4 - 10) / 11) and group["within_noise"] is True  # p = 0.07
    strong = robustness_groups(_pairs([(False, True)] * 9 + [(True, True)] * 2))[0]
    assert strong["p_value"] < 0.05 and strong["within_noise"] is False


def test_robustness_table_has_the_overall_mean_and_footnote() -> None:
    records = _pairs([(False, True)] * 9 + [(True, True)] * 1, level=2) + _pairs([(True, True)] * 4, level=5)
    text = robustness_table(records, per_level=True)
    assert "| camera | 2 | 10.0 [" in text and "Δ -90.0*" in text
    assert "| camera | 5 | 100.0 [" in text and "Δ +0.0 |" in text
    assert "**55.0**" in text and "¹ Overall = unweighted mean" in text
    pooled = robustness_table(records)
    assert "| camera | " in pooled and "n=14" in pooled


def test_a_partial_perturbed_run_is_read_with_its_perturbed_episodes(tmp_path: Path) -> None:
    """Readers rebuild the planned keys from run.json; the perturbed twins' keys are among them."""
    from evalharness.results.runs import load_run

    node = _node("perturb=[camera,light]")
    plan = perturb_plan(build_plan("libero_spatial", [0], None, [0, 1], 7, "ctx"), load_perturb_config(node))
    config = {"suite": {"name": "libero_spatial", "tasks": [0], "init_states": [0, 1]}, "perturb": node}
    (tmp_path / "run.json").write_text(json.dumps({"context": "ctx", "context_inputs": {"protocol": {"seed": 7}}, "config": config}))
    lines = [
        EpisodeRecord(**record_fields(key=s.key, suite=s.suite, task_index=s.task_index, task_name=s.task_name,
                                      init_state=s.init_state, seed=7, control_key=s.control_key,
                                      perturbation={"dimensions": {"camera": {"level": 3}, "light": {"level": 3}}} if s.perturbation else None))
        for s in plan[:3]
    ]
    (tmp_path / "episodes.jsonl").write_text("".join(r.to_json_line() + "\n" for r in lines))
    run = load_run(tmp_path)
    assert run.partial and "3 of 4 episodes recorded" in run.partial
    assert [r.key for r in run.records] == [s.key for s in plan[:3]]
    assert run.summary.robustness[0].dimension == "camera+light" and run.summary.robustness[0].pairs == 1


def test_perturbed_runs_get_their_own_folder_name_and_plain_runs_keep_theirs() -> None:
    from evalharness.perturb.config import run_name_suffix

    assert run_name_suffix(_node()) == ""
    assert run_name_suffix(_node("perturb=[light,camera]", "perturb.level=4")) == "-camera+light-L4"


@pytest.mark.parametrize("dim", sorted(p.stem for p in (CONF_DIR / "perturb").glob("*.yaml") if p.stem != "none"))
def test_each_dimension_file_sets_only_keys_of_its_settings_model(dim) -> None:
    """A dimension's keys are declared once, by its class's pydantic Settings model."""
    import yaml
    from hydra.utils import get_class

    from envs.libero.perturb.base import PerturbationSettings

    node = yaml.safe_load((CONF_DIR / "perturb" / f"{dim}.yaml").read_text())[dim]
    settings = get_class(node.pop("_target_")).Settings
    assert issubclass(settings, PerturbationSettings)
    assert set(node) <= set(settings.model_fields)


def test_a_bad_dimension_value_is_named_by_its_settings_model() -> None:
    with pytest.raises(UserInputError) as info:
        load_perturb_config(_node("perturb=runtime_move", "perturb.runtime_move.fallback_step=0"))
    assert str(info.value).startswith("perturb.runtime_move.fallback_step=0 is not valid")
    with pytest.raises(UserInputError) as info:
        load_perturb_config(_node("perturb=light", "+perturb.light.colour=red"))
    assert str(info.value) == "perturb.light.colour is not a setting; allowed: level, modes"
