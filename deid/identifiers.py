"""The identifying values of one dataset, and how to find them in text and bytes.

Used by the residual-identity guard (header values the profile kept), by the pixel step
(``--redact phi-text``) and by ``deid verify``. An :class:`Identifiers` object holds PHI: it is
never logged, never written to a report and never leaves the worker that built it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

#: Keywords whose values identify the patient, the visit or the institution outright.
ID_KEYWORDS: frozenset[str] = frozenset(
    {
        "PatientID",
        "OtherPatientIDs",
        "IssuerOfPatientID",
        "AccessionNumber",
        "StudyID",
        "MedicalRecordLocator",
        "ClinicalTrialSubjectID",
        "ClinicalTrialSubjectReadingID",
        "PatientTelephoneNumbers",
        "AdmissionID",
        "ServiceEpisodeID",
        "RequestedProcedureID",
        "ScheduledProcedureStepID",
        "PerformedProcedureStepID",
        "FillerOrderNumberImagingServiceRequest",
        "PlacerOrderNumberImagingServiceRequest",
        "PatientInsurancePlanCodeSequence",
        "MilitaryRank",
        "BranchOfService",
        "RegionOfResidence",
        "CountryOfResidence",
    }
)
#: Keywords of free-text places: whole value and each word of four letters or more.
PLACE_KEYWORDS: frozenset[str] = frozenset(
    {
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "PatientAddress",
        "PatientBirthName",
        "PatientMotherBirthName",
        "ResponsibleOrganization",
        "ReferringPhysicianAddress",
        "StationName",
    }
)
DATE_KEYWORDS: frozenset[str] = frozenset({"PatientBirthDate"})

#: Words that are too common in clinical text to be searched for as parts of a place.
_COMMON_WORDS = frozenset(
    {
        "HOSPITAL", "CLINIC", "CENTER", "CENTRE", "MEDICAL", "UNIVERSITY", "STREET", "ROAD",
        "AVENUE", "DEPARTMENT", "RADIOLOGY", "IMAGING", "HEALTH", "GENERAL", "SAINT", "NORTH",
        "SOUTH", "EAST", "WEST", "CITY", "INSTITUTE", "SERVICE", "UNIT",
    }
)
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def normalise_text(value: str) -> str:
    """Upper-case, NFKC-normalised, whitespace collapsed: the form values are compared in."""
    return " ".join(unicodedata.normalize("NFKC", value).upper().split())


def name_parts(name: PersonName | str) -> list[str]:
    """Family, given and middle name parts of every component group (alphabetic, ideographic,
    phonetic), without prefixes and suffixes (``MR``, ``JR``) which are not identifying."""
    text = str(name)
    parts: list[str] = []
    for group in text.split("="):
        components = group.split("^")[:3]
        for component in components:
            for word in re.split(r"[\s,]+", component):
                word = normalise_text(word).strip(".-'")
                if len(word) >= 2:
                    parts.append(word)
    return parts


def date_spellings(value: str) -> list[str]:
    """Common spellings of a DA value ``YYYYMMDD`` as people and devices write it."""
    value = value.strip()
    if not re.fullmatch(r"\d{8}", value):
        return [value] if len(value) >= 6 else []
    y, m, d = value[:4], value[4:6], value[6:]
    month = int(m)
    spellings = [
        value, f"{y}-{m}-{d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}", f"{d}/{m}/{y}", f"{d}.{m}.{y}",
        f"{d}-{m}-{y}", f"{m}/{d}/{y}", f"{m}-{d}-{y}", f"{d}{m}{y}", f"{m}{d}{y}",
    ]
    if 1 <= month <= 12:
        mon = _MONTHS[month - 1]
        spellings += [f"{d} {mon} {y}", f"{d}-{mon}-{y}", f"{mon} {d} {y}", f"{mon} {d}, {y}",
                      f"{d}{mon}{y}"]
    return spellings


@dataclass(frozen=True)
class Identifiers:
    """Identifying values of one dataset, normalised. Holds PHI: never log or report it."""

    names: frozenset[str] = field(default_factory=frozenset)
    """Parts of person names (two characters or more)."""
    full_names: frozenset[str] = field(default_factory=frozenset)
    """Whole person names in ``FAMILY GIVEN`` and ``GIVEN FAMILY`` order."""
    ids: frozenset[str] = field(default_factory=frozenset)
    """Patient and visit identifiers (three characters or more)."""
    dates: frozenset[str] = field(default_factory=frozenset)
    """Birth date spellings."""
    places: frozenset[str] = field(default_factory=frozenset)
    """Institution names and addresses, and their distinctive words."""

    def __bool__(self) -> bool:
        return bool(self.names or self.ids or self.dates or self.places or self.full_names)

    def values(self) -> Iterator[str]:
        """Every identifying string, longest first."""
        everything = self.full_names | self.names | self.ids | self.dates | self.places
        yield from sorted(everything, key=lambda s: (-len(s), s))

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        """One case-insensitive regular expression matching any identifying value in text.

        Latin words match at word boundaries (``LI`` does not match ``CLINICAL``); digits match
        at digit boundaries (``12345`` matches in ``MRN12345`` but not in ``123456``); other
        scripts (ideographic, phonetic) match anywhere.
        """
        alternatives = [_to_regex(v) for v in self.values()]
        if not alternatives:
            return None
        return re.compile("|".join(alternatives), re.IGNORECASE)

    def find(self, text: str) -> list[tuple[int, int]]:
        """Spans of identifying values in ``text`` (compared after NFKC normalisation)."""
        if self.pattern is None or not text:
            return []
        text = unicodedata.normalize("NFKC", text)
        return [m.span() for m in self.pattern.finditer(text)]

    def scrub(self, text: str) -> str:
        """``text`` with every identifying value removed and whitespace tidied."""
        if self.pattern is None or not text:
            return text
        text = unicodedata.normalize("NFKC", text)
        cleaned = self.pattern.sub("", text)
        cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
        return cleaned.strip(" ^,;:-_/")

    def find_bytes(self, data: bytes) -> bool:
        """True when ``data`` holds an identifying value in ASCII, Latin-1, UTF-8 or UTF-16."""
        if not data:
            return False
        haystacks = [data.upper()]
        try:
            haystacks.append(data.decode("utf-16-le", errors="ignore").upper().encode("utf-8"))
        except Exception:  # pragma: no cover - decode with errors="ignore" does not raise
            pass
        for value in self.values():
            if len(value) < 4 and not value.isdigit():
                continue
            for encoding in ("utf-8", "latin-1"):
                try:
                    needle = value.upper().encode(encoding)
                except UnicodeEncodeError:
                    continue
                if any(needle in hay for hay in haystacks):
                    return True
        return False


def _to_regex(value: str) -> str:
    escaped = re.escape(value).replace(r"\ ", r"[\s^_,.]+")
    first, last = value[0], value[-1]
    before = r"(?<![0-9])" if first.isdigit() else (r"(?<![A-Z0-9])" if first.isascii() and
                                                      first.isalpha() else "")
    after = r"(?![0-9])" if last.isdigit() else (r"(?![A-Z0-9])" if last.isascii() and
                                                 last.isalpha() else "")
    return f"{before}{escaped}{after}"


def collect_identifiers(ds: Dataset, kept_tags: frozenset[int] = frozenset()) -> Identifiers:
    """Gather the identifying values of ``ds`` (every depth, private elements included).

    ``kept_tags`` are attributes the profile deliberately keeps (for example Institution Name
    under Retain Institution Identity): their values are not treated as identifying.
    """
    names: set[str] = set()
    full: set[str] = set()
    ids: set[str] = set()
    dates: set[str] = set()
    places: set[str] = set()
    for elem in _iter_elements(ds):
        if elem.tag in kept_tags:
            continue
        try:
            vr = elem.VR
            keyword = elem.keyword
            value = elem.value
        except Exception:  # unreadable value: the cleaner removes it anyway
            continue
        if value is None or value == "":
            continue
        values = list(value) if isinstance(value, (list, MultiValue)) else [value]
        if vr == "PN":
            for pn in values:
                parts = name_parts(pn)
                names.update(parts)
                if len(parts) >= 2:
                    full.add(f"{parts[0]} {parts[1]}")
                    full.add(f"{parts[1]} {parts[0]}")
        elif keyword in ID_KEYWORDS and vr not in ("SQ",):
            for v in values:
                text = normalise_text(str(v))
                if len(text) >= 3:
                    ids.add(text)
        elif keyword in DATE_KEYWORDS:
            for v in values:
                dates.update(date_spellings(str(v)))
        elif keyword in PLACE_KEYWORDS:
            for v in values:
                text = normalise_text(str(v))
                if len(text) >= 3:
                    places.add(text)
                for word in re.split(r"[\s,;/()^]+", text):
                    if len(word) >= 4 and word not in _COMMON_WORDS and not word.isdigit():
                        places.add(word)
    return Identifiers(
        names=frozenset(names), full_names=frozenset(full), ids=frozenset(ids),
        dates=frozenset(dates), places=frozenset(places),
    )


def _iter_elements(ds: Dataset) -> Iterator[DataElement]:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                yield from _iter_elements(item)
        else:
            yield elem
