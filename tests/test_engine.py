"""The header engine on realistic synthetic instances: sequences, private blocks, references,
dates, markers, character sets, structured reports, encapsulated documents, the guard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath

import pydicom
import pytest
from pydicom.dataset import Dataset

from deid.api import deidentify_dataset, make_config
from deid.config import DeidConfig
from deid.errors import ProfileError
from deid.io import SourceFile
from deid.pseudonym import Pseudonymizer, normalise_person_name
from deid.results import Status
from deid.task import FileTask, run_task
from deid.testing import synthetic as syn
from tests.conftest import OTHER_KEY, TEST_KEY

PATIENT = syn.PATIENTS[0]


def _run(ds: Dataset, tmp_path: Path, config: DeidConfig, name: str = "in.dcm") -> Dataset:
    src = tmp_path / "src" / name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(syn.encode(ds))
    result = run_task(FileTask(SourceFile(src, PurePosixPath(name)), tmp_path / "out"), config)
    assert result.status is Status.WRITTEN, result.reason
    return pydicom.dcmread(tmp_path / "out" / name)


def _all_text(ds: Dataset) -> str:
    parts = []
    for elem in ds.iterall():
        if elem.VR in ("SQ",) or elem.tag == 0x7FE00010:
            continue
        parts.append(str(elem.value))
    return "\n".join(parts).upper()


def _assert_no_phi(ds: Dataset, raw: bytes, patient: syn.Patient = PATIENT) -> None:
    text = _all_text(ds)
    upper = raw.upper()
    for value in patient.phi_strings():
        if len(value) < 3:
            continue
        assert value.upper() not in text, value
        for encoding in ("utf-8", "latin-1"):
            try:
                needle = value.upper().encode(encoding)
            except UnicodeEncodeError:
                continue
            assert needle not in upper, value


def test_ct_no_phi_and_markers(tmp_path: Path, config: DeidConfig) -> None:
    ds = syn.build_ct_image(PATIENT)
    original_sop = ds.SOPInstanceUID
    out = _run(ds, tmp_path, config)
    _assert_no_phi(out, (tmp_path / "out" / "in.dcm").read_bytes())
    assert out.PatientIdentityRemoved == "YES"
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    assert [i.CodeValue for i in out.DeidentificationMethodCodeSequence] == ["113100"]
    assert out.SOPInstanceUID != original_sop and out.SOPInstanceUID.startswith("2.25.")
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in out.file_meta
    assert out.preamble == b"\x00" * 128
    assert not any(e.tag >> 16 & 1 for e in out.iterall()), "private elements must be removed"
    assert not any(0x6000 <= e.tag >> 16 <= 0x601E for e in out), "overlay group must be removed"
    assert not any(0x5000 <= e.tag >> 16 <= 0x501E for e in out), "curve group must be removed"
    assert "IconImageSequence" not in out


def test_option_codes_and_longitudinal_flag(tmp_path: Path) -> None:
    config = make_config(key=TEST_KEY, pixels="never", options=[
        "retain-longitudinal-modified-dates", "clean-descriptors"])
    out = _run(syn.build_mr_image(PATIENT), tmp_path, config)
    codes = [i.CodeValue for i in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113107", "113105"]
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


def test_longitudinal_options_exclude_each_other() -> None:
    with pytest.raises(ProfileError, match="exclude"):
        make_config(key=TEST_KEY, options=["retain-longitudinal-full-dates",
                                           "retain-longitudinal-modified-dates"])


def test_option_conflict_c_wins_over_k() -> None:
    """Rtn. Dev. Id. K vs Rtn. Long. Modif. Dates C on (0018,1200): C (modify) is taken."""
    config = make_config(key=TEST_KEY, options=["retain-device-identity",
                                                "retain-longitudinal-modified-dates"])
    ds = Dataset()
    ds.PatientID = "X1"
    ds.DateOfLastCalibration = "20200102"
    deidentify_dataset(ds, config)
    assert ds.DateOfLastCalibration != "20200102"
    config = make_config(key=TEST_KEY, options=["retain-device-identity"])
    ds.DateOfLastCalibration = "20200102"
    deidentify_dataset(ds, config)
    assert ds.DateOfLastCalibration == "20200102"


def test_nested_sequences_cleaned_at_depth(config: DeidConfig) -> None:
    ds = Dataset()
    ds.PatientID = "ID0001"
    inner = Dataset()
    inner.PersonName = "DOE^JANE"
    inner.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.999.5"
    middle = Dataset()
    middle.ContentSequence = [inner]
    ds.AnatomicRegionSequence = [Dataset()]
    ds.AnatomicRegionSequence[0].CodeMeaning = "Chest of JANE DOE"
    ds.ReferencedSeriesSequence = [Dataset()]
    ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence = [middle]
    result = deidentify_dataset(ds, config)
    deep = ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ContentSequence[0]
    assert deep.PersonName != "DOE^JANE" and str(deep.PersonName).startswith("ANON^")
    assert deep.ReferencedSOPInstanceUID.startswith("2.25.")
    assert "JANE" not in ds.AnatomicRegionSequence[0].CodeMeaning.upper()
    assert "(0008,0104)" in result.residual_hits
    assert all("JANE" not in a.path and "DOE" not in a.path for a in result.actions)


def test_guard_can_be_turned_off_by_profile(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("extends: basic\nresidual_guard: false\n")
    config = make_config(key=TEST_KEY, profile=str(profile))
    ds = Dataset()
    ds.PatientName = "DOE^JANE"
    ds.AnatomicRegionSequence = [Dataset()]
    ds.AnatomicRegionSequence[0].CodeMeaning = "Chest of JANE DOE"
    deidentify_dataset(ds, config)
    assert "JANE" in ds.AnatomicRegionSequence[0].CodeMeaning


def test_private_removed_without_option(tmp_path: Path, config: DeidConfig) -> None:
    out = _run(syn.build_mr_image(PATIENT), tmp_path, config)
    assert not [e for e in out.iterall() if e.tag >> 16 & 1]


def test_retain_safe_private_keeps_only_safe(tmp_path: Path) -> None:
    config = make_config(key=TEST_KEY, pixels="never", options=["retain-safe-private"])
    out = _run(syn.build_mr_image(PATIENT), tmp_path, config)
    block = out.private_block(0x0019, syn.SIEMENS_CREATOR)
    assert block[0x0C].value == "1000"
    assert block[0x0D].value == "DIRECTIONAL"
    with pytest.raises(KeyError):
        block[0x50]  # on the same block but not on the safe list
    with pytest.raises(KeyError):
        out.private_block(0x0009, syn.ACME_CREATOR)
    _assert_no_phi(out, (tmp_path / "out" / "in.dcm").read_bytes())


def test_user_profile_overrides(tmp_path: Path) -> None:
    profile = tmp_path / "mine.yaml"
    profile.write_text(
        "extends: basic\n"
        "actions:\n  PatientSex: K\n  '(0010,1010)': K\n"
        "private:\n  - {group: '0019', creator: 'SIEMENS MR HEADER', element: '0C', action: K}\n"
    )
    config = make_config(key=TEST_KEY, profile=str(profile), pixels="never")
    ds = syn.build_mr_image(PATIENT)
    ds.PatientAge = "067Y"
    out = _run(ds, tmp_path, config)
    assert out.PatientSex == PATIENT.sex
    assert out.PatientAge == "067Y"
    assert out.private_block(0x0019, syn.SIEMENS_CREATOR)[0x0C].value == "1000"


@pytest.mark.parametrize("text, message", [
    ("extends: nothing-like-this\n", "unknown profile"),
    ("actions:\n  PatientName: Q\n", "unknown action"),
    ("options: [retain-everything]\n", "unknown option"),
    ("bogus: 1\n", "unknown keys"),
    ("private:\n  - {group: '0010', creator: A, element: '10', action: K}\n", "even"),
])
def test_bad_user_profile_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text(text)
    with pytest.raises(ProfileError, match=message):
        make_config(key=TEST_KEY, profile=str(profile))


def test_references_between_instances_survive(tmp_path: Path, config: DeidConfig) -> None:
    ct = syn.build_ct_image(PATIENT)
    mr = syn.build_mr_image(PATIENT, references=[ct])
    out_ct = _run(ct, tmp_path, config, "ct.dcm")
    out_mr = _run(mr, tmp_path, config, "mr.dcm")
    refs = [e.value for e in out_mr.iterall() if e.keyword == "ReferencedSOPInstanceUID"]
    assert out_ct.SOPInstanceUID in refs
    assert out_ct.StudyInstanceUID == out_mr.StudyInstanceUID
    assert out_ct.FrameOfReferenceUID == out_mr.FrameOfReferenceUID


def test_well_known_uids_never_replaced(tmp_path: Path, config: DeidConfig) -> None:
    ct = syn.build_ct_image(PATIENT)
    out = _run(ct, tmp_path, config)
    assert out.SOPClassUID == ct.SOPClassUID
    assert out.file_meta.TransferSyntaxUID == ct.file_meta.TransferSyntaxUID
    for elem in out.iterall():
        if elem.keyword in ("ReferencedSOPClassUID", "CodingSchemeUID"):
            assert str(elem.value).startswith("1.2.840.10008.")


def test_uids_same_across_processes_and_differ_with_other_key() -> None:
    code = (
        "import sys; from deid.pseudonym import Pseudonymizer; "
        "print(Pseudonymizer(bytes.fromhex(sys.argv[1])).uid('1.2.3.4.5'))"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code, key.hex()], capture_output=True, text=True,
                       check=True).stdout.strip()
        for key in (TEST_KEY, TEST_KEY, OTHER_KEY)
    ]
    assert runs[0] == runs[1] == Pseudonymizer(TEST_KEY).uid("1.2.3.4.5")
    assert runs[0] != runs[2]
    assert runs[0].startswith("2.25.") and len(runs[0]) <= 64


def test_person_names_normalised_before_pseudonymisation() -> None:
    p = Pseudonymizer(TEST_KEY)
    assert p.person_name("DOE^JOHN^A") == p.person_name("doe^john^a^")
    assert p.person_name("DOE^JOHN^A") == p.person_name(" Doe ^John^A^^")
    assert p.person_name("DOE^JOHN^A") != p.person_name("DOE^JOHN^B")
    assert normalise_person_name("doe^john^a^") == "DOE^JOHN^A"


def test_modified_dates_keep_intervals_per_patient(tmp_path: Path) -> None:
    config = make_config(key=TEST_KEY, pixels="never",
                         options=["retain-longitudinal-modified-dates"])
    first = syn.build_ct_image(PATIENT)
    first.StudyDate, first.SeriesDate = "20200110", "20200110"
    second = syn.build_ct_image(PATIENT, instance_number=2)
    second.StudyDate, second.SeriesDate = "20200301", "20200301"
    a = deidentify_dataset(first, config) and first
    b = deidentify_dataset(second, config) and second
    from datetime import date

    def as_date(v: str) -> date:
        return date(int(v[:4]), int(v[4:6]), int(v[6:]))

    assert a.StudyDate != "20200110"
    assert (as_date(b.StudyDate) - as_date(a.StudyDate)).days == 51
    # another batch, another process: same shift for the same patient
    again = syn.build_ct_image(PATIENT)
    again.StudyDate = "20200110"
    deidentify_dataset(again, config)
    assert again.StudyDate == a.StudyDate


def test_enhanced_multiframe_functional_groups_kept(tmp_path: Path, config: DeidConfig) -> None:
    ds = syn.build_enhanced_mr(PATIENT)
    frames = int(ds.NumberOfFrames)
    out = _run(ds, tmp_path, config)
    assert len(out.PerFrameFunctionalGroupsSequence) == frames
    assert len(out.SharedFunctionalGroupsSequence) == 1
    for item in out.PerFrameFunctionalGroupsSequence:
        assert "FrameContentSequence" in item
    _assert_no_phi(out, (tmp_path / "out" / "in.dcm").read_bytes())


def test_structured_report_basic_keeps_tree_without_text(tmp_path: Path,
                                                         config: DeidConfig) -> None:
    ds = syn.build_sr_document(PATIENT)
    n_items = sum(1 for e in ds.iterall() if e.keyword == "ValueType")
    out = _run(ds, tmp_path, config)
    assert sum(1 for e in out.iterall() if e.keyword == "ValueType") == n_items
    _assert_no_phi(out, (tmp_path / "out" / "in.dcm").read_bytes())


def test_structured_report_clean_structured_content(tmp_path: Path) -> None:
    config = make_config(key=TEST_KEY, pixels="never", options=["clean-structured-content"])
    ds = syn.build_sr_document(PATIENT)
    out = _run(ds, tmp_path, config)
    texts = [str(e.value) for e in out.iterall() if e.keyword == "TextValue"]
    assert texts and any(t != "ANONYMIZED" for t in texts), "cleaned text should survive"
    _assert_no_phi(out, (tmp_path / "out" / "in.dcm").read_bytes())


@pytest.mark.parametrize("builder", [syn.build_encapsulated_pdf, syn.build_encapsulated_cda])
def test_encapsulated_documents_replaced(tmp_path: Path, config: DeidConfig, builder) -> None:  # type: ignore[no-untyped-def]
    ds = builder(PATIENT)
    ds.BurnedInAnnotation = "NO"
    out = _run(ds, tmp_path, config)
    data = bytes(out.EncapsulatedDocument)
    assert data.startswith((b"%PDF", b"<?xml"))
    _assert_no_phi(out, (tmp_path / "out" / "in.dcm").read_bytes())


@pytest.mark.parametrize("patient", syn.PATIENTS, ids=lambda p: p.character_set or "default")
def test_character_sets(tmp_path: Path, config: DeidConfig, patient: syn.Patient) -> None:
    ds = syn.build_mr_image(patient)
    out = _run(ds, tmp_path, config)
    assert str(out.PatientName).startswith("ANON^")
    if patient.character_set:
        assert out.SpecificCharacterSet
    _assert_no_phi(out, (tmp_path / "out" / "in.dcm").read_bytes(), patient)


def test_un_elements_handled_by_tag(tmp_path: Path, config: DeidConfig) -> None:
    ds = syn.build_ct_image(PATIENT)
    syn.add_un_elements(ds, PATIENT)
    out = _run(ds, tmp_path, config)
    assert "OtherPatientNames" not in out  # (0010,1001) is X, whatever VR it was read with
    _assert_no_phi(out, (tmp_path / "out" / "in.dcm").read_bytes())


def test_key_never_in_repr() -> None:
    config = make_config(key=TEST_KEY)
    assert TEST_KEY.hex() not in repr(config) and repr(TEST_KEY) not in repr(config)
    assert TEST_KEY.hex() not in repr(Pseudonymizer(TEST_KEY))


def test_mirror_path_never_carries_an_identifying_value(tmp_path: Path,
                                                        config: DeidConfig) -> None:
    ds = syn.build_ct_image(PATIENT)
    folder = f"{PATIENT.family_name}_{PATIENT.patient_id}"
    src = tmp_path / "src" / folder / "ct.dcm"
    src.parent.mkdir(parents=True)
    src.write_bytes(syn.encode(ds))
    result = run_task(
        FileTask(SourceFile(src, PurePosixPath(folder, "ct.dcm")), tmp_path / "out"), config)
    assert result.status is Status.WRITTEN
    assert result.output is not None
    assert PATIENT.family_name not in result.output and PATIENT.patient_id not in result.output
    assert result.output.startswith(result.patient_pseudonym)
    assert (tmp_path / "out" / result.output).is_file()


def test_kept_date_equal_to_birth_date_is_replaced() -> None:
    """Full Dates keeps SR dates; one that is the patient's birth date must still go."""
    config = make_config(key=TEST_KEY, options=["retain-longitudinal-full-dates"])
    ds = Dataset()
    ds.PatientBirthDate = "19560412"
    ds.StudyDate = "20240315"
    item = Dataset()
    item.ValueType = "DATE"
    item.Date = "19560412"
    ds.ContentSequence = [item]
    result = deidentify_dataset(ds, config)
    assert ds.StudyDate == "20240315"
    assert ds.ContentSequence[0].Date != "19560412"
    assert "(0040,A121)" in result.residual_hits


def test_mirror_path_named_by_original_uids_gets_pseudonyms(tmp_path: Path,
                                                            config: DeidConfig) -> None:
    ds = syn.build_ct_image(PATIENT)
    relative = PurePosixPath(ds.StudyInstanceUID, ds.SeriesInstanceUID, f"{ds.SOPInstanceUID}.dcm")
    src = tmp_path / "src" / relative
    src.parent.mkdir(parents=True)
    src.write_bytes(syn.encode(ds))
    result = run_task(FileTask(SourceFile(src, relative), tmp_path / "out"), config)
    assert result.output is not None
    out = pydicom.dcmread(tmp_path / "out" / result.output)
    assert result.output == f"{out.StudyInstanceUID}/{out.SeriesInstanceUID}/" \
                            f"{out.SOPInstanceUID}.dcm"
