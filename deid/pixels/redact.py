"""Decide which text boxes are masked (``--redact all-text`` or ``phi-text``).

``all-text`` (the default) fails closed: every candidate that clearly looks like rendered text is
masked without asking the OCR engine, and weaker candidates are masked when the OCR engine reads
anything in them. ``phi-text`` reads every candidate and keeps only words read with confidence that
are clinically useful (numbers, measurements with their units, acquisition parameters, directions
and anatomy labels listed in ``profiles/pixels.yaml``) and identify no one; identifying values of
the header, dates, times, runs of five digits or more, words read with low confidence, every other
word, and ink that no word accounts for are masked.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from deid.config import RedactMode
from deid.identifiers import Identifiers
from deid.pixels.detect import Candidate, TextReader, Word, prepare_crop
from deid.pixels.frames import SearchView
from deid.pixels.policy import PixelPolicy

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]

#: Margin (pixels) added around every masked box.
MARGIN = 3
#: Confidence (0..100) from which a word read by the OCR engine may be kept in ``phi-text``.
KEEP_CONFIDENCE = 70.0
#: Confidence from which words are kept when every word of their line is clinical.
LINE_KEEP_CONFIDENCE = 0.0
#: Confidence from which a word read in a weak candidate makes it text (``all-text``).
TEXT_CONFIDENCE = 40.0

_MONTH = r"(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|SEPT|OCT|NOV|DEC)[A-Z]*\.?"
_GENERIC_PHI = re.compile(
    "|".join(
        [
            r"\d{1,4}\s?[-/.]\s?\d{1,2}\s?[-/.]\s?\d{2,4}",  # 12/03/2024, 2024-03-12, 03.12.24
            rf"\d{{1,2}}[\s\-/.]*{_MONTH}[\s\-/.,]*\d{{2,4}}",  # 12 MAR 2024, 12-Mar-24
            rf"{_MONTH}\s*\d{{1,2}},?\s*\d{{2,4}}",  # MAR 12, 2024
            # 10:22:33, 10h22, 10:22 PM
            r"\d{1,2}\s?[:h]\s?\d{2}(?:\s?:\s?\d{2})?(?:[.,]\d+)?(?:\s?[AP]\.?M\.?)?",
            r"\d[\d\-\s/]{3,}\d",  # digit runs with separators, checked for 5 digits below
            r"(?<!\d)(?:19|20)\d{2}(?!\d)",  # a year alone
        ]
    ),
    re.IGNORECASE,
)
_NUMBER = re.compile(r"[-+<>~=]?\d{1,4}(?:[.,]\d+)?%?")
_PROBE = re.compile(r"[A-Z]{1,3}\d{1,2}(?:-\d{1,2})?[A-Z]?")
_STRIP = " \t:;,()[]{}=\"'*|"


@dataclass
class MaskPlan:
    """Boxes to mask and boxes kept (``phi-text``), in frame pixel coordinates."""

    masked: list[Box] = field(default_factory=list)
    kept: list[Box] = field(default_factory=list)
    ocr_calls: int = 0


def plan_masks(
    views: Sequence[SearchView],
    candidates: Sequence[Sequence[Candidate]],
    reader: TextReader,
    redact: RedactMode,
    identifiers: Identifiers,
    policy: PixelPolicy,
) -> MaskPlan:
    """Decide what to mask from the candidates found in each view.

    ``candidates[i]`` were found in ``views[i]``; all views have the frame's size.
    """
    plan = MaskPlan()
    chosen = _deduplicate(candidates)
    to_read: list[tuple[int, Candidate]] = []
    for view_index, candidate in chosen:
        if redact is RedactMode.ALL_TEXT and candidate.strong:
            plan.masked.append(_grow(candidate.box, MARGIN))
        else:
            to_read.append((view_index, candidate))
    if not to_read:
        return plan
    crops = []
    origins = []
    for view_index, candidate in to_read:
        crop, x0, y0 = prepare_crop(views[view_index], candidate)
        crops.append(crop)
        origins.append((x0, y0))
    words_per_crop = reader.read(crops)
    plan.ocr_calls += 1
    for (_view_index, candidate), crop, origin, words in zip(
        to_read, crops, origins, words_per_crop
    ):
        if redact is RedactMode.ALL_TEXT:
            if _reads_as_text(words):
                plan.masked.append(_grow(candidate.box, MARGIN))
            continue
        _plan_phi_text(plan, candidate, crop, origin, words, identifiers, policy)
    return plan


def _plan_phi_text(
    plan: MaskPlan,
    candidate: Candidate,
    crop: NDArray[np.uint8],
    origin: tuple[int, int],
    words: list[Word],
    identifiers: Identifiers,
    policy: PixelPolicy,
) -> None:
    readable = [w for w in words if any(c.isalnum() for c in w.text)]
    if not readable or (not candidate.strong and not _reads_as_text(readable)):
        if candidate.strong:  # looks like text, cannot be read: fail closed
            plan.masked.append(_grow(candidate.box, MARGIN))
        return
    x0, y0 = origin
    decisions = classify_words(
        [w.text for w in readable], [w.confidence for w in readable], identifiers, policy
    )
    accounted = np.zeros(crop.shape, bool)
    for word, keep in zip(readable, decisions):
        box = (word.x + x0, word.y + y0, word.width, word.height)
        grown = _grow(box, max(MARGIN, int(round(0.2 * word.height))))
        (plan.kept if keep else plan.masked).append(grown)
        gx, gy, gw, gh = grown
        accounted[
            max(0, gy - y0) : max(0, gy - y0 + gh), max(0, gx - x0) : max(0, gx - x0 + gw)
        ] = True
    # ink that no word explains (a word Tesseract skipped) is masked
    ink = (crop == 0) & ~accounted
    if ink.any():
        count, _labels, stats, _ = cv2.connectedComponentsWithStats(
            np.ascontiguousarray(ink, dtype=np.uint8), connectivity=8
        )
        for i in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[i])
            if area >= 3:
                plan.masked.append(_grow((x + x0, y + y0, w, h), MARGIN + 1))


def classify_words(
    texts: Sequence[str],
    confidences: Sequence[float],
    identifiers: Identifiers,
    policy: PixelPolicy,
) -> list[bool]:
    """For each word of one line: ``True`` to keep it, ``False`` to mask it (``phi-text``)."""
    line = ""
    spans = []
    for text in texts:
        if line:
            line += " "
        spans.append((len(line), len(line) + len(text)))
        line += text
    flagged = [False] * len(texts)
    hits = [m.span() for m in _GENERIC_PHI.finditer(line) if _is_phi_match(m.group(0))]
    hits += identifiers.find(line) if identifiers else []
    # identifiers also searched with the spaces Tesseract may have put inside a value
    compact = line.replace(" ", "")
    if identifiers and compact != line and identifiers.find(compact):
        hits.append((0, len(line)))
    for start, end in hits:
        for i, (s, e) in enumerate(spans):
            if s < end and start < e:
                flagged[i] = True
    clinical = [is_clinical(text, policy) for text in texts]
    # a line made only of clinical tokens (``MI 0.8``) is kept whatever Tesseract's confidence:
    # it is unsure of short tokens (it gives ``MI 0.8`` 4 to 48), and what it read is only
    # numbers, units and keep-list words
    threshold = LINE_KEEP_CONFIDENCE if all(clinical) and not any(flagged) else KEEP_CONFIDENCE
    return [
        not phi and ok and confidence >= threshold
        for confidence, phi, ok in zip(confidences, flagged, clinical)
    ]


def is_clinical(text: str, policy: PixelPolicy) -> bool:
    """A number, a measurement, a unit, a probe name or a word of the keep list."""
    token = text.strip(_STRIP).upper().replace("@", "0")  # Tesseract reads a slashed 0 as @
    if not token or not any(c.isalnum() for c in token):
        return True  # punctuation alone
    if token in policy.keep_words or token in policy.keep_units:
        return True
    if _NUMBER.fullmatch(token):
        return True
    if _PROBE.fullmatch(token) and len(token) <= 7:
        return True
    # a keep-list word, a number and a unit run together: MI0.8, FR28HZ, 5.2CM
    match = re.fullmatch(r"([A-Z]{0,5})([-+<>~=]?\d{1,4}(?:[.,]\d+)?)(%|[A-Z/]{0,5}\d?)", token)
    if match is None:
        return False
    word, _number, unit = match.groups()
    return (not word or word in policy.keep_words) and (
        not unit or unit in policy.keep_units or unit == "%"
    )


def _is_phi_match(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    if re.fullmatch(r"\d[\d\-\s/]{3,}\d", text):
        return digits >= 5
    return True


def _reads_as_text(words: Sequence[Word]) -> bool:
    for word in words:
        alnum = sum(c.isalnum() for c in word.text)
        if alnum >= 2 and word.confidence >= TEXT_CONFIDENCE:
            return True
        if alnum >= 1 and word.confidence >= 80:
            return True
    return False


def _deduplicate(candidates: Sequence[Sequence[Candidate]]) -> list[tuple[int, Candidate]]:
    """Candidates of all views, best first, without those another one already covers."""
    flat = [(i, c) for i, cs in enumerate(candidates) for c in cs]
    flat.sort(key=lambda item: -item[1].score)
    chosen: list[tuple[int, Candidate]] = []
    for view_index, candidate in flat:
        if any(_covered(candidate.box, other.box) for _, other in chosen):
            continue
        chosen.append((view_index, candidate))
    return chosen


def _covered(inner: Box, outer: Box) -> bool:
    """Whether ``inner`` lies wholly in ``outer`` grown by the margin: a candidate that reaches
    further (a line found whole in one view and in part in another) is kept, so that nothing
    of it is left unmasked or unread."""
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    ix = max(0, min(x + w, ox + ow + MARGIN) - max(x, ox - MARGIN))
    iy = max(0, min(y + h, oy + oh + MARGIN) - max(y, oy - MARGIN))
    return ix * iy >= w * h


def _grow(box: Box, margin: int) -> Box:
    x, y, w, h = box
    return (x - margin, y - margin, w + 2 * margin, h + 2 * margin)
