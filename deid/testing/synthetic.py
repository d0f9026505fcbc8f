"""Synthetic DICOM instances with planted PHI, for tests, sample data and benchmarks.

Every value here is invented: no real person, institution or device is described. The builders
are pure pydicom and numpy; each returns a :class:`pydicom.dataset.Dataset` with file meta, ready
for ``ds.save_as(path, enforce_file_format=True)``.

Context objects tie instances together:

* :class:`Patient` - the identity planted everywhere (name, IDs, birth date, address, phone...).
* :class:`Study` - the visit (accession number, institution, physicians, station...).
* :class:`Series` - a series of a study; instances built with the same series share the
  SeriesInstanceUID, and all series of a study share its StudyInstanceUID and (by default) one
  FrameOfReferenceUID.

UIDs are derived deterministically from the study seed under the fake root
:data:`UID_ROOT`, so the same calls give the same bytes on every run.

PHI is planted in the places a de-identifier must look (PS3.15 Annex E): the Patient, Study,
Series and Equipment modules, nested sequences (OtherPatientIDsSequence,
RequestAttributesSequence), free-text public attributes (StudyDescription holds the patient ID,
ProtocolName the family name, ImageComments and DerivationDescription the name, a CodeMeaning in
a kept code sequence), private blocks (see :func:`add_private_blocks`), overlays
(:func:`add_overlay`), retired curves (:func:`add_curve`), an icon image (:func:`add_icon_image`)
and elements stored with VR UN (:func:`add_un_elements`). :meth:`Study.phi_strings` lists every
planted string so tests can search outputs for them.
"""

from __future__ import annotations

import io
import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pydicom import config, dcmread
from pydicom.charset import convert_encodings, encode_string
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.fileset import FileSet
from pydicom.filewriter import write_dataset
from pydicom.pixels.utils import pack_bits
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

logger = logging.getLogger(__name__)

__all__ = [
    "UID_ROOT",
    "IMPLEMENTATION_CLASS_UID",
    "ACME_CREATOR",
    "SIEMENS_CREATOR",
    "LOSSLESS_TRANSFER_SYNTAXES",
    "ALL_TRANSFER_SYNTAXES",
    "Patient",
    "Study",
    "Series",
    "TextBox",
    "PATIENTS",
    "make_uid",
    "burn_text",
    "annotate",
    "annotated_frame",
    "add_private_blocks",
    "add_overlay",
    "add_curve",
    "add_icon_image",
    "add_un_elements",
    "build_ct_image",
    "build_mr_image",
    "build_cr_image",
    "build_dx_image",
    "build_us_image",
    "build_us_multiframe",
    "build_sc_image",
    "build_enhanced_mr",
    "build_sr_document",
    "build_encapsulated_pdf",
    "build_encapsulated_cda",
    "build_all",
    "with_transfer_syntax",
    "encode",
    "make_pdf",
    "make_cda",
    "broken_files",
    "write_dicomdir",
]

#: Fake UID root for every generated UID (never a real organisation's root).
UID_ROOT = "1.2.826.0.1.3680043.10.999."
#: Implementation Class UID written in the file meta of generated files.
IMPLEMENTATION_CLASS_UID = UID(UID_ROOT + "1.1")
_IMPLEMENTATION_VERSION = "DEID_SYNTH_1"

#: Private creator of the invented vendor block planted in group 0x0009.
ACME_CREATOR = "ACME PRIVATE 1.0"
#: Private creator whose (0019,xx0C/0D/0E/27) elements are on PS3.15 Table E.3.10-1.
SIEMENS_CREATOR = "SIEMENS MR HEADER"

#: Lossless transfer syntaxes :func:`with_transfer_syntax` can write.
LOSSLESS_TRANSFER_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
)
#: Every transfer syntax :func:`with_transfer_syntax` can write (JPEG Baseline for 8-bit only).
ALL_TRANSFER_SYNTAXES: tuple[UID, ...] = LOSSLESS_TRANSFER_SYNTAXES + (JPEGBaseline8Bit,)

_SOP = {
    "CT": UID("1.2.840.10008.5.1.4.1.1.2"),
    "MR": UID("1.2.840.10008.5.1.4.1.1.4"),
    "CR": UID("1.2.840.10008.5.1.4.1.1.1"),
    "DX": UID("1.2.840.10008.5.1.4.1.1.1.1"),
    "US": UID("1.2.840.10008.5.1.4.1.1.6.1"),
    "US_MF": UID("1.2.840.10008.5.1.4.1.1.3.1"),
    "SC": UID("1.2.840.10008.5.1.4.1.1.7"),
    "EMR": UID("1.2.840.10008.5.1.4.1.1.4.1"),
    "SR": UID("1.2.840.10008.5.1.4.1.1.88.33"),
    "PDF": UID("1.2.840.10008.5.1.4.1.1.104.1"),
    "CDA": UID("1.2.840.10008.5.1.4.1.1.104.2"),
}


# --------------------------------------------------------------------------- contexts


@dataclass(frozen=True)
class Patient:
    """An invented patient whose identity is planted in every instance built for it.

    Parameters
    ----------
    name : str
        DICOM PN value, ``Family^Given^Middle`` with optional ideographic and phonetic groups
        after ``=``.
    patient_id : str
        PatientID (0010,0020).
    birth_date : str
        PatientBirthDate (0010,0030), ``YYYYMMDD``.
    sex : str
        PatientSex (0010,0040): ``M``, ``F`` or ``O``.
    address : str
        PatientAddress (0010,1040).
    phone : str
        PatientTelephoneNumbers (0010,2154).
    other_ids : tuple of str
        OtherPatientIDs and OtherPatientIDsSequence values.
    character_set : str or None
        SpecificCharacterSet (0008,0005) value, components separated by ``\\`` (for example
        ``"\\ISO 2022 IR 87"``); None leaves it out (default repertoire).
    """

    name: str
    patient_id: str
    birth_date: str
    sex: str
    address: str
    phone: str
    other_ids: tuple[str, ...] = ()
    character_set: str | None = None

    @property
    def family_name(self) -> str:
        """Family name of the first (alphabetic) component group."""
        return self.name.split("=")[0].split("^")[0]

    @property
    def given_name(self) -> str:
        """Given name of the first (alphabetic) component group."""
        parts = self.name.split("=")[0].split("^")
        return parts[1] if len(parts) > 1 else ""

    @property
    def display_name(self) -> str:
        """``Given Family`` as a person would write it on an image or in a report."""
        return f"{self.given_name} {self.family_name}".strip()

    @property
    def character_sets(self) -> list[str]:
        """The SpecificCharacterSet values as a list (empty for the default repertoire)."""
        return self.character_set.split("\\") if self.character_set is not None else []

    def phi_strings(self) -> tuple[str, ...]:
        """Every identifying string of this patient planted by the builders.

        The whole name, each name component of every component group (two characters or more),
        the display form, the patient ID, other IDs, birth date, address and phone number.
        """
        values: list[str] = [
            self.name,
            self.display_name,
            self.patient_id,
            *self.other_ids,
            self.birth_date,
            self.address,
            self.phone,
        ]
        for group in self.name.split("="):
            for component in group.split("^"):
                if len(component) >= 2:
                    values.append(component)
        return _unique(values)


