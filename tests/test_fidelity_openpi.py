"""evalharness's pi0-FAST path against openpi's own code, stage by stage (issue 25, docs/fidelity.md).

openpi runs for real in a side venv (``make openpi-venv``: ``rlinf-openpi==0.1.1``, RLinf's
redistribution of Physical Intelligence's openpi, installed --no-deps with the CPU packages
of ``tests/fidelity/openpi-requirements.txt``), through ``tests/fidelity/openpi_side.py``:
``get_config("pi0_fast_libero")``'s transforms inside openpi's ``Policy.infer``. Both sides
get the same generated cases; every comparison is exact except the final actions, whose
documented difference is bounded.

Two things cannot be had here and are stood in for (see ``openpi_side.py``): the PaliGemma
tokenizer is a generated SentencePiece model laid out like it
(``fidelity_fixtures.paligemma_like_sentencepiece``), and the FAST processor (remote code
on the model hub) is the project's fitted FAST tokenizer handed to openpi's
``FASTTokenizer`` through the one method it calls, ``decode(tokens, time_horizon,
action_dim)``; openpi's own extraction (the ``"Action: "`` / ``"|"`` split, the re-encode,
the PaliGemma id mapping) runs for real. The model is a stand-in returning the token row
under test.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fidelity_fixtures as ff

ROOT = Path(__file__).resolve().parents[1]
SIDE_SCRIPT = ROOT / "tests" / "fidelity" / "openpi_side.py"
#: openpi adds back a state that went normalize -> float32 -> unnormalize (docs/fidelity.md).
FINAL_ACTIONS_BOUND = 1.3e-7
#: ... and with the env's float32 state added instead of the float64 one: one float32 ulp of the state more.
FLOAT32_STATE_BOUND = 2.5e-7


def side_python() -> Path:
    """The openpi side venv's Python: $EVALHARNESS_OPENPI_PYTHON, ./.venv-openpi, or <this venv>-openpi."""
    candidates = [os.environ.get("EVALHARNESS_OPENPI_PYTHON"), ROOT / ".venv-openpi" / "bin" / "python",
                  Path(sys.prefix + "-openpi") / "bin" / "python"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.fail("the openpi side venv is missing: run 'make openpi-venv' (make test builds it)")


# ---------------------------------------------------------------- the generated cases
def _instructions(rng: np.random.Generator) -> list[str]:
    from envs.libero.catalog import all_tasks

    libero = sorted({t.instruction for t in all_tasks()})
    odd = ["Put_The BOWL on the plate", "  pick up the crème brûlée_and place it  ", "ÖFFNE die Schublade",
           "turn on the stove—now", "place the 碗 in the basket", "PUT the wine_bottle ON top of the CABINET"]
    long = [" ".join(rng.choice(ff.WORDS, size=170)), "_".join(rng.choice(ff.WORDS, size=220))]
    alphabet = list("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ__  éüßçñ碗盘øЖж—,'0123456789")
    generated = ["".join(rng.choice(alphabet, size=int(rng.integers(1, 60)))) for _ in range(150)]
    return libero[:40] + odd + generated + long


def _states(stats: dict, rng: np.random.Generator, n: int) -> np.ndarray:
    """Raw float64 states whose normalized values cover [-1.3, 1.3], bin edges, NaN and inf."""
    q01, q99 = np.asarray(stats["q01"]), np.asarray(stats["q99"])
    span = q99 - q01 + 1e-6
    normalized = rng.uniform(-1.3, 1.3, size=(n, ff.STATE_DIM))
    edges = np.linspace(-1, 1, 257)[:-1]
    near = rng.choice(edges, size=(n // 3, ff.STATE_DIM)) + rng.normal(0, 1e-9, size=(n // 3, ff.STATE_DIM))
    normalized[: n // 3] = near
    raw = (normalized + 1.0) / 2.0 * span + q01
    raw[-1, 0], raw[-2, 1], raw[-3, 2] = np.nan, np.inf, -np.inf
    raw[-4] = q01 + 0.0  # exactly at q01: normalized -1 (the lowest bin), and the q01 == q99 dim
    return raw


def _rows(decoder: Any, sp: Any, rng: np.random.Generator) -> tuple[list[str], list[list[int]]]:
    """Well-formed pi0-FAST token rows, then each kind of malformed one the issue lists."""
    prefix, bar, eos = sp.encode("Action: "), sp.encode("|"), sp.eos_id()
    low, high = decoder.action_id_range()
    text_id = sp.encode("bowl")[0]
    names, rows = [], []

    def add(name: str, row: list[int]) -> None:
        names.append(name)
        rows.append([int(i) for i in row])

    chunks = ff.smooth_chunks(40, seed=7)
    actions = [decoder.encode(c).tolist() for c in chunks]
    for i, ids in enumerate(actions):
        add("well_formed", prefix + ids + bar + [eos])
    a = actions[0]
    add("missing_action_marker", a + bar + [eos])
    add("empty_span", prefix + bar + [eos])
    add("doubled_span", prefix + a + a + bar + [eos])
    add("text_id_replaces_action_id", prefix + [text_id] + a[1:] + bar + [eos])
    add("extra_text_id", prefix + a[:2] + [text_id] + a[2:] + bar + [eos])
    add("id_below_fast_range", prefix + a[:1] + [low - 1] + a[1:] + bar + [eos])
    add("pad_inside_span", prefix + a[:3] + [0] + a[3:] + bar + [eos])
    add("missing_id", prefix + a[1:] + bar + [eos])
    add("no_end_marker", prefix + a)
    add("seg_token_in_span", prefix + a[:1] + [high + 5] + a[1:] + bar + [eos])
    lone = [i for i in range(decoder.tokenizer.get_vocab_size())
            if "\ufffd" in decoder.tokenizer.decode([i], skip_special_tokens=False)]
    if lone:
        add("lone_utf8_byte", prefix + a[:-1] + [int(decoder.vocab_size - 1 - decoder.skip_tokens - lone[0])]
            + bar + [eos])
    return names, rows


@pytest.fixture(scope="module")
def fidelity(tmp_path_factory) -> dict[str, Any]:
    """Build the fixtures, run openpi on every case in one subprocess, return both sides' inputs and openpi's outputs."""
    import sentencepiece

    from evalharness.actions.decoders import build_decoder

    root = tmp_path_factory.mktemp("fidelity_openpi")
    sp_path = ff.paligemma_like_sentencepiece(root)
    fast = ff.fitted_fast_tokenizer(root, vocab_size=300)
    stats_path = ff.norm_stats(root)
    stats = json.loads(stats_path.read_text())["norm_stats"]
    sp = sentencepiece.SentencePieceProcessor(model_file=str(sp_path))
    decoder_cfg = {"name": "pi0_fast", "tokenizer_path": fast["tokenizer_path"], "paligemma_tokenizer": str(sp_path),
                   "scale": fast["scale"], "min_token": fast["min_token"], "on_error": "openpi"}
    decoder = build_decoder(decoder_cfg)
    rng = np.random.default_rng(25)
    prompts = _instructions(rng)
    states = _states(stats["state"], rng, len(prompts))
    repro = {"q01": -0.30, "q99": 0.20, "raw": -0.05976514453124998}  # the float32 bin flip
    names, rows = _rows(decoder, sp, rng)
    width = max(map(len, rows)) + 4
    padded = np.zeros((len(rows), width), dtype=np.int64)  # pi0-FAST's output is zero-padded after EOS
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    lengths = np.asarray([min(len(r) + 3, width) for r in rows])
    row_states = _states(stats["state"], rng, len(rows) + 4)[: len(rows)]
    row_states = np.nan_to_num(row_states, nan=0.1, posinf=0.2, neginf=-0.2)
    images = rng.integers(0, 256, size=(2, 2, 224, 224, 3), dtype=np.uint8)
    cases = root / "cases.npz"
    np.savez(cases, prompts=np.asarray(json.dumps(prompts)), states=states, base_images=images[0],
             wrist_images=images[1], rows=padded, row_states=row_states, row_lengths=lengths)
    config = root / "config.json"
    config.write_text(json.dumps({"sp_model": str(sp_path), "fast": fast, "norm_stats": str(stats_path)}))
    out = root / "openpi.npz"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run([str(side_python()), str(SIDE_SCRIPT), str(cases), str(config), str(out)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(out, allow_pickle=False)
    openpi = {k: got[k] for k in got.files}
    return {"root": root, "sp_path": sp_path, "sp": sp, "fast": fast, "stats_path": stats_path, "stats": stats,
            "decoder_cfg": decoder_cfg, "decoder": decoder, "prompts": prompts, "states": states, "images": images,
            "names": names, "rows": padded, "lengths": lengths, "row_states": row_states, "openpi": openpi,
            "meta": json.loads(str(openpi["meta"])), "repro": repro}


# ---------------------------------------------------------------- evalharness's side
class _CapturingClient:
    """Stands in for the MinT server only: keeps the request body MintPolicy.act sends, answers a zero chunk."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []

    def submit(self, url: str, body: Any) -> dict[str, Any]:
        self.bodies.append(body)
        return {"actions": {"data": [0.0] * 70, "shape": [10, 7], "dtype": "float32"}}

    def delete(self, url: str) -> None:
        pass

    def close(self) -> None:
        pass


def mint_request(fidelity: dict, prompt: str, observation: dict, **settings: Any) -> tuple[Any, list[str]]:
    """What ``policy=mint`` (default settings) sends for one query, and its events."""
    from evalharness.transports.mint.policy import MintPolicy

    policy = MintPolicy("mint://fidelity/sampler_weights/x", tokenizer=str(fidelity["sp_path"]),
                        stats_path=str(fidelity["stats_path"]), **settings)
    client = _CapturingClient()
    policy._client, policy._session, policy._instruction = client, "session", prompt
    policy.act(observation)
    return client.bodies[0], policy.drain_events()


def _observation(fidelity: dict, i: int, state: np.ndarray) -> dict:
    base, wrist = fidelity["images"][0], fidelity["images"][1]
    return {"images": {"base_0_rgb": base[i % 2], "left_wrist_0_rgb": wrist[i % 2],
                       "right_wrist_0_rgb": np.zeros_like(base[0])}, "state": state}


def _png(chunk: Any) -> np.ndarray:
    from PIL import Image

    data = chunk.data if hasattr(chunk, "data") else chunk.model_dump()["data"]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


# ---------------------------------------------------------------- the comparisons
def test_openpi_runs_its_own_pi0_fast_libero_transforms(fidelity):
    meta = fidelity["meta"]
    assert meta["max_token_len"] == 180 and meta["use_quantile_norm"] is True
    assert meta["output_transforms"] == ["ExtractFASTActions", "Unnormalize", "AbsoluteActions", "LiberoOutputs"]
    assert "TokenizeFASTInputs" in meta["input_transforms"] and "LiberoInputs" in meta["input_transforms"]


def test_prompt_ids_equal_openpi_including_out_of_range_nan_inf_and_long_prompts(fidelity):
    """policy=mint's default (state_out_of_range=openpi, prompt_too_long=truncate) sends openpi's exact prompt ids."""
    openpi, truncated = fidelity["openpi"], 0
    for i, prompt in enumerate(fidelity["prompts"]):
        body, events = mint_request(fidelity, prompt, _observation(fidelity, i, fidelity["states"][i]))
        ours = body.observation.model_input.chunks[-1].tokens
        assert ours == openpi[f"prompt_ids/{i}"].tolist(), (i, prompt)
        cut = any(e.startswith("prompt_truncated: ") for e in events)
        assert cut == bool(openpi[f"truncated/{i}"]), (i, prompt)
        truncated += cut
    assert truncated >= 2  # the long instructions were cut, as openpi cuts them


def test_out_of_range_states_were_actually_generated(fidelity):
    states = [fidelity["openpi"][f"state/{i}"] for i in range(len(fidelity["prompts"]))]
    values = np.concatenate(states)
    assert (values < -1).sum() > 20 and (values > 1).sum() > 20 and np.isnan(values).sum() >= 1


def test_clip_would_have_differed(fidelity):
    """The old default (clip) writes bin 0 where openpi writes -1: the comparison above can fail."""
    i = next(i for i, s in enumerate(fidelity["openpi"][f"state/{j}"] for j in range(len(fidelity["prompts"])))
             if np.nanmin(s) < -1 and np.isfinite(s).all())
    body, _ = mint_request(fidelity, fidelity["prompts"][i], _observation(fidelity, i, fidelity["states"][i]),
                           state_out_of_range="clip")
    assert body.observation.model_input.chunks[-1].tokens != fidelity["openpi"][f"prompt_ids/{i}"].tolist()


def test_strict_prompt_length_is_an_option(fidelity):
    from evalharness.errors import PolicyError

    i = len(fidelity["prompts"]) - 1
    with pytest.raises(PolicyError, match="pi0-FAST takes at most 180"):
        mint_request(fidelity, fidelity["prompts"][i], _observation(fidelity, i, fidelity["states"][0]),
                     prompt_too_long="error")


def test_normalized_state_equals_openpi_normalize(fidelity):
    from evalharness.actions.normalize import QuantileNormalizer

    normalizer = QuantileNormalizer.from_stats_file(fidelity["stats_path"], key="state", dims=None)
    for i in range(len(fidelity["prompts"])):
        ours = normalizer.normalize(fidelity["states"][i])
        assert np.array_equal(ours, fidelity["openpi"][f"state/{i}"], equal_nan=True), i


def test_float64_state_path_gives_openpis_bin(fidelity, tmp_path):
    """The issue's repro: float64 gives bin 123 (openpi), a float32 state would give 122."""
    from evalharness.actions.state_tokens import discretize_state

    r = fidelity["repro"]
    normalized64 = (r["raw"] - r["q01"]) / (r["q99"] - r["q01"] + 1e-6) * 2.0 - 1.0
    raw32 = float(np.float32(r["raw"]))
    normalized32 = (raw32 - r["q01"]) / (r["q99"] - r["q01"] + 1e-6) * 2.0 - 1.0
    assert discretize_state([normalized64], out_of_range="openpi").bins == (123,)
    assert discretize_state([normalized32], out_of_range="openpi").bins == (122,)
    stats = tmp_path / "norm_stats.json"
    stats.write_text(json.dumps({"norm_stats": {"state": {"q01": [r["q01"]] * 8, "q99": [r["q99"]] * 8,
                                                           "mean": [0.0] * 8, "std": [1.0] * 8}}}))
    from evalharness.transports.mint.policy import client_state

    robot = {"robot0_eef_pos": np.array([r["raw"], 0.0, 0.0]), "robot0_eef_quat": np.array([0.0, 0.0, 0.0, 1.0]),
             "robot0_gripper_qpos": np.array([0.0, 0.0])}
    observation = {"state": np.zeros(8, dtype=np.float32), "robot": robot}
    assert client_state(observation)[0] == r["raw"]  # from the raw robot entries, not the float32 state
    assert client_state(observation).dtype == np.float64


def test_axis_angle_is_robosuites_quat2axisangle_bit_for_bit():
    """openpi's client uses robosuite's quat2axisangle; the float64 state reproduces its operation order."""
    from robosuite.utils.transform_utils import quat2axisangle as robosuite_quat2axisangle

    from evalharness.actions.openpi_state import quat2axisangle

    rng = np.random.default_rng(3)
    quats = rng.normal(size=(2000, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    for q in [*quats, np.array([0.0, 0.0, 0.0, 1.0]), np.array([0.0, 0.0, 0.0, -1.0])]:
        assert np.array_equal(quat2axisangle(q), robosuite_quat2axisangle(q.copy())), q


def test_images_and_masks_equal_libero_inputs(fidelity):
    """LiberoInputs vs the MinT observation: the same three cameras, in order, the third all zeros."""
    openpi = fidelity["openpi"]
    for i in range(2):
        body, _ = mint_request(fidelity, "pick up the bowl", _observation(fidelity, i, fidelity["states"][0]))
        sent = body.observation.model_input.chunks[:3]
        for chunk, cam in zip(sent, ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb"), strict=True):
            assert np.array_equal(_png(chunk), openpi[f"image/{i}/{cam}"]), (i, cam)
            assert bool(openpi[f"image_mask/{i}/{cam}"])  # pi0-FAST masks nothing, the zero camera included


def _pipeline(fidelity: dict, **decoder: Any):
    from evalharness.actions.pipeline import build_pipeline

    return build_pipeline({**fidelity["decoder_cfg"], **decoder},
                          {"name": "quantile", "stats_path": str(fidelity["stats_path"]), "key": "actions", "dims": 7},
                          _conf("convert", "openpi_libero"))


def _conf(group: str, name: str) -> dict:
    """A shipped preset, as Hydra would hand it over (conf/<group>/<name>.yaml)."""
    from omegaconf import OmegaConf

    return dict(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / group / f"{name}.yaml")))


def _openpi_state(fidelity: dict, i: int) -> np.ndarray:
    return fidelity["row_states"][i]


def test_decoder_pi0_fast_openpi_equals_extract_fast_actions_case_by_case(fidelity):
    """decoder=pi0_fast (on_error=openpi): every stage equals openpi's, malformed streams included."""
    openpi, pipeline = fidelity["openpi"], _pipeline(fidelity)
    kinds_with_events = set()
    for i, name in enumerate(fidelity["names"]):
        row = fidelity["rows"][i, : fidelity["lengths"][i]]
        result = pipeline(row, state=_openpi_state(fidelity, i))
        assert np.array_equal(result.stages["decode"], openpi[f"stage/{i}/0"]), (i, name)
        assert np.array_equal(result.stages["unnormalize"], openpi[f"stage/{i}/1"]), (i, name)
        diff = np.abs(result.actions - openpi[f"actions/{i}"]).max()
        assert diff <= FINAL_ACTIONS_BOUND, (i, name, diff)
        if any(e.startswith("decode_event: ") for e in result.events):
            kinds_with_events.add(name)
    malformed = set(fidelity["names"]) - {"well_formed"}
    assert malformed <= kinds_with_events, malformed - kinds_with_events  # every malformed kind is recorded
    zero = [n for i, n in enumerate(fidelity["names"]) if not openpi[f"stage/{i}/0"].any()]
    assert {"missing_action_marker", "empty_span", "missing_id"} <= set(zero)


def test_strict_decoder_agrees_on_well_formed_and_refuses_malformed(fidelity):
    """on_error=error: the same chunk wherever openpi's text round trip keeps the ids; DecodeError on malformed ids."""
    from evalharness.errors import DecodeError

    openpi, strict, as_openpi = fidelity["openpi"], _pipeline(fidelity, on_error="error"), _pipeline(fidelity)
    agreed = 0
    for i, name in enumerate(fidelity["names"]):
        row = fidelity["rows"][i, : fidelity["lengths"][i]]
        if name == "well_formed":
            result = strict(row, state=_openpi_state(fidelity, i))
            reencoded = as_openpi(row, state=_openpi_state(fidelity, i)).events
            if not reencoded:
                assert np.array_equal(result.stages["decode"], openpi[f"stage/{i}/0"]), i
                agreed += 1
        elif name in ("missing_action_marker", "empty_span", "text_id_replaces_action_id", "extra_text_id",
                      "id_below_fast_range", "pad_inside_span", "missing_id", "seg_token_in_span", "lone_utf8_byte"):
            with pytest.raises(DecodeError):
                strict(row, state=_openpi_state(fidelity, i))
    assert agreed >= 20


def test_final_actions_differ_by_at_most_the_documented_bound(fidelity):
    """openpi adds back a state that went normalize -> float32 -> unnormalize; the bound is stated, not zero."""
    openpi, pipeline = fidelity["openpi"], _pipeline(fidelity)
    worst = 0.0
    for i in range(len(fidelity["names"])):
        row = fidelity["rows"][i, : fidelity["lengths"][i]]
        worst = max(worst, float(np.abs(pipeline(row, state=_openpi_state(fidelity, i)).actions
                                        - openpi[f"actions/{i}"]).max()))
    print(f"float64 state: max |evalharness - openpi| = {worst:.3g}")
    assert 0 < worst <= FINAL_ACTIONS_BOUND


def test_final_actions_with_the_envs_float32_state_are_bounded_too(fidelity):
    """In a rollout the pipeline adds the env's float32 state (observation['state']); openpi adds its float64 one."""
    openpi, pipeline = fidelity["openpi"], _pipeline(fidelity)
    worst = 0.0
    for i in range(len(fidelity["names"])):
        row = fidelity["rows"][i, : fidelity["lengths"][i]]
        state32 = fidelity["row_states"][i].astype(np.float32)
        worst = max(worst, float(np.abs(pipeline(row, state=state32).actions - openpi[f"actions/{i}"]).max()))
    print(f"float32 state: max |evalharness - openpi| = {worst:.3g}")
    assert worst <= FLOAT32_STATE_BOUND
