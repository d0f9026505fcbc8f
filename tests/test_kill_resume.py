"""``kill -9`` at any moment, rerun: every input exactly once, no partial file, same outputs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deid.api import make_config
from deid.io import TMP_PREFIX
from deid.pipeline import RunOptions, run
from deid.testing import synthetic as syn
from tests.conftest import TEST_KEY

N_IMAGES = 300
DEID = Path(sys.executable).with_name("deid")


def _write_inputs(src: Path) -> int:
    for s in range(N_IMAGES // 50):
        patient = syn.PATIENTS[s % len(syn.PATIENTS)]
        series = syn.Series(syn.Study(seed=f"kill{s}", accession_number=f"K{s}"), 1, "CT")
        folder = src / f"study{s}"
        folder.mkdir(parents=True)
        for i in range(1, 51):
            ds = syn.build_ct_image(patient, series, i, rows=32, columns=32, extras=False)
            ds.save_as(folder / f"{i:03d}.dcm", enforce_file_format=True)
    (src / "readme.txt").write_text("not DICOM")
    (src / "study0" / "empty.dcm").write_bytes(b"")
    return N_IMAGES + 2


def _outputs(out: Path) -> int:
    count = 0
    for _dirpath, _dirs, files in os.walk(out):
        count += sum(1 for f in files if f.endswith(".dcm") and not f.startswith(TMP_PREFIX))
    return count


def _command(src: Path, out: Path, workers: int) -> list[str]:
    return [str(DEID), "run", str(src), "--out", str(out), "--workers", str(workers), "-q"]


def _env() -> dict[str, str]:
    return {**os.environ, "DEID_KEY": TEST_KEY.hex()}


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _committed(out: Path) -> int:
    """Rows the manifest has committed (read by another process, as a reviewer would)."""
    db_file = out / ".deid" / "manifest.sqlite"
    if not db_file.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM inputs").fetchone()[0])
    except sqlite3.Error:
        return 0


def _kill_when(src: Path, out: Path, workers: int, *, rows: int | None, after_s: float,
               whole_group: bool) -> int:
    """Start ``deid run``; SIGKILL it once the manifest holds ``rows`` inputs (or after
    ``after_s`` seconds when ``rows`` is None).

    Returns the rows committed at the kill. Fails if the run ended by itself first.
    """
    proc = subprocess.Popen(_command(src, out, workers), env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.monotonic()
    try:
        while proc.poll() is None:
            if rows is not None and _committed(out) >= rows:
                break
            if rows is None and time.monotonic() - start >= after_s:
                break
            time.sleep(0.005)
        assert proc.poll() is None, (
            f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
        )
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)  # the workers must notice and go by themselves
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert _group_gone(proc.pid, 30), "worker processes outlived the killed run"
        return _committed(out)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _tree(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*.dcm")) if p.is_file()
    }


@pytest.mark.dask
@pytest.mark.slow
def test_kill_9_at_any_moment_then_rerun(tmp_path: Path) -> None:
    assert DEID.is_file(), f"the deid command is not installed next to {sys.executable}"
    src = tmp_path / "src"
    n_inputs = _write_inputs(src)
    reference = tmp_path / "reference"
    ref = run(RunOptions(sources=(src,), out_dir=reference, workers=0),
              make_config(key=TEST_KEY))
    assert dict(ref.counts) == {"written": N_IMAGES, "failed": 2}

    out = tmp_path / "out"
    # 1. Killed while the local cluster starts (before any output, or just after).
    _kill_when(src, out, 2, rows=None, after_s=0.8, whole_group=True)
    # 2. Killed in full flight on a Dask cluster: only the client process is killed.
    first = _kill_when(src, out, 2, rows=20, after_s=0, whole_group=False)
    assert _outputs(out) >= first
    # 3. Killed again, in-process this time, a little further on.
    second = _kill_when(src, out, 0, rows=first + 30, after_s=0, whole_group=True)
    assert 20 <= first < second < n_inputs

    final = subprocess.run(_command(src, out, 2), env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert final.returncode == 1, final.stderr  # two inputs are not DICOM
    assert "Traceback" not in final.stderr

    # Every input exactly once, in one state.
    report = json.loads((out / "report.json").read_text())
    entries = report["inputs"]
    assert len(entries) == n_inputs == report["total"]
    assert len({e["input_id"] for e in entries}) == n_inputs
    assert report["counts"] == {"written": N_IMAGES, "failed": 2}
    assert report["run"]["done_before"] >= second  # resumed, not redone from scratch
    for entry in entries:
        if entry["status"] == "failed":
            assert entry["source"] in ("readme.txt", "study0/empty.dcm")
            assert entry["reason"] and entry["error_class"] == "InputError"
        else:
            assert entry["status"] == "written" and entry["output"] == entry["source"]
    with sqlite3.connect(out / ".deid" / "manifest.sqlite") as db:
        rows, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM inputs").fetchone()
    assert rows == distinct == n_inputs

    # No temporary or partial file; the outputs are exactly those of an uninterrupted run.
    assert not [p for p in out.rglob("*") if p.name.startswith(TMP_PREFIX)]
    assert _tree(out) == _tree(reference)
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "report.csv", "report.html", "report.json"]
