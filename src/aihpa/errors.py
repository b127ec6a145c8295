"""Error types shared by every layer. Pure: no imports beyond the standard library."""

from __future__ import annotations


class AihpaError(Exception):
    """Base of the project's own errors."""


class UserError(AihpaError):
    """Caused by the user's input (a file, a flag, an annotation): reported as one clear line, never a traceback."""
