"""The command line as a user runs it: real commands on real files, exit codes and messages."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from tests.conftest import TEST_KEY

REPO = Path(__file__).resolve().parent.parent
ARCHIVE = REPO / "sample_data" / "archive"
BROKEN = REPO / "sample_data" / "broken"
DEID = [sys.executable, "-m", "deid.cli"]


def deid(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DEID, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "deid.key"
    path.write_text(TEST_KEY.hex())
    return path


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory, key_file: Path) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("sample") / "out"
    result = deid("run", str(ARCHIVE), "--out", str(out), "--key-file", str(key_file),
                  "--workers", "0")
    assert result.returncode == 0, result.stderr
    return out, result.stdout + result.stderr


def _planted_values() -> set[str]:
    sys.path.insert(0, str(REPO / "sample_data"))
    import make_sample_data

    files, cd = make_sample_data.build_archive()
    values: set[str] = set()
    keywords = {"PatientID", "AccessionNumber", "PatientBirthDate", "InstitutionName",
                "PatientAddress", "OtherPatientIDs", "StationName", "DeviceSerialNumber",
                "PatientTelephoneNumbers", "InstitutionAddress"}
    for ds in [*files.values(), *cd]:
        for elem in ds.iterall():
            if not elem.value or elem.VR == "SQ":
                continue
            raw = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) \
                else [elem.value]
            if elem.VR == "PN":
                for pn in raw:
                    values.update(p for p in re.split(r"[\^=]", str(pn)) if len(p) >= 3)
            elif elem.keyword in keywords:
                values.update(str(v) for v in raw if len(str(v)) >= 3)
    values.discard("Dr.")
    return values


def test_sample_archive_every_input_reported(sample_run: tuple[Path, str]) -> None:
    out, _ = sample_run
    report = json.loads((out / "report.json").read_text())
    sources = {e["source"] for e in report["inputs"]}
    expected = {p.relative_to(ARCHIVE).as_posix() for p in ARCHIVE.rglob("*") if p.is_file()}
    assert sources == expected
    for entry in report["inputs"]:
        if entry["status"] == "written":
            assert (out / entry["output"]).is_file()
        else:
            assert entry["reason"], entry
    dicomdir = [e for e in report["inputs"] if e["source"].endswith("DICOMDIR")]
    assert dicomdir and dicomdir[0]["status"] == "skipped"
    assert not (out / "patient04_cd" / "DICOMDIR").exists()


def test_sample_archive_no_identifying_value_anywhere(sample_run: tuple[Path, str]) -> None:
    out, printed = sample_run
    values = _planted_values()
    assert len(values) > 40
    for path in out.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".html":  # thumbnails are base64: random letters, not text
            data = re.sub(rb"base64,[A-Za-z0-9+/=]+", b"base64,", data)
        data = data.upper()
        for value in values:
            for encoding in ("utf-8", "latin-1", "utf-16-le"):
                try:
                    needle = value.upper().encode(encoding)
                except UnicodeEncodeError:
                    continue
                assert needle not in data, f"{value!r} found in {path.relative_to(out)}"
    for value in values:
        assert value.upper() not in printed.upper()


def test_sample_outputs_readable_with_markers(sample_run: tuple[Path, str]) -> None:
    out, _ = sample_run
    outputs = [p for p in out.rglob("*.dcm")]
    assert len(outputs) >= 20
    for path in outputs:
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.LongitudinalTemporalInformationModified == "REMOVED"
        for elem in ds.iterall():
            if elem.VR == "UI" and elem.value:
                for uid in (elem.value if isinstance(elem.value, list) else [elem.value]):
                    assert re.fullmatch(r"[0-9]+(\.[0-9]+)*", str(uid)) and len(str(uid)) <= 64
        if "PixelData" in ds:
            assert ds.pixel_array.size > 0  # decodes in its declared transfer syntax


def _references(folder: Path) -> tuple[set[str], list[str]]:
    sops, refs = set(), []
    for path in sorted(folder.rglob("*.dcm")):
        try:
            ds = pydicom.dcmread(path)
        except Exception:
            continue
        if "SOPInstanceUID" not in ds:
            continue
        sops.add(ds.SOPInstanceUID)
        refs += [e.value for e in ds.iterall() if e.keyword == "ReferencedSOPInstanceUID"]
    return sops, refs


def test_references_resolve_inside_output(sample_run: tuple[Path, str]) -> None:
    out, _ = sample_run
    sops_in, refs_in = _references(ARCHIVE)
    sops_out, refs_out = _references(out)
    resolved_in = [r for r in refs_in if r in sops_in]
    resolved_out = [r for r in refs_out if r in sops_out]
    assert len(resolved_in) > 5, "the sample archive has cross-references"
    assert len(resolved_out) == len(resolved_in), "a reference between instances was broken"
    assert not set(refs_out) & set(refs_in), "an original UID survived"


@pytest.mark.dciodvfy
def test_no_new_dciodvfy_errors(sample_run: tuple[Path, str]) -> None:
    out, _ = sample_run
    report = json.loads((out / "report.json").read_text())

    def errors(path: Path) -> set[str]:
        result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        return {line for line in (result.stdout + result.stderr).splitlines()
                if line.startswith("Error")}

    checked = 0
    for entry in report["inputs"]:
        if entry["status"] != "written" or "Deflate" in str(entry.get("transfer_syntax_in")):
            continue
        if entry.get("transfer_syntax_in") == "1.2.840.10008.1.2.1.99":
            continue  # Debian's dciodvfy is built without zlib: it cannot read Deflated files
        before = errors(ARCHIVE / entry["source"])
        after = errors(out / entry["output"])
        assert after <= before, f"{entry['source']}: new dciodvfy errors {after - before}"
        checked += 1
    assert checked >= 20


def test_broken_inputs_reported_batch_goes_on(tmp_path: Path, key_file: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for path in BROKEN.iterdir():
        (src / path.name).write_bytes(path.read_bytes())
    good = next(ARCHIVE.rglob("ct/IM0001.dcm"))
    (src / "good.dcm").write_bytes(good.read_bytes())
    out = tmp_path / "out"
    result = deid("run", str(src), "--out", str(out), "--key-file", str(key_file),
                  "--workers", "0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    report = json.loads((out / "report.json").read_text())
    by_source = {e["source"]: e for e in report["inputs"]}
    assert by_source["good.dcm"]["status"] == "written"
    for path in BROKEN.iterdir():
        entry = by_source[path.name]
        assert entry["status"] == "failed"
        assert entry["reason"] and "\n" not in entry["reason"]
        assert not (out / path.name).exists()
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".dcm") == ["good.dcm"]
    text = (out / "report.json").read_text() + (out / "report.csv").read_text()
    for value in ("Quimby", "QH480213", "19560412"):
        assert value not in text


def test_dry_run_writes_only_reports(tmp_path: Path, key_file: Path) -> None:
    out = tmp_path / "out"
    result = deid("run", str(ARCHIVE / "patient01"), "--out", str(out), "--key-file",
                  str(key_file), "--workers", "0", "--dry-run", "--pixels", "never")
    assert result.returncode == 0, result.stderr
    assert not list(out.rglob("*.dcm"))
    report = json.loads((out / "report.json").read_text())
    assert {e["status"] for e in report["inputs"]} == {"dry-run"}


def test_without_key_says_so(tmp_path: Path) -> None:
    env = {"DEID_KEY": ""}
    result = deid("run", str(ARCHIVE / "patient01" / "study01" / "ct"), "--out",
                  str(tmp_path / "o"), "--workers", "0", env=env)
    assert result.returncode == 0
    assert "random key" in result.stderr


def test_profiles_lists_profiles_and_options() -> None:
    result = deid("profiles")
    assert result.returncode == 0
    assert "basic" in result.stdout and "retain-safe-private" in result.stdout


def test_keygen_owner_only_and_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    first = deid("keygen", str(key))
    assert first.returncode == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    content = key.read_text()
    assert content.strip() not in first.stdout + first.stderr
    second = deid("keygen", str(key))
    assert second.returncode == 2 and "refusing" in second.stderr
    assert key.read_text() == content


def test_unknown_option_is_usage_error(tmp_path: Path) -> None:
    result = deid("run", str(ARCHIVE), "--out", str(tmp_path / "o"), "--option", "keep-all")
    assert result.returncode == 2
    assert "unknown option" in result.stderr and "Traceback" not in result.stderr


def test_same_key_same_output_across_runs(tmp_path: Path, key_file: Path) -> None:
    src = ARCHIVE / "patient01" / "study01" / "ct"
    a = deid("run", str(src), "--out", str(tmp_path / "a"), "--key-file", str(key_file),
             "--workers", "0")
    b = deid("run", str(src), "--out", str(tmp_path / "b"), "--key-file", str(key_file),
             "--workers", "0")
    assert a.returncode == b.returncode == 0
    names = sorted(p.name for p in (tmp_path / "a").glob("*.dcm"))
    assert names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_no_value_in_stderr_for_invalid_values(tmp_path: Path, key_file: Path) -> None:
    """pydicom logs invalid values verbatim; deid must not let them out."""
    from deid.testing import synthetic as syn

    ds = syn.build_ct_image(syn.PATIENTS[0])
    ds.InstanceNumber = "98765432"
    secret = "QUIMB-77"  # same length, not an integer string: pydicom warns with the value
    data = syn.encode(ds).replace(b"98765432", secret.encode("ascii"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "bad_values.dcm").write_bytes(data)
    result = deid("run", str(src), "--out", str(tmp_path / "out"), "--key-file", str(key_file),
                  "--workers", "0", "-v")
    assert secret not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
