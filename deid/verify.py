"""``deid verify``: an independent scan of an output folder for identifying values of its sources.

The cleaner decides what to keep from the profile (PS3.15 Table E.1-1) and its residual-identity
guard; this module decides nothing of the kind. It reads every source again, gathers its
identifying values by its own rules (:func:`deid.identifiers.collect_identifiers` is merged in,
but not relied upon), and searches every output file for them:

* every element at every depth (sequences, private elements, the file meta), text decoded with its
  SpecificCharacterSet, binary values as bytes;
* the raw bytes of the whole file (ASCII, Latin-1, UTF-8 and the DICOM legacy character sets, and
  UTF-16), which finds values outside any element pydicom parsed;
* the output's own file and folder names;
* the reports (``report.json``, ``report.csv``, ``report.html``), which must hold none of the
  values of any source.

An output is paired with its source through ``OUT/report.json`` when present, else by identical
relative path (mirror layout). An output without a known source is checked against the values of
every source and listed as unpaired.

A hit names the output, the location (tag path, ``raw bytes @offset``, ``file name``) and the kind
of value, never the value. The values themselves exist only in memory while the scan runs.

Short values are where false alarms come from, so: name parts of two letters and IDs under four
characters are only matched as a whole element value; numbers under six digits and plain
``YYYYMMDD`` dates are searched in text elements, never in raw bytes; pixel data and other numeric
arrays are searched only for values of six characters or more with a letter. Values are searched
as one regular expression per source, built as a trie; the expression of every source together
(for the reports and unpaired outputs) takes a few seconds to compile per thousand patients.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path, PurePosixPath

import pydicom
import pydicom.config
import pydicom.uid
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from deid.errors import InputError, OutputError
from deid.identifiers import collect_identifiers
from deid.io import SourceFile, discover
from deid.manifest import STATE_DIR
from deid.report import REPORT_NAMES

logger = logging.getLogger(__name__)

__all__ = ["Hit", "VerifyReport", "verify_output", "KINDS"]

# --------------------------------------------------------------------------- kinds of value

PERSON_NAME = "person name"
PATIENT_ID = "patient id"
ACCESSION = "accession number"
BIRTH_DATE = "birth date"
OTHER_ID = "id"
PHONE = "phone number"
ADDRESS = "address"
INSTITUTION = "institution"
UID_KIND = "uid"
DATE = "date"
FREE_TEXT = "free text"
UNREADABLE = "unreadable output"

#: Every kind a hit may report, most identifying first (the order decides the kind of a value
#: found in several roles).
KINDS: tuple[str, ...] = (
    PERSON_NAME, PATIENT_ID, ACCESSION, BIRTH_DATE, OTHER_ID, PHONE, ADDRESS, INSTITUTION,
    UID_KIND, DATE, FREE_TEXT, UNREADABLE,
)
_RANK = {kind: i for i, kind in enumerate(KINDS)}
#: Kinds searched as literal text (UIDs, dates and phone numbers are found by their shape).
_LITERAL_KINDS = (
    PERSON_NAME, PATIENT_ID, ACCESSION, BIRTH_DATE, OTHER_ID, PHONE, ADDRESS, INSTITUTION,
    FREE_TEXT,
)

# --------------------------------------------------------------------------- what is identifying

#: Identifiers of the patient.
PATIENT_ID_KEYWORDS = frozenset({
    "PatientID", "OtherPatientIDs", "MedicalRecordLocator", "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID",
})
ACCESSION_KEYWORDS = frozenset({"AccessionNumber"})
#: Identifiers of the visit, the order, the procedure or the device.
OTHER_ID_KEYWORDS = frozenset({
    "StudyID", "AdmissionID", "ServiceEpisodeID", "RequestedProcedureID",
    "ScheduledProcedureStepID", "PerformedProcedureStepID",
    "FillerOrderNumberImagingServiceRequest", "PlacerOrderNumberImagingServiceRequest",
    "FillerOrderNumberProcedure", "PlacerOrderNumberProcedure", "DeviceSerialNumber",
    "DetectorID", "GantryID", "LocalNamespaceEntityID", "UniversalEntityID",
})
BIRTH_DATE_KEYWORDS = frozenset({"PatientBirthDate", "PatientBirthDateInAlternativeCalendar"})
ADDRESS_KEYWORDS = frozenset({
    "PatientAddress", "InstitutionAddress", "ReferringPhysicianAddress", "PersonAddress",
    "PatientInstitutionResidence", "CurrentPatientLocation", "RegionOfResidence",
})
PHONE_KEYWORDS = frozenset({
    "PatientTelephoneNumbers", "PersonTelephoneNumbers", "ReferringPhysicianTelephoneNumbers",
    "PatientTelecomInformation", "PersonTelecomInformation",
})
#: Institution names searched whole and word by word.
INSTITUTION_WORD_KEYWORDS = frozenset({"InstitutionName"})
#: Places and organisations searched as whole values only (their words are too common).
INSTITUTION_WHOLE_KEYWORDS = frozenset({
    "InstitutionalDepartmentName", "IssuerOfPatientID", "StationName", "ResponsibleOrganization",
})
#: Free text whose words are identifying when they are a name or ID of any source.
FREE_TEXT_KEYWORDS = frozenset({
    "StudyDescription", "SeriesDescription", "ImageComments", "PatientComments",
    "AdditionalPatientHistory", "StudyComments", "RequestedProcedureDescription",
    "PerformedProcedureStepDescription", "ReasonForTheRequestedProcedure",
    "RequestedProcedureComments", "AdmittingDiagnosesDescription", "DerivationDescription",
    "ProtocolName", "TextValue", "Occupation", "MedicalAlerts", "Allergies", "VisitComments",
    "ScheduledProcedureStepDescription", "CommentsOnThePerformedProcedureStep",
    "AcquisitionComments", "InterpretationText", "ImagingServiceRequestComments",
    "ReasonForStudy", "IdentifyingComments", "FrameComments", "ContentDescription",
    "CodeMeaning", "PatientState", "SpecialNeeds",
})
#: UI attributes that name a class, a transfer syntax, a coding scheme or a software: the same in
#: every output, never an identifier of an instance.
CLASS_UID_KEYWORDS = frozenset({
    "SOPClassUID", "MediaStorageSOPClassUID", "ReferencedSOPClassUID",
    "ReferencedSOPClassUIDInFile", "AffectedSOPClassUID", "RequestedSOPClassUID",
    "SOPClassesInStudy", "SOPClassesSupported", "PertinentSOPClassesInStudy",
    "PertinentSOPClassesInSeries", "RelatedGeneralSOPClassUID",
    "ReferencedRelatedGeneralSOPClassUIDInFile", "OriginalSpecializedSOPClassUID",
    "RTVCommunicationSOPClassUID", "TransferSyntaxUID", "ReferencedTransferSyntaxUIDInFile",
    "AvailableTransferSyntaxUID", "StoredInstanceTransferSyntaxUID", "FlowTransferSyntaxUID",
    "EncryptedContentTransferSyntaxUID", "MACCalculationTransferSyntaxUID",
    "ImplementationClassUID", "CodingSchemeUID", "ContextGroupExtensionCreatorUID",
    "CreatorVersionUID", "PrivateInformationCreatorUID", "MappingResourceUID", "ContextUID",
    "SegmentationTemplateUID",
})
#: UIDs defined by the standard (PS3.6 Annex A): never identifying.
WELL_KNOWN_UID_ROOT = "1.2.840.10008."

#: Name parts that are placeholders, not names (a source that was anonymised before).
_NAME_STOPWORDS = frozenset({
    "ANON", "ANONYMOUS", "ANONYMIZED", "ANONYMISED", "REMOVED", "UNKNOWN", "PATIENT", "NONE",
    "NULL", "NAME", "TEST",
})
#: Values that replaced an identifying value in an earlier de-identification: not identifying.
_PLACEHOLDERS = frozenset({
    "ANON", "ANONYMOUS", "ANONYMIZED", "ANONYMISED", "ANONYMIZATION", "REMOVED", "REDACTED",
    "UNKNOWN", "NONE", "NULL", "NA", "N A", "DEIDENTIFIED", "DE IDENTIFIED", "XXX", "XXXX",
    "XXXXX", "XXXXXX", "ZZZ", "TEST", "DUMMY",
})
#: Words of addresses and institution names too common to be identifying alone.
_COMMON_PLACE_WORDS = frozenset({
    "HOSPITAL", "HOSPITALS", "CLINIC", "CLINICS", "CENTER", "CENTRE", "MEDICAL", "MEDICINE",
    "UNIVERSITY", "UNIVERSITAIRE", "UNIVERSITATSKLINIKUM", "STREET", "ROAD", "AVENUE", "LANE",
    "DRIVE", "COURT", "PLACE", "SQUARE", "BOULEVARD", "ROUTE", "HIGHWAY", "SUITE", "FLOOR",
    "BUILDING", "STRASSE", "PLATZ", "ALLEE", "CALLE", "DEPARTMENT", "RADIOLOGY", "IMAGING",
    "HEALTH", "HEALTHCARE", "GENERAL", "SAINT", "NORTH", "SOUTH", "EAST", "WEST", "CITY",
    "INSTITUTE", "SERVICE", "SERVICES", "UNIT", "REGIONAL", "NATIONAL", "COUNTY", "STATE",
    "MEMORIAL", "CHILDREN", "CHILDRENS", "COMMUNITY", "SCHOOL", "FOUNDATION", "GROUP",
    "ASSOCIATES", "PARTNERS", "NETWORK", "SYSTEM", "TRUST", "KLINIKUM", "KRANKENHAUS",
    "HOPITAL", "OSPEDALE",
})

#: VRs searched as decoded text.
_TEXT_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
#: VRs searched as bytes.
_BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
#: Numeric arrays (pixels, overlays, curves, waveforms, look-up tables): searched only for long
#: values, so that pixel values that happen to spell three letters or a date are not hits.
_BULK_TAGS = frozenset({
    0x7FE00008, 0x7FE00009, 0x7FE00010, 0x54001010, 0x56000010, 0x56000020, 0x00283006,
    0x00281201, 0x00281202, 0x00281203, 0x00281204, 0x00281221, 0x00281222, 0x00281223,
})
_BULK_REPEATING = frozenset({(0x6000, 0x3000), (0x5000, 0x3000)})
#: Shortest literal searched inside bulk data.
_BULK_MIN_LENGTH = 6
#: Shortest all-digit literal searched in raw bytes (shorter numbers are everywhere).
_RAW_MIN_DIGITS = 6
#: Longest literal put in a pattern; longer values are searched by their first characters.
_MAX_LITERAL = 96

_CHUNK = 8 << 20
_OVERLAP = 1024

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Hit:
    """One identifying value of a source found in an output. Never holds the value."""

    output: str
    """Output path relative to the output folder (identifying parts of the path masked)."""
    location: str
    """Where: ``(gggg,eeee) Keyword`` with its sequence path (``(0008,1110)
    ReferencedStudySequence[0] > (0008,1155) ReferencedSOPInstanceUID``; private elements as
    ``(gggg,eeee) private``), ``raw bytes @offset`` (``... (UTF-16)``), ``file name``,
    ``folder name``, ``file`` (the whole file, for an unreadable output) or, in
    ``report.json``, the JSON path of the string (``inputs[3].input``)."""
    kind: str
    """What kind of value matched: one of :data:`KINDS`."""


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :func:`verify_output`."""

    files_checked: int
    hits: tuple[Hit, ...]
    unpaired: tuple[str, ...]
    """Outputs whose source could not be identified (checked against every source)."""
    sources_checked: int = 0
    unreadable_sources: int = 0
    """Source files that could not be read as DICOM (the pipeline cannot have written them)."""
    allowed_kinds: tuple[str, ...] = ()
    """Kinds of value that were not searched (``date`` for runs that keep full dates)."""

    @property
    def ok(self) -> bool:
        """True when no identifying value was found."""
        return not self.hits

    def describe(self) -> str:
        """A few lines for people: counts, kinds and paths; never a value."""
        lines = []
        if self.hits:
            files = len({h.output for h in self.hits})
            kinds = Counter(h.kind for h in self.hits)
            by_kind = ", ".join(f"{kind} {kinds[kind]}" for kind in KINDS if kind in kinds)
            lines.append(
                f"LEAKS: {len(self.hits)} hits in {files} of {self.files_checked} files checked "
                f"({by_kind})."
            )
        else:
            lines.append(
                f"Checked {self.files_checked} files against {self.sources_checked} source files: "
                "no identifying value found."
            )
        if self.unpaired:
            lines.append(
                f"{len(self.unpaired)} outputs could not be paired with their source and were "
                "checked against every source."
            )
        if self.unreadable_sources:
            lines.append(f"{self.unreadable_sources} source files are not readable DICOM.")
        if self.allowed_kinds:
            lines.append(f"Not searched (allowed): {', '.join(self.allowed_kinds)}.")
        return "\n".join(lines)


