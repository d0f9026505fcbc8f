"""Find burned-in text in a frame (PS3.15 E.3.1).

Two steps:

1. :func:`find_candidates` proposes text lines quickly with OpenCV: white and black top-hats
   (strokes narrower than :data:`STROKE_KERNEL`, light or dark), a contrast threshold, contours
   of character size grouped into lines (one height, one baseline), and a few cheap measures of
   how much each line looks like rendered text (one flat ink colour, a plain background, several
   characters). No OCR is involved: a frame without candidates costs a few milliseconds.

   What is searched is a :class:`~deid.pixels.frames.StoredPlane`: the stored values of a grey
   frame deeper than 8 bits, without a window (text may have any value of the stored range:
   brighter than the window, in air below it, or at a low contrast over tissue), or the 8-bit
   grey view of any other frame. The contrast threshold follows the local background
   (:func:`_stored_thresholds`): a few times its own top-hat (about 6 standard deviations of
   noise), :data:`MIN_STORED_CONTRAST` where there is no noise, never more than
   :data:`EDGE_CONTRAST` grey levels of the display window.
   Shapes whose edges are not sharp (a rib, the top of a blob) are dropped before they are
   grouped. Besides, text drawn with one value (what scanners do in 16-bit frames) is searched
   as such (:func:`_find_exact`), whatever its contrast. A bare 8-bit array is searched with
   the fixed threshold of :data:`EDGE_CONTRAST` levels.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from deid.errors import DependencyError, PixelError
from deid.pixels.frames import Numbers, SearchView, StoredPlane

logger = logging.getLogger(__name__)

#: Grey-level step (of 255) between a stroke and its surroundings that is always searched for
#: (the whole threshold in a bare 8-bit array, at most the threshold in a stored plane).
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

#: Stored planes: side of the blocks the background is measured in (pixels).
NOISE_TILE = 16
#: Stroke threshold, in multiples of the median top-hat of the background around the stroke
#: (noise, speckle, texture at the scale of strokes). For Gaussian noise the median top-hat is
#: 2 standard deviations, about 2.3 as the largest median of the blocks near a pixel: the
#: threshold is then about 5.7 standard deviations (a noise pixel reaches it once in 7000).
NOISE_FACTOR = 2.5
#: Smallest stroke contrast searched for (noise-free areas), in units of the plane's values.
MIN_STORED_CONTRAST = 16.0
#: Median top-hat under which the background of an 8-bit view is flat (see :func:`_flat`).
FLAT_BACKGROUND = 1.0
#: Smallest :func:`_sharpness` of a line of text in a stored plane.
MIN_SHARPNESS = 0.35
#: Smallest sharpness of a character-sized shape in a stored plane (see
#: ``_StoredSearch.sharp_shapes``).
MIN_SHAPE_SHARPNESS = 0.45

#: Exact-value search (:func:`_find_exact`): values examined per frame, at most, in stored
#: values deeper than 8 bits and in 8-bit views (where text is mostly found without it, and a
#: screen capture's flat panels give many values).
EXACT_MAX_VALUES = 12
EXACT_MAX_VALUES_8BIT = 2
#: Pixels of one value, at least, for it to be examined (a short word is several hundred).
EXACT_MIN_PIXELS = 40
#: Share of the frame, at most, of a value examined (more is a background: air, padding).
EXACT_MAX_SHARE = 0.1
#: Median step (stored units), at least, between text of one value and the pixels around its
#: strokes (a band of one value in a smooth noise-free image steps by a unit or two, one along
#: an edge on one side only).
EXACT_MIN_STEP = 8.0


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
    """True for text of higher values than its background (light text, except in the stored
    values of a MONOCHROME1 frame, where high values are shown dark)."""
    characters: int
    """Number of separate character-sized shapes in the region."""
    ink_level: float = 0.0
    """Level of the text's ink in the view's values (stored units for a stored plane)."""
    tolerance: float = 0.0
    """How far from ``ink_level`` a pixel still counts as ink (same units)."""
    features: tuple[float, ...] = ()
    """The measures the score was made of (for tuning and debugging)."""
    exact: bool = False
    """Found as pixels of exactly ``ink_level`` (:func:`_find_exact`)."""

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


def find_candidates(view: SearchView) -> list[Candidate]:
    """Propose text lines in a grey ``view`` (``uint8``, 2-D) or a :class:`StoredPlane`.

    Light and dark text are searched separately: a white top-hat (the view minus its opening)
    keeps light strokes narrower than :data:`STROKE_KERNEL` and drops wider structures (an
    ultrasound sector, a body), a black-hat does the same for dark strokes. Stroke pixels of
    enough contrast form character-sized components, grouped into lines and scored by
    :func:`_score`. Returns every line that scores at least :data:`WEAK_SCORE`, best first.

    In a bare 8-bit array a stroke needs :data:`EDGE_CONTRAST` grey levels. In a stored plane
    it needs :data:`NOISE_FACTOR` times the median top-hat of the background around it, at least
    :data:`MIN_STORED_CONTRAST` units, and never more than :data:`EDGE_CONTRAST` grey levels of
    its display window; shapes must have sharp edges; each line is scored as if shown through a
    window in which the noise threshold around it is :data:`EDGE_CONTRAST` grey levels
    (:func:`_stored_scale`); and lines of pixels of one exact value are searched as well
    (:func:`_find_exact`).
    """
    if isinstance(view, StoredPlane):
        return _find_stored(view)
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


def _find_stored(plane: StoredPlane) -> list[Candidate]:
    values = plane.values
    rows, cols = values.shape
    if rows < 3 or cols < 3:
        return []
    # a window narrower than the noise cannot lower the threshold to nothing
    ceiling = max(4.0, EDGE_CONTRAST * plane.grey_step)
    kernel = np.asarray(
        cv2.getStructuringElement(cv2.MORPH_RECT, (STROKE_KERNEL, STROKE_KERNEL)), np.uint8
    )
    candidates: list[Candidate] = []
    for value in _exact_values(values):
        lines = _find_exact(values, value, kernel)
        candidates.extend(_extend(c, values) if c.strong else c for c in lines)
    # a line already found whole by its exact value is not measured again
    found = [c.box for c in candidates if c.strong]
    graded = values.dtype != np.uint8
    for bright, op in ((True, cv2.MORPH_TOPHAT), (False, cv2.MORPH_BLACKHAT)):
        hat = np.asarray(cv2.morphologyEx(values, op, kernel))
        thresholds = _stored_thresholds(hat, ceiling, graded=graded)
        ink = np.asarray(cv2.compare(hat, thresholds, cv2.CMP_GE), np.uint8)
        search = _StoredSearch(values, hat, thresholds, ceiling, graded, tuple(found))
        lines = _lines(values, ink, bright, search)
        candidates.extend(_extend(c, values) if c.strong else c for c in lines)
    candidates.sort(key=lambda c: -c.score)
    return candidates


def _exact_values(values: Numbers) -> list[int]:
    """Stored values that stand alone in the histogram of a frame: candidates for text drawn
    with one value (what scanners and most software do in 16-bit frames).

    The histogram is taken on every fourth pixel of every second row (an eighth of the cost).
    A value is examined when it has at least :data:`EXACT_MIN_PIXELS`, at most
    :data:`EXACT_MAX_SHARE` of the frame, and clearly more pixels than the two values on each
    side of it; at most :data:`EXACT_MAX_VALUES`, those that stand out most. A histogram with a
    great many such values (rescaled data, whose histogram is combed) gives none.
    """
    if values.dtype == np.int16:
        sample = np.ascontiguousarray(values[::2, ::4]).view(np.uint16) ^ np.uint16(0x8000)
        offset = -0x8000
    elif values.dtype in (np.uint16, np.uint8):
        sample = np.ascontiguousarray(values[::2, ::4])
        offset = 0
    else:
        return []
    low, high, _, _ = cv2.minMaxLoc(sample)
    lo, hi = int(low), int(high)
    counts = cv2.calcHist([sample], [0], None, [hi - lo + 1], [lo, hi + 1]).ravel()
    padded = np.pad(counts, 2)
    beside = np.maximum.reduce([padded[:-4], padded[1:-3], padded[3:-1], padded[4:]])
    alone = (
        (counts >= EXACT_MIN_PIXELS / 8)
        & (counts <= EXACT_MAX_SHARE * sample.size)
        & (counts >= 2.5 * beside + 4)
    )
    found = np.flatnonzero(alone)
    if found.size == 0 or found.size > 50:
        return []
    excess = counts[found] - beside[found]
    most = EXACT_MAX_VALUES_8BIT if values.dtype == np.uint8 else EXACT_MAX_VALUES
    best = found[np.argsort(-excess, kind="stable")[:most]]
    return [int(i) + lo + offset for i in best.tolist()]


def _find_exact(values: Numbers, value: int, kernel: NDArray[np.uint8]) -> list[Candidate]:
    """Lines of character-sized shapes made of pixels of exactly ``value``.

    This finds text of one value whatever its contrast, even where it crosses its background's
    level (text drawn at 200 HU over a gradient from 150 to 250 HU) or sits in noise: noise
    never makes shapes of one exact value. Areas of the value wider than a stroke are removed
    first (a binary top-hat); a value whose pixels are mostly such areas is a background (the
    slivers of it left between the strokes of other text are not text) and gives nothing. A
    line must step from the pixels around its strokes by :data:`EXACT_MIN_STEP` (median; a
    band of one value in a smooth, noise-free image does not); two characters or more make a
    strong candidate, one a weak one (the OCR engine decides).
    """
    mask = np.asarray(cv2.compare(values, np.full((1, 1), value, np.float64), cv2.CMP_EQ))
    count = cv2.countNonZero(mask)
    square = np.ones((3, 3), np.uint8)
    if cv2.countNonZero(cv2.erode(mask, square)) > 0.7 * count:
        return []  # a flat area (strokes, even bold ones, are mostly their edges): cheap test
    rows, cols = values.shape
    # text of one value is usually in a small part of the frame: work there
    bx, by, bw, bh = cv2.boundingRect(mask)
    pad = STROKE_KERNEL
    ox, oy = max(0, bx - pad), max(0, by - pad)
    crop = mask[oy : min(rows, by + bh + pad), ox : min(cols, bx + bw + pad)]
    thin = np.asarray(cv2.morphologyEx(crop, cv2.MORPH_TOPHAT, kernel), np.uint8)
    if 2 * cv2.countNonZero(thin) < count:
        return []  # mostly a flat area: what is thin in it is the gaps between other strokes
    out: list[Candidate] = []
    for members, parts, extent in _line_groups(thin, frame=(rows, cols)):
        shape_of = _line_shape(thin, members, parts, extent)
        if shape_of is None:
            continue
        ink, fill, even = shape_of
        x0, y0, x1, y1 = extent[0] + ox, extent[1] + oy, extent[2] + ox, extent[3] + oy
        bx0, by0, bx1, by1 = max(0, x0 - 1), max(0, y0 - 1), min(cols, x1 + 1), min(rows, y1 + 1)
        grown = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
        grown[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0] = ink
        around = (np.asarray(cv2.dilate(grown, square)) > 0) & (mask[by0:by1, bx0:bx1] == 0)
        if not around.any():
            continue
        neighbours = values[by0:by1, bx0:bx1][around].astype(np.float32)
        # the median: a band of one value along an edge steps on one side only
        step = _quantile(np.abs(neighbours - np.float32(value)), 0.5)
        if step < EXACT_MIN_STEP:
            continue
        n_chars = int(len(members))
        structure = (1.0 if n_chars >= 3 else 0.8 if n_chars == 2 else 0.5) * (0.5 + 0.5 * even)
        score = 0.4 + 0.3 * min(1.0, step / (2 * EXACT_MIN_STEP)) + 0.3 * structure
        if n_chars == 1:
            score = min(score, STRONG_SCORE - 0.01)  # a lone shape: the OCR engine decides
        bright = value > _quantile(neighbours, 0.5)
        out.append(
            Candidate(
                x0,
                y0,
                x1 - x0,
                y1 - y0,
                round(score, 3),
                bright,
                n_chars,
                float(value),
                0.0,
                (1.0, round(step, 1), round(structure, 2), round(fill, 2)),
                exact=True,
            )
        )
    return out


@dataclass(frozen=True)
class _StoredSearch:
    """What judging shapes and lines of a stored plane needs besides the ink map."""

    values: Numbers
    hat: Numbers
    """The top-hat (or black-hat) the ink map was thresholded from."""
    thresholds: Numbers
    ceiling: float
    graded: bool = True
    """The threshold follows the background and shapes must be sharp (stored values deeper than
    8 bits), or the threshold is the ceiling but on flat backgrounds (8-bit views, often blurred
    by JPEG and chroma subsampling)."""
    found: tuple[tuple[int, int, int, int], ...] = ()
    """Boxes of lines found already (by their exact value): lines inside one are skipped."""

    def known(self, extent: tuple[int, int, int, int]) -> bool:
        """Whether a line lies inside a box found already (grown by a pixel)."""
        x0, y0, x1, y1 = extent
        return any(
            x0 >= x - 1 and y0 >= y - 1 and x1 <= x + w + 1 and y1 <= y + h + 1
            for x, y, w, h in self.found
        )

    def sharp_shapes(
        self, contours: Sequence[NDArray[np.int32]], boxes: NDArray[np.int32]
    ) -> NDArray[np.bool_]:
        """Which shapes' outlines step sharply from their background (text does, within a
        pixel or two; a rib, a vessel or the top of a blob does not): the mean 3x3 range of
        values on the outline, less a share for the noise, is at least
        :data:`MIN_SHAPE_SHARPNESS` of the shape's peak (the highest top-hat next to it)."""
        count = len(contours)
        if count == 0:
            return np.zeros(0, bool)
        rows, cols = self.values.shape
        sizes = np.array([len(c) for c in contours], np.intp)
        points = np.concatenate(contours).reshape(-1, 2)
        xs, ys = points[:, 0].astype(np.intp), points[:, 1].astype(np.intp)
        yy = np.clip(ys[None, :] + _OFFSETS[:, :1], 0, rows - 1)
        xx = np.clip(xs[None, :] + _OFFSETS[:, 1:], 0, cols - 1)
        flat = yy * cols + xx  # the 3x3 neighbourhood of every outline point
        near = self.values.ravel()[flat].astype(np.float32)
        high, low = near.max(axis=0), near.min(axis=0)
        peak = self.hat.ravel()[flat].max(axis=0)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        edge = np.add.reduceat(high - low, starts) / sizes
        top = np.maximum.reduceat(peak.astype(np.float32), starts)
        # about 1.5 standard deviations
        noise = 0.3 * self.thresholds[ys[starts], xs[starts]].astype(np.float32)
        return np.asarray(edge - noise >= MIN_SHAPE_SHARPNESS * top)

    def scale(self, extent: tuple[int, int, int, int]) -> float:
        return _stored_scale(self.hat, extent, self.ceiling, graded=self.graded)


