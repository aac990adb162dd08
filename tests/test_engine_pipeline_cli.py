"""The action pipeline chosen from an evaluation's command line, end to end in LIBERO.

``policy=replay`` emits MinT-uniform tokens; the run decodes them with ``decoder=
mint_uniform``, unnormalizes with an explicit range and executes the result. The executed
actions are checked through the episode's action fingerprint, computed here from the
documented formula, and the pipeline's description must be in the run's metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.sim

# Two queries of one 7-D step each; tokens per MinT's page: value = token / 256 - 1.
TOKENS = [[256, 256, 320, 256, 256, 256, 0], [192, 256, 256, 256, 256, 256, 511]]
LOW, HIGH = -0.5, 0.5  # range unnormalize: x = low + (x_n + 1) / 2 * (high - low)


def expected_fingerprint(steps: int) -> str:
    digest = hashlib.sha256()
    for i in range(steps):
        tokens = np.array(TOKENS[min(i, len(TOKENS) - 1)], dtype=np.float64)
        normalized = tokens / 256.0 - 1.0
        action = LOW + (normalized + 1.0) / 2.0 * (HIGH - LOW)
        digest.update(action.astype(np.float64).tobytes())
    return digest.hexdigest()


def test_replayed_tokens_are_decoded_and_unnormalized_as_configured(tmp_path, assets_installed):
    out = tmp_path / "run"
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(json.dumps(TOKENS))
    args = [
        "suite=libero_goal", "suite.tasks=[0]", "suite.episodes_per_task=1", "suite.max_steps=4",
        "policy=replay", f"policy.path={tokens_file}", "decoder=mint_uniform", "normalize=range",
        f"normalize.low={LOW}", f"normalize.high={HIGH}", "protocol.render_size=32", "video=none",
        "runner.workers=0", f"output_dir={out}",
    ]
    proc = subprocess.run([sys.executable, "-m", "evalharness", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert record["error_kind"] is None, record["error_message"]
    assert record["steps"] == 4
    assert record["action_fingerprint"] == expected_fingerprint(4)

    metadata = json.loads((out / "summary.json").read_text())["metadata"]
    described = json.dumps(metadata["policy"]["action_pipeline"])
    assert "mint_uniform" in described and "range" in described
    assert metadata["config"]["decoder"]["name"] == "mint_uniform"
    assert metadata["config"]["normalize"]["low"] == LOW


def test_out_of_range_token_is_a_decode_error_episode(tmp_path, assets_installed):
    out = tmp_path / "run"
    args = [
        "suite=libero_goal", "suite.tasks=[0]", "suite.episodes_per_task=1", "suite.max_steps=3",
        "policy=replay", "policy.outputs=[[256,256,256,256,256,256,512]]", "decoder=mint_uniform",
        "protocol.render_size=32", "video=none", "runner.workers=0", f"output_dir={out}",
    ]
    proc = subprocess.run([sys.executable, "-m", "evalharness", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (record,) = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert record["error_kind"] == "decode_error" and "512" in record["error_message"]
    assert "run incomplete" in proc.stderr
