"""Serve a harness policy over the MinT protocol: one model process for many simulation workers.

    evalharness serve policy=checkpoint policy.path=DIR serve.port=8000 serve.max_batch=8

Arguments are Hydra overrides of the evaluation config: the ``policy`` and ``decoder``
groups choose what is served, ``protocol`` which cameras are real, ``serve.*`` how (see
``evalharness/transports/mint/serve_settings.py``). Evaluate against it with ``policy=mint
policy.base_url=http://HOST:PORT policy.model_path=local://NAME policy.state_space=raw``.
With ``serve.port=0`` a free port is chosen; the ready line printed on stdout names it.
``--protocol openpi|vla_eval`` serves the same policy behind openpi's or vla-eval's
websocket protocol instead (``evalharness/commands/serve_websocket.py``).
"""

from __future__ import annotations

import argparse
import sys

from evalharness.errors import UserInputError

from evalharness.transports.mint.serve_settings import READY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. policy=random serve.port=8000")
    parser.add_argument("--protocol", choices=("mint", "openpi", "vla_eval"), default="mint",
                        help="the wire: MinT's HTTP routes (default), openpi's or vla-eval's websocket protocol")
    # For runner.policy_server=auto: the resolved config arrives on stdin (it may hold secrets,
    # so it is never written to disk or put on a command line), and the server dies with the run.
    parser.add_argument("--config-stdin", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--die-with-parent", action="store_true", help=argparse.SUPPRESS)


def compose(overrides: list[str]) -> dict:
    """The evaluation config with ``overrides``, as a plain dict (one-line errors)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from evalharness.config.conf import CONF_DIR, check_group_choices, check_overrides

    check_group_choices(overrides)
    check_overrides(overrides)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="evalharness-serve"):
        cfg = hydra_compose("config", overrides=overrides)
    # ${hydra:...} interpolations (run_name) cannot resolve outside a Hydra app: serve needs none of them.
    return {key: OmegaConf.to_container(cfg[key], resolve=True)
            for key in ("policy", "decoder", "normalize", "convert", "protocol", "serve")}


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from evalharness.transports.mint.policy import api_key_from_env
    from evalharness.transports.mint.server import build_service, create_app, listening_socket

    if args.die_with_parent:
        from evalharness.engine.child_process import die_with_parent

        die_with_parent()
    if args.config_stdin:
        import json

        config = json.loads(sys.stdin.read())
    else:
        config = compose(list(args.overrides))
    if getattr(args, "protocol", "mint") != "mint":  # openpi's / vla-eval's websocket protocol
        from evalharness.commands.serve_websocket import run_websocket

        return run_websocket(config, args.protocol)
    api_key = None
    if (config.get("serve") or {}).get("auth") == "env":
        api_key = api_key_from_env()
        if not api_key:
            raise UserInputError("serve.auth=env needs MINT_API_KEY (or TINKER_API_KEY) set in the environment")
    service = build_service(config, api_key=api_key)
    settings = service.settings
    try:
        sock = listening_socket(settings.host, settings.port)
    except OSError as exc:
        raise UserInputError(f"serve.host={settings.host!r} serve.port={settings.port} cannot be used: {exc.strerror}") from None
    host, port = sock.getsockname()[:2]
    print(f"{READY}http://{host}:{port} (policy {service.policy.name}, max_batch {settings.max_batch})", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        service.close()
        sock.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(argparse.Namespace(overrides=sys.argv[1:])))
