"""Policies: one interface (:class:`evalharness.policies.base.Policy`) and its implementations.

Adding a new policy
===================

1. **The class.** Subclass :class:`~evalharness.policies.base.Policy` in a module of this
   package (or anywhere importable). Set ``name``; implement ``act(observation)``, which
   receives an :class:`~evalharness.policies.base.Observation` and returns the policy's
   *raw output*: token ids or a normalized chunk for a model (the action pipeline turns
   them into LIBERO actions), an (H, 7) chunk of LIBERO actions for a baseline (whose
   pipeline is all ``none``). Override ``reset`` to start an episode (seed any randomness
   from its ``seed`` there, never in ``__init__``), ``cameras`` to render only what you
   look at, ``close`` to free resources. A model that serves many sessions overrides
   ``fork`` (share the weights) and ``act_batch`` (one forward pass); a policy that knows
   its output format overrides ``declared_pipeline``. Keep ``__init__`` cheap: the parent
   process builds every policy once for its identity (load weights on first use).
2. **Its config**, ``conf/policy/<name>.yaml``, with ``_target_`` naming the class and its
   constructor arguments as keys. Validate them in one pydantic settings model with
   :func:`evalharness.config.validation.validate_settings` (as every shipped policy does:
   ``ZeroSettings``, ``RandomSettings``, ``ScriptedSettings``, ``FaultySettings``,
   ``ReplaySettings``, ``CheckpointSettings``, ``OpenpiSettings``, ``MintSettings``): a
   bad value raises :class:`~evalharness.errors.UserInputError` with one line naming it::

       # What it is, in one line.
       _target_: evalharness.policies.mine.MyPolicy
       horizon: 10

   Then ``evalharness policy=<name> policy.horizon=5`` selects and configures it. There
   is no registry: Hydra's ``_target_`` is the one way to choose a part, for every kind of
   part (:mod:`evalharness.config.parts`). The same shape, a class with one settings model
   and one YAML file, adds a decoder (recipe in :mod:`evalharness.actions.decoders`), a
   normalizer or convert preset (:mod:`evalharness.actions.normalize`,
   :mod:`evalharness.actions.convert`), an image step (:mod:`evalharness.transforms.images`),
   a runner (:mod:`evalharness.engine.runner_settings`) and a perturbation dimension
   (:mod:`envs.libero.perturb`).
3. **Its identity.** ``identity()`` returns a JSON dict of everything that determines the
   outputs (parameters, sha256 of checkpoint files), never a secret: it is part of every
   episode's key, so a change re-runs episodes and equal identities reuse them.
4. **Check it.** :func:`evalharness.policies.checker.check_policy` runs it the way the
   harness will and names the first broken rule::

       from evalharness.policies.checker import check_policy
       from evalharness.policies.build import build_policy
       check_policy(build_policy(policy_cfg, pipeline_cfg), "openpi")

   Add that to its tests (``tests/test_policy_checker.py`` checks every shipped policy).

Shipped: ``zero`` and ``random`` (:mod:`.baselines`), ``scripted`` (:mod:`.scripted`),
``replay`` (:mod:`.replay`), ``faulty`` (:mod:`.faulty`), ``checkpoint``
(:mod:`.checkpoint`); :mod:`.pipelined` wraps a policy in its action pipeline and
:mod:`.raw_outputs` records what it emitted. A policy around another one subclasses
:class:`~evalharness.policies.base.PolicyWrapper`, which passes every part of the contract
to the wrapped policy, and overrides only what it changes.
"""
