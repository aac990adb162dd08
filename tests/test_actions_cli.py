"""`evalharness decode` and `evalharness fit-fast`, end to end through evalharness.cli.main."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.fft
from tokenizers import Tokenizer

from evalharness.cli import main

Q01 = [-0.9, -0.8, -0.7, -0.1, -0.2, -0.3, -1.0]
Q99 = [0.9, 0.85, 0.95, 0.12, 0.2, 0.33, 1.0]
STATE = [0.11, -0.22, 0.33, 1.5, -1.25, 0.75, 0.04, -0.04]


@pytest.fixture
def stats(tmp_path):
    path = tmp_path / "norm_stats.json"
    path.write_text(json.dumps({"norm_stats": {"actions": {"q01": Q01, "q99": Q99}}}))
    return path


def run_json(capsys, *argv):
    assert main(["decode", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_decode_mint_tokens_golden(capsys):
    out = run_json(capsys, "--decoder", "mint_uniform", "--tokens", "0,256,511", "--action-dim", "3")
    assert out["stages"]["decode"] == [[-1.0, 0.0, 0.99609375]]
    assert out["pipeline"]["decoder"]["name"] == "mint_uniform"
    assert out["libero_shape"] is False  # 3 wide: shown for debugging, flagged as not (H, 7)


def test_decode_table_flags_a_non_libero_shape(capsys):
    assert main(["decode", "--decoder", "mint_uniform", "--tokens", "0,256,511", "--action-dim", "3"]) == 0
    assert "note: an evaluation would reject these: LIBERO needs (H, 7), not (1, 3)" in capsys.readouterr().out


def test_decode_table_output(capsys):
    tokens = "0,256,511,256,256,256,384"
    assert main(["decode", "--decoder", "mint_uniform", "--tokens", tokens]) == 0
    text = capsys.readouterr().out
    assert "decoded (normalized): 1 x 7" in text
    assert "actions (LIBERO, for env.step): 1 x 7" in text
    assert "-1.000000" in text and "0.996094" in text and "0.500000" in text
    assert "events: none" in text
    assert "note:" not in text


def test_decode_with_quantile_stats_and_delta(capsys, stats):
    tokens = [0, 256, 511, 128, 384, 300, 200]
    out = run_json(capsys, "--decoder", "mint_uniform", "--tokens", ",".join(map(str, tokens)),
                   "--normalize", "quantile", "--stats", str(stats), "--convert", "openpi_libero",
                   "--state", ",".join(map(str, STATE)))
    x_n = np.array(tokens) / 256 - 1.0
    x = (x_n + 1) / 2 * (np.array(Q99) - np.array(Q01) + 1e-6) + np.array(Q01)
    np.testing.assert_allclose(out["stages"]["unnormalize"][0], x, atol=1e-12)
    x[:6] += np.array(STATE[:6])
    np.testing.assert_allclose(out["actions"][0], x, atol=1e-12)
    assert list(out["stages"]) == ["decode", "unnormalize", "delta_to_absolute", "keep_first_7"]
    assert len(out["pipeline"]["normalize"]["stats_sha256"]) == 64


def test_decode_chunk_from_npy_and_mint_json(capsys, tmp_path):
    chunk = np.linspace(-0.5, 0.5, 14).reshape(2, 7)
    np.save(tmp_path / "chunk.npy", chunk)
    out = run_json(capsys, "--chunk", str(tmp_path / "chunk.npy"), "--normalize", "range", "--low", "-2",
                   "--high", "2", "--clip")
    np.testing.assert_allclose(out["actions"], chunk * 2)  # low + (x + 1) / 2 * (high - low) = 2x
    assert out["events"] == []  # |2x| <= 1: the clip step changed nothing, so it reports nothing
    assert out["pipeline"]["convert"]["steps"] == [{"name": "clip", "low": -1.0, "high": 1.0}]
    (tmp_path / "act.json").write_text(json.dumps(
        {"actions": {"data": chunk.reshape(-1).tolist(), "shape": [2, 7], "dtype": "float32"}, "type": "act"}))
    out = run_json(capsys, "--chunk", str(tmp_path / "act.json"))
    np.testing.assert_allclose(out["actions"], chunk)


def test_decode_tokens_file_with_a_sampler_response(capsys, tmp_path):
    path = tmp_path / "sample.json"
    path.write_text(json.dumps({"sequences": [{"tokens": [31999] * 7, "stop_reason": "stop"}]}))
    out = run_json(capsys, "--decoder", "openvla_bins", "--tokens-file", str(path))
    np.testing.assert_allclose(out["actions"], [[-1 + 1 / 255] * 7])


def test_decode_clip_event_is_printed(capsys):
    assert main(["decode", "--decoder", "mint_uniform", "--tokens", "0,0,0,0,0,0,0",
                 "--normalize", "range", "--low", "-4", "--high", "4", "--clip"]) == 0
    text = capsys.readouterr().out
    assert "clip: 7 of 7 action values outside [-1, 1] clipped (most extreme: -4)" in text


def test_decode_error_is_one_line_and_exit_1(capsys):
    assert main(["decode", "--decoder", "mint_uniform", "--tokens", "0,256,600,0,0,0,0"]) == 1
    err = capsys.readouterr().err
    assert err == ("evalharness decode: decode error: mint_uniform: token 600 at position 2 is out of range; "
                   "allowed: 0 <= token < 512\n")


@pytest.mark.parametrize("argv, message", [
    (["--tokens", "1,x,3"], "--tokens value 'x' is not an integer token id"),
    (["--tokens", "1", "--normalize", "quantile", "--stats", "/nonexistent/norm_stats.json"],
     "is not an existing file"),
    (["--tokens", "1", "--set", "decoder"], "--set 'decoder' is not valid; allowed: SECTION.KEY=VALUE"),
    (["--tokens", "1", "--set", "policy.x=1"], "--set section 'policy' is not valid; allowed: decoder, normalize"),
    (["--chunk", "chunk.txt"], "is not an existing file"),
    (["--tokens", "1", "--state", "0,a"], "--state value 'a' is not a number"),
])
def test_user_errors_are_one_line_exit_2(capsys, argv, message):
    assert main(["decode", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evalharness: error: ") and message in err
    assert err.count("\n") == 1


def test_set_overrides_reach_the_decoder(capsys):
    out = run_json(capsys, "--decoder", "mint_uniform", "--tokens", "0,128,255", "--set", "decoder.divisor=128",
                   "--set", "decoder.action_dim=3")
    assert out["stages"]["decode"] == [[-1.0, 0.0, 255 / 128 - 1]]


def test_decode_help_explains_every_step(capsys):
    with pytest.raises(SystemExit) as info:
        main(["decode", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for name in ("none", "mint_uniform", "fast", "openvla_bins", "quantile", "zscore", "range", "openvla",
                 "delta_to_absolute", "openvla_gripper", "keep_first_7", "clip", "openpi_libero"):
        assert name in text, name
    assert "i / 256 - 1.0" in text and "q99 - q01 + 1e-6" in text and "std + 1e-6" in text
    assert "-sign(2g - 1)" in text and "first 6 values" in text


def test_fit_fast_then_decode(capsys, tmp_path):
    rng = np.random.default_rng(0)
    chunks = np.clip(np.cumsum(rng.normal(0, 0.15, (60, 10, 7)), axis=1), -1, 1)
    np.save(tmp_path / "chunks.npy", chunks)
    out_dir = tmp_path / "fast"
    assert main(["fit-fast", str(tmp_path / "chunks.npy"), "--out", str(out_dir), "--vocab-size", "300"]) == 0
    printed = capsys.readouterr().out
    coeffs = np.around(scipy.fft.dct(chunks, axis=1, norm="ortho") * 10)
    min_token = int(coeffs.min())
    assert f"min_token {min_token}" in printed and "tokenizer_path:" in printed
    config = json.loads((out_dir / "processor_config.json").read_text())
    assert config["min_token"] == min_token and config["time_horizon"] == 10 and config["action_dim"] == 7

    # encode chunk 0 by hand (frequency-major chr(c - min_token)) with the written tokenizer.json
    tokenizer = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    text = "".join(chr(int(c) - min_token) for c in coeffs[0].reshape(-1))
    ids = tokenizer.encode(text).ids
    out = run_json(capsys, "--decoder", "fast", "--tokenizer", str(out_dir / "tokenizer.json"),
                   "--set", "decoder.id_space=fast", "--set", f"decoder.min_token={min_token}",
                   "--tokens", ",".join(map(str, ids)))
    expected = scipy.fft.idct(coeffs[0] / 10, axis=0, norm="ortho")
    np.testing.assert_allclose(out["actions"], expected, atol=1e-12)


def test_fit_fast_refuses_bad_input(capsys, tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((10, 7)))
    assert main(["fit-fast", str(tmp_path / "flat.npy"), "--out", str(tmp_path / "o")]) == 2
    assert "allowed: an array of shape (N, H, D)" in capsys.readouterr().err
    assert main(["fit-fast", str(tmp_path / "x.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "allowed: a .npy file of shape (N, H, D)" in capsys.readouterr().err
