"""Synthetic images with burned-in text at known places, for the pixel tests and benchmark.

Internal: nothing here runs when a file is de-identified. Every scene is drawn from a seeded
random generator, so a seed always gives the same pixels. Text is rendered with OpenCV's Hershey
fonts into an alpha map first, so that the exact ink of each planted text (``PlantedText.ink``) is
known and a test can check that every ink pixel was masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

FONTS: tuple[int, ...] = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_PLAIN,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_COMPLEX_SMALL,
)
"""Fonts used for planted text (the two script fonts are left out: no scanner console uses them)."""

_NAMES = (
    "DOE^JANE",
    "SMITH JOHN",
    "MULLER ANNA",
    "GARCIA LUIS",
    "NGUYEN THI",
    "KOWALSKI P",
    "OKAFOR CHIDI",
    "ROSSI MARIA",
    "TANAKA KEN",
    "BROWN EMMA",
)
_LABELS = (
    "LIVER",
    "KIDNEY RT",
    "THYROID LT",
    "CAROTID",
    "ABDOMEN",
    "PELVIS",
    "BREAST L",
    "AORTA",
    "PORTABLE",
    "UPRIGHT",
    "SUPINE",
    "CHEST PA",
)
_USEFUL = (
    "5.2 cm",
    "MI 0.8",
    "TIS 0.4",
    "Gain 52",
    "DR 60",
    "FR 28Hz",
    "D 3.41 cm",
    "12 cm",
    "C5-1",
    "2D 68%",
    "PW 4.0MHz",
    "Vol 12.5 ml",
)


@dataclass
class PlantedText:
    """One text burned into a scene."""

    text: str
    box: tuple[int, int, int, int]
    """Bounding box of the ink, ``(x, y, width, height)``."""
    ink: NDArray[np.bool_] = field(repr=False)
    """Pixels covered by the text (alpha of at least 0.25), frame-sized."""
    frames: tuple[int, ...] = (0,)
    """Frames the text is drawn in."""
    phi: bool = True
    """Whether the text identifies someone (name, ID, date, time)."""


@dataclass
class Scene:
    """A synthetic image: native pixel values plus what a DICOM header needs to describe them."""

    pixels: NDArray[np.generic]
    """``(rows, cols)``, ``(rows, cols, 3)``, ``(frames, rows, cols)`` or
    ``(frames, rows, cols, 3)``."""
    photometric: str
    bits_stored: int
    modality: str
    texts: list[PlantedText] = field(default_factory=list)
    window: tuple[float, float] | None = None
    rescale: tuple[float, float] = (1.0, 0.0)
    frames: int = 1

    @property
    def signed(self) -> bool:
        return bool(self.pixels.dtype.kind == "i")


def render_alpha(
    shape: tuple[int, int],
    text: str,
    org: tuple[int, int],
    font: int,
    scale: float,
    thickness: int,
    antialias: bool,
) -> NDArray[np.float32]:
    """Coverage (0..1) of ``text`` drawn at ``org`` (bottom-left of the text) on a frame."""
    canvas = np.zeros(shape, np.uint8)
    line = cv2.LINE_AA if antialias else cv2.LINE_8
    cv2.putText(canvas, text, org, font, scale, 255, thickness, line)
    return canvas.astype(np.float32) / 255.0


def burn(
    image: NDArray[np.generic],
    text: str,
    org: tuple[int, int],
    *,
    font: int,
    scale: float,
    value: float | tuple[float, float, float],
    thickness: int = 1,
    antialias: bool = True,
    phi: bool = True,
) -> PlantedText:
    """Draw ``text`` into ``image`` (in place) with colour ``value`` in native units; return it."""
    alpha = render_alpha(image.shape[:2], text, org, font, scale, thickness, antialias)
    if image.ndim == 3:
        colour = np.asarray(value, np.float32).reshape(1, 1, -1)
        a = alpha[..., None]
    else:
        colour = np.float32(value)  # type: ignore[arg-type]
        a = alpha
    info = np.iinfo(image.dtype) if image.dtype.kind in "ui" else None  # type: ignore[type-var]
    blended = image.astype(np.float32) * (1.0 - a) + colour * a
    if info is not None:
        blended = np.clip(np.rint(blended), info.min, info.max)
    image[...] = blended.astype(image.dtype)
    ink = alpha >= 0.25
    ys, xs = np.nonzero(ink)
    if ys.size == 0:
        raise ValueError("text falls outside the image")
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    return PlantedText(text=text, box=box, ink=ink, phi=phi)


def fits(
    shape: tuple[int, ...], text: str, org: tuple[int, int], font: int, scale: float, thickness: int
) -> bool:
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    x, y = org
    return x >= 1 and y - h >= 1 and x + w < shape[1] - 1 and y + base < shape[0] - 1


def _random_text(rng: np.random.Generator) -> tuple[str, bool]:
    kind = rng.integers(0, 6)
    if kind == 0:
        return str(rng.choice(_NAMES)), True
    if kind == 1:
        return f"ID {rng.integers(1000000, 99999999)}", True
    if kind == 2:
        return (
            f"{rng.integers(1, 28):02d}/{rng.integers(1, 12):02d}/{rng.integers(1950, 2024)}",
            True,
        )
    if kind == 3:
        return (
            f"{rng.integers(0, 23):02d}:{rng.integers(0, 59):02d}:{rng.integers(0, 59):02d}",
            True,
        )
    if kind == 4:
        return str(rng.choice(_LABELS)), False
    return str(rng.choice(_USEFUL)), False


def _place_texts(
    image: NDArray[np.generic],
    rng: np.random.Generator,
    count: int,
    value_for: object,
    *,
    zones: list[tuple[int, int, int, int]],
    min_scale: float = 0.4,
    max_scale: float = 1.1,
) -> list[PlantedText]:
    """Place ``count`` random texts inside ``zones`` (x, y, w, h) without overlapping."""
    rows, cols = image.shape[:2]
    occupied = np.zeros((rows, cols), bool)
    planted: list[PlantedText] = []
    tries = 0
    while len(planted) < count and tries < 400:
        tries += 1
        text, phi = _random_text(rng)
        font = int(rng.choice(FONTS))
        scale = float(rng.uniform(min_scale, max_scale))
        if font in (cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_COMPLEX_SMALL):
            scale *= 1.6
        thickness = 1 if scale < 0.8 or rng.random() < 0.5 else 2
        (w, h), base = cv2.getTextSize(text, font, scale, thickness)
        zx, zy, zw, zh = zones[int(rng.integers(0, len(zones)))]
        if zw <= w + 4 or zh <= h + base + 4:
            continue
        x = int(rng.integers(zx + 2, zx + zw - w - 2))
        y = int(rng.integers(zy + h + 2, zy + zh - base - 2))
        if not fits(image.shape, text, (x, y), font, scale, thickness):
            continue
        y0, y1 = max(0, y - h - 6), min(rows, y + base + 6)
        x0, x1 = max(0, x - 8), min(cols, x + w + 8)
        if occupied[y0:y1, x0:x1].any():
            continue
        value = value_for(image, x, y - h, w, h + base)  # type: ignore[operator]
        antialias = bool(rng.random() < 0.7)
        planted.append(
            burn(
                image,
                text,
                (x, y),
                font=font,
                scale=scale,
                value=value,
                thickness=thickness,
                antialias=antialias,
                phi=phi,
            )
        )
        occupied[y0:y1, x0:x1] = True
    return planted


def _max_scale(rows: int, reference: int) -> float:
    """Largest font scale for a frame ``rows`` high (1.1 at the reference height)."""
    return max(0.55, 1.1 * rows / reference)


def ultrasound(
    rng: np.random.Generator,
    rows: int = 480,
    cols: int = 640,
    *,
    colour: bool = False,
    texts: int = 8,
) -> Scene:
    """An ultrasound frame: black screen, a speckled sector, text around it (grey or coloured)."""
    image = np.zeros((rows, cols), np.float32)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    apex = (cols / 2.0, rows * 0.12)
    radius = np.hypot(xx - apex[0], yy - apex[1])
    angle = np.degrees(np.arctan2(xx - apex[0], yy - apex[1]))
    sector = (np.abs(angle) < 33) & (radius > rows * 0.05) & (radius < rows * 0.82)
    tissue = cv2.GaussianBlur(rng.random((rows, cols)).astype(np.float32), (0, 0), 18)
    tissue = (tissue - tissue.min()) / max(float(np.ptp(tissue)), 1e-6)
    speckle = rng.rayleigh(0.45, (rows, cols)).astype(np.float32)
    speckle = np.asarray(cv2.GaussianBlur(speckle, (3, 3), 0.8), np.float32)
    image[sector] = np.clip(60 + 150 * tissue[sector] * speckle[sector], 0, 230)
    # a vessel (dark ellipse) and a bright interface line inside the sector
    cv2.ellipse(
        image, (int(cols * 0.5), int(rows * 0.5)), (cols // 14, rows // 24), 10, 0, 360, 8, -1
    )
    image[sector & (np.abs(radius - rows * 0.6) < 2)] = 215
    # depth scale: tick marks at the right of the sector
    for k in range(1, 8):
        y = int(rows * 0.12 + k * rows * 0.1)
        if y < rows - 4:
            cv2.line(image, (int(cols * 0.86), y), (int(cols * 0.86) + 6, y), 180, 1)
    # grey bar
    cv2.rectangle(
        image, (int(cols * 0.93), int(rows * 0.3)), (int(cols * 0.95), int(rows * 0.7)), 0, -1
    )
    for y in range(int(rows * 0.3), int(rows * 0.7)):
        image[y, int(cols * 0.93) : int(cols * 0.95)] = 255 * (int(rows * 0.7) - y) / (rows * 0.4)
    grey = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    top = (0, 0, cols, int(rows * 0.11))
    left = (0, int(rows * 0.11), int(cols * 0.25), rows - int(rows * 0.11))
    right = (int(cols * 0.75), int(rows * 0.11), int(cols * 0.18), rows - int(rows * 0.11))
    bottom = (int(cols * 0.25), int(rows * 0.86), int(cols * 0.5), rows - int(rows * 0.86))
    zones = [top, left, right, bottom]
    if colour:
        rgb = np.repeat(grey[..., None], 3, axis=2)
        palette = [
            (255, 255, 0),
            (0, 255, 0),
            (0, 255, 255),
            (255, 255, 255),
            (255, 128, 0),
            (120, 160, 255),
        ]

        def pick_rgb(*_: object) -> tuple[float, float, float]:
            c = palette[int(rng.integers(0, len(palette)))]
            return (float(c[0]), float(c[1]), float(c[2]))

        planted = _place_texts(
            rgb, rng, texts, pick_rgb, zones=zones, max_scale=_max_scale(rows, 480)
        )
        return Scene(rgb, "RGB", 8, "US", planted)

    def pick_grey(*_: object) -> float:
        return float(rng.integers(110, 256))

    planted = _place_texts(
        grey, rng, texts, pick_grey, zones=zones, max_scale=_max_scale(rows, 480)
    )
    return Scene(grey, "MONOCHROME2", 8, "US", planted)


def secondary_capture(
    rng: np.random.Generator, rows: int = 480, cols: int = 640, texts: int = 8
) -> Scene:
    """A screen capture: light panels with dark text, a dark image area with light text (RGB)."""
    rgb = np.full((rows, cols, 3), 215, np.uint8)
    rgb[: int(rows * 0.1)] = (40, 60, 90)  # title bar
    ix, iy, iw, ih = int(cols * 0.3), int(rows * 0.15), int(cols * 0.65), int(rows * 0.8)
    area = cv2.GaussianBlur(rng.random((ih, iw)).astype(np.float32), (0, 0), 10)
    area = (area - area.min()) / max(float(np.ptp(area)), 1e-6)
    body = np.zeros((ih, iw), np.float32)
    cv2.ellipse(body, (iw // 2, ih // 2), (iw // 3, ih // 3), 0, 0, 360, 1.0, -1)
    content = np.clip(30 + 170 * body * (0.6 + 0.4 * area) + rng.normal(0, 6, (ih, iw)), 0, 255)
    rgb[iy : iy + ih, ix : ix + iw] = content.astype(np.uint8)[..., None]
    panel = (4, int(rows * 0.12), int(cols * 0.28), int(rows * 0.86))
    title = (0, 0, cols, int(rows * 0.1))
    image_top = (ix, iy, iw, int(ih * 0.2))

    def pick(image: NDArray[np.generic], x: int, y: int, w: int, h: int) -> tuple[float, ...]:
        patch = image[y : y + h, x : x + w].reshape(-1, 3).astype(np.float32).mean(axis=0)
        if patch.mean() > 128:
            v = float(rng.integers(0, 70))
            return (v, v, float(min(255, v + rng.integers(0, 60))))
        v = float(rng.integers(190, 256))
        return (v, v, v)

    planted = _place_texts(
        rgb,
        rng,
        texts,
        pick,
        zones=[panel, title, image_top, panel],
        max_scale=_max_scale(rows, 480),
    )
    return Scene(rgb, "RGB", 8, "OT", planted)


def radiograph(
    rng: np.random.Generator,
    rows: int = 512,
    cols: int = 512,
    *,
    monochrome1: bool = False,
    texts: int = 5,
    any_value: bool = False,
) -> Scene:
    """A 12-bit projection radiograph: smooth anatomy, noise, collimation, bright and dark text.

    The text is drawn at 0 over bright areas and 4095 over dark ones, or, with ``any_value``,
    at any value: 0 or 4095, or 150 to 600 above or below its background (noise: 25).
    """
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    body = np.exp(
        -(((xx - cols / 2) / (cols * 0.32)) ** 2 + ((yy - rows / 2) / (rows * 0.45)) ** 2)
    )
    image = 300 + 2400 * body
    for k in range(6):  # ribs / bones: bright bands
        cy = rows * (0.25 + 0.09 * k)
        image += 500 * np.exp(-(((yy - cy - 0.1 * (xx - cols / 2)) / 6) ** 2)) * (body > 0.3)
    image += rng.normal(0, 25, (rows, cols))
    image[:, : int(cols * 0.04)] = 3600  # collimator edge (bright, unexposed)
    pixels = np.clip(np.rint(image), 0, 4095).astype(np.uint16)
    dark_zone = (int(cols * 0.05), 0, int(cols * 0.9), int(rows * 0.12))
    bottom = (int(cols * 0.05), int(rows * 0.88), int(cols * 0.9), int(rows * 0.12))
    middle = (int(cols * 0.3), int(rows * 0.35), int(cols * 0.4), int(rows * 0.3))

    def pick(image: NDArray[np.generic], x: int, y: int, w: int, h: int) -> float:
        mean = float(image[y : y + h, x : x + w].mean())
        if any_value and rng.random() < 0.7:
            step = float(rng.uniform(150, 600)) * (1 if rng.random() < 0.5 else -1)
            return float(np.clip(mean + step, 0, 4095))
        return 0.0 if mean > 1800 else 4095.0

    planted = _place_texts(
        pixels,
        rng,
        texts,
        pick,
        zones=[dark_zone, bottom, middle],
        min_scale=0.5,
        max_scale=max(0.6, _max_scale(rows, 512) * 1.1),
    )
    marker = "R" if rng.random() < 0.5 else "L"
    font = int(rng.choice(FONTS[:5]))
    org = (int(cols * 0.08), int(rows * 0.3))
    if fits(pixels.shape, marker, org, font, 1.6, 3):
        planted.append(
            burn(
                pixels,
                marker,
                org,
                font=font,
                scale=1.6,
                value=4095.0,
                thickness=3,
                antialias=False,
                phi=False,
            )
        )
    if monochrome1:
        pixels = (4095 - pixels).astype(np.uint16)
        return Scene(pixels, "MONOCHROME1", 12, "DX", planted, window=(2048.0, 4096.0))
    return Scene(pixels, "MONOCHROME2", 12, "DX", planted, window=(2048.0, 4096.0))


def ct_slice(rng: np.random.Generator, rows: int = 512, cols: int = 512) -> Scene:
    """A CT slice without any text: signed 16-bit, rescale intercept -1024, soft tissue window."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    hu = np.full((rows, cols), -1000.0, np.float32)
    r = np.hypot((xx - cols / 2) / (cols * 0.38), (yy - rows / 2) / (rows * 0.3))
    hu[r < 1.0] = -100  # fat
    hu[r < 0.9] = 45  # soft tissue
    for cx, cy, rx, ry, v in (
        (0.4, 0.45, 0.08, 0.06, 60),
        (0.62, 0.5, 0.1, 0.07, 30),
        (0.5, 0.62, 0.03, 0.03, 1000),
        (0.5, 0.38, 0.025, 0.025, 180),
    ):
        mask = ((xx - cols * cx) / (cols * rx)) ** 2 + ((yy - rows * cy) / (rows * ry)) ** 2 < 1
        hu[mask] = v
    hu[(r > 0.78) & (r < 0.82)] = 700  # ribs ring
    hu[int(rows * 0.85) : int(rows * 0.87), int(cols * 0.1) : int(cols * 0.9)] = 200  # table
    hu += rng.normal(0, 12, (rows, cols)).astype(np.float32) * (hu > -900)
    stored = np.clip(np.rint(hu + 1024), -2000, 4000).astype(np.int16)
    return Scene(stored, "MONOCHROME2", 16, "CT", [], window=(40.0, 400.0), rescale=(1.0, -1024.0))


