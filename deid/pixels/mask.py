"""Fill boxes of decoded frames with their background value; touch nothing else."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]
"""``(x, y, width, height)`` in pixels."""

#: Width of the ring around a box whose pixels give its fill value.
RING = 2


def clip_box(box: Box, rows: int, columns: int) -> Box | None:
    """``box`` cut to the image, or ``None`` when nothing of it is inside."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(columns, x + w), min(rows, y + h)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def mask_regions(
    frames: NDArray[np.generic], boxes: Sequence[Box], frame_indices: Sequence[int] | None = None
) -> int:
    """Fill every box in the given frames (all when ``None``) in place; return pixels changed.

    ``frames`` is ``(frames, rows, columns, samples)``. Each box is filled, in each frame, with the
    median of the pixels in a thin ring just outside it (per sample): the background the text was
    drawn on. Fill values are taken before any box is filled, so overlapping boxes do not feed
    each other. Pixels outside the boxes are never written.
    """
    count, rows, columns, _samples = frames.shape
    indices = list(range(count)) if frame_indices is None else list(frame_indices)
    clipped = [c for c in (clip_box(b, rows, columns) for b in boxes) if c is not None]
    if not clipped or not indices:
        return 0
    fills = [_ring_median(frames, indices, box) for box in clipped]
    covered = np.zeros((rows, columns), bool)
    changed = 0
    for box, fill in zip(clipped, fills):
        x, y, w, h = box
        region = frames[indices, y : y + h, x : x + w, :]
        differs = region != fill[:, None, None, :]
        changed += int(np.count_nonzero(differs.any(axis=3) & ~covered[None, y : y + h, x : x + w]))
        frames[indices, y : y + h, x : x + w, :] = fill[:, None, None, :]
        covered[y : y + h, x : x + w] = True
    return changed


def _ring_median(frames: NDArray[np.generic], indices: list[int], box: Box) -> NDArray[np.generic]:
    """Per-frame, per-sample median of the ring around ``box``: ``(len(indices), samples)``."""
    _count, rows, columns, samples = frames.shape
    x, y, w, h = box
    x0, y0 = max(0, x - RING), max(0, y - RING)
    x1, y1 = min(columns, x + w + RING), min(rows, y + h + RING)
    outer = frames[indices, y0:y1, x0:x1, :]
    inside = np.zeros((y1 - y0, x1 - x0), bool)
    inside[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = True
    ring = outer[:, ~inside, :]  # (frames, n, samples)
    if ring.shape[1] == 0:  # the box is the whole image: fill with its minimum
        ring = outer.reshape(len(indices), -1, samples).min(axis=1, keepdims=True)
    fill = np.median(ring.astype(np.float64), axis=1)
    if np.issubdtype(frames.dtype, np.integer):
        fill = np.rint(fill)
    return fill.astype(frames.dtype)
