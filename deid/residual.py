"""The residual-identity guard: the file's own identifying values, searched in what was kept.

PS3.15 keeps the public attributes Table E.1-1 does not list, and real archives hide names and IDs
there (a code meaning holding the patient's name, a protocol name with the record number). After the
profile is applied, every remaining value at every depth, kept private elements included, is
searched for the identifying values of the same file; a match is cut out of the value (text) or the
element is removed (binary), and the tag is reported. The action engine calls
:func:`guard_element` on each element it keeps, so the guard costs no walk of its own.
"""

from __future__ import annotations

import logging

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from deid.elements import text_values
from deid.identifiers import Identifiers

logger = logging.getLogger(__name__)

#: VRs searched as text.
GUARDED_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "PN", "CS", "AE", "UR"})
#: VRs searched as bytes (every encoding of every identifying value).
GUARDED_BINARY_VRS = frozenset({"OB", "OW", "UN", "OD", "OF", "OL", "OV"})
#: Bulk image data is the pixel step's business, not the guard's.
_PIXEL_GROUPS = frozenset({0x7FE0})
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})


def guard_element(ds: Dataset, tag: int, vr: str, ids: Identifiers,
                  encoding: str | None) -> bool:
    """Guard one non-sequence element in place; True when it was changed or removed.

    ``encoding`` is the codec that decodes this dataset's text byte-wise, or ``None``
    (see :func:`deid.elements.text_encoding`).
    """
    if tag >> 16 in _PIXEL_GROUPS:
        return False
    try:
        if vr in ("DA", "DT") and ids.dates:
            values = text_values(ds, tag, vr, encoding)
            if not any(v.strip()[:8] in ids.dates for v in values):
                return False
            # a kept date equal to the birth date (Full Dates keeps SR dates): a dummy date
            dummy = "20000101" if vr == "DA" else "20000101000000"
            cleaned = [dummy if v.strip()[:8] in ids.dates else v for v in values]
            ds[tag] = DataElement(BaseTag(tag), vr, cleaned if len(cleaned) != 1 else cleaned[0])
            return True
        if vr in GUARDED_TEXT_VRS:
            values = text_values(ds, tag, vr, encoding)
            if not any(ids.find(v) for v in values):
                return False
            cleaned = [ids.scrub(v) for v in values]
            if vr == "PN":
                cleaned = [c if c.strip("^= ") else "" for c in cleaned]
            value: object = cleaned if len(cleaned) != 1 else cleaned[0]
            if vr in _SINGLE_VALUED:
                value = "\\".join(cleaned)
            ds[tag] = DataElement(BaseTag(tag), vr, value)
            return True
        if vr in GUARDED_BINARY_VRS:
            data = ds.get_item(tag).value
            if isinstance(data, (bytes, bytearray)) and ids.find_bytes(bytes(data)):
                del ds[tag]
                return True
        return False
    except Exception:  # a value that cannot be read cannot be shown to be clean
        if tag in ds:
            del ds[tag]
        return True
