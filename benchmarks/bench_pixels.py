"""Pixel-step benchmark: deid's burned-in text masking against whole-frame Tesseract OCR, on the
same synthetic frames, in one run.

Usage::

    /work/venv/bin/python benchmarks/bench_pixels.py [--count 20] [--skip-baseline] [--ct 30]

Frames (``deid.pixels._scenes``, seeded): ultrasound (grey and colour, 640x480), secondary
capture (RGB, 640x480), radiographs (12-bit, MONOCHROME2 and MONOCHROME1, 512x512; text at 0 or
4095, or at any value for "CR any value") and CT slices (int16, window 40/400, "CT any value":
text above, inside and below the window, and at low contrasts) with known text boxes: names,
IDs, dates, times, labels and measurements in six Hershey fonts, sizes 0.4 to 1.1, grey levels,
light text on dark and dark text on light areas, over plain background and over image content.
A frame deid refuses (Burned In Annotation YES and nothing found) counts as nothing masked.

For each frame: deid (``clean_pixels``, ``--redact all-text``) and the peer method, which is what
presidio-image-redactor does: ``pytesseract.image_to_data`` on the whole 8-bit frame as displayed
(deep frames through their first window) and every word box masked. Both are measured on the
same decoded frames:

- recall: planted texts whose every ink pixel lies in a masked box, over planted texts;
- over-masking: changed pixels farther than 4 pixels from every planted text box, over all pixels;
- frames per second (the pixel step alone; the peer's time is its OCR call and masking).

Then: a 20-frame ultrasound cine (static text plus a changing clock) against one of its frames,
and uncompressed CT slices without text (``--pixels auto`` scans them, BurnedInAnnotation being
absent) against the header-only path, both through ``deid.task.run_task`` (read, header, pixels,
write).

Goals: recall >= 99 %, over-masking < 1 %, >= 10 x the whole-frame OCR frames per second; the
20-frame cine < 3 x a single frame; CT without text <= 1.5 x the header-only path.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from deid.config import PixelMode, RedactMode
from deid.errors import PixelError
from deid.identifiers import Identifiers
from deid.pixels import PixelContext, _clean, _scenes
from deid.pixels.frames import decode, rendering, views
from deid.pixels.redact import MARGIN
from deid.results import PixelOutcome

GOAL_RECALL = 0.99
GOAL_OVERMASK = 0.01
GOAL_SPEEDUP = 10.0
GOAL_CINE = 3.0
GOAL_CT = 1.5

Factory = Callable[[np.random.Generator], _scenes.Scene]

SCENES: dict[str, Factory] = {
    "US grey": lambda rng: _scenes.ultrasound(rng),
    "US colour": lambda rng: _scenes.ultrasound(rng, colour=True),
    "SC RGB": lambda rng: _scenes.secondary_capture(rng),
    "DX 12-bit": lambda rng: _scenes.radiograph(rng),
    "DX MONO1": lambda rng: _scenes.radiograph(rng, monochrome1=True),
    "CR any value": lambda rng: _scenes.radiograph(rng, monochrome1=True, any_value=True),
    "CT any value": lambda rng: _scenes.ct_with_text(rng),
}


def context_for(ds: object) -> PixelContext:
    return PixelContext(
        burned_in_annotation="YES",
        modality=str(ds.Modality),  # type: ignore[attr-defined]
        sop_class_uid=str(ds.SOPClassUID),
        manufacturer="",
        model="",  # type: ignore[attr-defined]
        identifiers=Identifiers(),
    )


def planted_union(scene: _scenes.Scene, rows: int, cols: int, grow: int) -> np.ndarray:
    union = np.zeros((rows, cols), bool)
    for text in scene.texts:
        x, y, w, h = text.box
        union[max(0, y - grow) : y + h + grow, max(0, x - grow) : x + w + grow] = True
    return union


def score(
    scene: _scenes.Scene,
    masked: list[tuple[int, int, int, int]],
    before: np.ndarray,
    after: np.ndarray,
) -> tuple[int, int, float]:
    """(recalled texts, planted texts, over-masked fraction) for one frame."""
    rows, cols = before.shape[1:3]
    cover = np.zeros((rows, cols), bool)
    for x, y, w, h in masked:
        cover[max(0, y) : max(0, y + h), max(0, x) : max(0, x + w)] = True
    recalled = sum(1 for t in scene.texts if cover[t.ink].all())
    changed = (before != after).reshape(before.shape[0], rows, cols, -1).any(axis=(0, 3))
    outside = changed & ~planted_union(scene, rows, cols, 4)
    return recalled, len(scene.texts), float(outside.sum()) / (rows * cols)


def run_deid(scene: _scenes.Scene) -> tuple[float, int, int, float, int]:
    ds = _scenes.scene_dataset(scene)
    before = decode(ds).frames.copy()
    start = time.perf_counter()
    try:
        outcome = _clean(
            ds, context_for(ds), mode=PixelMode.AUTO, redact=RedactMode.ALL_TEXT, reader=None
        )
    except PixelError:  # Burned In Annotation YES and nothing found: refused, nothing masked
        outcome = PixelOutcome(scanned=True)
    elapsed = time.perf_counter() - start
    after = decode(ds).frames
    masked = [(b.x, b.y, b.width, b.height) for b in outcome.boxes if not b.kept]
    recalled, planted, over = score(scene, masked, before, after)
    return elapsed, recalled, planted, over, len(masked)


def run_whole_frame_ocr(scene: _scenes.Scene) -> tuple[float, int, int, float]:
    """presidio-image-redactor's method: OCR the whole frame, mask every word box."""
    import pytesseract

    ds = _scenes.scene_dataset(scene)
    pixels = decode(ds)
    before = pixels.frames.copy()
    start = time.perf_counter()
    view = views(pixels, rendering(ds))[0]
    data = pytesseract.image_to_data(view, output_type=pytesseract.Output.DICT)
    masked = []
    for i, text in enumerate(data["text"]):
        if str(text).strip():
            # the same margin deid adds around its boxes
            box = (
                int(data["left"][i]) - MARGIN,
                int(data["top"][i]) - MARGIN,
                int(data["width"][i]) + 2 * MARGIN,
                int(data["height"][i]) + 2 * MARGIN,
            )
            masked.append(box)
            x, y, w, h = box
            x, y = max(0, x), max(0, y)
            fill = np.median(
                pixels.frames[:, max(0, y - 1) : y + h + 1, max(0, x - 1) : x + w + 1], axis=(1, 2)
            ).astype(pixels.frames.dtype)
            pixels.frames[:, y : y + h, x : x + w] = fill[:, None, None, :]
    elapsed = time.perf_counter() - start
    recalled, planted, over = score(scene, masked, before, pixels.frames)
    return elapsed, recalled, planted, over


