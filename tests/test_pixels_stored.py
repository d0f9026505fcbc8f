"""Text burned at any value of a deep grey frame is found: CT, CR (MONOCHROME1) and DX.

A window shows only part of the stored range, so text brighter than it, below it in air, or
inside it at a low contrast is searched in the stored values (``deid.pixels.frames.StoredPlane``).
Most tests here read no text: they scan with a reader that reads nothing, so only candidates
that clearly look like text are masked (what ``--redact all-text`` masks without Tesseract),
and they need no Tesseract. The tests that run Tesseract are marked ``ocr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from deid.config import PixelMode, RedactMode
from deid.errors import PixelError
from deid.pixels import _clean, _scenes
from deid.pixels.detect import Word, find_candidates
from deid.pixels.frames import StoredPlane, decode, rendering, search_views
from deid.results import PixelOutcome
from tests.test_pixels_support import assert_clean, context, frames_of, roundtrip

CT = "1.2.840.10008.5.1.4.1.1.2"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
CR = "1.2.840.10008.5.1.4.1.1.1"


class ReadsNothing:
    """An OCR engine that reads no word: only strong candidates are masked."""

    def read(self, crops: Sequence[NDArray[np.uint8]]) -> list[list[Word]]:
        return [[] for _ in crops]


def scan(ds: Dataset, *, mode: PixelMode = PixelMode.AUTO) -> PixelOutcome:
    return _clean(ds, context(ds), mode=mode, redact=RedactMode.ALL_TEXT, reader=ReadsNothing())


def plant(
    image: NDArray[np.generic],
    text: str,
    org: tuple[int, int],
    value: float,
    *,
    font: int = cv2.FONT_HERSHEY_SIMPLEX,
    scale: float = 0.5,
    thickness: int = 1,
    exact: bool = True,
) -> _scenes.PlantedText:
    """Burn ``text`` at ``value``: every touched pixel set to it (``exact``, as scanners and
    ``cv2.putText`` on 16-bit frames draw), or blended with its coverage (anti-aliased)."""
    if not exact:
        return _scenes.burn(
            image, text, org, font=font, scale=scale, value=value, thickness=thickness
        )
    alpha = _scenes.render_alpha(image.shape[:2], text, org, font, scale, thickness, True)
    image[alpha > 0] = value
    ink = alpha > 0
    ys, xs = np.nonzero(ink)
    box = (int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1))
    return _scenes.PlantedText(text, box, ink)


def ct_hu(rows: int = 256, cols: int = 256, noise: float = 8.0, seed: int = 0) -> NDArray:
    """Hounsfield units of a body in air: flat air (-1000), fat, soft tissue (45) with noise,
    a bone disc and a thin rib ring around the body."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    r = np.hypot((xx - cols / 2) / (cols * 0.36), (yy - rows / 2) / (rows * 0.3))
    hu = np.full((rows, cols), -1000.0, np.float32)
    hu[r < 1.0] = -100
    hu[r < 0.9] = 45
    hu[((xx - cols * 0.5) ** 2 + (yy - rows * 0.62) ** 2) < (rows * 0.04) ** 2] = 1000
    hu[(r > 0.8) & (r < 0.83)] = 700
    hu += rng.normal(0, noise, (rows, cols)).astype(np.float32) * (hu > -900)
    return hu


#: (stored dtype, bits stored, rescale intercept) of the CT variants.
CT_VARIANTS = {
    "int16-intercept": (np.int16, 16, -1024.0),
    "int16-hu": (np.int16, 16, 0.0),
    "uint16": (np.uint16, 16, -1024.0),
    "uint12": (np.uint16, 12, -1024.0),
}
#: (HU of the text, where): brighter than the 40/400 window, inside it over tissue, below it
#: in air, and 40 units over flat air.
CT_CASES = {
    "above-window": (2000.0, (70, 120)),
    "inside-window-over-tissue": (200.0, (70, 120)),
    "below-window-in-air": (-500.0, (8, 20)),
    "low-contrast-over-flat-air": (-960.0, (8, 20)),
}


