"""evalharness.evaluate / Evaluator without a simulator: argument errors, digests, metrics.

A bad argument is one UserInputError line naming the value and what is allowed, raised
before anything is written (the output folder does not appear). ``weights_digest`` hashes a
module's state dict (any changed value changes it). ``Summary.metrics()`` is a flat dict of
numbers for a logger.
"""

from __future__ import annotations

import pytest

import evalharness
from evalharness.errors import UserInputError
from evalharness.results.summary import build_summary
from factories import outcomes_records, run_metadata


@pytest.mark.parametrize("kwargs, message", [
    ({"episodes": 0}, "episodes=0 is not valid; allowed: an integer >= 1"),
    ({"episodes": "two"}, "episodes='two' is not valid"),
    ({"workers": -1}, "workers=-1 is not valid; allowed: an integer >= 0"),
    ({"init_states": 3}, "init_states=3 is not valid; allowed: a list of init state indices"),
    ({"suite": "libero_nope"}, "libero_nope"),
    ({"video": "sometimes"}, "sometimes"),
    ({"overrides": ["suite.max_steps=-4"]}, "suite.max_steps=-4"),
    ({"overrides": "video=none"}, "overrides='video=none' is not valid"),
    ({"weights_digest": "ab" * 16}, "weights_digest is for an in-memory policy"),
])
def test_a_bad_argument_is_one_line_and_writes_nothing(tmp_path, kwargs, message) -> None:
    out = tmp_path / "run"
    with pytest.raises(UserInputError) as info:
        evalharness.evaluate("zero", output_dir=out, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()


def test_an_in_memory_policy_needs_a_label_and_a_valid_digest(tmp_path) -> None:
    out = tmp_path / "run"
    with pytest.raises(UserInputError, match="label=None is not valid for an in-memory policy"):
        evalharness.evaluate(lambda obs: None, output_dir=out)
    with pytest.raises(UserInputError, match=r"label='a b' is not valid"):
        evalharness.evaluate(lambda obs: None, label="a b", output_dir=out)
    with pytest.raises(UserInputError, match="weights_digest='XYZ' is not valid"):
        evalharness.evaluate(lambda obs: None, label="ok", weights_digest="XYZ", output_dir=out)
    with pytest.raises(UserInputError, match="policy=int is not valid"):
        evalharness.evaluate(3, label="ok", output_dir=out)  # type: ignore[arg-type]
    assert not out.exists()


def test_weights_digest_follows_every_value_of_the_state_dict() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    b = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    b.load_state_dict(a.state_dict())
    digest = evalharness.weights_digest(a)
    assert digest == evalharness.weights_digest(b) and len(digest) == 64
    with torch.no_grad():
        b[2].bias[1] += 1e-6
    assert evalharness.weights_digest(b) != digest
    assert evalharness.weights_digest(a.to(torch.bfloat16)) != digest  # the dtype is part of it
    with pytest.raises(UserInputError, match="weights_digest needs a torch.nn.Module"):
        evalharness.weights_digest({"w": 1})


def test_summary_metrics_is_a_flat_dict_of_numbers_for_loggers() -> None:
    records = outcomes_records("libero_goal", 0, "SSFE") + outcomes_records("libero_10", 2, "SF")
    summary = build_summary(records, run_metadata(), expected_episodes=6)
    metrics = summary.metrics()
    assert metrics["eval/total/rate"] == pytest.approx(3 / 5)
    assert metrics["eval/total/errors"] == 1 and metrics["eval/total/complete"] == 0
    assert metrics["eval/suite/libero_goal/successes"] == 2 and metrics["eval/suite/libero_goal/errors/env_error"] == 1
    assert metrics["eval/task/libero_10/2/episodes"] == 2
    assert 0 <= metrics["eval/task/libero_10/2/ci_low"] <= 0.5 <= metrics["eval/task/libero_10/2/ci_high"] <= 1
    assert all(isinstance(v, (int, float)) or v is None for v in metrics.values())
    assert set(summary.metrics(prefix="")) == {k.removeprefix("eval/") for k in metrics}


def test_import_evalharness_stays_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, evalharness; print(sorted(m for m in ('torch', 'hydra', 'pydantic', 'evalharness.api') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_callable_policy_answers_with_its_function_and_batches_with_batch_fn() -> None:
    calls: list[int] = []

    def batch(observations):
        calls.append(len(observations))
        return [o["x"] * 2 for o in observations]

    policy = evalharness.CallablePolicy(lambda o: o["x"] + 1, name="f", batch_fn=batch, identity={"weights": "abc"},
                                        pipeline={"normalize": {"name": "none"}})
    assert policy.act({"x": 1}) == 2  # type: ignore[typeddict-item]
    forks = [policy.fork(), policy.fork()]
    assert type(policy).act_batch(forks, [{"x": 1}, {"x": 5}]) == [2, 10] and calls == [2]  # type: ignore[list-item]
    assert policy.identity() == {"name": "f", "weights": "abc"}
    assert policy.declared_pipeline() == {"normalize": {"name": "none"}}
    bad = evalharness.CallablePolicy(lambda o: o, batch_fn=lambda obs: [1])
    with pytest.raises(ValueError, match="batch_fn returned 1 outputs for 2 observations"):
        type(bad).act_batch([bad, bad], [{}, {}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="needs a callable"):
        evalharness.CallablePolicy(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("override, message", [
    ("runner=ray", "runner=RayRunner is not available in an Evaluator; allowed: runner=local"),
    ("runner.policy_server=auto", "policy_server=auto is not available in an Evaluator"),
])
def test_an_evaluator_refuses_what_it_cannot_keep_warm(tmp_path, override, message) -> None:
    with evalharness.Evaluator(tmp_path / "runs", workers=1, suite="libero_object", tasks=[0], episodes=1) as ev:
        with pytest.raises(UserInputError, match=message):
            ev.run("zero", overrides=[override])
    assert not (tmp_path / "runs").exists()
