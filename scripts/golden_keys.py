"""The episode keys of shipped configurations, written to or checked against a golden file.

Episode keys are what resume trusts: a refactor that changes one makes existing run
folders re-run (or, worse, mix) episodes. This script plans every suite under every
protocol with each policy that can be built here without a network, plus the action
pipelines and perturbation dimensions a user can pick, through the same ``prepare()``
the CLI uses (nothing runs, nothing is written), and digests each plan's keys in order.

    python scripts/golden_keys.py --write     # record tests/data/golden_keys.json
    python scripts/golden_keys.py             # compare; exit 1 naming what changed

``tests/test_golden_keys.py`` runs the comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden_keys.json"

SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90", "demo", "smoke")
PROTOCOLS = ("openpi", "openvla", "lerobot")
MINT = ["policy=mint", "policy.model_path=mint://golden/sampler_weights/step1", "policy.base_url=http://127.0.0.1:9",
        "policy.state_space=raw"]


def cases(checkpoints: dict[str, Path]) -> dict[str, list[str]]:
    """Named override lists; each is planned once per protocol."""
    policies = {
        "zero": ["policy=zero"],
        "random": ["policy=random", "policy.horizon=4"],
        "scripted": ["policy=scripted"],
        "faulty": ["policy=faulty"],
        "mint_action": MINT,
        "mint_sampling_uniform": [*MINT, "policy.mode=sampling", "decoder=mint_uniform"],
        "checkpoint_tokens": ["policy=checkpoint", f"policy.path={checkpoints['tokens']}"],
        "checkpoint_chunk": ["policy=checkpoint", f"policy.path={checkpoints['chunk']}"],
        "zero_openvla_pipeline": ["policy=zero", "decoder=openvla_bins", "normalize=openvla",
                                  f"normalize.stats_path={checkpoints['tokens'] / 'norm_stats.json'}",
                                  "normalize.key=actions",
                                  "convert=openvla"],
        "zero_quantile_openpi": ["policy=zero", "normalize=quantile",
                                 f"normalize.stats_path={checkpoints['tokens'] / 'norm_stats.json'}",
                                 "convert=openpi_libero"],
    }
    out = {}
    for suite in SUITES:
        for protocol in PROTOCOLS:
            for name, overrides in policies.items():
                out[f"{suite}/{protocol}/{name}"] = [f"suite={suite}", f"protocol={protocol}", *overrides]
    for dim in sorted(p.stem for p in (ROOT / "conf" / "perturb").glob("*.yaml")):
        if dim != "none":
            out[f"libero_spatial/openpi/zero/perturb={dim}"] = [
                "suite=libero_spatial", "suite.tasks=[0,5]", "suite.episodes_per_task=3", "policy=zero",
                f"perturb={dim}", "perturb.level=3"]
    out["libero_goal/openpi/zero/camera_size=128"] = ["suite=libero_goal", "policy=zero", "camera_size=128"]
    out["libero_10/openpi/zero/max_steps=50"] = ["suite=libero_10", "policy=zero", "suite.max_steps=50"]
    return out


def plan_digests() -> dict[str, dict[str, object]]:
    from hydra import compose, initialize_config_dir

    from evalharness.models.reference_checkpoint import write_reference_checkpoint

    # A fixed place: a stats file's path is part of the pipeline's identity (as the user gave it).
    tmp = Path(tempfile.gettempdir()) / "evalharness-golden-keys"
    # Same seed, same bytes, wherever written: the checkpoint identity is the files' sha256.
    checkpoints = {"tokens": write_reference_checkpoint(tmp / "tokens", seed=0, force=True),
                   "chunk": write_reference_checkpoint(tmp / "chunk", seed=1, output="chunk", force=True)}
    prepare = _prepare_function()
    digests = {}
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3", job_name="golden"):
        for name, overrides in cases(checkpoints).items():
            run = prepare(compose("config", overrides=[*overrides, "run_name=golden"]))
            keys = [spec.key for spec in run.plan]
            digests[name] = {
                "episodes": len(keys),
                "first": keys[0],
                "keys_sha256": hashlib.sha256("\n".join(keys).encode()).hexdigest(),
            }
    return digests


def _prepare_function():
    """``prepare`` wherever the run engine keeps it (the package layout may move)."""
    for module in ("evalharness.engine.evaluate", "evalharness.engine.evaluate"):
        try:
            return __import__(module, fromlist=["prepare"]).prepare
        except ModuleNotFoundError:
            continue
    raise SystemExit("cannot find the run engine's prepare()")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the golden file instead of comparing")
    args = parser.parse_args(argv)
    digests = plan_digests()
    if args.write:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(digests)} plans to {GOLDEN.relative_to(ROOT)}")
        return 0
    golden = json.loads(GOLDEN.read_text())
    changed = sorted(k for k in golden.keys() | digests.keys() if golden.get(k) != digests.get(k))
    for name in changed:
        print(f"changed: {name}: {golden.get(name)} -> {digests.get(name)}")
    print(f"{len(digests)} plans, {len(changed)} changed")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
