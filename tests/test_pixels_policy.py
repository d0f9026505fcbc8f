"""When the pixel step scans, what it reports when it does not, and how it fails."""

from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    MPEG2MPML,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
    SecondaryCaptureImageStorage,
)

from deid.config import PixelMode
from deid.errors import DependencyError, PixelError, ProfileError
from deid.pixels import _scenes, detect
from deid.pixels.frames import _native_grey, decode
from deid.pixels.policy import decide_scan, fixed_boxes, load_policy, parse_policy
from tests.test_pixels_support import clean, context, frames_of, masked_cover, roundtrip

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.parametrize(
    ("value", "modality", "sop", "scan"),
    [
        ("YES", "CT", CT, True),
        (None, "CT", CT, True),
        ("MAYBE", "CT", CT, True),
        ("NO", "CT", CT, False),
        ("NO", "MR", "1.2.840.10008.5.1.4.1.1.4", False),
        ("NO", "US", "1.2.840.10008.5.1.4.1.1.6.1", True),
        ("NO", "OT", SecondaryCaptureImageStorage, True),
        ("NO", "", SecondaryCaptureImageStorage, True),
        ("NO", "XA", "1.2.840.10008.5.1.4.1.1.12.1", True),
        ("NO", "DX", "1.2.840.10008.5.1.4.1.1.1.1", True),
        ("NO", "MG", "1.2.840.10008.5.1.4.1.1.1.2", True),
        ("no", "ES", "1.2.840.10008.5.1.4.1.1.77.1.1", True),
    ],
)
def test_auto_fails_closed(value: str | None, modality: str, sop: str, scan: bool) -> None:
    decision = decide_scan(
        PixelMode.AUTO, burned_in_annotation=value, modality=modality, sop_class_uid=sop
    )
    assert decision.scan is scan
    assert decision.reason


def test_never_and_always() -> None:
    assert not decide_scan(
        PixelMode.NEVER, burned_in_annotation="YES", modality="US", sop_class_uid=""
    ).scan
    assert decide_scan(
        PixelMode.ALWAYS, burned_in_annotation="NO", modality="CT", sop_class_uid=CT
    ).scan


def test_shipped_policy() -> None:
    policy = load_policy()
    assert {"US", "XA", "RF", "ES", "XC", "OT", "DX", "CR", "MG"} <= policy.modalities
    assert SecondaryCaptureImageStorage in policy.sop_classes
    assert "MI" in policy.keep_words and "CM" in policy.keep_units
    assert fixed_boxes(
        manufacturer="ACUSON", model="Sequoia 512", modality="US", rows=480, columns=640
    ) == [(0, 0, 640, 30)]
    assert (
        fixed_boxes(
            manufacturer="ACUSON", model="Sequoia 512", modality="US", rows=600, columns=800
        )
        == []
    )
    # clipped to the image
    assert fixed_boxes(manufacturer="GE", model="LOGIQ9", modality="US", rows=20, columns=100) == [
        (0, 0, 100, 20)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "fixed_regions: [{model: X, boxes: [[0, 0, -1, 5]]}]",
        "fixed_regions: [{model: X, boxes: [[0, 0, 5]]}]",
        "fixed_regions: [{model: X, colour: red, boxes: [[0, 0, 5, 5]]}]",
        "fixed_regions: [{rows: 10, boxes: [[0, 0, 5, 5]]}]",
        "scan_even_when_no: [",
    ],
)
def test_malformed_policy_is_a_profile_error(text: str) -> None:
    with pytest.raises(ProfileError):
        parse_policy(text)


def _small(syntax: str = ExplicitVRLittleEndian, **kwargs: object) -> Dataset:
    pixels = np.zeros((64, 96), np.uint8)
    texts = [
        _scenes.burn(pixels, "AB 12", (4, 30), font=cv2.FONT_HERSHEY_SIMPLEX, scale=0.6, value=255)
    ]
    return roundtrip(
        _scenes.scene_dataset(
            _scenes.Scene(pixels, "MONOCHROME2", 8, "US", texts), syntax, **kwargs
        )
    )  # type: ignore[arg-type]


def test_no_pixel_data() -> None:
    ds = _small()
    del ds.PixelData
    outcome = clean(ds)
    assert not outcome.scanned and outcome.reason == "no pixel data"


def test_never_leaves_everything_untouched() -> None:
    ds = _small()
    data = ds.PixelData
    outcome = clean(ds, mode=PixelMode.NEVER)
    assert not outcome.scanned and "never" in outcome.reason
    assert ds.PixelData == data and ds.BurnedInAnnotation == "YES"
    assert "DeidentificationMethodCodeSequence" not in ds


def test_auto_trusts_no_for_ct() -> None:
    ds = _small(burned_in_annotation="NO", sop_class_uid=CT)
    ds.Modality = "CT"
    outcome = clean(ds)
    assert not outcome.scanned and "NO" in outcome.reason
    assert outcome.transfer_syntax_out == outcome.transfer_syntax_in


