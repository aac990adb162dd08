"""Gymnasium environments for evaluating robot policies.

Importing this package registers every LIBERO task with Gymnasium (cheaply: no simulator
is built until ``gymnasium.make``). See :mod:`envs.libero` for the id scheme.
"""

from envs.libero.registration import register_all as _register_all

_register_all()
