"""Where a websocket policy server is, from ``host`` and ``port`` settings, and how it is shown.

Both websocket transports (``policy=openpi``, ``policy=vla_eval``) take ``host`` (a name,
an address, or a full ``ws://`` / ``wss://`` URI) and an optional ``port``. The URI a
client connects to may carry ``user:password@``; identities, episode records and error
messages show it without them. What such a server says about itself (openpi's metadata,
vla-eval's HELLO) goes into the identity as strict JSON (:func:`peer_json`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["WebsocketAddress", "peer_json", "shown_uri", "websocket_uri"]


def websocket_uri(host: str, port: int | None) -> str:
    """``ws://host:port``; a ``host`` that is already a ``ws://`` / ``wss://`` URI keeps its scheme."""
    base = host if host.startswith(("ws://", "wss://")) else f"ws://{host}"
    return base if port is None else f"{base}:{port}"


def shown_uri(uri: str) -> str:
    """``uri`` without ``user:password@``: what identities and messages show."""
    scheme, sep, rest = uri.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{path}"


class WebsocketAddress:
    """``uri`` and ``shown_uri`` for a settings model with ``host`` and ``port`` fields (a mixin
    before ``BaseModel``: it declares no fields of its own)."""

    @property
    def uri(self) -> str:
        return websocket_uri(self.host, self.port)  # type: ignore[attr-defined]

    @property
    def shown_uri(self) -> str:
        """The URI without ``user:password@``: what identities and messages show."""
        return shown_uri(self.uri)


def peer_json(value: Any) -> Any:
    """What a server says about itself, as strict JSON can hold it (it goes into the identity
    and summary): arrays and NumPy scalars as lists and numbers, bytes as hex (keys decoded
    as text), non-finite floats as strings."""
    if isinstance(value, dict):
        return {str(k.decode() if isinstance(k, bytes) else k): peer_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [peer_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return peer_json(value.tolist())
    if isinstance(value, np.generic):
        return peer_json(value.item())
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
