"""Find burned-in text in an 8-bit grey view of a frame (PS3.15 E.3.1).

Two steps:

1. :func:`find_candidates` proposes text lines quickly with OpenCV: white and black top-hats
   (strokes narrower than :data:`STROKE_KERNEL`, light or dark), a contrast threshold, contours
   of character size grouped into lines (one height, one baseline), and a few cheap measures of
   how much each line looks like rendered text (one flat ink colour, a plain background, several
   characters). No OCR is involved: a frame without candidates costs a millisecond or two.
2. :class:`TesseractReader` (behind the :class:`TextReader` protocol) reads candidate crops. All
   crops of a file go to Tesseract in one call, stacked in a mosaic, because each call starts a
   process and loads a model (about 0.1 s).

Which candidates must be read, and what is masked, is decided in :mod:`deid.pixels.redact`.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from deid.errors import DependencyError, PixelError

logger = logging.getLogger(__name__)

#: Minimum grey-level step (of 255) between a stroke and its surroundings.
EDGE_CONTRAST = 40
#: Side of the square that light and dark strokes must be narrower than (pixels).
STROKE_KERNEL = 11
#: Character heights (pixels) searched for.
MIN_CHAR_HEIGHT = 5
MAX_CHAR_HEIGHT = 120
#: Score from which a candidate is text without asking the OCR engine (tuned on the synthetic
#: scenes of benchmarks/bench_pixels.py: no false candidate there scores above 0.45); between
#: ``WEAK_SCORE`` and it, the OCR engine decides; below ``WEAK_SCORE`` it is not text.
STRONG_SCORE = 0.45
WEAK_SCORE = 0.4


@dataclass(frozen=True)
class Candidate:
    """A region that may hold a line of text, in frame pixel coordinates."""

    x: int
    y: int
    width: int
    height: int
    score: float
    """0..1: how much the region looks like rendered text."""
    bright: bool
    """True for light text on a darker background."""
    characters: int
    """Number of separate character-sized shapes in the region."""
    ink_level: int = 0
    """Grey level of the text's ink in the view."""
    tolerance: int = 0
    """How far from ``ink_level`` a pixel still counts as ink."""
    features: tuple[float, ...] = ()
    """The measures the score was made of (for tuning and debugging)."""

    @property
    def strong(self) -> bool:
        return self.score >= STRONG_SCORE

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)


@dataclass(frozen=True)
class Word:
    """A word the OCR engine read, in the coordinates of the crop it was read from."""

    text: str
    confidence: float
    """0..100, as Tesseract reports it."""
    x: int
    y: int
    width: int
    height: int


class TextReader(Protocol):
    """An OCR engine: reads words in a batch of 8-bit grey crops (dark text on white)."""

    def read(self, crops: Sequence[NDArray[np.uint8]]) -> list[list[Word]]:
        """Words of each crop, with boxes in that crop's coordinates."""
        ...


def find_candidates(view: NDArray[np.uint8]) -> list[Candidate]:
    """Propose text lines in a grey ``view`` (``uint8``, 2-D).

    Light and dark text are searched separately: a white top-hat (the view minus its opening)
    keeps light strokes narrower than :data:`STROKE_KERNEL` and drops wider structures (an
    ultrasound sector, a body), a black-hat does the same for dark strokes. Stroke pixels of
    enough contrast form character-sized components, grouped into lines and scored by
    :func:`_score`. Returns every line that scores at least :data:`WEAK_SCORE`, best first.
    """
    rows, cols = view.shape
    candidates: list[Candidate] = []
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (STROKE_KERNEL, STROKE_KERNEL))
    for bright, op in ((True, cv2.MORPH_TOPHAT), (False, cv2.MORPH_BLACKHAT)):
        hat = cv2.morphologyEx(view, op, kernel)
        _, binary = cv2.threshold(hat, EDGE_CONTRAST - 1, 1, cv2.THRESH_BINARY)
        ink = np.asarray(binary, dtype=np.uint8)
        lines = _lines(view, ink, bright)
        candidates.extend(_extend(c, view) if c.strong else c for c in lines)
    candidates.sort(key=lambda c: -c.score)
    return candidates


