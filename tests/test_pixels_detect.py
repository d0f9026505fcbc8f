"""Burned-in text is found and masked: fonts, sizes, levels, polarities, places, frames.

These tests run Tesseract (marked ``ocr``); without it they fail, they never skip.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytesseract
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from deid.config import PixelMode, RedactMode
from deid.pixels import _scenes
from deid.pixels.detect import check_tesseract, find_candidates
from deid.pixels.frames import decode, rendering, search_views, views
from tests.test_pixels_support import assert_clean, clean, frames_of, roundtrip

pytestmark = pytest.mark.ocr

FONT_NAMES = {
    cv2.FONT_HERSHEY_SIMPLEX: "simplex",
    cv2.FONT_HERSHEY_PLAIN: "plain",
    cv2.FONT_HERSHEY_DUPLEX: "duplex",
    cv2.FONT_HERSHEY_COMPLEX: "complex",
    cv2.FONT_HERSHEY_TRIPLEX: "triplex",
    cv2.FONT_HERSHEY_COMPLEX_SMALL: "complex-small",
}


def _grey_scene(
    font: int,
    scale: float,
    level: int,
    background: int,
    thickness: int,
    italic: bool = False,
    rows: int = 120,
    cols: int = 240,
) -> _scenes.Scene:
    """A plain background with a gradient patch and three lines of text in one style."""
    rng = np.random.default_rng(font * 100 + int(scale * 10) + level)
    pixels = np.full((rows, cols), background, np.uint8)
    # some image content that is not text: a smooth blob and a noisy patch
    yy, xx = np.mgrid[0:rows, 0:cols]
    blob = np.exp(-(((xx - cols * 0.75) / 30.0) ** 2 + ((yy - rows * 0.5) / 25.0) ** 2))
    pixels = np.clip(
        pixels + 90 * blob * (1 if background < 128 else -1) + rng.normal(0, 3, (rows, cols)),
        0,
        255,
    ).astype(np.uint8)
    face = font | (cv2.FONT_ITALIC if italic else 0)
    texts = []
    (_, h), base = cv2.getTextSize("Ag", face, scale, thickness)
    y = h + 4
    for text in ("DOE JANE", "ID 5521907", "03/11/1962"):
        if y + base >= rows - 2:
            break
        texts.append(
            _scenes.burn(
                pixels,
                text,
                (6, y),
                font=face,
                scale=scale,
                value=level,
                thickness=thickness,
                antialias=bool(font % 2),
            )
        )
        y += h + base + 6
    return _scenes.Scene(pixels, "MONOCHROME2", 8, "OT", texts)


@pytest.mark.parametrize("font", list(FONT_NAMES), ids=list(FONT_NAMES.values()))
@pytest.mark.parametrize(
    ("scale", "thickness"), [(0.4, 1), (0.7, 1), (1.0, 2)], ids=["small", "medium", "large-bold"]
)
def test_every_font_and_size_is_masked(font: int, scale: float, thickness: int) -> None:
    if font in (cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_COMPLEX_SMALL):
        scale *= 1.6  # these two are drawn smaller at the same scale
    scene = _grey_scene(font, scale, 230, 10, thickness)
    _check(scene)


@pytest.mark.parametrize(
    ("level", "background"),
    [(255, 0), (140, 0), (90, 0), (0, 230), (60, 200), (200, 90)],
    ids=[
        "white-on-black",
        "grey-on-black",
        "dim-on-black",
        "black-on-white",
        "dark-on-light",
        "light-on-grey",
    ],
)
def test_text_levels_and_polarities_are_masked(level: int, background: int) -> None:
    _check(_grey_scene(cv2.FONT_HERSHEY_SIMPLEX, 0.5, level, background, 1))


def test_italic_text_is_masked() -> None:
    _check(_grey_scene(cv2.FONT_HERSHEY_COMPLEX, 0.6, 255, 0, 1, italic=True))


def _check(scene: _scenes.Scene) -> None:
    ds = roundtrip(_scenes.scene_dataset(scene))
    before = frames_of(ds).copy()
    outcome = clean(ds)
    after = frames_of(roundtrip(ds))
    assert_clean(scene, before, after, outcome)


@pytest.mark.parametrize(
    ("name", "seed"), [("us", 21), ("us-colour", 22), ("sc", 23), ("dx", 24), ("dx-mono1", 25)]
)
def test_generated_scenes_are_masked(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scene = {
        "us": lambda: _scenes.ultrasound(rng, rows=300, cols=400, texts=6),
        "us-colour": lambda: _scenes.ultrasound(rng, rows=300, cols=400, texts=6, colour=True),
        "sc": lambda: _scenes.secondary_capture(rng, rows=300, cols=400, texts=6),
        "dx": lambda: _scenes.radiograph(rng, rows=320, cols=320, texts=4),
        "dx-mono1": lambda: _scenes.radiograph(rng, rows=320, cols=320, texts=4, monochrome1=True),
    }[name]()
    assert scene.texts
    _check(scene)


def test_ocr_no_longer_reads_masked_text() -> None:
    pixels = np.zeros((140, 360), np.uint8)
    texts = [
        _scenes.burn(
            pixels,
            "QUIMBY HAROLD",
            (10, 40),
            font=cv2.FONT_HERSHEY_SIMPLEX,
            scale=1.0,
            value=255,
            thickness=2,
        ),
        _scenes.burn(
            pixels,
            "MRN 7730915",
            (10, 110),
            font=cv2.FONT_HERSHEY_DUPLEX,
            scale=1.0,
            value=200,
            thickness=2,
        ),
    ]
    scene = _scenes.Scene(pixels, "MONOCHROME2", 8, "US", texts)
    ds = roundtrip(_scenes.scene_dataset(scene))

    def read(image: np.ndarray) -> str:
        big = cv2.resize(255 - image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        return " ".join(pytesseract.image_to_string(big, config="--psm 6").split()).upper()

    assert "QUIMBY" in read(pixels) and "7730915" in read(pixels)  # the reader can read them
    outcome = clean(ds)
    assert outcome.masked >= 2
    after = frames_of(roundtrip(ds))[0, ..., 0]
    text = read(after)
    assert "QUIMBY" not in text and "HAROLD" not in text and "7730915" not in text
    assert not any(c.isalnum() for c in text)


def test_image_without_text_is_scanned_and_unchanged() -> None:
    scene = _scenes.ct_slice(np.random.default_rng(2), rows=256, cols=256)
    ds = roundtrip(
        _scenes.scene_dataset(
            scene, burned_in_annotation=None, sop_class_uid="1.2.840.10008.5.1.4.1.1.2"
        )
    )
    data = ds.PixelData
    outcome = clean(ds)
    assert outcome.scanned and outcome.masked == 0 and outcome.boxes == ()
    assert outcome.thumbnail_png is None  # unchanged image: nothing to show
    assert ds.PixelData == data
    assert ds.BurnedInAnnotation == "NO"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113101"
    assert find_candidates(search_views(decode(ds), rendering(ds))[0]) == []
    assert find_candidates(views(decode(ds), rendering(ds))[0]) == []  # nor in the window


def test_cine_with_changing_text_masks_every_frame() -> None:
    scene = _scenes.cine(
        lambda rng: _scenes.ultrasound(rng, rows=200, cols=280, texts=3),
        np.random.default_rng(8),
        frames=8,
    )
    ds = roundtrip(_scenes.scene_dataset(scene))
    before = frames_of(ds).copy()
    outcome = clean(ds)
    after = frames_of(roundtrip(ds))
    assert_clean(scene, before, after, outcome)
    clock = scene.texts[-1]
    for f in range(8):  # the changing clock is masked in each frame, not only where it was once
        assert np.ptp(after[f][clock.ink]) == 0


def test_thumbnail_shows_the_cleaned_frame() -> None:
    pixels = np.zeros((300, 400), np.uint8)
    texts = [
        _scenes.burn(
            pixels,
            "SECRET NAME",
            (20, 60),
            font=cv2.FONT_HERSHEY_SIMPLEX,
            scale=1.2,
            value=255,
            thickness=2,
        )
    ]
    ds = roundtrip(_scenes.scene_dataset(_scenes.Scene(pixels, "MONOCHROME2", 8, "US", texts)))
    outcome = clean(ds)
    assert outcome.thumbnail_png is not None
    thumb = cv2.imdecode(np.frombuffer(outcome.thumbnail_png, np.uint8), cv2.IMREAD_COLOR)
    assert max(thumb.shape[:2]) <= 192
    # the text area is filled (outlines in red at most): no white strokes survive
    scale = thumb.shape[1] / 400
    x, y, w, h = texts[0].box
    inner = thumb[
        int(y * scale) + 2 : int((y + h) * scale) - 2, int(x * scale) + 2 : int((x + w) * scale) - 2
    ]
    assert inner.size and inner.max() < 64


def test_jpeg_colour_text_found_after_lossy_compression() -> None:
    """Coloured text in the black margins of a colour ultrasound frame, through JPEG 4:2:2."""
    base = _scenes.ultrasound(np.random.default_rng(31), rows=240, cols=320, colour=True, texts=0)
    pixels = base.pixels.copy()
    texts = [
        _scenes.burn(
            pixels,
            "ROSSI MARIA",
            (4, 14),
            font=cv2.FONT_HERSHEY_SIMPLEX,
            scale=0.45,
            value=(255, 255, 0),
        ),
        _scenes.burn(
            pixels,
            "12/05/1971",
            (200, 14),
            font=cv2.FONT_HERSHEY_DUPLEX,
            scale=0.45,
            value=(0, 255, 0),
        ),
        _scenes.burn(
            pixels, "MI 1.1", (4, 120), font=cv2.FONT_HERSHEY_PLAIN, scale=0.9, value=(0, 255, 255)
        ),
        _scenes.burn(
            pixels,
            "TIS 0.2",
            (4, 140),
            font=cv2.FONT_HERSHEY_SIMPLEX,
            scale=0.4,
            value=(120, 160, 255),
        ),
    ]
    scene = _scenes.Scene(pixels, "RGB", 8, "US", texts)
    ds = roundtrip(_scenes.scene_dataset(scene, JPEGBaseline8Bit))
    before = frames_of(ds).copy()
    outcome = clean(ds)
    assert_clean(scene, before, frames_of(roundtrip(ds)), outcome)


def test_always_scans_even_when_header_says_no() -> None:
    pixels = np.zeros((120, 200), np.uint8)
    texts = [
        _scenes.burn(
            pixels, "HIDDEN 1234", (8, 40), font=cv2.FONT_HERSHEY_SIMPLEX, scale=0.7, value=255
        )
    ]
    scene = _scenes.Scene(pixels, "MONOCHROME2", 8, "CT", texts)
    ds = roundtrip(
        _scenes.scene_dataset(
            scene,
            ExplicitVRLittleEndian,
            burned_in_annotation="NO",
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        )
    )
    assert not clean(ds).scanned  # auto trusts NO for CT
    outcome = clean(ds, mode=PixelMode.ALWAYS, redact=RedactMode.ALL_TEXT)
    assert outcome.scanned and outcome.masked >= 1


def test_tesseract_is_installed() -> None:
    assert check_tesseract()


@pytest.mark.parametrize("redact", [RedactMode.ALL_TEXT, RedactMode.PHI_TEXT])
def test_task_cleans_synthetic_ultrasound(tmp_path: object, redact: RedactMode) -> None:
    """End to end through deid.task on the shared synthetic ultrasound (deid.testing)."""
    from pathlib import Path, PurePosixPath

    from deid.api import make_config
    from deid.io import SourceFile
    from deid.task import FileTask, run_task
    from deid.testing import synthetic

    ds = synthetic.build_us_image(rows=240, columns=320, text_scale=0.6)
    _, boxes = synthetic.annotated_frame(
        synthetic.PATIENTS[0], synthetic._DEFAULT_STUDY, 240, 320, color=True, scale=0.6
    )
    root = Path(str(tmp_path))
    source = root / "us.dcm"
    ds.save_as(source, enforce_file_format=True)
    config = make_config(key=bytes(range(32)), pixels="auto", redact=redact)
    result = run_task(FileTask(SourceFile(source, PurePosixPath("us.dcm")), root / "out"), config)
    assert result.status.value == "written", result.reason
    assert result.pixels is not None and result.pixels.scanned
    written = roundtrip(pydicom_read(root / "out" / "us.dcm"))
    assert written.BurnedInAnnotation == "NO"
    cover = np.zeros((240, 320), bool)
    for b in result.pixels.boxes:
        if not b.kept:
            cover[max(0, b.y) : b.y + b.height, max(0, b.x) : b.x + b.width] = True
    kept = [b for b in result.pixels.boxes if b.kept]
    for box in boxes:  # every line is identifying: masked in both modes, but for a label
        region = ~cover[box.y : box.y + box.height, box.x : box.x + box.width]
        if redact is RedactMode.ALL_TEXT:
            assert not region.any(), box.text
            continue
        ys, xs = np.nonzero(region)
        for y, x in zip((ys + box.y).tolist(), (xs + box.x).tolist()):
            assert any(k.x <= x < k.x + k.width and k.y <= y < k.y + k.height for k in kept)
        assert xs.size == 0 or xs.max() < 0.3 * box.width, box.text  # "ID" at most


def pydicom_read(path: object) -> object:
    import pydicom

    return pydicom.dcmread(str(path))
