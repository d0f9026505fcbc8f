"""The exception hierarchy of deid.

Messages name a path, a tag as ``(gggg,eeee)`` with its keyword, and what to do; never a value read
from a file.
"""

from __future__ import annotations


class DeidError(Exception):
    """Base class of every error raised by deid."""


class ProfileError(DeidError, ValueError):
    """A profile file or option is invalid."""


class KeyFileError(DeidError, ValueError):
    """The pseudonymisation key is missing, unreadable or too short."""


class InputError(DeidError, ValueError):
    """An input file cannot be read as DICOM (not DICOM, truncated, corrupt)."""


class CleaningError(DeidError, RuntimeError):
    """A dataset could not be cleaned completely; the file must not be written."""


class PixelError(CleaningError):
    """Pixel data that needed a scan could not be decoded, scanned, masked or re-encoded."""


class OutputError(DeidError, OSError):
    """The output folder or an output file cannot be used."""


class DependencyError(DeidError, RuntimeError):
    """An optional dependency or external binary is missing."""
