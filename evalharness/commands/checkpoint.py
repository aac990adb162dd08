"""Write or check a checkpoint directory for ``policy=checkpoint`` (format: docs/checkpoints.md).

  init DIR    write a randomly initialised checkpoint of the reference network
              (evalharness.models.reference.ReferenceVLA): policy.yaml, model.safetensors,
              norm_stats.json (illustrative LIBERO-like statistics). The same --seed writes
              the same weights. Trained weights of the same class load the same way.
  check DIR   validate the files, load the model, and run check_policy on it behind the
              pipeline the checkpoint declares, under --protocol's example observation.

examples:
  evalharness checkpoint init ckpt --seed 0 --image-size 64
  evalharness checkpoint check ckpt --protocol openpi
  evalharness policy=checkpoint policy.path=ckpt suite=libero_object

Exit status: 0 ok; 2 a bad checkpoint or argument (one line on stderr naming it).
"""

from __future__ import annotations

import argparse

PROTOCOLS = ("openpi", "lerobot", "openvla")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="{init,check}")
    init = sub.add_parser("init", help="write a randomly initialised reference checkpoint")
    init.add_argument("directory", metavar="DIR")
    init.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    init.add_argument("--image-size", type=int, default=64, help="model input size in pixels (default 64; images "
                      "are resized to it by the checkpoint's input transforms)")
    init.add_argument("--output", choices=("tokens", "chunk"), default="tokens",
                      help="tokens: MinT-uniform action tokens, 10 x 7, 512 classes (default); chunk: a "
                      "normalized 10 x 7 chunk")
    init.add_argument("--force", action="store_true", help="write into a non-empty directory")
    check = sub.add_parser("check", help="load a checkpoint and run check_policy on it")
    check.add_argument("directory", metavar="DIR")
    check.add_argument("--protocol", choices=PROTOCOLS, default="openpi", help="protocol of the example "
                       "observation (default openpi)")
    check.add_argument("--device", default="cpu", help="auto | cpu | cuda[:i] (default cpu)")
    check.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 (default float32)")


def run(args: argparse.Namespace) -> int:
    if args.action == "init":
        from evalharness.models.reference_checkpoint import write_reference_checkpoint

        out = write_reference_checkpoint(args.directory, seed=args.seed, image_size=args.image_size,
                                         output=args.output, force=args.force)
        print(f"wrote a random reference checkpoint (seed {args.seed}) to {out}/")
        print(f"  check it:    evalharness checkpoint check {out}")
        print(f"  evaluate it: evalharness policy=checkpoint policy.path={out}")
        return 0
    return _check(args)


def _check(args: argparse.Namespace) -> int:
    from evalharness.policies.checker import check_policy
    from evalharness.policies.checkpoint import CheckpointPolicy
    from evalharness.policies.pipelined import PipelinedPolicy, wrap_with_pipeline

    none = {"name": "none"}
    raw = CheckpointPolicy(args.directory, device=args.device, dtype=args.dtype)
    raw.load()  # load errors (class, shapes) are one line here, before any check runs
    policy = wrap_with_pipeline(raw, {"decoder": none, "normalize": none, "convert": none})
    model = raw._shared.model
    parameters = sum(p.numel() for p in model.parameters())
    pipeline = policy.pipeline.describe() if isinstance(policy, PipelinedPolicy) else None
    check_policy(policy, args.protocol)
    spec = raw.files.spec
    steps = " -> ".join(str((pipeline or {}).get(group, {}).get("name", "none"))
                        for group in ("decoder", "normalize", "convert"))
    print(f"checkpoint {raw.files.directory}: ok")
    print(f"  model: {spec.model['_target_']} ({parameters:,} parameters, {raw._shared.device}, {args.dtype})")
    print(f"  output: {spec.output.type} -> {steps}")
    print(f"  check_policy passed under protocol {args.protocol}")
    return 0
