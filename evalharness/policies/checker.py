"""``check_policy``: does a policy keep the contract of :mod:`evalharness.policies.base`?

In the spirit of Gymnasium's ``check_env``: run a policy the way the harness will, on an
example observation built for a protocol, and fail with one message naming what is wrong
instead of letting a broken policy cost a night of evaluation. It checks, in order:

1. its attributes (``name``, ``cameras``, ``needs_privileged_state``, ``sampling_parameters``);
2. ``identity()``: a JSON object (strict JSON, no NaN), free of secrets: no value under a
   secret-looking key (the rule of :func:`evalharness.config.redaction.redact`), no value of an
   environment variable whose name looks like a credential (``MINT_API_KEY``, ``*_TOKEN``,
   ...), nothing shaped like an API key (``sk-...``);
3. ``reset`` then ``act`` on the example observation; the output, after the policy's
   action pipeline, must be a finite (H, 7) chunk (what the rollout accepts);
4. ``drain_events()`` is a list of strings; ``episode_stats()`` maps names to finite numbers;
5. ``fork()`` / ``act_batch``: two forks reset with different seeds and acting in one batch
   on different observations each answer what a lone fork with the same seed answers
   (identical after the pipeline, within 1e-5: batched float kernels may differ in the
   last bits), and acting in forks leaves the original untouched;
6. reproducibility: ``reset`` with the same seed, then the same observation, gives the same
   chunk (resume and worker-count independence rely on it);
7. sampling settings per query (``observation["sampling"]``), for each parameter the policy
   lists in ``sampling_parameters``: a ``seed`` reproduces its answer whatever came before;
   ``temperature`` 0 is deterministic whatever the episode's seed; ``top_k`` 1 and a tiny
   ``top_p`` give the greedy answer (at temperature 1, with any seed); ``max_tokens`` and
   ``stop``, listed, must be accepted;
8. ``identity()`` is the same before and after all of that; then ``close()``.

Check a policy as the harness runs it, i.e. behind its pipeline: a model policy's raw
output (tokens, a normalized chunk) only becomes actions there. ``evalharness checkpoint
check DIR`` does this for a checkpoint; for any configured policy::

    from evalharness.policies.build import build_policy
    check_policy(build_policy(policy_cfg, pipeline_cfg), "openpi")
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from envs.libero.env import CAMERAS
from evalharness.errors import InvalidActionError, UserInputError
from evalharness.policies.base import Observation, Policy
from evalharness.policies.sampling import PARAMETERS
from evalharness.config.protocol import Protocol

#: A LIBERO-Object instruction (the scripted baseline understands it; any policy should cope).
EXAMPLE_INSTRUCTION = "pick up the alphabet soup and place it in the basket"
BATCH_TOLERANCE = 1e-5
_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_CREDENTIAL_ENV = re.compile(r"api_?key|secret|passw(or)?d|credential|token", re.IGNORECASE)


class PolicyCheckError(UserInputError):
    """A policy breaks the contract; the message names the policy and what is wrong."""


def load_protocol_named(protocol: Protocol | Mapping[str, Any] | str) -> Protocol:
    """A Protocol from an instance, a config dict, or a preset name in ``conf/protocol``."""
    from evalharness.config.conf import CONF_DIR
    from evalharness.config.protocol import load_protocol

    if isinstance(protocol, Protocol):
        return protocol
    if isinstance(protocol, str):
        import yaml

        path = CONF_DIR / "protocol" / f"{protocol}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise UserInputError(f"protocol {protocol!r} is not valid; allowed: {', '.join(names)}")
        return load_protocol(yaml.safe_load(path.read_text()))
    return load_protocol(dict(protocol))


def example_observation(protocol: Protocol, policy: Policy, seed: int = 0,
                        instruction: str = EXAMPLE_INSTRUCTION) -> Observation:
    """An observation shaped as the rollout builds it under ``protocol`` for ``policy``.

    Random pixels for the cameras the protocol gives (narrowed to the policy's), passed
    through the protocol's image transforms, zeros elsewhere; a plausible robot state; the
    8-D state when the protocol gives one; object poses when the policy needs them.
    """
    from evalharness.transforms.images import build_image_transform

    rng = np.random.default_rng(seed)
    transform = build_image_transform(protocol.image_transforms)
    wanted = [c for c in protocol.cameras if policy.cameras is None or c in policy.cameras]
    size = protocol.render_size
    blank = transform(np.zeros((size, size, 3), dtype=np.uint8))
    images = {cam: transform(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) if cam in wanted else blank
              for cam in CAMERAS}
    eef = np.array([-0.1, 0.0, 1.05]) + rng.normal(0, 0.02, 3)
    quat = np.array([0.9999, 0.0, 0.01, 0.0])  # x-y-z-w, the hand pointing down
    gripper = np.array([0.039, -0.039])
    obs: Observation = {
        "images": images,
        "image_mask": {cam: cam in wanted for cam in CAMERAS},
        "instruction": instruction,
        "robot": {"robot0_eef_pos": eef, "robot0_eef_quat": quat, "robot0_gripper_qpos": gripper},
    }
    if protocol.state:
        from envs.libero.geometry import quat_xyzw_to_axis_angle

        obs["state"] = np.concatenate([eef, quat_xyzw_to_axis_angle(quat), gripper]).astype(np.float32)
    if policy.needs_privileged_state:
        obs["privileged"] = {
            "alphabet_soup_1_pos": np.array([0.02, -0.12, 0.94]) + rng.normal(0, 0.01, 3),
            "alphabet_soup_1_quat": np.array([0.0, 0.0, 0.0, 1.0]),
            "basket_1_pos": np.array([0.0, 0.2, 0.9]),
            "basket_1_quat": np.array([0.0, 0.0, 0.0, 1.0]),
        }
    return obs


def find_secret(identity: Any) -> str | None:
    """Where ``identity`` holds something secret-looking (a description), or None."""
    from evalharness.config.redaction import redact

    path = _first_difference(identity, redact(identity), "identity")
    if path is not None:
        return f"{path} has a value under a secret-looking key (redact it or leave it out)"
    text = json.dumps(identity)
    for name, value in sorted(os.environ.items()):
        if _CREDENTIAL_ENV.search(name) and len(value) >= 8 and value in text:
            return f"it contains the value of the environment variable {name}"
    match = _KEY_LIKE.search(text)
    if match:
        return f"it contains an API-key-like string ({match.group(0)[:5]}...)"
    return None


def _first_difference(a: Any, b: Any, path: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            found = _first_difference(a[key], b.get(key), f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else path


class _Checker:
    def __init__(self, policy: Policy, protocol: Protocol, seed: int) -> None:
        self.policy = policy
        self.protocol = protocol
        self.seed = seed
        self.label = f"check_policy({getattr(policy, 'name', type(policy).__name__)!r})"

    def fail(self, message: str) -> PolicyCheckError:
        return PolicyCheckError(f"{self.label}: {message}")

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PolicyCheckError:
            raise
        except Exception as exc:  # noqa: BLE001 - any exception is what the check reports
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise self.fail(f"{what} raised {type(exc).__name__}: {text}") from None

    def attributes(self) -> None:
        policy = self.policy
        if not isinstance(policy, Policy):
            raise self.fail(f"{type(policy).__name__} is not a subclass of evalharness.policies.base.Policy")
        if not isinstance(policy.name, str) or not policy.name:
            raise self.fail(f"name {policy.name!r} is not valid; allowed: a non-empty string")
        if policy.cameras is not None:
            if not isinstance(policy.cameras, tuple) or any(c not in CAMERAS for c in policy.cameras):
                raise self.fail(f"cameras {policy.cameras!r} is not valid; allowed: None or a tuple of "
                                f"{', '.join(CAMERAS)}")
        if not isinstance(policy.needs_privileged_state, bool):
            raise self.fail(f"needs_privileged_state {policy.needs_privileged_state!r} is not a bool")
        params = policy.sampling_parameters
        if not isinstance(params, frozenset) or not params <= set(PARAMETERS):
            raise self.fail(f"sampling_parameters {params!r} is not valid; allowed: a frozenset of "
                            f"{', '.join(PARAMETERS)}")

    def identity(self, when: str) -> str:
        identity = self.call("identity()", self.policy.identity)
        if not isinstance(identity, dict):
            raise self.fail(f"identity() returned a {type(identity).__name__}; allowed: a dict")
        try:
            text = json.dumps(identity, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise self.fail(f"identity() {when} is not JSON-serializable ({exc})") from None
        secret = find_secret(identity)
        if secret:
            raise self.fail(f"identity() {when} is not free of secrets: {secret}")
        return text

    def act(self, policy: Policy, observation: Observation, what: str = "act()") -> np.ndarray:
        output = self.call(what, policy.act, observation)
        return self.chunk(output, what)

    def chunk(self, output: Any, what: str) -> np.ndarray:
        from evalharness.policies.chunks import validate_chunk

        try:
            return validate_chunk(output)
        except InvalidActionError as exc:
            hint = ""
            if np.asarray(output).ndim == 1 and np.asarray(output).size != 7:
                hint = (" (it looks like raw tokens: a model policy needs its action pipeline; check it as the "
                        "harness builds it, policies.build.build_policy(policy_cfg, pipeline_cfg))")
            raise self.fail(f"{what} after the action pipeline: {exc}{hint}") from None

    def reset(self, policy: Policy, seed: int, what: str = "reset()") -> None:
        self.call(what, policy.reset, EXAMPLE_INSTRUCTION, seed=seed, init_state=None, attempt=1)

    def extras(self, policy: Policy) -> None:
        events = self.call("drain_events()", policy.drain_events)
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise self.fail(f"drain_events() returned {events!r}; allowed: a list of strings")
        stats = self.call("episode_stats()", policy.episode_stats)
        if not isinstance(stats, dict):
            raise self.fail(f"episode_stats() returned a {type(stats).__name__}; allowed: a dict of numbers")
        for key, value in stats.items():
            if not isinstance(key, str) or isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise self.fail(f"episode_stats() has {key!r}: {value!r}; allowed: names -> finite numbers")

    def forks(self, observations: list[Observation]) -> None:
        policy = self.policy
        seeds = [self.seed + 1, self.seed + 2]
        batch = [self.call("fork()", policy.fork) for _ in seeds]
        for fork in batch:
            if fork is policy or type(fork) is not type(policy):
                raise self.fail(f"fork() returned {fork!r}; allowed: a new {type(policy).__name__}")
        for fork, seed in zip(batch, seeds):
            self.reset(fork, seed, "reset() of a fork")
        outputs = self.call("act_batch()", type(policy).act_batch, batch, observations)
        if not isinstance(outputs, list) or len(outputs) != len(batch):
            raise self.fail(f"act_batch() of {len(batch)} forks returned {type(outputs).__name__} of "
                            f"{len(outputs) if hasattr(outputs, '__len__') else '?'} answers; allowed: a list, "
                            "one answer per fork")
        for i, (output, seed, obs) in enumerate(zip(outputs, seeds, observations)):
            batched = self.chunk(output, f"act_batch() answer {i}")
            alone = self.call("fork()", policy.fork)
            self.reset(alone, seed, "reset() of a fork")
            single = self.act(alone, obs, "act() of a fork")
            if batched.shape != single.shape or not np.allclose(batched, single, rtol=0, atol=BATCH_TOLERANCE):
                diff = np.abs(batched - single).max() if batched.shape == single.shape else "shapes differ"
                raise self.fail(f"act_batch() answer {i} differs from the same fork acting alone ({diff}); "
                                "each fork must answer as it would alone (its own random state, seeded at reset)")
            self.call("close() of a fork", alone.close)
        for fork in batch:
            self.call("close() of a fork", fork.close)

    def sampling(self, obs: Observation) -> None:
        """Each listed sampling parameter does what it says (see the module docstring)."""
        from evalharness.policies.sampling import SamplingParams

        params = self.policy.sampling_parameters
        if not params:
            return

        def answer(seed: int, sampling: SamplingParams, warm: int = 0) -> np.ndarray:
            self.reset(self.policy, seed, "reset() before a sampled query")
            for _ in range(warm):
                self.act(self.policy, dict(obs))
            return self.act(self.policy, {**obs, "sampling": sampling}, f"act() with sampling {sampling}")

        def same(a: np.ndarray, b: np.ndarray, what: str) -> None:
            if a.shape != b.shape or not np.array_equal(a, b):
                raise self.fail(f"sampling_parameters lists {what}, but it is not honoured: two queries that "
                                "must answer alike did not")

        greedy = None
        if "temperature" in params:
            greedy = answer(self.seed, SamplingParams(temperature=0.0))
            same(greedy, answer(self.seed + 7, SamplingParams(temperature=0.0), warm=1), "temperature (0 = greedy)")
        if "seed" in params:
            hot = SamplingParams(temperature=1.0 if "temperature" in params else None, seed=12345)
            same(answer(self.seed, hot), answer(self.seed + 7, hot, warm=2), "seed")
        if greedy is not None:
            for name, value in (("top_k", 1), ("top_p", 1e-9)):
                if name in params:
                    narrow = SamplingParams(temperature=1.0, **{name: value})
                    same(greedy, answer(self.seed + 3, narrow), f"{name} (top_k 1 / tiny top_p = greedy)")
        for name in ("max_tokens", "stop"):
            if name in params:
                answer(self.seed, SamplingParams(**{name: 10_000 if name == "max_tokens" else (10**9,)}))

    def run(self) -> None:
        self.attributes()
        before = self.identity("before acting")
        obs = example_observation(self.protocol, self.policy, self.seed)
        other = example_observation(self.protocol, self.policy, self.seed + 1)
        self.reset(self.policy, self.seed)
        first = self.act(self.policy, obs)
        self.extras(self.policy)
        self.forks([obs, other])
        self.reset(self.policy, self.seed, "reset() again")
        again = self.act(self.policy, obs, "act() after reset() with the same seed")
        if again.shape != first.shape or not np.array_equal(again, first):
            raise self.fail("act() after reset() with the same seed and observation gave another chunk; outcomes "
                            "must be reproducible (seed random state in reset(), not in __init__); also after "
                            "forks acted, which must not change the original")
        self.sampling(obs)
        after = self.identity("after acting")
        if after != before:
            raise self.fail("identity() changed between calls; it must depend on configuration only "
                            "(it is part of every episode's key)")
        self.call("close()", self.policy.close)


def check_policy(policy: Policy, protocol: Protocol | Mapping[str, Any] | str = "openpi", *, seed: int = 0) -> None:
    """Raise :class:`PolicyCheckError` naming the first way ``policy`` breaks the contract.

    ``protocol`` is a :class:`~evalharness.config.protocol.Protocol`, its config dict, or a preset
    name (``openpi``, ``lerobot``, ``openvla``). The policy is closed at the end.
    """
    _Checker(policy, load_protocol_named(protocol), seed).run()
