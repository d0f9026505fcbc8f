"""Burned-in text: decode frames, detect text, mask it, re-encode losslessly (PS3.15 E.3.1).

:func:`clean_pixels` is the one entry point; it runs after header de-identification, on the same
in-memory dataset. The steps live in their own modules: :mod:`~deid.pixels.policy` (scan or not,
fixed regions), :mod:`~deid.pixels.frames` (decode, grey views), :mod:`~deid.pixels.detect`
(candidates, OCR), :mod:`~deid.pixels.redact` (what to mask), :mod:`~deid.pixels.mask`,
:mod:`~deid.pixels.encode` (lossless write-back) and :mod:`~deid.pixels.preview` (thumbnail).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from deid.config import PixelMode, RedactMode
from deid.errors import DependencyError, PixelError
from deid.identifiers import Identifiers
from deid.pixels.detect import TesseractReader, TextReader, check_tesseract, find_candidates
from deid.pixels.encode import write_back
from deid.pixels.frames import decode, rendering, search_views
from deid.pixels.mask import clip_box, mask_regions
from deid.pixels.policy import check_found, decide_scan, fixed_boxes, load_policy
from deid.pixels.preview import thumbnail_png
from deid.pixels.redact import plan_masks
from deid.results import BoxRecord, PixelOutcome

logger = logging.getLogger(__name__)

__all__ = ["PixelContext", "clean_pixels", "check_tesseract", "CLEAN_PIXEL_DATA_CODE"]

#: (113101, DCM, "Clean Pixel Data Option") from CID 7050 De-identification Method.
CLEAN_PIXEL_DATA_CODE = ("113101", "DCM", "Clean Pixel Data Option")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True)
class PixelContext:
    """What the pixel step needs to know of the original header (read before de-identification)."""

    burned_in_annotation: str | None
    """Original (0028,0301) value, ``None`` if absent."""
    modality: str
    """Original Modality (``""`` if absent)."""
    sop_class_uid: str
    manufacturer: str
    model: str
    """Manufacturer's Model Name."""
    identifiers: Identifiers
    """Identifying values of the original header (PHI; never logged)."""


def clean_pixels(
    ds: Dataset, context: PixelContext, *, mode: PixelMode, redact: RedactMode
) -> PixelOutcome:
    """Apply the Clean Pixel Data Option (PS3.15 E.3.1) to ``ds`` in place.

    Decides whether to scan (``mode``; ``auto`` fails closed, see
    :func:`deid.pixels.policy.decide_scan`), decodes every frame, finds burned-in text, masks it
    (``redact``) together with the fixed regions of the device, and writes the frames back without
    a second loss. A scanned image gets Burned In Annotation NO and the code (113101, DCM,
    "Clean Pixel Data Option") in De-identification Method Code Sequence (0012,0064), except an
    image whose original Burned In Annotation is YES in which nothing was found: that one is
    refused (``PixelError``), not claimed clean.

    Parameters
    ----------
    ds:
        The header-de-identified dataset, file meta included; changed in place.
    context:
        Values of the original header.
    mode, redact:
        ``--pixels`` and ``--redact``.

    Returns
    -------
    PixelOutcome
        What was done; ``scanned=False`` with a reason when nothing was scanned.

    Raises
    ------
    PixelError
        When a scan is required but cannot be done (undecodable pixel data, missing codec,
        Tesseract missing or failing, no lossless encoding), or when the original Burned In
        Annotation is YES and the scan found no text to mask
        (:func:`deid.pixels.policy.check_found`): the file must not be written.
    """
    return _clean(ds, context, mode=mode, redact=redact, reader=None)


