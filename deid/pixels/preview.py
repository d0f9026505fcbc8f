"""A small PNG of a cleaned frame with its masked boxes outlined, for reports."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from deid.pixels.frames import DecodedPixels, Rendering, grey_views, to_rgb8

Box = tuple[int, int, int, int]

#: Longest side of a thumbnail, pixels.
THUMBNAIL_SIZE = 192
_MASKED_BGR = (0, 0, 255)
_KEPT_BGR = (0, 200, 0)


def thumbnail_png(
    pixels: DecodedPixels,
    render: Rendering,
    frame: int,
    masked: Sequence[Box],
    kept: Sequence[Box] = (),
) -> bytes:
    """PNG bytes of frame ``frame`` of the *cleaned* ``pixels``, masked boxes outlined in red
    and kept boxes in green. Only ever called after masking: it shows what is written."""
    rows, columns = pixels.rows, pixels.columns
    # every k-th pixel first (free), then an area resize of the small image
    step = max(1, int(max(rows, columns) // THUMBNAIL_SIZE))
    source = pixels.frames[frame, ::step, ::step]
    if pixels.samples == 3:
        bgr = cv2.cvtColor(
            to_rgb8(source, pixels.photometric, pixels.bits_stored), cv2.COLOR_RGB2BGR
        )
    else:
        bgr = cv2.cvtColor(grey_views(source, pixels, render)[0], cv2.COLOR_GRAY2BGR)
    scale = min(1.0, THUMBNAIL_SIZE / max(rows, columns))
    if scale < 1.0:
        size = (max(1, round(columns * scale)), max(1, round(rows * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    for boxes, colour in ((kept, _KEPT_BGR), (masked, _MASKED_BGR)):
        for x, y, w, h in boxes:
            p0 = (int(np.floor(x * scale)), int(np.floor(y * scale)))
            p1 = (int(np.ceil((x + w) * scale)) - 1, int(np.ceil((y + h) * scale)) - 1)
            cv2.rectangle(bgr, p0, p1, colour, 1)
    ok, encoded = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit BGR image
        return b""
    return bytes(encoded.tobytes())