def _block_quantiles(values: Numbers, side: tuple[int, int], q: float = 0.5) -> NDArray[np.float32]:
    """Quantile ``q`` of each block of ``side`` (rows, columns) of ``values`` (the values of a
    partial block at the end of a row or column are left out)."""
    rows, cols = values.shape
    sy, sx = side
    if rows < sy or cols < sx:
        k = int(q * (values.size - 1))
        return np.full((1, 1), float(np.partition(values.ravel(), k)[k]), np.float32)
    by, bx = rows // sy, cols // sx
    blocks = values[: by * sy, : bx * sx].reshape(by, sy, bx, sx).transpose(0, 2, 1, 3)
    flat = blocks.reshape(by, bx, sy * sx)
    k = int(q * (sy * sx - 1))
    return np.partition(flat, k, axis=2)[..., k].astype(np.float32)


def _stored_thresholds(hat: Numbers, ceiling: float, *, graded: bool = True) -> Numbers:
    """Per-pixel stroke threshold for a top-hat (or black-hat) ``hat``, in its units and dtype:
    :data:`NOISE_FACTOR` times the largest median of ``hat`` in the :data:`NOISE_TILE`-pixel
    blocks within half a block of the pixel, within [:data:`MIN_STORED_CONTRAST`, ``ceiling``].

    The median top-hat of a block is what its background (noise, speckle, texture at the scale
    of strokes) gives; text covering less than half of a block does not raise it. Taking the
    largest of the blocks near the pixel keeps noise beside a noise-free area from passing for
    strokes; a noise-free area keeps its low threshold from half a block away from a noisy one.

    Not ``graded`` (8-bit views, whose fixed threshold of :data:`EDGE_CONTRAST` levels is what
    their speckle and texture were tuned on): the threshold is ``ceiling``, but for blocks whose
    background is flat (:func:`_flat`)."""
    rows, cols = hat.shape
    half = NOISE_TILE // 2
    square = np.ones((3, 3), np.uint8)
    if graded:
        # every second pixel of every second row: 64 samples a block
        sample = np.ascontiguousarray(hat[::2, ::2])
        unit = _block_quantiles(sample, (half, half), 0.5)
        # the largest of the blocks within half a block (on a grid of half blocks)
        halves = np.repeat(np.repeat(unit, 2, axis=0), 2, axis=1)
        per_block = np.asarray(cv2.dilate(halves, square), np.float32)
        per_block = np.clip(per_block * np.float32(NOISE_FACTOR), MIN_STORED_CONTRAST, ceiling)
    else:
        # an integer median under one level (FLAT_BACKGROUND) is a majority of zeros: the
        # share of non-zero samples tells it, cheaper than a median
        nonzero = np.asarray(hat[::2, ::2] > 0, np.float32)
        blocks = (max(1, nonzero.shape[1] // half), max(1, nonzero.shape[0] // half))
        busy = np.asarray(cv2.resize(nonzero, blocks, interpolation=cv2.INTER_AREA), np.float32)
        busy = np.asarray(cv2.dilate(busy, square), np.float32)
        per_block = np.where(busy >= 0.5, ceiling, MIN_STORED_CONTRAST).astype(np.float32)
    if hat.dtype.kind in "ui":
        info = np.iinfo(hat.dtype)  # type: ignore[type-var]
        per_block = np.clip(np.ceil(per_block), 1, info.max).astype(hat.dtype)
    else:
        per_block = per_block.astype(np.float32)
    return np.asarray(cv2.resize(per_block, (cols, rows), interpolation=cv2.INTER_NEAREST))


def _flat(median_hat: NDArray[np.float32] | float) -> NDArray[np.bool_]:
    """Whether a background is flat: its median top-hat is under a grey level (noise-free
    margins and panels of 8-bit frames)."""
    return np.asarray(np.asarray(median_hat) < FLAT_BACKGROUND)


def _stored_scale(
    hat: Numbers, extent: tuple[int, int, int, int], ceiling: float, *, graded: bool = True
) -> float:
    """Grey levels per unit at which a line in ``extent`` of a stored plane is scored.

    The background is measured in a band around the line, 3 to 7 pixels from it: the line's
    contrast is judged against the top-hat of its own surroundings (a speck of noise beside a
    noise-free area is judged against its own noise), and the threshold this gives counts
    :data:`EDGE_CONTRAST` levels.
    """
    rows, cols = hat.shape
    x0, y0, x1, y1 = extent
    near, far = 2, 7
    rx0, ry0 = max(0, x0 - far), max(0, y0 - far)
    rx1, ry1 = min(cols, x1 + far), min(rows, y1 + far)
    band = np.ones((ry1 - ry0, rx1 - rx0), bool)
    band[max(0, y0 - near - ry0) : y1 + near - ry0, max(0, x0 - near - rx0) : x1 + near - rx0] = (
        False
    )
    threshold = MIN_STORED_CONTRAST
    if band.any():
        median = _quantile(np.asarray(hat[ry0:ry1, rx0:rx1], np.float32)[band], 0.5)
        if graded:
            threshold = max(MIN_STORED_CONTRAST, NOISE_FACTOR * median)
        elif not _flat(median):
            threshold = ceiling
    return EDGE_CONTRAST / max(1.0, min(threshold, ceiling))


def _extend(candidate: Candidate, view: Numbers) -> Candidate:
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
    match = np.abs(view[y0:y1].astype(np.float32) - level) <= tolerance
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


def _lines(
    view: Numbers,
    ink: NDArray[np.uint8],
    bright: bool,
    stored: _StoredSearch | None = None,
) -> list[Candidate]:
    """Group the character-sized shapes of the binary ``ink`` map into lines and score them.

    ``stored`` is given when ``view`` holds stored values: shapes without sharp edges are
    dropped before grouping, and lines are scored at the scale it gives.
    """
    rows, cols = view.shape
    sharp = stored.sharp_shapes if stored is not None and stored.graded else None
    out: list[Candidate] = []
    for members, parts, extent in _line_groups(ink, sharp):
        if stored is not None and stored.known(extent):
            continue
        stored_scale = None if stored is None else functools.partial(stored.scale, extent)
        candidate = _score(view, ink, bright, members, parts, extent, stored_scale)
        if candidate is not None and candidate.score >= WEAK_SCORE:
            out.append(candidate)
    return out


Line = tuple[NDArray[np.int32], NDArray[np.int32], tuple[int, int, int, int]]
"""Character boxes of a line, the boxes whose ink counts (with small marks), and its extent
``(x0, y0, x1, y1)``."""


_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.uint8)
_OFFSETS = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], np.intp)


