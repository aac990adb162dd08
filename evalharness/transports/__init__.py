"""Remote policies, side by side: each transport is a client (a ``Policy``) and, where the
protocol has two sides, a server for harness policies.

- ``mint``: MinT's HTTP sampling / action-session routes (``policy=mint``, ``evalharness serve``);
- ``openpi``: openpi's websocket policy-server protocol (``policy=openpi``).

Transports do not import each other (an import-linter contract in pyproject.toml).
"""
