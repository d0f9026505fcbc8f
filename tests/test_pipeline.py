"""The pipeline: serial and Dask executors, resume, refusals, conflicts, mapping, dry run."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import dask
import distributed
import pytest
from click.testing import CliRunner

from deid.api import make_config
from deid.cli import main as cli_main
from deid.config import DeidConfig
from deid.errors import DeidError, OutputError
from deid.io import TMP_PREFIX, SourceFile
from deid.pipeline import (
    ALLOWED_WORKER_FAILURES,
    DaskExecutor,
    RunOptions,
    RunSummary,
    input_key,
    run,
    run_tasks,
)
from deid.results import FileResult, Status
from deid.task import FileTask
from deid.testing import synthetic as syn
from tests.conftest import OTHER_KEY, TEST_KEY

REPORT_FILES = {"report.json", "report.csv", "report.html"}


# -- inputs -------------------------------------------------------------------------------------


def write_series(folder: Path, n: int, *, patient_index: int = 0, seed: str = "s1") -> list[Path]:
    """``n`` small CT slices of one patient in one study."""
    patient = syn.PATIENTS[patient_index % len(syn.PATIENTS)]
    series = syn.Series(syn.Study(seed=seed, accession_number=f"ACC-{seed}"), 1, "CT")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, n + 1):
        ds = syn.build_ct_image(patient, series, i, rows=32, columns=32, extras=False)
        path = folder / f"ct{i:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_mixed(folder: Path) -> int:
    """Every builder of deid.testing.synthetic, a series, and two files that are not DICOM."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, ds in syn.build_all().items():
        (folder / "all").mkdir(exist_ok=True)
        ds.save_as(folder / "all" / f"{name}.dcm", enforce_file_format=True)
    write_series(folder / "series", 6, patient_index=1, seed="mixed")
    (folder / "notes.txt").write_text("not DICOM")
    (folder / "empty.dcm").write_bytes(b"")
    return len(syn.build_all()) + 6 + 2


def output_tree(out: Path) -> dict[str, bytes]:
    """Every output file (not the reports, not the manifest) and its bytes."""
    files = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if path.is_file() and rel not in REPORT_FILES and not rel.startswith(".deid/"):
            files[rel] = path.read_bytes()
    return files


def report_entries(out: Path) -> dict[str, dict[str, object]]:
    data = json.loads((out / "report.json").read_text())
    entries = {}
    for entry in data["inputs"]:
        entry = dict(entry)
        entry.pop("duration_s")
        entries[entry["input_id"]] = entry
    assert len(entries) == len(data["inputs"]), "an input is listed twice"
    return entries


