"""``policy=checkpoint``: the directory format, lazy loading, the declared pipeline, forks and batching.

No simulator here (tests/test_checkpoint_sim.py runs real episodes). Bad directories are
checked through the real CLI: one stderr line, exit status 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from evalharness.errors import UserInputError
from evalharness.models.reference_checkpoint import write_reference_checkpoint
from evalharness.policies.checker import example_observation, load_protocol_named
from evalharness.policies.checkpoint import CheckpointPolicy
from evalharness.policies.pipelined import PipelinedPolicy, split_at_decoder, wrap_with_pipeline
from evalharness.policies.build import build_policy

ROOT = Path(__file__).resolve().parents[1]
NONE = {"decoder": {"name": "none"}, "normalize": {"name": "none"}, "convert": {"name": "none"}}
POLICY_CFG = yaml.safe_load((ROOT / "conf" / "policy" / "checkpoint.yaml").read_text())


@pytest.fixture(scope="module")
def ckpt(reference_checkpoints) -> Path:
    return reference_checkpoints["tokens"]  # seed 0


@pytest.fixture(scope="module")
def chunk_ckpt(reference_checkpoints) -> Path:
    return reference_checkpoints["chunk"]


def cfg(path: Path, **extra) -> dict:
    return {**POLICY_CFG, "path": str(path), **extra}


def observations(n: int, policy) -> list[dict]:
    protocol = load_protocol_named("openpi")
    obs = [example_observation(protocol, policy, seed=i) for i in range(n)]
    for i, o in enumerate(obs):
        o["instruction"] = ["open the drawer", "put the bowl on the plate", "pick up the milk"][i % 3]
    return obs


def test_init_is_deterministic_per_seed(tmp_path, ckpt):
    again = write_reference_checkpoint(tmp_path / "again", seed=0)
    other = write_reference_checkpoint(tmp_path / "other", seed=1)
    digest = lambda d: hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()  # noqa: E731
    assert digest(again) == digest(ckpt) != digest(other)
    # the whole checkpoint (its identity), wherever it was written
    assert CheckpointPolicy(str(again)).identity() == CheckpointPolicy(str(ckpt)).identity()
    with pytest.raises(UserInputError, match="is not empty; pick a new directory or pass --force"):
        write_reference_checkpoint(tmp_path / "again", seed=0)


def test_identity_is_the_files_sha256_and_the_declared_pipeline(ckpt):
    policy = build_policy(cfg(ckpt), NONE)
    identity = policy.identity()
    assert identity["files_sha256"] == {name: hashlib.sha256((ckpt / name).read_bytes()).hexdigest()
                                        for name in ("policy.yaml", "model.safetensors", "norm_stats.json")}
    pipeline = identity["action_pipeline"]
    assert pipeline["decoder"]["name"] == "mint_uniform" and pipeline["decoder"]["horizon"] == 10
    assert pipeline["normalize"]["name"] == "quantile"
    assert pipeline["normalize"]["stats_sha256"] == identity["files_sha256"]["norm_stats.json"]
    assert identity["pipeline_source"] == {"decoder": "declared", "normalize": "declared", "convert": "declared"}
    assert identity["device"] == "auto" and identity["dtype"] == "float32" and identity["temperature"] == 0.0
    assert not policy.inner.loaded  # building and identifying load nothing


def test_a_command_line_group_replaces_only_its_stage(ckpt, tmp_path):
    stats = tmp_path / "other_stats.json"
    stats.write_text(json.dumps({"norm_stats": {"actions": {"mean": [0.0] * 7, "std": [1.0] * 7}}}))
    pipeline = {**NONE, "normalize": {"name": "zscore", "stats_path": str(stats), "key": "actions", "dims": 7}}
    policy = build_policy(cfg(ckpt), pipeline)
    identity = policy.identity()
    assert identity["pipeline_source"] == {"decoder": "declared", "normalize": "command_line", "convert": "declared"}
    assert identity["action_pipeline"]["normalize"]["name"] == "zscore"  # replaced, not applied after quantile
    assert identity["action_pipeline"]["decoder"]["name"] == "mint_uniform"
    # the same decoding then one normalization: zscore with mean 0 / std 1 leaves the decoded tokens
    obs = observations(1, policy)[0]
    policy.reset("x", seed=0)
    raw = policy.inner.act(obs)
    np.testing.assert_allclose(policy.act(obs), raw.reshape(10, 7) / 256 - 1.0, atol=1e-5)


def test_served_split_takes_the_same_rule(ckpt, tmp_path):
    """Served (policy_server=auto, evalharness serve): the server decodes, the client runs the
    rest; both resolve the pipeline with resolve_pipeline, so together they equal it."""
    policy = CheckpointPolicy(str(ckpt))
    declared = policy.declared_pipeline()
    decoder, client = split_at_decoder(policy, NONE)
    assert decoder == declared["decoder"]
    assert client == {"decoder": {"name": "none"}, "normalize": declared["normalize"], "convert": declared["convert"]}
    other = {"name": "mint_uniform", "action_dim": 7, "horizon": 5}
    zscore = {"name": "zscore", "stats_path": str(tmp_path / "s.json"), "key": "actions", "dims": 7}
    decoder, client = split_at_decoder(policy, {**NONE, "decoder": other, "normalize": zscore})
    assert decoder == other and client["normalize"] == zscore and client["convert"] == declared["convert"]
    command_line = CheckpointPolicy(str(ckpt), pipeline="command_line")
    assert split_at_decoder(command_line, NONE) == ({"name": "none"}, NONE)


def test_pipeline_command_line_ignores_the_declaration_and_double_wrapping_is_refused(ckpt):
    raw = build_policy(cfg(ckpt, pipeline="command_line"), NONE)
    assert isinstance(raw, CheckpointPolicy)  # nothing declared, all groups none: raw tokens
    assert raw.identity()["pipeline"] == "command_line"
    wrapped = build_policy(cfg(ckpt), NONE)
    with pytest.raises(UserInputError, match="already runs through an action pipeline"):
        quantile = {"name": "quantile", "stats_path": str(ckpt / "norm_stats.json")}
        PipelinedPolicy(wrapped, {**NONE, "normalize": quantile})
    with pytest.raises(UserInputError, match="policy.pipeline='both' is not valid; allowed: declared, command_line"):
        CheckpointPolicy(str(ckpt), pipeline="both")


@pytest.mark.parametrize("key, value, message", [
    ("device", "gpu", "policy.device='gpu' is not valid; allowed: auto, cpu, cuda, cuda:<index>"),
    ("dtype", "int8", "policy.dtype='int8' is not valid; allowed: float32, bfloat16, float16"),
    ("temperature", -1, "policy.temperature=-1 is not valid: input should be greater than or equal to 0"),
    ("temperature", True, "policy.temperature=True is not valid: input should be a valid number"),
    ("pipeline", "both", "policy.pipeline='both' is not valid; allowed: declared, command_line"),
    ("threads", 0, "policy.threads=0 is not valid"),
    ("path", None, "policy.path is required for policy=checkpoint"),
])
def test_settings_are_validated(ckpt, key, value, message):
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CheckpointPolicy(**{"path": str(ckpt), key: value})


def test_forks_share_the_loaded_module(ckpt):
    policy = CheckpointPolicy(str(ckpt), device="cpu")
    fork = policy.fork()
    policy.load()
    assert fork.loaded and fork._shared.model is policy._shared.model
    wrapped = wrap_with_pipeline(policy, NONE)
    assert wrapped.fork().inner._shared.model is policy._shared.model


def test_act_batch_gives_each_fork_its_lone_answer_tokens(ckpt):
    policy = build_policy(cfg(ckpt, device="cpu"), NONE)
    obs = observations(3, policy)
    forks = [policy.fork() for _ in obs]
    for seed, fork in enumerate(forks):
        fork.reset("x", seed=seed)
    raw_batched = CheckpointPolicy.act_batch([f.inner for f in forks], obs)
    alone = []
    for seed, o in enumerate(obs):
        lone = policy.fork()
        lone.reset("x", seed=seed)
        alone.append(lone.inner.act(o))
    for b, a in zip(raw_batched, alone):
        assert b.dtype == np.int64 and b.shape == (70,)
        np.testing.assert_array_equal(b, a)  # identical tokens
    assert len({tuple(b) for b in raw_batched}) == 3  # the observations differ, so do the answers
    actions = type(forks[0]).act_batch(forks, obs)  # through the pipeline
    assert all(a.shape == (10, 7) for a in actions)


def test_act_batch_chunks_match_within_1e_5(chunk_ckpt):
    policy = build_policy(cfg(chunk_ckpt, device="cpu"), NONE)
    obs = observations(4, policy)
    forks = [policy.fork() for _ in obs]
    batched = type(policy).act_batch(forks, obs)
    for b, o in zip(batched, obs):
        np.testing.assert_allclose(b, policy.fork().act(o), rtol=0, atol=1e-5)


def test_sampling_depends_on_the_fork_seed_not_on_batch_mates(ckpt):
    policy = CheckpointPolicy(str(ckpt), device="cpu", temperature=1.0)
    obs = observations(3, policy)
    a, b, c = policy.fork(), policy.fork(), policy.fork()
    a.reset("x", seed=11)
    b.reset("x", seed=12)
    c.reset("x", seed=11)
    first = CheckpointPolicy.act_batch([a, b], obs[:2])
    second = CheckpointPolicy.act_batch([a, b], obs[:2])
    solo = [c.act(obs[0]), c.act(obs[0])]
    np.testing.assert_array_equal(first[0], solo[0])
    np.testing.assert_array_equal(second[0], solo[1])  # its own generator advanced once per query
    assert not np.array_equal(first[0], second[0])  # sampling, not greedy


def test_bfloat16_runs(ckpt):
    policy = CheckpointPolicy(str(ckpt), device="cpu", dtype="bfloat16")
    policy.reset("x", seed=0)
    tokens = policy.act(observations(1, policy)[0])
    assert tokens.shape == (70,) and ((tokens >= 0) & (tokens < 512)).all()


def test_the_parent_never_imports_torch_nor_loads_weights(ckpt):
    """What evaluate() does in the parent: build the policy once and take its identity."""
    script = f"""
