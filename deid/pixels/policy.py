"""Whether an image must be scanned for burned-in text, and which fixed regions are masked.

The data lives in ``profiles/pixels.yaml`` (hand-written, shipped as ``deid._profiles``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import resources

import yaml

from deid.config import PixelMode
from deid.errors import PixelError, ProfileError

logger = logging.getLogger(__name__)

_RESOURCE = "pixels.yaml"


@dataclass(frozen=True)
class FixedRegionRule:
    """Boxes masked in every image of a device (Manufacturer, model and image size)."""

    boxes: tuple[tuple[int, int, int, int], ...]
    manufacturer: str = ""
    model: str = ""
    modality: str = ""
    rows: int | None = None
    columns: int | None = None

    def matches(
        self, *, manufacturer: str, model: str, modality: str, rows: int, columns: int
    ) -> bool:
        return (
            self.manufacturer.lower() in manufacturer.lower()
            and self.model.lower() in model.lower()
            and (not self.modality or self.modality == modality)
            and (self.rows is None or self.rows == rows)
            and (self.columns is None or self.columns == columns)
        )


@dataclass(frozen=True)
class PixelPolicy:
    """The contents of ``profiles/pixels.yaml``."""

    modalities: frozenset[str]
    """Modalities scanned by ``auto`` even when Burned In Annotation is NO."""
    sop_classes: frozenset[str]
    """SOP classes scanned by ``auto`` even when Burned In Annotation is NO."""
    fixed_regions: tuple[FixedRegionRule, ...]
    keep_words: frozenset[str] = frozenset()
    """Words ``--redact phi-text`` keeps (upper-case)."""
    keep_units: frozenset[str] = frozenset()
    """Units ``--redact phi-text`` keeps alone or after a number (upper-case)."""


@dataclass(frozen=True)
class ScanDecision:
    scan: bool
    reason: str


@functools.lru_cache(maxsize=1)
def load_policy() -> PixelPolicy:
    """Read the shipped ``pixels.yaml`` once.

    Raises
    ------
    ProfileError
        When the file is missing or malformed (a packaging fault).
    """
    try:
        text = resources.files("deid._profiles").joinpath(_RESOURCE).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError, OSError):
        raise ProfileError("profiles/pixels.yaml is missing from the installed package.") from None
    return parse_policy(text)


def parse_policy(text: str) -> PixelPolicy:
    """Parse the YAML text of a pixel policy (see ``profiles/pixels.yaml`` for the format)."""
    try:
        data = yaml.safe_load(text) or {}
        scan = data.get("scan_even_when_no") or {}
        modalities = frozenset(str(m).strip().upper() for m in scan.get("modalities") or ())
        sop_classes = frozenset(str(u).strip() for u in scan.get("sop_classes") or ())
        rules = []
        for item in data.get("fixed_regions") or ():
            boxes = tuple((int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in item["boxes"])
            if any(w <= 0 or h <= 0 or x < 0 or y < 0 for x, y, w, h in boxes):
                raise ValueError("box with a negative origin or an empty size")
            unknown = set(item) - {"manufacturer", "model", "modality", "rows", "columns", "boxes"}
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}")
            if not (item.get("manufacturer") or item.get("model")):
                raise ValueError("a fixed region rule needs a manufacturer or a model")
            rules.append(
                FixedRegionRule(
                    boxes=boxes,
                    manufacturer=str(item.get("manufacturer") or ""),
                    model=str(item.get("model") or ""),
                    modality=str(item.get("modality") or "").upper(),
                    rows=int(item["rows"]) if item.get("rows") is not None else None,
                    columns=int(item["columns"]) if item.get("columns") is not None else None,
                )
            )
        keep_words = frozenset(str(w).strip().upper() for w in data.get("keep_words") or ())
        keep_units = frozenset(str(u).strip().upper() for u in data.get("keep_units") or ())
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProfileError(f"pixels.yaml is malformed ({exc}).") from None
    return PixelPolicy(modalities, sop_classes, tuple(rules), keep_words, keep_units)


def decide_scan(
    mode: PixelMode,
    *,
    burned_in_annotation: str | None,
    modality: str,
    sop_class_uid: str,
    policy: PixelPolicy | None = None,
) -> ScanDecision:
    """Decide whether an image is scanned (PS3.15 E.3.1), failing closed.

    ``always`` scans; ``never`` does not. ``auto`` scans when Burned In Annotation (0028,0301) is
    YES, absent or anything but NO; when it is NO, only images of the modalities and SOP classes
    that ``pixels.yaml`` lists as known to carry text anyway.
    """
    if mode is PixelMode.NEVER:
        return ScanDecision(False, "pixel scan disabled (--pixels never)")
    if mode is PixelMode.ALWAYS:
        return ScanDecision(True, "scan requested (--pixels always)")
    policy = policy or load_policy()
    value = (burned_in_annotation or "").strip().upper()
    if burned_in_annotation is None:
        return ScanDecision(True, "(0028,0301) BurnedInAnnotation absent")
    if value == "YES":
        return ScanDecision(True, "(0028,0301) BurnedInAnnotation is YES")
    if value != "NO":
        return ScanDecision(True, "(0028,0301) BurnedInAnnotation is neither YES nor NO")
    if modality.strip().upper() in policy.modalities:
        return ScanDecision(True, "modality known to carry burned-in text")
    if sop_class_uid.strip() in policy.sop_classes:
        return ScanDecision(True, "SOP class known to carry burned-in text")
    return ScanDecision(False, "(0028,0301) BurnedInAnnotation is NO")


def check_found(*, burned_in_annotation: str | None, found: bool) -> None:
    """Fail closed when the header says there is burned-in text and the scan found none.

    The scan can miss text (a font, a size or a contrast it does not know), so an image whose
    original Burned In Annotation (0028,0301) is YES is never claimed clean by a scan that found
    nothing to mask: it is reported, not written. An absent or NO value, with nothing found,
    leaves the image as it is.

    Raises
    ------
    PixelError
        When ``burned_in_annotation`` is YES and ``found`` is false.
    """
    if not found and (burned_in_annotation or "").strip().upper() == "YES":
        raise PixelError(
            "BurnedInAnnotation is YES but no burned-in text was found; not written: check it "
            "by hand or run with --pixels never if it is known to be clean."
        )


def fixed_boxes(
    *,
    manufacturer: str,
    model: str,
    modality: str,
    rows: int,
    columns: int,
    policy: PixelPolicy | None = None,
) -> list[tuple[int, int, int, int]]:
    """Boxes of every fixed-region rule that matches, clipped to the image."""
    policy = policy or load_policy()
    boxes: list[tuple[int, int, int, int]] = []
    for rule in policy.fixed_regions:
        if rule.matches(
            manufacturer=manufacturer,
            model=model,
            modality=modality.upper(),
            rows=rows,
            columns=columns,
        ):
            for x, y, w, h in rule.boxes:
                x1, y1 = min(columns, x + w), min(rows, y + h)
                if x < columns and y < rows and x1 > x and y1 > y:
                    boxes.append((x, y, x1 - x, y1 - y))
    return boxes
