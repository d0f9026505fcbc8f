"""deid.verify: the independent leak scan of an output folder against its sources.

Sources are built with pydicom here; each test makes a clean output by hand, checks that verify
passes it, then plants one leak and checks that verify finds it where it was planted, by kind,
without ever showing the value.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.datadict import keyword_dict
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from deid import verify
from deid.cli import main
from deid.errors import InputError, OutputError
from deid.testing import synthetic
from deid.verify import Hit, VerifyReport, verify_output

CT = "1.2.840.10008.5.1.4.1.1.2"
ROOT = "1.2.826.0.1.3680043.10.999.77."
STUDY_UID = ROOT + "1.20230704"
SERIES_UID = ROOT + "2.1"
SOP_UID = ROOT + "3.1.1"
FOR_UID = ROOT + "4.1"

#: Every identifying string of the source, as a person would search for it in a report.
PHI = (
    "Quintero", "Xavier", "Amadeo", "XQ771234", "19610312", "1961-03-12", "Brambleton",
    "Ashcombe", "7946 0321", "A99887766", "Wilbrord", "Okonkwo", "Ifeoma", STUDY_UID, SOP_UID,
    SERIES_UID, "20230704",
)


def make_source(**overrides: str) -> Dataset:
    """A small CT instance with the identifying values the tests plant elsewhere."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT
    meta.MediaStorageSOPInstanceUID = SOP_UID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = ROOT + "99"
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = SOP_UID
    ds.StudyDate = "20230704"
    ds.SeriesDate = "20230704"
    ds.ContentDate = "20230704"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "A99887766"
    ds.Modality = "CT"
    ds.InstitutionName = "Saint Wilbrord Infirmary"
    ds.ReferringPhysicianName = "Okonkwo^Ifeoma"
    ds.OperatorsName = "Roe^Ada"
    ds.StudyDescription = "CT CHEST"
    ds.SeriesDescription = "AXIAL 5MM"
    ds.PatientName = "Quintero^Xavier^Amadeo"
    ds.PatientID = "XQ771234"
    ds.PatientBirthDate = "19610312"
    ds.PatientSex = "M"
    ds.PatientAddress = "17 Brambleton Row, Ashcombe"
    ds.PatientTelephoneNumbers = "+44 20 7946 0321"
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = SERIES_UID
    ds.FrameOfReferenceUID = FOR_UID
    ds.StudyID = "4412"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImageComments = "routine follow-up"
    ds.Rows = 8
    ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(range(128))
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def clean_by_hand(source: Dataset) -> Dataset:
    """What a correct de-identifier could write for ``source`` (values replaced by hand)."""
    ds = copy.deepcopy(source)
    new = {STUDY_UID: "2.25.1111", SERIES_UID: "2.25.2222", SOP_UID: "2.25.3333",
           FOR_UID: "2.25.4444"}
    ds.file_meta.MediaStorageSOPInstanceUID = new[SOP_UID]
    ds.file_meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SOPInstanceUID = new[SOP_UID]
    ds.StudyInstanceUID = new[STUDY_UID]
    ds.SeriesInstanceUID = new[SERIES_UID]
    ds.FrameOfReferenceUID = new[FOR_UID]
    ds.PatientName = "ANON^K7Q2MZ4R"
    ds.PatientID = "ZK3P9QW2LM4X"
    ds.AccessionNumber = "B7TRQ2Z9"
    ds.ReferringPhysicianName = ""
    ds.OperatorsName = "ANON^Q2W7"
    for keyword in ("PatientBirthDate", "StudyDate", "SeriesDate", "ContentDate", "StudyID"):
        setattr(ds, keyword, "")
    for keyword in ("PatientAddress", "PatientTelephoneNumbers", "InstitutionName",
                    "ImageComments"):
        delattr(ds, keyword)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "hand-made for tests"
    return ds


def save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    """``(src, out)``: one source ``ct.dcm`` and its hand-cleaned output at the same path."""
    src, out = tmp_path / "src", tmp_path / "out"
    source = make_source()
    save(source, src / "ct.dcm")
    save(clean_by_hand(source), out / "ct.dcm")
    return src, out


