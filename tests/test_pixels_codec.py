"""clean_pixels in every transfer syntax: text masked, nothing else changed, no second loss."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from deid.pixels import _scenes
from deid.pixels.encode import target_syntax
from tests.test_pixels_support import assert_clean, clean, frames_of, roundtrip

pytestmark = pytest.mark.ocr

NATIVE = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
]
LOSSLESS = [RLELossless, JPEGLSLossless, JPEG2000Lossless]


def _signed_ct() -> _scenes.Scene:
    scene = _scenes.ct_slice(np.random.default_rng(3), rows=192, cols=192)
    texts = [
        _scenes.burn(
            scene.pixels,
            "ID 4471902",
            (6, 18),
            font=cv2.FONT_HERSHEY_SIMPLEX,
            scale=0.45,
            value=3071 + 1024,
        ),
        _scenes.burn(
            scene.pixels,
            "W 400 L 40",
            (100, 186),
            font=cv2.FONT_HERSHEY_PLAIN,
            scale=1.0,
            value=-1024 + 1024 + 3000,
        ),
    ]
    scene.texts.extend(texts)
    return scene


@functools.cache
def scene_for(kind: str) -> _scenes.Scene:
    rng = np.random.default_rng(11)
    if kind in ("grey8", "ybr422"):
        if kind == "grey8":
            return _scenes.ultrasound(rng, rows=240, cols=320, texts=4)
        return _scenes.ultrasound(rng, rows=240, cols=320, colour=True, texts=4)
    if kind == "rgb":
        return _scenes.ultrasound(
            np.random.default_rng(12), rows=240, cols=320, colour=True, texts=4
        )
    if kind == "sc":
        return _scenes.secondary_capture(rng, rows=240, cols=320, texts=4)
    if kind == "dx12":
        return _scenes.radiograph(rng, rows=224, cols=224, texts=3)
    if kind == "mono1":
        return _scenes.radiograph(
            np.random.default_rng(13), rows=224, cols=224, texts=3, monochrome1=True
        )
    if kind == "signed":
        return _signed_ct()
    raise KeyError(kind)


CASES = (
    [(kind, ts) for kind in ("grey8", "rgb", "dx12", "signed", "mono1") for ts in NATIVE + LOSSLESS]
    + [("ybr422", ts) for ts in NATIVE]
    + [("sc", ExplicitVRLittleEndian), ("sc", RLELossless)]
    + [(kind, JPEGBaseline8Bit) for kind in ("grey8", "rgb", "sc")]
    + [(kind, JPEGLSNearLossless) for kind in ("grey8", "rgb", "dx12")]
    + [(kind, JPEG2000) for kind in ("grey8", "rgb", "dx12")]
    + [(kind, JPEGLosslessSV1) for kind in ("grey8", "dx12", "signed", "mono1")]
)
EXPECTED_OUT = {
    JPEGBaseline8Bit: JPEGLSLossless,
    JPEGLSNearLossless: JPEGLSLossless,
    JPEG2000: JPEG2000Lossless,
    JPEGLosslessSV1: JPEGLSLossless,
}


@pytest.mark.parametrize(("kind", "syntax"), CASES, ids=[f"{k}-{UID(t).keyword}" for k, t in CASES])
def test_clean_in_syntax(kind: str, syntax: str) -> None:
    scene = scene_for(kind)
    source = _scenes.scene_dataset(scene, syntax, ybr_422=(kind == "ybr422"))
    ds = roundtrip(source)
    uid = ds.SOPInstanceUID
    before = frames_of(ds).copy()
    outcome = clean(ds)

    expected = EXPECTED_OUT.get(syntax, syntax)
    assert outcome.scanned
    assert outcome.transfer_syntax_in == syntax
    assert outcome.transfer_syntax_out == expected
    assert outcome.masked >= 1
    written = roundtrip(ds)
    assert written.file_meta.TransferSyntaxUID == expected
    assert written.SOPInstanceUID == uid
    assert written.file_meta.MediaStorageSOPInstanceUID == uid
    assert written.pixel_array.shape[:2] == (
        scene.pixels.shape[-3:-1] if scene.pixels.ndim == 3 else scene.pixels.shape
    )
    after = frames_of(written)
    assert_clean(scene, before, after, outcome)
    assert written.BurnedInAnnotation == "NO"
    code = codes.cid7050.CleanPixelDataOption
    assert any(
        item.CodeValue == code.value
        and item.CodingSchemeDesignator == code.scheme_designator
        and item.CodeMeaning == code.meaning
        for item in written.DeidentificationMethodCodeSequence
    )
    if syntax in (JPEGBaseline8Bit, JPEGLSNearLossless, JPEG2000):
        if syntax == JPEGBaseline8Bit:
            assert written.LossyImageCompression == "01"
            assert written.LossyImageCompressionMethod == "ISO_10918_1"
            assert float(written.LossyImageCompressionRatio) > 1.0
        if scene.photometric == "RGB":
            assert written.PhotometricInterpretation == "RGB"  # decoded YBR_FULL_422 -> RGB
    if kind == "ybr422":
        assert written.PhotometricInterpretation == "YBR_FULL"
    if kind == "mono1":
        assert written.PhotometricInterpretation == "MONOCHROME1"


@pytest.mark.parametrize(
    "syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless, ExplicitVRLittleEndian]
)
def test_multiframe_all_frames_masked(syntax: str) -> None:
    scene = _scenes.cine(
        lambda rng: _scenes.ultrasound(rng, rows=160, cols=224, texts=3),
        np.random.default_rng(4),
        frames=6,
    )
    ds = roundtrip(_scenes.scene_dataset(scene, syntax))
    before = frames_of(ds).copy()
    outcome = clean(ds)
    written = roundtrip(ds)
    assert written.file_meta.TransferSyntaxUID == syntax
    assert int(written.NumberOfFrames) == 6
    assert outcome.frames == 6
    assert all(b.frame == -1 for b in outcome.boxes)  # a box detected once is masked everywhere
    after = frames_of(written)
    assert_clean(scene, before, after, outcome)


def test_lossy_history_is_completed_not_rewritten() -> None:
    scene = scene_for("grey8")
    ds = roundtrip(_scenes.scene_dataset(scene, JPEGBaseline8Bit))
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.LossyImageCompressionRatio = "9.5"
    clean(ds)
    written = roundtrip(ds)
    assert written.LossyImageCompression == "01"
    assert written.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(written.LossyImageCompressionRatio) == pytest.approx(9.5)
    assert written.file_meta.TransferSyntaxUID == JPEGLSLossless


def test_lossy_input_without_text_is_left_as_it_is() -> None:
    pixels = np.full((96, 128), 40, np.uint8)
    scene = _scenes.Scene(pixels, "MONOCHROME2", 8, "US")
    # Burned In Annotation absent: a scan that finds nothing leaves the image as it is (with
    # YES it would be refused, see test_pixels_policy)
    ds = roundtrip(_scenes.scene_dataset(scene, JPEGBaseline8Bit, burned_in_annotation=None))
    data = ds.PixelData
    outcome = clean(ds)
    assert outcome.scanned and outcome.masked == 0
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert ds.PixelData == data


@pytest.mark.parametrize("syntax", [JPEGBaseline8Bit, JPEGLosslessSV1, RLELossless])
def test_target_syntax_is_lossless(syntax: str) -> None:
    scene = scene_for("grey8")
    ds = roundtrip(_scenes.scene_dataset(scene, syntax))
    from deid.pixels.frames import decode

    out = target_syntax(decode(ds))
    assert not UID(out).is_compressed or out in (RLELossless, JPEGLSLossless, JPEG2000Lossless)
