"""The synthetic builders: round trips, planted PHI, character sets, transfer syntaxes, broken
inputs, the DICOMDIR, dciodvfy conformance and the sample archive being up to date."""

from __future__ import annotations

import filecmp
import importlib.util
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.fileset import FileSet
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from deid.testing import (
    ACME_CREATOR,
    LOSSLESS_TRANSFER_SYNTAXES,
    PATIENTS,
    SIEMENS_CREATOR,
    UID_ROOT,
    Patient,
    Series,
    Study,
    annotated_frame,
    broken_files,
    build_all,
    build_ct_image,
    build_enhanced_mr,
    build_us_image,
    burn_text,
    encode,
    make_uid,
    with_transfer_syntax,
    write_dicomdir,
)

REPO = Path(__file__).resolve().parents[1]
STUDY = Study(seed="test-study", accession_number="ACCTEST0001")
BUILDERS = [
    "ct",
    "mr",
    "cr",
    "dx",
    "us",
    "us_clean",
    "us_cine",
    "sc",
    "sc_grey",
    "enhanced_mr",
    "sr",
    "pdf",
    "cda",
]
IMAGES = ["ct", "mr", "cr", "dx", "us", "us_cine", "sc", "sc_grey", "enhanced_mr"]


@pytest.fixture(scope="module")
def instances() -> dict[str, Dataset]:
    return build_all(PATIENTS[0], STUDY)


def reread(ds: Dataset) -> Dataset:
    return pydicom.dcmread(io.BytesIO(encode(ds)))


def text_values(ds: Dataset) -> Iterator[str]:
    """Every value of ``ds`` (nested too) as text; bytes decoded as Latin-1."""
    for elem in ds.iterall():
        if elem.VR == "SQ":
            continue
        value = elem.value
        yield value.decode("latin-1") if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("key", BUILDERS)
def test_builder_round_trips(instances: dict[str, Dataset], key: str) -> None:
    ds = instances[key]
    back = reread(ds)
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert back.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert back.SOPInstanceUID == ds.SOPInstanceUID
    assert back.SOPClassUID == ds.SOPClassUID
    assert str(back.PatientName) == PATIENTS[0].name
    assert back.StudyInstanceUID == STUDY.study_instance_uid
    assert back.SOPInstanceUID.startswith(UID_ROOT)
    if "PixelData" in ds:
        assert np.array_equal(back.pixel_array, ds.pixel_array)


def test_builders_are_deterministic() -> None:
    first = {k: encode(v) for k, v in build_all(PATIENTS[1], STUDY).items()}
    second = {k: encode(v) for k, v in build_all(PATIENTS[1], STUDY).items()}
    assert first == second
    assert make_uid("a", 1) == make_uid("a", 1) != make_uid("a", 2)
    assert len(make_uid("x" * 500)) <= 64


