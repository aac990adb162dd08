"""The MinT protocol: the client (``policy=mint``), ``evalharness serve``, and ``runner.policy_server=auto``.

- :mod:`.wire`: the routes' JSON bodies (pydantic), shared by both sides;
- :mod:`.client`: one httpx client, its timeouts, retries and futures polling;
- :mod:`.prompt`: pi0-FAST's prompt prefix as token ids, and back;
- :mod:`.policy`: :class:`~evalharness.transports.mint.policy.MintPolicy`, one session per episode;
- :mod:`.settings`, :mod:`.sessions`, :mod:`.batcher`, :mod:`.server`: ``evalharness serve``;
- :mod:`.policy_server`: a serve process for a whole run.
"""
