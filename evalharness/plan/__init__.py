"""The plan of a run: ``spec`` (one episode and its key), ``build`` (the episodes of a
config, for the run and for readers of its results), ``perturbed`` (perturbed twins and
their seeded parameters)."""