def test_instances_share_uids_and_reference_each_other(instances: dict[str, Dataset]) -> None:
    ct, mr, sr, emr = instances["ct"], instances["mr"], instances["sr"], instances["enhanced_mr"]
    assert len({ds.StudyInstanceUID for ds in instances.values()}) == 1
    assert instances["us"].SeriesInstanceUID == instances["us_clean"].SeriesInstanceUID
    assert instances["us"].SOPInstanceUID != instances["us_clean"].SOPInstanceUID
    assert ct.SeriesInstanceUID != mr.SeriesInstanceUID
    assert ct.FrameOfReferenceUID == mr.FrameOfReferenceUID == emr.FrameOfReferenceUID
    assert mr.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ct.SOPInstanceUID
    assert instances["sc"].SourceImageSequence[0].ReferencedSOPInstanceUID == ct.SOPInstanceUID
    derivation = emr.SharedFunctionalGroupsSequence[0].DerivationImageSequence[0]
    assert derivation.SourceImageSequence[0].ReferencedSOPInstanceUID == mr.SOPInstanceUID
    assert emr.ReferencedSeriesSequence[0].SeriesInstanceUID == mr.SeriesInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    cited = {
        sop.ReferencedSOPInstanceUID
        for series in evidence.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    assert cited == {ct.SOPInstanceUID, mr.SOPInstanceUID, instances["us"].SOPInstanceUID}
    images = [
        item
        for container in sr.ContentSequence
        if "ContentSequence" in container
        for item in container.ContentSequence
        if item.ValueType == "IMAGE"
    ]
    assert {i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images} == cited


def test_enhanced_mr_functional_groups(instances: dict[str, Dataset]) -> None:
    emr = reread(instances["enhanced_mr"])
    frames = int(emr.NumberOfFrames)
    assert frames == 4
    assert emr.pixel_array.shape == (frames, emr.Rows, emr.Columns)
    per_frame = emr.PerFrameFunctionalGroupsSequence
    assert len(per_frame) == frames
    content = [item.FrameContentSequence[0] for item in per_frame]
    assert [c.InStackPositionNumber for c in content] == list(range(1, frames + 1))
    assert all(c.FrameAcquisitionDateTime.startswith(STUDY.study_date) for c in content)
    assert len(emr.DimensionIndexSequence) == 2
    assert [list(c.DimensionIndexValues) for c in content][1] == [1, 2]


# --------------------------------------------------------------------------- planted PHI


@pytest.mark.parametrize("key", BUILDERS)
def test_every_phi_string_is_planted(instances: dict[str, Dataset], key: str) -> None:
    back = reread(instances[key])
    blob = "\n".join(text_values(back))
    missing = [value for value in STUDY.phi_strings(PATIENTS[0]) if value not in blob]
    assert missing == []


def test_phi_strings_lists_the_identity() -> None:
    yamada = PATIENTS[4]
    strings = yamada.phi_strings()
    for expected in (
        yamada.name,
        "Yamada",
        "Tarou",
        "山田",
        "太郎",
        "やまだ",
        "たろう",
        yamada.patient_id,
        yamada.birth_date,
        yamada.address,
        yamada.phone,
        *yamada.other_ids,
    ):
        assert expected in strings
    study_strings = STUDY.phi_strings(yamada)
    assert set(strings) < set(study_strings)
    assert STUDY.accession_number in study_strings
    assert "Thorncastle" in study_strings


def test_phi_in_the_hard_places(instances: dict[str, Dataset]) -> None:
    patient = PATIENTS[0]
    ct = reread(instances["ct"])
    assert patient.patient_id in ct.StudyDescription
    assert patient.family_name in ct.ProtocolName
    assert patient.family_name in ct.AnatomicRegionSequence[0].CodeMeaning
    assert patient.given_name in ct.ImageComments
    assert patient.family_name in ct.DerivationDescription
    assert patient.display_name in (
        ct.RequestAttributesSequence[0].ScheduledProcedureStepDescription
    )
    assert [item.PatientID for item in ct.OtherPatientIDsSequence] == list(patient.other_ids)
    # Private blocks.
    acme = ct.private_block(0x0009, ACME_CREATOR)
    assert acme[0x10].value == patient.display_name
    assert acme[0x11].value == patient.patient_id
    assert str(acme[0x13].value[0].PatientName) == patient.name
    assert patient.patient_id.encode() in acme[0x14].value
    assert acme[0x15].VR == "UN"
    siemens = ct.private_block(0x0019, SIEMENS_CREATOR)
    assert siemens[0x0C].value == 1000
    assert len(siemens[0x27].value) == 6
    assert siemens[0x50].value == patient.display_name
    # UN public element: written as UN, resolved to PN by pydicom on reading.
    raw = encode(instances["ct"])
    assert b"\x10\x00\x01\x10UN" in raw
    assert patient.family_name in str(ct[0x00101001].value)
    # Overlay with the name drawn in it, and its text attributes.
    overlay = ct.overlay_array(0x6000)
    assert overlay.shape == (ct.Rows, ct.Columns) and overlay.sum() > 20
    assert patient.display_name == ct[0x60001500].value
    assert patient.family_name in ct[0x60004000].value
    # Retired curve.
    assert ct[0x50000010].value == 32 and patient.display_name in ct[0x50000022].value
    icon = ct.IconImageSequence[0]
    assert (icon.Rows, icon.Columns, len(icon.PixelData)) == (16, 16, 256)


def test_documents_hold_the_name(instances: dict[str, Dataset]) -> None:
    patient = PATIENTS[0]
    pdf = reread(instances["pdf"])
    document = bytes(pdf.EncapsulatedDocument)
    assert document.startswith(b"%PDF-1.4") and document.rstrip(b"\x00").endswith(b"%%EOF\n")
    assert patient.display_name.encode() in document
    assert int(pdf.EncapsulatedDocumentLength) == len(document.rstrip(b"\x00"))
    cda = reread(instances["cda"])
    xml = bytes(cda.EncapsulatedDocument).decode("utf-8")
    assert f"<family>{patient.family_name}</family>" in xml
    sr = reread(instances["sr"])
    value_types = {item.ValueType for item in _walk_content(sr)}
    assert {"TEXT", "PNAME", "DATE", "UIDREF", "CONTAINER", "IMAGE", "CODE"} <= value_types
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == (STUDY.referring_physician)


def _walk_content(ds: Dataset) -> Iterator[Dataset]:
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _walk_content(item)


# --------------------------------------------------------------------------- character sets


@pytest.mark.parametrize("patient", PATIENTS, ids=lambda p: p.character_set or "default")
def test_character_sets_round_trip(patient: Patient) -> None:
    study = Study(seed=f"charset-{patient.patient_id}", accession_number="ACC1")
    for key, ds in build_all(patient, study).items():
        back = reread(ds)
        assert str(back.PatientName) == patient.name, key
        assert back.PatientAddress == patient.address, key
        assert back.ProtocolName.endswith(patient.family_name), key
    back = reread(build_ct_image(patient, Series(study, 1)))
    charset = back.get("SpecificCharacterSet")
    expected = patient.character_sets
    assert (
        list(charset)
        if isinstance(charset, pydicom.multival.MultiValue)
        else [charset]
        if charset
        else []
    ) == expected


def test_character_set_encodings_on_disk() -> None:
    latin, utf8, gb, jis = PATIENTS[1], PATIENTS[2], PATIENTS[3], PATIENTS[4]
    assert "Müller-Lüdenscheidt".encode("latin-1") in encode(build_ct_image(latin))
    assert "Nguyễn".encode() in encode(build_ct_image(utf8))
    assert "王^小东".encode("gb18030") in encode(build_ct_image(gb))
    raw = encode(build_ct_image(jis))
    assert b"Yamada^Tarou=\x1b$B" in raw  # ISO 2022 escape to JIS X 0208
    back = reread(build_ct_image(jis))
    assert back.PatientName.ideographic == "山田^太郎"
    assert back.PatientName.phonetic == "やまだ^たろう"


# --------------------------------------------------------------------------- transfer syntaxes


@pytest.mark.parametrize("key", IMAGES)
@pytest.mark.parametrize("uid", LOSSLESS_TRANSFER_SYNTAXES, ids=lambda u: u.name)
def test_lossless_transfer_syntaxes(instances: dict[str, Dataset], key: str, uid: str) -> None:
    ds = instances[key]
    converted = with_transfer_syntax(ds, uid)
    back = reread(converted)
    assert back.file_meta.TransferSyntaxUID == uid
    assert back.SOPInstanceUID == ds.SOPInstanceUID
    assert np.array_equal(back.pixel_array, ds.pixel_array)
    assert "PixelData" in ds and ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_uncompressed_encodings_differ_on_disk(instances: dict[str, Dataset]) -> None:
    ct = instances["ct"]
    explicit = encode(ct)
    implicit = encode(with_transfer_syntax(ct, ImplicitVRLittleEndian))
    deflated = encode(with_transfer_syntax(ct, DeflatedExplicitVRLittleEndian))
    assert b"\x10\x00\x10\x00PN" in explicit and b"\x10\x00\x10\x00PN" not in implicit
    assert len(deflated) < len(explicit) // 2
    assert PATIENTS[0].family_name.encode() not in deflated[400:]


@pytest.mark.parametrize("key", ["us", "us_cine", "sc", "sc_grey"])
def test_jpeg_baseline(instances: dict[str, Dataset], key: str) -> None:
    ds = instances[key]
    back = reread(with_transfer_syntax(ds, JPEGBaseline8Bit))
    color = int(ds.SamplesPerPixel) == 3
    assert back.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert back.PhotometricInterpretation == ("YBR_FULL_422" if color else "MONOCHROME2")
    assert back.LossyImageCompression == "01"
    arr = back.pixel_array  # converted to RGB by pydicom for colour
    assert arr.shape == ds.pixel_array.shape
    error = np.abs(arr.astype(int) - ds.pixel_array.astype(int))
    assert error.mean() < 4.0
    assert back.SOPInstanceUID == ds.SOPInstanceUID


def test_jpeg_baseline_refuses_16_bit(instances: dict[str, Dataset]) -> None:
    with pytest.raises(ValueError, match="8-bit"):
        with_transfer_syntax(instances["ct"], JPEGBaseline8Bit)
    with pytest.raises(ValueError, match="unsupported"):
        with_transfer_syntax(instances["ct"], "1.2.840.10008.1.2.4.91")


# --------------------------------------------------------------------------- burned-in text


def test_burn_text_box_covers_exactly_the_changed_pixels() -> None:
    arr = np.zeros((64, 128), dtype=np.uint16)
    box = burn_text(arr, "HELLO 123", (5, 30), 0.5, 4000)
    ys, xs = np.nonzero(arr)
    assert (box.x, box.y) == (xs.min(), ys.min())
    assert (box.width, box.height) == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert box.contains(int(xs[0]), int(ys[0])) and not box.contains(0, 0)
    assert set(np.unique(arr)) == {0, 4000}
    rgb = np.zeros((40, 80, 3), dtype=np.uint8)
    burn_text(rgb, "AB", (2, 20), 0.5, (255, 0, 7))
    assert set(map(tuple, rgb[rgb.any(axis=-1)])) == {(255, 0, 7)}
    with pytest.raises(ValueError):
        burn_text(arr, "X", (500, 500))


def test_us_burned_text_matches_annotated_frame(instances: dict[str, Dataset]) -> None:
    us = instances["us"]
    frame, boxes = annotated_frame(PATIENTS[0], STUDY, us.Rows, us.Columns, color=True)
    assert np.array_equal(us.pixel_array, frame)
    assert us.BurnedInAnnotation == "YES"
    assert [b.text for b in boxes][:2] == ["HAROLD QUIMBY", "ID QH480213"]
    for box in boxes:
        assert 0 <= box.x and box.x + box.width <= us.Columns
        assert 0 <= box.y and box.y + box.height <= us.Rows
        region = frame[box.y : box.y + box.height, box.x : box.x + box.width]
        assert (region == (255, 255, 0)).all(axis=-1).any()
    clean = instances["us_clean"]
    assert clean.BurnedInAnnotation == "NO"
    assert not (clean.pixel_array == (255, 255, 0)).all(axis=-1).any()
    cine = instances["us_cine"]
    assert cine.pixel_array.shape == (10, cine.Rows, cine.Columns, 3)
    assert not np.array_equal(cine.pixel_array[0], cine.pixel_array[5])


# --------------------------------------------------------------------------- broken inputs


def test_broken_files(instances: dict[str, Dataset], tmp_path: Path) -> None:
    broken = broken_files(instances["ct"])
    assert set(broken) == {
        "empty.dcm",
        "random.dcm",
        "truncated_header.dcm",
        "truncated_pixels.dcm",
        "no_meta.dcm",
        "bad_length.dcm",
        "notes.txt",
    }
    whole = encode(instances["ct"])
    assert broken["empty.dcm"] == b""
    assert broken["random.dcm"][128:132] != b"DICM" and len(broken["random.dcm"]) == 4096
    assert broken["notes.txt"].decode("ascii").startswith("This is not a DICOM file")
    for name in ("empty.dcm", "random.dcm", "no_meta.dcm", "notes.txt"):
        with pytest.raises(InvalidDicomError):
            pydicom.dcmread(io.BytesIO(broken[name]))
    # Without the Part 10 header the dataset itself is intact (implicit VR).
    raw = pydicom.dcmread(io.BytesIO(broken["no_meta.dcm"]), force=True)
    assert raw.SOPInstanceUID == instances["ct"].SOPInstanceUID
    # Truncations: in the header (no pixel data left) and in the pixel data.
    pixel_tag = whole.rfind(b"\xe0\x7f\x10\x00")
    assert len(broken["truncated_header.dcm"]) < pixel_tag
    assert pixel_tag < len(broken["truncated_pixels.dcm"]) < len(whole)
    cut = pydicom.dcmread(io.BytesIO(broken["truncated_pixels.dcm"]))
    with pytest.raises(ValueError):
        _ = cut.pixel_array
    # The corrupt length swallows the rest of the file: no pixel data is found.
    assert len(broken["bad_length.dcm"]) == len(whole)
    corrupt = pydicom.dcmread(io.BytesIO(broken["bad_length.dcm"]))
    assert "PixelData" not in corrupt
    assert broken_files(instances["ct"]) == broken  # deterministic


def test_dicomdir(instances: dict[str, Dataset], tmp_path: Path) -> None:
    chosen = [instances[k] for k in ("ct", "mr", "us", "sr")]
    path = write_dicomdir(tmp_path / "cd", chosen)
    fs = FileSet(pydicom.dcmread(path))
    assert {inst.SOPInstanceUID for inst in fs} == {ds.SOPInstanceUID for ds in chosen}
    directory = pydicom.dcmread(path)
    patient = directory.DirectoryRecordSequence[0]
    assert patient.DirectoryRecordType == "PATIENT"
    assert str(patient.PatientName) == PATIENTS[0].name
    files = sorted(p for p in (tmp_path / "cd").rglob("*") if p.is_file())
    assert len(files) == 5
    second = write_dicomdir(tmp_path / "cd2", chosen)
    assert path.read_bytes() == second.read_bytes()


# --------------------------------------------------------------------------- dciodvfy


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines dciodvfy prints for ``path``; fails loudly when it is missing."""
    binary = shutil.which("dciodvfy")
    assert binary is not None, "dciodvfy not found: install Debian package dicom3tools"
    result = subprocess.run([binary, str(path)], capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


@pytest.mark.dciodvfy
@pytest.mark.parametrize("key", BUILDERS)
def test_dciodvfy_reports_no_errors(
    instances: dict[str, Dataset], key: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{key}.dcm"
    instances[key].save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


@pytest.mark.dciodvfy
@pytest.mark.parametrize("patient", PATIENTS[1:], ids=lambda p: p.character_set)
def test_dciodvfy_accepts_character_sets(patient: Patient, tmp_path: Path) -> None:
    path = tmp_path / "ct.dcm"
    build_ct_image(patient).save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


@pytest.mark.dciodvfy
def test_dciodvfy_compressed_and_standalone(instances: dict[str, Dataset], tmp_path: Path) -> None:
    # Deflated is left out: Debian's dciodvfy is built without zlib and cannot read it
    # ("Tag read failed"); pydicom reads it back (see test_lossless_transfer_syntaxes).
    for uid in [*LOSSLESS_TRANSFER_SYNTAXES, JPEGBaseline8Bit]:
        if uid == DeflatedExplicitVRLittleEndian:
            continue
        path = tmp_path / f"us-{uid}.dcm"
        with_transfer_syntax(instances["us_cine"], uid).save_as(path, enforce_file_format=True)
        assert dciodvfy_errors(path) == [], uid.name
    alone = build_enhanced_mr(extras=False)
    path = tmp_path / "emr.dcm"
    alone.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []
    directory = write_dicomdir(tmp_path / "cd", [instances[k] for k in ("ct", "sr")])
    assert dciodvfy_errors(directory) == []
    path = tmp_path / "us-no-extras.dcm"
    build_us_image(extras=False).save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []


# --------------------------------------------------------------------------- sample archive


def test_sample_archive_is_up_to_date(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_sample_data", REPO / "sample_data" / "make_sample_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.write_archive(tmp_path / "archive")
    committed = REPO / "sample_data"
    rel = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert rel == sorted(
        p.relative_to(committed).as_posix()
        for folder in ("archive", "broken")
        for p in (committed / folder).rglob("*")
        if p.is_file()
    ), "sample_data/archive is stale: run python sample_data/make_sample_data.py"
    mismatch = [r for r in rel if not filecmp.cmp(tmp_path / r, committed / r, shallow=False)]
    assert mismatch == [], "sample_data/archive is stale: run sample_data/make_sample_data.py"
    assert len(rel) <= 60
    assert sum((committed / r).stat().st_size for r in rel) < 3_000_000
