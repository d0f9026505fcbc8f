"""Cheap access to elements without pydicom's full value conversion.

pydicom reads elements raw and converts a value on first access; converting every element of
every file costs more than reading and writing it. The engine asks for the VR and, for text, a
plain decoding of the raw bytes when the character set allows it, and converts only what it
changes. Nothing here interprets a value beyond decoding it.
"""

from __future__ import annotations

import functools

from pydicom.datadict import dictionary_VR, get_entry
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

#: SpecificCharacterSet values whose text decodes byte-wise (ASCII-compatible, no code extensions).
_SIMPLE_CHARSETS = {
    "": "latin-1",  # default repertoire; latin-1 never fails and keeps ASCII as is
    "ISO_IR 6": "latin-1",
    "ISO_IR 100": "latin-1",
    "ISO_IR 192": "utf-8",
}
_TEXT_SPLIT_VRS = frozenset({"LT", "ST", "UT", "UR"})  # single-valued: backslash is text


def element_vr(ds: Dataset, tag: int) -> str:
    """The VR of ``ds[tag]`` without converting its value when the file states it."""
    raw = ds.get_item(tag)
    vr = getattr(raw, "VR", None)
    if vr and vr != "UN" and " or " not in vr:
        return str(vr)
    dictionary = _dictionary_vr(tag)
    if dictionary and " or " not in dictionary:
        return dictionary
    return str(ds[tag].VR)


@functools.lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str:
    if tag >> 16 & 1:
        return ""
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return ""


@functools.lru_cache(maxsize=4096)
def keyword_of(tag: int) -> str:
    """The data dictionary keyword of a public tag ('' for private and unknown tags)."""
    if tag >> 16 & 1:
        return ""
    try:
        return str(get_entry(tag)[4])
    except KeyError:
        return ""


def text_encoding(ds: Dataset, inherited: str | None = "latin-1") -> str | None:
    """The Python codec that decodes this dataset's text byte-wise, or ``None`` when pydicom's
    own decoding is needed (ISO 2022 code extensions, GB18030, other multi-byte sets)."""
    raw = ds.get_item(0x00080005)
    if raw is None:
        return inherited
    value = raw.value if isinstance(raw, RawDataElement) else raw.value
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, (list, tuple)) or (value is not None and not isinstance(value, str)):
        values = [str(v).strip() for v in value]
    else:
        values = [v.strip() for v in str(value or "").split("\\")]
    values = [v for v in values if v]
    if not values:
        return "latin-1"
    if len(values) == 1 and values[0] in _SIMPLE_CHARSETS:
        return _SIMPLE_CHARSETS[values[0]]
    return None


def text_values(ds: Dataset, tag: int, vr: str, encoding: str | None) -> list[str]:
    """The values of a text element as strings, decoding raw bytes directly when possible."""
    raw = ds.get_item(tag)
    if isinstance(raw, RawDataElement) and encoding is not None:
        data = raw.value
        if not data:
            return []
        text = data.decode(encoding, errors="replace").rstrip(" \x00")
        if vr in _TEXT_SPLIT_VRS:
            return [text]
        return text.split("\\")
    value = ds[tag].value
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [str(value)]