def ct_with_text(
    rng: np.random.Generator, rows: int = 512, cols: int = 512, texts: int = 6
) -> Scene:
    """A CT slice (:func:`ct_slice`: 12 HU of noise in the body, flat air) with text at values
    anywhere in the stored range, as judged against the soft-tissue window (40/400): brighter
    than the window (600 to 3071 HU), inside it (60 to 150 HU from its background, kept in the
    window), below it (-900 to -200 HU), or at a low contrast (50 HU from flat air, 100 HU from
    the body)."""
    scene = ct_slice(rng, rows, cols)
    stored = scene.pixels
    air_top = (0, 0, cols, int(rows * 0.18))
    air_bottom = (0, int(rows * 0.88), cols, rows - int(rows * 0.88))
    body = (int(cols * 0.3), int(rows * 0.3), int(cols * 0.4), int(rows * 0.4))

    def pick(image: NDArray[np.generic], x: int, y: int, w: int, h: int) -> float:
        background = float(np.median(image[y : y + h, x : x + w].astype(np.float32))) - 1024
        kind = int(rng.integers(0, 4))
        sign = 1 if rng.random() < 0.5 else -1
        if kind == 0:
            hu = float(rng.uniform(600, 3071))
        elif kind == 1:
            hu = float(np.clip(background + sign * rng.uniform(60, 150), -160, 240))
            if abs(hu - background) < 60:
                hu = background - sign * float(rng.uniform(60, 150))
        elif kind == 2:
            hu = float(rng.uniform(-900, -200))
        else:
            hu = background + sign * (50.0 if background < -900 else 100.0)
            hu = max(hu, -1024.0)
        return hu + 1024

    planted = _place_texts(
        stored,
        rng,
        texts,
        pick,
        zones=[air_top, air_bottom, body],
        max_scale=_max_scale(rows, 512),
    )
    return Scene(
        stored, "MONOCHROME2", 16, "CT", planted, window=(40.0, 400.0), rescale=(1.0, -1024.0)
    )


