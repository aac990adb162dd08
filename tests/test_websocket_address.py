"""The websocket transports' address rules: one place, both clients (openpi, vla_eval)."""

from __future__ import annotations

import pytest

from evalharness.transports.websocket_address import shown_uri, websocket_uri


@pytest.mark.parametrize(("host", "port", "uri"), [
    ("127.0.0.1", 8000, "ws://127.0.0.1:8000"),
    ("ws://example.org/policy", None, "ws://example.org/policy"),
    ("wss://example.org", 443, "wss://example.org:443"),
])
def test_the_uri_keeps_a_given_scheme_and_adds_the_port(host, port, uri) -> None:
    assert websocket_uri(host, port) == uri


def test_credentials_never_show() -> None:
    assert shown_uri("wss://user:s3cret@example.org:8443/v1/policy") == "wss://example.org:8443/v1/policy"
    assert shown_uri("ws://127.0.0.1:8000") == "ws://127.0.0.1:8000"
