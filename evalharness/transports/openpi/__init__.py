"""openpi's websocket protocol: ``wire`` (its msgpack-numpy codec) and ``policy`` (the client, ``policy=openpi``)."""
