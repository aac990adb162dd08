"""Runs under the side venv's Python (``.venv-sdk``: ``tinker==0.15.0`` + ``mindlab-toolkit==0.1.0``),
not the harness's: the real MinT SDK, as a user would call it, against a URL.

Reads a JSON request on stdin: ``url``, ``key``, ``model_path``, ``images`` (base64 PNGs),
``tokens`` (the prompt's prefix) and ``samples``, a list of ``SamplingParams`` keyword
dicts; prints one JSON line: per sample the tokens and the stop reason, or the error
the SDK raised (its type and message).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time

request = json.load(sys.stdin)
os.environ["MINT_BASE_URL"] = request["url"]
os.environ["MINT_API_KEY"] = request["key"]

import mint  # noqa: E402 - mindlab-toolkit patches tinker when imported, after the environment is set
from mint import types  # noqa: E402

service = mint.ServiceClient(base_url=request["url"])
sampler = service.create_sampling_client(model_path=request["model_path"])
chunks = [types.ImageChunk(data=base64.b64decode(data), format="png") for data in request["images"]]
chunks.append(types.EncodedTextChunk(tokens=request["tokens"]))
prompt = types.ModelInput(chunks=chunks)
results = []
for params in request["samples"]:
    start = time.monotonic()
    try:
        out = sampler.sample(prompt=prompt, num_samples=1, sampling_params=types.SamplingParams(**params)).result()
        results.append({"tokens": list(out.sequences[0].tokens), "stop_reason": out.sequences[0].stop_reason})
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.append({"error": type(exc).__name__, "message": str(exc)[:500], "seconds": time.monotonic() - start})
print(json.dumps({"results": results}))
