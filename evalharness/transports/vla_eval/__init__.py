"""vla-eval's model-server protocol v1: the ``policy=vla_eval`` client and its LIBERO conventions."""
