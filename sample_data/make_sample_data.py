"""Generate the synthetic sample archive in ``sample_data/archive`` (no real patient data).

Usage::

    python sample_data/make_sample_data.py [--out sample_data/archive]

The output is deterministic: the same bytes on every run (UIDs come from fixed seeds, dates are
fixed, random bytes are seeded). The default output folder is replaced; another non-empty folder
is replaced only with ``--force``. See README.md for what is planted where.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from deid.testing.synthetic import (
    PATIENTS,
    Series,
    Study,
    broken_files,
    build_cr_image,
    build_ct_image,
    build_dx_image,
    build_encapsulated_cda,
    build_encapsulated_pdf,
    build_enhanced_mr,
    build_mr_image,
    build_sc_image,
    build_sr_document,
    build_us_image,
    build_us_multiframe,
    encode,
    with_transfer_syntax,
    write_dicomdir,
)

DEFAULT_OUT = Path(__file__).resolve().parent / "archive"

QUIMBY, MUELLER, NGUYEN, WANG, YAMADA = PATIENTS

STUDIES = {
    "s1": Study(
        seed="sample-s1", accession_number="ACC24031501", study_id="101", description="CT THORAX"
    ),
    "s2": Study(
        seed="sample-s2",
        accession_number="ACC24060302",
        study_id="102",
        description="US ABDOMEN",
        study_date="20240603",
        study_time="083000",
    ),
    "s3": Study(
        seed="sample-s3",
        accession_number="ACC23111703",
        study_id="201",
        description="XR CHEST",
        study_date="20231117",
        study_time="141000",
        institution_name="Ostwald Imaginary Klinik",
        institution_address="Nirgendweg 12, Phantasiestadt",
        referring_physician="Grünwald^Ottilie^^Dr.",
        performing_physician="Faßbinder^Jörg",
        operator="Lämmle^Käthe",
        station_name="OIK-DR-02",
        device_serial_number="SN-OIK-9918",
    ),
    "s4": Study(
        seed="sample-s4",
        accession_number="ACC24020904",
        study_id="301",
        description="CT HEAD",
        study_date="20240209",
        study_time="093000",
    ),
    "s5": Study(
        seed="sample-s5",
        accession_number="ACC24071105",
        study_id="401",
        description="MR KNEE",
        study_date="20240711",
        study_time="160500",
    ),
    "s6": Study(
        seed="sample-s6",
        accession_number="ACC24090906",
        study_id="501",
        description="CT ABDOMEN",
        study_date="20240909",
        study_time="110000",
    ),
}


def build_archive() -> tuple[dict[str, Dataset], list[Dataset]]:
    """Every sample instance by relative path, and the instances of the DICOMDIR file-set."""
    files: dict[str, Dataset] = {}
    ts = with_transfer_syntax

    # Patient 1 (default repertoire), study 1: CT, MR referencing it, SC, SR, PDF.
    s1 = STUDIES["s1"]
    ct = [build_ct_image(QUIMBY, Series(s1, 1, "CT thorax axial"), i) for i in (1, 2, 3)]
    mr = [build_mr_image(QUIMBY, Series(s1, 2, "MR thorax"), i, references=ct[:2]) for i in (1, 2)]
    base = "patient01/study01"
    files[f"{base}/ct/IM0001.dcm"] = ct[0]
    files[f"{base}/ct/IM0002.dcm"] = ts(ct[1], ImplicitVRLittleEndian)
    files[f"{base}/ct/IM0003.dcm"] = ts(ct[2], DeflatedExplicitVRLittleEndian)
    files[f"{base}/mr/IM0001.dcm"] = ts(mr[0], JPEGLSLossless)
    files[f"{base}/mr/IM0002.dcm"] = ts(mr[1], JPEG2000Lossless)
    files[f"{base}/sc/IM0001.dcm"] = ts(
        build_sc_image(QUIMBY, Series(s1, 3, "Dose screen"), references=[ct[0]]), RLELossless
    )
    files[f"{base}/sr/IM0001.dcm"] = build_sr_document(
        QUIMBY, Series(s1, 4, "Radiology report"), references=[ct[0], mr[0]]
    )
    files[f"{base}/doc/IM0001.dcm"] = build_encapsulated_pdf(
        QUIMBY, Series(s1, 5, "Scanned referral")
    )

    # Patient 1, study 2: US (burned in, JPEG Baseline), US clean, cine, enhanced MR, CDA.
    s2 = STUDIES["s2"]
    base = "patient01/study02"
    files[f"{base}/us/IM0001.dcm"] = ts(
        build_us_image(QUIMBY, Series(s2, 1, "US abdomen"), 1), JPEGBaseline8Bit
    )
    files[f"{base}/us/IM0002.dcm"] = build_us_image(
        QUIMBY, Series(s2, 1, "US abdomen"), 2, burned_in=False
    )
    files[f"{base}/us_cine/IM0001.dcm"] = ts(
        build_us_multiframe(QUIMBY, Series(s2, 2, "US cine")), JPEGBaseline8Bit
    )
    files[f"{base}/emr/IM0001.dcm"] = build_enhanced_mr(
        QUIMBY, Series(s2, 3, "Enhanced MR resampled"), references=mr
    )
    files[f"{base}/doc/IM0001.dcm"] = build_encapsulated_cda(QUIMBY, Series(s2, 4, "CDA report"))

    # Patient 2 (ISO_IR 100): CR, DX, grey SC.
    s3 = STUDIES["s3"]
    base = "patient02/study01"
    files[f"{base}/cr/IM0001.dcm"] = build_cr_image(MUELLER, Series(s3, 1, "CR chest PA"))
    files[f"{base}/dx/IM0001.dcm"] = ts(
        build_dx_image(MUELLER, Series(s3, 2, "DX hand")), JPEG2000Lossless
    )
    files[f"{base}/sc/IM0001.dcm"] = ts(
        build_sc_image(MUELLER, Series(s3, 3, "Scanned film"), color=False), JPEGBaseline8Bit
    )

    # Patient 3 (ISO_IR 192): CT (RLE, Implicit), SR.
    s4 = STUDIES["s4"]
    base = "patient03/study01"
    ct4 = [build_ct_image(NGUYEN, Series(s4, 1, "CT head"), i) for i in (1, 2)]
    files[f"{base}/ct/IM0001.dcm"] = ts(ct4[0], RLELossless)
    files[f"{base}/ct/IM0002.dcm"] = ts(ct4[1], ImplicitVRLittleEndian)
    files[f"{base}/sr/IM0001.dcm"] = build_sr_document(
        NGUYEN, Series(s4, 2, "Report"), references=ct4
    )

    # Patient 5 (ISO 2022 IR 87): CT, DX, PDF.
    s6 = STUDIES["s6"]
    base = "patient05/study01"
    files[f"{base}/ct/IM0001.dcm"] = ts(
        build_ct_image(YAMADA, Series(s6, 1, "CT abdomen")), JPEGLSLossless
    )
    files[f"{base}/dx/IM0001.dcm"] = build_dx_image(YAMADA, Series(s6, 2, "DX abdomen"))
    files[f"{base}/doc/IM0001.dcm"] = build_encapsulated_pdf(YAMADA, Series(s6, 3, "Referral"))

    # Patient 4 (GB18030): a CD import with a DICOMDIR (MR, US burned in, SR).
    s5 = STUDIES["s5"]
    mr5 = [build_mr_image(WANG, Series(s5, 1, "MR knee"), i) for i in (1, 2)]
    cd = [
        mr5[0],
        ts(mr5[1], ExplicitVRLittleEndian),
        ts(build_us_image(WANG, Series(s5, 2, "US knee")), RLELossless),
        build_sr_document(WANG, Series(s5, 3, "Report"), references=mr5),
    ]
    return files, cd


def write_archive(out: Path, *, replace: bool = False) -> list[Path]:
    """Write the archive under ``out`` and broken inputs beside it, in ``out/../broken``;
    return the paths written.

    Non-empty folders are deleted first when ``replace`` is true, refused otherwise.
    """
    broken_out = out.parent / "broken"
    for folder in (out, broken_out):
        if folder.exists() and any(folder.iterdir()):
            if not replace:
                raise FileExistsError(f"{folder} is not empty (use --force to replace it).")
            shutil.rmtree(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    files, cd = build_archive()
    for rel, ds in files.items():
        written.append(_write(out / rel, encode(ds)))
    ct_source = files["patient01/study01/ct/IM0001.dcm"]
    for name, data in broken_files(ct_source, seed=7).items():
        written.append(_write(broken_out / name, data))
    dicomdir = write_dicomdir(out / "patient04_cd", cd, file_set_id="SAMPLECD")
    written += sorted(p for p in dicomdir.parent.rglob("*") if p.is_file())
    return written


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output folder (default: sample_data/archive, always replaced)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a non-empty output folder other than the default",
    )
    args = parser.parse_args(argv)
    replace = args.force or args.out.resolve() == DEFAULT_OUT
    try:
        written = write_archive(args.out, replace=replace)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files, {total / 1e6:.2f} MB, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