def _clean(
    ds: Dataset,
    context: PixelContext,
    *,
    mode: PixelMode,
    redact: RedactMode,
    reader: TextReader | None,
) -> PixelOutcome:
    file_meta = getattr(ds, "file_meta", None)
    syntax_in = str(file_meta.get("TransferSyntaxUID", "")) if file_meta is not None else ""
    if "PixelData" not in ds:
        reason = "no pixel data"
        if any(k in ds for k in _PIXEL_KEYWORDS[1:]):
            reason = "no pixel data (float pixel data is not scanned)"
        return PixelOutcome(
            scanned=False,
            reason=reason,
            transfer_syntax_in=syntax_in,
            transfer_syntax_out=syntax_in,
        )
    policy = load_policy()
    decision = decide_scan(
        mode,
        burned_in_annotation=context.burned_in_annotation,
        modality=context.modality,
        sop_class_uid=context.sop_class_uid,
        policy=policy,
    )
    frame_count = _frame_count(ds)
    if mode is not PixelMode.NEVER:
        _remove_icons(ds)
    if not decision.scan:
        return PixelOutcome(
            scanned=False,
            reason=decision.reason,
            frames=frame_count,
            transfer_syntax_in=syntax_in,
            transfer_syntax_out=syntax_in,
        )
    if file_meta is None or not syntax_in:
        raise PixelError("(0002,0010) TransferSyntaxUID is missing: pixel data cannot be decoded.")
    if reader is None:
        reader = _default_reader()

    pixels = decode(ds)
    render = rendering(ds)
    grey = search_views(pixels, render)
    candidates = [find_candidates(view) for view in grey]
    plan = plan_masks(grey, candidates, reader, redact, context.identifiers, policy)
    fixed = fixed_boxes(
        manufacturer=context.manufacturer,
        model=context.model,
        modality=context.modality,
        rows=pixels.rows,
        columns=pixels.columns,
        policy=policy,
    )
    masked = [
        b
        for b in (clip_box(b, pixels.rows, pixels.columns) for b in plan.masked + fixed)
        if b is not None
    ]
    kept = [
        b for b in (clip_box(b, pixels.rows, pixels.columns) for b in plan.kept) if b is not None
    ]
    check_found(burned_in_annotation=context.burned_in_annotation, found=bool(masked or kept))
    changed = mask_regions(pixels.frames, masked) if masked else 0
    syntax_out = syntax_in
    if changed:
        syntax_out = str(write_back(ds, pixels))
    _mark_clean(ds)
    frame_id = 0 if pixels.count == 1 else -1
    boxes = tuple(BoxRecord(frame_id, *b) for b in masked) + tuple(
        BoxRecord(frame_id, *b, kept=True) for b in kept
    )
    # what was masked, for the report; an image found clean is unchanged and gets none
    thumbnail = thumbnail_png(pixels, render, 0, masked, kept) if boxes else None
    logger.debug(
        "pixels: %d frame(s), %d view(s), %d masked, %d kept, %d OCR call(s)",
        pixels.count,
        len(grey),
        len(masked),
        len(kept),
        plan.ocr_calls,
    )
    return PixelOutcome(
        scanned=True,
        reason=decision.reason,
        frames=pixels.count,
        boxes=boxes,
        transfer_syntax_in=syntax_in,
        transfer_syntax_out=syntax_out,
        thumbnail_png=thumbnail,
    )


@functools.lru_cache(maxsize=1)
def _tesseract_reader() -> TesseractReader:
    return TesseractReader()


def _default_reader() -> TextReader:
    try:
        return _tesseract_reader()
    except DependencyError as exc:
        raise PixelError(f"burned-in text cannot be scanned: {exc}") from None


def _frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _remove_icons(ds: Dataset) -> None:
    """Remove Icon Image Sequence (0088,0200) at every depth: a reduced copy of the image and of
    any text burned into it."""
    if "IconImageSequence" in ds:
        del ds.IconImageSequence
    for element in list(ds):
        if element.VR == "SQ" and element.value:
            for item in element.value:
                _remove_icons(item)


def _mark_clean(ds: Dataset) -> None:
    """Burned In Annotation NO and the Clean Pixel Data code in (0012,0064)."""
    ds.BurnedInAnnotation = "NO"
    value, scheme, meaning = CLEAN_PIXEL_DATA_CODE
    if "DeidentificationMethodCodeSequence" not in ds:
        ds.DeidentificationMethodCodeSequence = Sequence()
    sequence = ds.DeidentificationMethodCodeSequence
    for item in sequence:
        if item.get("CodeValue") == value and item.get("CodingSchemeDesignator") == scheme:
            return
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    sequence.append(item)