# --------------------------------------------------------------------------- text helpers

_WORD_RE = re.compile(r"[^\W_]+")
_SEP = "<sep>"
_SEP_RE = r"[\W_]{1,3}"
_END = ""


def _canon(text: str) -> str:
    """NFKC, upper case, words of letters and digits separated by one space."""
    return " ".join(_WORD_RE.findall(unicodedata.normalize("NFKC", text).upper()))


def _unbounded(ch: str) -> bool:
    """True for scripts written without spaces between words (CJK, kana, Hangul, Thai...)."""
    return ch.isalpha() and ord(ch) >= 0x0590


def _compact_length(canon: str) -> int:
    return len(canon) - canon.count(" ")


def _has_letter(canon: str) -> bool:
    return any(c.isalpha() for c in canon)


# --------------------------------------------------------------------------- dates

_MONTHS = {
    "JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9,
    "OCT": 10, "NOV": 11, "DEC": 12, "MAI": 5, "OKT": 10, "DEZ": 12, "MRZ": 3, "MÄR": 3,
    "ENE": 1, "ABR": 4, "AGO": 8, "DIC": 12, "GEN": 1, "MAG": 5, "LUG": 7, "OTT": 10, "SET": 9,
    "AOU": 8, "AOÛ": 8, "FÉV": 2, "AVR": 4, "DÉC": 12,
}
_MON = "(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")[^\W\d_]*\.?"
_DAY_SUFFIX = r"(?:ST|ND|RD|TH)?"
#: Plain digits: YYYYMMDD (or DDMMYYYY, MMDDYYYY), optionally followed by a time.
_DATE_DIGITS_RE = re.compile(r"(?<!\d)(\d{8})(?:\d{4}(?:\d{2})?)?(?!\d)")
#: Spellings with separators or month names.
_DATE_SPELLED_RES = (
    (re.compile(r"(?<![\d.])(?P<y>\d{4})(?P<s>[-./])(?P<m>\d{1,2})(?P=s)(?P<d>\d{1,2})(?!\d)"),
     "ymd"),
    (re.compile(r"(?<![\d.])(?P<a>\d{1,2})(?P<s>[-./ ])(?P<b>\d{1,2})(?P=s)(?P<y>\d{4})(?!\d)"),
     "ab"),
    (re.compile(r"(?<!\d)(?P<d>\d{1,2})" + _DAY_SUFFIX + r"[-./ ,]*" + _MON
                + r"[-./ ,]*(?P<y>\d{4})(?!\d)", re.IGNORECASE), "dmy"),
    (re.compile(r"(?<![^\W\d_])" + _MON + r"[-./ ,]*(?P<d>\d{1,2})" + _DAY_SUFFIX
                + r"[-./ ,]*(?P<y>\d{4})(?!\d)", re.IGNORECASE), "mdy"),
)
# Starts with a digit (not a lookbehind) so that the regex engine can skip ahead quickly.
_UID_TOKEN_RE = re.compile(r"\d(?<![\d.]\d)\d*(?:\.\d+){3,}")
_PHONE_RE = re.compile(r"\+?\(?\d[\d \t().\-/]{5,}\d")


