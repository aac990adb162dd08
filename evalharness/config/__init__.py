"""Configuration: the Hydra tree (``conf``), validating a part's settings as one line
(``validation``), the protocol presets (``protocol``) and what is kept out of records
(``redaction``). Everything above imports from here; this package imports only errors,
transforms and the env's facts.
"""
