"""report.json, report.csv and report.html: contents, flags, no PHI."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from deid import __ps315_edition__, __version__
from deid.api import make_config
from deid.html import render_html
from deid.manifest import Manifest
from deid.pipeline import RunOptions, run
from deid.report import CSV_COLUMNS, RunInfo, Totals, report_entry
from deid.results import BoxRecord, FileResult, PixelOutcome, Status
from deid.testing import synthetic as syn
from tests.conftest import TEST_KEY

STUDY = syn.Study(seed="report-study", accession_number="ACC-REPORT-1")
OTHER_STUDY = syn.Study(seed="report-other", accession_number="ACC-REPORT-2")


def _write(ds: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run over: 3 CT of one patient, 1 MR of another study, 2 instances of one study that
    carry two different patients (a flag), a file that is not DICOM, and a DICOMDIR."""
    root = tmp_path_factory.mktemp("report")
    src = root / "src"
    series = syn.Series(STUDY, 1, "CT")
    for i in range(1, 4):
        _write(syn.build_ct_image(syn.PATIENTS[0], series, i, rows=32, columns=32),
               src / "ct" / f"{i}.dcm")
    _write(syn.build_mr_image(syn.PATIENTS[0], syn.Series(OTHER_STUDY, 2, "MR")),
           src / "mr" / "1.dcm")
    mixed = syn.Series(syn.Study(seed="mixed", accession_number="ACC-MIX"), 1, "CT")
    _write(syn.build_ct_image(syn.PATIENTS[1], mixed, 1, rows=32, columns=32),
           src / "mixed" / "a.dcm")
    _write(syn.build_ct_image(syn.PATIENTS[2], mixed, 2, rows=32, columns=32),
           src / "mixed" / "b.dcm")
    (src / "notes.txt").write_text("Patient: " + syn.PATIENTS[0].name)
    syn.write_dicomdir(src / "media", [syn.build_ct_image(syn.PATIENTS[3], rows=16, columns=16)])
    run(RunOptions(sources=(src,), out_dir=root / "out", workers=0),
        make_config(key=TEST_KEY, pixels="never"))
    return root / "out"


def test_report_json_run_info_and_counts(reported: Path) -> None:
    data = json.loads((reported / "report.json").read_text())
    info = data["run"]
    assert info["version"] == __version__
    assert info["ps315_edition"] == __ps315_edition__
    assert info["profile"] == "basic" and info["options"] == []
    assert info["pixels"] == "never" and info["dry_run"] is False
    assert info["key"] == "persistent" and info["processed"] == 9
    assert info["throughput_files_per_s"] > 0
    assert data["counts"] == {"failed": 1, "skipped": 1, "written": 7}
    assert data["total"] == 9 == len(data["inputs"])


