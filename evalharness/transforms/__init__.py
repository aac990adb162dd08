"""Observation transforms: small named steps composed by a protocol's configuration."""
