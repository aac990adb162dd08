"""Seeded robustness perturbations of a LIBERO episode, applied in the env layer.

Each dimension is one small module with one :class:`~envs.libero.perturb.base.Perturbation`
subclass (a Hydra ``_target_``): it turns a ``level`` (1-5) and a seeded RNG into JSON
parameters (:meth:`draw`), and applies those parameters as a runtime edit of the compiled
MuJoCo model, of the simulator state, of the rendered images or of the instruction.
:class:`~envs.libero.perturb.active.ActivePerturbation` composes the dimensions of one
episode, undoes their model edits at the next reset and checks the scene's validity.
No dimension needs an asset file. See docs/robustness.md.
"""

from envs.libero.perturb.active import ActivePerturbation
from envs.libero.perturb.base import Perturbation, PlacementImpossible

__all__ = ["ActivePerturbation", "Perturbation", "PlacementImpossible"]