import builtins, io, json, sys
opened = []
real_open = io.open
def spy(file, *a, **k):
    opened.append((str(file), a[0] if a else k.get('mode', 'r')))
    return real_open(file, *a, **k)
builtins.open = io.open = spy
from evalharness.engine.evaluate import _policy_identity
cfg = {json.dumps(cfg(ckpt))}
none = {json.dumps(NONE)}
identity = _policy_identity(cfg, none)
weights = [mode for name, mode in opened if name.endswith('model.safetensors')]
print(json.dumps({{"torch": "torch" in sys.modules,
                   "safetensors": any(m.startswith("safetensors") for m in sys.modules),
                   "weights_opened": weights, "name": identity["name"]}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["name"] == "checkpoint"
    assert report["torch"] is False and report["safetensors"] is False
    # read as bytes twice: the 8-byte header + JSON for validation, the whole file for its sha256
    assert report["weights_opened"] == ["rb", "rb"]


# --- bad checkpoint directories: one line each, exit 2, through the real CLI ------------------------

def _break(ckpt: Path, tmp_path: Path, how: str) -> Path:
    bad = tmp_path / how
    shutil.copytree(ckpt, bad)
    spec = bad / "policy.yaml"
    if how == "missing_weights":
        (bad / "model.safetensors").unlink()
    elif how == "wrong_shape":
        spec.write_text(spec.read_text().replace("hidden: 128", "hidden: 96"))
    elif how == "unknown_module":
        spec.write_text(spec.read_text().replace("evalharness.models.reference.ReferenceVLA", "nosuch.models.Net"))
    elif how == "unknown_class":
        spec.write_text(spec.read_text().replace("reference.ReferenceVLA", "reference.BiggerVLA"))
    elif how == "malformed_stats":
        (bad / "norm_stats.json").write_text('{"norm_stats": {"actions": ')
    elif how == "stats_not_openpi":
        (bad / "norm_stats.json").write_text('{"actions": {"q01": [0], "q99": [1]}}')
    elif how == "bad_spec":
        spec.write_text(spec.read_text().replace("type: tokens", "type: logits"))
    elif how == "truncated_weights":
        (bad / "model.safetensors").write_bytes((ckpt / "model.safetensors").read_bytes()[:4000])
    return bad


BAD = {
    "missing_weights": r"checkpoint '.*/missing_weights' has no model\.safetensors; a checkpoint holds policy\.yaml, "
                       r"model\.safetensors, norm_stats\.json",
    "wrong_shape": r"model\.safetensors tensor 'head\.weight' has shape \[512, 128\]; evalharness\.models\.reference\."
                   r"ReferenceVLA with the arguments in policy\.yaml expects \[512, 96\]",
    "unknown_module": r"policy\.yaml model\._target_ 'nosuch\.models\.Net' cannot be imported: "
                      r"no module 'nosuch\.models'",
    "unknown_class": r"policy\.yaml model\._target_ 'evalharness\.models\.reference\.BiggerVLA' cannot be imported: "
                     r"module 'evalharness\.models\.reference' has no class 'BiggerVLA'",
    "malformed_stats": r"norm_stats\.json is not valid JSON \(Expecting value",
    "stats_not_openpi": r"norm_stats\.json is not in openpi's format",
    "bad_spec": r"policy\.yaml: output\.type='logits' is not valid; allowed: tokens, chunk",
    "truncated_weights": r"model\.safetensors is not a safetensors file \(the file is shorter than its header says\)",
}


#: Through the real CLI (a subprocess each); the other cases are checked in-process below.
CLI_CASES = ("missing_weights", "wrong_shape", "unknown_module", "malformed_stats")


@pytest.mark.parametrize("how", CLI_CASES)
def test_bad_checkpoint_directories_give_one_line(ckpt, tmp_path, how):
    bad = _break(ckpt, tmp_path, how)
    proc = subprocess.run([sys.executable, "-m", "evalharness", "checkpoint", "check", str(bad)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("evalharness: error: ")
    assert re.search(BAD[how], lines[0]), lines[0]


@pytest.mark.parametrize("how", sorted(set(BAD) - set(CLI_CASES)))
def test_other_bad_checkpoints_are_one_line_user_errors(ckpt, tmp_path, how):
    bad = _break(ckpt, tmp_path, how)
    with pytest.raises(UserInputError) as info:
        CheckpointPolicy(str(bad), device="cpu").load()
    message = str(info.value)
    assert "\n" not in message and re.search(BAD[how], message), message


def test_check_command_reports_the_model(ckpt):
    proc = subprocess.run([sys.executable, "-m", "evalharness", "checkpoint", "check", str(ckpt)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "ReferenceVLA" in proc.stdout and "tokens -> mint_uniform -> quantile -> none" in proc.stdout
    assert "check_policy passed under protocol openpi" in proc.stdout


def test_trained_weights_of_the_class_load_the_same_way(ckpt, tmp_path):
    """Weights saved from a module of the class (here: 'trained' by perturbing) are what the policy runs."""
    import torch
    from safetensors.torch import save_file

    from evalharness.models.inputs import InputTransform
    from evalharness.models.reference import ReferenceVLA

    trained = tmp_path / "trained"
    shutil.copytree(ckpt, trained)
    spec = yaml.safe_load((trained / "policy.yaml").read_text())
    module = ReferenceVLA(**{k: v for k, v in spec["model"].items() if k != "_target_"})
    torch.manual_seed(123)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(trained / "model.safetensors"))

    policy = CheckpointPolicy(str(trained), device="cpu")
    original = CheckpointPolicy(str(ckpt), device="cpu")
    obs = observations(1, policy)[0]
    policy.reset("x", seed=0)
    original.reset("x", seed=0)
    tokens = policy.act(obs)
    inputs = InputTransform(policy.files)(obs)
    with torch.inference_mode():
        logits = module.eval()(**{k: torch.from_numpy(v[None]) for k, v in inputs.items()})
    np.testing.assert_array_equal(tokens, logits[0].argmax(-1).numpy())
    assert not np.array_equal(tokens, original.act(obs))
    weights = "model.safetensors"
    assert policy.identity()["files_sha256"][weights] != original.identity()["files_sha256"][weights]


def test_an_evaluation_of_a_bad_checkpoint_stops_in_the_parent_with_one_line(ckpt, tmp_path):
    missing = _break(ckpt, tmp_path, "missing_weights")
    argv = ["policy=checkpoint", f"policy.path={missing}", "suite=smoke", "video=none", f"output_dir={tmp_path / 'out'}"]
    proc = subprocess.run([sys.executable, "-m", "evalharness", *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert re.search(r"checkpoint '.*/missing_weights' has no model\.safetensors", lines[0]), lines[0]
    assert not (tmp_path / "out").exists()  # validated before anything is written
