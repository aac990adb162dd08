"""``evalharness serve --protocol openpi|vla_eval``: the served policy behind a websocket protocol.

The same config groups choose what is served as for the MinT routes (``policy`` and its
pipeline ``decoder`` / ``normalize`` / ``convert``: these protocols return robot actions,
so the whole pipeline runs here; ``protocol`` for the cameras, state and replanning;
``serve.host`` / ``serve.port`` / ``serve.max_batch`` / ``serve.max_wait_ms``). The ready
line on stdout names the URL, as for MinT:

    evalharness serve --protocol openpi policy=checkpoint policy.path=DIR serve.port=8000
    evalharness serve --protocol vla_eval policy=checkpoint policy.path=DIR protocol=vla_eval
"""

from __future__ import annotations

import asyncio
from typing import Any

from evalharness.errors import UserInputError
from evalharness.transports.mint.serve_settings import READY

__all__ = ["PROTOCOLS", "run_websocket"]

PROTOCOLS = ("mint", "openpi", "vla_eval")


def run_websocket(config: dict[str, Any], protocol: str) -> int:
    from evalharness.transports.mint.server import listening_socket
    from evalharness.transports.serving import build_served_policy

    if protocol == "openpi":
        from evalharness.transports.openpi.server import serve_openpi as serve
    else:
        from evalharness.transports.vla_eval.server import serve_vla_eval as serve
    serve_cfg = config.get("serve") or {}
    host, port = str(serve_cfg.get("host", "127.0.0.1")), int(serve_cfg.get("port", 8000))
    served = build_served_policy(config)
    try:
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            raise UserInputError(f"serve.host={host!r} serve.port={port} cannot be used: {exc.strerror}") from None
        bound_host, bound_port = sock.getsockname()[:2]

        def ready() -> None:
            print(f"{READY}ws://{bound_host}:{bound_port} (protocol {protocol}, policy {served.policy.name}, "
                  f"max_batch {served.max_batch})", flush=True)

        try:
            asyncio.run(serve(served, sock, str((config.get("protocol") or {}).get("name", "")), ready))
        except KeyboardInterrupt:
            pass
        finally:
            sock.close()
    finally:
        served.close()
    return 0
