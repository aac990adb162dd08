"""Seeded robustness perturbations of a LIBERO episode, applied in the env layer.

Each dimension is one small module with one :class:`~envs.libero.perturb.base.Perturbation`
subclass (a Hydra ``_target_``): it turns a ``level`` (1-5) and a seeded RNG into JSON
parameters (:meth:`draw`), and applies those parameters as a runtime edit of the compiled
MuJoCo model, of the simulator state, of the rendered images or of the instruction.
:class:`~envs.libero.perturb.active.ActivePerturbation` composes the dimensions of one
episode, undoes their model edits at the next reset and checks the scene's validity.
No dimension needs an asset file. See docs/robustness.md.

Adding a perturbation
=====================

1. **The class.** Subclass :class:`~envs.libero.perturb.base.Perturbation` in a module of
   this package. Set ``name`` (the config key) and ``physical`` (True when it changes
   contacts or the start state, so the scene's validity is checked); implement ``draw``
   (this episode's JSON parameters, from the episode's RNG only: they are hashed into the
   episode key) and the hooks it needs (``apply`` for model/state edits through the
   :class:`~envs.libero.perturb.base.ModelPatch`, ``corrupt`` for images, ``instruction``,
   ``after_step``). Keep no per-episode state on the object.
2. **Its settings**: a subclass of :class:`~envs.libero.perturb.base.PerturbationSettings`
   (which brings ``level``) with one field per constructor argument, set as the class's
   ``Settings``; a field validator raises ``ValueError("allowed: ...")``. The harness
   validates a config with it (one line naming ``perturb.<name>.<key>``) and then builds
   the class from the validated values.
3. **Its config**, ``conf/perturb/<name>.yaml``::

       # What it changes, in one line.
       defaults:
         - none
         - _self_

       <name>:
         _target_: envs.libero.perturb.<module>.<Class>
         level: null     # null = perturb.level

   Then ``evalharness perturb=<name> perturb.level=3`` (or ``perturb=[camera,<name>]``)
   selects it. Add the dimension to docs/robustness.md.
4. **Test it** in ``tests/test_perturb_sim.py``: each level applies and is undone at the
   next reset, and the same seed gives the same scene.
"""

from envs.libero.perturb.active import ActivePerturbation
from envs.libero.perturb.base import Perturbation, PlacementImpossible

__all__ = ["ActivePerturbation", "Perturbation", "PlacementImpossible"]