def _extend(candidate: Candidate, view: NDArray[np.uint8]) -> Candidate:
    """Follow a text line where it runs on over a textured background.

    Characters drawn over an image merge with its texture and are not found on their own. Beside
    a line found on a plain background, columns where the line's band holds clearly more pixels
    of the line's ink colour than the bands just above and below it continue the line, judged
    half a character at a time; the line ends at a gap of a character.
    """
    rows, cols = view.shape
    x, y, w, h = candidate.box
    pad = max(2, h // 2)
    level, tolerance = candidate.ink_level, candidate.tolerance
    y0, y1 = max(0, y - pad), min(rows, y + h + pad)
    match = np.abs(view[y0:y1].astype(np.int16) - level) <= tolerance
    band = match[y - y0 : y - y0 + h].sum(axis=0, dtype=np.int32)
    outside = match.sum(axis=0, dtype=np.int32) - band
    outside_rows = max(1, (y1 - y0) - h)
    step = max(3, h // 2)  # about half a character: columns are judged a window at a time
    limit = 3 * max(w, h)

    def continues(a: int, b: int) -> bool:
        inside = float(band[a:b].sum()) / (h * (b - a))
        around = float(outside[a:b].sum()) / (outside_rows * (b - a))
        return inside >= 0.10 and inside > 1.8 * around

    x0, x1 = x, x + w
    for direction in (1, -1):
        origin = x1 if direction == 1 else x0
        last = pos = origin
        misses = 0
        while misses < 2 and abs(pos - origin) <= limit:  # a one-window gap is a word space
            a, b = (pos, pos + step) if direction == 1 else (pos - step, pos)
            if a < 0 or b > cols:
                break
            if continues(a, b):
                last, misses = (b if direction == 1 else a), 0
            else:
                misses += 1
            pos = b if direction == 1 else a
        if direction == 1:
            x1 = last
        else:
            x0 = last
    if (x0, x1) == (x, x + w):
        return candidate
    return replace(candidate, x=x0, width=x1 - x0)


def _lines(view: NDArray[np.uint8], ink: NDArray[np.uint8], bright: bool) -> list[Candidate]:
    """Group the character-sized shapes of the binary ``ink`` map into lines and score them.

    Shapes are outer contours (``cv2.findContours``: about ten times cheaper than labelled
    components on a 512x512 map, which matters on the no-text path).
    """
    rows, cols = view.shape
    contours, _ = cv2.findContours(ink, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    boxes = np.array([cv2.boundingRect(c) for c in contours], dtype=np.int32).reshape(-1, 4)
    w, h = boxes[:, 2], boxes[:, 3]
    max_h = min(MAX_CHAR_HEIGHT, max(MIN_CHAR_HEIGHT + 1, rows // 3))
    keep = (h >= MIN_CHAR_HEIGHT) & (h <= max_h) & (w <= cols * 0.9) & (w * h >= 6)
    # a long thin curve (an interface, a sector edge) is not a character, even if text touches it
    for i in np.flatnonzero(keep & (w > 3 * h)):
        if cv2.contourArea(contours[int(i)]) < 0.1 * float(w[i] * h[i]):
            keep[i] = False
    if not keep.any():
        return []
    # small marks next to characters (dots, colons, accents) belong to a line but make none
    small = (h < MIN_CHAR_HEIGHT) & (w <= 4 * MIN_CHAR_HEIGHT)
    chars = boxes[keep]
    marks = boxes[small]
    line_of = _group_lines(chars)
    out: list[Candidate] = []
    for g in np.unique(line_of):
        members = chars[line_of == g]
        x0, y0 = int(members[:, 0].min()), int(members[:, 1].min())
        x1 = int((members[:, 0] + members[:, 2]).max())
        y1 = int((members[:, 1] + members[:, 3]).max())
        if y1 - y0 > max_h + 2:
            continue
        if len(members) == 1 and y1 - y0 < 7:
            continue  # a lone speck (what _score rejects first, without its cost)
        parts = members
        if marks.size:
            reach = max(5, int(0.6 * (y1 - y0)))
            cx = marks[:, 0] + marks[:, 2] // 2
            cy = marks[:, 1] + marks[:, 3] // 2
            near = (cx >= x0 - reach) & (cx < x1 + reach) & (cy >= y0) & (cy < y1)
            parts = np.concatenate([members, marks[near]])
            x0, y0 = int(parts[:, 0].min()), int(parts[:, 1].min())
            x1 = int((parts[:, 0] + parts[:, 2]).max())
            y1 = int((parts[:, 1] + parts[:, 3]).max())
        candidate = _score(view, ink, bright, members, parts, (x0, y0, x1, y1))
        if candidate is not None and candidate.score >= WEAK_SCORE:
            out.append(candidate)
    return out


def _group_lines(chars: NDArray[np.int32]) -> NDArray[np.intp]:
    """Line index of each character box: neighbours of one height on one baseline join.

    Two boxes join when they overlap vertically by half the smaller height, their heights differ
    by at most a factor of two, and the gap between them is under 0.8 of the larger height.
    """
    n = len(chars)
    x0, y0 = chars[:, 0].astype(np.int64), chars[:, 1].astype(np.int64)
    x1, y1 = x0 + chars[:, 2], y0 + chars[:, 3]
    h = chars[:, 3].astype(np.int64)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    order = np.argsort(x0, kind="stable")
    for block in range(0, n, 512):  # bounded memory on cluttered frames
        idx = order[block : block + 512]
        overlap = np.minimum(y1[idx, None], y1[None, :]) - np.maximum(y0[idx, None], y0[None, :])
        small_h = np.minimum(h[idx, None], h[None, :])
        large_h = np.maximum(h[idx, None], h[None, :])
        gap = np.maximum(x0[idx, None], x0[None, :]) - np.minimum(x1[idx, None], x1[None, :])
        adjacent = (overlap * 2 >= small_h) & (large_h <= 2 * small_h) & (gap * 5 < 4 * large_h)
        rows_i, cols_j = np.nonzero(adjacent)
        for i, j in zip(idx[rows_i].tolist(), cols_j.tolist()):
            if i < j:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(n)], dtype=np.intp)


def _score(
    view: NDArray[np.uint8],
    ink_map: NDArray[np.uint8],
    bright: bool,
    members: NDArray[np.int32],
    parts: NDArray[np.int32],
    extent: tuple[int, int, int, int],
) -> Candidate | None:
    """Measure how much a line of ``members`` (character boxes) looks like rendered text.

    Rendered text has one ink colour (``flat``), usually sits on a plain background (``plain``,
    measured on a ring just outside the line), and is made of several characters of one height
    (``structure``). Solid blocks and long thin curves are not text. ``parts`` are the boxes whose
    ink counts (characters and small marks).
    """
    x0, y0, x1, y1 = extent
    width, height = x1 - x0, y1 - y0
    inside = np.zeros((height, width), bool)
    for x, y, bw, bh in parts.tolist():
        inside[max(0, y - y0) : y - y0 + bh, max(0, x - x0) : x - x0 + bw] = True
    ink = (ink_map[y0:y1, x0:x1] > 0) & inside
    n_ink = int(np.count_nonzero(ink))
    fill = n_ink / float(width * height)
    n_chars = int(len(members))
    heights = members[:, 3]
    even = float(np.mean(heights >= 0.5 * height))
    # thin curves and solid blocks are not text; large thin fonts are, with several characters
    min_fill = 0.05 if n_chars >= 3 and even >= 0.75 else 0.12
    if n_ink == 0 or not min_fill <= fill <= 0.88:
        return None
    if n_chars == 1 and (height < 7 or fill < 0.25):
        return None  # a speck or a curve (a word whose letters touch is one shape too)
    ink_values = view[y0:y1, x0:x1][ink].astype(np.int16)
    ring = _ring(view, x0, y0, x1, y1, 3)
    ink_level = float(_quantile(ink_values, 0.9 if bright else 0.1))
    bg_low, bg_level, bg_high = (float(v) for v in _quantiles(ring, (0.2, 0.5, 0.8)))
    contrast = (ink_level - bg_level) if bright else (bg_level - ink_level)
    if contrast < EDGE_CONTRAST * (0.75 if n_chars > 1 else 1.25):
        return None
    if contrast < EDGE_CONTRAST * 1.2 and (n_chars < 3 or height < 10):
        return None  # faint and small: speckle
    tolerance = max(8.0, 0.15 * contrast)
    flat = float(np.count_nonzero(np.abs(ink_values - ink_level) <= tolerance)) / n_ink
    plain = min(1.0, max(0.0, 1.0 - (bg_high - bg_low) / contrast))
    if n_chars == 1 and plain < 0.5:  # a lone shape on a textured background: not readable
        return None
    structure = (1.0 if n_chars >= 3 else 0.8 if n_chars == 2 else 0.5) * (0.5 + 0.5 * even)
    shape = 1.0 if width >= 0.5 * height else 0.7
    strength = 0.6 + 0.4 * min(1.0, contrast / 96.0)  # faint shapes are speckle, not text
    score = (0.4 * flat + 0.3 * plain + 0.3 * structure) * shape * strength
    return Candidate(
        x0,
        y0,
        width,
        height,
        round(score, 3),
        bright,
        n_chars,
        int(ink_level),
        int(tolerance),
        (round(flat, 2), round(plain, 2), round(structure, 2), round(fill, 2), round(contrast)),
    )


def _ring(
    view: NDArray[np.uint8], x0: int, y0: int, x1: int, y1: int, width: int
) -> NDArray[np.int16]:
    """Pixels in a band ``width`` wide around ``[x0, x1) x [y0, y1)``, one pixel away from it."""
    rows, cols = view.shape
    ox0, oy0 = max(0, x0 - 1 - width), max(0, y0 - 1 - width)
    ox1, oy1 = min(cols, x1 + 1 + width), min(rows, y1 + 1 + width)
    outer = view[oy0:oy1, ox0:ox1]
    keep = np.ones(outer.shape, bool)
    keep[max(0, y0 - 1 - oy0) : y1 + 1 - oy0, max(0, x0 - 1 - ox0) : x1 + 1 - ox0] = False
    values = outer[keep]
    if values.size == 0:
        values = outer.ravel()
    return values.astype(np.int16)


def _quantile(values: NDArray[np.int16], q: float) -> int:
    k = min(values.size - 1, max(0, int(round(q * (values.size - 1)))))
    return int(np.partition(values, k)[k])


def _quantiles(values: NDArray[np.int16], qs: tuple[float, ...]) -> list[int]:
    ks = [min(values.size - 1, max(0, int(round(q * (values.size - 1))))) for q in qs]
    part = np.partition(values, ks)
    return [int(part[k]) for k in ks]


# --------------------------------------------------------------------------------------------
# OCR


class TesseractReader:
    """Reads crops with the Tesseract binary through pytesseract, all crops in one call.

    Each crop is binarised to dark text on white, scaled so that its text is about
    ``target_height`` pixels high (Tesseract reads 20-40 pixel text best) and stacked with white
    gaps into one image; the word boxes Tesseract returns are mapped back to their crops.

    ``OMP_THREAD_LIMIT`` is set to 1 for this process unless already set: Tesseract's OpenMP
    threads double the cost of the small images this reader sends.
    """

    def __init__(self, *, target_height: int = 32, language: str = "eng") -> None:
        check_tesseract()
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        self.target_height = target_height
        self.language = language

    def read(self, crops: Sequence[NDArray[np.uint8]]) -> list[list[Word]]:
        import pytesseract

        if not crops:
            return []
        gap = self.target_height
        placed: list[tuple[int, float, int, int]] = []  # (top, scale, width, height) in mosaic
        scaled_crops = []
        width = 0
        top = gap
        for crop in crops:
            scale = max(1.0, min(6.0, self.target_height / max(1, crop.shape[0] - 4)))
            scaled = crop
            if scale > 1.0:
                scaled = np.asarray(
                    cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC),
                    dtype=np.uint8,
                )
            scaled_crops.append(scaled)
            placed.append((top, scale, scaled.shape[1], scaled.shape[0]))
            width = max(width, scaled.shape[1])
            top += scaled.shape[0] + gap
        mosaic = np.full((top, width + 2 * gap), 255, np.uint8)
        for (ctop, _scale, cw, ch), scaled in zip(placed, scaled_crops):
            mosaic[ctop : ctop + ch, gap : gap + cw] = scaled
        try:
            data = pytesseract.image_to_data(
                mosaic,
                lang=self.language,
                config="--psm 6",
                output_type=pytesseract.Output.DICT,
            )
        except Exception as exc:  # TesseractError, OSError, ...
            raise PixelError(
                f"burned-in text cannot be read: Tesseract failed ({type(exc).__name__})."
            ) from None
        words: list[list[Word]] = [[] for _ in crops]
        for i, text in enumerate(data["text"]):
            text = str(text).strip()
            if not text:
                continue
            left, wtop = int(data["left"][i]), int(data["top"][i])
            ww, wh = int(data["width"][i]), int(data["height"][i])
            centre = wtop + wh / 2
            for k, (ctop, scale, _cw, ch) in enumerate(placed):
                if ctop - gap / 2 <= centre < ctop + ch + gap / 2:
                    x = (left - gap) / scale
                    y = (wtop - ctop) / scale
                    words[k].append(
                        Word(
                            text=text,
                            confidence=float(data["conf"][i]),
                            x=int(np.floor(x)),
                            y=int(np.floor(y)),
                            width=int(np.ceil(ww / scale)) + 1,
                            height=int(np.ceil(wh / scale)) + 1,
                        )
                    )
                    break
        return words


def prepare_crop(
    view: NDArray[np.uint8], candidate: Candidate, pad: int = 3
) -> tuple[NDArray[np.uint8], int, int]:
    """The candidate's crop from ``view`` as dark text on white, and its top-left corner."""
    rows, cols = view.shape
    x0, y0 = max(0, candidate.x - pad), max(0, candidate.y - pad)
    x1 = min(cols, candidate.x + candidate.width + pad)
    y1 = min(rows, candidate.y + candidate.height + pad)
    crop = view[y0:y1, x0:x1]
    _, binary = cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    if candidate.bright:
        binary = 255 - binary
    return binary.astype(np.uint8), x0, y0


@functools.lru_cache(maxsize=1)
def check_tesseract() -> str:
    """Check once that the Tesseract binary runs; return its version.

    Raises
    ------
    DependencyError
        When pytesseract or the ``tesseract`` binary is missing.
    """
    try:
        import pytesseract
    except ImportError:
        raise DependencyError("pytesseract is not installed: pip install pytesseract.") from None
    command = pytesseract.pytesseract.tesseract_cmd
    if shutil.which(command) is None and not os.path.isfile(command):
        raise DependencyError(
            "the tesseract binary is not on PATH: install tesseract-ocr "
            "(Debian/Ubuntu: apt install tesseract-ocr)."
        )
    try:
        return str(pytesseract.get_tesseract_version())
    except Exception:
        raise DependencyError(
            "the tesseract binary does not run: install tesseract-ocr "
            "(Debian/Ubuntu: apt install tesseract-ocr)."
        ) from None