def _valid_date(y: int, m: int, d: int) -> str | None:
    if 1800 <= y <= 2199 and 1 <= m <= 12 and 1 <= d <= 31:
        return f"{y:04d}{m:02d}{d:02d}"
    return None


def _digit_dates(digits: str) -> set[str]:
    """YYYYMMDD readings of eight digits: as YYYYMMDD, DDMMYYYY and MMDDYYYY."""
    out = set()
    for y, m, d in ((digits[:4], digits[4:6], digits[6:8]), (digits[4:], digits[2:4], digits[:2]),
                    (digits[4:], digits[:2], digits[2:4])):
        value = _valid_date(int(y), int(m), int(d))
        if value:
            out.add(value)
    return out


def _date_candidates(text: str, *, spelled_only: bool = False) -> Iterator[tuple[int, str]]:
    """``(offset, YYYYMMDD)`` for every way ``text`` may spell a date.

    UID-like runs (four components or more) are skipped: UIDs often hold timestamps.
    """
    if not any(c.isdigit() for c in text):
        return
    masked = _UID_TOKEN_RE.sub(lambda m: " " * len(m.group()), text)
    if not spelled_only:
        for m in _DATE_DIGITS_RE.finditer(masked):
            for value in _digit_dates(m.group(1)):
                yield m.start(), value
    for regex, order in _DATE_SPELLED_RES:
        for m in regex.finditer(masked):
            groups = m.groupdict()
            y = int(groups["y"])
            if order == "ymd":
                readings = [(int(groups["m"]), int(groups["d"]))]
            elif order == "ab":
                a, b = int(groups["a"]), int(groups["b"])
                readings = [(b, a), (a, b)]
            else:
                month = _MONTHS.get(unicodedata.normalize("NFKC", groups["mon"]).upper()[:3])
                readings = [(month, int(groups["d"]))] if month else []
            for month_value, day in readings:
                date = _valid_date(y, month_value, day)
                if date:
                    yield m.start(), date


def _da_values(value: str) -> Iterator[str]:
    """The dates of a DA (a value or a range) or the date of a DT value."""
    for part in value.split("-"):
        part = part.strip()
        if len(part) >= 8 and part[:8].isdigit():
            day = _valid_date(int(part[:4]), int(part[4:6]), int(part[6:8]))
            if day:
                yield day


# --------------------------------------------------------------------------- needles


class _Collector:
    """Identifying values of one source (or of all), being gathered. Holds PHI."""

    def __init__(self) -> None:
        self.literals: dict[str, str] = {}
        self.whole: dict[str, str] = {}
        self.uids: set[str] = set()
        self.birth_dates: set[str] = set()
        self.dates: set[str] = set()
        self.phones: set[str] = set()
        self.free_words: set[str] = set()
        self.tokens: set[str] = set()

    @staticmethod
    def _put(table: dict[str, str], canon: str, kind: str) -> None:
        old = table.get(canon)
        if old is None or _RANK[kind] < _RANK[old]:
            table[canon] = kind

    def literal(self, kind: str, text: str, *, min_length: int = 4,
                only_new: bool = False) -> None:
        canon = _canon(text)
        if not canon or canon in _PLACEHOLDERS or (
                only_new and (canon in self.literals or canon in self.whole)):
            return
        length = _compact_length(canon)
        threshold = 2 if any(_unbounded(c) for c in canon) else min_length
        if length >= threshold:
            self._put(self.literals, canon, kind)
        elif length >= 2:
            self._put(self.whole, canon, kind)

    def name_part(self, word: str) -> None:
        if word in _NAME_STOPWORDS:
            return
        self.literal(PERSON_NAME, word, min_length=3)
        if len(word) >= 5 and word.isalpha():
            self.tokens.add(word)

    def person_name(self, value: str) -> None:
        for group in value.split("="):
            components = [_canon(c) for c in group.split("^")]
            core = (components + ["", "", ""])[:3]
            for component in core:
                for word in component.split():
                    self.name_part(word)
                if " " in component:
                    self.literal(PERSON_NAME, component, min_length=3)
            family, given, middle = core
            combos = [(family, given), (given, family), (given, middle, family),
                      (family, given, middle)]
            for combo in combos:
                parts = [p for p in combo if p]
                if len(parts) >= 2:
                    self.literal(PERSON_NAME, " ".join(parts), min_length=3)
                    if all(_unbounded(c) for c in "".join(parts).replace(" ", "")):
                        self.literal(PERSON_NAME, "".join(parts).replace(" ", ""))
            whole = " ".join(c for c in components if c)
            if whole:
                self.literal(PERSON_NAME, whole, min_length=3)

    def identifier(self, kind: str, value: str) -> None:
        canon = _canon(value)
        self.literal(kind, canon)
        words = canon.split()
        for word in words:
            if len(word) >= 5 and word.isalpha():
                self.tokens.add(word)
        if len(words) > 1:
            for word in words:
                if len(word) >= 5 and any(c.isdigit() for c in word):
                    self.literal(kind, word)

    def place(self, kind: str, value: str, *, words: bool) -> None:
        canon = _canon(value)
        self.literal(kind, canon)
        if not words:
            return
        for word in canon.split():
            if word in _COMMON_PLACE_WORDS:
                continue
            if (word.isalpha() and len(word) >= 4) or (
                len(word) >= 5 and any(c.isdigit() for c in word) and _has_letter(word)
            ):
                self.literal(kind, word)

    def phone(self, value: str) -> None:
        self.literal(PHONE, value)
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 7:
            self.phones.add(digits)

    def uid(self, value: str) -> None:
        value = value.strip(" \x00")
        if value and not value.startswith(WELL_KNOWN_UID_ROOT):
            self.uids.add(value)

    def merge(self, other: _Collector) -> None:
        for canon, kind in other.literals.items():
            self._put(self.literals, canon, kind)
        for canon, kind in other.whole.items():
            self._put(self.whole, canon, kind)
        self.uids |= other.uids
        self.birth_dates |= other.birth_dates
        self.dates |= other.dates
        self.phones |= other.phones
        self.free_words |= other.free_words
        self.tokens |= other.tokens

    def freeze(self, tokens: Collection[str]) -> _Needles:
        """The needles, with the free-text words that are a name or an ID of any source."""
        literals = dict(self.literals)
        for word in self.free_words:
            if word in tokens and word not in literals:
                literals[word] = FREE_TEXT
        whole = {k: v for k, v in self.whole.items() if k not in literals}
        return _Needles(
            literals=literals, whole=whole, uids=frozenset(self.uids),
            birth_dates=frozenset(self.birth_dates),
            dates=frozenset(self.dates - self.birth_dates), phones=frozenset(self.phones),
        )