def bench_frames(count: int, baseline: bool, verbose: bool) -> bool:
    print(f"\n== single frames: {count} per kind, --redact all-text ==")
    header = f"{'kind':<11} {'method':<15} {'recall':>12} {'over-mask':>10} {'fps':>8}"
    print(header)
    totals = {"deid": [0, 0, 0.0, 0.0, 0], "ocr": [0, 0, 0.0, 0.0, 0]}
    for kind, factory in SCENES.items():
        rows = {"deid": [0, 0, 0.0, 0.0], "ocr": [0, 0, 0.0, 0.0]}
        for seed in range(count):
            scene = factory(np.random.default_rng(1000 + seed))
            t, r, p, o, _n = run_deid(scene)
            for key, value in zip(range(4), (r, p, o, t)):
                rows["deid"][key] += value
            if verbose and r < p:
                print(f"   missed in {kind} seed {1000 + seed}: {p - r} of {p}")
            if baseline:
                t, r, p, o = run_whole_frame_ocr(scene)
                for key, value in zip(range(4), (r, p, o, t)):
                    rows["ocr"][key] += value
        for method in ("deid", "ocr") if baseline else ("deid",):
            r, p, o, t = rows[method]
            label = "deid" if method == "deid" else "whole-frame OCR"
            print(
                f"{kind:<11} {label:<15} {r:>5}/{p:<4} {100 * r / max(p, 1):5.1f}% "
                f"{100 * o / count:8.3f}% {count / t:8.1f}"
            )
            totals[method][0] += r
            totals[method][1] += p
            totals[method][2] += o
            totals[method][3] += t
            totals[method][4] += count
    ok = True
    print("-" * len(header))
    for method in ("deid", "ocr") if baseline else ("deid",):
        r, p, o, t, n = totals[method]
        label = "deid" if method == "deid" else "whole-frame OCR"
        print(
            f"{'all':<11} {label:<15} {r:>5}/{p:<4} {100 * r / max(p, 1):5.1f}% "
            f"{100 * o / n:8.3f}% {n / t:8.1f}"
        )
    r, p, o, t, n = totals["deid"]
    recall, over = r / max(p, 1), o / n
    ok &= _goal("recall", recall >= GOAL_RECALL, f"{100 * recall:.1f} % (goal >= 99 %)")
    ok &= _goal("over-masking", over < GOAL_OVERMASK, f"{100 * over:.3f} % (goal < 1 %)")
    if baseline:
        speedup = (n / t) / (totals["ocr"][4] / totals["ocr"][3])
        ok &= _goal(
            "speed vs whole-frame OCR", speedup >= GOAL_SPEEDUP, f"{speedup:.1f} x (goal >= 10 x)"
        )
    return ok


