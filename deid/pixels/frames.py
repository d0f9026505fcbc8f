"""Decode every frame of a dataset and make the images text is searched in."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

import cv2
import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
)

from deid.errors import PixelError

logger = logging.getLogger(__name__)

#: Syntaxes whose pixel data may have gone through lossy compression.
LOSSY_SYNTAXES: frozenset[str] = frozenset(
    {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000, JPEG2000MC, HTJ2K}
)
#: Syntaxes in which the decoder converts YCbCr to RGB (the colour transform is part of JPEG).
_YBR_TO_RGB_SYNTAXES: frozenset[str] = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit})
_NATIVE_LITTLE: frozenset[str] = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
)


@dataclass(frozen=True)
class DecodedPixels:
    """Every frame of a dataset, decoded, as ``(frames, rows, columns, samples)``."""

    frames: NDArray[np.generic]
    photometric: str
    """Photometric Interpretation of ``frames`` (``RGB`` for decoded JPEG YCbCr, ``YBR_FULL`` for
    decoded ``YBR_FULL_422``)."""
    bits_allocated: int
    bits_stored: int
    signed: bool
    syntax: UID
    """Transfer syntax the pixel data was stored in."""
    lossy: bool
    """The stored pixel data went through lossy compression (its syntax, or (0028,2110) is 01)."""

    @property
    def count(self) -> int:
        return int(self.frames.shape[0])

    @property
    def samples(self) -> int:
        return int(self.frames.shape[3])

    @property
    def rows(self) -> int:
        return int(self.frames.shape[1])

    @property
    def columns(self) -> int:
        return int(self.frames.shape[2])


@dataclass(frozen=True)
class Rendering:
    """What is needed to show a grey frame: modality rescale, VOI windows, palette."""

    slope: float = 1.0
    intercept: float = 0.0
    windows: tuple[tuple[float, float], ...] = ()
    """(centre, width) pairs from (0028,1050)/(0028,1051), rescaled units."""
    palette: NDArray[np.uint8] | None = None
    """``(entries, 3)`` 8-bit RGB palette for PALETTE COLOR, indexed from ``palette_first``."""
    palette_first: int = 0


def decode(ds: Dataset) -> DecodedPixels:
    """Decode every frame of ``ds`` (any syntax pydicom's installed plugins decode).

    Raises
    ------
    PixelError
        When the pixel data cannot be decoded (corrupt data, a syntax without an installed
        decoder such as MPEG video). The message names the syntax, never a value.
    """
    from pydicom.pixels import get_decoder

    syntax = UID(ds.file_meta.get("TransferSyntaxUID", ""))
    name = syntax.name if syntax else "no transfer syntax"
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise PixelError(
            f"(7FE0,0010) PixelData in {name} cannot be decoded: no decoder for this syntax."
        ) from None
    options: dict[str, Any] = {"as_rgb": syntax in _YBR_TO_RGB_SYNTAXES}
    fast = _native_grey(ds, syntax)
    try:
        array, meta = fast if fast is not None else decoder.as_array(ds, **options)
    except Exception as exc:  # each plugin raises its own errors
        raise PixelError(
            f"(7FE0,0010) PixelData in {name} cannot be decoded ({type(exc).__name__}); "
            "check the file and that the pylibjpeg/pyjpegls plugins are installed."
        ) from None
    frames = int(meta.get("number_of_frames", 1) or 1)
    samples = int(meta.get("samples_per_pixel", 1) or 1)
    rows, columns = int(meta["rows"]), int(meta["columns"])
    try:
        array = array.reshape(frames, rows, columns, samples)
    except ValueError:
        raise PixelError(
            f"(7FE0,0010) PixelData in {name} does not match its image size."
        ) from None
    if not array.flags.writeable:
        array = array.copy()
    photometric = str(
        meta.get("photometric_interpretation") or ds.get("PhotometricInterpretation", "")
    )
    # JPEG baseline and extended are always lossy; the other lossy-capable syntaxes (near-lossless
    # JPEG-LS, JPEG 2000) may hold lossless data, which (0028,2110) tells
    lossy = (
        syntax in _YBR_TO_RGB_SYNTAXES or str(ds.get("LossyImageCompression", "")).strip() == "01"
    )
    return DecodedPixels(
        frames=array,
        photometric=photometric.strip().upper(),
        bits_allocated=int(meta.get("bits_allocated", ds.get("BitsAllocated", 8))),
        bits_stored=int(meta.get("bits_stored", ds.get("BitsStored", 8))),
        signed=bool(int(str(meta.get("pixel_representation", ds.get("PixelRepresentation", 0))))),
        syntax=syntax,
        lossy=lossy,
    )


def _native_grey(ds: Dataset, syntax: UID) -> tuple[NDArray[np.generic], dict[str, Any]] | None:
    """Little-endian native grey pixel data straight from its bytes (the common CT/MR/CR case,
    where pydicom's generic path costs more than the rest of the scan); ``None`` otherwise."""
    if syntax not in _NATIVE_LITTLE:
        return None
    try:
        bits = int(ds.BitsAllocated)
        stored = int(ds.BitsStored)
        signed = int(ds.PixelRepresentation) == 1
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        photometric = str(ds.PhotometricInterpretation).strip().upper()
        samples = int(ds.get("SamplesPerPixel", 1))
        data = ds.PixelData
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    if (
        bits not in (8, 16)
        or samples != 1
        or photometric not in ("MONOCHROME1", "MONOCHROME2")
        or not 1 <= stored <= bits
        or min(rows, columns, frames) < 1
        or not isinstance(data, bytes)
    ):
        return None
    count = rows * columns * frames
    if len(data) < count * bits // 8:
        return None  # let pydicom report it
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    array = np.frombuffer(data, dtype, count=count).reshape(frames, rows, columns, 1).copy()
    if stored < bits:  # unused high bits (old overlays) are not pixel values
        shift = bits - stored
        if signed:
            array = (array << shift) >> shift
        else:
            array &= (1 << stored) - 1
    meta: dict[str, Any] = {
        "rows": rows,
        "columns": columns,
        "number_of_frames": frames,
        "samples_per_pixel": 1,
        "photometric_interpretation": photometric,
        "bits_allocated": bits,
        "bits_stored": stored,
        "pixel_representation": int(signed),
    }
    return array, meta


def rendering(ds: Dataset) -> Rendering:
    """Read rescale, window and palette attributes of ``ds`` (bad values are ignored)."""
    slope, intercept = 1.0, 0.0
    try:
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    except (TypeError, ValueError):
        slope, intercept = 1.0, 0.0
    windows: list[tuple[float, float]] = []
    try:
        centres = ds.get("WindowCenter")
        widths = ds.get("WindowWidth")
        if centres is not None and widths is not None:
            cs = list(centres) if not isinstance(centres, (int, float)) else [centres]
            ws = list(widths) if not isinstance(widths, (int, float)) else [widths]
            for c, w in zip(cs, ws):
                if float(w) >= 1:
                    windows.append((float(c), float(w)))
    except (TypeError, ValueError):
        windows = []
    palette = None
    first = 0
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "PALETTE COLOR":
        try:
            from pydicom.pixels import apply_color_lut

            descriptor = ds.RedPaletteColorLookupTableDescriptor
            entries = int(descriptor[0]) or 65536
            first = int(descriptor[1])
            index = np.arange(
                first, first + entries, dtype=np.uint16 if entries > 256 else np.uint8
            )
            rgb = apply_color_lut(index, ds)
            if rgb.dtype != np.uint8:
                rgb = (rgb >> 8).astype(np.uint8)
            palette = rgb.reshape(-1, 3)
        except Exception:
            raise PixelError("(0028,1101) palette colour lookup table cannot be read.") from None
    return Rendering(slope, intercept, tuple(windows[:2]), palette, first)


Numbers = np.ndarray[Any, np.dtype[np.integer[Any] | np.floating[Any]]]
"""An array of integers or floats (what OpenCV's functions take)."""


@dataclass(frozen=True)
class StoredPlane:
    """A plane text is searched in: the stored values of a grey frame deeper than 8 bits (or
    signed), or the 8-bit grey view of any other frame.

    Text burned into a deep frame may have any value of the stored range: brighter than the
    window, inside it at a low contrast, or below it in air. No window is applied and nothing is
    clipped; :func:`deid.pixels.detect.find_candidates` judges strokes against the local noise.
    """

    values: Numbers
    """``(rows, columns)`` values (``uint8``, ``uint16``, ``int16`` or ``float32``)."""
    grey_step: float
    """Stored units per grey level of the display rendering (the first VOI window, or the
    frame's minimum to maximum over 255): text of 40 grey levels there is always searched."""


SearchView = NDArray[np.uint8] | StoredPlane
"""What :func:`deid.pixels.detect.find_candidates` searches: an 8-bit grey image, with a fixed
contrast threshold, or a :class:`StoredPlane`, with thresholds that follow the noise."""


def views(pixels: DecodedPixels, render: Rendering) -> list[NDArray[np.uint8]]:
    """The 8-bit grey images a reader sees (:func:`grey_views` of each frame or projection).

    One frame gives its own view(s); several frames give views of their per-pixel maximum and
    minimum, where static text (light or dark) stands out whatever moves under it and text that
    changes from frame to frame leaves its union.
    """
    out: list[NDArray[np.uint8]] = []
    for source in _sources(pixels):
        out.extend(grey_views(source, pixels, render))
    return out


def search_views(pixels: DecodedPixels, render: Rendering) -> list[StoredPlane]:
    """The planes text is searched in, one per frame or per projection (see :func:`views`).

    Grey frames deeper than 8 bits, or signed, are searched in their stored values: a window
    shows only part of the stored range, and text outside it, or inside it at a low contrast,
    would be missed. Colour, palette and 8-bit grey frames are searched in their 8-bit grey view
    (:func:`grey_views`), one grey level per unit.
    """
    out: list[StoredPlane] = []
    for source in _sources(pixels):
        deep = pixels.samples == 1 and not _is_8bit_grey(source[..., 0], pixels)
        if deep and (pixels.photometric != "PALETTE COLOR" or render.palette is None):
            out.append(_stored_plane(source[..., 0], render))
            continue
        out.extend(StoredPlane(view, 1.0) for view in grey_views(source, pixels, render))
    return out


def _sources(pixels: DecodedPixels) -> list[NDArray[np.generic]]:
    frames = pixels.frames
    if pixels.photometric == "PALETTE COLOR" or pixels.count == 1:
        return [frames[i] for i in range(pixels.count)]
    return [frames.max(axis=0), frames.min(axis=0)]


def _is_8bit_grey(plane: NDArray[np.generic], pixels: DecodedPixels) -> bool:
    return pixels.bits_stored <= 8 and not pixels.signed and plane.dtype == np.uint8


def _stored_plane(plane: NDArray[np.generic], render: Rendering) -> StoredPlane:
    values = cast(Numbers, plane)
    if values.dtype not in (np.uint16, np.int16, np.float32):
        if values.dtype.kind in "ui" and values.dtype.itemsize == 1:
            values = values.astype(np.int16)
        else:
            values = values.astype(np.float32)
    values = np.ascontiguousarray(values)
    slope = abs(render.slope) or 1.0
    if render.windows:
        width = render.windows[0][1] / slope
    else:
        low, high, _, _ = cv2.minMaxLoc(values)
        width = max(1.0, float(high) - float(low))
    return StoredPlane(values, max(width / 255.0, 1e-6))


def grey_views(
    frame: NDArray[np.generic], pixels: DecodedPixels, render: Rendering
) -> list[NDArray[np.uint8]]:
    """8-bit grey views of one ``(rows, columns, samples)`` frame (or projection)."""
    photometric = pixels.photometric
    if pixels.samples == 3:
        rgb = to_rgb8(frame, photometric, pixels.bits_stored)
        return [_max_channel(rgb)]
    plane = frame[..., 0]
    if photometric == "PALETTE COLOR" and render.palette is not None:
        index = np.clip(plane.astype(np.int64) - render.palette_first, 0, len(render.palette) - 1)
        return [_max_channel(render.palette[index])]
    invert = photometric == "MONOCHROME1"
    if _is_8bit_grey(plane, pixels):
        grey = (
            plane
            if pixels.bits_stored == 8
            else _scale(plane, 0.0, float(2**pixels.bits_stored - 1))
        )
        return [_u8(cv2.bitwise_not(_u8(grey))) if invert else _u8(grey)]
    if render.windows:  # what the modality shows: text burned for a reader is visible in it
        centre, width = render.windows[0]
        low = centre - 0.5 - (width - 1) / 2
        high = low + width
    else:
        stored_lo, stored_hi = float(plane.min()), float(plane.max())
        ends = (
            stored_lo * render.slope + render.intercept,
            stored_hi * render.slope + render.intercept,
        )
        low, high = min(ends), max(ends)
        high = high if high > low else low + 1
    grey = _window(plane, render.slope, render.intercept, low, high)
    return [_u8(cv2.bitwise_not(grey)) if invert else grey]


def to_rgb8(frame: NDArray[np.generic], photometric: str, bits_stored: int) -> NDArray[np.uint8]:
    """An 8-bit RGB copy of a 3-sample frame (RGB or YBR_FULL)."""
    data = frame
    if data.dtype != np.uint8:
        shift = max(0, bits_stored - 8)
        data = np.clip(data.astype(np.int32) >> shift, 0, 255).astype(np.uint8)
    if photometric.startswith("YBR"):
        # DICOM YBR_FULL is JFIF YCbCr; OpenCV's YCrCb has the chroma planes swapped
        data = cv2.cvtColor(np.ascontiguousarray(data[..., [0, 2, 1]]), cv2.COLOR_YCrCb2RGB)
    return np.ascontiguousarray(data)


def _max_channel(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Brightest channel: coloured text (pure blue, red) keeps its contrast against black."""
    r, g, b = cv2.split(np.ascontiguousarray(rgb))
    return _u8(cv2.max(cv2.max(r, g), b))


def _scale(values: NDArray[np.generic], low: float, high: float) -> NDArray[np.uint8]:
    span = max(high - low, 1e-6)
    scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(255.0 / span)
    return _u8(np.clip(scaled, 0, 255).astype(np.uint8))


def _window(
    plane: NDArray[np.generic], slope: float, intercept: float, low: float, high: float
) -> NDArray[np.uint8]:
    """Stored values through the modality rescale and a linear window, to 0..255."""
    k = 255.0 / max(high - low, 1e-6)
    if slope > 0 and plane.dtype in (np.uint8, np.uint16, np.int16):
        # one saturating OpenCV pass: clamp below the window first, so that no value is negative
        floor = (low - intercept) / slope
        info = np.iinfo(plane.dtype)  # type: ignore[type-var]
        floor = min(max(floor, float(info.min)), float(info.max))
        clamped = np.maximum(plane, plane.dtype.type(np.ceil(floor)))
        alpha, beta = slope * k, (intercept - low) * k
        return _u8(cv2.convertScaleAbs(clamped, alpha=alpha, beta=beta))
    values = plane.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return _scale(values, low, high)


def _u8(image: object) -> NDArray[np.uint8]:
    """``image`` typed as the 8-bit array it is (OpenCV's stubs lose the dtype)."""
    return np.asarray(image, dtype=np.uint8)
