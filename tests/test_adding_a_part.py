"""Adding a decoder takes one class and one YAML file (the recipe in evalharness/actions/decoders).

The test writes exactly those two files into a temporary folder, a module with one
Decoder subclass and ``decoder/<name>.yaml`` in a Hydra search path, selects the decoder
with ``decoder=<name>`` as the command line does, and decodes through the real pipeline
of the real policy build. No registry is edited. (No simulator: the episode loop is the
same for every decoder and is tested elsewhere.)
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from evalharness.config.conf import CONF_DIR, check_group_choices, check_overrides
from evalharness.errors import UserInputError
from evalharness.policies.build import build_policy

DECODER_CLASS = '''
"""A test decoder: the policy's float chunk times a configured gain."""
from typing import Any, ClassVar

import numpy as np

from evalharness.actions._arrays import float_chunk
from evalharness.actions.decoders.base import Decoder, DecoderSettings
from evalharness.config.fields import PositiveFloat


class GainSettings(DecoderSettings):
    gain: PositiveFloat


class GainDecoder(Decoder):
    name: ClassVar[str] = "gain"
    Settings: ClassVar[type[GainSettings]] = GainSettings

    def __init__(self, gain: float) -> None:
        self.gain = gain

    @classmethod
    def from_settings(cls, settings: GainSettings) -> "GainDecoder":
        return cls(settings.gain)

    def decode(self, output: Any, events: list[str]) -> np.ndarray:
        return float_chunk(output, "decoder 'gain'") * self.gain

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "gain": self.gain}
'''

DECODER_YAML = """\
# A test decoder: the chunk times `gain`.
_target_: gain_decoder.GainDecoder
name: gain
gain: 0.5
on_error: error
"""


@pytest.fixture
def user_conf(tmp_path, monkeypatch):
    """The two files of the recipe, in a folder of the user's (not in the repository)."""
    (tmp_path / "gain_decoder.py").write_text(textwrap.dedent(DECODER_CLASS))
    (tmp_path / "conf" / "decoder").mkdir(parents=True)
    (tmp_path / "conf" / "decoder" / "gain.yaml").write_text(DECODER_YAML)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"hydra.searchpath=[file://{tmp_path / 'conf'}]"


def _compose(*overrides: str):
    check_group_choices(list(overrides))  # what the CLI checks first
    check_overrides(list(overrides))
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return {group: OmegaConf.to_container(cfg[group], resolve=True)
            for group in ("policy", "decoder", "normalize", "convert")}


def _observation() -> dict:
    return {"state": np.zeros(8), "images": {}, "instruction": "pick up the bowl"}


def test_a_new_decoder_is_chosen_by_name_and_decodes_through_the_real_pipeline(user_conf) -> None:
    config = _compose(user_conf, "policy=zero", "decoder=gain", "decoder.gain=2")
    pipeline = {group: config[group] for group in ("decoder", "normalize", "convert")}
    policy = build_policy(config["policy"], pipeline)
    policy.reset("pick up the bowl", seed=0)
    actions = policy.act(_observation())
    np.testing.assert_array_equal(actions, [[0, 0, 0, 0, 0, 0, -2.0]])  # zero's chunk (gripper -1) times 2
    assert policy.identity()["action_pipeline"]["decoder"] == {"name": "gain", "gain": 2.0, "on_error": "error"}
    policy.close()


def test_its_settings_are_validated_in_one_line_like_any_part(user_conf) -> None:
    config = _compose(user_conf, "policy=zero", "decoder=gain", "decoder.gain=-1")
    pipeline = {group: config[group] for group in ("decoder", "normalize", "convert")}
    with pytest.raises(UserInputError) as info:
        build_policy(config["policy"], pipeline)
    assert str(info.value) == "decoder.gain=-1 is not valid; allowed: a number > 0"
    with pytest.raises(UserInputError) as info:
        _compose(user_conf, "decoder=gains")
    assert str(info.value) == "decoder 'gains' is not valid; allowed: fast, gain, mint_uniform, none, openvla_bins, pi0_fast"


def test_without_its_yaml_the_name_is_unknown() -> None:
    with pytest.raises(UserInputError, match="decoder 'gain' is not valid; allowed: fast, mint_uniform, none"):
        check_group_choices(["decoder=gain"])
