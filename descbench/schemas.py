"""Structured-config schemas (dataclasses in Hydra's ConfigStore): filled in below."""


def register() -> None:
    """Register every schema once."""
