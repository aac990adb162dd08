"""Sampling settings a query may carry (``observation["sampling"]``), and which a policy honours.

A policy that samples (tokens, or a chunk with noise) may be asked, per query, for
another temperature, top-k, top-p or seed than it was configured with: ``evalharness
serve`` passes what a MinT / Tinker client sends (``asample``'s ``sampling_params``, an
action session's ``temperature``). A policy lists the names it honours in
``Policy.sampling_parameters``; the server refuses (422, naming the parameter) any other
that asks for something, so a parameter is never silently ignored. ``max_tokens`` and
``stop`` act on a token sequence after it is produced, which the server does for every
token policy; a policy lists them only if it applies them itself.

Each field is None when the query does not ask for it: the policy then does what it is
configured to do, so an observation without ``sampling`` gives exactly the in-process
answer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

#: Every sampling parameter a query can carry (Tinker's ``SamplingParams`` names).
PARAMETERS = ("temperature", "top_k", "top_p", "seed", "max_tokens", "stop")


@dataclass(frozen=True)
class SamplingParams:
    """Per-query sampling settings; None = not asked (the policy's own setting).

    - ``temperature``: 0 = greedy (argmax), else softmax(logits / temperature);
    - ``top_k``: sample among the k most likely classes only;
    - ``top_p``: sample among the smallest set of classes whose probability reaches p;
    - ``seed``: draw this query from a generator seeded with it (the same seed, the same
      answer), instead of the episode's own generator;
    - ``max_tokens``: at most this many tokens;
    - ``stop``: token ids; the sequence ends at (and includes) the first one produced.
    """

    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    max_tokens: int | None = None
    stop: tuple[int, ...] | None = None

    def requested(self) -> list[str]:
        """The names this query asks for (not None)."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


def truncate(tokens: list[int], sampling: SamplingParams | None) -> tuple[list[int], str]:
    """``tokens`` cut by ``stop`` (included) and ``max_tokens``, and Tinker's stop reason."""
    if sampling is None:
        return tokens, "length"
    if sampling.stop:
        stops = set(sampling.stop)
        for i, token in enumerate(tokens):
            if token in stops and (sampling.max_tokens is None or i < sampling.max_tokens):
                return tokens[: i + 1], "stop"
    if sampling.max_tokens is not None:
        tokens = tokens[: sampling.max_tokens]
    return tokens, "length"
