"""Build a deterministic, realistic folder of synthetic DICOM files for the benchmarks.

Usage::

    python benchmarks/make_bench_files.py --out benchmarks/_work/src --count 300

The archive looks like what a hospital export holds: mostly CT and MR slice series (512x512 and
256x256, 16-bit), some CR/DX radiographs, ultrasound images, secondary captures, enhanced
(multi-frame) MR and structured reports, for several patients and studies. Every instance carries
planted PHI in standard, nested (sequence) and private elements, overlays, curves, icons and UN
elements (see :mod:`deid.testing.synthetic`). Most files are Explicit VR Little Endian; some
series are Implicit VR Little Endian, some JPEG-LS or RLE Lossless compressed.

Files are laid out as ``patNN/studyNNN/seriesNN/IMnnnn.dcm``. The same ``--count`` and ``--seed``
always give the same bytes. Every value is invented (no real person or institution).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
    RLELossless,
)

from deid.testing import synthetic as syn


@dataclass(frozen=True)
class SeriesPlan:
    """One series to build: its kind, size, count and transfer syntax."""

    patient: syn.Patient
    series: syn.Series
    kind: str
    count: int
    rows: int = 0
    columns: int = 0
    transfer_syntax: str = ExplicitVRLittleEndian


def _study(index: int, rng: random.Random) -> syn.Study:
    """An invented study, its date and accession number varying with ``index``."""
    month = 1 + index % 12
    day = 1 + (index * 7) % 28
    return syn.Study(
        seed=f"bench-study-{index}",
        accession_number=f"ACCB{index:05d}",
        study_id=str(index + 1),
        description=rng.choice(["CHEST", "HEAD", "ABDOMEN", "PELVIS", "SPINE"]),
        study_date=f"2024{month:02d}{day:02d}",
        study_time=f"{8 + index % 10:02d}{(index * 13) % 60:02d}00",
    )


def _syntax(rng: random.Random) -> str:
    """Transfer syntax of a slice series: 75% explicit, 10% implicit, 15% lossless compressed."""
    roll = rng.random()
    if roll < 0.75:
        return ExplicitVRLittleEndian
    if roll < 0.85:
        return ImplicitVRLittleEndian
    return JPEGLSLossless if roll < 0.95 else RLELossless


def _study_series(
    kind: str, patient: syn.Patient, study: syn.Study, rng: random.Random
) -> list[SeriesPlan]:
    """The series of one study of ``kind`` (ct, mr, xray or us)."""
    plans: list[SeriesPlan] = []

    def add(kind: str, n: int, rows: int = 0, columns: int = 0,
            ts: str = ExplicitVRLittleEndian, description: str = "") -> None:
        series = syn.Series(study, len(plans) + 1, description or kind.upper())
        plans.append(SeriesPlan(patient, series, kind, n, rows, columns, ts))

    if kind == "ct":
        add("ct", rng.randint(12, 24), 512, 512, _syntax(rng), "CT axial")
        add("ct", rng.randint(4, 8), 256, 256, _syntax(rng), "CT thick")
        add("sc", 1, 192, 256, description="Dose screen")
        add("sr", 1, description="Report")
    elif kind == "mr":
        add("mr", rng.randint(8, 14), 256, 256, _syntax(rng), "MR T1")
        add("mr", rng.randint(8, 14), 256, 256, _syntax(rng), "MR T2")
        if rng.random() < 0.6:
            add("mr", rng.randint(6, 10), 512, 512, _syntax(rng), "MR hi-res")
        add("enhanced_mr", 1, 128, 128, description="Enhanced MR")
        add("sr", 1, description="Report")
    elif kind == "xray":
        add("cr", rng.randint(1, 2), 512, 512, description="CR chest")
        add("dx", rng.randint(1, 2), 512, 512, description="DX hand")
        add("sr", 1, description="Report")
    else:
        add("us", rng.randint(2, 4), 240, 320, description="US abdomen")
        add("us_clean", 1, 240, 320, description="US clean")
        add("sc", 1, 192, 256, description="Screen capture")
    return plans


def plan_series(count: int, seed: int = 0) -> list[SeriesPlan]:
    """The series making up ``count`` files (the last series is cut to fit)."""
    rng = random.Random(seed)
    plans: list[SeriesPlan] = []
    total = 0
    index = 0
    while total < count:
        patient = syn.PATIENTS[index % len(syn.PATIENTS)]
        study = _study(index, rng)
        kind = ("ct", "mr", "xray", "ct", "mr", "us")[index % 6]
        for plan in _study_series(kind, patient, study, rng):
            take = min(plan.count, count - total)
            if take <= 0:
                break
            plans.append(replace(plan, count=take))
            total += take
        index += 1
    return plans


def _builder(plan: SeriesPlan) -> Callable[[int], Dataset]:
    p, s, r, c = plan.patient, plan.series, plan.rows, plan.columns
    builders: dict[str, Callable[[int], Dataset]] = {
        "ct": lambda i: syn.build_ct_image(p, s, i, rows=r, columns=c),
        "mr": lambda i: syn.build_mr_image(p, s, i, rows=r, columns=c),
        "cr": lambda i: syn.build_cr_image(p, s, i, rows=r, columns=c),
        "dx": lambda i: syn.build_dx_image(p, s, i, rows=r, columns=c),
        "us": lambda i: syn.build_us_image(p, s, i, rows=r, columns=c),
        "us_clean": lambda i: syn.build_us_image(p, s, i, rows=r, columns=c, burned_in=False),
        "sc": lambda i: syn.build_sc_image(p, s, i, rows=r, columns=c),
        "enhanced_mr": lambda i: syn.build_enhanced_mr(p, s, i, frames=8, rows=r, columns=c),
        "sr": lambda i: syn.build_sr_document(p, s, i),
    }
    return builders[plan.kind]


def generate(out: Path, count: int, seed: int = 0) -> Iterator[tuple[Path, str]]:
    """Write ``count`` files under ``out``; yield each path and its kind."""
    patient_numbers = {p.patient_id: n for n, p in enumerate(syn.PATIENTS)}
    study_numbers: dict[str, int] = {}
    for plan in plan_series(count, seed):
        study = plan.series.study
        study_numbers.setdefault(study.seed, len(study_numbers))
        folder = (out / f"pat{patient_numbers[plan.patient.patient_id]:02d}"
                  / f"study{study_numbers[study.seed]:03d}" / f"series{plan.series.number:02d}")
        folder.mkdir(parents=True, exist_ok=True)
        build = _builder(plan)
        for instance in range(1, plan.count + 1):
            ds = build(instance)
            if plan.transfer_syntax != ExplicitVRLittleEndian:
                ds = syn.with_transfer_syntax(ds, plan.transfer_syntax)
            path = folder / f"IM{instance:04d}.dcm"
            path.write_bytes(syn.encode(ds))
            yield path, plan.kind


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder to create (must be empty).")
    parser.add_argument("--count", type=int, default=300, help="Number of files (default 300).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the series plan.")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    kinds: Counter[str] = Counter()
    size = 0
    for path, kind in generate(args.out, args.count, args.seed):
        kinds[kind] += 1
        size += path.stat().st_size
    elapsed = time.perf_counter() - start
    summary = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
    print(f"Wrote {sum(kinds.values())} files ({size / 2**20:.1f} MiB) to {args.out} "
          f"in {elapsed:.1f} s: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
