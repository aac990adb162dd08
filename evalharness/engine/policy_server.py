"""``policy_server=auto``: one ``evalharness serve`` process for a run's policy.

(The setting is the run's, :mod:`evalharness.engine.run_settings`; ``runner.policy_server``,
its old place, is forwarded there.)

The run starts ``evalharness serve`` on 127.0.0.1 (a free port) for its configured policy
and decoder, and hands the workers a ``policy=mint`` config pointing at it, so N workers
share one loaded model instead of loading N copies; the serve process batches their
queries (``serve.max_batch``, ``serve.max_wait_ms``).

Outcomes equal the in-process run's: the served policy's forks are seeded with each
episode's seed (carried in the session id), the state travels raw (``state_space=raw``)
and as float32 exactly as the env gives it, images as lossless PNG, chunks back as
float64, token output is decoded on the server with the run's decoder (its events come
back with the chunk), and the workers' pipeline keeps the run's ``normalize`` and
``convert`` steps. The prompt uses utf8-bytes tokens (no SentencePiece model is needed
between the harness's own client and server). The identity records that the policy was
served and the batch setting: a policy whose batched float kernels differ in the last
bits must not share results with an unbatched run.

The server's configuration (which may hold secrets) goes to it on stdin, never on disk or
on a command line. It dies with the run: stopped in a ``finally`` (errors, Ctrl-C), and
killed by Linux when the parent dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from evalharness.engine.run_settings import load_run_settings
from evalharness.errors import UserInputError

START_TIMEOUT_S = 300.0  # a checkpoint may take a while to load
#: The workers' client waits long for a result: a batch of big-model queries can be slow.
CLIENT_TIMEOUTS = {"connect": 10.0, "read": 300.0, "write": 60.0, "pool": 60.0, "future": 3600.0, "create": 600.0}


def mode(config: dict[str, Any]) -> str:
    """``policy_server`` (or its old name ``runner.policy_server``), validated."""
    value = load_run_settings(config).policy_server
    if value == "auto" and str(config["policy"].get("_target_", "")).startswith("evalharness.transports.mint."):
        raise UserInputError("policy_server=auto serves the configured policy; policy=mint is already remote")
    return value


def annotate_identity(identity: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The run's policy identity, plus how it was served when ``policy_server=auto``."""
    if mode(config) != "auto":
        return identity
    from evalharness.transports.mint.serve_settings import load_serve_settings

    settings = load_serve_settings(config.get("serve"))
    return {**identity, "policy_server": {"mode": "auto", "protocol": "mint", **settings.identity()}}


def _server_config(config: dict[str, Any]) -> dict[str, Any]:
    serve = {**(config.get("serve") or {}), "host": "127.0.0.1", "port": 0, "tokenizer": None, "state_space": "raw",
             "stats_path": None, "auth": "none"}
    return {"policy": config["policy"], "decoder": config["decoder"], "protocol": config["protocol"], "serve": serve}


class PolicyServer:
    """A running ``evalharness serve`` child process."""

    def __init__(self, config: dict[str, Any]) -> None:
        from evalharness.transports.mint.serve_settings import READY

        self.process = subprocess.Popen(
            [sys.executable, "-m", "evalharness", "serve", "--config-stdin", "--die-with-parent"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(_server_config(config)))
        self.process.stdin.close()
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(self.process.stdout, lines), daemon=True).start()
        try:
            line = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            line = None
        if line is None or not line.startswith(READY):
            self.stop()
            raise UserInputError(f"policy_server=auto: the policy server did not start (exit code "
                                 f"{self.process.returncode}; its error is printed above)")
        self.url = line[len(READY):].split()[0]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _pump(stream: Any, lines: queue.Queue) -> None:
    """Forward the server's stdout: its ready line to the parent, anything else to our stdout."""
    first = True
    for line in stream:
        if first:
            lines.put(line.strip())
            first = False
        else:
            sys.stdout.write(line)
    if first:
        lines.put(None)


def _client_pipeline(config: dict[str, Any], pipeline_cfg: dict[str, Any]) -> dict[str, Any]:
    """The workers' pipeline: the run's, with the stages the policy declares filled in (the
    client, ``policy=mint``, declares none), minus decoding, which the server does."""
    from hydra.utils import instantiate

    from evalharness.policies.pipelined import split_at_decoder

    policy = instantiate(config["policy"], _convert_="all")  # model policies load no weights here
    try:
        return split_at_decoder(policy, pipeline_cfg)[1]
    finally:
        policy.close()


def start_for_run(config: dict[str, Any], pipeline_cfg: dict[str, Any], needed: bool) -> tuple[
        dict[str, Any], dict[str, Any], Callable[[], None]]:
    """(workers' policy config, workers' pipeline config, stop) for this run.

    Without ``policy_server=auto`` (or with nothing to run) these are the run's own
    configs and a no-op. Otherwise a server is running; call ``stop`` in a ``finally``.
    """
    if mode(config) != "auto" or not needed:
        return config["policy"], pipeline_cfg, lambda: None
    server = PolicyServer(config)
    name = str(config["policy"].get("_target_", "policy")).rsplit(".", 1)[-1]
    policy = {
        "_target_": "evalharness.transports.mint.policy.MintPolicy",
        "model_path": f"local://{name}",
        "base_url": server.url,
        "mode": "action",
        "tokenizer": None,
        "stats_path": None,
        "state_space": "raw",
        "timeouts": CLIENT_TIMEOUTS,
    }
    pipeline_cfg = _client_pipeline(config, pipeline_cfg)
    return policy, pipeline_cfg, server.stop
