"""Everything a run needs, as frozen dataclasses passed explicitly (Dask workers see only these)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PixelMode(str, enum.Enum):
    """When to scan pixel data for burned-in text (``--pixels``)."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class RedactMode(str, enum.Enum):
    """What detected text to mask (``--redact``)."""

    ALL_TEXT = "all-text"
    PHI_TEXT = "phi-text"


class Layout(str, enum.Enum):
    """How output paths are built (``--layout``)."""

    MIRROR = "mirror"
    STUDY = "study"


@dataclass(frozen=True)
class ProfileSpec:
    """A profile as the user chose it, resolved to data so that it travels to remote workers.

    Parameters
    ----------
    base:
        Name of a shipped profile (``basic``) that the user's YAML extends.
    options:
        Option names in kebab-case (``retain-safe-private``), sorted and unique.
    user_yaml:
        The text of the user's profile file, or ``None``.
    """

    base: str = "basic"
    options: tuple[str, ...] = ()
    user_yaml: str | None = None


@dataclass(frozen=True)
class DeidConfig:
    """The settings of one de-identification run.

    The key is never shown by ``repr`` and never logged.
    """

    profile: ProfileSpec
    key: bytes = field(repr=False)
    key_is_ephemeral: bool = False
    pixels: PixelMode = PixelMode.AUTO
    redact: RedactMode = RedactMode.ALL_TEXT
    layout: Layout = Layout.MIRROR
    dry_run: bool = False
    collect_mapping: bool = False
