"""Helpers of the pixel tests, and tests that the helpers build what they claim."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import JPEGLosslessSV1

from deid.config import PixelMode, RedactMode
from deid.identifiers import Identifiers
from deid.io import encode_dataset
from deid.pixels import PixelContext, _scenes, clean_pixels
from deid.pixels.frames import decode
from deid.results import PixelOutcome


def roundtrip(ds: Dataset) -> Dataset:
    """Encode ``ds`` as a Part 10 file and read it back, as a pipeline would see it."""
    return pydicom.dcmread(io.BytesIO(encode_dataset(ds)))


def context(
    ds: Dataset, identifiers: Identifiers | None = None, *, manufacturer: str = "", model: str = ""
) -> PixelContext:
    value = ds.get("BurnedInAnnotation")
    return PixelContext(
        burned_in_annotation=None if value is None else str(value),
        modality=str(ds.get("Modality", "")),
        sop_class_uid=str(ds.SOPClassUID),
        manufacturer=manufacturer,
        model=model,
        identifiers=identifiers or Identifiers(),
    )


def clean(
    ds: Dataset,
    *,
    mode: PixelMode = PixelMode.AUTO,
    redact: RedactMode = RedactMode.ALL_TEXT,
    identifiers: Identifiers | None = None,
    **kwargs: str,
) -> PixelOutcome:
    return clean_pixels(ds, context(ds, identifiers, **kwargs), mode=mode, redact=redact)


def masked_cover(outcome: PixelOutcome, rows: int, columns: int) -> np.ndarray:
    """Pixels inside the boxes the outcome reports as masked."""
    cover = np.zeros((rows, columns), bool)
    for b in outcome.boxes:
        if not b.kept:
            cover[max(0, b.y) : max(0, b.y + b.height), max(0, b.x) : max(0, b.x + b.width)] = True
    return cover


def assert_clean(
    scene: _scenes.Scene, before: np.ndarray, after: np.ndarray, outcome: PixelOutcome
) -> None:
    """Every planted ink pixel is in a masked box, masked boxes are filled, nothing else moved."""
    rows, columns = before.shape[1:3]
    cover = masked_cover(outcome, rows, columns)
    for text in scene.texts:
        missed = int(np.count_nonzero(text.ink & ~cover))
        assert missed == 0, f"{missed} ink pixels of {text.text!r} at {text.box} not masked"
    outside = ~cover
    assert np.array_equal(before[:, outside], after[:, outside]), "pixels outside boxes changed"
    for b in outcome.boxes:
        if b.kept:
            continue
        y0, x0 = max(0, b.y), max(0, b.x)
        region = after[:, y0 : b.y + b.height, x0 : b.x + b.width]
        if region.size:
            # filled with one value per frame and sample, unless a later box overlapped it
            flat = region.reshape(region.shape[0], -1, region.shape[-1])
            assert (flat == flat[:, :1]).all() or _overlaps_other(outcome, b)


def _overlaps_other(outcome: PixelOutcome, box: object) -> bool:
    for other in outcome.boxes:
        if other is box or other.kept:
            continue
        b = box
        if (
            other.x < b.x + b.width
            and b.x < other.x + other.width  # type: ignore[attr-defined]
            and other.y < b.y + b.height
            and b.y < other.y + other.height
        ):  # type: ignore[attr-defined]
            return True
    return False


def frames_of(ds: Dataset) -> np.ndarray:
    return decode(ds).frames


def test_scene_dataset_native_round_trip() -> None:
    scene = _scenes.ultrasound(np.random.default_rng(0), rows=240, cols=320, texts=3)
    ds = roundtrip(_scenes.scene_dataset(scene))
    assert np.array_equal(ds.pixel_array, scene.pixels)
    assert len(scene.texts) == 3


def test_jpeg_lossless_sv1_encoder_is_lossless() -> None:
    rng = np.random.default_rng(1)
    for bits, signed in ((8, False), (12, False), (16, True)):
        dtype = np.int16 if signed else (np.uint8 if bits == 8 else np.uint16)
        low, high = (-2000, 2000) if signed else (0, 2**bits - 1)
        pixels = rng.integers(low, high, (40, 56)).astype(dtype)
        _scenes.burn(
            pixels, "Ag", (5, 30), font=cv2.FONT_HERSHEY_SIMPLEX, scale=1.0, value=high, thickness=2
        )
        scene = _scenes.Scene(pixels, "MONOCHROME2", bits, "OT")
        ds = roundtrip(_scenes.scene_dataset(scene, JPEGLosslessSV1))
        assert ds.file_meta.TransferSyntaxUID == JPEGLosslessSV1
        assert np.array_equal(ds.pixel_array, pixels), (bits, signed)


def test_burn_reports_exact_ink() -> None:
    image = np.zeros((40, 120), np.uint8)
    planted = _scenes.burn(
        image, "ID 42", (4, 30), font=cv2.FONT_HERSHEY_SIMPLEX, scale=0.8, value=200
    )
    assert image[planted.ink].min() >= 50
    assert not image[~planted.ink].any() or image[~planted.ink].max() < 64
    x, y, w, h = planted.box
    assert planted.ink[y : y + h, x : x + w].any() and not planted.ink[:y].any()


@pytest.mark.parametrize(
    "factory",
    [
        _scenes.ultrasound,
        _scenes.secondary_capture,
        _scenes.radiograph,
        _scenes.ct_slice,
        _scenes.ct_with_text,
    ],
)
def test_scenes_are_deterministic(factory: object) -> None:
    a = factory(np.random.default_rng(5))  # type: ignore[operator]
    b = factory(np.random.default_rng(5))  # type: ignore[operator]
    assert np.array_equal(a.pixels, b.pixels)
    assert [t.box for t in a.texts] == [t.box for t in b.texts]
