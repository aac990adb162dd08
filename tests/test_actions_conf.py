"""conf/{decoder,normalize,convert}: each file is the dict build_pipeline gets, and composes under Hydra."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from evalharness.actions.convert import PRESETS
from evalharness.actions.decoders import DECODERS
from evalharness.actions.decoders.base import COMMON_DEFAULTS
from evalharness.actions.normalize import NORMALIZERS
from evalharness.actions.pipeline import build_pipeline

CONF = Path(__file__).resolve().parents[1] / "conf"


def load(group: str, name: str) -> dict:
    return yaml.safe_load((CONF / group / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_decoder_files_spell_out_every_default(name):
    cls = DECODERS[name]
    assert load("decoder", name) == {**COMMON_DEFAULTS, **cls.DEFAULTS, "name": name}


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_normalize_files_spell_out_every_default(name):
    assert load("normalize", name) == {"name": name, **NORMALIZERS[name].DEFAULTS}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_convert_files_match_the_presets(name):
    assert load("convert", name) == PRESETS[name]


def test_every_group_file_is_known():
    assert {p.stem for p in (CONF / "decoder").glob("*.yaml")} == set(DECODERS)
    assert {p.stem for p in (CONF / "normalize").glob("*.yaml")} == set(NORMALIZERS)
    assert {p.stem for p in (CONF / "convert").glob("*.yaml")} == set(PRESETS)


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
            for convert in sorted(PRESETS):
                cfg = compose("config", overrides=[f"decoder={decoder}", f"convert={convert}"])
                assert set(cfg) == {"decoder", "normalize", "convert"}
                assert cfg.decoder.name == decoder and cfg.convert.name == convert
                pipe = build_pipeline(cfg.decoder, cfg.normalize, cfg.convert)
                assert pipe.describe()["decoder"]["name"] == decoder