def hits_of(report: VerifyReport) -> set[tuple[str, str, str]]:
    return {(h.output, h.location, h.kind) for h in report.hits}


def assert_no_value_shown(report: VerifyReport, values: tuple[str, ...] = PHI) -> None:
    text = report.describe() + "\n" + "\n".join(
        f"{h.output} {h.location} {h.kind}" for h in report.hits) + "\n" + "\n".join(
        report.unpaired)
    lowered = text.lower()
    for value in values:
        assert value.lower() not in lowered, "a source value appears in the verify report"


# --------------------------------------------------------------------------- clean outputs


def test_clean_output_passes(folders: tuple[Path, Path]) -> None:
    src, out = folders
    report = verify_output(out, [src])
    assert report.hits == ()
    assert report.files_checked == 1
    assert report.unpaired == ()
    assert report.sources_checked == 1
    assert "no identifying value found" in report.describe()


def test_source_copied_unchanged_is_full_of_hits(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    save(make_source(), src / "ct.dcm")
    shutil.copytree(src, out)
    report = verify_output(out, [src])
    kinds = {h.kind for h in report.hits}
    assert {"person name", "patient id", "accession number", "birth date", "address",
            "phone number", "institution", "uid", "date"} <= kinds
    locations = {h.location for h in report.hits}
    assert "(0010,0010) PatientName" in locations
    assert "(0002,0003) MediaStorageSOPInstanceUID" in locations
    assert "(0008,0020) StudyDate" in locations
    assert_no_value_shown(report)


def test_verify_reads_but_never_changes_the_outputs(folders: tuple[Path, Path]) -> None:
    src, out = folders
    before = hashlib.sha256((out / "ct.dcm").read_bytes()).hexdigest()
    verify_output(out, [src])
    assert hashlib.sha256((out / "ct.dcm").read_bytes()).hexdigest() == before


# --------------------------------------------------------------------------- planted leaks


def _nested_name(ds: Dataset) -> None:
    inner = Dataset()
    inner.ValueType = "PNAME"
    inner.PersonName = "QUINTERO^XAVIER"
    outer = Dataset()
    outer.ValueType = "CONTAINER"
    outer.ContentSequence = [inner]
    ds.ContentSequence = [outer]


def _private_id(ds: Dataset) -> None:
    ds.private_block(0x0011, "VERIFY TEST", create=True).add_new(0x10, "LO", "XQ771234")


def _spelled_birth_date(ds: Dataset) -> None:
    ds.ImageComments = "born 1961-03-12, seen today"


def _original_study_uid(ds: Dataset) -> None:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    item.ReferencedSOPInstanceUID = STUDY_UID
    ds.ReferencedStudySequence = [item]


def _name_in_ob(ds: Dataset) -> None:
    ds.private_block(0x0011, "VERIFY TEST", create=True).add_new(
        0x11, "OB", b"\x01\x02\x03quintero\x00\x07\x08\x09")


def _utf16_name_in_ob(ds: Dataset) -> None:
    ds.private_block(0x0011, "VERIFY TEST", create=True).add_new(
        0x12, "OB", b"\x00\xff" + "Quintero".encode("utf-16-le"))


def _name_in_pixels(ds: Dataset) -> None:
    pixels = bytearray(ds.PixelData)
    pixels[10:25] = b"QUINTERO^XAVIER"
    ds.PixelData = bytes(pixels)


def _date_in_series_date(ds: Dataset) -> None:
    ds.SeriesDate = "20230704"


def _phone_in_comments(ds: Dataset) -> None:
    ds.ImageComments = "call back on 020 7946 0321"


def _institution_in_station(ds: Dataset) -> None:
    ds.StationName = "WILBRORD CT2"


def _accession_in_text(ds: Dataset) -> None:
    ds.SeriesDescription = "AXIAL A99887766"


def _street_in_text(ds: Dataset) -> None:
    ds.StudyDescription = "CT CHEST (Brambleton Row)"


LEAKS: list[tuple[str, Callable[[Dataset], None], str, str]] = [
    ("name in a nested sequence", _nested_name,
     "(0040,A730) ContentSequence[0] > (0040,A730) ContentSequence[0] > (0040,A123) PersonName",
     "person name"),
    ("id in a private element", _private_id, "(0011,1010) private", "patient id"),
    ("birth date spelled in a comment", _spelled_birth_date, "(0020,4000) ImageComments",
     "birth date"),
    ("original study UID in a reference", _original_study_uid,
     "(0008,1110) ReferencedStudySequence[0] > (0008,1155) ReferencedSOPInstanceUID", "uid"),
    ("name in the bytes of an OB element", _name_in_ob, "(0011,1011) private", "person name"),
    ("name in UTF-16 in an OB element", _utf16_name_in_ob, "(0011,1012) private",
     "person name"),
    ("full name in pixel data", _name_in_pixels, "(7FE0,0010) PixelData", "person name"),
    ("original series date", _date_in_series_date, "(0008,0021) SeriesDate", "date"),
    ("phone number in a comment", _phone_in_comments, "(0020,4000) ImageComments",
     "phone number"),
    ("institution word in a station name", _institution_in_station, "(0008,1010) StationName",
     "institution"),
    ("accession number in a description", _accession_in_text, "(0008,103E) SeriesDescription",
     "accession number"),
    ("street of the address in a description", _street_in_text,
     "(0008,1030) StudyDescription", "address"),
]


@pytest.mark.parametrize(("plant", "location", "kind"), [leak[1:] for leak in LEAKS],
                         ids=[leak[0] for leak in LEAKS])
def test_planted_leak_is_found_where_it_was_planted(
    folders: tuple[Path, Path], plant: Callable[[Dataset], None], location: str, kind: str
) -> None:
    src, out = folders
    ds = pydicom.dcmread(out / "ct.dcm")
    plant(ds)
    save(ds, out / "ct.dcm")
    report = verify_output(out, [src])
    assert hits_of(report) == {("ct.dcm", location, kind)}
    assert_no_value_shown(report)


def test_short_name_part_is_found_in_text(folders: tuple[Path, Path]) -> None:
    src, out = folders
    ds = pydicom.dcmread(out / "ct.dcm")
    ds.SeriesDescription = "operator: Roe"
    save(ds, out / "ct.dcm")
    report = verify_output(out, [src])
    assert hits_of(report) == {("ct.dcm", "(0008,103E) SeriesDescription", "person name")}


def test_name_in_the_preamble_is_found_in_raw_bytes(folders: tuple[Path, Path]) -> None:
    src, out = folders
    ds = pydicom.dcmread(out / "ct.dcm")
    ds.preamble = b"\x00" * 16 + b"QUINTERO XAVIER" + b"\x00" * (128 - 31)
    save(ds, out / "ct.dcm")
    report = verify_output(out, [src])
    assert hits_of(report) == {("ct.dcm", "raw bytes @16", "person name")}


def test_name_in_the_file_name_is_found_and_masked(folders: tuple[Path, Path]) -> None:
    src, out = folders
    (out / "ct.dcm").rename(out / "Quintero_ct.dcm")
    report = verify_output(out, [src])
    # Not paired by path any more: checked against every source, and listed.
    assert hits_of(report) == {("***_ct.dcm", "file name", "person name")}
    assert report.unpaired == ("***_ct.dcm",)
    assert_no_value_shown(report)


def test_id_in_a_folder_name_is_found(folders: tuple[Path, Path]) -> None:
    src, out = folders
    (out / "XQ771234").mkdir()
    (out / "ct.dcm").rename(out / "XQ771234" / "ct.dcm")
    report = verify_output(out, [src])
    assert hits_of(report) == {("***/ct.dcm", "folder name", "patient id")}
    assert_no_value_shown(report)


def test_allow_dates_skips_dates_but_not_the_birth_date(folders: tuple[Path, Path]) -> None:
    src, out = folders
    ds = pydicom.dcmread(out / "ct.dcm")
    ds.StudyDate = "20230704"
    ds.PatientBirthDate = "19610312"
    save(ds, out / "ct.dcm")
    strict = verify_output(out, [src])
    assert hits_of(strict) == {("ct.dcm", "(0008,0020) StudyDate", "date"),
                               ("ct.dcm", "(0010,0030) PatientBirthDate", "birth date")}
    lenient = verify_output(out, [src], allow_dates=True)
    assert hits_of(lenient) == {("ct.dcm", "(0010,0030) PatientBirthDate", "birth date")}
    assert "date" in lenient.allowed_kinds


def test_allow_kinds_skips_uids(folders: tuple[Path, Path]) -> None:
    src, out = folders
    ds = pydicom.dcmread(out / "ct.dcm")
    ds.SeriesInstanceUID = SERIES_UID
    save(ds, out / "ct.dcm")
    assert hits_of(verify_output(out, [src])) == {
        ("ct.dcm", "(0020,000E) SeriesInstanceUID", "uid")}
    assert verify_output(out, [src], allow_kinds=["uid"]).hits == ()


def test_values_that_pixels_spell_by_chance_are_not_hits(folders: tuple[Path, Path]) -> None:
    """Short names, IDs and dates in pixel bytes are chance, not leaks: no false positive."""
    src, out = folders
    ds = pydicom.dcmread(out / "ct.dcm")
    pixels = bytearray(ds.PixelData)
    pixels[0:50] = b" 20230704 4412 XQ771234 1961-03-12 Roe 9 Ada Row  "
    ds.PixelData = bytes(pixels)
    save(ds, out / "ct.dcm")
    report = verify_output(out, [src])
    # Only the ID (8 characters, letters and digits) is long enough to count inside pixel data.
    assert hits_of(report) == {("ct.dcm", "(7FE0,0010) PixelData", "patient id")}


def test_truncated_output_is_unreadable(folders: tuple[Path, Path]) -> None:
    src, out = folders
    data = (out / "ct.dcm").read_bytes()
    (out / "ct.dcm").write_bytes(data[: len(data) - 40])
    report = verify_output(out, [src])
    assert ("ct.dcm", "file", "unreadable output") in hits_of(report)


def test_output_listed_in_report_but_not_dicom_is_unreadable(
    folders: tuple[Path, Path]
) -> None:
    src, out = folders
    (out / "ct.dcm").write_bytes(b"not a DICOM file at all\n")
    report_json = {"inputs": [{"source": "ct.dcm", "status": "written", "output": "ct.dcm"}]}
    (out / "report.json").write_text(json.dumps(report_json))
    report = verify_output(out, [src])
    assert hits_of(report) == {("ct.dcm", "file", "unreadable output")}


# --------------------------------------------------------------------------- character sets


def test_accented_name_is_found_in_every_encoding(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    source = make_source(PatientName="Müller^Renée")
    save(source, src / "ct.dcm")
    clean = clean_by_hand(source)
    clean.SpecificCharacterSet = "ISO_IR 100"
    clean.ImageComments = "seen by MÜLLER"
    block = clean.private_block(0x0011, "VERIFY TEST", create=True)
    block.add_new(0x11, "OB", b"\x01" + "Müller".encode() + b"\x02")
    block.add_new(0x12, "OB", b"\x01" + "Renée".encode("latin-1") + b"\x02\x03")
    save(clean, out / "ct.dcm")
    report = verify_output(out, [src])
    assert hits_of(report) == {
        ("ct.dcm", "(0020,4000) ImageComments", "person name"),
        ("ct.dcm", "(0011,1011) private", "person name"),
        ("ct.dcm", "(0011,1012) private", "person name"),
    }
    assert_no_value_shown(report, ("müller", "muller", "renée", "renee"))


def test_ideographic_name_is_found(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    source = make_source(PatientName="Yamada^Tarou=山田^太郎")
    save(source, src / "ct.dcm")
    clean = clean_by_hand(source)
    save(clean, out / "ct.dcm")
    assert verify_output(out, [src]).hits == ()
    clean.ImageComments = "山田太郎さん"
    clean.private_block(0x0011, "VERIFY TEST", create=True).add_new(
        0x11, "OB", "患者 山田".encode("gb18030"))
    save(clean, out / "ct.dcm")
    report = verify_output(out, [src])
    assert hits_of(report) == {
        ("ct.dcm", "(0020,4000) ImageComments", "person name"),
        ("ct.dcm", "(0011,1011) private", "person name"),
    }
    assert_no_value_shown(report, ("山田", "太郎", "yamada", "tarou"))


def test_iso_2022_kanji_name_in_raw_bytes(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    patient = synthetic.PATIENTS[4]  # Yamada^Tarou=山田^太郎=..., ISO 2022 IR 87
    source = synthetic.build_ct_image(patient, extras=False)
    save(source, src / "ct.dcm")
    clean = clean_by_hand(make_source())
    clean.SOPInstanceUID = "2.25.9"
    save(clean, out / "ct.dcm")
    assert verify_output(out, [src]).hits == ()
    kanji = "\x1b$B" + "山田".encode("iso2022_jp")[3:-3].decode("ascii") + "\x1b(J"
    clean.private_block(0x0011, "VERIFY TEST", create=True).add_new(
        0x11, "OB", b"\x00" + kanji.encode("ascii") + b"\x00")
    save(clean, out / "ct.dcm")
    assert hits_of(verify_output(out, [src])) == {("ct.dcm", "(0011,1011) private", "person name")}


# --------------------------------------------------------------------------- pairing, reports


def test_pairing_through_report_json(folders: tuple[Path, Path]) -> None:
    src, out = folders
    ds = pydicom.dcmread(out / "ct.dcm")
    _private_id(ds)
    (out / "ct.dcm").unlink()
    save(ds, out / "P1" / "S1" / "I1.dcm")
    entry = {"source": "ct.dcm", "input": str(src / "ct.dcm"), "status": "written",
             "output": "P1/S1/I1.dcm"}
    (out / "report.json").write_text(json.dumps({"run": {}, "inputs": [entry]}))
    report = verify_output(out, [src])
    assert report.unpaired == ()
    assert hits_of(report) == {("P1/S1/I1.dcm", "(0011,1010) private", "patient id")}
    assert report.files_checked == 2  # the output and report.json


def test_unpaired_output_is_checked_against_every_source(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    first = make_source()
    second = make_source(PatientName="Zelinski^Bartholomew", PatientID="ZB556677",
                         SOPInstanceUID=ROOT + "3.1.2")
    save(first, src / "a.dcm")
    save(second, src / "b.dcm")
    leaky = clean_by_hand(first)
    leaky.ImageComments = "compare with ZELINSKI"
    save(leaky, out / "renamed" / "x.dcm")
    report = verify_output(out, [src])
    assert report.unpaired == ("renamed/x.dcm",)
    assert hits_of(report) == {("renamed/x.dcm", "(0020,4000) ImageComments", "person name")}


def test_free_text_naming_a_person_of_another_source(tmp_path: Path) -> None:
    """A word of a comment that is a name elsewhere in the archive counts as identifying."""
    src, out = tmp_path / "src", tmp_path / "out"
    first = make_source(ImageComments="second opinion from Zelinski requested")
    second = make_source(PatientName="Zelinski^Bartholomew", PatientID="ZB556677",
                         SOPInstanceUID=ROOT + "3.1.2")
    save(first, src / "a.dcm")
    save(second, src / "b.dcm")
    clean = clean_by_hand(first)
    save(clean, out / "a.dcm")
    assert verify_output(out, [src]).hits == ()
    clean.ImageComments = "second opinion from Zelinski requested"
    save(clean, out / "a.dcm")
    report = verify_output(out, [src])
    assert hits_of(report) == {("a.dcm", "(0020,4000) ImageComments", "free text")}


def test_reports_are_scanned_for_every_source(folders: tuple[Path, Path]) -> None:
    src, out = folders
    (out / "report.csv").write_text("source,status\nct.dcm,written\n")
    (out / "report.html").write_text("<html><body>Quintero was here</body></html>")
    report = verify_output(out, [src])
    assert hits_of(report) == {("report.html", "raw bytes @12", "person name")}
    assert report.files_checked == 3


def test_json_report_is_searched_after_unescaping(tmp_path: Path) -> None:
    """json.dumps writes ``M\\u00fcller``: the raw bytes alone would miss the name."""
    src, out = tmp_path / "src", tmp_path / "out"
    source = make_source(PatientName="Müller^Renée")
    save(source, src / "Müller" / "ct.dcm")
    save(clean_by_hand(source), out / "P1" / "ct.dcm")
    entry = {"source": "Müller/ct.dcm", "input": str(src / "Müller" / "ct.dcm"),
             "status": "written", "output": "P1/ct.dcm"}
    text = json.dumps({"inputs": [entry], "Müller": 1})
    assert "Müller" not in text
    (out / "report.json").write_text(text)
    report = verify_output(out, [src])
    assert hits_of(report) == {("report.json", "inputs[0].source", "person name"),
                               ("report.json", "inputs[0].input", "person name"),
                               ("report.json", "json", "person name")}
    assert report.unpaired == ()
    assert_no_value_shown(report, ("müller", "muller"))


def test_html_markup_is_not_mistaken_for_a_name(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    source = make_source(PatientName="White^Grace")
    save(source, src / "ct.dcm")
    save(clean_by_hand(source), out / "ct.dcm")
    page = ('<html><head><style>td{white-space:nowrap}</style></head>'
            '<body><table class="grid"><tr><td>ct.dcm</td></tr></table></body></html>')
    (out / "report.html").write_text(page)
    assert verify_output(out, [src]).hits == ()
    (out / "report.html").write_text(page.replace("ct.dcm</td>", "ct.dcm of Mrs White</td>"))
    report = verify_output(out, [src])
    assert [(h.output, h.kind) for h in report.hits] == [("report.html", "person name")]


def test_inline_images_in_the_html_report_are_not_searched(folders: tuple[Path, Path]) -> None:
    src, out = folders
    blob = "AAAA+XQ771234+ASHCOMBE/" * 20  # base64-looking run, as a PNG thumbnail would be
    (out / "report.html").write_text(f'<img src="data:image/png;base64,{blob}">')
    assert verify_output(out, [src]).hits == ()


def test_state_folder_is_not_scanned_but_other_files_are(folders: tuple[Path, Path]) -> None:
    src, out = folders
    (out / ".deid").mkdir()
    (out / ".deid" / "manifest.sqlite").write_bytes(b"Quintero")
    (out / "notes.txt").write_text("Patient: Xavier Quintero\n", encoding="utf-16")
    (out / "image.bin").write_bytes(bytes(range(256)) * 64)
    report = verify_output(out, [src])
    assert {(h.output, h.kind) for h in report.hits} == {("notes.txt", "person name")}
    assert all(h.location.startswith("raw bytes @") for h in report.hits)
    assert "notes.txt" in report.unpaired


def test_describe_counts_without_values(folders: tuple[Path, Path]) -> None:
    src, out = folders
    ds = pydicom.dcmread(out / "ct.dcm")
    for plant in (_nested_name, _private_id, _spelled_birth_date, _original_study_uid):
        plant(ds)
    save(ds, out / "Quintero.dcm")
    (out / "ct.dcm").unlink()
    report = verify_output(out, [src])
    text = report.describe()
    assert text.startswith("LEAKS: 5 hits in 1 of 1 files checked")
    assert "person name 2" in text and "uid 1" in text
    assert "1 outputs could not be paired" in text
    assert_no_value_shown(report)


# --------------------------------------------------------------------------- errors, tables


def test_errors(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    src, out = folders
    with pytest.raises(OutputError):
        verify_output(tmp_path / "missing", [src])
    with pytest.raises(InputError):
        verify_output(out, [src], allow_kinds=["colour"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError):
        verify_output(out, [empty])


def test_unreadable_source_is_counted(folders: tuple[Path, Path]) -> None:
    src, out = folders
    (src / "notes.txt").write_text("not DICOM")
    report = verify_output(out, [src])
    assert report.hits == ()
    assert report.unreadable_sources == 1
    assert "1 source files are not readable DICOM" in report.describe()


def test_keyword_tables_name_real_attributes() -> None:
    tables = (verify.PATIENT_ID_KEYWORDS, verify.ACCESSION_KEYWORDS, verify.OTHER_ID_KEYWORDS,
              verify.BIRTH_DATE_KEYWORDS, verify.ADDRESS_KEYWORDS, verify.PHONE_KEYWORDS,
              verify.INSTITUTION_WORD_KEYWORDS, verify.INSTITUTION_WHOLE_KEYWORDS,
              verify.FREE_TEXT_KEYWORDS, verify.CLASS_UID_KEYWORDS)
    unknown = sorted(k for table in tables for k in table if k not in keyword_dict)
    assert unknown == []


def test_hit_is_frozen() -> None:
    hit = Hit("a.dcm", "file name", "person name")
    with pytest.raises(AttributeError):
        hit.kind = "uid"  # type: ignore[misc]


# --------------------------------------------------------------------------- command line


def test_cli_verify_exit_codes_and_messages(folders: tuple[Path, Path]) -> None:
    src, out = folders
    runner = CliRunner()
    result = runner.invoke(main, ["verify", str(out), "--source", str(src)])
    assert result.exit_code == 0, result.output
    assert "no identifying value found" in result.output
    ds = pydicom.dcmread(out / "ct.dcm")
    _nested_name(ds)
    save(ds, out / "ct.dcm")
    result = runner.invoke(main, ["verify", str(out), "--source", str(src)])
    assert result.exit_code == 1
    assert ("LEAK ct.dcm (0040,A730) ContentSequence[0] > (0040,A730) ContentSequence[0] > "
            "(0040,A123) PersonName (person name)") in result.output
    for value in PHI:
        assert value.lower() not in result.output.lower()


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("profile", ["basic", "research"])
def test_run_then_verify_end_to_end(tmp_path: Path, profile: str) -> None:
    """``deid run`` on synthetic data passes verify; leaks planted in a copy do not.

    ``research`` keeps shifted dates and cleaned descriptors: none of them is an original.
    """
    src, out = tmp_path / "src", tmp_path / "out"
    patient = synthetic.PATIENTS[1]  # Latin-1 name with accents
    study = synthetic.Study(seed="verify-e2e", accession_number="ACCE2E4711")
    built = synthetic.build_all(patient, study)
    for name in ("ct", "mr", "sr", "pdf", "sc_grey"):
        save(built[name], src / "study" / f"{name}.dcm")
    runner = CliRunner()
    env = {"DEID_KEY": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"}
    result = runner.invoke(main, ["run", str(src), "--out", str(out), "--workers", "0", "-q",
                                  "--profile", profile], env=env)
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    assert len(written) == 5
    result = runner.invoke(main, ["verify", str(out), "--source", str(src)])
    assert result.exit_code == 0, result.output
    assert "no identifying value found" in result.output

    leaky = tmp_path / "leaky"
    shutil.copytree(out, leaky)
    target = leaky / written[0]
    ds = pydicom.dcmread(target)
    ds.private_block(0x0011, "VERIFY TEST", create=True).add_new(0x10, "LO", patient.patient_id)
    save(ds, target)
    renamed = leaky / written[1]
    renamed.rename(renamed.with_name(f"{patient.family_name}.dcm"))
    result = runner.invoke(main, ["verify", str(leaky), "--source", str(src)])
    assert result.exit_code == 1
    lines = {line for line in result.output.splitlines() if line.startswith("LEAK ")}
    masked = str(PurePosixPath(written[1]).with_name("***.dcm"))
    assert lines == {f"LEAK {written[0]} (0011,1010) private (patient id)",
                     f"LEAK {masked} file name (person name)"}
    assert "1 outputs could not be paired" in result.output
    for value in patient.phi_strings():
        assert value.lower() not in result.output.lower()
