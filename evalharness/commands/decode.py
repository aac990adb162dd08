"""Decode policy tokens (or a chunk) into LIBERO robot actions, step by step, for debugging.

Runs the action pipeline an evaluation uses (decode -> unnormalize -> convert) on ONE
policy output and prints the chunk after every step, the events (fallbacks, clipping),
and the pipeline's description with the sha256 of any stats / tokenizer file.

input (exactly one):
  --tokens 0,256,511,...   token ids, comma or space separated (use --tokens=-5,... for negatives)
  --tokens-file PATH       ids from .npy, or .json: a list, or a sampler response {"sequences": [{"tokens": [...]}]}
  --chunk PATH             a float (H, D) chunk from .npy, or .json: a list of lists, {"data": [...], "shape": [H, D]},
                           or MinT's act response {"actions": {"data": ..., "shape": ...}}

decoders (--decoder; parameters as in conf/decoder/<name>.yaml):
  none          the output already is a normalized float chunk (H, D); it is only checked (finite, 2-D)
  mint_uniform  MinT's documented tokens: token i -> i / 256 - 1.0; one token per dim per step, time-major
                (token t*7 + d = dim d of step t); tokens 0..511; the length must be a multiple of action_dim
  fast          FAST, what pi0-FAST emits: ids -> BPE text -> ord(c) + min_token -> / scale -> inverse DCT
                over time (H x D, lowest frequencies first). Needs --tokenizer tokenizer.json. Ids are PaliGemma
                ids (fast_id = 257152 - 1 - 128 - id) unless --set decoder.id_space=fast; to cut
                "Action: " ... "|" / EOS out of full model output, set decoder.action_prefix_ids,
                decoder.action_end_ids and decoder.eos_id (PaliGemma's EOS is 1) to their encoded ids
  openvla_bins  OpenVLA: id -> centre of bin 32000 - id - 1 among 255 bins over [-1, 1]; 7 ids per action

unnormalizers (--normalize; parameters as in conf/normalize/<name>.yaml):
  none      identity: the model already speaks robot units
  quantile  x = (x_n + 1) / 2 * (q99 - q01 + 1e-6) + q01   (openpi pi0-FAST, pi0.5; --stats norm_stats.json)
  zscore    x = x_n * (std + 1e-6) + mean                   (openpi pi0; --stats norm_stats.json)
  range     x = low + (x_n + 1) / 2 * (high - low)          (--low, --high: a number or one per dim)
  openvla   x = 0.5 * (x_n + 1) * (q99 - q01) + q01 on the arm dims (the stats' mask, else the first 6)
            (--stats dataset_statistics.json --key libero_spatial_no_noops/action)
  Stats wider than 7 dims: the first 7 are used (--dims N, or --dims null for all).

converters (--convert preset, or --steps a,b,...; run in order):
  delta_to_absolute  add the RAW --state's first 6 values to action dims 0-5 (openpi LIBERO pi0 / pi0-FAST)
  openvla_gripper    gripper g -> -sign(2g - 1): OpenVLA's 0 close / 1 open -> LIBERO's -1 open / +1 close
  keep_first_7       keep LIBERO's 7 action dims, drop the padding
  clip               clip to [-1, 1], reporting how many values changed (--clip appends it)
  presets: none (no step), openpi_libero (delta_to_absolute, keep_first_7), openvla (keep_first_7, openvla_gripper)

Any other parameter: --set decoder.KEY=VALUE, --set normalize.KEY=VALUE, --set convert.KEY=VALUE (YAML values).

examples:
  evalharness decode --decoder mint_uniform --tokens 0,256,511,256,256,256,384
  evalharness decode --decoder none --chunk chunk.npy --normalize quantile --stats norm_stats.json \\
      --convert openpi_libero --state 0.1,0.2,0.3,0,0,0,0.04,-0.04
  evalharness decode --decoder fast --tokenizer fast/tokenizer.json --set decoder.id_space=fast --tokens 12,7,301

Exit status: 0 decoded; 1 the output cannot be decoded (one line on stderr); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from evalharness.actions.pipeline import ActionPipeline, PipelineResult, build_pipeline, is_libero_shape
from evalharness.config.parts import part_names
from evalharness.errors import DecodeError, UserInputError, choices_error

SECTIONS = ("decoder", "normalize", "convert")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tokens", metavar="IDS", help="token ids, e.g. 0,256,511")
    source.add_argument("--tokens-file", metavar="PATH", help="token ids from a .json or .npy file")
    source.add_argument("--chunk", metavar="PATH", help="a float (H, D) chunk from a .npy or .json file")

    parser.add_argument("--decoder", default="none", choices=part_names("decoder"), help="decoder (default: none)")
    parser.add_argument("--tokenizer", metavar="PATH", help="fast: the FAST tokenizer.json")
    parser.add_argument("--horizon", metavar="H", help="decoder horizon (steps per chunk; 'null' = any)")
    parser.add_argument("--action-dim", metavar="D", type=int, help="decoder action_dim")
    parser.add_argument("--on-error", choices=["error", "zeros"], help="decoder fallback (default: error)")

    parser.add_argument("--normalize", default="none", choices=part_names("normalize"),
                        help="unnormalizer (default: none)")
    parser.add_argument("--stats", metavar="PATH", help="norm_stats.json / dataset_statistics.json")
    parser.add_argument("--key", help="entry of the stats file (default: actions)")
    parser.add_argument("--dims", help="how many leading stats dims to use (default 7; 'null' = all)")
    parser.add_argument("--low", help="range: lower bound(s), a number or comma-separated")
    parser.add_argument("--high", help="range: upper bound(s), a number or comma-separated")

    parser.add_argument("--convert", default="none", choices=part_names("convert"),
                        help="converter preset (default: none)")
    parser.add_argument("--steps", help="converter steps, comma-separated (replaces the preset's)")
    parser.add_argument("--clip", action="store_true", help="clip the final actions to [-1, 1]")
    parser.add_argument("--state", help="raw robot state, comma-separated (for delta_to_absolute)")

    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="any pipeline parameter, e.g. decoder.scale=10 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--precision", type=int, default=6, help="decimals in the tables (default 6)")


def run(args: argparse.Namespace) -> int:
    cfgs = _configs(args)
    output, what = _read_input(args)
    state = _numbers("--state", args.state) if args.state is not None else None
    pipeline = build_pipeline(*cfgs)
    try:
        result = pipeline(output, state=state, require_libero_shape=False)
    except DecodeError as exc:
        print(f"evalharness decode: decode error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(_as_json(pipeline, result, what), indent=2))
    else:
        print(_as_text(pipeline, result, what, args.precision))
    return 0


# --- configuration from the arguments ---------------------------------------------------------

def _configs(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    decoder: dict[str, Any] = {"name": args.decoder}
    normalize: dict[str, Any] = {"name": args.normalize}
    convert: dict[str, Any] = {"name": args.convert}  # conf/convert/<name>.yaml, its steps replaceable
    if args.tokenizer is not None:
        decoder["tokenizer_path"] = args.tokenizer
    if args.horizon is not None:
        decoder["horizon"] = _yaml_value("--horizon", args.horizon)
    if args.action_dim is not None:
        decoder["action_dim"] = args.action_dim
    if args.on_error is not None:
        decoder["on_error"] = args.on_error
    if args.stats is not None:
        normalize["stats_path"] = args.stats
    if args.key is not None:
        normalize["key"] = args.key
    if args.dims is not None:
        normalize["dims"] = _yaml_value("--dims", args.dims)
    for flag in ("low", "high"):
        text = getattr(args, flag)
        if text is not None:
            values = _numbers(f"--{flag}", text)
            normalize[flag] = values[0] if len(values) == 1 else values
    if args.steps is not None:
        convert["steps"] = [s.strip() for s in args.steps.split(",") if s.strip()]
    if args.clip:
        convert["clip"] = True
    sections = {"decoder": decoder, "normalize": normalize, "convert": convert}
    for item in args.overrides:
        target, sep, value = item.partition("=")
        section, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise UserInputError(f"--set {item!r} is not valid; allowed: SECTION.KEY=VALUE, e.g. decoder.scale=10")
        if section not in sections:
            raise choices_error("--set section", section, list(SECTIONS))
        sections[section][key] = _yaml_value(f"--set {target}", value)
    return decoder, normalize, convert


def _yaml_value(flag: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserInputError(f"{flag} value {text!r} is not valid YAML") from None


def _numbers(flag: str, text: str) -> list[float]:
    parts = [p for p in text.replace(",", " ").replace("[", " ").replace("]", " ").split()]
    if not parts:
        raise UserInputError(f"{flag} {text!r} is not valid; allowed: comma-separated numbers")
    try:
        return [float(p) for p in parts]
    except ValueError:
        bad = next(p for p in parts if not _is_float(p))
        raise UserInputError(f"{flag} value {bad!r} is not a number") from None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- the policy output from the arguments -----------------------------------------------------

def _read_input(args: argparse.Namespace) -> tuple[Any, str]:
    if args.tokens is not None:
        return _parse_tokens(args.tokens), "token ids (--tokens)"
    if args.tokens_file is not None:
        data = _load_file(args.tokens_file, "--tokens-file")
        if isinstance(data, dict) and isinstance(data.get("sequences"), list) and data["sequences"]:
            data = data["sequences"][0].get("tokens") if isinstance(data["sequences"][0], dict) else None
        ids = np.asarray(data) if data is not None else np.asarray([])
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise UserInputError(f"--tokens-file {args.tokens_file!r} does not hold a list of integer token ids")
        return ids.astype(np.int64), f"token ids ({args.tokens_file})"
    data = _load_file(args.chunk, "--chunk")
    if isinstance(data, dict) and isinstance(data.get("actions"), dict):
        data = data["actions"]
    if isinstance(data, dict) and "data" in data and "shape" in data:
        try:
            data = np.asarray(data["data"], dtype=np.float64).reshape(data["shape"])
        except (TypeError, ValueError) as exc:
            raise UserInputError(f"--chunk {args.chunk!r}: data does not fit shape ({exc})") from None
    try:
        chunk = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserInputError(f"--chunk {args.chunk!r} does not hold a numeric (H, D) chunk") from None
    return chunk, f"chunk ({args.chunk})"


def _parse_tokens(text: str) -> list[int]:
    parts = text.replace(",", " ").replace("[", " ").replace("]", " ").split()
    if not parts:
        raise UserInputError("--tokens is empty; allowed: comma-separated integer ids, e.g. 0,256,511")
    ids = []
    for part in parts:
        try:
            ids.append(int(part))
        except ValueError:
            raise UserInputError(f"--tokens value {part!r} is not an integer token id") from None
    return ids


def _load_file(path_text: str, flag: str) -> Any:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserInputError(f"{flag} {path_text!r} is not an existing file")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise UserInputError(f"{flag} {path_text!r} is not a readable .npy array ({exc})") from None
    if path.suffix == ".json":
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"{flag} {path_text!r} is not valid JSON ({exc})") from None
    raise UserInputError(f"{flag} {path_text!r} is not valid; allowed: a .npy or .json file")


# --- printing ---------------------------------------------------------------------------------

_STAGE_TITLES = {"decode": "decoded (normalized)", "unnormalize": "unnormalized (robot units)"}


def _as_text(pipeline: ActionPipeline, result: PipelineResult, what: str, precision: int) -> str:
    desc = pipeline.describe()
    lines = [f"input: {what}",
             "pipeline: " + " -> ".join(_step_label(name, desc) for name in pipeline.step_names), ""]
    for name, chunk in result.stages.items():
        title = _STAGE_TITLES.get(name, f"after {name}")
        lines.append(f"{title}: {chunk.shape[0]} x {chunk.shape[1]}")
        lines.extend(_rows(chunk, precision))
        lines.append("")
    lines.append(f"actions (LIBERO, for env.step): {result.actions.shape[0]} x {result.actions.shape[1]}")
    lines.extend(_rows(result.actions, precision))
    if not is_libero_shape(result.actions):
        lines.append(f"  note: an evaluation would reject these: LIBERO needs (H, 7), not {result.actions.shape}")
    lines.append("")
    lines.append("events:" + ("" if result.events else " none"))
    lines.extend(f"  - {event}" for event in result.events)
    lines.append("")
    lines.append("description: " + json.dumps(desc))
    return "\n".join(lines)


def _step_label(name: str, desc: dict[str, Any]) -> str:
    if name == "decode":
        return f"decode[{desc['decoder']['name']}]"
    if name == "unnormalize":
        return f"unnormalize[{desc['normalize']['name']}]"
    return name


def _rows(chunk: np.ndarray, precision: int) -> list[str]:
    width = precision + 4
    return [f"  t={t:<3d}" + " ".join(f"{v:>{width}.{precision}f}" for v in row) for t, row in enumerate(chunk)]


def _as_json(pipeline: ActionPipeline, result: PipelineResult, what: str) -> dict[str, Any]:
    return {
        "input": what,
        "pipeline": pipeline.describe(),
        "stages": {name: chunk.tolist() for name, chunk in result.stages.items()},
        "actions": result.actions.tolist(),
        "libero_shape": is_libero_shape(result.actions),
        "events": list(result.events),
    }