def _line_groups(
    ink: NDArray[np.uint8],
    sharp: Callable[[Sequence[NDArray[np.int32]], NDArray[np.int32]], NDArray[np.bool_]]
    | None = None,
    *,
    frame: tuple[int, int] | None = None,
) -> list[Line]:
    """Character-sized shapes of the binary ``ink`` map, grouped into lines.

    Shapes are outer contours (``cv2.findContours``: about ten times cheaper than labelled
    components on a 512x512 map, which matters on the no-text path), at every depth. ``sharp``
    (contours, boxes) may drop shapes before grouping. ``frame`` is the (rows, columns) of the
    frame when ``ink`` is a part of it (the largest character is a share of the frame).
    """
    rows, cols = ink.shape if frame is None else frame
    # lone pixels (noise) make no character and cost a contour each: drop them first (a
    # pixel stays when the dilation of the map by its 8 neighbours reaches it)
    ink = np.asarray(cv2.bitwise_and(ink, cv2.dilate(ink, _NEIGHBOURS)), np.uint8)
    # outer outlines at every depth: text inside a ring (a CT's ribs, a circular field of
    # view) is not an outline of the ring's hole, and RETR_EXTERNAL would drop it
    contours, hierarchy = cv2.findContours(ink, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    if len(contours) > 1:
        outer = hierarchy.reshape(-1, 4)[:, 3] < 0
        contours = tuple(c for c, o in zip(contours, outer.tolist()) if o)
    boxes = np.array([cv2.boundingRect(c) for c in contours], dtype=np.int32).reshape(-1, 4)
    w, h = boxes[:, 2], boxes[:, 3]
    max_h = min(MAX_CHAR_HEIGHT, max(MIN_CHAR_HEIGHT + 1, rows // 3))
    keep = (h >= MIN_CHAR_HEIGHT) & (h <= max_h) & (w <= cols * 0.9) & (w * h >= 6)
    # a long thin curve (an interface, a sector edge) is not a character, even if text touches it
    for i in np.flatnonzero(keep & (w > 3 * h)):
        if cv2.contourArea(contours[int(i)]) < 0.2 * float(w[i] * h[i]):
            keep[i] = False
    if sharp is not None and keep.any():
        kept = np.flatnonzero(keep)
        keep[kept] = sharp([np.asarray(contours[int(i)], np.int32) for i in kept], boxes[kept])
    if not keep.any():
        return []
    # small marks next to characters (dots, colons, accents) belong to a line but make none
    small = (h < MIN_CHAR_HEIGHT) & (w <= 4 * MIN_CHAR_HEIGHT)
    chars = boxes[keep]
    marks = boxes[small]
    line_of = _group_lines(chars)
    groups, index = np.unique(line_of, return_inverse=True)
    order = np.argsort(index, kind="stable")
    starts = np.searchsorted(index[order], np.arange(len(groups)))
    ordered = chars[order]
    gx0 = np.minimum.reduceat(ordered[:, 0], starts)
    gy0 = np.minimum.reduceat(ordered[:, 1], starts)
    gx1 = np.maximum.reduceat(ordered[:, 0] + ordered[:, 2], starts)
    gy1 = np.maximum.reduceat(ordered[:, 1] + ordered[:, 3], starts)
    sizes = np.diff(np.append(starts, len(ordered)))
    tall = gy1 - gy0
    # too tall for a line; a lone speck (what _score rejects first, without its cost)
    wanted = np.flatnonzero((tall <= max_h + 2) & ~((sizes == 1) & (tall < 7)))
    out: list[Line] = []
    for g in wanted.tolist():
        members = ordered[starts[g] : starts[g] + sizes[g]]
        x0, y0, x1, y1 = int(gx0[g]), int(gy0[g]), int(gx1[g]), int(gy1[g])
        parts = members
        if marks.size:
            reach = max(5, int(0.6 * (y1 - y0)))
            cx = marks[:, 0] + marks[:, 2] // 2
            cy = marks[:, 1] + marks[:, 3] // 2
            near = (cx >= x0 - reach) & (cx < x1 + reach) & (cy >= y0) & (cy < y1)
            if near.any():
                parts = np.concatenate([members, marks[near]])
                x0, y0 = int(parts[:, 0].min()), int(parts[:, 1].min())
                x1 = int((parts[:, 0] + parts[:, 2]).max())
                y1 = int((parts[:, 1] + parts[:, 3]).max())
        out.append((members, parts, (x0, y0, x1, y1)))
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
    view: Numbers,
    ink_map: NDArray[np.uint8],
    bright: bool,
    members: NDArray[np.int32],
    parts: NDArray[np.int32],
    extent: tuple[int, int, int, int],
    stored_scale: Callable[[], float] | None = None,
) -> Candidate | None:
    """Measure how much a line of ``members`` (character boxes) looks like rendered text.

    Rendered text has one ink colour (``flat``), usually sits on a plain background (``plain``,
    measured on a ring just outside the line), and is made of several characters of one height
    (``structure``). Solid blocks and long thin curves are not text. ``parts`` are the boxes whose
    ink counts (characters and small marks).

    ``stored_scale`` is given for a stored plane: it returns the grey levels per stored unit the
    line is judged at, and the line must also have sharp edges (:func:`_sharpness`): rendered
    text steps from its background within a pixel or two, the top of a smooth blob does not.
    """
    x0, y0, x1, y1 = extent
    width, height = x1 - x0, y1 - y0
    shape_of = _line_shape(ink_map, members, parts, extent)
    if shape_of is None:
        return None
    ink, fill, even = shape_of
    n_chars = int(len(members))
    scale = 1.0
    core = extent
    if stored_scale is not None:
        # stored values are noisier than a window: small marks (noise as often as dots) widen
        # the box but are not measured, and the ring is taken around the characters alone
        scale = stored_scale()
        core = (
            int(members[:, 0].min()),
            int(members[:, 1].min()),
            int((members[:, 0] + members[:, 2]).max()),
            int((members[:, 1] + members[:, 3]).max()),
        )
        if core != extent:
            core_shape = _line_shape(ink_map, members, members, core, check=False)
            assert core_shape is not None
            ink = core_shape[0]
    cx0, cy0, cx1, cy1 = core
    n_ink = int(np.count_nonzero(ink))
    if n_ink == 0:
        return None
    ink_values = view[cy0:cy1, cx0:cx1][ink].astype(np.float32) * np.float32(scale)
    ring = _ring(view, cx0, cy0, cx1, cy1, 3) * np.float32(scale)
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
    if n_chars == 1 and _solid(ink):
        return None  # a lone round blob: a vessel, a calcification, not a character
    if (
        stored_scale is not None
        and view.dtype != np.uint8  # 8-bit views: JPEG and chroma subsampling blur edges
        and _sharpness(view, ink, core, contrast / scale) < MIN_SHARPNESS
    ):
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
        ink_level / scale,
        tolerance / scale,
        (round(flat, 2), round(plain, 2), round(structure, 2), round(fill, 2), round(contrast)),
    )


def _line_shape(
    ink_map: NDArray[np.uint8],
    members: NDArray[np.int32],
    parts: NDArray[np.int32],
    extent: tuple[int, int, int, int],
    *,
    check: bool = True,
) -> tuple[NDArray[np.bool_], float, float] | None:
    """The ink of a line (in its extent), its fill and the share of characters of the line's
    height; ``None`` when its shape is not text's (a speck, a thin curve, a solid block) and
    ``check`` is set."""
    x0, y0, x1, y1 = extent
    width, height = x1 - x0, y1 - y0
    inside = np.zeros((height, width), bool)
    for x, y, bw, bh in parts.tolist():
        inside[max(0, y - y0) : y - y0 + bh, max(0, x - x0) : x - x0 + bw] = True
    ink = (ink_map[y0:y1, x0:x1] > 0) & inside
    n_ink = int(np.count_nonzero(ink))
    fill = n_ink / float(width * height)
    n_chars = int(len(members))
    even = float(np.mean(members[:, 3] >= 0.5 * height))
    # thin curves and solid blocks are not text; large thin fonts are, with several characters
    min_fill = 0.05 if n_chars >= 3 and even >= 0.75 else 0.12
    if check and (n_ink == 0 or not min_fill <= fill <= 0.88):
        return None
    if check and n_chars == 1 and (height < 7 or fill < 0.25):
        return None  # a speck or a curve (a word whose letters touch is one shape too)
    return ink, fill, even


def _solid(ink: NDArray[np.bool_]) -> bool:
    """Whether a shape is a round blob rather than strokes: no more than twice as wide as high
    or high as wide, and its thickest point (twice the largest distance to its outside) is at
    least 0.6 of its smaller side. A disc is; a letter, even a bold one, is not, nor a word
    whose letters run together."""
    rows, cols = ink.shape
    if max(rows, cols) > 2 * min(rows, cols):
        return False
    padded = np.pad(ink, 1).astype(np.uint8)
    depth = float(np.asarray(cv2.distanceTransform(padded, cv2.DIST_L2, 3)).max())
    return bool(2.0 * depth >= 0.6 * min(ink.shape))


def _sharpness(
    view: Numbers,
    ink: NDArray[np.bool_],
    extent: tuple[int, int, int, int],
    contrast: float,
) -> float:
    """How sharply the ink of a line steps from its background, 0..1 (about 1 for text).

    The morphological gradient (3x3 maximum minus minimum) on the edge of the ink, less its
    typical value just around the line (noise, texture), over the line's ``contrast`` (in the
    units of ``view``).
    """
    rows, cols = view.shape
    x0, y0, x1, y1 = extent
    pad = 4
    rx0, ry0 = max(0, x0 - pad), max(0, y0 - pad)
    rx1, ry1 = min(cols, x1 + pad), min(rows, y1 + pad)
    region = view[ry0:ry1, rx0:rx1].astype(np.float32)
    square = np.ones((3, 3), np.uint8)
    gradient = np.asarray(cv2.dilate(region, square), np.float32) - np.asarray(
        cv2.erode(region, square), np.float32
    )
    inner = gradient[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0]
    ink_u8 = ink.view(np.uint8)
    edge = ink & (np.asarray(cv2.erode(ink_u8, square), np.uint8) == 0)
    if not edge.any() or contrast <= 0:
        return 0.0
    outside = np.ones(region.shape, bool)
    outside[max(0, y0 - 2 - ry0) : y1 + 2 - ry0, max(0, x0 - 2 - rx0) : x1 + 2 - rx0] = False
    around = _quantile(gradient[outside], 0.5) if outside.any() else 0.0
    return (_quantile(inner[edge], 0.5) - around) / contrast


def _ring(view: Numbers, x0: int, y0: int, x1: int, y1: int, width: int) -> NDArray[np.float32]:
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
    return values.astype(np.float32)


def _quantile(values: NDArray[np.float32], q: float) -> float:
    """Quantile ``q`` of ``values`` (one of them; ``np.quantile`` and ``np.median`` cost ten
    times more on the small arrays measured here)."""
    k = min(values.size - 1, max(0, int(round(q * (values.size - 1)))))
    return float(np.partition(values.ravel(), k)[k])


def _quantiles(values: NDArray[np.float32], qs: tuple[float, ...]) -> list[float]:
    ks = [min(values.size - 1, max(0, int(round(q * (values.size - 1))))) for q in qs]
    part = np.partition(values, ks)
    return [float(part[k]) for k in ks]


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
    view: SearchView, candidate: Candidate, pad: int = 3
) -> tuple[NDArray[np.uint8], int, int]:
    """The candidate's crop from ``view`` as dark text on white, and its top-left corner.

    A crop of a stored plane is first stretched from its minimum to its maximum."""
    values = view.values if isinstance(view, StoredPlane) else view
    rows, cols = values.shape
    x0, y0 = max(0, candidate.x - pad), max(0, candidate.y - pad)
    x1 = min(cols, candidate.x + candidate.width + pad)
    y1 = min(rows, candidate.y + candidate.height + pad)
    crop = values[y0:y1, x0:x1]
    if candidate.exact:  # the text's own pixels, dark on white
        return np.where(crop == candidate.ink_level, 0, 255).astype(np.uint8), x0, y0
    if crop.dtype != np.uint8:
        low, high, _, _ = cv2.minMaxLoc(crop.astype(np.float32))
        crop = cv2.convertScaleAbs(
            crop.astype(np.float32),
            alpha=255.0 / max(high - low, 1e-6),
            beta=-low * 255.0 / max(high - low, 1e-6),
        )
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
