"""The action engine, one case per row of the generated Table E.1-1, for the Basic Profile and
for each option column (PS3.15 E.1.1, Table E.1-1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from deid.api import deidentify_dataset, make_config
from deid.profiles import ProfileOption, compile_profile, parse_tag
from tests.conftest import TEST_KEY

ROOT = Path(__file__).resolve().parent.parent
TABLE = yaml.safe_load((ROOT / "profiles" / "generated" / "table_e1_1.yaml").read_text())
ROWS = [r for r in TABLE["rows"] if r["kind"] == "exact" and not r["tag"].startswith(("(0000",
                                                                                       "(0002"))]
CONFORMANCE = yaml.safe_load((ROOT / "profiles" / "conformance.yaml").read_text())
COLUMNS = ["basic"] + [o.value for o in ProfileOption]

SAMPLE = {
    "AE": "PHIAE", "AS": "045Y", "CS": "PHICS", "DA": "19610312", "DT": "19610312101010",
    "TM": "101010", "DS": "1.5", "IS": "7", "LO": "PHI VALUE", "SH": "PHI VALUE",
    "LT": "PHI VALUE", "ST": "PHI VALUE", "UT": "PHI VALUE", "UC": "PHI VALUE",
    "PN": "DOE^JOHN", "UI": "1.2.826.0.1.3680043.10.999.77", "UR": "http://example.org/phi",
    "OB": b"PHIBYTES", "OW": b"PHIBYTES", "UN": b"PHIBYTES", "OD": b"\x01" * 8,
    "OF": b"\x01" * 4, "OL": b"\x01" * 4, "OV": b"\x01" * 8, "FL": 1.0, "FD": 1.0, "SL": 1,
    "SS": 1, "UL": 1, "US": 1, "SV": 1, "UV": 1, "AT": 0x00100010,
}


def _vr(row: dict) -> str:
    vr = row["vr"]
    if vr is None:
        return "LO"  # tags pydicom 3.0.2 does not know: handled by tag, any VR will do
    return vr.split(" or ")[0]


def _expected(row: dict, column: str) -> str:
    """The code for ``row`` under ``column``: the option's cell when filled, else Basic."""
    if row["tag"].startswith("(0004"):
        return "X"  # E.1.1: group 0004 is removed outside a DICOMDIR (DICOMDIRs are not copied)
    code = row["basic"] if column == "basic" else row.get("options", {}).get(column, row["basic"])
    if code == "X" and row["keyword"] in (CONFORMANCE["type2"] or []):
        return "Z"
    if code == "X" and row["keyword"] in (CONFORMANCE["type1"] or []):
        return "D"
    return {"Z/D": "D", "X/Z": "Z", "X/D": "D", "X/Z/D": "D", "X/Z/U*": "U"}.get(code, code)


def _dataset(row: dict) -> tuple[Dataset, int, object]:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    tag = parse_tag(row["tag"])
    vr = _vr(row)
    if vr == "SQ":
        item = Dataset()
        item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.999.78"
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        value: object = [item]
    else:
        value = SAMPLE[vr]
    ds[tag] = DataElement(Tag(tag), vr, value)
    return ds, tag, value


CASES = [
    pytest.param(row, column, id=f"{row['tag']}-{column}")
    for column in COLUMNS
    for row in ROWS
    if column == "basic" or column in row.get("options", {})
]


@pytest.mark.parametrize(("row", "column"), CASES)
def test_row(row: dict, column: str) -> None:
    options = () if column == "basic" else (column,)
    config = make_config(key=TEST_KEY, options=options, pixels="never")
    ds, tag, original = _dataset(row)
    vr = _vr(row)
    result = deidentify_dataset(ds, config)
    expected = _expected(row, column)
    recorded = {a.action for a in result.actions if a.tag == row["tag"] and a.path == ""}

    if expected == "X":
        assert tag not in ds
        assert "X" in recorded
    elif expected == "K":
        assert tag in ds
        if vr != "SQ":
            assert ds[tag].value == original
    elif expected == "Z":
        assert tag in ds
        value = ds[tag].value
        if tag in (0x00100010, 0x00100020):  # pseudonym allowed by Z (README "Decisions")
            assert value and str(value) != str(original)
        elif vr == "SQ":
            assert len(value) == 0
        else:
            assert value in ("", b"", None)
    elif expected == "D":
        assert tag in ds
        value = ds[tag].value
        if vr == "SQ":
            assert len(value) == 1  # items kept, cleaned recursively
            assert value[0].ReferencedSOPInstanceUID != "1.2.826.0.1.3680043.10.999.78"
        else:
            assert value not in ("", b"", None)
            if vr not in ("DS", "IS", "FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT",
                          "OD", "OF", "OL", "OV"):
                assert value != original
    elif expected == "U":
        assert tag in ds
        value = ds[tag].value
        if vr == "SQ":
            assert value[0].ReferencedSOPInstanceUID.startswith("2.25.")
            assert value[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
        else:
            assert str(value).startswith("2.25.") and len(str(value)) <= 64
    elif expected == "C":
        if vr == "SQ":
            assert tag in ds
        elif vr in ("DA", "DT"):
            assert ds[tag].value != original and len(ds[tag].value) >= 8
            assert column == "retain-longitudinal-modified-dates"
        elif vr == "TM":
            assert ds[tag].value == original  # whole-day shifts keep the time of day
        elif vr == "PN":
            assert str(ds[tag].value).startswith("ANON^")
        elif vr == "AE":
            assert ds[tag].value != original
        else:  # text without identifying values stays readable (cleaning is tested apart)
            assert ds[tag].value not in ("", b"", None)
    else:  # pragma: no cover - the table has no other code
        pytest.fail(f"unexpected code {expected}")


def test_every_exact_row_is_compiled() -> None:
    profile = compile_profile(make_config(key=TEST_KEY).profile)
    for row in TABLE["rows"]:
        if row["kind"] == "exact":
            assert profile.action_for(parse_tag(row["tag"])) is not None, row["tag"]


def test_edition_recorded() -> None:
    import deid

    assert TABLE["edition"] == deid.__ps315_edition__


def test_unknown_public_tag_removed(config) -> None:  # type: ignore[no-untyped-def]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.add_new(0x00231234 - 0x00010000, "LO", "something")  # (0022,1234): not in the dictionary
    with pytest.raises(KeyError):
        dictionary_VR(0x00221234)
    deidentify_dataset(ds, config)
    assert 0x00221234 not in ds
