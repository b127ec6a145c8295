"""The installed aihpa's version, as its package metadata says. A leaf: it imports nothing of aihpa."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("aihpa")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