@dataclass(frozen=True)
class _Needles:
    """What to search for, by kind. Holds PHI: never logged, never reported."""

    literals: Mapping[str, str] = field(default_factory=dict)
    """Canonical text → kind, searched anywhere in text (word boundaries)."""
    whole: Mapping[str, str] = field(default_factory=dict)
    """Short canonical values → kind, matched only as a whole text value."""
    uids: frozenset[str] = frozenset()
    birth_dates: frozenset[str] = frozenset()
    dates: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()

    def without(self, kinds: Collection[str]) -> _Needles:
        if not kinds:
            return self
        return _Needles(
            literals={k: v for k, v in self.literals.items() if v not in kinds},
            whole={k: v for k, v in self.whole.items() if v not in kinds},
            uids=frozenset() if UID_KIND in kinds else self.uids,
            birth_dates=frozenset() if BIRTH_DATE in kinds else self.birth_dates,
            dates=frozenset() if DATE in kinds else self.dates,
            phones=frozenset() if PHONE in kinds else self.phones,
        )


def _collect_dataset(ds: Dataset, collector: _Collector) -> None:
    """Gather the identifying values of ``ds`` at every depth, file meta included."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _collect_items(meta, collector)
    _collect_items(ds, collector)


def _collect_items(ds: Dataset, c: _Collector) -> None:
    for tag in list(ds.keys()):
        try:
            raw = ds.get_item(tag)
            raw_vr = getattr(raw, "VR", None)
            if raw_vr in _BINARY_VRS and raw_vr != "UN":
                continue  # bytes: nothing to collect, and no need to read a large value
            elem = ds[tag]
            vr, keyword, value = elem.VR, elem.keyword, elem.value
        except Exception:  # an unreadable value is not collected; the cleaner removes it
            continue
        if vr == "SQ":
            for item in value or ():
                _collect_items(item, c)
            continue
        if value is None or value == "" or vr in _BINARY_VRS:
            continue
        values = [str(v) for v in value] if _is_multi(value) else [str(value)]
        values = [v for v in values if v.strip(" \x00")]
        if not values:
            continue
        if vr == "PN":
            for v in values:
                c.person_name(v)
            continue
        if vr == "UI":
            if keyword not in CLASS_UID_KEYWORDS:
                for v in values:
                    c.uid(v)
            continue
        if vr in ("DA", "DT"):
            target = c.birth_dates if keyword in BIRTH_DATE_KEYWORDS else c.dates
            for v in values:
                target.update(_da_values(v))
            continue
        if keyword in PATIENT_ID_KEYWORDS:
            kind = PATIENT_ID
        elif keyword in ACCESSION_KEYWORDS:
            kind = ACCESSION
        elif keyword in OTHER_ID_KEYWORDS:
            kind = OTHER_ID
        elif keyword in BIRTH_DATE_KEYWORDS:
            for v in values:
                c.literal(BIRTH_DATE, v)
            continue
        elif keyword in PHONE_KEYWORDS:
            for v in values:
                c.phone(v)
            continue
        elif keyword in ADDRESS_KEYWORDS:
            for v in values:
                c.place(ADDRESS, v, words=True)
            continue
        elif keyword in INSTITUTION_WORD_KEYWORDS or keyword in INSTITUTION_WHOLE_KEYWORDS:
            for v in values:
                c.place(INSTITUTION, v, words=keyword in INSTITUTION_WORD_KEYWORDS)
            continue
        else:
            if keyword in FREE_TEXT_KEYWORDS:
                for v in values:
                    c.free_words.update(
                        w for w in _canon(v).split() if len(w) >= 5 and w.isalpha()
                    )
            continue
        for v in values:
            c.identifier(kind, v)


def _merge_identifiers(ds: Dataset, c: _Collector) -> None:
    """Add what :func:`deid.identifiers.collect_identifiers` finds (a second opinion)."""
    try:
        found = collect_identifiers(ds)
    except Exception:  # the independent collection above stands on its own
        logger.debug("collect_identifiers failed; using the verifier's own collection only")
        return
    for value in found.full_names:
        c.literal(PERSON_NAME, value, min_length=3, only_new=True)
    for value in found.names:
        canon = _canon(value)
        if canon not in c.literals and canon not in c.whole:
            c.name_part(canon)
    # Its IDs and places include words such as a country or a department: searched as whole
    # values only unless they hold a digit (IDs) or several words (places).
    for value in found.ids:
        digits = any(ch.isdigit() for ch in value)
        c.literal(OTHER_ID, value, min_length=4 if digits else 1 << 30, only_new=True)
    for value in found.places:
        several = " " in _canon(value)
        c.literal(INSTITUTION, value, min_length=4 if several else 1 << 30, only_new=True)
    for value in found.dates:  # its spellings of the birth date: the DA form is enough
        if re.fullmatch(r"\d{8}", value):
            c.birth_dates.update(_da_values(value))


def _is_multi(value: object) -> bool:
    return isinstance(value, (list, tuple, MultiValue))


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings while reading: they may quote a value of the file."""

    class _Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return False

    drop = _Drop()
    pydicom_logger = logging.getLogger("pydicom")
    pydicom_logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        pydicom_logger.removeFilter(drop)


def _collect_source(path: Path) -> _Collector | None:
    """The identifying values of the source at ``path``; None when it is not readable DICOM."""
    try:
        ds = pydicom.dcmread(path, force=False, stop_before_pixels=True)
    except Exception:  # not DICOM Part 10: the pipeline does not write it either
        return None
    collector = _Collector()
    _collect_dataset(ds, collector)
    _merge_identifiers(ds, collector)
    return collector


# --------------------------------------------------------------------------- patterns

_ENCODINGS = (
    "utf-8", "cp1252", "iso8859_2", "iso8859_5", "iso8859_6", "iso8859_7", "iso8859_8",
    "iso8859_9", "tis_620", "gb18030", "euc_kr", "euc_jp", "shift_jis", "iso2022_jp", "big5",
)


