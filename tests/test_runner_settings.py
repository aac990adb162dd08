"""The runner config group: each YAML names its class by ``_target_``, one settings model
validates every key with a one-line error, and Hydra builds the class from it."""

from __future__ import annotations

import inspect

import pytest
import yaml

from evalharness.errors import UserInputError
from evalharness.config.conf import CONF_DIR
from evalharness.engine.interrupt import StopRequest
from evalharness.engine.runner import LocalRunner, Runner, default_workers
from evalharness.engine.runner_settings import RunnerSettings, build_runner, load_runner_settings


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


def test_ray_only_settings_do_not_reach_the_local_runner() -> None:
    assert set(load_runner_settings(_yaml("local")).runner_kwargs()) == {"workers", "max_attempts"}
    with_server = load_runner_settings({**_yaml("local"), "policy_server": "auto"})  # evaluate's, not the runner's
    assert set(with_server.runner_kwargs()) == {"workers", "max_attempts"}
    assert {"address", "num_cpus", "object_store_mb"} <= set(load_runner_settings(_yaml("ray")).runner_kwargs())


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("workers", -1, "allowed: auto, 0 (in-process) or a positive integer"),
        ("workers", True, "allowed: auto, 0 (in-process) or a positive integer"),
        ("workers", "many", "allowed: auto, 0 (in-process) or a positive integer"),
        ("max_attempts", 0, "allowed: an integer >= 1"),
        ("retry_errors", "yes", "allowed: true, false"),
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