@dataclass(frozen=True)
class Study:
    """An invented visit: accession number, institution, physicians and equipment.

    ``seed`` makes the StudyInstanceUID and every UID of the study's series and instances.
    """

    seed: str
    accession_number: str
    study_id: str = "1"
    description: str = "CHEST"
    study_date: str = "20240315"
    study_time: str = "101500"
    institution_name: str = "Hillcrest Fictional Infirmary"
    institution_address: str = "4 Quarry Bend, Elmsworth Vale, ZZ9 9ZZ"
    department: str = "Radiology Wing Q"
    referring_physician: str = "Thorncastle^Albertina^^Dr"
    performing_physician: str = "Vexhollow^Bramwell"
    operator: str = "Pennyfeather^Odile"
    station_name: str = "HFI-SCAN-07"
    device_serial_number: str = "SN-77Q1-0042"

    @property
    def study_instance_uid(self) -> UID:
        """StudyInstanceUID derived from ``seed``."""
        return make_uid("study", self.seed)

    def phi_strings(self, patient: Patient) -> tuple[str, ...]:
        """Every identifying string planted for ``patient`` in this study.

        The patient's strings (:meth:`Patient.phi_strings`) plus the accession number,
        institution, department, station, device serial number and the people's names.
        """
        values: list[str] = list(patient.phi_strings())
        values += [
            self.accession_number,
            self.institution_name,
            self.institution_address,
            self.department,
            self.station_name,
            self.device_serial_number,
        ]
        for person in (self.referring_physician, self.performing_physician, self.operator):
            values.append(person)
            values += [part for part in person.split("^")[:2] if len(part) >= 2]
        return _unique(values)


@dataclass(frozen=True)
class Series:
    """A series of a :class:`Study`; instances built with it share its SeriesInstanceUID.

    Series of one study with the same ``frame_of_reference`` key share a FrameOfReferenceUID.
    """

    study: Study
    number: int
    description: str = ""
    frame_of_reference: str = "main"

    @property
    def series_instance_uid(self) -> UID:
        """SeriesInstanceUID derived from the study seed and ``number``."""
        return make_uid("series", self.study.seed, self.number)

    @property
    def frame_of_reference_uid(self) -> UID:
        """FrameOfReferenceUID derived from the study seed and ``frame_of_reference``."""
        return make_uid("for", self.study.seed, self.frame_of_reference)

    def sop_instance_uid(self, instance_number: int) -> UID:
        """SOPInstanceUID of instance ``instance_number`` of this series."""
        return make_uid("instance", self.study.seed, self.number, instance_number)


@dataclass(frozen=True)
class TextBox:
    """Where :func:`burn_text` drew a text: the bounding box of the changed pixels.

    ``text`` is the burned string (invented PHI; test data only).
    """

    text: str
    x: int
    y: int
    width: int
    height: int

    def contains(self, x: int, y: int) -> bool:
        """True when pixel (``x``, ``y``) lies in the box."""
        return self.x <= x < self.x + self.width and self.y <= y < self.y + self.height


#: Invented patients, one per character set case.
PATIENTS: tuple[Patient, ...] = (
    Patient(
        name="Quimby^Harold^Tobias",
        patient_id="QH480213",
        birth_date="19560412",
        sex="M",
        address="12 Larkspur Lane, Millbrook Hollow, ZZ 00001",
        phone="+1-555-0142",
        other_ids=("MRN-7730915", "ALT-55120"),
    ),
    Patient(
        name="Müller-Lüdenscheidt^Renée",
        patient_id="RML771903",
        birth_date="19711130",
        sex="F",
        address="Königsgraben 7, Niemandsdorf",
        phone="+49-555-0198",
        other_ids=("KV-0091773",),
        character_set="ISO_IR 100",
    ),
    Patient(
        name="Nguyễn^Thị Minh",
        patient_id="NTM300588",
        birth_date="19880305",
        sex="F",
        address="88 Đường Giả Định, Quận Mười Ba",
        phone="+84-555-0111",
        other_ids=("VN-3310042",),
        character_set="ISO_IR 192",
    ),
    Patient(
        name="Wang^XiaoDong=王^小东",
        patient_id="WXD620814",
        birth_date="19620814",
        sex="M",
        address="虚构路 99 号",
        phone="+86-555-0107",
        other_ids=("CN-88120",),
        character_set="GB18030",
    ),
    Patient(
        name="Yamada^Tarou=山田^太郎=やまだ^たろう",
        patient_id="YT450127",
        birth_date="19450127",
        sex="M",
        address="Kasou-cho 3-1, Nisemono-shi",
        phone="+81-555-0163",
        other_ids=("JP-447120",),
        character_set="\\ISO 2022 IR 87",
    ),
)

_DEFAULT_PATIENT = PATIENTS[0]
_DEFAULT_STUDY = Study(seed="default-study", accession_number="ACC20240315Q1")


def make_uid(*parts: object) -> UID:
    """A deterministic UID under :data:`UID_ROOT` from ``parts`` (same parts, same UID)."""
    return generate_uid(prefix=UID_ROOT, entropy_srcs=[repr(p) for p in parts])


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value not in seen:
            seen[value] = None
    return tuple(seen)


def _default_series(series: Series | None, number: int, description: str) -> Series:
    if series is not None:
        return series
    return Series(_DEFAULT_STUDY, number, description)


# --------------------------------------------------------------------------- burned-in text


def burn_text(
    arr: np.ndarray,
    text: str,
    org: tuple[int, int],
    scale: float = 0.5,
    value: int | Sequence[int] = 255,
    thickness: int = 1,
) -> TextBox:
    """Draw ``text`` into ``arr`` in place with OpenCV and return the box of the changed pixels.

    Parameters
    ----------
    arr : numpy.ndarray
        A frame, ``(rows, columns)`` or ``(rows, columns, samples)``, of any integer dtype.
    text : str
        ASCII text (OpenCV's Hershey font has no other glyphs).
    org : tuple of int
        ``(x, y)`` of the bottom-left corner of the text baseline.
    scale : float
        Font scale (0.5 is about 10 pixels high).
    value : int or sequence of int
        Pixel value of the text (one value per sample for colour frames).
    thickness : int
        Stroke thickness in pixels.

    Returns
    -------
    TextBox
        Bounding box of every pixel the text covers.

    Raises
    ------
    ValueError
        If the text falls entirely outside the frame.
    """
    mask = np.zeros(arr.shape[:2], dtype=np.uint8)
    cv2.putText(mask, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_8)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("burn_text: the text falls outside the frame.")
    arr[mask > 0] = value
    x0, y0 = int(xs.min()), int(ys.min())
    return TextBox(text, x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1)


def annotate(
    arr: np.ndarray,
    lines: Sequence[str],
    *,
    scale: float = 0.5,
    value: int | Sequence[int] = 255,
    margin: int = 4,
) -> list[TextBox]:
    """Burn ``lines`` one under the other at the top-left corner of ``arr``; boxes returned."""
    (_, height), baseline = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    step = height + baseline + 3
    boxes = []
    for i, line in enumerate(lines):
        org = (margin, margin + height + i * step)
        boxes.append(burn_text(arr, line, org, scale, value))
    return boxes