@pytest.fixture
def cfg() -> DeidConfig:
    return make_config(key=TEST_KEY)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One local cluster of 2 processes for the whole module (slow to start)."""
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_WORKER_FAILURES}):
        local = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR, host="127.0.0.1",
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )
    try:
        yield local.scheduler_address
    finally:
        local.close()


def run_serial(sources: list[Path], out: Path, config: DeidConfig, **kw: object) -> RunSummary:
    return run(RunOptions(sources=tuple(sources), out_dir=out, workers=0, **kw),  # type: ignore[arg-type]
               config)


# -- executors ----------------------------------------------------------------------------------


@pytest.mark.dask
def test_serial_and_dask_give_identical_outputs_and_reports(
    tmp_path: Path, cfg: DeidConfig, cluster: str
) -> None:
    src = tmp_path / "src"
    n = write_mixed(src)
    serial = run_serial([src], tmp_path / "a", cfg)
    dasked = run(RunOptions(sources=(src,), out_dir=tmp_path / "b", scheduler=cluster,
                            batch_size=8), cfg)
    assert serial.total == dasked.total == n
    assert dict(serial.counts) == dict(dasked.counts)
    assert serial.counts.get("written", 0) >= 8
    assert serial.counts.get("failed", 0) >= 2  # the two non-DICOM files
    tree_a, tree_b = output_tree(tmp_path / "a"), output_tree(tmp_path / "b")
    assert tree_a and tree_a.keys() == tree_b.keys()
    for name in tree_a:
        assert tree_a[name] == tree_b[name], name
    assert report_entries(tmp_path / "a") == report_entries(tmp_path / "b")
    info = json.loads((tmp_path / "b" / "report.json").read_text())["run"]
    assert "scheduler" in info["executor"]


@pytest.mark.dask
def test_dask_executor_bounds_the_window(tmp_path: Path, cfg: DeidConfig, cluster: str) -> None:
    """Never more than the window of inputs submitted ahead of the results."""
    paths = write_series(tmp_path / "src", 30)
    pulled = 0

    def tasks() -> Iterator[FileTask]:
        nonlocal pulled
        for p in paths:
            pulled += 1
            yield FileTask(SourceFile(p, PurePosixPath(p.name)), tmp_path / "out")

    executor = DaskExecutor(scheduler=cluster, window=6, chunk_size=2)
    assert executor.window == 8  # two tasks of 2 inputs for each of the 2 workers
    try:
        seen = 0
        for _task, result in executor.map_unordered(tasks(), cfg):
            seen += 1
            assert result.status is Status.WRITTEN
            assert pulled - seen <= executor.window
    finally:
        executor.close()
    assert seen == 30


@pytest.mark.dask
def test_dask_executor_adapts_the_inputs_per_task(
    tmp_path: Path, cfg: DeidConfig, cluster: str
) -> None:
    from deid.pipeline import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE

    paths = write_series(tmp_path / "src", 40)
    executor = DaskExecutor(scheduler=cluster, window=4)
    assert executor.window == 2 * 2 * MIN_CHUNK_SIZE
    try:
        results = list(executor.map_unordered(_tasks(paths, tmp_path / "out"), cfg))
        # Tiny inputs take milliseconds: tasks grow to hold many of them.
        assert executor.window > 2 * 2 * MIN_CHUNK_SIZE
        assert executor.window <= 2 * 2 * MAX_CHUNK_SIZE
    finally:
        executor.close()
    assert len(results) == 40


def _die_once(chunk: tuple[FileTask, ...], config: DeidConfig, qa: Path | None
              ) -> list[FileResult]:
    """Kill the worker process the first time it sees an input named *victim*."""
    for task in chunk:
        if "victim" in task.source.path.name:
            marker = task.source.path.with_suffix(".died")
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.close(fd)
            os._exit(13)
    return run_tasks(chunk, config, qa)


def _always_die(chunk: tuple[FileTask, ...], config: DeidConfig, qa: Path | None
                ) -> list[FileResult]:
    if any("poison" in t.source.path.name for t in chunk):
        os._exit(13)
    return run_tasks(chunk, config, qa)


def _tasks(paths: list[Path], out: Path) -> list[FileTask]:
    return [FileTask(SourceFile(p, PurePosixPath(p.name)), out) for p in paths]


@pytest.mark.dask
def test_task_of_a_dead_worker_is_retried(tmp_path: Path, cfg: DeidConfig, cluster: str) -> None:
    paths = write_series(tmp_path / "src", 8)
    victim = paths[3].with_name("victim.dcm")
    paths[3].rename(victim)
    paths[3] = victim
    executor = DaskExecutor(scheduler=cluster, window=4, chunk_size=2, runner=_die_once)
    try:
        results = dict(executor.map_unordered(_tasks(paths, tmp_path / "out"), cfg))
    finally:
        executor.close()
    assert victim.with_suffix(".died").exists(), "the worker was not killed"
    assert len(results) == 8
    assert {r.status for r in results.values()} == {Status.WRITTEN}


@pytest.mark.dask
def test_input_that_keeps_killing_workers_fails_with_a_reason(
    tmp_path: Path, cfg: DeidConfig, cluster: str
) -> None:
    paths = write_series(tmp_path / "src", 5)
    poison = paths[2].with_name("poison.dcm")
    paths[2].rename(poison)
    paths[2] = poison
    executor = DaskExecutor(scheduler=cluster, window=4, chunk_size=2, runner=_always_die)
    try:
        results = {t.source.path.name: r for t, r in
                   executor.map_unordered(_tasks(paths, tmp_path / "out"), cfg)}
    finally:
        executor.close()
    assert len(results) == 5
    bad = results.pop("poison.dcm")
    assert bad.status is Status.FAILED and bad.error_class == "WorkerLost"
    assert "died" in (bad.reason or "") and "again alone" in (bad.reason or "")
    # The inputs that shared a worker (or a task) with it are not blamed.
    assert {r.status for r in results.values()} == {Status.WRITTEN}


def test_isolated_run_blames_only_the_input_that_crashes(tmp_path: Path, cfg: DeidConfig) -> None:
    from deid.pipeline import run_isolated

    paths = write_series(tmp_path / "src", 4)
    poison = paths[1].with_name("poison.dcm")
    paths[1].rename(poison)
    paths[1] = poison
    results = [(t.source.path.name, r) for t, r in
               run_isolated(_tasks(paths, tmp_path / "out"), cfg, None, _always_die)]
    assert [name for name, _ in results] == [p.name for p in paths]  # in order, each once
    statuses = {name: (r.status, r.error_class) for name, r in results}
    assert statuses.pop("poison.dcm") == (Status.FAILED, "WorkerLost")
    assert set(statuses.values()) == {(Status.WRITTEN, None)}


# -- resume -------------------------------------------------------------------------------------


def test_rerun_skips_done_inputs_and_redoes_changed_ones(tmp_path: Path, cfg: DeidConfig) -> None:
    src = tmp_path / "src"
    paths = write_series(src, 6)
    (src / "junk.bin").write_bytes(b"junk")
    out = tmp_path / "out"
    first = run_serial([src], out, cfg)
    assert first.processed == 7 and first.done_before == 0
    assert dict(first.counts) == {"written": 6, "failed": 1}

    again = run_serial([src], out, cfg)
    assert again.processed == 0 and again.done_before == 7
    assert dict(again.counts) == {"written": 6, "failed": 1}

    st = paths[0].stat()
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched
    (out / "ct002.dcm").unlink()  # output removed by hand
    write_series(tmp_path / "more", 1, seed="s9")[0].rename(src / "new.dcm")  # new input
    third = run_serial([src], out, cfg)
    assert third.processed == 3 and third.done_before == 5
    assert dict(third.counts) == {"written": 7, "failed": 1}
    assert (out / "ct002.dcm").is_file()


def test_inputs_that_disappear_leave_the_reports(tmp_path: Path, cfg: DeidConfig) -> None:
    src = tmp_path / "src"
    paths = write_series(src, 3)
    out = tmp_path / "out"
    run_serial([src], out, cfg)
    paths[0].unlink()
    summary = run_serial([src], out, cfg)
    assert summary.total == 2
    assert {e["source"] for e in report_entries(out).values()} == {"ct002.dcm", "ct003.dcm"}


def test_other_settings_are_refused_until_force(tmp_path: Path, cfg: DeidConfig) -> None:
    src = tmp_path / "src"
    write_series(src, 3)
    out = tmp_path / "out"
    run_serial([src], out, cfg)
    before = output_tree(out)
    other = make_config(key=OTHER_KEY, pixels="never")
    with pytest.raises(OutputError) as refused:
        run_serial([src], out, other)
    message = str(refused.value)
    assert "other settings (key, --pixels)" in message and "--force" in message
    assert OTHER_KEY.hex() not in message and TEST_KEY.hex() not in message
    assert output_tree(out) == before  # nothing touched

    forced = run_serial([src], out, other, force=True)
    assert forced.processed == 3 and dict(forced.counts) == {"written": 3}
    after = output_tree(out)
    assert after.keys() == before.keys()
    assert all(after[k] != before[k] for k in after)  # new pseudonyms, no conflict
    # The new settings are now the folder's: a plain rerun resumes.
    assert run_serial([src], out, other).done_before == 3


def test_one_run_key_cannot_resume(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_series(src, 2)
    out = tmp_path / "out"
    config = make_config()  # no key: a random one
    assert config.key_is_ephemeral
    run_serial([src], out, config)
    with pytest.raises(OutputError, match="random one-run key"):
        run_serial([src], out, make_config())


def test_stale_temporaries_are_removed(tmp_path: Path, cfg: DeidConfig) -> None:
    src = tmp_path / "src"
    write_series(src, 2)
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / f"{TMP_PREFIX}dead1").write_bytes(b"partial")
    (out / "sub" / f"{TMP_PREFIX}dead2").write_bytes(b"partial")
    summary = run_serial([src], out, cfg)
    assert summary.stale_temporaries == 2
    assert not [p for p in out.rglob("*") if p.name.startswith(TMP_PREFIX)]


# -- refusals and conflicts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_out", "message"),
    [
        (lambda src: src, "output folder is inside the source"),
        (lambda src: src / "out", "output folder is inside the source"),
        (lambda src: src / "deep" / "er", "output folder is inside the source"),
    ],
)
def test_output_inside_a_source_is_refused(
    tmp_path: Path, cfg: DeidConfig, make_out: object, message: str
) -> None:
    src = tmp_path / "src"
    write_series(src, 1)
    out = make_out(src)  # type: ignore[operator]
    with pytest.raises(OutputError, match=message):
        run_serial([src], out, cfg)
    assert not (out / "report.json").exists()


def test_source_inside_output_and_overlapping_sources_are_refused(
    tmp_path: Path, cfg: DeidConfig
) -> None:
    out = tmp_path / "out"
    write_series(out / "old", 1)
    with pytest.raises(OutputError, match="source is inside the output folder"):
        run_serial([out / "old"], out, cfg)
    src = tmp_path / "src"
    write_series(src / "a", 1)
    with pytest.raises(DeidError, match="source given twice"):
        run_serial([src, src / "a"], tmp_path / "o2", cfg)


def test_mapping_file_inside_output_or_source_is_refused(tmp_path: Path, cfg: DeidConfig) -> None:
    src = tmp_path / "src"
    write_series(src, 1)
    out = tmp_path / "out"
    with pytest.raises(OutputError, match="mapping file is inside the output folder"):
        run_serial([src], out, cfg, mapping_file=out / "map.csv")
    with pytest.raises(OutputError, match="mapping file is inside the source"):
        run_serial([src], out, cfg, mapping_file=src / "map.csv")
    with pytest.raises(OutputError, match="QA folder"):
        run_serial([src], out, cfg, qa_originals=out / "qa")


def test_cli_refusals_exit_2_with_one_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_series(src, 1)
    runner = CliRunner()
    env = {"DEID_KEY": TEST_KEY.hex()}
    result = runner.invoke(cli_main, ["run", str(src), "--out", str(src / "o"), "-q"], env=env)
    assert result.exit_code == 2
    assert "output folder is inside the source" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        cli_main,
        ["run", str(src), "--out", str(tmp_path / "o"), "--mapping", str(tmp_path / "o" / "m.csv"),
         "-q"], env=env,
    )
    assert result.exit_code == 2
    assert "mapping file is inside the output folder" in result.output


def _two_sources_same_name(tmp_path: Path, same_bytes: bool) -> tuple[Path, Path]:
    """``a/scans/ct001.dcm`` and ``b/scans/ct001.dcm``: both map to ``scans/ct001.dcm``."""
    a = tmp_path / "a" / "scans"
    b = tmp_path / "b" / "scans"
    write_series(a, 2)
    if same_bytes:
        write_series(b, 2)
    else:
        write_series(b, 2, patient_index=2, seed="other")
    return a, b


@pytest.mark.parametrize("same_bytes", [False, True])
def test_two_inputs_on_one_output_path_conflict(
    tmp_path: Path, cfg: DeidConfig, same_bytes: bool
) -> None:
    a, b = _two_sources_same_name(tmp_path, same_bytes)
    out = tmp_path / "out"
    summary = run_serial([a, b], out, cfg)
    assert dict(summary.counts) == {"written": 2, "failed": 2}
    entries = report_entries(out)
    for name in ("ct001.dcm", "ct002.dcm"):
        winner = entries[input_key(cfg, a / name)]
        loser = entries[input_key(cfg, b / name)]
        assert winner["status"] == "written" and winner["output"] == f"scans/{name}"
        assert loser["status"] == "failed" and loser["error_class"] == "OutputConflict"
        assert loser["output"] is None
        assert f"already taken by input scans/{name} (input_id {input_key(cfg, a / name)})" \
            in str(loser["reason"])
    # Nothing overwritten: the output is the first input's.
    reference = run_serial([a], tmp_path / "ref", cfg)
    assert reference.counts["written"] == 2
    ref_tree = {f"scans/{k}": v for k, v in output_tree(tmp_path / "ref").items()}
    assert ref_tree == output_tree(out)
    # A rerun keeps every input in exactly one state.
    again = run_serial([a, b], out, cfg)
    assert again.processed == 0 and dict(again.counts) == {"written": 2, "failed": 2}


@pytest.mark.dask
def test_conflict_on_dask_names_the_other_input(
    tmp_path: Path, cfg: DeidConfig, cluster: str
) -> None:
    a, b = _two_sources_same_name(tmp_path, same_bytes=False)
    out = tmp_path / "out"
    summary = run(RunOptions(sources=(a, b), out_dir=out, scheduler=cluster), cfg)
    assert dict(summary.counts) == {"written": 2, "failed": 2}
    entries = report_entries(out)
    for name in ("ct001.dcm", "ct002.dcm"):
        statuses = sorted(str(entries[input_key(cfg, s / name)]["status"]) for s in (a, b))
        assert statuses == ["failed", "written"]
        loser = next(entries[input_key(cfg, s / name)] for s in (a, b)
                     if entries[input_key(cfg, s / name)]["status"] == "failed")
        winner = next(s / name for s in (a, b)
                      if entries[input_key(cfg, s / name)]["status"] == "written")
        assert f"(input_id {input_key(cfg, winner)})" in str(loser["reason"])


# -- mapping, dry run, progress -----------------------------------------------------------------


def _read_mapping(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id_old", "id_new"]
    return [(r[0], r[1]) for r in rows[1:]]


def test_mapping_file_is_deduplicated_and_survives_resume(tmp_path: Path) -> None:
    config = make_config(key=TEST_KEY, collect_mapping=True)
    src = tmp_path / "src"
    write_series(src, 4)
    out = tmp_path / "out"
    mapping = tmp_path / "private" / "map.csv"
    run_serial([src], out, config, mapping_file=mapping)
    pairs = _read_mapping(mapping)
    assert len(pairs) == len(set(pairs))
    olds = {old for old, _new in pairs}
    patient = syn.PATIENTS[0]
    assert patient.patient_id in olds  # the original ID, mapped
    # Four instances of one patient: one pair for the patient ID, four SOP Instance UIDs.
    assert sum(1 for old, _ in pairs if old == patient.patient_id) == 1
    assert not list(mapping.parent.glob("*.deid-partial"))
    # No pair in the reports or the manifest.
    for name in ("report.json", "report.csv", "report.html"):
        assert patient.patient_id not in (out / name).read_text()
    assert patient.patient_id.encode() not in (out / ".deid" / "manifest.sqlite").read_bytes()

    (out / "ct001.dcm").unlink()
    summary = run_serial([src], out, config, mapping_file=mapping)
    assert summary.processed == 1 and summary.done_before == 3
    assert _read_mapping(mapping) == pairs  # pairs of skipped inputs kept


def test_dry_run_writes_only_the_reports(tmp_path: Path) -> None:
    config = make_config(key=TEST_KEY, dry_run=True)
    src = tmp_path / "src"
    write_series(src, 3)
    out = tmp_path / "out"
    summary = run_serial([src], out, config, mapping_file=tmp_path / "map.csv")
    assert dict(summary.counts) == {"dry-run": 3}
    assert summary.dry_run and "Dry run" in summary.describe()
    assert {p.name for p in out.iterdir()} == REPORT_FILES
    assert not (tmp_path / "map.csv").exists()
    entries = report_entries(out)
    assert {e["output"] for e in entries.values()} == {"ct001.dcm", "ct002.dcm", "ct003.dcm"}


class _Recorder:
    def __init__(self) -> None:
        self.total: int | None = -1
        self.results: list[FileResult] = []
        self.finished = False

    def start(self, total: int | None) -> None:
        self.total = total

    def advance(self, result: FileResult) -> None:
        self.results.append(result)

    def finish(self) -> None:
        self.finished = True


def test_progress_listener_sees_every_input(tmp_path: Path, cfg: DeidConfig) -> None:
    src = tmp_path / "src"
    write_series(src, 4)
    (src / "x.txt").write_text("no")
    recorder = _Recorder()
    run(RunOptions(sources=(src,), out_dir=tmp_path / "out", workers=0), cfg, progress=recorder)
    assert recorder.total == 5 and recorder.finished
    assert sorted(r.source for r in recorder.results) == [
        "ct001.dcm", "ct002.dcm", "ct003.dcm", "ct004.dcm", "x.txt"]
    recorder2 = _Recorder()
    run(RunOptions(sources=(src,), out_dir=tmp_path / "out", workers=0), cfg, progress=recorder2)
    assert recorder2.total == 5 and len(recorder2.results) == 5


def test_rich_progress_renders_counts(tmp_path: Path) -> None:
    import io

    from deid.progress import RichProgress

    buffer = io.StringIO()
    progress = RichProgress(file=buffer)
    progress.start(3)
    progress.advance(FileResult(source="a", status=Status.WRITTEN))
    progress.advance(FileResult(source="b", status=Status.FAILED, reason="r"))
    progress.advance(FileResult(source="c", status=Status.WRITTEN))
    progress.finish()
    text = buffer.getvalue()
    assert "3/3" in text and "1 failed" in text and "files/s" in text
    assert progress.failed == 1 and progress.done == 3


def test_summary_describe(tmp_path: Path, cfg: DeidConfig) -> None:
    src = tmp_path / "src"
    write_series(src, 2)
    (src / "bad").write_text("no")
    summary = run_serial([src], tmp_path / "out", cfg)
    text = summary.describe()
    assert "3 inputs: 2 written, 1 failed." in text
    assert "report.html" in text and not summary.ok


def test_qa_originals_thumbnails_of_scanned_inputs(tmp_path: Path, cfg: DeidConfig) -> None:
    import cv2
    import numpy as np

    src = tmp_path / "src"
    src.mkdir()
    everything = syn.build_all()
    for name in ("us", "ct", "sr"):
        everything[name].save_as(src / f"{name}.dcm", enforce_file_format=True)
    qa = tmp_path / "qa"
    summary = run_serial([src], tmp_path / "out", cfg, qa_originals=qa)
    assert summary.counts["written"] == 3
    entries = {e["source"]: e for e in report_entries(tmp_path / "out").values()}
    scanned = sorted(s for s, e in entries.items() if e["pixels_scanned"])
    assert "us.dcm" in scanned
    assert sorted(p.name for p in qa.iterdir()) == [f"{s}.png" for s in scanned]
    image = cv2.imdecode(np.frombuffer((qa / "us.dcm.png").read_bytes(), np.uint8),
                         cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] > 0
    # Same size as the cleaned preview, but the original still has its text (not masked).
    from deid.manifest import Manifest

    with Manifest.for_output(tmp_path / "out") as manifest:
        run_id = manifest.latest_run()
        assert run_id is not None
        cleaned_png = {r.source: png for r, png in manifest.thumbnails(run_id, 10)}["us.dcm"]
    cleaned = cv2.imdecode(np.frombuffer(cleaned_png, np.uint8), cv2.IMREAD_COLOR)
    assert cleaned.shape == image.shape
    assert entries["us.dcm"]["boxes_masked"] > 0
    assert not np.array_equal(cleaned, image)


@pytest.mark.dask
def test_cluster_with_another_deid_version_is_refused(
    cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deid

    monkeypatch.setattr(deid, "__version__", "0.0.0-other")
    with pytest.raises(DeidError, match="the Dask workers run deid .* this client 0.0.0-other"):
        DaskExecutor(scheduler=cluster)


def test_rerun_with_nothing_to_do_starts_no_cluster(
    tmp_path: Path, cfg: DeidConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deid.pipeline

    src = tmp_path / "src"
    write_series(src, 3)
    out = tmp_path / "out"
    run_serial([src], out, cfg)

    def no_executor(options: RunOptions) -> None:
        raise AssertionError("an executor was started with nothing to do")

    monkeypatch.setattr(deid.pipeline, "make_executor", no_executor)
    summary = run(RunOptions(sources=(src,), out_dir=out, workers=2), cfg)
    assert summary.processed == 0 and summary.done_before == 3
    info = json.loads((out / "report.json").read_text())["run"]
    assert info["executor"] == "Dask local cluster of 2 processes"
