"""Model code for checkpoint policies (``policy=checkpoint``), kept apart from the harness.

- :mod:`~evalharness.models.checkpoint_files`: what a checkpoint directory holds
  (``policy.yaml``, ``model.safetensors``, ``norm_stats.json``) and its validation,
  without torch, so the parent process can check a checkpoint and hash it for the
  identity without loading a single weight;
- :mod:`~evalharness.models.loading`: building the ``torch.nn.Module`` that
  ``policy.yaml`` names and loading the weights into it (the episode-running process only);
- :mod:`~evalharness.models.inputs`: the named input transforms, observation -> model inputs;
- :mod:`~evalharness.models.reference`: a small reference VLA network (three masked
  cameras, state, instruction -> MinT-uniform action tokens), and
  :mod:`~evalharness.models.reference_checkpoint` writes a randomly initialised checkpoint of it
  (``evalharness checkpoint init``).

This package's ``__init__`` must stay free of torch imports: the parent resolves
``_target_`` module names under it without loading torch.
"""
