"""``evalharness bench`` modes, one module each; :mod:`evalharness.commands.bench` dispatches."""
