"""Token output over the MinT protocol: ``create_sampling_session`` + ``asample`` returning
token ids that the client's decoder (``mint_uniform`` or ``fast``) decodes, and action
sessions where the server decodes a token policy's output into the normalized chunk.

Either way the robot actions equal those of the same policy and pipeline in-process. The
served policy replays recorded token ids; the FAST tokenizer is fitted in the test.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from evalharness.actions.fast_fit import fit_fast_tokenizer
from evalharness.commands.serve import compose
from evalharness.errors import PolicyError
from evalharness.transports.mint.policy import MintPolicy
from evalharness.transports.mint.server import ServerThread, build_service, create_app
from evalharness.policies.pipelined import PipelinedPolicy
from evalharness.policies.replay import ReplayPolicy
from mint_testing import observation

H, D = 10, 7
NONE = {"name": "none"}


def _smooth(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, H)[None, :, None]
    return np.clip(0.6 * np.sin(2 * np.pi * (t + rng.uniform(0, 1, (n, 1, D)))), -1, 1)


@pytest.fixture(scope="module")
def fast_decoder(tmp_path_factory) -> dict[str, Any]:
    fit = fit_fast_tokenizer(_smooth(100, seed=1), scale=10.0, vocab_size=400, min_token=-40)
    path = fit.save(tmp_path_factory.mktemp("fast"))
    return {"name": "fast", "tokenizer_path": str(path), "horizon": H, "action_dim": D, "scale": 10.0, "min_token": -40}


def _token_outputs(decoder_cfg: dict[str, Any]) -> list[list[int]]:
    if decoder_cfg["name"] == "mint_uniform":
        rng = np.random.default_rng(5)
        return [rng.integers(0, 512, size=H * D).tolist() for _ in range(3)]
    from evalharness.actions.decoders import build_decoder

    decoder = build_decoder(decoder_cfg)
    return [decoder.encode(chunk).tolist() for chunk in _smooth(3, seed=9)]


def _pipeline(decoder_cfg: dict[str, Any]) -> dict[str, Any]:
    return {"decoder": decoder_cfg, "normalize": NONE, "convert": {"name": "openpi_libero", "steps": ["keep_first_7"]}}


@pytest.mark.parametrize(("scheme", "mode"), [("mint_uniform", "sampling"), ("fast", "sampling"),
                                               ("mint_uniform", "action"), ("fast", "action")])
def test_token_policies_served_give_the_in_process_actions(scheme, mode, fast_decoder) -> None:
    decoder_cfg = fast_decoder if scheme == "fast" else {"name": "mint_uniform", "action_dim": D}
    outputs = _token_outputs(decoder_cfg)
    # sampling: the server returns the tokens, the client decodes; action: the server decodes.
    served_decoder = NONE if mode == "sampling" else decoder_cfg
    client_decoder = decoder_cfg if mode == "sampling" else NONE
    config = compose(["policy=replay"])
    config["policy"]["outputs"] = outputs
    config["decoder"] = served_decoder
    service = build_service(config)
    with ServerThread(create_app(service)) as server:
        # max_tokens is honoured (it truncates): room for the replayed sequences (70 tokens)
        remote = PipelinedPolicy(MintPolicy("local://replay", base_url=server.url, mode=mode, state_space="raw",
                                            max_tokens=256, timeouts={"read": 10.0, "future": 20.0}),
                                 _pipeline(client_decoder))
        local = PipelinedPolicy(ReplayPolicy(outputs=outputs), _pipeline(decoder_cfg))
        try:
            for policy in (remote, local):
                policy.reset("put the bowl on the plate", seed=0)
            for query in range(4):
                obs = observation(query)
                np.testing.assert_array_equal(remote.act(obs), local.act(obs))
            stats = remote.episode_stats()
            assert stats["queries"] == 4 and stats["server_infer_p50_ms"] >= 0
            assert httpx.get(f"{server.url}/api/v1/evalharness/status").json()["open_sessions"] == {"action": 0, "sampling": 0}
            identity = remote.identity()
            assert identity["mode"] == mode and ("decode" in identity["split"]) == (mode == "sampling")
            if mode == "sampling":
                assert identity["max_tokens"] == 256
        finally:
            remote.close()
    service.close()


def test_sampling_a_policy_that_returns_chunks_is_a_policy_error() -> None:
    service = build_service(compose(["policy=zero"]))
    with ServerThread(create_app(service)) as server:
        policy = MintPolicy("local://zero", base_url=server.url, mode="sampling", state_space="raw")
        try:
            policy.reset("x", seed=0)
            with pytest.raises(PolicyError, match="not token ids; use action sessions"):
                policy.act(observation())
        finally:
            policy.close()
    service.close()