def ct_dataset(
    variant: str, texts: list[tuple[str, float, tuple[int, int]]], *, exact: bool = True
) -> tuple[Dataset, _scenes.Scene]:
    dtype, bits, intercept = CT_VARIANTS[variant]
    stored = ct_hu() - intercept
    planted = [
        plant(stored, text, org, hu - intercept, exact=exact, scale=0.45) for text, hu, org in texts
    ]
    pixels = np.clip(np.rint(stored), 0 if dtype == np.uint16 else -32768, 2**bits - 1)
    scene = _scenes.Scene(
        pixels.astype(dtype), "MONOCHROME2", bits, "CT", planted, (40.0, 400.0), (1.0, intercept)
    )
    ds = roundtrip(_scenes.scene_dataset(scene, burned_in_annotation=None, sop_class_uid=CT))
    ds.RescaleIntercept = intercept  # also when it is 0
    ds.RescaleSlope = 1
    return ds, scene


def check(ds: Dataset, scene: _scenes.Scene) -> PixelOutcome:
    before = frames_of(ds).copy()
    outcome = scan(ds)
    after = frames_of(roundtrip(ds))
    assert_clean(scene, before, after, outcome)
    assert ds.BurnedInAnnotation == "NO"
    return outcome


@pytest.mark.parametrize("case", list(CT_CASES))
@pytest.mark.parametrize("variant", list(CT_VARIANTS))
def test_ct_text_at_any_value_is_masked(variant: str, case: str) -> None:
    hu, org = CT_CASES[case]
    ds, scene = ct_dataset(variant, [("DOE JOHN 12345", hu, org)])
    check(ds, scene)


@pytest.mark.parametrize("variant", ["int16-intercept", "uint12"])
def test_ct_anti_aliased_text_is_masked(variant: str) -> None:
    texts = [("DOE JOHN", 2000.0, (8, 20)), ("ID 4471923", 200.0, (70, 120))]
    ds, scene = ct_dataset(variant, texts, exact=False)
    check(ds, scene)


def test_the_leads_ct_cases() -> None:
    """The report that started this: text at 200 HU over the body, -500 HU in air, the
    maximum and 80 HU, in the synthetic CT of deid.testing (window 40/400, 12 bits)."""
    from deid.testing import synthetic

    for hu, org in ((3071, (10, 20)), (200, (90, 130)), (-500, (10, 20)), (80, (90, 130))):
        ds = synthetic.build_ct_image(synthetic.PATIENTS[0], rows=256, columns=256, extras=False)
        del ds.BurnedInAnnotation
        pixels = ds.pixel_array.astype(np.uint16)
        planted = plant(pixels, "DOE JOHN 12345", org, hu + 1024)
        ds.PixelData = pixels.tobytes()
        scene = _scenes.Scene(pixels, "MONOCHROME2", 12, "CT", [planted])
        check(roundtrip(ds), scene)


def test_text_crossing_its_background_level_is_masked() -> None:
    """Text of one value over a gradient that runs from below to above it: darker than its
    background at the top, lighter at the bottom (found by its exact value)."""
    rows, cols = 96, 256
    ramp = np.linspace(1100, 1300, rows, dtype=np.float32)[:, None] * np.ones((1, cols))
    pixels = np.rint(ramp).astype(np.uint16)
    planted = plant(pixels, "SMITH ANNA 1961", (10, 60), 1200, scale=0.8, thickness=2)
    scene = _scenes.Scene(pixels, "MONOCHROME2", 12, "CT", [planted], (40.0, 400.0), (1, -1024))
    ds = roundtrip(_scenes.scene_dataset(scene, burned_in_annotation=None, sop_class_uid=CT))
    check(ds, scene)


def radiograph(monochrome1: bool, seed: int = 4) -> NDArray[np.float32]:
    """A 12-bit radiograph without text (``_scenes.radiograph``), with a flat collimated band
    at the bottom: unexposed (bright) in the displayed image."""
    scene = _scenes.radiograph(np.random.default_rng(seed), rows=320, cols=320, texts=0)
    values = scene.pixels.astype(np.float32)  # MONOCHROME2, a marker at the left
    values[285:, :] = 3900.0
    return 4095.0 - values if monochrome1 else values


