"""The runner config group: each YAML names its class by ``_target_``, that class's own settings
model validates every key with a one-line error, and the class is built from it. The run's
retry_errors / policy_server, which used to sit in the runner group, are forwarded from there."""

from __future__ import annotations

import inspect

import pytest
import yaml

from evalharness.errors import UserInputError
from evalharness.config.conf import CONF_DIR
from evalharness.engine.interrupt import StopRequest
from evalharness.engine.runner import LocalRunner, Runner, default_workers
from evalharness.engine.ray_runner import RayRunner
from evalharness.engine.run_settings import RunSettings, load_run_settings
from evalharness.engine.runner_settings import (
    LocalRunnerSettings,
    RayRunnerSettings,
    RunnerSettings,
    build_runner,
    load_runner_settings,
)


def _yaml(name: str) -> dict:
    return yaml.safe_load((CONF_DIR / "runner" / f"{name}.yaml").read_text())


def test_each_runner_yaml_names_a_class_with_the_runner_shape() -> None:
    targets = {}
    for name in ("local", "ray"):
        settings = load_runner_settings(_yaml(name))
        module, _, cls = settings.target.rpartition(".")
        runner_class = getattr(__import__(module, fromlist=[cls]), cls)
        targets[name] = runner_class.__name__
        assert list(inspect.signature(runner_class.run).parameters) == list(inspect.signature(Runner.run).parameters)
        # Every setting the YAML gives the class is a parameter of its constructor.
        params = inspect.signature(runner_class.__init__).parameters
        assert set(settings.runner_kwargs()) <= set(params), name
    assert targets == {"local": "LocalRunner", "ray": "RayRunner"}


def test_the_local_runner_is_built_from_its_yaml_by_target() -> None:
    stop = StopRequest()
    runner = build_runner(load_runner_settings({**_yaml("local"), "workers": 2, "max_attempts": 3}), config=None, stop=stop)
    assert type(runner) is LocalRunner
    assert (runner.workers, runner.max_attempts, runner.accounting.max_attempts, runner.stop) == (2, 3, 3, stop)
    auto = build_runner(load_runner_settings(_yaml("local")), config=None, stop=stop)
    assert auto.workers == default_workers()
    stop.close()


def test_each_runner_has_its_own_settings_model() -> None:
    assert LocalRunner.Settings is LocalRunnerSettings and RayRunner.Settings is RayRunnerSettings
    assert isinstance(load_runner_settings(_yaml("local")).settings, LocalRunnerSettings)
    assert isinstance(load_runner_settings(_yaml("ray")).settings, RayRunnerSettings)
    for name in ("local", "ray"):  # the YAML spells out every setting of its class
        cfg = _yaml(name)
        assert set(cfg) - {"_target_"} == set(load_runner_settings(cfg).cls.Settings.model_fields), name


def test_ray_only_settings_do_not_reach_the_local_runner() -> None:
    assert set(load_runner_settings(_yaml("local")).runner_kwargs()) == {"workers", "max_attempts"}
    with_server = load_runner_settings({**_yaml("local"), "policy_server": "auto"})  # the run's, not the runner's
    assert set(with_server.runner_kwargs()) == {"workers", "max_attempts"}
    assert {"address", "num_cpus", "object_store_mb"} <= set(load_runner_settings(_yaml("ray")).runner_kwargs())
    with pytest.raises(UserInputError, match="runner.address is not a setting; allowed: workers, max_attempts"):
        load_runner_settings({**_yaml("local"), "address": "auto"})


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        # Ray's own rule (no in-process mode); the local runner's is tested below
        ("workers", -1, "allowed: auto or a positive integer"),
        ("workers", True, "allowed: auto or a positive integer"),
        ("workers", "many", "allowed: auto or a positive integer"),
        ("workers", 0, "allowed: auto or a positive integer"),
        ("max_attempts", 0, "allowed: an integer >= 1"),
        ("num_cpus", 0, "allowed: an integer >= 1"),
        ("gpus_per_worker", -1, "allowed: null or a number >= 0"),
    ],
)
def test_a_bad_runner_setting_is_one_line_naming_key_value_and_rule(key: str, value, allowed: str) -> None:
    with pytest.raises(UserInputError) as info:
        load_runner_settings({**_yaml("ray"), key: value})
    message = str(info.value)
    assert message == f"runner.{key}={value!r} is not valid; {allowed}"


