"""The harness side of the ``perturb`` config group (docs/robustness.md; upstream facts in
docs/reference/robustness.md).

- :mod:`.settings`: the group's one validated settings model and its parts (Hydra
  ``_target_`` dimensions from :mod:`envs.libero.perturb`);
- :mod:`.plan`: perturbed episodes and their clean twins, with parameters drawn from
  each episode's seed and hashed into its key;
- :mod:`.episode`: the reset-apply-settle-validate loop the rollout runs, resampling an
  invalid scene a bounded number of times before recording ``invalid_perturbation``;
- :mod:`.paired`: the clean-control comparison in the summary (exact McNemar).
"""