def _phantom(rows: int, columns: int, phase: float = 0.0) -> np.ndarray:
    """A smooth float image in [0, 1]: a disc with two inner blobs on a faint gradient."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    cy, cx = rows / 2, columns / 2
    r = np.hypot((y - cy) / (rows * 0.42), (x - cx) / (columns * 0.42))
    img = np.where(r < 1.0, 0.55, 0.05) + 0.1 * x / columns
    for dy, dx, s in ((-0.15, -0.12, 0.08), (0.1, 0.15 + 0.05 * np.sin(phase), 0.06)):
        by, bx = cy + dy * rows, cx + dx * columns
        img += 0.35 * np.exp(-(((y - by) / (s * rows)) ** 2 + ((x - bx) / (s * columns)) ** 2))
    result: np.ndarray = np.clip(img, 0.0, 1.0)
    return result


def annotated_frame(
    patient: Patient,
    study: Study,
    rows: int,
    columns: int,
    *,
    color: bool,
    phase: float = 0.0,
    scale: float = 0.5,
) -> tuple[np.ndarray, list[TextBox]]:
    """An 8-bit frame with the patient's name, ID, birth date and institution burned in.

    The lines are drawn at the top-left corner on a black panel, as ultrasound machines and
    screen captures show them, over a phantom image. Returns the frame (``(rows, columns)`` or
    ``(rows, columns, 3)`` RGB) and the box of each burned line, as the US and SC builders use
    them.
    """
    grey = (_phantom(rows, columns, phase) * 180).astype(np.uint8)
    arr = np.stack([grey, grey, (grey * 0.8).astype(np.uint8)], axis=-1) if color else grey
    lines = [
        _ascii(line)
        for line in (
            patient.display_name.upper(),
            f"ID {patient.patient_id}",
            f"DOB {patient.birth_date}",
            study.institution_name.upper()[:24],
        )
    ]
    layout = annotate(np.zeros((rows, columns), dtype=np.uint8), lines, scale=scale)
    right = max(box.x + box.width for box in layout) + 4
    bottom = max(box.y + box.height for box in layout) + 4
    arr[:bottom, :right] = 0
    value: int | tuple[int, int, int] = (255, 255, 0) if color else 255
    return arr, annotate(arr, lines, scale=scale, value=value)


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.encode("ascii", "ignore").decode("ascii")


# --------------------------------------------------------------------------- common modules


def _new_dataset(sop_class: UID, sop_instance: UID, patient: Patient) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    if patient.character_set is not None:
        sets = patient.character_sets
        ds.SpecificCharacterSet = sets if len(sets) > 1 else sets[0]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _plant_common(
    ds: Dataset,
    patient: Patient,
    series: Series,
    modality: str,
    instance_number: int,
    *,
    frame_of_reference: bool = True,
) -> None:
    """Patient, study, series, equipment and SOP common attributes, PHI planted throughout."""
    study = series.study
    ds.InstanceCreationDate = study.study_date
    ds.InstanceCreationTime = study.study_time
    ds.InstanceCreatorUID = make_uid("creator", study.seed)
    # Patient module (PS3.3 C.7.1.1)
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.IssuerOfPatientID = "HFI"
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.OtherPatientIDs = (
        list(patient.other_ids)
        if len(patient.other_ids) > 1
        else (patient.other_ids[0] if patient.other_ids else "")
    )
    others = []
    for other in patient.other_ids:
        item = Dataset()
        item.PatientID = other
        item.IssuerOfPatientID = study.institution_name[:64]
        item.TypeOfPatientID = "TEXT"
        others.append(item)
    ds.OtherPatientIDsSequence = others
    ds.PatientAddress = patient.address
    ds.PatientTelephoneNumbers = patient.phone
    ds.PatientComments = f"Seen by {patient.display_name}'s family doctor"
    # General Study / Patient Study (C.7.2.1, C.7.2.2)
    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = study.referring_physician
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession_number
    ds.StudyDescription = f"{study.description} {patient.patient_id}"
    ds.PhysiciansOfRecord = study.referring_physician
    ds.PatientAge = f"{max(0, int(study.study_date[:4]) - int(patient.birth_date[:4])):03d}Y"
    ds.PatientWeight = "71.5"
    # General Series (C.7.3.1)
    ds.Modality = modality
    ds.SeriesInstanceUID = series.series_instance_uid
    ds.SeriesNumber = series.number
    ds.SeriesDate = study.study_date
    ds.SeriesTime = study.study_time
    ds.SeriesDescription = series.description or f"{modality} series"
    ds.PerformingPhysicianName = study.performing_physician
    ds.OperatorsName = study.operator
    ds.ProtocolName = f"{modality} protocol for {patient.family_name}"
    request = Dataset()
    request.RequestedProcedureID = f"RP{patient.patient_id}"
    request.ScheduledProcedureStepID = f"SPS{study.accession_number}"
    request.ScheduledProcedureStepDescription = f"{modality} exam for {patient.display_name}"
    request.AccessionNumber = study.accession_number
    request.StudyInstanceUID = study.study_instance_uid
    request.ReasonForTheRequestedProcedure = f"Follow-up of {patient.family_name}"
    request.RequestedProcedureDescription = f"{modality} exam {patient.patient_id}"
    ds.RequestAttributesSequence = [request]
    ds.PerformedProcedureStepID = f"PPS{patient.patient_id}"
    ds.PerformedProcedureStepDescription = f"{modality} for {patient.display_name}"
    if frame_of_reference:
        ds.FrameOfReferenceUID = series.frame_of_reference_uid
        ds.PositionReferenceIndicator = ""
    # General Equipment (C.7.5.1)
    ds.Manufacturer = "Acme Imaginary Devices"
    ds.InstitutionName = study.institution_name
    ds.InstitutionAddress = study.institution_address
    ds.InstitutionalDepartmentName = study.department
    ds.StationName = study.station_name
    ds.ManufacturerModelName = "Phantasm 3000"
    ds.DeviceSerialNumber = study.device_serial_number
    ds.SoftwareVersions = "1.0"
    ds.InstanceNumber = instance_number


def _plant_image(
    ds: Dataset,
    patient: Patient,
    series: Series,
    instance_number: int,
    references: Sequence[Dataset],
    image_type: Sequence[str],
) -> None:
    """General Image and General Acquisition attributes with free-text PHI and references."""
    study = series.study
    ds.ImageType = list(image_type)
    ds.ContentDate = study.study_date
    ds.ContentTime = study.study_time
    ds.AcquisitionDate = study.study_date
    ds.AcquisitionTime = study.study_time
    ds.AcquisitionNumber = 1
    ds.ImageComments = f"Comparison with prior of {patient.display_name}"
    ds.DerivationDescription = f"Processed for {patient.name.split('=')[0]}"
    ds.BurnedInAnnotation = "NO"
    if references:
        ds.ReferencedImageSequence = [_sop_reference(ref) for ref in references]
        if image_type and image_type[0] == "DERIVED":
            ds.SourceImageSequence = [_sop_reference(ref) for ref in references]
    # A kept code sequence whose CodeMeaning carries the name (not a place the standard lists).
    ds.AnatomicRegionSequence = [_code("51185008", "SCT", f"Chest of {patient.family_name}")]


def _sop_reference(ref: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ref.SOPClassUID
    item.ReferencedSOPInstanceUID = ref.SOPInstanceUID
    return item


def _pps_reference(series: Series) -> Dataset:
    """A Referenced Performed Procedure Step item (Modality Performed Procedure Step SOP)."""
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.3"
    item.ReferencedSOPInstanceUID = make_uid("mpps", series.study.seed, series.number)
    return item


def _series_reference(references: Sequence[Dataset]) -> list[Dataset]:
    """Hierarchical SOP Instance Reference items (study → series → instances)."""
    studies: dict[str, dict[str, list[Dataset]]] = {}
    for ref in references:
        studies.setdefault(ref.StudyInstanceUID, {}).setdefault(ref.SeriesInstanceUID, []).append(
            ref
        )
    items = []
    for study_uid, series_map in studies.items():
        study_item = Dataset()
        study_item.StudyInstanceUID = study_uid
        series_items = []
        for series_uid, instances in series_map.items():
            series_item = Dataset()
            series_item.SeriesInstanceUID = series_uid
            series_item.ReferencedSOPSequence = [_sop_reference(r) for r in instances]
            series_items.append(series_item)
        study_item.ReferencedSeriesSequence = series_items
        items.append(study_item)
    return items


def _set_pixels(ds: Dataset, arr: np.ndarray, *, photometric: str, bits_stored: int) -> None:
    """Image Pixel module from ``arr`` (frames first for multi-frame)."""
    samples = 3 if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") else 1
    frames = arr.shape[0] if arr.ndim == 3 + (samples == 3) else 1
    rows, columns = (
        arr.shape[1:3] if frames > 1 or arr.ndim == 3 + (samples == 3) else arr.shape[:2]
    )
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(rows), int(columns)
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
    if arr.ndim == 3 + (samples == 3):
        ds.NumberOfFrames = int(arr.shape[0])
    ds.PixelData = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()


# --------------------------------------------------------------------------- PHI extras


def add_private_blocks(ds: Dataset, patient: Patient) -> None:
    """Plant private PHI and safe private attributes.

    * ``ACME PRIVATE 1.0`` block in group 0x0009: (0009,xx10) LO name, (0009,xx11) LO patient ID,
      (0009,xx12) LT note with both, (0009,xx13) SQ whose item holds PatientName and a private
      LO with the name, (0009,xx14) OB holding the ID bytes, (0009,xx15) UN holding the name.
    * ``SIEMENS MR HEADER`` block in group 0x0019: (0019,xx0C) B value, (0019,xx0D) diffusion
      directionality, (0019,xx0E) gradient direction and (0019,xx27) B matrix - all on the safe
      list of PS3.15 Table E.3.10-1 - and (0019,xx50), not on it, holding the name.
    """
    name = patient.name
    block = ds.private_block(0x0009, ACME_CREATOR, create=True)
    block.add_new(0x10, "LO", patient.display_name)
    block.add_new(0x11, "LO", patient.patient_id)
    block.add_new(0x12, "LT", f"Patient {name} ({patient.patient_id}) scanned twice.")
    item = Dataset()
    item.PatientName = name
    inner = item.private_block(0x0009, ACME_CREATOR, create=True)
    inner.add_new(0x10, "LO", patient.display_name)
    block.add_new(0x13, "SQ", [item])
    block.add_new(0x14, "OB", _even(b"MRN:" + patient.patient_id.encode("ascii")))
    block.add_new(0x15, "UN", _even(_ascii(patient.display_name).encode("ascii"), b" "))
    siemens = ds.private_block(0x0019, SIEMENS_CREATOR, create=True)
    siemens.add_new(0x0C, "IS", "1000")
    siemens.add_new(0x0D, "CS", "DIRECTIONAL")
    siemens.add_new(0x0E, "FD", [0.0, 0.70710678, 0.70710678])
    siemens.add_new(0x27, "FD", [1000.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    siemens.add_new(0x50, "LO", patient.display_name)


def _even(data: bytes, pad: bytes = b"\x00") -> bytes:
    return data + pad if len(data) % 2 else data


def add_overlay(ds: Dataset, patient: Patient, group: int = 0x6000) -> list[TextBox]:
    """A graphics overlay in repeating group ``group`` with the patient's name drawn in it.

    OverlayDescription, OverlayLabel and the retired OverlayComments (6000,4000) hold the name.
    Returns the box of the drawn text in overlay coordinates.
    """
    rows, columns = int(ds.Rows), int(ds.Columns)
    bitmap = np.zeros((rows, columns), dtype=np.uint8)
    box = burn_text(
        bitmap,
        _ascii(patient.family_name).upper()[:10],
        (2, rows - 4),
        scale=0.3 if columns < 100 else 0.45,
        value=1,
    )
    ds.add_new((group, 0x0010), "US", rows)
    ds.add_new((group, 0x0011), "US", columns)
    ds.add_new((group, 0x0022), "LO", f"Marker for {patient.display_name}")
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", [1, 1])
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    ds.add_new((group, 0x1500), "LO", patient.display_name)
    ds.add_new((group, 0x4000), "LT", f"Overlay drawn for {patient.name.split('=')[0]}")
    ds.add_new((group, 0x3000), "OW", _even(pack_bits(bitmap.ravel())))
    return [box]


def add_curve(ds: Dataset, patient: Patient, group: int = 0x5000) -> None:
    """A retired curve (PS3.3-2004 C.10.2) in group ``group``; CurveDescription holds the name."""
    points = 32
    values = (1000 + 500 * np.sin(np.linspace(0, 4 * np.pi, points))).astype("<u2")
    ds.add_new((group, 0x0005), "US", 1)
    ds.add_new((group, 0x0010), "US", points)
    ds.add_new((group, 0x0020), "CS", "ECG")
    ds.add_new((group, 0x0022), "LO", f"ECG of {patient.display_name}")
    ds.add_new((group, 0x0030), "SH", "mV")
    ds.add_new((group, 0x2500), "LO", patient.patient_id)
    ds.add_new((group, 0x0103), "US", 0)
    ds.add_new((group, 0x3000), "OW", values.tobytes())


def add_icon_image(ds: Dataset, arr: np.ndarray | None = None, size: int = 16) -> None:
    """IconImageSequence (PS3.3 C.7.6.1.1.6) with a ``size`` x ``size`` 8-bit thumbnail."""
    if arr is None:
        arr = _phantom(size, size)
    grey: np.ndarray = arr.astype(np.float64)
    if grey.ndim == 3:
        grey = grey.mean(axis=-1)
    src = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    span = float(src.max() - src.min()) or 1.0
    icon_arr = ((src - src.min()) / span * 255).astype(np.uint8)
    icon = Dataset()
    _set_pixels(icon, icon_arr, photometric="MONOCHROME2", bits_stored=8)
    ds.IconImageSequence = [icon]


def add_un_elements(ds: Dataset, patient: Patient) -> None:
    """Elements stored with VR UN: OtherPatientNames (0010,1001), a public PN, as UN bytes.

    Written in Explicit VR the element keeps VR ``UN`` on disk (the private UN value is planted
    by :func:`add_private_blocks`). When the file is read back pydicom resolves the public tag
    to its dictionary VR (``config.replace_un_with_known_vr``).
    """
    encodings = patient.character_sets or ["ISO_IR 6"]
    data = encode_string(f"{patient.family_name}^Alias", convert_encodings(encodings))
    # pydicom turns UN into the dictionary VR when the element is made; switch that off for the
    # construction only (the element then stays UN in memory and is written as UN).
    previous = config.replace_un_with_known_vr
    config.replace_un_with_known_vr = False
    try:
        element = DataElement(0x00101001, "UN", _even(data, b" "))
    finally:
        config.replace_un_with_known_vr = previous
    ds.add(element)


def _add_extras(ds: Dataset, patient: Patient, arr: np.ndarray | None) -> None:
    add_private_blocks(ds, patient)
    if arr is not None:
        add_overlay(ds, patient)
        add_curve(ds, patient)
        add_icon_image(ds, arr[0] if "NumberOfFrames" in ds else arr)
    add_un_elements(ds, patient)


# --------------------------------------------------------------------------- image builders


def _plane(ds: Dataset, position: Sequence[float], spacing: float = 1.0) -> None:
    ds.PixelSpacing = [spacing, spacing]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.SliceThickness = 2.0
    ds.SliceLocation = float(position[2])


def build_ct_image(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    references: Sequence[Dataset] = (),
    rows: int = 64,
    columns: int = 64,
    extras: bool = True,
) -> Dataset:
    """A CT Image Storage instance (PS3.3 A.3) with planted PHI.

    Parameters
    ----------
    patient : Patient, optional
        Planted identity (default ``PATIENTS[0]``).
    series : Series, optional
        Series context (default: series 1 of a default study).
    instance_number : int
        InstanceNumber; also sets the slice position and the SOPInstanceUID.
    references : sequence of Dataset
        Instances listed in ReferencedImageSequence.
    rows, columns : int
        Image size.
    extras : bool
        Plant private blocks, an overlay, a curve, an icon and UN elements too.
    """
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 1, "CT chest")
    ds = _new_dataset(_SOP["CT"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "CT", instance_number)
    _plant_image(ds, patient, series, instance_number, references, ["ORIGINAL", "PRIMARY", "AXIAL"])
    ds.PatientPosition = "HFS"
    _plane(ds, [-32.0, -32.0, 2.0 * instance_number])
    ds.KVP = "120"
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    arr = (_phantom(rows, columns, instance_number / 3) * 2000 + 24).astype(np.uint16)
    _set_pixels(ds, arr, photometric="MONOCHROME2", bits_stored=12)
    if extras:
        _add_extras(ds, patient, arr)
    return ds


def build_mr_image(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    references: Sequence[Dataset] = (),
    rows: int = 64,
    columns: int = 64,
    extras: bool = True,
) -> Dataset:
    """An MR Image Storage instance (PS3.3 A.4) with planted PHI (see :func:`build_ct_image`)."""
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 2, "MR brain")
    ds = _new_dataset(_SOP["MR"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "MR", instance_number)
    _plant_image(ds, patient, series, instance_number, references, ["ORIGINAL", "PRIMARY", "OTHER"])
    ds.PatientPosition = "HFS"
    _plane(ds, [-32.0, -32.0, 3.0 * instance_number])
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = "500"
    ds.EchoTime = "15"
    ds.EchoTrainLength = "1"
    ds.MagneticFieldStrength = "1.5"
    ds.ImagedNucleus = "1H"
    ds.SequenceName = "se2d1"
    ds.WindowCenter = "600"
    ds.WindowWidth = "1200"
    arr = (_phantom(rows, columns, instance_number / 2) * 1200).astype(np.uint16)
    _set_pixels(ds, arr, photometric="MONOCHROME2", bits_stored=16)
    if extras:
        _add_extras(ds, patient, arr)
    return ds


def build_cr_image(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    references: Sequence[Dataset] = (),
    rows: int = 128,
    columns: int = 128,
    extras: bool = True,
) -> Dataset:
    """A Computed Radiography instance (PS3.3 A.2), MONOCHROME1, with the name burned in."""
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 3, "CR chest")
    ds = _new_dataset(_SOP["CR"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "CR", instance_number, frame_of_reference=False)
    _plant_image(ds, patient, series, instance_number, references, ["ORIGINAL", "PRIMARY"])
    ds.BurnedInAnnotation = "YES"
    ds.PatientOrientation = ["L", "F"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.ImagerPixelSpacing = [0.5, 0.5]
    ds.WindowCenter = "2048"
    ds.WindowWidth = "4096"
    # MONOCHROME1: low values are bright, so burned text is drawn with 0.
    arr = (4095 - _phantom(rows, columns) * 3000).astype(np.uint16)
    burn_text(arr, _ascii(patient.display_name).upper(), (4, rows - 6), 0.35, 0)
    _set_pixels(ds, arr, photometric="MONOCHROME1", bits_stored=12)
    if extras:
        _add_extras(ds, patient, arr)
    return ds


def build_dx_image(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    references: Sequence[Dataset] = (),
    rows: int = 128,
    columns: int = 128,
    extras: bool = True,
) -> Dataset:
    """A Digital X-Ray Image for Presentation instance (PS3.3 A.26), MONOCHROME2."""
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 4, "DX hand")
    ds = _new_dataset(_SOP["DX"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "DX", instance_number, frame_of_reference=False)
    _plant_image(ds, patient, series, instance_number, references, ["ORIGINAL", "PRIMARY"])
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ReferencedPerformedProcedureStepSequence = [_pps_reference(series)]
    ds.PositionerType = "COLUMN"
    ds.PatientOrientation = ["R", "F"]
    ds.BodyPartExamined = "HAND"
    ds.ViewPosition = "PA"
    ds.ImageLaterality = "R"
    ds.AnatomicRegionSequence = [_code("85562004", "SCT", f"Hand of {patient.family_name}")]
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.LossyImageCompression = "00"
    ds.WindowCenter = "2048"
    ds.WindowWidth = "4096"
    ds.DetectorType = "SCINTILLATOR"
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.AcquisitionContextSequence = []
    arr = (_phantom(rows, columns) * 3500).astype(np.uint16)
    _set_pixels(ds, arr, photometric="MONOCHROME2", bits_stored=12)
    if extras:
        _add_extras(ds, patient, arr)
    return ds


def _us_common(ds: Dataset, burned: bool) -> None:
    ds.BurnedInAnnotation = "YES" if burned else "NO"
    ds.PatientOrientation = ""
    ds.LossyImageCompression = "00"


def build_us_image(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    references: Sequence[Dataset] = (),
    rows: int = 192,
    columns: int = 256,
    burned_in: bool = True,
    text_scale: float = 0.5,
    extras: bool = True,
) -> Dataset:
    """An Ultrasound Image instance (PS3.3 A.6), RGB, single frame.

    With ``burned_in`` the name, ID, birth date and institution are burned into the pixels at
    the boxes :func:`annotated_frame` returns for the same arguments (``scale=text_scale``),
    and BurnedInAnnotation is ``YES``; otherwise the frame is clean and BurnedInAnnotation is
    ``NO``. Raise ``rows``, ``columns`` and ``text_scale`` for OCR tests (tesseract reads the
    default 0.5 once the frame is upscaled).
    """
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 5, "US abdomen")
    ds = _new_dataset(_SOP["US"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "US", instance_number, frame_of_reference=False)
    _plant_image(
        ds,
        patient,
        series,
        instance_number,
        references,
        ["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"],
    )
    _us_common(ds, burned_in)
    if burned_in:
        arr, _ = annotated_frame(patient, series.study, rows, columns, color=True, scale=text_scale)
    else:
        grey = (_phantom(rows, columns) * 180).astype(np.uint8)
        arr = np.stack([grey, grey, grey], axis=-1)
    _set_pixels(ds, arr, photometric="RGB", bits_stored=8)
    if extras:
        _add_extras(ds, patient, None)
    return ds


def build_us_multiframe(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    references: Sequence[Dataset] = (),
    frames: int = 10,
    text_scale: float = 0.4,
    rows: int = 120,
    columns: int = 160,
    extras: bool = True,
) -> Dataset:
    """An Ultrasound Multi-frame Image instance (PS3.3 A.7), RGB cine with text burned into
    every frame (BurnedInAnnotation ``YES``); frame ``i`` is :func:`annotated_frame` with
    ``phase=i / 2`` and ``scale=text_scale``."""
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 6, "US cine")
    ds = _new_dataset(_SOP["US_MF"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "US", instance_number, frame_of_reference=False)
    _plant_image(
        ds,
        patient,
        series,
        instance_number,
        references,
        ["ORIGINAL", "PRIMARY", "TRANSTHORACIC", "0001"],
    )
    _us_common(ds, True)
    stack = np.stack(
        [
            annotated_frame(
                patient, series.study, rows, columns, color=True, phase=i / 2, scale=text_scale
            )[0]
            for i in range(frames)
        ]
    )
    ds.FrameTime = "40"
    ds.FrameIncrementPointer = 0x00181063
    ds.CineRate = 25
    ds.RecommendedDisplayFrameRate = 25
    _set_pixels(ds, stack, photometric="RGB", bits_stored=8)
    if extras:
        _add_extras(ds, patient, None)
    return ds


def build_sc_image(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    references: Sequence[Dataset] = (),
    rows: int = 192,
    columns: int = 256,
    color: bool = True,
    text_scale: float = 0.5,
    extras: bool = True,
) -> Dataset:
    """A Secondary Capture Image instance (PS3.3 A.8.1), RGB or MONOCHROME2, screenshot-like,
    with the name, ID, birth date and institution burned in (see :func:`annotated_frame`,
    ``scale=text_scale``)."""
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 7, "Screen capture")
    ds = _new_dataset(_SOP["SC"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "OT", instance_number, frame_of_reference=False)
    _plant_image(ds, patient, series, instance_number, references, ["DERIVED", "SECONDARY"])
    ds.BurnedInAnnotation = "YES"
    ds.PatientOrientation = ""
    ds.ConversionType = "WSD"
    ds.DateOfSecondaryCapture = series.study.study_date
    ds.TimeOfSecondaryCapture = series.study.study_time
    arr, _ = annotated_frame(patient, series.study, rows, columns, color=color, scale=text_scale)
    _set_pixels(ds, arr, photometric="RGB" if color else "MONOCHROME2", bits_stored=8)
    if extras:
        _add_extras(ds, patient, None if color else arr)
    return ds


def build_enhanced_mr(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    references: Sequence[Dataset] = (),
    frames: int = 4,
    rows: int = 64,
    columns: int = 64,
    extras: bool = True,
) -> Dataset:
    """An Enhanced MR Image instance (PS3.3 A.36.2), multi-frame with functional groups.

    Shared groups: Pixel Measures, Plane Orientation, Frame Anatomy, Pixel Value Transformation,
    Frame VOI LUT, MR Image Frame Type. Per-frame groups: Frame Content (with
    FrameAcquisitionDateTime and DimensionIndexValues), Plane Position. ImageType is ``DERIVED``
    and ``references`` become the Derivation Image source images.
    """
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 8, "Enhanced MR")
    study = series.study
    ds = _new_dataset(_SOP["EMR"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "MR", instance_number)
    image_type = ["DERIVED", "PRIMARY", "VOLUME", "NONE"]
    ds.ImageType = image_type
    ds.ContentDate = study.study_date
    ds.ContentTime = study.study_time
    ds.AcquisitionNumber = 1
    ds.AcquisitionDateTime = study.study_date + study.study_time
    ds.AcquisitionDuration = 12.5
    ds.ImageComments = f"Enhanced volume of {patient.display_name}"
    ds.ContentQualification = "PRODUCT"
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.MagneticFieldStrength = "1.5"
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.ImageComments = f"Enhanced volume of {patient.display_name}"
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    ds.PresentationLUTShape = "IDENTITY"
    ds.PatientPosition = "HFS"
    ds.ReferencedPerformedProcedureStepSequence = [_pps_reference(series)]
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.ComplexImageComponent = "MAGNITUDE"
    ds.AcquisitionContrast = "T1"
    ds.AcquisitionContextSequence = []
    # Enhanced General Equipment is all type 1: already set by _plant_common.
    # Multi-frame Dimension module
    org_uid = make_uid("dimension-organization", study.seed, series.number, instance_number)
    org = Dataset()
    org.DimensionOrganizationUID = org_uid
    ds.DimensionOrganizationSequence = [org]
    ds.DimensionOrganizationType = "3D"
    index = Dataset()
    index.DimensionOrganizationUID = org_uid
    index.DimensionIndexPointer = 0x00209057  # InStackPositionNumber
    index.FunctionalGroupPointer = 0x00209111  # FrameContentSequence
    index.DimensionDescriptionLabel = "In-Stack Position"
    stack_index = Dataset()
    stack_index.DimensionOrganizationUID = org_uid
    stack_index.DimensionIndexPointer = 0x00209056  # StackID
    stack_index.FunctionalGroupPointer = 0x00209111
    stack_index.DimensionDescriptionLabel = "Stack ID"
    ds.DimensionIndexSequence = [stack_index, index]
    # Shared functional groups
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [1.0, 1.0]
    measures.SliceThickness = 3.0
    shared.PixelMeasuresSequence = [measures]
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = [orientation]
    anatomy = Dataset()
    anatomy.FrameLaterality = "U"
    anatomy.AnatomicRegionSequence = [_code("12738006", "SCT", f"Brain of {patient.family_name}")]
    shared.FrameAnatomySequence = [anatomy]
    transform = Dataset()
    transform.RescaleIntercept = "0"
    transform.RescaleSlope = "1"
    transform.RescaleType = "US"
    shared.PixelValueTransformationSequence = [transform]
    voi = Dataset()
    voi.WindowCenter = "600"
    voi.WindowWidth = "1200"
    shared.FrameVOILUTSequence = [voi]
    frame_type = Dataset()
    frame_type.FrameType = image_type
    frame_type.PixelPresentation = "MONOCHROME"
    frame_type.VolumetricProperties = "VOLUME"
    frame_type.VolumeBasedCalculationTechnique = "NONE"
    frame_type.ComplexImageComponent = "MAGNITUDE"
    frame_type.AcquisitionContrast = "T1"
    shared.MRImageFrameTypeSequence = [frame_type]
    if references:
        derivation = Dataset()
        derivation.DerivationDescription = f"Resampled from {patient.name.split('=')[0]}"
        derivation.DerivationCodeSequence = [_code("113076", "DCM", "Segmentation")]
        sources = []
        for ref in references:
            source = _sop_reference(ref)
            source.PurposeOfReferenceCodeSequence = [
                _code("121322", "DCM", "Source image for image processing operation")
            ]
            sources.append(source)
        derivation.SourceImageSequence = sources
        shared.DerivationImageSequence = [derivation]
        ds.ReferencedSeriesSequence = _referenced_series(references)
        ds.SourceImageEvidenceSequence = _series_reference(references)
    ds.SharedFunctionalGroupsSequence = [shared]
    # Per-frame functional groups
    per_frame = []
    for i in range(frames):
        item = Dataset()
        content = Dataset()
        content.FrameAcquisitionNumber = i + 1
        content.FrameReferenceDateTime = f"{study.study_date}{study.study_time}.{i:02d}0000"
        content.FrameAcquisitionDateTime = content.FrameReferenceDateTime
        content.FrameAcquisitionDuration = 1000.0
        content.StackID = "1"
        content.InStackPositionNumber = i + 1
        content.DimensionIndexValues = [1, i + 1]
        content.FrameComments = f"Frame {i + 1} of {patient.patient_id}"
        item.FrameContentSequence = [content]
        position = Dataset()
        position.ImagePositionPatient = [-32.0, -32.0, 3.0 * i]
        item.PlanePositionSequence = [position]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    stack = np.stack(
        [(_phantom(rows, columns, i / 2) * 1200).astype(np.uint16) for i in range(frames)]
    )
    _set_pixels(ds, stack, photometric="MONOCHROME2", bits_stored=16)
    if extras:
        add_private_blocks(ds, patient)
        add_un_elements(ds, patient)
    return ds


def _referenced_series(references: Sequence[Dataset]) -> list[Dataset]:
    series: dict[str, list[Dataset]] = {}
    for ref in references:
        series.setdefault(ref.SeriesInstanceUID, []).append(ref)
    items = []
    for uid, instances in series.items():
        item = Dataset()
        item.SeriesInstanceUID = uid
        item.ReferencedInstanceSequence = [_sop_reference(r) for r in instances]
        items.append(item)
    return items


# --------------------------------------------------------------------------- documents


def _content_item(relationship: str, value_type: str, concept: Dataset) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = [concept]
    return item


def build_sr_document(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    references: Sequence[Dataset] = (),
    extras: bool = True,
) -> Dataset:
    """A Comprehensive SR instance (PS3.3 A.35.3) whose content tree is full of PHI.

    The tree: a report CONTAINER with a PNAME observer, a nested CONTAINER holding TEXT items that
    name the patient and quote the ID, a DATE item with the birth date, a UIDREF to the study and
    one IMAGE item per reference. The document is VERIFIED by an observer with an organisation,
    and the references are listed in CurrentRequestedProcedureEvidenceSequence.
    """
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 9, "Report")
    study = series.study
    ds = _new_dataset(_SOP["SR"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "SR", instance_number, frame_of_reference=False)
    ds.ReferencedPerformedProcedureStepSequence = [_pps_reference(series)]
    ds.ContentDate = study.study_date
    ds.ContentTime = study.study_time
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"
    observer = Dataset()
    observer.VerifyingObserverName = study.referring_physician
    observer.VerifyingOrganization = study.institution_name
    observer.VerificationDateTime = study.study_date + "120000"
    observer.VerifyingObserverIdentificationCodeSequence = []
    ds.VerifyingObserverSequence = [observer]
    ds.PerformedProcedureCodeSequence = [_code("36643-5", "LN", "Chest X-ray 2 views")]
    if references:
        ds.CurrentRequestedProcedureEvidenceSequence = _series_reference(references)
    request = Dataset()
    request.StudyInstanceUID = study.study_instance_uid
    request.AccessionNumber = study.accession_number
    request.RequestedProcedureID = f"RP{patient.patient_id}"
    request.RequestedProcedureDescription = f"Exam of {patient.display_name}"
    request.RequestedProcedureCodeSequence = []
    request.ReferencedStudySequence = []
    request.PlacerOrderNumberImagingServiceRequest = f"PO{patient.patient_id}"
    request.FillerOrderNumberImagingServiceRequest = f"FO{study.accession_number}"
    ds.ReferencedRequestSequence = [request]
    # SR Document Content: root
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code("18748-4", "LN", "Diagnostic Imaging Report")]
    ds.ContinuityOfContent = "SEPARATE"
    observer_type = _content_item(
        "HAS OBS CONTEXT", "CODE", _code("121005", "DCM", "Observer Type")
    )
    observer_type.ConceptCodeSequence = [_code("121006", "DCM", "Person")]
    observer_name = _content_item(
        "HAS OBS CONTEXT", "PNAME", _code("121008", "DCM", "Person Observer Name")
    )
    observer_name.PersonName = study.referring_physician
    subject_name = _content_item("HAS OBS CONTEXT", "PNAME", _code("121029", "DCM", "Subject Name"))
    subject_name.PersonName = patient.name
    birth = _content_item("HAS OBS CONTEXT", "DATE", _code("121031", "DCM", "Subject Birth Date"))
    birth.Date = patient.birth_date
    subject_id = _content_item("HAS OBS CONTEXT", "TEXT", _code("121030", "DCM", "Subject ID"))
    subject_id.TextValue = patient.patient_id
    study_uid = _content_item(
        "HAS OBS CONTEXT", "UIDREF", _code("110180", "DCM", "Study Instance UID")
    )
    study_uid.UID = study.study_instance_uid
    history = _content_item("CONTAINS", "CONTAINER", _code("121060", "DCM", "History"))
    history.ContinuityOfContent = "SEPARATE"
    history_text = _content_item("CONTAINS", "TEXT", _code("121060", "DCM", "History"))
    history_text.TextValue = (
        f"{patient.display_name} (MRN {patient.patient_id}, born {patient.birth_date}) "
        f"lives at {patient.address}; phone {patient.phone}."
    )
    history.ContentSequence = [history_text]
    findings = _content_item("CONTAINS", "CONTAINER", _code("121070", "DCM", "Findings"))
    findings.ContinuityOfContent = "SEPARATE"
    finding = _content_item("CONTAINS", "TEXT", _code("121071", "DCM", "Finding"))
    finding.TextValue = (
        f"No change since the prior study of Mr/Ms {patient.family_name} "
        f"at {study.institution_name}."
    )
    findings_items = [finding]
    for ref in references:
        image = _content_item(
            "INFERRED FROM", "IMAGE", _code("121112", "DCM", "Source of Measurement")
        )
        image.ReferencedSOPSequence = [_sop_reference(ref)]
        findings_items.append(image)
    findings.ContentSequence = findings_items
    impression = _content_item("CONTAINS", "TEXT", _code("121073", "DCM", "Impression"))
    impression.TextValue = f"Reported by {study.referring_physician.replace('^', ' ')}."
    ds.ContentSequence = [
        observer_type,
        observer_name,
        subject_name,
        birth,
        subject_id,
        study_uid,
        history,
        findings,
        impression,
    ]
    if extras:
        add_private_blocks(ds, patient)
        add_un_elements(ds, patient)
    return ds


def make_pdf(lines: Sequence[str]) -> bytes:
    """A minimal valid one-page PDF 1.4 showing ``lines`` in Helvetica (ASCII text)."""
    text_ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        escaped = _ascii(line).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        text_ops.append(f"({escaped}) '")
    text_ops.append("ET")
    stream = "\n".join(text_ops).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (Report) /Producer (deid synthetic) >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def make_cda(patient: Patient, study: Study) -> bytes:
    """A small HL7 CDA R2 document (UTF-8 XML) naming the patient."""
    family, given = patient.family_name, patient.given_name
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <id root="{make_uid("cda", study.seed)}"/>
  <code code="18748-4" codeSystem="2.16.840.1.113883.6.1" displayName="Diagnostic Imaging Report"/>
  <title>Imaging report for {patient.display_name}</title>
  <effectiveTime value="{study.study_date}"/>
  <recordTarget><patientRole>
    <id extension="{patient.patient_id}" root="{UID_ROOT}9"/>
    <addr>{patient.address}</addr><telecom value="tel:{patient.phone}"/>
    <patient><name><given>{given}</given><family>{family}</family></name>
      <administrativeGenderCode code="{patient.sex}"/><birthTime value="{patient.birth_date}"/>
    </patient>
  </patientRole></recordTarget>
  <component><nonXMLBody><text>Patient {patient.name} seen at {study.institution_name}.</text>
  </nonXMLBody></component>
</ClinicalDocument>
"""
    return xml.encode("utf-8")


