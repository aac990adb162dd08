"""Where a websocket policy server is, from ``host`` and ``port`` settings, and how it is shown.

Both websocket transports (``policy=openpi``, ``policy=vla_eval``) take ``host`` (a name,
an address, or a full ``ws://`` / ``wss://`` URI) and an optional ``port``. The URI a
client connects to may carry ``user:password@``; identities, episode records and error
messages show it without them.
"""

from __future__ import annotations

__all__ = ["shown_uri", "websocket_uri"]


def websocket_uri(host: str, port: int | None) -> str:
    """``ws://host:port``; a ``host`` that is already a ``ws://`` / ``wss://`` URI keeps its scheme."""
    base = host if host.startswith(("ws://", "wss://")) else f"ws://{host}"
    return base if port is None else f"{base}:{port}"


def shown_uri(uri: str) -> str:
    """``uri`` without ``user:password@``: what identities and messages show."""
    scheme, sep, rest = uri.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{path}"