#: text value from the local background of a radiograph: the maximum, zero, 300 units from the
#: background, and 40 units darker than the flat band.
RADIOGRAPH_CASES = {
    "maximum-over-body": (lambda bg: 4095.0, (110, 120)),
    "zero-over-body": (lambda bg: 0.0, (110, 160)),
    "300-from-background": (lambda bg: bg + (300 if bg < 2000 else -300), (110, 200)),
    "low-contrast-over-flat-band": (lambda bg: bg - 40, (60, 308)),
}


@pytest.mark.parametrize("case", list(RADIOGRAPH_CASES))
@pytest.mark.parametrize("kind", ["DX", "CR-MONOCHROME1"])
def test_radiograph_text_at_any_value_is_masked(kind: str, case: str) -> None:
    monochrome1 = kind.startswith("CR")
    values = radiograph(monochrome1)
    value_for, org = RADIOGRAPH_CASES[case]
    x, y = org
    background = float(np.median(values[y - 12 : y, x : x + 100]))
    value = value_for(background if not monochrome1 else 4095 - background)
    if monochrome1:
        value = 4095.0 - value  # the same look on screen
    planted = plant(values, "ROSSI MARIA 0712", org, value, scale=0.5)
    pixels = np.clip(np.rint(values), 0, 4095).astype(np.uint16)
    photometric = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    scene = _scenes.Scene(pixels, photometric, 12, "DX", [planted], (2048.0, 4096.0))
    sop = CR if monochrome1 else DX
    ds = roundtrip(_scenes.scene_dataset(scene, burned_in_annotation=None, sop_class_uid=sop))
    check(ds, scene)


@pytest.mark.parametrize(("name", "seed"), [("ct", 30), ("ct", 31), ("cr", 30), ("cr", 32)])
def test_generated_any_value_scenes_are_masked(name: str, seed: int) -> None:
    """The benchmark's "CT any value" and "CR any value" scenes (random fonts, sizes, values
    above, inside and below the window, low contrasts, anti-aliasing), smaller."""
    rng = np.random.default_rng(seed)
    if name == "ct":
        scene = _scenes.ct_with_text(rng, rows=320, cols=320, texts=5)
    else:
        scene = _scenes.radiograph(
            rng, rows=320, cols=320, texts=4, monochrome1=True, any_value=True
        )
    sop = CT if name == "ct" else CR
    ds = roundtrip(_scenes.scene_dataset(scene, burned_in_annotation=None, sop_class_uid=sop))
    assert len(scene.texts) >= 4
    check(ds, scene)


def test_multiframe_text_is_masked_in_every_frame() -> None:
    """Six 12-bit frames, the noise different in each, the text the same: searched in the
    maximum and minimum of the frames, masked in all of them."""
    frames = [ct_hu(seed=f) + 1024 for f in range(6)]
    texts = [("DOE JOHN 12345", 200.0, (70, 120)), ("ACC 55120", -960.0, (8, 20))]
    planted = []
    for text, hu, org in texts:
        planted.append([plant(frame, text, org, hu + 1024, scale=0.45) for frame in frames][0])
    pixels = np.stack([np.rint(frame).astype(np.uint16) for frame in frames])
    scene = _scenes.Scene(
        pixels, "MONOCHROME2", 12, "CT", planted, (40.0, 400.0), (1, -1024), frames=6
    )
    ds = roundtrip(_scenes.scene_dataset(scene, burned_in_annotation=None, sop_class_uid=CT))
    before = frames_of(ds).copy()
    outcome = scan(ds)
    after = frames_of(roundtrip(ds))
    assert_clean(scene, before, after, outcome)  # every frame: the ink of frame 0 is the same
    for planted_text in planted:
        assert all(np.ptp(after[f][planted_text.ink]) == 0 for f in range(6))