def cine(
    scene_factory: object, rng: np.random.Generator, frames: int = 20, *, changing: bool = True
) -> Scene:
    """A multi-frame loop from a single-frame scene: anatomy moves, text stays; when
    ``changing``, a frame counter (a time) changes in every frame."""
    base: Scene = scene_factory(rng)  # type: ignore[operator]
    stack = []
    for f in range(frames):
        shift = int(round(3 * np.sin(2 * np.pi * f / frames)))
        frame = base.pixels.copy()
        # move the anatomy but not the text: shift rows that carry no ink
        ink_any = np.zeros(frame.shape[:2], bool)
        for t in base.texts:
            ink_any |= t.ink
        moved = np.roll(frame, shift, axis=0)
        keep = cv2.dilate(ink_any.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        frame = np.where(keep[..., None] if frame.ndim == 3 else keep, frame, moved)
        stack.append(frame)
    pixels = np.stack(stack)
    texts = [PlantedText(t.text, t.box, t.ink, tuple(range(frames)), t.phi) for t in base.texts]
    if changing:
        rows, cols = pixels.shape[1:3]
        org = (int(cols * 0.02), rows - 8)
        union = np.zeros((rows, cols), bool)
        for f in range(frames):
            label = f"T {f // 10:02d}:{f % 60:02d}.{(7 * f) % 10}"
            value: float | tuple[float, float, float]
            value = (255.0, 255.0, 255.0) if pixels.ndim == 4 else float(np.iinfo(pixels.dtype).max)
            planted = burn(
                pixels[f],
                label,
                org,
                font=cv2.FONT_HERSHEY_SIMPLEX,
                scale=0.45,
                value=value,
                thickness=1,
                antialias=True,
                phi=True,
            )
            union |= planted.ink
        ys, xs = np.nonzero(union)
        box = (int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1))
        texts.append(PlantedText("frame time", box, union, tuple(range(frames)), True))
    return Scene(
        pixels,
        base.photometric,
        base.bits_stored,
        base.modality,
        texts,
        base.window,
        base.rescale,
        frames,
    )


