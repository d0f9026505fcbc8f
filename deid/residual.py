"""The residual-identity guard: the file's own identifying values, searched in what was kept.

PS3.15 keeps the public attributes Table E.1-1 does not list, and real archives hide names and IDs
there (a code meaning holding the patient's name, a protocol name with the record number). After the
profile is applied, every remaining value at every depth, kept private elements included, is
searched for the identifying values of the same file; a match is cut out of the value (text) or the
element is removed (binary), and the tag is reported.
"""

from __future__ import annotations

import logging

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from deid.identifiers import Identifiers
from deid.results import ElementAction

logger = logging.getLogger(__name__)

#: VRs searched as text.
GUARDED_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "PN", "CS", "AE", "UR"})
#: VRs searched as bytes (every encoding of every identifying value).
GUARDED_BINARY_VRS = frozenset({"OB", "OW", "UN", "OD", "OF", "OL", "OV"})
#: Bulk image data is the pixel step's business, not the guard's.
_PIXEL_GROUPS = frozenset({0x7FE0})


def guard(ds: Dataset, identifiers: Identifiers) -> list[ElementAction]:
    """Remove every identifying value of ``identifiers`` still present in ``ds``, in place.

    Returns one :class:`ElementAction` (action ``guard``) per element changed or removed.
    """
    hits: list[ElementAction] = []
    if identifiers:
        _guard_dataset(ds, identifiers, "", hits)
    return hits


def _guard_dataset(ds: Dataset, ids: Identifiers, path: str, hits: list[ElementAction]) -> None:
    for tag in list(ds.keys()):
        if tag >> 16 in _PIXEL_GROUPS:
            continue
        try:
            elem = ds[tag]
        except Exception:
            del ds[tag]
            hits.append(_hit(tag, "", path))
            continue
        vr = elem.VR
        if vr == "SQ":
            if isinstance(elem.value, Sequence):
                for index, item in enumerate(elem.value):
                    label = elem.keyword or _tag_text(tag)
                    _guard_dataset(item, ids, f"{path}{label}[{index}]>", hits)
            continue
        if vr in GUARDED_TEXT_VRS:
            if _guard_text(ds, elem, ids):
                hits.append(_hit(tag, elem.keyword, path))
        elif vr in GUARDED_BINARY_VRS:
            value = elem.value
            if isinstance(value, (bytes, bytearray)) and ids.find_bytes(bytes(value)):
                del ds[tag]
                hits.append(_hit(tag, elem.keyword, path))


def _guard_text(ds: Dataset, elem: DataElement, ids: Identifiers) -> bool:
    value = elem.value
    if value is None or value == "":
        return False
    values = list(value) if isinstance(value, (list, MultiValue)) else [value]
    changed = False
    cleaned = []
    for item in values:
        text = str(item)
        if ids.find(text):
            text = ids.scrub(text)
            changed = True
        cleaned.append(text)
    if changed:
        if elem.VR == "PN":
            cleaned = [c if c.strip("^= ") else "" for c in cleaned]
        ds[elem.tag] = DataElement(elem.tag, elem.VR, cleaned if len(cleaned) != 1 else cleaned[0])
    return changed


def _hit(tag: int, keyword: str, path: str) -> ElementAction:
    return ElementAction(_tag_text(tag), keyword, "guard", path)


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
