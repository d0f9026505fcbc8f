"""Result records: what was done to an element, a dataset and a file. Never an original value."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    """Where an input ended."""

    WRITTEN = "written"
    """De-identified and written to the output folder."""
    FAILED = "failed"
    """Not written; ``reason`` says why (bad input, could not be cleaned completely)."""
    SKIPPED = "skipped"
    """Deliberately not written (a DICOMDIR); ``reason`` says why."""
    DRY_RUN = "dry-run"
    """``--dry-run``: cleaned in memory, nothing written."""


@dataclass(frozen=True)
class ElementAction:
    """One action applied to one element.

    ``path`` locates the element without values, e.g. ``ContentSequence[0]>(0040,A123)``.
    ``action`` is the resolved action code (``X``, ``Z``, ``D``, ``U``, ``C``, ``K``) or ``guard``
    for a residual-identity removal.
    """

    tag: str
    keyword: str
    action: str
    path: str = ""


@dataclass(frozen=True)
class BoxRecord:
    """A masked (or kept) text box, in pixel coordinates of its frame.

    ``frame`` is the 0-based frame index, or -1 for a box masked in every frame of a multi-frame
    image (burned-in text is searched on all frames at once and masked wherever it was found).
    """

    frame: int
    x: int
    y: int
    width: int
    height: int
    kept: bool = False


@dataclass(frozen=True)
class PixelOutcome:
    """What the pixel step did to one file."""

    scanned: bool
    reason: str = ""
    frames: int = 0
    boxes: tuple[BoxRecord, ...] = ()
    transfer_syntax_in: str = ""
    transfer_syntax_out: str = ""
    thumbnail_png: bytes | None = field(default=None, repr=False)

    @property
    def masked(self) -> int:
        return sum(1 for b in self.boxes if not b.kept)


@dataclass(frozen=True)
class DatasetResult:
    """What :func:`deid.api.deidentify_dataset` did to one dataset."""

    actions: tuple[ElementAction, ...]
    residual_hits: tuple[str, ...] = ()
    """Tags (``(gggg,eeee)``) where the residual-identity guard removed an identifying value."""
    warnings: tuple[str, ...] = ()
    patient_pseudonym: str = ""
    study_uid: str = ""
    series_uid: str = ""
    sop_instance_uid: str = ""
    mapping: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """Original-to-pseudonym pairs, filled only when the config asks (``--mapping``): PHI."""

    def counts(self) -> dict[str, int]:
        """Number of actions by code."""
        return dict(Counter(a.action for a in self.actions))


@dataclass(frozen=True)
class FileResult:
    """The outcome of one input file: the row of every report."""

    source: str
    """Path of the input relative to its source root (POSIX separators)."""
    status: Status
    output: str | None = None
    """Path of the output relative to the output folder."""
    reason: str | None = None
    """One sentence, no value from the file."""
    error_class: str | None = None
    modality: str | None = None
    sop_class_uid: str | None = None
    action_counts: dict[str, int] = field(default_factory=dict)
    residual_hits: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    pixels: PixelOutcome | None = None
    patient_pseudonym: str = ""
    study_uid: str = ""
    duration_s: float = 0.0
    contested_output: str | None = None
    """For an ``OutputConflict``: the output path that another input already holds."""
    mapping: tuple[tuple[str, str], ...] = field(default=(), repr=False)