def test_report_json_entries(reported: Path) -> None:
    data = json.loads((reported / "report.json").read_text())
    entries = {e["source"]: e for e in data["inputs"]}
    assert list(entries) == sorted(entries)  # sorted by source
    ct = entries["ct/1.dcm"]
    assert ct["status"] == "written" and ct["output"] == "ct/1.dcm"
    assert ct["modality"] == "CT" and ct["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.2"
    assert ct["action_counts"]["X"] > 0 and ct["action_counts"]["U"] > 0
    assert ct["pixels_scanned"] is False and ct["boxes_masked"] == 0
    assert ct["patient_pseudonym"] and ct["patient_pseudonym"] != syn.PATIENTS[0].patient_id
    assert ct["reason"] is None and ct["error_class"] is None
    assert ct["input_id"] and "/" not in ct["input_id"]  # a keyed hash, never the path
    bad = entries["notes.txt"]
    assert bad["status"] == "failed" and bad["error_class"] == "InputError"
    assert "not a DICOM Part 10 file" in bad["reason"]
    assert entries["mr/1.dcm"]["modality"] == "MR"
    dicomdir = entries["media/DICOMDIR"]
    assert dicomdir["status"] == "skipped" and dicomdir["error_class"] == "DICOMDIR"
    assert dicomdir["output"] is None


def test_report_flags_a_study_with_two_patient_pseudonyms(reported: Path) -> None:
    data = json.loads((reported / "report.json").read_text())
    flags = [f for f in data["flags"] if f["kind"] == "mixed-patient-study"]
    assert len(flags) == 1
    assert flags[0]["sources"] == ["mixed/a.dcm", "mixed/b.dcm"]
    assert "2 different patient pseudonyms" in flags[0]["detail"]
    assert flags[0]["inputs"] == 2


def test_report_groups_per_input_findings(reported: Path) -> None:
    data = json.loads((reported / "report.json").read_text())
    with_hits = [e for e in data["inputs"] if e["residual_hits"]]
    assert with_hits, "the synthetic CT plants a value the guard removes"
    findings = [f for f in data["findings"] if f["kind"] == "residual-identity"]
    assert sum(f["inputs"] for f in findings) == len(with_hits)
    for finding in findings:
        assert finding["detail"].startswith("the residual-identity guard removed")
        assert len(finding["sources"]) == min(finding["inputs"], 20)


def test_report_csv_has_one_row_per_input(reported: Path) -> None:
    with open(reported / "report.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert len(rows) == 9
    by_source = {r["source"]: r for r in rows}
    assert by_source["notes.txt"]["status"] == "failed"
    assert by_source["notes.txt"]["error_class"] == "InputError"
    assert int(by_source["ct/2.dcm"]["actions_X"]) > 0
    assert by_source["ct/2.dcm"]["output"] == "ct/2.dcm"
    json_counts = {e["source"]: e["action_counts"]
                   for e in json.loads((reported / "report.json").read_text())["inputs"]}
    assert int(by_source["ct/2.dcm"]["actions_U"]) == json_counts["ct/2.dcm"]["U"]


def test_reports_hold_no_phi(reported: Path) -> None:
    phi = set(STUDY.phi_strings(syn.PATIENTS[0]))
    phi |= set(OTHER_STUDY.phi_strings(syn.PATIENTS[0]))
    for patient in syn.PATIENTS[1:4]:
        phi |= set(patient.phi_strings())
    phi = {p for p in phi if len(p) >= 4}
    for name in ("report.json", "report.csv", "report.html"):
        text = (reported / name).read_text()
        leaked = [p for p in phi if p in text]
        assert not leaked, f"{name} holds {leaked}"
    manifest = (reported / ".deid" / "manifest.sqlite").read_bytes()
    assert not [p for p in phi if p.encode() in manifest]


def test_report_html_is_self_contained(reported: Path) -> None:
    page = (reported / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page
    assert '<div class="n" id="total-inputs">9</div>' in page
    assert 'id="count-written">7<' in page and 'id="count-failed">1<' in page
    assert 'id="count-skipped">1<' in page
    assert "not a DICOM Part 10 file" in page
    assert "mixed-patient-study" in page


def _thumbnail(size: int = 64) -> bytes:
    image = np.full((size, size), 90, dtype=np.uint8)
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def test_html_shows_thumbnails_inline() -> None:
    png = _thumbnail()
    result = FileResult(
        source="us/1.dcm", status=Status.WRITTEN, output="us/1.dcm", modality="US",
        pixels=PixelOutcome(scanned=True, frames=1, boxes=(BoxRecord(0, 1, 1, 5, 5),),
                            thumbnail_png=png),
    )
    with Manifest(None) as manifest:
        run_id = manifest.begin_run({})
        manifest.record("/s/us/1.dcm", 1, 1, result, run_id)
        thumbs = manifest.thumbnails(run_id, 10)
    totals = Totals()
    totals.add(report_entry(result, "/s/us/1.dcm"))
    info = RunInfo(
        version="0", ps315_edition="x", profile="basic", options=(), profile_file_sha256=None,
        pixels="auto", redact="all-text", layout="mirror", dry_run=False, key="persistent",
        executor="serial", sources=("/s",), out_dir="/o", started="t0", finished="t1",
        elapsed_s=2.0, processed=1, done_before=0, mapping_file=None,
    )
    page = render_html(info, {"written": 1}, totals, thumbs)
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in page
    assert "1 box masked (outlined)" in page
    assert 'id="boxes-masked">1<' in page and 'id="pixels-scanned">1<' in page
    assert 'id="throughput">0.5<' in page
