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
from pydicom.valuerep import PersonName

from deid.elements import element_vr, keyword_of, text_encoding, text_values

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
_INTERESTING = ID_KEYWORDS | PLACE_KEYWORDS | DATE_KEYWORDS

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

    @cached_property
    def _needles(self) -> tuple[str, ...]:
        return tuple(self.values())

    def _may_match(self, text: str) -> bool:
        """Cheap prefilter: every regex match contains one of the values as a substring."""
        upper = text.upper()
        return any(needle in upper for needle in self._needles)

    def find(self, text: str) -> list[tuple[int, int]]:
        """Spans of identifying values in ``text`` (compared after NFKC normalisation)."""
        if not text or not self._needles:
            return []
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        if not self._may_match(text) or self.pattern is None:
            return []
        return [m.span() for m in self.pattern.finditer(text)]

    def scrub(self, text: str) -> str:
        """``text`` with every identifying value removed and whitespace tidied."""
        if not text or not self._needles:
            return text
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        if not self._may_match(text) or self.pattern is None:
            return text
        cleaned = self.pattern.sub("", text)
        cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
        return cleaned.strip(" ^,;:-_/")

    def replace(self, text: str, replacement: str) -> str:
        """``text`` with every identifying value replaced by ``replacement``."""
        if not self.find(text) or self.pattern is None:
            return text
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text)
        return self.pattern.sub(replacement.replace("\\", "\\\\"), text)

    @cached_property
    def bytes_pattern(self) -> re.Pattern[bytes] | None:
        """Identifying values as bytes (UTF-8, Latin-1 and UTF-16), for binary values."""
        needles: set[bytes] = set()
        for value in self.values():
            if len(value) < 4 and not (value.isdigit() and len(value) >= 3):
                continue
            for encoding in ("utf-8", "latin-1", "utf-16-le"):
                try:
                    needles.add(value.upper().encode(encoding))
                except UnicodeEncodeError:
                    continue
        if not needles:
            return None
        ordered = sorted(needles, key=lambda n: (-len(n), n))
        return re.compile(b"|".join(re.escape(n) for n in ordered), re.IGNORECASE)

    def find_bytes(self, data: bytes) -> bool:
        """True when ``data`` holds an identifying value in UTF-8, Latin-1 or UTF-16."""
        if not data or self.bytes_pattern is None:
            return False
        return self.bytes_pattern.search(data) is not None


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
    under Retain Institution Identity): their values are not treated as identifying. Only the
    elements that can hold such values are decoded.
    """
    found: dict[str, set[str]] = {k: set() for k in ("names", "full", "ids", "dates", "places")}
    _collect(ds, kept_tags, text_encoding(ds), found)
    return Identifiers(
        names=frozenset(found["names"]), full_names=frozenset(found["full"]),
        ids=frozenset(found["ids"]), dates=frozenset(found["dates"]),
        places=frozenset(found["places"]),
    )


def _collect(ds: Dataset, kept: frozenset[int], encoding: str | None,
             found: dict[str, set[str]]) -> None:
    for tag in list(ds.keys()):
        if tag in kept:
            continue
        try:
            vr = element_vr(ds, tag)
            if vr == "SQ":
                for item in ds[tag].value or ():
                    _collect(item, kept, text_encoding(item, encoding), found)
                continue
            keyword = keyword_of(tag)
            if vr != "PN" and keyword not in _INTERESTING:
                continue
            values = text_values(ds, tag, vr, encoding)
        except Exception:  # unreadable value: the cleaner removes or fails on it anyway
            continue
        if vr == "PN":
            for pn in values:
                parts = name_parts(pn)
                found["names"].update(parts)
                if len(parts) >= 2:
                    found["full"].add(f"{parts[0]} {parts[1]}")
                    found["full"].add(f"{parts[1]} {parts[0]}")
        elif keyword in ID_KEYWORDS:
            for v in values:
                text = normalise_text(v)
                if len(text) >= 3:
                    found["ids"].add(text)
        elif keyword in DATE_KEYWORDS:
            for v in values:
                found["dates"].update(date_spellings(v))
        elif keyword in PLACE_KEYWORDS:
            for v in values:
                text = normalise_text(v)
                if len(text) >= 3:
                    found["places"].add(text)
                for word in re.split(r"[\s,;/()^]+", text):
                    if len(word) >= 4 and word not in _COMMON_WORDS and not word.isdigit():
                        found["places"].add(word)


def _iter_elements(ds: Dataset) -> Iterator[DataElement]:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value or ():
                yield from _iter_elements(item)
        else:
            yield elem
