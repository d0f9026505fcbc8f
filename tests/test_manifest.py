"""The manifest: rows, resume decisions, settings, no PHI stored."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from deid.api import make_config
from deid.errors import OutputError
from deid.manifest import (
    Manifest,
    key_fingerprint,
    result_from_dict,
    result_to_dict,
    settings_for,
)
from deid.results import BoxRecord, FileResult, PixelOutcome, Status
from tests.conftest import OTHER_KEY, TEST_KEY

PHI_MAPPING = (("Doe^Jane", "ANON^ABC"), ("1.2.3.4", "2.25.99"))


def _result(source: str = "a/b.dcm", status: Status = Status.WRITTEN, **kw: object) -> FileResult:
    base: dict[str, object] = dict(
        source=source, status=status, output=source if status is Status.WRITTEN else None,
        modality="CT", sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        action_counts={"X": 3, "U": 2}, residual_hits=("(0008,1030)",),
        warnings=("private block kept",), patient_pseudonym="PAT-1", study_uid="2.25.1",
        duration_s=0.25, mapping=PHI_MAPPING,
        pixels=PixelOutcome(scanned=True, frames=1, boxes=(BoxRecord(0, 1, 2, 3, 4),),
                            transfer_syntax_in="1.2.840.10008.1.2.1",
                            transfer_syntax_out="1.2.840.10008.1.2.1",
                            thumbnail_png=b"\x89PNG fake"),
    )
    base.update(kw)
    return FileResult(**base)  # type: ignore[arg-type]


def test_result_round_trip_drops_mapping_and_thumbnail() -> None:
    result = _result()
    data = result_to_dict(result)
    text = json.dumps(data)
    assert "Doe^Jane" not in text and "mapping" not in text
    assert "PNG" not in text
    back = result_from_dict(json.loads(text))
    assert back.mapping == ()
    assert back.pixels is not None and back.pixels.thumbnail_png is None
    assert back == FileResult(**{**result.__dict__, "mapping": (),
                                 "pixels": PixelOutcome(**{**result.pixels.__dict__,  # type: ignore[union-attr]
                                                           "thumbnail_png": None})})


def test_record_and_is_done(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "b.dcm").write_bytes(b"x")
    with Manifest.for_output(out) as manifest:
        run = manifest.begin_run({})
        manifest.record("/src/a/b.dcm", 10, 1000, _result(), run)
        manifest.record("/src/bad", 5, 1000, _result("bad", Status.FAILED, reason="bad",
                                                      error_class="InputError"), run)
        manifest.record("/src/lost", 5, 1000, _result("lost", Status.FAILED, reason="died",
                                                       error_class="WorkerLost"), run)
        manifest.record("/src/dry", 5, 1000, _result("dry", Status.DRY_RUN), run)
        # Same size and mtime, output present: done.
        assert manifest.is_done("/src/a/b.dcm", 10, 1000, out) is not None
        # Changed size or mtime: redo.
        assert manifest.is_done("/src/a/b.dcm", 11, 1000, out) is None
        assert manifest.is_done("/src/a/b.dcm", 10, 1001, out) is None
        # A failure about the input is final; a lost worker is retried; dry-run is redone.
        assert manifest.is_done("/src/bad", 5, 1000, out) is not None
        assert manifest.is_done("/src/lost", 5, 1000, out) is None
        assert manifest.is_done("/src/dry", 5, 1000, out) is None
        assert manifest.is_done("/src/unknown", 5, 1000, out) is None
        # Output deleted: redo.
        (out / "a" / "b.dcm").unlink()
        assert manifest.is_done("/src/a/b.dcm", 10, 1000, out) is None
        assert manifest.count_by_status(run) == {"dry-run": 1, "failed": 2, "written": 1}


def test_rows_persist_and_hold_no_phi(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Manifest.for_output(out) as manifest:
        run = manifest.begin_run({})
        manifest.record("/src/a/b.dcm", 10, 1000, _result(), run)
    db_file = out / ".deid" / "manifest.sqlite"
    assert db_file.is_file()
    con = sqlite3.connect(db_file)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    dump = "\n".join(con.iterdump())
    con.close()
    for value, _pseudonym in PHI_MAPPING:
        assert value not in dump
    with Manifest.for_output(out) as manifest:
        record = manifest.lookup("/src/a/b.dcm")
        assert record is not None and record.result.status is Status.WRITTEN
        assert record.size == 10 and record.mtime_ns == 1000


def test_owner_of_and_conflicts(tmp_path: Path) -> None:
    with Manifest(None) as manifest:
        run = manifest.begin_run({})
        manifest.record("/src/one/x.dcm", 1, 1, _result("x.dcm"), run)
        assert manifest.owner_of("x.dcm", excluding="/src/two/x.dcm") == \
            "x.dcm (input_id /src/one/x.dcm)"
        assert manifest.owner_of("x.dcm", excluding="/src/one/x.dcm") is None
        manifest.record("/src/two/x.dcm", 1, 1, _result(
            "x.dcm", Status.FAILED, error_class="OutputConflict",
            reason="/src/two/x.dcm: output x.dcm already holds another file; not overwritten."),
            run)
        assert [(p, r.error_class) for p, r in manifest.conflicts(run)] == [
            ("/src/two/x.dcm", "OutputConflict")]
        # A failed row never claims an output.
        assert manifest.owner_of("x.dcm", excluding="/src/one/x.dcm") is None


def test_mixed_patient_studies(tmp_path: Path) -> None:
    with Manifest(None) as manifest:
        run = manifest.begin_run({})
        manifest.record("/s/1", 1, 1, _result("1", study_uid="2.25.7", patient_pseudonym="P1"),
                        run)
        manifest.record("/s/2", 1, 1, _result("2", study_uid="2.25.7", patient_pseudonym="P2"),
                        run)
        manifest.record("/s/3", 1, 1, _result("3", study_uid="2.25.8", patient_pseudonym="P1"),
                        run)
        manifest.record("/s/4", 1, 1, _result("4", study_uid="2.25.8", patient_pseudonym="P1"),
                        run)
        assert manifest.mixed_patient_studies(run) == [("2.25.7", 2, ["1", "2"])]


def test_records_only_of_inputs_seen_by_the_run(tmp_path: Path) -> None:
    with Manifest(None) as manifest:
        first = manifest.begin_run({})
        manifest.record("/s/gone", 1, 1, _result("gone"), first)
        manifest.record("/s/kept", 1, 1, _result("kept"), first)
        second = manifest.begin_run({})
        manifest.mark_seen("/s/kept", second)
        assert [r.source for r in manifest.records(second)] == ["kept"]
        assert manifest.count_by_status(second) == {"written": 1}


def test_thumbnails_capped_and_masked_images_preferred() -> None:
    plain = PixelOutcome(scanned=True, thumbnail_png=b"plain")
    masked = PixelOutcome(scanned=True, boxes=(BoxRecord(0, 0, 0, 2, 2),),
                          thumbnail_png=b"masked")
    with Manifest(None, max_thumbnails=2) as manifest:
        run = manifest.begin_run({})
        for i in range(3):
            manifest.record(f"/s/p{i}", 1, 1, _result(f"p{i}", pixels=plain), run)
        manifest.record("/s/m", 1, 1, _result("m", pixels=masked), run)
        thumbs = manifest.thumbnails(run, limit=10)
        assert len(thumbs) == 2
        assert b"masked" in [png for _r, png in thumbs]


def test_settings_differences_name_settings_never_values() -> None:
    a = settings_for(make_config(key=TEST_KEY), (Path("/s"),), None)
    b = settings_for(make_config(key=OTHER_KEY, pixels="never"), (Path("/s"),), None)
    assert a["key_fingerprint"] == key_fingerprint(TEST_KEY)
    assert TEST_KEY.hex() not in json.dumps(a)
    assert key_fingerprint(TEST_KEY) != key_fingerprint(OTHER_KEY)
    assert Manifest.differences(a, b) == ["key", "--pixels"]
    assert Manifest.differences(a, dict(a)) == []


def test_unusable_manifest_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / ".deid").mkdir(parents=True)
    (out / ".deid" / "manifest.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(OutputError, match="cannot open the manifest"):
        Manifest.for_output(out)