def bench_cine(repeats: int) -> bool:
    print("\n== 20-frame ultrasound cine against one frame (deid, uncompressed) ==")
    cine = _scenes.cine(lambda rng: _scenes.ultrasound(rng), np.random.default_rng(7), 20)
    single = _scenes.Scene(
        cine.pixels[0].copy(),
        cine.photometric,
        cine.bits_stored,
        cine.modality,
        [t for t in cine.texts],
        cine.window,
        cine.rescale,
    )
    best = {}
    for name, scene in (("1 frame", single), ("20 frames", cine)):
        times = []
        for _ in range(repeats):
            elapsed, recalled, planted, over, _n = run_deid(scene)
            times.append(elapsed)
        best[name] = min(times)
        print(
            f"{name:<10} {1000 * best[name]:8.1f} ms   recall {recalled}/{planted}  "
            f"over-mask {100 * over:.3f} %"
        )
    ratio = best["20 frames"] / best["1 frame"]
    return _goal("cine cost", ratio < GOAL_CINE, f"{ratio:.2f} x one frame (goal < 3 x)")


def bench_ct(count: int, repeats: int) -> bool:
    from deid.api import make_config
    from deid.io import SourceFile
    from deid.task import FileTask, run_task

    print(f"\n== CT slices without text, 512x512 int16, {count} files, through run_task ==")
    key = bytes(range(32))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = root / "src"
        src.mkdir()
        for i in range(count):
            scene = _scenes.ct_slice(np.random.default_rng(i))
            ds = _scenes.scene_dataset(
                scene, burned_in_annotation=None, sop_class_uid="1.2.840.10008.5.1.4.1.1.2"
            )
            ds.save_as(src / f"ct{i:03d}.dcm", enforce_file_format=True)
        files = sorted(src.iterdir())
        results: dict[str, float] = {}
        scanned = 0
        for _ in range(repeats):
            for mode in ("never", "auto"):
                config = make_config(key=key, pixels=mode)
                out = root / f"out-{mode}-{time.perf_counter_ns()}"
                start = time.perf_counter()
                for path in files:
                    result = run_task(
                        FileTask(SourceFile(path, PurePosixPath(path.name)), out), config
                    )
                    if mode == "auto" and result.pixels is not None and result.pixels.scanned:
                        scanned += 1
                    if result.status.value != "written":
                        print(f"   {path.name}: {result.status.value} {result.reason}")
                elapsed = time.perf_counter() - start
                results[mode] = min(results.get(mode, float("inf")), elapsed)
    never, auto = results["never"], results["auto"]
    print(f"header only (--pixels never)   {1000 * never / count:7.2f} ms/file")
    print(
        f"header + scan (--pixels auto)  {1000 * auto / count:7.2f} ms/file "
        f"({scanned // repeats} of {count} scanned)"
    )
    return _goal(
        "CT without text",
        auto / never <= GOAL_CT,
        f"{auto / never:.2f} x header-only (goal <= 1.5 x)",
    )


def _goal(name: str, ok: bool, text: str) -> bool:
    print(f"  {'PASS' if ok else 'MISS'}  {name}: {text}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="Frames per kind.")
    parser.add_argument("--ct", type=int, default=30, help="CT files for the no-text check.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs (best counts).")
    parser.add_argument(
        "--skip-baseline",
        action="store_true",
        help="Do not run whole-frame OCR (faster, no speed ratio).",
    )
    parser.add_argument("--only", choices=("frames", "cine", "ct"), default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"deid pixel benchmark; OpenCV {cv2.__version__}, "
        f"{'no baseline' if args.skip_baseline else 'baseline: whole-frame Tesseract'}"
    )
    ok = True
    if args.only in (None, "frames"):
        ok &= bench_frames(args.count, not args.skip_baseline, args.verbose)
    if args.only in (None, "cine"):
        ok &= bench_cine(args.repeats)
    if args.only in (None, "ct"):
        ok &= bench_ct(args.ct, args.repeats)
    print("\nall goals met" if ok else "\nsome goals missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
