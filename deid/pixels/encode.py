"""Write masked frames back into the dataset without a second loss.

A lossless input keeps its transfer syntax where pydicom 3 can encode it (native syntaxes, RLE
Lossless, JPEG-LS Lossless, JPEG 2000 Lossless). JPEG Lossless (Process 14), which pydicom cannot
encode, and every lossy or possibly lossy syntax go to JPEG-LS Lossless, or to Explicit VR Little
Endian when JPEG-LS cannot hold the image. Lossy history (0028,2110)/(0028,2112)/(0028,2114) is
kept and completed (PS3.3 C.7.6.1.1.5). SOP Instance UID never changes.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from deid.errors import PixelError
from deid.pixels.frames import DecodedPixels

logger = logging.getLogger(__name__)

NATIVE_SYNTAXES: frozenset[str] = frozenset(
    {
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
    }
)
#: Lossless syntaxes that pydicom 3.0 encodes: an input in one of them stays in it.
ENCODABLE_LOSSLESS: frozenset[str] = frozenset({RLELossless, JPEGLSLossless, JPEG2000Lossless})
#: Where the other syntaxes go.
_FAMILY_FALLBACK: dict[str, UID] = {
    JPEG2000: JPEG2000Lossless,
    JPEG2000MC: JPEG2000Lossless,
    JPEG2000MCLossless: JPEG2000Lossless,
    HTJ2K: JPEG2000Lossless,
    HTJ2KLossless: JPEG2000Lossless,
    HTJ2KLosslessRPCL: JPEG2000Lossless,
    JPEGLSNearLossless: JPEGLSLossless,
}
#: (0028,2114) Lossy Image Compression Method of each lossy syntax (PS3.3 C.7.6.1.1.5.1).
_LOSSY_METHOD: dict[str, str] = {
    JPEGBaseline8Bit: "ISO_10918_1",
    JPEGExtended12Bit: "ISO_10918_1",
    JPEGLSNearLossless: "ISO_14495_1",
    JPEG2000: "ISO_15444_1",
    JPEG2000MC: "ISO_15444_2",
    HTJ2K: "ISO_15444_15",
}


def target_syntax(pixels: DecodedPixels) -> UID:
    """The lossless syntax the masked frames are written in."""
    source = pixels.syntax
    if source in NATIVE_SYNTAXES or source in ENCODABLE_LOSSLESS:
        return UID(source)
    if source in _FAMILY_FALLBACK:
        return _FAMILY_FALLBACK[source]
    return JPEGLSLossless


def write_back(ds: Dataset, pixels: DecodedPixels) -> UID:
    """Store ``pixels.frames`` as the pixel data of ``ds``; return the syntax written.

    Raises
    ------
    PixelError
        When no lossless encoding of the frames is possible.
    """
    lossy_ratio = _compression_ratio(ds, pixels) if pixels.lossy else None
    target = target_syntax(pixels)
    _describe(ds, pixels)
    if target in NATIVE_SYNTAXES:
        _store_native(ds, pixels.frames, pixels)
    else:
        try:
            _store_compressed(ds, pixels.frames, pixels, target)
        except Exception as exc:  # an encoder refused the image: fall back to native
            if pixels.syntax in ENCODABLE_LOSSLESS:
                raise PixelError(
                    f"masked pixel data cannot be re-encoded as {target.name} "
                    f"({type(exc).__name__})."
                ) from None
            logger.info(
                "%s encoder refused the image (%s); writing %s",
                target.name,
                type(exc).__name__,
                ExplicitVRLittleEndian.name,
            )
            target = ExplicitVRLittleEndian
            ds.file_meta.TransferSyntaxUID = target
            _store_native(ds, pixels.frames, pixels)
    if pixels.lossy:
        _keep_lossy_history(ds, pixels.syntax, lossy_ratio)
    return target


def _describe(ds: Dataset, pixels: DecodedPixels) -> None:
    """Image pixel attributes that match the decoded frames."""
    ds.PhotometricInterpretation = pixels.photometric
    if pixels.samples == 3:
        ds.PlanarConfiguration = 0
    elif "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration


def _store_native(ds: Dataset, frames: NDArray[np.generic], pixels: DecodedPixels) -> None:
    bits = pixels.bits_allocated
    if bits == 1:
        from pydicom.pixels import pack_bits

        data = pack_bits(frames.reshape(-1).astype(np.uint8), pad=False)
    else:
        dtype = np.dtype(f"{'i' if pixels.signed else 'u'}{bits // 8}")
        if ds.file_meta.TransferSyntaxUID == ExplicitVRBigEndian:
            dtype = dtype.newbyteorder(">")
        else:
            dtype = dtype.newbyteorder("<")
        data = np.ascontiguousarray(frames.astype(dtype, copy=False)).tobytes()
    if len(data) % 2:
        data += b"\x00"
    ds.PixelData = data
    ds["PixelData"].VR = "OB" if bits <= 8 else "OW"
    ds["PixelData"].is_undefined_length = False


def _store_compressed(
    ds: Dataset, frames: NDArray[np.generic], pixels: DecodedPixels, target: UID
) -> None:
    array = frames
    if pixels.samples == 1:
        array = array[..., 0]
    if pixels.count == 1:
        array = array[0]
    ds.compress(target, np.ascontiguousarray(array), generate_instance_uid=False)


def _compression_ratio(ds: Dataset, pixels: DecodedPixels) -> float | None:
    """Uncompressed size over stored size of the lossy pixel data, for (0028,2112)."""
    try:
        stored = len(ds.PixelData)
    except Exception:
        return None
    if stored <= 0:
        return None
    bits = max(8, pixels.bits_allocated)
    raw = pixels.count * pixels.rows * pixels.columns * pixels.samples * (bits // 8)
    return raw / stored


def _keep_lossy_history(ds: Dataset, source: UID, ratio: float | None) -> None:
    """Lossy Image Compression stays 01; the compression that was applied stays recorded.

    The ratio and method lists describe, in order, every lossy compression the pixels went
    through. Writing losslessly adds no entry; if the lossy step the input was stored with is not
    recorded yet, it is appended so the history is complete.
    """
    ds.LossyImageCompression = "01"
    method = _LOSSY_METHOD.get(source)
    if method is None:
        return
    methods = [str(m) for m in _as_list(ds.get("LossyImageCompressionMethod"))]
    ratios = [str(r) for r in _as_list(ds.get("LossyImageCompressionRatio"))]
    if method in methods:
        return
    ds.LossyImageCompressionMethod = methods + [method]
    if ratio is not None and len(ratios) == len(methods):
        ds.LossyImageCompressionRatio = ratios + [f"{ratio:.2f}"[:16]]
    elif "LossyImageCompressionRatio" in ds:
        # a ratio list that no longer pairs with the methods would misstate the history
        del ds.LossyImageCompressionRatio


def _as_list(value: object) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]