# --------------------------------------------------------------------------------------------
# Scenes as DICOM datasets


def scene_dataset(
    scene: Scene,
    syntax: str = "1.2.840.10008.1.2.1",
    *,
    burned_in_annotation: str | None = "YES",
    sop_class_uid: str | None = None,
    ybr_422: bool = False,
) -> Dataset:
    """A DICOM dataset holding ``scene`` in transfer syntax ``syntax``.

    Native syntaxes, RLE, JPEG-LS and JPEG 2000 are encoded with pydicom; JPEG baseline with
    OpenCV (colour as YBR_FULL_422); JPEG Lossless SV1 with :func:`encode_jpeg_lossless_sv1`.
    ``ybr_422`` stores a native colour scene as YBR_FULL_422.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import (
        JPEG2000,
        UID,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        JPEGBaseline8Bit,
        JPEGLosslessSV1,
        JPEGLSNearLossless,
        SecondaryCaptureImageStorage,
        UltrasoundImageStorage,
        UltrasoundMultiFrameImageStorage,
        generate_uid,
    )

    pixels = scene.pixels
    colour = scene.photometric in ("RGB", "YBR_FULL")
    multi = pixels.ndim == (4 if colour else 3)
    frames = pixels if multi else pixels[None]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    if sop_class_uid is None:
        if scene.modality == "US":
            sop_class_uid = UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage
        else:
            sop_class_uid = SecondaryCaptureImageStorage
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Modality = scene.modality
    ds.PatientName = "SYNTHETIC^PATIENT"
    ds.PatientID = "SYN0001"
    if burned_in_annotation is not None:
        ds.BurnedInAnnotation = burned_in_annotation
    ds.Rows, ds.Columns = frames.shape[1], frames.shape[2]
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = scene.photometric
    if colour:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = scene.bits_stored
    ds.HighBit = scene.bits_stored - 1
    ds.PixelRepresentation = 1 if scene.signed else 0
    if multi:
        ds.NumberOfFrames = frames.shape[0]
    if scene.window is not None:
        ds.WindowCenter, ds.WindowWidth = scene.window
    if scene.rescale != (1.0, 0.0):
        ds.RescaleSlope, ds.RescaleIntercept = scene.rescale
        ds.RescaleType = "HU"
    native = {
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
    }
    if syntax in native:
        data = frames
        if ybr_422 and colour:
            data = _to_ybr_422(frames)
            ds.PhotometricInterpretation = "YBR_FULL_422"
        order = ">" if syntax == ExplicitVRBigEndian else "<"
        wanted = data.dtype.newbyteorder(">" if order == ">" else "<")
        raw = np.ascontiguousarray(data.astype(wanted)).tobytes()
        ds.PixelData = raw + (b"\x00" if len(raw) % 2 else b"")
        ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
        ds.file_meta.TransferSyntaxUID = UID(syntax)
        return ds
    if syntax == JPEGBaseline8Bit:
        fragments = []
        for frame in frames:
            if colour:
                bgr = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
                ok, buf = cv2.imencode(
                    ".jpg",
                    bgr,
                    [
                        cv2.IMWRITE_JPEG_QUALITY,
                        92,
                        cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                        cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
                    ],
                )
            else:
                ok, buf = cv2.imencode(
                    ".jpg", np.ascontiguousarray(frame), [cv2.IMWRITE_JPEG_QUALITY, 92]
                )
            assert ok
            fragments.append(buf.tobytes())
        ds.PixelData = encapsulate(fragments)
        ds["PixelData"].is_undefined_length = True
        ds["PixelData"].VR = "OB"
        if colour:
            ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.LossyImageCompression = "01"
        ds.file_meta.TransferSyntaxUID = UID(syntax)
        return ds
    if syntax == JPEGLosslessSV1:
        fragments = [encode_jpeg_lossless_sv1(frame, scene.bits_stored) for frame in frames]
        ds.PixelData = encapsulate(fragments)
        ds["PixelData"].is_undefined_length = True
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = UID(syntax)
        return ds
    array = pixels
    kwargs: dict[str, Any] = {}
    if syntax == JPEG2000:
        kwargs["j2k_cr"] = [8]
    if syntax == JPEGLSNearLossless:
        kwargs["jls_error"] = 2
    ds.PixelData = np.ascontiguousarray(frames).tobytes()
    ds.compress(syntax, np.ascontiguousarray(array), generate_instance_uid=False, **kwargs)
    return ds


def _to_ybr_422(frames: NDArray[np.generic]) -> NDArray[np.uint8]:
    """Native YBR_FULL_422 bytes (Y1 Y2 Cb Cr per pair of pixels) of RGB frames."""
    out = []
    for frame in frames:
        ycrcb = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YCrCb)
        y, cr, cb = ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2]
        quad = np.stack([y[:, 0::2], y[:, 1::2], cb[:, 0::2], cr[:, 0::2]], axis=-1)
        out.append(quad.reshape(frame.shape[0], -1))
    return np.stack(out).astype(np.uint8)


def encode_jpeg_lossless_sv1(frame: NDArray[np.generic], precision: int) -> bytes:
    """Encode one grey frame as JPEG Lossless, Process 14, first-order prediction (SV1).

    A small reference encoder (ITU T.81 Annex H) for tests: one component, predictor 1, point
    transform 0, one Huffman table whose codes come from the difference categories' counts.
    """
    if frame.ndim == 3:
        if frame.shape[2] != 1:
            raise ValueError("only grey frames")
        frame = frame[..., 0]
    rows, cols = frame.shape
    mask = (1 << precision) - 1
    x = frame.astype(np.int64) & mask  # two's complement of signed values, as stored
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[1:, 1:] = x[1:, :-1]
    diff = (x - pred) & 0xFFFF
    diff = np.where(diff >= 0x8000, diff - 0x10000, diff).ravel()
    magnitude = np.abs(diff)
    ssss = np.zeros_like(magnitude)
    nz = magnitude > 0
    ssss[nz] = np.floor(np.log2(magnitude[nz])).astype(np.int64) + 1
    ssss[diff == -32768] = 16
    # Huffman table from category frequencies (limited to 16 bits by construction: 17 symbols)
    counts = np.bincount(ssss, minlength=17)
    lengths = _huffman_lengths(counts)
    symbols = sorted((lengths[s], s) for s in range(17) if lengths[s] > 0)
    code = 0
    codes: dict[int, tuple[int, int]] = {}
    prev_len = symbols[0][0]
    bits_count = [0] * 16
    for length, symbol in symbols:
        code <<= length - prev_len
        prev_len = length
        codes[symbol] = (code, length)
        bits_count[length - 1] += 1
        code += 1
    out = bytearray()
    acc = 0
    nbits = 0
    for value, cat in zip(diff.tolist(), ssss.tolist()):
        c, length = codes[cat]
        acc = (acc << length) | c
        nbits += length
        if cat and cat < 16:
            extra = value if value > 0 else value + (1 << cat) - 1
            acc = (acc << cat) | (extra & ((1 << cat) - 1))
            nbits += cat
        while nbits >= 8:
            nbits -= 8
            byte = (acc >> nbits) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0)
        acc &= (1 << nbits) - 1
    if nbits:
        byte = ((acc << (8 - nbits)) | ((1 << (8 - nbits)) - 1)) & 0xFF
        out.append(byte)
        if byte == 0xFF:
            out.append(0)
    header = bytearray(b"\xff\xd8")
    sof = (
        bytes([precision]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + b"\x01\x01\x11\x00"
    )
    header += b"\xff\xc3" + (len(sof) + 2).to_bytes(2, "big") + sof
    dht = b"\x00" + bytes(bits_count) + bytes(s for _, s in symbols)
    header += b"\xff\xc4" + (len(dht) + 2).to_bytes(2, "big") + dht
    sos = b"\x01\x01\x00\x01\x00\x00"
    header += b"\xff\xda" + (len(sos) + 2).to_bytes(2, "big") + sos
    return bytes(header + out + b"\xff\xd9")


def _huffman_lengths(counts: NDArray[np.int64]) -> list[int]:
    """Code lengths of a Huffman code for ``counts`` (symbols with count 0 get no code), with no
    all-ones code: a dummy symbol takes the longest code, as T.81 K.2 requires."""
    import heapq

    items = [(int(c), [s]) for s, c in enumerate(counts) if c > 0]
    items.append((0, [-1]))  # reserved: keeps the all-ones code unused
    lengths = [0] * (len(counts) + 1)
    if len(items) == 1:
        lengths[items[0][1][0]] = 1
        return lengths[:-1]
    heap = [(c, i, syms) for i, (c, syms) in enumerate(items)]
    heapq.heapify(heap)
    tie = len(heap)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (c1 + c2, tie, s1 + s2))
        tie += 1
    return lengths[:-1]