def test_text_inside_a_ring_is_found() -> None:
    """Text inside a closed thin ring (a CT's ribs, a round field of view) is a shape of its
    own, not a hole of the ring's outline."""
    pixels = np.full((160, 200), 100, np.uint16)
    cv2.circle(pixels, (100, 80), 75, 3000, 3)
    planted = plant(pixels, "ID 5521907", (55, 85), 900)
    scene = _scenes.Scene(pixels, "MONOCHROME2", 12, "CT", [planted], (40.0, 400.0), (1, -1024))
    ds = roundtrip(_scenes.scene_dataset(scene, burned_in_annotation=None, sop_class_uid=CT))
    check(ds, scene)


@pytest.mark.parametrize("contrast", [20, 30])
def test_dim_grey_text_on_black_8bit(contrast: int) -> None:
    """8-bit grey: text only 20-30 levels above a black margin (under the fixed 40 levels of
    the window search, over a noise-free background)."""
    base = _scenes.ultrasound(np.random.default_rng(3), rows=240, cols=320, texts=0).pixels
    pixels = base.copy()
    planted = plant(pixels, "DOE JANE 03/11/62", (6, 18), contrast, exact=False, scale=0.45)
    scene = _scenes.Scene(pixels, "MONOCHROME2", 8, "US", [planted])
    ds = roundtrip(_scenes.scene_dataset(scene, burned_in_annotation=None))
    check(ds, scene)


@pytest.mark.parametrize("variant", list(CT_VARIANTS))
def test_ct_without_text_is_unchanged(variant: str) -> None:
    ds, _ = ct_dataset(variant, [])
    data = ds.PixelData
    outcome = scan(ds)
    assert outcome.scanned and outcome.boxes == ()
    assert ds.PixelData == data and ds.BurnedInAnnotation == "NO"


@pytest.mark.parametrize("size", [64, 256, 512])
def test_smooth_phantoms_without_text_give_no_candidate(size: int) -> None:
    """Noise-free phantoms (blobs, gradients, plateaus): no stroke, no exact-value shape."""
    from deid.testing import synthetic

    for build in (synthetic.build_ct_image, synthetic.build_mr_image, synthetic.build_dx_image):
        ds = build(synthetic.PATIENTS[0], rows=size, columns=size, extras=False)
        for view in search_views(decode(ds), rendering(ds)):
            assert find_candidates(view) == [], build.__name__


def test_radiograph_without_text_masks_only_its_marker() -> None:
    values = radiograph(False)
    pixels = np.clip(np.rint(values), 0, 4095).astype(np.uint16)
    scene = _scenes.Scene(pixels, "MONOCHROME2", 12, "DX", [], (2048.0, 4096.0))
    ds = roundtrip(_scenes.scene_dataset(scene, burned_in_annotation=None, sop_class_uid=DX))
    outcome = scan(ds)
    assert outcome.masked == 1  # the laterality marker
    (box,) = outcome.boxes
    assert box.x < 80 and box.width * box.height < 40 * 45


def test_search_views_of_deep_and_8bit_frames() -> None:
    ds, _ = ct_dataset("int16-intercept", [])
    (plane,) = search_views(decode(ds), rendering(ds))
    assert isinstance(plane, StoredPlane) and plane.values.dtype == np.int16
    assert plane.grey_step == pytest.approx(400 / 255)
    scene = _scenes.ultrasound(np.random.default_rng(0), rows=60, cols=80, texts=0)
    ds = roundtrip(_scenes.scene_dataset(scene))
    (plane,) = search_views(decode(ds), rendering(ds))
    assert plane.values.dtype == np.uint8 and plane.grey_step == 1.0


# --------------------------------------------------------------------------------------------
# Burned In Annotation YES and nothing found: refused, not claimed clean


def test_yes_and_nothing_found_is_refused() -> None:
    ds, _ = ct_dataset("uint12", [])
    ds.BurnedInAnnotation = "YES"
    data = ds.PixelData
    with pytest.raises(PixelError, match="BurnedInAnnotation is YES but no burned-in text was"):
        scan(ds)
    assert ds.PixelData == data


def test_yes_and_text_found_is_cleaned() -> None:
    ds, scene = ct_dataset("uint12", [("DOE JOHN 12345", 2000.0, (70, 120))])
    ds.BurnedInAnnotation = "YES"
    check(ds, scene)


