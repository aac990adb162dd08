"""Policies: one interface (:class:`evalharness.policies.base.Policy`) and its implementations."""
