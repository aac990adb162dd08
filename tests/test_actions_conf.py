"""conf/{decoder,normalize,convert}: each file names its part by _target_, spells out every setting, and composes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hydra.utils import get_class

from evalharness.actions.pipeline import build_pipeline
from evalharness.config.parts import part_names

CONF = Path(__file__).resolve().parents[1] / "conf"
FILES = [(group, name) for group in ("decoder", "normalize", "convert") for name in part_names(group)]


def load(group: str, name: str) -> dict:
    return yaml.safe_load((CONF / group / f"{name}.yaml").read_text())


@pytest.mark.parametrize("group, name", FILES)
def test_each_file_spells_out_every_setting_of_its_target(group, name):
    """The YAML is the single source of a part's defaults: no setting is left to code."""
    cfg = load(group, name)
    settings = get_class(cfg.pop("_target_")).Settings
    assert set(cfg) == set(settings.model_fields), f"conf/{group}/{name}.yaml"
    assert cfg["name"] == name
    settings.model_validate(cfg)  # the shipped values are valid settings (files are checked when built)


def test_a_name_alone_reads_its_file():
    """What a checkpoint's policy.yaml declares (``{name: ...}``) is the file's part and defaults."""
    by_name = build_pipeline({"name": "openvla_bins"}, None, {"name": "openvla"}).describe()
    by_target = build_pipeline(load("decoder", "openvla_bins"), None, load("convert", "openvla")).describe()
    assert by_name == by_target
    assert by_name["convert"]["steps"] == [{"name": "keep_first_7"}, {"name": "openvla_gripper", "gripper_dim": 6}]


def test_groups_compose_under_hydra_1_3(tmp_path):
    """Under version_base 1.3 (evaluate.py's), each group lands under its own key.

    (An explicit ``# @package _group_`` header is taken literally there: every group would
    collapse into one ``_group_`` key.)
    """
    from hydra import compose, initialize_config_dir

    for group in ("decoder", "normalize", "convert"):
        shutil.copytree(CONF / group, tmp_path / group)
    (tmp_path / "config.yaml").write_text(
        "defaults:\n  - decoder: none\n  - normalize: none\n  - convert: none\n  - _self_\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        for decoder in ("none", "mint_uniform", "openvla_bins"):
            for convert in part_names("convert"):
                cfg = compose("config", overrides=[f"decoder={decoder}", f"convert={convert}"])
                assert set(cfg) == {"decoder", "normalize", "convert"}
                assert cfg.decoder.name == decoder and cfg.convert.name == convert
                pipe = build_pipeline(cfg.decoder, cfg.normalize, cfg.convert)
                assert pipe.describe()["decoder"]["name"] == decoder


def test_a_stage_is_none_only_by_name_or_absence():
    """A stage declared by ``_target_`` alone is a part (wrapped), not ``none`` (skipped)."""
    from evalharness.config.parts import is_none

    assert is_none(None) and is_none({}) and is_none({"name": "none"})
    assert not is_none({"name": "fast"})
    assert not is_none({"_target_": "evalharness.actions.decoders.mint_uniform.MintUniformDecoder"})


def test_a_target_without_a_file_is_built_from_its_settings_alone():
    cfg = {**load("decoder", "mint_uniform"), "name": None}
    assert build_pipeline(cfg, None, None).describe() == build_pipeline({"name": "mint_uniform"}, None, None).describe()
    with pytest.raises(Exception, match="decoder.horizon is required but not given"):
        build_pipeline({k: v for k, v in cfg.items() if k != "horizon"}, None, None)
