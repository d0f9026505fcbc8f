"""``--redact phi-text``: identifying text masked, clinically useful text kept."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deid.config import RedactMode
from deid.identifiers import Identifiers
from deid.pixels import _scenes
from deid.pixels.policy import load_policy
from deid.pixels.redact import classify_words, is_clinical
from tests.test_pixels_support import clean, frames_of, masked_cover, roundtrip

IDS = Identifiers(
    names=frozenset({"QUIMBY", "HAROLD"}),
    full_names=frozenset({"QUIMBY HAROLD", "HAROLD QUIMBY"}),
    ids=frozenset({"QH480213"}),
    dates=frozenset({"19560412", "12/04/1956"}),
)


def _keep(words: list[str], confidence: float = 95.0, identifiers: Identifiers = IDS) -> list[bool]:
    return classify_words(words, [confidence] * len(words), identifiers, load_policy())


@pytest.mark.parametrize(
    "line",
    [
        ["5.2", "cm"],
        ["MI", "0.8"],
        ["TIS", "0.4"],
        ["D", "3.41cm"],
        ["Gain", "52"],
        ["FR", "28Hz"],
        ["LIVER"],
        ["C5-1"],
        ["Vol", "12.5", "ml"],
        ["RT", "KIDNEY"],
        ["2D", "68%"],
    ],
)
def test_clinical_text_is_kept(line: list[str]) -> None:
    assert all(_keep(line)), line


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (["QUIMBY", "HAROLD"], [0, 1]),
        (["Harold", "Quimby", "5.2", "cm"], [0, 1]),
        (["ID", "QH480213"], [1]),
        (["12/03/2024"], [0]),
        (["2024-03-12", "LIVER"], [0]),
        (["12", "MAR", "2024"], [0, 1, 2]),
        (["10:22:33"], [0]),
        (["MRN", "7730915"], [0, 1]),
        (["1956"], [0]),
        (["ZORBLAX"], [0]),  # not known to be clinical: masked (fail closed)
        (["Dr", "Smith"], [1]),  # DR is also dynamic range: kept
    ],
)
def test_identifying_or_unknown_text_is_masked(line: list[str], masked: list[int]) -> None:
    keep = _keep(line)
    for i in masked:
        assert not keep[i], (line, i)


def test_low_confidence_words_are_masked() -> None:
    assert _keep(["5.2", "cm"], confidence=95.0) == [True, True]
    assert _keep(["5.2", "cm"], confidence=-1.0) == [False, False]  # Tesseract: not a word
    # a line that is not all clinical needs a confident read for its clinical words
    assert _keep(["LIVER", "ZORBLAX"], confidence=50.0) == [False, False]
    assert _keep(["LIVER", "ZORBLAX"], confidence=95.0) == [True, False]


def test_identifier_split_by_ocr_spaces_is_masked() -> None:
    assert _keep(["QH48", "0213"]) == [False, False]


def test_is_clinical_units_and_numbers() -> None:
    policy = load_policy()
    assert is_clinical("12.5", policy) and is_clinical("cm/s", policy)
    assert is_clinical("+3.2dB", policy) and is_clinical("-", policy)
    assert not is_clinical("123456", policy)
    assert not is_clinical("JOHN", policy)


@pytest.mark.ocr
def test_phi_text_masks_identifiers_and_keeps_measurements() -> None:
    pixels = np.zeros((260, 480), np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    lines = [
        ("QUIMBY HAROLD", False),
        ("5.2 cm", True),
        ("MI 0.8", True),
        ("12/03/2024", False),
        ("10:22:33", False),
        ("ZORBLAX", False),
    ]
    planted = []
    for i, (text, kept) in enumerate(lines):
        x = 12 if i % 2 == 0 else 290  # two fields per row, well apart
        y = 40 + (i // 2) * 80
        planted.append(
            (
                _scenes.burn(
                    pixels,
                    text,
                    (x, y),
                    font=font,
                    scale=0.9,
                    value=255,
                    thickness=2,
                    antialias=False,
                ),
                kept,
            )
        )
    scene = _scenes.Scene(pixels, "MONOCHROME2", 8, "US", [p for p, _ in planted])
    ds = roundtrip(_scenes.scene_dataset(scene))
    before = frames_of(ds).copy()
    outcome = clean(ds, redact=RedactMode.PHI_TEXT, identifiers=IDS)
    after = frames_of(roundtrip(ds))
    cover = masked_cover(outcome, 260, 480)
    kept_boxes = [b for b in outcome.boxes if b.kept]
    assert kept_boxes, "nothing kept"
    for text, kept in planted:
        if kept:
            assert np.array_equal(before[0][text.ink], after[0][text.ink]), text.text
            x, y, w, h = text.box
            assert any(
                b.x <= x + w and x <= b.x + b.width and b.y <= y + h and y <= b.y + b.height
                for b in kept_boxes
            ), text.text
        else:
            assert cover[text.ink].all(), text.text
    assert np.array_equal(before[0][~cover], after[0][~cover])