@pytest.mark.ocr
def test_code_sequence_appended_once() -> None:
    ds = _small()
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = (
        "113100",
        "DCM",
        "Basic Application Confidentiality Profile",
    )
    ds.DeidentificationMethodCodeSequence = [item]
    clean(ds)
    clean(ds, mode=PixelMode.ALWAYS)
    values = [i.CodeValue for i in ds.DeidentificationMethodCodeSequence]
    assert values == ["113100", "113101"]


@pytest.mark.ocr
def test_icon_image_sequence_is_removed() -> None:
    ds = _small()
    icon = Dataset()
    icon.Rows = icon.Columns = 8
    icon.PixelData = bytes(64)
    ds.IconImageSequence = [icon]
    nested = Dataset()
    nested.IconImageSequence = [icon]
    ds.ReferencedImageSequence = [nested]
    clean(ds)
    assert "IconImageSequence" not in ds
    assert "IconImageSequence" not in ds.ReferencedImageSequence[0]


@pytest.mark.ocr
def test_fixed_region_is_masked() -> None:
    pixels = np.full((480, 640), 30, np.uint8)
    ds = roundtrip(_scenes.scene_dataset(_scenes.Scene(pixels, "MONOCHROME2", 8, "US")))
    outcome = clean(ds, manufacturer="Acuson", model="SEQUOIA")
    assert (0, 0, 640, 30) in [(b.x, b.y, b.width, b.height) for b in outcome.boxes]
    assert masked_cover(outcome, 480, 640)[:30].all()


def test_undecodable_pixel_data_is_a_pixel_error() -> None:
    ds = _small()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.PatientName = "SECRET^NAME"
    ds.PixelData = encapsulate([b"\xff\xd8 not a jpeg at all \xff\xd9"])
    ds["PixelData"].is_undefined_length = True
    with pytest.raises(PixelError) as info:
        clean(ds, mode=PixelMode.ALWAYS)
    assert "SECRET" not in str(info.value) and "\n" not in str(info.value)


def test_video_syntax_is_a_pixel_error() -> None:
    ds = _small()
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(64)])
    with pytest.raises(PixelError, match="cannot be decoded"):
        clean(ds)


def test_missing_tesseract_is_a_pixel_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import pytesseract

    from deid import pixels

    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    detect.check_tesseract.cache_clear()
    pixels._tesseract_reader.cache_clear()
    try:
        with pytest.raises(DependencyError, match="install tesseract-ocr"):
            detect.check_tesseract()
        with pytest.raises(PixelError, match="install tesseract-ocr"):
            clean(_small())
        # not needed when nothing is scanned
        assert not clean(_small(), mode=PixelMode.NEVER).scanned
    finally:
        detect.check_tesseract.cache_clear()
        pixels._tesseract_reader.cache_clear()


@pytest.mark.parametrize(
    ("bits", "stored", "signed"),
    [(16, 12, False), (16, 12, True), (16, 16, True), (8, 8, False), (8, 6, False)],
)
def test_fast_native_decode_matches_pydicom(bits: int, stored: int, signed: bool) -> None:
    rng = np.random.default_rng(bits + stored)
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}")
    raw = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, (2, 20, 24), dtype=dtype)
    scene = _scenes.Scene(raw, "MONOCHROME2", stored, "CT", frames=2)
    ds = roundtrip(_scenes.scene_dataset(scene))  # high bits hold garbage, as old files may
    fast = _native_grey(ds, ds.file_meta.TransferSyntaxUID)
    assert fast is not None
    reference = ds.pixel_array.reshape(2, 20, 24, 1)
    assert np.array_equal(fast[0], reference)
    assert fast[0].dtype == reference.dtype


@pytest.mark.ocr
def test_bits_stored_below_allocated_round_trip() -> None:
    scene = _scenes.radiograph(np.random.default_rng(3), rows=160, cols=160, texts=2)
    ds = roundtrip(_scenes.scene_dataset(scene, RLELossless))
    before = frames_of(ds).copy()
    outcome = clean(ds)
    written = roundtrip(ds)
    assert written.BitsStored == 12 and written.file_meta.TransferSyntaxUID == RLELossless
    after = decode(written).frames
    cover = masked_cover(outcome, 160, 160)
    assert np.array_equal(before[:, ~cover], after[:, ~cover])
    assert after.max() <= 4095


def test_context_helper_reads_header() -> None:
    ds = _small(burned_in_annotation=None)
    assert context(ds).burned_in_annotation is None
    assert pydicom.uid.UID(ds.SOPClassUID).name


def test_icon_removed_even_when_not_scanned_but_not_with_never() -> None:
    icon = Dataset()
    icon.Rows = icon.Columns = 8
    icon.PixelData = bytes(64)
    ds = _small(burned_in_annotation="NO", sop_class_uid=CT)
    ds.Modality = "CT"
    ds.IconImageSequence = [icon]
    assert not clean(ds).scanned
    assert "IconImageSequence" not in ds
    ds.IconImageSequence = [icon]
    clean(ds, mode=PixelMode.NEVER)
    assert "IconImageSequence" in ds  # --pixels never: the pixel step touches nothing