def _boundary_before(ch: str, *, raw: bool) -> str:
    """Lookbehind for a literal starting with ``ch``: digits at digit boundaries, Latin-like
    letters at word boundaries (ASCII-only in raw bytes, where any byte may precede a value),
    scripts written without spaces nowhere."""
    if ch.isdigit():
        return r"(?<![0-9])" if raw else r"(?<!\d)"
    if ch.isalpha() and not _unbounded(ch):
        return r"(?<![A-Za-z0-9])" if raw else r"(?<![^\W_])"
    return ""


def _boundary_after(ch: str, *, raw: bool) -> str:
    if ch.isdigit():
        return r"(?![0-9])" if raw else r"(?!\d)"
    if ch.isalpha() and not _unbounded(ch):
        return r"(?![A-Za-z0-9])" if raw else r"(?![^\W_])"
    return ""


def _token_forms(token: str) -> list[str]:
    """``token`` as it may appear in raw bytes decoded as Latin-1 (one char per byte)."""
    forms = {token}
    if token.isascii():
        return [token]
    for cased in {token, token.lower(), token.capitalize()}:
        forms.add(cased)
        for encoding in _ENCODINGS:
            try:
                data = cased.encode(encoding)
            except (UnicodeEncodeError, LookupError):
                continue
            if encoding == "iso2022_jp" and data.endswith(b"\x1b(B"):
                data = data[:-3]
            forms.add(data.decode("latin-1"))
    return sorted(forms)


def _literal_atoms(canon: str, *, raw: bool) -> list[tuple[list[str], str, str]]:
    """``(atoms, lookbehind, lookahead)`` of every form of a canonical literal."""
    truncated = len(canon) > _MAX_LITERAL
    text = canon[:_MAX_LITERAL].rstrip() if truncated else canon
    before = _boundary_before(text[0], raw=raw)
    after = "" if truncated else _boundary_after(text[-1], raw=raw)
    tokens = text.split(" ")
    per_token = [_token_forms(t) if raw else [t] for t in tokens]
    forms: list[list[str]] = [[]]
    for i, options in enumerate(per_token):
        if len(forms) * len(options) > 64:
            options = options[:1]
        grown = []
        for form in forms:
            for option in options:
                grown.append(form + ([_SEP] if i else []) + list(option))
        forms = grown
    return [(atoms, before, after) for atoms in forms]


def _trie_regex(node: dict[str, dict]) -> str:  # type: ignore[type-arg]
    branches = []
    for atom in sorted(k for k in node if k != _END):
        piece = _SEP_RE if atom == _SEP else re.escape(atom)
        branches.append(piece + _trie_regex(node[atom]))
    if _END in node:
        branches.append(node[_END])  # type: ignore[arg-type]
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


def _build_pattern(items: Iterable[tuple[str, str]], *, raw: bool,
                   keys: dict[str, str] | None = None) -> re.Pattern[str] | None:
    """One regular expression for ``(canonical, kind)`` items, a named group per kind.

    ``keys`` receives the canonical form of each encoded spelling, so that a match can be told
    to be the same value as one found in an element.
    """
    tries: dict[str, dict[str, dict]] = {}  # type: ignore[type-arg]
    first: set[str] = set()
    for canon, kind in items:
        for atoms, before, after in _literal_atoms(canon, raw=raw):
            first.add(atoms[0])
            if keys is not None and raw:
                keys.setdefault(_canon("".join(" " if a == _SEP else a for a in atoms)), canon)
            root = tries.setdefault(kind, {}).setdefault(before, {})
            node = root
            for atom in atoms:
                node = node.setdefault(atom, {})
            node[_END] = after  # type: ignore[assignment]
    groups = []
    for kind in _LITERAL_KINDS:
        if kind not in tries:
            continue
        alternatives = [before + "(?:" + _trie_regex(trie) + ")"
                        for before, trie in sorted(tries[kind].items())]
        groups.append(f"(?P<k{_RANK[kind]}>" + "|".join(alternatives) + ")")
    if not groups:
        return None
    # The first characters as a lookahead class let the regex engine skip ahead quickly.
    chars = {c for f in first for c in (f, f.lower(), f.upper()) if len(c) == 1}
    prefix = "(?=[" + "".join(re.escape(c) for c in sorted(chars)) + "])"
    return re.compile(prefix + "(?:" + "|".join(groups) + ")", re.IGNORECASE)


class _Patterns:
    """The compiled literals of one needle set, each pattern built on first use (a pattern of
    every source of a large archive takes seconds to compile)."""

    def __init__(self, items: frozenset[tuple[str, str]]) -> None:
        self._items = sorted(items)
        self.keys: dict[str, str] = {}
        """Canonical form of an encoded spelling → the canonical value it spells."""

    @cached_property
    def text(self) -> re.Pattern[str] | None:
        """All literals, for NFKC upper-cased text values."""
        return _build_pattern(self._items, raw=False)

    @cached_property
    def _raw_items(self) -> list[tuple[str, str]]:
        return [
            (canon, kind) for canon, kind in self._items
            if _has_letter(canon) or sum(c.isdigit() for c in canon) >= _RAW_MIN_DIGITS
        ]

    @cached_property
    def raw(self) -> re.Pattern[str] | None:
        """Literals with a letter, and numbers of six digits or more, in every encoding."""
        return _build_pattern(self._raw_items, raw=True, keys=self.keys)

    @cached_property
    def bulk(self) -> re.Pattern[str] | None:
        """Long literals with a letter, in every encoding: for pixel data and numeric arrays."""
        return _build_pattern(
            [(canon, kind) for canon, kind in self._raw_items
             if _has_letter(canon) and (_compact_length(canon) >= _BULK_MIN_LENGTH
                                        or any(_unbounded(c) for c in canon))],
            raw=True, keys=self.keys,
        )


@lru_cache(maxsize=32)
def _compile(items: frozenset[tuple[str, str]]) -> _Patterns:
    return _Patterns(items)


def _kind_of(match: re.Match[str]) -> str:
    group = match.lastgroup or ""
    return KINDS[int(group[1:])] if group.startswith("k") else PERSON_NAME


# --------------------------------------------------------------------------- matching

#: A finding before it becomes a :class:`Hit`: kind and a key that identifies the value (so the
#: same value found twice is reported once). The key is PHI and never leaves this module.
_Found = tuple[str, str]


