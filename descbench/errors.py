"""Errors that mean "the input or the configuration is wrong": printed as one line, never a traceback."""


class ConfigError(ValueError):
    """A configuration that cannot run as given."""