@pytest.mark.parametrize("value", [None, "NO"])
def test_absent_or_no_and_nothing_found_is_clean(value: str | None) -> None:
    ds, _ = ct_dataset("uint12", [])
    if value is not None:
        ds.BurnedInAnnotation = value
    outcome = scan(ds, mode=PixelMode.ALWAYS)
    assert outcome.scanned and outcome.boxes == ()
    assert ds.BurnedInAnnotation == "NO"


@pytest.mark.ocr
def test_task_refuses_yes_with_nothing_found(tmp_path: Path) -> None:
    from deid.api import make_config
    from deid.io import SourceFile
    from deid.task import FileTask, run_task

    ds, _ = ct_dataset("int16-intercept", [])
    ds.BurnedInAnnotation = "YES"
    source = tmp_path / "ct.dcm"
    ds.save_as(source, enforce_file_format=True)
    config = make_config(key=bytes(range(32)), pixels="auto")
    result = run_task(
        FileTask(SourceFile(source, PurePosixPath("ct.dcm")), tmp_path / "out"), config
    )
    assert result.status.value == "failed"
    assert result.error_class == "PixelError"
    assert "BurnedInAnnotation is YES but no burned-in text was found" in (result.reason or "")
    assert "--pixels never" in (result.reason or "")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.dcm"))


# --------------------------------------------------------------------------------------------
# End to end, with Tesseract


@pytest.mark.ocr
def test_task_masks_ct_text_the_window_hides(tmp_path: Path) -> None:
    """Through deid.task with the real OCR engine: text above, inside and below the window is
    masked in the written file, and OCR reads none of it, whatever the window."""
    import pytesseract

    from deid.api import make_config
    from deid.io import SourceFile
    from deid.task import FileTask, run_task

    texts = [
        ("QUIMBY HAROLD", 2000.0, (70, 120)),
        ("MRN 7730915", -500.0, (8, 24)),
        ("ACC 55120", -960.0, (8, 248)),
    ]
    dtype, bits, intercept = CT_VARIANTS["int16-intercept"]
    stored = ct_hu() - intercept
    planted = [
        plant(stored, t, org, hu - intercept, scale=0.7, thickness=2) for t, hu, org in texts
    ]
    pixels = np.rint(stored).astype(dtype)
    scene = _scenes.Scene(pixels, "MONOCHROME2", bits, "CT", planted, (40.0, 400.0), (1, intercept))
    ds = _scenes.scene_dataset(scene, burned_in_annotation=None, sop_class_uid=CT)
    source = tmp_path / "ct.dcm"
    ds.save_as(source, enforce_file_format=True)
    config = make_config(key=bytes(range(32)), pixels="auto")
    result = run_task(
        FileTask(SourceFile(source, PurePosixPath("ct.dcm")), tmp_path / "out"), config
    )
    assert result.status.value == "written", result.reason
    written = pydicom.dcmread(tmp_path / "out" / "ct.dcm")
    assert written.BurnedInAnnotation == "NO"
    after = written.pixel_array.astype(np.float32)
    windows = ((1024 - 160, 1024 + 240), (0, 4095), (0, 200), (float(stored.min()), 3100.0))

    def read(image: NDArray, box: tuple[int, int, int, int], low: float, high: float) -> str:
        x, y, w, h = box
        crop = image[max(0, y - 8) : y + h + 8, max(0, x - 8) : x + w + 8]
        grey = np.clip((crop - low) * 255 / (high - low), 0, 255).astype(np.uint8)
        big = cv2.resize(grey, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
        texts = []
        for im in (big, 255 - big):  # light or dark text
            texts.append(pytesseract.image_to_string(im, config="--psm 7"))
        return " ".join(" ".join(texts).split()).upper()

    for p, (text, _hu, _org) in zip(planted, texts):
        word = text.split()[-1]
        # the reader reads the planted text in one window or another
        assert any(word in read(stored, p.box, *w) for w in windows), text
        for w in windows:
            assert word not in read(after, p.box, *w), (text, w)