def _encapsulated(
    ds: Dataset, patient: Patient, series: Series, document: bytes, mime: str, title: str
) -> None:
    study = series.study
    ds.ConversionType = "WSD"
    ds.ContentDate = study.study_date
    ds.ContentTime = study.study_time
    ds.AcquisitionDateTime = study.study_date + study.study_time
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = title
    ds.ConceptNameCodeSequence = [_code("18748-4", "LN", "Diagnostic Imaging Report")]
    ds.MIMETypeOfEncapsulatedDocument = mime
    ds.EncapsulatedDocumentLength = len(document)
    ds.EncapsulatedDocument = _even(document)


def build_encapsulated_pdf(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    extras: bool = True,
) -> Dataset:
    """An Encapsulated PDF instance (PS3.3 A.45.1); the PDF text names the patient."""
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 10, "Scanned documents")
    study = series.study
    ds = _new_dataset(_SOP["PDF"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "DOC", instance_number, frame_of_reference=False)
    pdf = make_pdf(
        [
            f"Referral for {patient.display_name}",
            f"Patient ID: {patient.patient_id}   Born: {patient.birth_date}",
            f"Address: {patient.address}",
            f"Referred by {study.referring_physician.replace('^', ' ')}, {study.institution_name}",
        ]
    )
    _encapsulated(ds, patient, series, pdf, "application/pdf", f"Referral {patient.family_name}")
    if extras:
        add_private_blocks(ds, patient)
    return ds


def build_encapsulated_cda(
    patient: Patient | None = None,
    series: Series | None = None,
    instance_number: int = 1,
    *,
    extras: bool = True,
) -> Dataset:
    """An Encapsulated CDA instance (PS3.3 A.45.2); the XML names the patient."""
    patient = patient or _DEFAULT_PATIENT
    series = _default_series(series, 11, "Clinical documents")
    ds = _new_dataset(_SOP["CDA"], series.sop_instance_uid(instance_number), patient)
    _plant_common(ds, patient, series, "DOC", instance_number, frame_of_reference=False)
    _encapsulated(
        ds,
        patient,
        series,
        make_cda(patient, series.study),
        "text/XML",
        f"CDA {patient.family_name}",
    )
    ds.HL7InstanceIdentifier = f"{make_uid('cda', series.study.seed)}^"
    if extras:
        add_private_blocks(ds, patient)
    return ds


def build_all(patient: Patient | None = None, study: Study | None = None) -> dict[str, Dataset]:
    """One instance of every builder for ``patient`` in ``study``, cross-referenced.

    Keys: ``ct``, ``mr``, ``cr``, ``dx``, ``us``, ``us_clean``, ``us_cine``, ``sc``, ``sc_grey``,
    ``enhanced_mr``, ``sr``, ``pdf``, ``cda``. The MR references the CT, the enhanced MR derives
    from the MR, the SC derives from the CT and the SR cites the CT, MR and US.
    """
    patient = patient or _DEFAULT_PATIENT
    study = study or _DEFAULT_STUDY
    out: dict[str, Dataset] = {}
    out["ct"] = build_ct_image(patient, Series(study, 1, "CT chest"))
    out["mr"] = build_mr_image(patient, Series(study, 2, "MR brain"), references=[out["ct"]])
    out["cr"] = build_cr_image(patient, Series(study, 3, "CR chest"))
    out["dx"] = build_dx_image(patient, Series(study, 4, "DX hand"))
    out["us"] = build_us_image(patient, Series(study, 5, "US abdomen"))
    out["us_clean"] = build_us_image(patient, Series(study, 5, "US abdomen"), 2, burned_in=False)
    out["us_cine"] = build_us_multiframe(patient, Series(study, 6, "US cine"))
    out["sc"] = build_sc_image(patient, Series(study, 7, "Screen capture"), references=[out["ct"]])
    out["sc_grey"] = build_sc_image(patient, Series(study, 7, "Screen capture"), 2, color=False)
    out["enhanced_mr"] = build_enhanced_mr(
        patient, Series(study, 8, "Enhanced MR"), references=[out["mr"]]
    )
    out["sr"] = build_sr_document(
        patient, Series(study, 9, "Report"), references=[out["ct"], out["mr"], out["us"]]
    )
    out["pdf"] = build_encapsulated_pdf(patient, Series(study, 10, "Scanned documents"))
    out["cda"] = build_encapsulated_cda(patient, Series(study, 11, "Clinical documents"))
    return out


# --------------------------------------------------------------------------- transfer syntaxes


def with_transfer_syntax(ds: Dataset, transfer_syntax: str) -> Dataset:
    """A copy of ``ds`` in ``transfer_syntax``, same SOPInstanceUID.

    Explicit/Implicit VR Little Endian and Deflated only change the file meta (the encoding
    happens when written). RLE Lossless, JPEG-LS Lossless and JPEG 2000 Lossless compress with
    pydicom (``generate_instance_uid=False``); RGB in JPEG 2000 is written with the reversible
    colour transform as ``YBR_RCT``. JPEG Baseline (8-bit images only) encodes each
    frame with OpenCV, sets PhotometricInterpretation ``YBR_FULL_422`` for colour and
    LossyImageCompression ``01``.

    Raises
    ------
    ValueError
        For an unsupported transfer syntax, a dataset without pixel data for a compressed
        syntax, or JPEG Baseline on data of more than 8 bits.
    """
    uid = UID(transfer_syntax)
    if uid not in ALL_TRANSFER_SYNTAXES:
        raise ValueError(f"with_transfer_syntax: unsupported transfer syntax {uid}.")
    out = _copy(ds)
    if not uid.is_compressed:
        out.file_meta.TransferSyntaxUID = uid
        return out
    if "PixelData" not in out:
        raise ValueError("with_transfer_syntax: no PixelData to compress.")
    if uid == JPEGBaseline8Bit:
        _jpeg_baseline(out)
        return out
    if uid == JPEG2000Lossless and out.PhotometricInterpretation == "RGB":
        # The reversible colour transform, labelled YBR_RCT (PS3.5 8.2.4), as most JPEG 2000
        # writers do; pydicom would otherwise keep RGB without the transform.
        arr = out.pixel_array
        out.PhotometricInterpretation = "YBR_RCT"
        out.compress(uid, arr, generate_instance_uid=False)
        return out
    out.compress(uid, generate_instance_uid=False)
    return out


def _copy(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    out = dcmread(buffer)
    out.preamble = ds.preamble
    return out


def _jpeg_baseline(ds: Dataset) -> None:
    if int(ds.BitsAllocated) != 8:
        raise ValueError("with_transfer_syntax: JPEG Baseline needs 8-bit pixel data.")
    arr = ds.pixel_array
    color = int(ds.SamplesPerPixel) == 3
    frames = arr if "NumberOfFrames" in ds and int(ds.NumberOfFrames) > 1 else arr[None]
    params = [cv2.IMWRITE_JPEG_QUALITY, 95]
    if color:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422]
    encoded = []
    for frame in frames:
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if color else frame
        ok, data = cv2.imencode(".jpg", image, params)
        if not ok:
            raise ValueError("with_transfer_syntax: OpenCV could not encode a JPEG frame.")
        encoded.append(data.tobytes())
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.PhotometricInterpretation = "YBR_FULL_422" if color else "MONOCHROME2"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = f"{arr.nbytes / sum(len(e) for e in encoded):.2f}"[:16]
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit


def encode(ds: Dataset) -> bytes:
    """The Part 10 bytes of ``ds`` (preamble, file meta, dataset in its transfer syntax)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# --------------------------------------------------------------------------- broken inputs


def broken_files(ds: Dataset, seed: int = 0) -> dict[str, bytes]:
    """Bytes of broken inputs made from ``ds`` (which must have pixel data), by file name.

    * ``empty.dcm`` - zero bytes.
    * ``random.dcm`` - 4 KiB of seeded random bytes.
    * ``truncated_header.dcm`` - the Part 10 file cut in the middle of the dataset header.
    * ``truncated_pixels.dcm`` - the file cut in the middle of the pixel data.
    * ``no_meta.dcm`` - the dataset alone, implicit VR, without preamble or file meta.
    * ``bad_length.dcm`` - an element length changed to run past the end of the file.
    * ``notes.txt`` - a text file.
    """
    data = encode(ds)
    pixel_offset = data.rfind(b"\xe0\x7f\x10\x00")
    if pixel_offset < 0:
        raise ValueError("broken_files: the dataset needs PixelData.")
    meta_end = 132 + 12 + int.from_bytes(data[140:144], "little")
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {"empty.dcm": b""}
    out["random.dcm"] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    out["truncated_header.dcm"] = data[: meta_end + (pixel_offset - meta_end) // 2]
    out["truncated_pixels.dcm"] = data[: pixel_offset + 12 + (len(data) - pixel_offset) // 2]
    raw = DicomBytesIO()
    raw.is_little_endian = True
    raw.is_implicit_VR = True
    write_dataset(raw, ds)
    out["no_meta.dcm"] = raw.getvalue()
    # StudyDescription (0008,1030) LO: explicit VR header is tag(4) VR(2) length(2).
    tag = data.find(b"\x08\x00\x30\x10LO", meta_end)
    corrupt = bytearray(data)
    corrupt[tag + 6 : tag + 8] = (0xFFF0).to_bytes(2, "little")
    out["bad_length.dcm"] = bytes(corrupt)
    out["notes.txt"] = b"This is not a DICOM file.\nJust some notes about a scan.\n"
    return out


def write_dicomdir(
    root: Path, datasets: Sequence[Dataset], file_set_id: str = "DEIDSAMPLE"
) -> Path:
    """Write a DICOMDIR and its referenced instances under ``root`` with pydicom's FileSet.

    The instances are copied into the file-set's own layout (``PT000000/ST000000/...``). The
    file-set UID is derived from ``file_set_id`` so the output is deterministic. Returns the path
    of the DICOMDIR file.
    """
    fs = FileSet()
    fs.ID = file_set_id
    fs.UID = make_uid("file-set", file_set_id)
    for ds in datasets:
        instance = fs.add(_copy(ds))
        _fix_sr_record(instance.node._record, ds)
    root.mkdir(parents=True, exist_ok=True)
    fs.write(root)
    return root / "DICOMDIR"


def _fix_sr_record(record: Dataset, ds: Dataset) -> None:
    """Make pydicom's SR DOCUMENT record conform to PS3.3 F.5.21.

    pydicom copies the whole ContentSequence into the record; the record may only hold the
    root's HAS CONCEPT MOD items, and needs VerificationDateTime when the document is VERIFIED.
    """
    if record.get("DirectoryRecordType") != "SR DOCUMENT":
        return
    if "ContentSequence" in record:
        kept = [
            item
            for item in record.ContentSequence
            if item.get("RelationshipType") == "HAS CONCEPT MOD"
        ]
        if kept:
            record.ContentSequence = kept
        else:
            del record.ContentSequence
    if ds.get("VerificationFlag") == "VERIFIED" and "VerifyingObserverSequence" in ds:
        record.VerificationDateTime = ds.VerifyingObserverSequence[0].VerificationDateTime
