"""The PS3.15 action engine: walk a dataset and apply a compiled profile. Pure: no I/O.

Implements DICOM PS3.15 E.1.1 and Table E.1-1 with its options, at every depth of sequences, in
private blocks and in repeating groups, then sets the de-identification markers and replaces the
file meta information. Decisions the standard leaves open are documented in the README
("Decisions") and named below where they are taken.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydicom.datadict import get_entry
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

from deid._version import __ps315_edition__, __version__
from deid.elements import element_vr, keyword_of, text_encoding
from deid.identifiers import Identifiers
from deid.profiles import ActionCode, CompiledProfile, ProfileOption
from deid.pseudonym import Pseudonymizer
from deid.residual import guard_element
from deid.results import ElementAction

#: VRs holding free text that a person may have typed.
FREE_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC"})
#: VRs whose value is text (checked by the residual guard).
TEXT_VRS = FREE_TEXT_VRS | {"PN", "AE", "CS", "UR", "AS", "DA", "DT", "TM", "IS", "DS"}
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
DATE_VRS = frozenset({"DA", "DT", "TM"})

#: UI attributes that name a class, syntax or scheme, not an instance: never replaced.
CLASS_UID_KEYWORDS = frozenset(
    {
        "SOPClassUID", "ReferencedSOPClassUID", "ReferencedSOPClassUIDInFile",
        "AffectedSOPClassUID", "RequestedSOPClassUID", "MediaStorageSOPClassUID",
        "TransferSyntaxUID", "ReferencedTransferSyntaxUIDInFile", "CodingSchemeUID",
        "ContextGroupExtensionCreatorUID", "ContextUID", "MappingResourceUID",
        "ImplementationClassUID", "RelatedGeneralSOPClassUID", "OriginalSpecializedSOPClassUID",
        "SOPClassesInStudy", "PrivateRecordUID", "TemplateExtensionCreatorUID",
        "TemplateExtensionOrganizationUID", "ReferencedColorPaletteInstanceUID",
        "SpecimenUID_Deprecated", "SelectorUIValue", "CodingSchemeRegistry",
        "ReferencedTransferSyntaxUID", "PrivateInformationCreatorUID",
        "EncapsulatedDocumentMIMETypeList",
    }
)
#: Attributes of coded entries and SR structure: kept inside a dummied sequence (their values are
#: codes, not text a person typed; the residual guard still checks them).
CODE_KEYWORDS = frozenset(
    {
        "CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning",
        "LongCodeValue", "URNCodeValue", "ContextIdentifier", "ContextGroupVersion",
        "MappingResource", "MappingResourceName", "ContextGroupLocalVersion",
        "ValueType", "RelationshipType", "ContinuityOfContent", "TemplateIdentifier",
        "MeasurementUnitsCodeSequence", "ContextFlag", "ObservationUID", "GraphicType",
        "TemporalRangeType", "ReferencedFrameNumber", "NumericValue", "FloatingPointValue",
        "RationalNumeratorValue", "RationalDenominatorValue", "CodingSchemeName",
        "CodingSchemeResponsibleOrganization", "EquivalentCodeSequence",
        "BoundingBoxAnnotationUnits", "AnchorPointAnnotationUnits", "GraphicAnnotationUnits",
        "BoundingBoxTextHorizontalJustification", "AnchorPointVisibility", "GraphicFilled",
        "GraphicLayer", "CompoundGraphicType", "MIMETypeOfEncapsulatedDocument",
    }
)
#: Z on these gives a keyed pseudonym (Z allows a dummy value): downstream tools need a patient.
PSEUDONYM_ON_Z = frozenset({0x00100010, 0x00100020})

DUMMY_TEXT = "ANONYMIZED"
_DUMMY_BY_VR: dict[str, object] = {
    "AE": "ANONYMIZED", "AS": "000Y", "CS": "ANONYMIZED", "DA": "20000101",
    "DT": "20000101000000", "TM": "000000", "DS": "0", "IS": "0", "LO": DUMMY_TEXT,
    "LT": DUMMY_TEXT, "SH": DUMMY_TEXT, "ST": DUMMY_TEXT, "UT": DUMMY_TEXT, "UC": DUMMY_TEXT,
    "UR": "urn:deid:removed", "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "UL": 0, "US": 0,
    "SV": 0, "UV": 0, "AT": 0, "OB": b"\x00\x00", "OW": b"\x00\x00", "OD": b"\x00" * 8,
    "OF": b"\x00" * 4, "OL": b"\x00" * 4, "OV": b"\x00" * 8, "UN": b"\x00\x00",
}
_MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
_MINIMAL_CDA = b'<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>\n'
_DATE_PATTERN = re.compile(r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b")
_LONG_NUMBER = re.compile(r"\d{5,}")
_WELL_KNOWN_ROOT = "1.2.840.10008."
_IMPLEMENTATION_UID = UID("2.25.237641218312318467935153626447935452631")


class Mode(enum.Enum):
    """How unlisted elements are treated inside a sequence."""

    NORMAL = "normal"
    DUMMY = "dummy"  # inside a sequence whose action is D: free text becomes a dummy
    CLEAN = "clean"  # inside a sequence whose action is C: free text is cleaned


@dataclass
class Engine:
    """Applies a :class:`CompiledProfile` to datasets. One per file; not thread-safe."""

    profile: CompiledProfile
    pseudonyms: Pseudonymizer
    identifiers: Identifiers
    collect_mapping: bool = False
    guard_enabled: bool = True
    actions: list[ElementAction] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    uid_map: dict[str, str] = field(default_factory=dict)
    """Original instance UIDs of this dataset → pseudonyms (kept in the worker; never reported)."""
    day_offset: int = 0
    _encoding: str | None = "latin-1"

    # -- entry point -------------------------------------------------------------------------
    def apply(self, ds: Dataset) -> None:
        """De-identify ``ds`` in place (attributes and file meta)."""
        patient_key = str(ds.get("PatientID", "") or ds.get("PatientName", "") or "")
        self.day_offset = self.pseudonyms.day_offset(patient_key)
        self._encoding = text_encoding(ds)
        self._remove_overlay_and_curve_groups(ds)
        self._walk(ds, "", Mode.NORMAL)
        self._set_markers(ds)
        self._replace_file_meta(ds)

    # -- recording ---------------------------------------------------------------------------
    def _record(self, tag: int, action: str, path: str) -> None:
        keyword = _keyword(tag)
        self.actions.append(ElementAction(_tag_text(tag), keyword, action, path))

    # -- the walk ----------------------------------------------------------------------------
    def _walk(self, ds: Dataset, path: str, mode: Mode) -> None:
        creators: dict[tuple[int, int], str] = {}
        for tag in list(ds.keys()):
            group, element = tag >> 16, tag & 0xFFFF
            if group & 1 and 0x0010 <= element <= 0x00FF:
                try:
                    creators[(group, element)] = str(ds[tag].value or "").strip()
                except Exception:
                    creators[(group, element)] = ""
        kept_blocks: set[tuple[int, int]] = set()
        for tag in list(ds.keys()):
            group, element = tag >> 16, tag & 0xFFFF
            if group & 1:
                if 0x0010 <= element <= 0x00FF:
                    continue  # creators are decided once their block is done
                if element < 0x1000 or group in (0x0001, 0x0003, 0x0005, 0x0007, 0xFFFF):
                    self._delete(ds, tag, "X", path)
                    continue
                creator = creators.get((group, element >> 8))
                if creator is None:
                    self._delete(ds, tag, "X", path)
                    continue
                action = self.profile.private_action_for(group, creator, element & 0xFF)
                self._apply(ds, tag, action, path, Mode.NORMAL)
                if tag in ds:
                    kept_blocks.add((group, element >> 8))
                continue
            if group in (0x0002, 0x0004) or element == 0x0000:
                self._delete(ds, tag, "X", path)
                continue
            listed = self.profile.action_for(tag)
            action = listed if listed is not None else self._unlisted_action(ds, tag)
            self._apply(ds, tag, action, path, mode)
        for (group, block), _creator in creators.items():
            if (group, block) not in kept_blocks:
                self._delete(ds, (group << 16) | block, "X", path)

    def _unlisted_action(self, ds: Dataset, tag: int) -> ActionCode:
        """Decision for public attributes Table E.1-1 does not list (README "Decisions")."""
        try:
            get_entry(tag)
        except KeyError:
            return ActionCode.X  # unknown to the data dictionary: fail closed
        vr = _vr(ds, tag)
        if vr == "PN":
            return ActionCode.D
        if vr in ("DA", "DT"):
            if self.profile.has(ProfileOption.RETAIN_LONGITUDINAL_FULL_DATES):
                return ActionCode.K
            if self.profile.has(ProfileOption.RETAIN_LONGITUDINAL_MODIFIED_DATES):
                return ActionCode.C
            return ActionCode.D
        if vr == "UI" and not self.profile.has(ProfileOption.RETAIN_UIDS):
            return ActionCode.K if _keyword(tag) in CLASS_UID_KEYWORDS else ActionCode.U
        return ActionCode.K

    def _apply(self, ds: Dataset, tag: int, action: ActionCode, path: str, mode: Mode) -> None:
        code = _resolve_combined(action)
        if code == "X":
            self._delete(ds, tag, "X", path)
            return
        vr = _vr(ds, tag)
        if code == "Z":
            self._zero(ds, tag, vr, path)
        elif code == "D":
            self._dummy(ds, tag, vr, path)
        elif code == "U":
            self._uid(ds, tag, vr, path, recurse_mode=Mode.NORMAL)
        elif code == "C":
            self._clean(ds, tag, vr, path)
        else:  # K
            self._keep(ds, tag, vr, path, mode)

    # -- actions -----------------------------------------------------------------------------
    def _delete(self, ds: Dataset, tag: int, action: str, path: str) -> None:
        if tag in ds:
            del ds[tag]
            self._record(tag, action, path)

    def _set(self, ds: Dataset, tag: int, vr: str, value: object) -> None:
        ds[tag] = DataElement(BaseTag(tag), vr, value)

    def _zero(self, ds: Dataset, tag: int, vr: str, path: str) -> None:
        if tag in PSEUDONYM_ON_Z:
            self._dummy(ds, tag, vr, path, record_as="Z")
            return
        self._set(ds, tag, vr, Sequence() if vr == "SQ" else (b"" if vr in BINARY_VRS else ""))
        self._record(tag, "Z", path)

    def _dummy(self, ds: Dataset, tag: int, vr: str, path: str, record_as: str = "D") -> None:
        if vr == "SQ":
            self._recurse(ds, tag, path, Mode.DUMMY)
            self._record(tag, record_as, path)
            return
        if vr == "UI":
            self._uid(ds, tag, vr, path, recurse_mode=Mode.NORMAL)
            return
        value: object
        if vr == "PN":
            value = self._pseudonym_names(_values(ds, tag))
        elif tag == 0x00100020:  # PatientID
            originals = [str(v) for v in _values(ds, tag)]
            value = self.pseudonyms.identifier(originals[0], prefix="PAT-") if originals and \
                originals[0].strip() else "PAT-" + self.pseudonyms.identifier("", length=12)
            if self.collect_mapping and originals:
                self.mapping[originals[0]] = str(value)
        elif tag == 0x00420011:  # EncapsulatedDocument
            mime = str(ds.get("MIMETypeOfEncapsulatedDocument", "") or "").lower()
            value = _MINIMAL_CDA if "xml" in mime else _MINIMAL_PDF
        else:
            value = _DUMMY_BY_VR.get(vr, b"\x00\x00" if vr in BINARY_VRS else DUMMY_TEXT)
        self._set(ds, tag, vr, value)
        self._record(tag, record_as, path)

    def _pseudonym_names(self, originals: list[object]) -> object:
        names = [self.pseudonyms.person_name(str(v)) for v in originals if str(v).strip()]
        if self.collect_mapping:
            for original, new in zip([str(v) for v in originals if str(v).strip()], names):
                self.mapping.setdefault(original, new)
        if not names:
            return "ANONYMOUS"
        return names if len(names) > 1 else names[0]

    def _uid(self, ds: Dataset, tag: int, vr: str, path: str, recurse_mode: Mode) -> None:
        if vr == "SQ":  # X/Z/U*: keep the items, replace the instance UIDs inside them
            self._recurse(ds, tag, path, recurse_mode)
            self._record(tag, "U", path)
            return
        if vr != "UI":
            self._dummy(ds, tag, vr, path)
            return
        values = [str(v) for v in _values(ds, tag)]
        new = [self._map_uid(v) for v in values]
        if not new:
            new = [self.pseudonyms.uid(f"empty:{_tag_text(tag)}")]
        self._set(ds, tag, "UI", new if len(new) > 1 else new[0])
        self._record(tag, "U", path)

    def _map_uid(self, value: str) -> str:
        value = value.strip().rstrip("\x00")
        if not value or value.startswith(_WELL_KNOWN_ROOT):
            return value
        new = self.pseudonyms.uid(value)
        self.uid_map[value] = new
        if self.collect_mapping:
            self.mapping[value] = new
        return new

    def _clean(self, ds: Dataset, tag: int, vr: str, path: str) -> None:
        if vr == "SQ":
            self._recurse(ds, tag, path, Mode.CLEAN)
            self._record(tag, "C", path)
            return
        if vr in DATE_VRS:
            self._shift_dates(ds, tag, vr, path)
            return
        if vr == "PN":
            self._set(ds, tag, vr, self._pseudonym_names(_values(ds, tag)))
        elif vr == "AE":
            values = [self.pseudonyms.short("ae", str(v), 12) for v in _values(ds, tag)]
            self._set(ds, tag, vr, values if len(values) != 1 else values[0])
        elif vr == "UI":
            self._uid(ds, tag, vr, path, recurse_mode=Mode.CLEAN)
            return
        elif vr in TEXT_VRS:
            values = [self._clean_text(str(v)) for v in _values(ds, tag)]
            self._set(ds, tag, vr, values if len(values) != 1 else values[0])
        else:  # binary timestamps and the like cannot be cleaned by meaning: dummy
            self._dummy(ds, tag, vr, path, record_as="C")
            return
        self._record(tag, "C", path)

    def _clean_text(self, text: str) -> str:
        if not text.strip():
            return text
        cleaned = self.identifiers.scrub(text)
        cleaned = _DATE_PATTERN.sub("", cleaned)
        cleaned = _LONG_NUMBER.sub("", cleaned)
        cleaned = re.sub(r"\s{2,}", " ", cleaned).strip()
        return cleaned or DUMMY_TEXT

    def _keep(self, ds: Dataset, tag: int, vr: str, path: str, mode: Mode) -> None:
        if vr == "SQ":
            self._recurse(ds, tag, path, mode)
            return
        if mode is not Mode.NORMAL and _keyword(tag) not in CODE_KEYWORDS:
            if vr == "PN" or (vr in FREE_TEXT_VRS and mode is Mode.DUMMY):
                self._dummy(ds, tag, vr, path)
                return
            if vr in FREE_TEXT_VRS:
                self._clean(ds, tag, vr, path)
                return
        # the residual-identity guard, on what the profile keeps (deid.residual)
        if self.guard_enabled and self.identifiers and guard_element(
                ds, tag, vr, self.identifiers, self._encoding):
            self._record(tag, "guard", path)

    def _recurse(self, ds: Dataset, tag: int, path: str, mode: Mode) -> None:
        try:
            items = ds[tag].value
        except Exception:
            self._delete(ds, tag, "X", path)
            return
        if not isinstance(items, Sequence):
            # a sequence stored as UN bytes that could not be parsed: fail closed
            self._delete(ds, tag, "X", path)
            return
        label = _keyword(tag) or _tag_text(tag)
        outer = self._encoding
        for index, item in enumerate(items):
            self._encoding = text_encoding(item, outer)
            self._walk(item, f"{path}{label}[{index}]>", mode)
        self._encoding = outer

    def _shift_dates(self, ds: Dataset, tag: int, vr: str, path: str) -> None:
        if vr == "TM":  # dates move by whole days: times of day are kept (README "Decisions")
            return
        shifted = [_shift(str(v), vr, self.day_offset) for v in _values(ds, tag)]
        self._set(ds, tag, vr, shifted if len(shifted) != 1 else shifted[0])
        self._record(tag, "C", path)

    # -- whole-dataset steps -----------------------------------------------------------------
    def _remove_overlay_and_curve_groups(self, ds: Dataset) -> None:
        """Overlays and curves are removed whole when their data is removed or must be cleaned:
        a bitmap cannot be cleaned by meaning, and a plane without its data is invalid."""
        overlay = _resolve_combined(self.profile.action_for(0x60003000) or ActionCode.X)
        curve = _resolve_combined(self.profile.action_for(0x50000000) or ActionCode.X)
        for tag in list(ds.keys()):
            group = tag >> 16
            if group & 1:
                continue
            if 0x6000 <= group <= 0x601E and overlay in ("X", "C"):
                self._delete(ds, tag, "X", "")
            elif 0x5000 <= group <= 0x501E and curve in ("X", "C"):
                self._delete(ds, tag, "X", "")

    def _set_markers(self, ds: Dataset) -> None:
        """PS3.15 E.1.1: Patient Identity Removed, method text and codes, longitudinal flag."""
        ds.PatientIdentityRemoved = "YES"
        names = ["Basic Profile"] + [o.value for o in self.profile.options]
        ds.DeidentificationMethod = [f"deid {__version__} PS3.15 {__ps315_edition__}"] + names
        items = []
        for value, meaning in self.profile.method_codes:
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        ds.LongitudinalTemporalInformationModified = self.profile.longitudinal

    def _replace_file_meta(self, ds: Dataset) -> None:
        """New file meta: only what PS3.10 requires, SOP Instance UID following the dataset."""
        old = getattr(ds, "file_meta", None) or FileMetaDataset()
        meta = FileMetaDataset()
        meta.FileMetaInformationVersion = b"\x00\x01"
        meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", old.get("MediaStorageSOPClassUID"))
        sop = ds.get("SOPInstanceUID")
        if sop is None:
            original = str(old.get("MediaStorageSOPInstanceUID", "") or "")
            sop = self._map_uid(original) if original else self.pseudonyms.uid("no-sop")
        meta.MediaStorageSOPInstanceUID = sop
        if "TransferSyntaxUID" in old:
            meta.TransferSyntaxUID = old.TransferSyntaxUID
        meta.ImplementationClassUID = _IMPLEMENTATION_UID
        meta.ImplementationVersionName = f"DEID_{__version__}"[:16]
        if meta.MediaStorageSOPClassUID is None:
            del meta.MediaStorageSOPClassUID
        ds.file_meta = meta
        ds.preamble = b"\x00" * 128


def _resolve_combined(action: ActionCode) -> str:
    """Combined codes, for an element present in the instance (README "Decisions").

    Without the PS3.3 module tables the Type of an attribute in the instance's IOD is unknown,
    so the conformance-preserving branch is taken: Z for X/Z, D for Z/D, X/D and X/Z/D, U for
    X/Z/U*. The replacement never carries the original value, so nothing identifying remains.
    """
    return _COMBINED.get(action.value, action.value)


_COMBINED = {"Z/D": "D", "X/Z": "Z", "X/D": "D", "X/Z/D": "D", "X/Z/U*": "U"}


def _values(ds: Dataset, tag: int) -> list[object]:
    value = ds[tag].value
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (list, MultiValue)):
        return list(value)
    return [value]


_vr = element_vr
_keyword = keyword_of


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _shift(value: str, vr: str, days: int) -> str:
    """Shift a DA or DT value (or a DA range) by ``days``; unparsable values become a dummy."""
    value = value.strip()
    if vr == "DA" and "-" in value:
        return "-".join(_shift(part, "DA", days) if part else "" for part in value.split("-"))
    digits = value[:8]
    if len(digits) == 8 and digits.isdigit():
        try:
            moved = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])) + timedelta(days)
        except ValueError:
            return str(_DUMMY_BY_VR[vr])
        return moved.strftime("%Y%m%d") + value[8:]
    if len(digits) in (4, 6) and digits.isdigit():  # DT with year or year-month precision
        year = int(digits[:4]) + round(days / 365.25)
        return f"{year:04d}" + value[4:]
    return str(_DUMMY_BY_VR[vr])


def new_engine(
    profile: CompiledProfile,
    pseudonyms: Pseudonymizer,
    identifiers: Identifiers,
    collect_mapping: bool = False,
) -> Engine:
    """An :class:`Engine` for one dataset; the residual guard runs on every kept element unless
    the profile turns it off."""
    return Engine(profile, pseudonyms, identifiers, collect_mapping,
                  guard_enabled=profile.residual_guard)


__all__: list[str] = ["Engine", "Mode", "new_engine", "FREE_TEXT_VRS", "TEXT_VRS"]