class _Matcher:
    """Searches text, bytes and paths for the needles of one source (or of all sources)."""

    def __init__(self, needles: _Needles) -> None:
        self.needles = needles
        self.patterns = _compile(frozenset(needles.literals.items()))
        self.long_uids = frozenset(u for u in needles.uids if len(u) >= 20)

    # -- shapes
    def _uid_found(self, token: str, *, exact_only: bool = False) -> bool:
        uids = self.needles.uids
        if token in uids:
            return True
        if exact_only or not self.long_uids or len(token) <= 20:
            return False
        for i, ch in enumerate(token):
            if ch == "." and (token[:i] in self.long_uids or token[i + 1:] in self.long_uids):
                return True
        return False

    def _dates(self, text: str, *, spelled_only: bool = False) -> Iterator[tuple[int, _Found]]:
        n = self.needles
        if not (n.birth_dates or n.dates):
            return
        for offset, day in _date_candidates(text, spelled_only=spelled_only):
            if day in n.birth_dates:
                yield offset, (BIRTH_DATE, day)
            elif day in n.dates and not spelled_only:
                yield offset, (DATE, day)

    def _uids(self, text: str, *, long_only: bool = False) -> Iterator[tuple[int, _Found]]:
        if not self.needles.uids or "." not in text:
            return
        for m in _UID_TOKEN_RE.finditer(text):
            token = m.group()
            if long_only and len(token) < 20:
                continue
            if self._uid_found(token, exact_only=long_only):
                yield m.start(), (UID_KIND, token)

    def _phones(self, text: str) -> Iterator[_Found]:
        phones = self.needles.phones
        if not phones:
            return
        for m in _PHONE_RE.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if len(digits) < 7:
                continue
            # The same number with or without country code and trunk prefix: ``+44 20 7946
            # 0321`` and ``020 7946 0321`` share their last eight digits.
            if any(digits in p or p in digits or (len(digits) >= 8 and len(p) >= 8
                                                  and digits[-8:] == p[-8:]) for p in phones):
                yield PHONE, digits[-8:]

    def _literals(self, pattern: re.Pattern[str] | None,
                  text: str) -> Iterator[tuple[int, _Found]]:
        if pattern is None or not text:
            return
        keys = self.patterns.keys
        for m in pattern.finditer(text):
            key = _canon(m.group()) or m.group()
            yield m.start(), (_kind_of(m), keys.get(key, key))

    # -- element values
    def text_value(self, values: Sequence[str]) -> list[_Found]:
        """Findings in the values of one text element."""
        found: list[_Found] = []
        joined = unicodedata.normalize("NFKC", "\\".join(values)).upper()
        found += [f for _, f in self._literals(self.patterns.text, joined)]
        whole = self.needles.whole
        if whole:
            for value in values:
                canon = _canon(value)
                if canon in whole:
                    found.append((whole[canon], canon))
        found += [f for _, f in self._uids(joined)]
        found += [f for _, f in self._dates(joined)]
        found += list(self._phones(joined))
        return found

    def code_value(self, values: Sequence[str]) -> list[_Found]:
        """Findings in a CS element: words and long numbers only (codes are short)."""
        joined = unicodedata.normalize("NFKC", "\\".join(values)).upper()
        return [f for _, f in self._literals(self.patterns.raw, joined)]

    def date_value(self, values: Sequence[str]) -> list[_Found]:
        n = self.needles
        found: list[_Found] = []
        for value in values:
            for day in _da_values(value):
                if day in n.birth_dates:
                    found.append((BIRTH_DATE, day))
                elif day in n.dates:
                    found.append((DATE, day))
        return found

    def uid_value(self, values: Sequence[str]) -> list[_Found]:
        found: list[_Found] = []
        for value in values:
            token = value.strip(" \x00")
            if token and self._uid_found(token):
                found.append((UID_KIND, token))
        return found

    def bytes_value(self, data: bytes, *, bulk: bool) -> list[_Found]:
        """Findings in a binary value, in every encoding."""
        return [f for _, _, f in self.scan_bytes(data, bulk=bulk)]

    # -- raw bytes
    def scan_bytes(self, data: bytes, *, bulk: bool = False,
                   mask: Callable[[str], str] | None = None,
                   utf16: bool = True) -> Iterator[tuple[int, bool, _Found]]:
        """``(offset, as UTF-16, finding)`` for ``data`` read as Latin-1 and as UTF-16.

        ``bulk`` data (pixels and other numeric arrays) is searched only for long values, and
        not as UTF-16.
        ``mask`` blanks what is not text (markup, inline images) without moving offsets. In
        UTF-16, only values with Latin letters or digits are searched: ASCII text read as
        UTF-16 is a stream of ideographs, where a two-character name would match by chance.
        """
        pattern = self.patterns.bulk if bulk else self.patterns.raw
        for start in range(0, max(len(data), 1), _CHUNK):
            chunk = data[start:start + _CHUNK + _OVERLAP]
            limit = _CHUNK if start + _CHUNK < len(data) else len(chunk)
            text = chunk.decode("latin-1")
            if mask is not None:
                text = mask(text)
            narrow = [*self._literals(pattern, text), *self._uids(text, long_only=bulk)]
            if not bulk:
                narrow += self._dates(text, spelled_only=True)
            for offset, found in narrow:
                if offset < limit:
                    yield start + offset, False, found
            if pattern is None or not utf16 or bulk:
                continue
            for align in (0, 1):
                part = chunk[align:]
                wide = part[: len(part) // 2 * 2].decode("utf-16-le", errors="surrogatepass")
                for offset, found in self._literals(pattern, wide):
                    if 2 * offset + align < limit and _latin(found[1]):
                        yield start + align + 2 * offset, True, found

    def report_text(self, text: str) -> list[_Found]:
        """Findings in a string of a report (as in raw bytes: words, long numbers, UIDs, birth
        dates)."""
        found = [f for _, f in self._literals(self.patterns.raw, text)]
        found += [f for _, f in self._uids(text)]
        found += [f for _, f in self._dates(text, spelled_only=True)]
        return found

    # -- paths
    def path_part(self, part: str) -> list[_Found]:
        text = unicodedata.normalize("NFKC", part).upper()
        found = [f for _, f in self._literals(self.patterns.text, text)]
        found += [f for _, f in self._uids(text)]
        found += [f for _, f in self._dates(text)]
        return found

    def mask_path_part(self, part: str) -> str:
        """``part`` with the identifying spans replaced by ``***``."""
        if unicodedata.normalize("NFKC", part) != part:
            return "[masked]"
        spans: list[tuple[int, int]] = []
        if self.patterns.text is not None:
            spans += [m.span() for m in self.patterns.text.finditer(part)]
        spans += [m.span() for m in _UID_TOKEN_RE.finditer(part) if self._uid_found(m.group())]
        if any(True for _ in self._dates(part)):
            return "[masked]"
        if not spans:
            return part
        out, last = [], 0
        for a, b in sorted(spans):
            if a < last:
                a = last
            out.append(part[last:a] + ("***" if b > a else ""))
            last = max(last, b)
        return "".join(out) + part[last:]


def _latin(key: str) -> bool:
    return any(c.isascii() and c.isalnum() for c in key)


_BASE64_RE = re.compile(r"[A-Za-z0-9+/]{76,}={0,2}")
_MARKUP_RES = (
    re.compile(r"<(style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL),
    re.compile(r"</?[A-Za-z][\w:-]*"),                   # tag names
    re.compile(r"(?<=\s)[A-Za-z_:][\w:.-]*(?=\s*=)"),     # attribute names
    re.compile(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);"),   # entities
)


def _blank(match: re.Match[str]) -> str:
    return " " * len(match.group())


def _mask_base64(text: str) -> str:
    """Blank inline base64 (report thumbnails): random letters there are not values."""
    return _BASE64_RE.sub(_blank, text)


def _mask_html(text: str) -> str:
    """Blank inline images, style sheets, tag and attribute names (``white-space`` is CSS,
    not Mr White); text and attribute values stay, at their offsets."""
    text = _mask_base64(text)
    for regex in _MARKUP_RES:
        text = regex.sub(_blank, text)
    return text


# --------------------------------------------------------------------------- outputs


class _Sink:
    """The hits of one output file, deduplicated."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.hits: dict[tuple[str, str], None] = {}
        self.element_keys: set[_Found] = set()
        self.raw_keys: set[_Found] = set()

    def element(self, location: str, found: Iterable[_Found]) -> None:
        for kind, key in found:
            self.element_keys.add((kind, key))
            self.hits.setdefault((location, kind), None)

    def raw(self, location: str, found: _Found) -> None:
        """A raw-bytes finding: reported once per value, unless an element already showed it
        (the same value, or a longer one that holds it)."""
        if found in self.raw_keys or self._shown(found):
            return
        self.raw_keys.add(found)
        self.hits.setdefault((location, found[0]), None)

    def _shown(self, found: _Found) -> bool:
        if found in self.element_keys:
            return True
        kind, key = found
        needle = key.replace(" ", "")
        return any(k == kind and needle in shown.replace(" ", "")
                   for k, shown in self.element_keys)

    def unreadable(self, location: str) -> None:
        self.hits.setdefault((location, UNREADABLE), None)

    def result(self, display: str) -> list[Hit]:
        return [Hit(display, location, kind) for location, kind in self.hits]


def _tag_label(tag: int) -> str:
    tag = BaseTag(tag)
    text = f"({tag.group:04X},{tag.element:04X})"
    if tag.is_private:
        return f"{text} private"
    keyword = keyword_for_tag(tag)
    return f"{text} {keyword}" if keyword else text


def _is_bulk(tag: int) -> bool:
    group, element = tag >> 16, tag & 0xFFFF
    return tag in _BULK_TAGS or ((group & 0xFF00), element) in _BULK_REPEATING


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v) for v in value]
    return [str(value)]


def _scan_items(ds: Dataset, matcher: _Matcher, prefix: str, sink: _Sink,
                bulk_values: list[bytes]) -> None:
    for tag in sorted(ds.keys()):
        location = prefix + _tag_label(tag)
        try:
            elem = ds[tag]
            vr, value = elem.VR, elem.value
        except Exception:  # an output must always be readable
            sink.unreadable(location)
            continue
        if vr == "SQ":
            for index, item in enumerate(value or ()):
                _scan_items(item, matcher, f"{location}[{index}] > ", sink, bulk_values)
            continue
        if value is None or value == "" or value == b"":
            continue
        if vr in _TEXT_VRS:
            sink.element(location, matcher.text_value(_strings(value)))
        elif vr == "CS":
            sink.element(location, matcher.code_value(_strings(value)))
        elif vr in ("DA", "DT"):
            sink.element(location, matcher.date_value(_strings(value)))
        elif vr == "UI":
            sink.element(location, matcher.uid_value(_strings(value)))
        elif vr in _BINARY_VRS and isinstance(value, (bytes, bytearray)):
            bulk = _is_bulk(int(tag))
            sink.element(location, matcher.bytes_value(bytes(value), bulk=bulk))
            if bulk:
                bulk_values.append(bytes(value))


def _bulk_ranges(data: bytes, values: list[bytes]) -> list[tuple[int, int]]:
    """Where the bulk values lie in the file, so the raw scan can leave them to the element scan."""
    ranges: list[tuple[int, int]] = []
    for value in sorted(values, key=len, reverse=True):
        if len(value) < 16:
            continue
        start = 0
        while True:
            at = data.find(value, start)
            if at < 0:
                break
            end = at + len(value)
            if not any(a < end and at < b for a, b in ranges):
                ranges.append((at, end))
                break
            start = at + 1
    return sorted(ranges)


def _segments(length: int, excluded: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    position = 0
    for a, b in excluded:
        if a > position:
            yield position, a
        position = max(position, b)
    if position < length:
        yield position, length


def _raw_location(offset: int, wide: bool) -> str:
    return f"raw bytes @{offset}" + (" (UTF-16)" if wide else "")


def _scan_raw(data: bytes, matcher: _Matcher, sink: _Sink,
              excluded: list[tuple[int, int]]) -> None:
    for a, b in _segments(len(data), excluded):
        for offset, wide, found in matcher.scan_bytes(data[a:b]):
            sink.raw(_raw_location(a + offset, wide), found)


def _looks_text(data: bytes) -> bool:
    """True for text in an ASCII-compatible encoding or in UTF-16 (judged on the first 64 KiB)."""
    sample = data[:65536]
    if b"\x00" not in sample:
        return True
    half = max(len(sample) // 2, 1)
    return sample[1::2].count(0) > 0.8 * half or sample[0::2].count(0) > 0.8 * half


def _looks_dicom(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def _read_strict(data: bytes) -> Dataset | None:
    """Parse a Part 10 file, refusing a truncated one (pydicom only warns by default)."""
    settings = pydicom.config.settings
    previous = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.RAISE
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
    except Exception:
        return None
    finally:
        settings.reading_validation_mode = previous
    if "TransferSyntaxUID" not in ds.file_meta:
        return None
    deflated = ds.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian
    end = 0
    tags = sorted(ds.keys())
    for tag in tags:
        raw = ds.get_item(tag)
        length = getattr(raw, "length", None)
        value = getattr(raw, "value", None)
        tell = getattr(raw, "value_tell", None)
        if not isinstance(length, int) or length == 0xFFFFFFFF or not isinstance(tell, int):
            end = -1 if tag == tags[-1] else end  # an undefined length ends at its delimiter
            continue
        if isinstance(value, bytes) and len(value) < length:
            return None  # the file ends inside this value
        end = max(end, tell + length)
    if not deflated and 0 <= end < len(data):
        return None  # bytes after the last element that pydicom could not read as one
    return ds


def _check_output(path: Path, relative: PurePosixPath, matcher: _Matcher,
                  expect_dicom: bool) -> list[Hit]:
    """Every hit in one output file."""
    display = "/".join(matcher.mask_path_part(p) for p in relative.parts)
    sink = _Sink(display)
    for index, part in enumerate(relative.parts):
        label = "file name" if index == len(relative.parts) - 1 else "folder name"
        sink.element(label, matcher.path_part(part))
    try:
        data = path.read_bytes()
    except OSError:
        sink.unreadable("file")
        return sink.result(display)
    ds: Dataset | None = None
    if expect_dicom or _looks_dicom(data):
        ds = _read_strict(data)
        if ds is None:
            sink.unreadable("file")
    bulk_values: list[bytes] = []
    if ds is not None:
        try:
            meta = getattr(ds, "file_meta", None)
            if meta is not None:
                _scan_items(meta, matcher, "", sink, bulk_values)
            _scan_items(ds, matcher, "", sink, bulk_values)
        except Exception:
            sink.unreadable("file")
    if ds is None and not _looks_text(data):
        # Not DICOM and not text (an image, an archive): only long values, as in pixel data.
        for offset, wide, found in matcher.scan_bytes(data, bulk=True):
            sink.raw(_raw_location(offset, wide), found)
    else:
        _scan_raw(data, matcher, sink, _bulk_ranges(data, bulk_values))
    return sink.result(display)


def _check_report(path: Path, name: str, matcher: _Matcher) -> list[Hit]:
    """Hits in a report: its text as written, and for JSON every string once unescaped."""
    sink = _Sink(name)
    try:
        data = path.read_bytes()
    except OSError:
        sink.unreadable("file")
        return sink.result(name)
    if name.endswith(".json"):
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeError, ValueError):
            document = None
        def label(key: str) -> str:  # a key that holds a value is not shown
            return key if re.fullmatch(r"[A-Za-z_]\w*", key) and not matcher.report_text(
                key) else "*"

        for json_path, text in _json_strings(document, "", label):
            sink.element(json_path or "json", matcher.report_text(text))
    mask = _mask_html if name.endswith(".html") else _mask_base64
    for offset, wide, found in matcher.scan_bytes(data, mask=mask, utf16=False):
        sink.raw(_raw_location(offset, wide), found)
    return sink.result(name)


def _json_strings(node: object, path: str,
                  label: Callable[[str], str]) -> Iterator[tuple[str, str]]:
    """``(path, string)`` of every key and string value, e.g. ``inputs[3].input``."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            name = label(str(key))
            yield path or "json", str(key)
            yield from _json_strings(value, f"{path}.{name}" if path else name, label)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _json_strings(value, f"{path}[{index}]", label)


# --------------------------------------------------------------------------- pairing


def _report_pairs(out_dir: Path, sources: Sequence[SourceFile]) -> dict[str, Path | None]:
    """``output → source`` from ``OUT/report.json`` (None where the source is not among ours)."""
    path = out_dir / "report.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError):
        logger.warning("%s: not a readable JSON report; pairing outputs by path instead", path)
        return {}
    entries = data.get("inputs", data.get("files", [])) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        return {}
    by_relative = {s.relative.as_posix(): s.path for s in sources}
    by_path = {os.path.normcase(str(s.path)): s.path for s in sources}
    pairs: dict[str, Path | None] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("output"), str):
            continue
        output = PurePosixPath(entry["output"]).as_posix()
        source: Path | None = None
        given = entry.get("input")
        if isinstance(given, str) and given:
            source = by_path.get(os.path.normcase(os.path.abspath(given))) or by_path.get(
                os.path.normcase(str(Path(given).resolve())))
        if source is None and isinstance(entry.get("source"), str):
            source = by_relative.get(PurePosixPath(entry["source"]).as_posix())
        pairs[output] = source
    return pairs


def _mirror_source(relative: str, by_relative: Mapping[str, Path]) -> Path | None:
    source = by_relative.get(relative)
    if source is None and relative.lower().endswith(".dcm"):
        source = by_relative.get(relative[:-4])
    if source is None:
        source = by_relative.get(relative + ".dcm")
    return source


def _outputs(out_dir: Path) -> Iterator[tuple[PurePosixPath, Path, bool]]:
    """``(relative path, path, is_report)`` of every file in ``out_dir``, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(out_dir):
        here = Path(dirpath)
        at_root = here == out_dir
        dirnames[:] = sorted(d for d in dirnames if not (at_root and d == STATE_DIR))
        for name in sorted(filenames):
            path = here / name
            relative = PurePosixPath(path.relative_to(out_dir).as_posix())
            yield relative, path, at_root and name in REPORT_NAMES


# --------------------------------------------------------------------------- entry point


def verify_output(
    out_dir: Path,
    sources: Sequence[Path],
    *,
    allow_dates: bool = False,
    allow_kinds: Collection[str] = (),
) -> VerifyReport:
    """Search every file of ``out_dir`` for any identifying value of ``sources``.

    Each output is searched for the values of its own source (paired through ``report.json``
    or by mirror path); an output without a known source, and the reports, are searched for the
    values of every source. See the module docstring for what is searched where.

    Parameters
    ----------
    out_dir:
        The output folder of ``deid run``.
    sources:
        The original inputs (files or folders), as given to ``deid run``.
    allow_dates:
        Do not report original dates (other than the birth date): for runs with the
        ``retain-longitudinal-full-dates`` option of PS3.15 Table E.1-1.
    allow_kinds:
        Other kinds of value (see :data:`KINDS`) not to report, e.g. ``uid`` for runs with the
        ``retain-uids`` option.

    Returns
    -------
    VerifyReport
        Every hit (output, location, kind; never the value) and the unpaired outputs.

    Raises
    ------
    OutputError
        ``out_dir`` is not a folder.
    InputError
        No source file was found.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise OutputError(f"{out_dir}: not a folder; give the output folder of 'deid run'.")
    unknown = set(allow_kinds) - (set(KINDS) - {UNREADABLE})
    if unknown:
        raise InputError(
            f"unknown kind(s) {', '.join(sorted(unknown))}; choose from: "
            f"{', '.join(k for k in KINDS if k != UNREADABLE)}."
        )
    skip = frozenset(allow_kinds) | ({DATE} if allow_dates else frozenset())
    source_files = list(discover([Path(s) for s in sources], exclude=out_dir))
    if not source_files:
        raise InputError("no source file found in the given --source paths.")
    with _quiet_pydicom():
        return _verify(out_dir.resolve(), source_files, skip)


def _verify(out_dir: Path, source_files: list[SourceFile], skip: frozenset[str]) -> VerifyReport:
    union = _Collector()
    readable: set[Path] = set()
    for source in source_files:
        collected = _collect_source(source.path)
        if collected is None:
            continue
        readable.add(source.path)
        union.merge(collected)
    tokens = frozenset(union.tokens)
    union_matcher: _Matcher | None = None

    def everything() -> _Matcher:
        nonlocal union_matcher
        if union_matcher is None:
            union_matcher = _Matcher(union.freeze(tokens).without(skip))
        return union_matcher

    pairs = _report_pairs(out_dir, source_files)
    by_relative = {s.relative.as_posix(): s.path for s in source_files}
    hits: list[Hit] = []
    unpaired: list[str] = []
    checked = 0
    for relative, path, is_report in _outputs(out_dir):
        checked += 1
        if is_report:
            hits += _check_report(path, relative.as_posix(), everything())
            continue
        key = relative.as_posix()
        listed = key in pairs
        paired = pairs.get(key) if listed else _mirror_source(key, by_relative)
        collected = _collect_source(paired) if paired is not None and paired in readable else None
        if collected is None:
            matcher = everything()
            found = _check_output(path, relative, matcher, expect_dicom=listed)
            unpaired.append("/".join(matcher.mask_path_part(p) for p in relative.parts))
        else:
            matcher = _Matcher(collected.freeze(tokens).without(skip))
            found = _check_output(path, relative, matcher, expect_dicom=True)
        hits += found
    logger.info("verified %d files against %d sources: %d hits", checked, len(source_files),
                len(hits))
    return VerifyReport(
        files_checked=checked, hits=tuple(hits), unpaired=tuple(unpaired),
        sources_checked=len(source_files), unreadable_sources=len(source_files) - len(readable),
        allowed_kinds=tuple(k for k in KINDS if k in skip),
    )
