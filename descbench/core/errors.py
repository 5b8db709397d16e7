"""Errors that mean "the input or the configuration is wrong": printed as one line, never a traceback.

Every user-facing error derives from :class:`UserError`; the entry points catch just that, print
``error: <message>`` and exit with code 2. A message names the file, key or value and the fix.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of every error caused by the input or the configuration (one line, exit code 2)."""


class ConfigError(UserError, ValueError):
    """A configuration that cannot run as given."""


class BackboneError(UserError, ValueError):
    """A backbone that cannot be built as configured (name, weights file, bundle layout)."""


class DatasetError(UserError, ValueError):
    """A dataset that cannot be read as configured (path, layout, corrupt file)."""


class RecDataError(DatasetError):
    """A REC data set that cannot be read as given (names the file/value and the fix)."""


class VisualPromptError(ConfigError):
    """An unknown visual prompt or a bad option."""


class NegativesError(ConfigError):
    """More negative expressions asked for than a split holds."""


class DescriptionError(UserError, ValueError):
    """Descriptions that cannot be built as configured (bad file, missing classes, ...)."""


class PromptError(DescriptionError):
    """A prompt option outside its allowed range."""


class BackendError(UserError, RuntimeError):
    """A language-model backend that failed after its retries, or cannot be reached/loaded."""


class ReportError(UserError):
    """A problem with the dir given to the report command."""