def test_an_unknown_runner_class_is_one_line() -> None:
    with pytest.raises(UserInputError) as info:
        load_runner_settings({**_yaml("local"), "_target_": "evalharness.engine.runner.NoSuchRunner"})
    assert "\n" not in str(info.value) and "runner._target_='evalharness.engine.runner.NoSuchRunner' cannot be loaded" in str(info.value)


def test_an_unknown_runner_key_is_refused() -> None:
    with pytest.raises(UserInputError, match="runner.colour"):
        load_runner_settings({**_yaml("local"), "colour": "red"})
    assert RunnerSettings.model_config["extra"] == "forbid"


def test_the_local_runner_allows_in_process_workers() -> None:
    assert load_runner_settings({**_yaml("local"), "workers": 0}).workers == 0
    with pytest.raises(UserInputError) as info:
        load_runner_settings({**_yaml("local"), "workers": -1})
    assert str(info.value) == "runner.workers=-1 is not valid; allowed: auto, 0 (in-process) or a positive integer"


# ----- retry_errors / policy_server: the run's, forwarded from their old place ----------------------------


def test_run_settings_defaults_are_those_of_config_yaml() -> None:
    config = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    assert {key: config[key] for key in RunSettings.model_fields} == RunSettings().model_dump()


@pytest.mark.parametrize("key, old, expected", [("retry_errors", True, True), ("policy_server", "auto", "auto")])
def test_the_old_runner_keys_are_forwarded(key: str, old, expected) -> None:
    top = yaml.safe_load((CONF_DIR / "config.yaml").read_text())
    assert getattr(load_run_settings({**top, "runner": _yaml("local")}), key) == RunSettings().model_dump()[key]
    assert getattr(load_run_settings({**top, "runner": {**_yaml("local"), key: old}}), key) == expected
    assert getattr(load_run_settings({**top, key: old, "runner": _yaml("local")}), key) == expected
    assert getattr(load_run_settings({**top, key: old, "runner": {**_yaml("ray"), key: old}}), key) == expected


def test_a_bad_forwarded_value_names_the_key_the_user_wrote() -> None:
    with pytest.raises(UserInputError) as info:
        load_run_settings({"runner": {"retry_errors": "yes"}})
    assert str(info.value) == "runner.retry_errors='yes' is not valid; allowed: true, false"
    with pytest.raises(UserInputError) as info:
        load_run_settings({"retry_errors": "yes"})
    assert str(info.value) == "retry_errors='yes' is not valid; allowed: true, false"
    with pytest.raises(UserInputError) as info:
        load_run_settings({"runner": {"policy_server": "always"}})
    assert str(info.value) == "runner.policy_server='always' is not valid; allowed: none, auto"


def test_old_and_new_keys_that_disagree_are_refused() -> None:
    with pytest.raises(UserInputError) as info:
        load_run_settings({"retry_errors": True, "runner": {"retry_errors": False}})
    assert str(info.value) == ("runner.retry_errors=false and retry_errors=true disagree; set only retry_errors "
                               "(runner.retry_errors is its old name)")
    with pytest.raises(UserInputError, match="^runner.policy_server=none and policy_server=auto disagree"):
        load_run_settings({"policy_server": "auto", "runner": {"policy_server": "none"}})


def test_the_policy_server_reads_the_run_setting_under_either_name() -> None:
    from evalharness.engine.policy_server import mode

    policy = {"_target_": "evalharness.policies.baselines.ZeroPolicy"}
    assert mode({"policy_server": "auto", "policy": policy, "runner": _yaml("local")}) == "auto"
    assert mode({"policy_server": "none", "policy": policy, "runner": {**_yaml("local"), "policy_server": "auto"}}) == "auto"
    assert mode({"policy_server": "none", "policy": policy, "runner": _yaml("local")}) == "none"
    with pytest.raises(UserInputError, match="^policy_server=auto serves the configured policy; policy=mint is already remote$"):
        mode({"policy_server": "auto", "policy": {"_target_": "evalharness.transports.mint.policy.MintPolicy"}})
