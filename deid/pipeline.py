"""Plan the work, run it on a serial or a Dask executor, record every input, write the reports.

The plan is a lazy stream of small frozen :class:`~deid.task.FileTask` objects, one per input
that still needs work (:func:`plan`); an executor turns tasks into results (:class:`SerialExecutor`
in-process, :class:`DaskExecutor` on a local cluster of processes or an existing scheduler). The
client process alone records results in the manifest (:mod:`deid.manifest`), so a run killed at
any moment can be rerun with the same arguments: inputs already finished are skipped, the others
redone, and every input ends in exactly one state.

Memory stays bounded whatever the number of inputs: discovery is a generator, a bounded window of
inputs is in flight (three tasks per worker within ``batch_size``; two tasks per worker at
least), results are streamed into the manifest, and the reports are rebuilt from the manifest at
the end (:mod:`deid.report`, :mod:`deid.html`).

A worker whose process dies (a decoder crash, out of memory) loses nothing: Dask retries its task
once elsewhere, then the inputs of the task are run one at a time in an isolated process, where
the input that crashes again ends ``failed`` (``WorkerLost``) and the others end as they should.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import itertools
import logging
import os
import secrets
import sqlite3
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from deid._version import __ps315_edition__, __version__
from deid.config import DeidConfig
from deid.errors import DeidError, OutputError
from deid.io import TMP_PREFIX, SourceFile, discover, remove_stale_temporaries
from deid.manifest import STATE_DIR, Manifest, settings_for
from deid.report import (
    CSV_NAME,
    HTML_NAME,
    JSON_NAME,
    REPORT_NAMES,
    RunInfo,
    atomic_text,
    mixed_study_flag,
    write_json_and_csv,
)
from deid.results import FileResult, Status
from deid.task import FileTask, run_task

logger = logging.getLogger(__name__)

__all__ = [
    "RunOptions",
    "ProgressListener",
    "RunSummary",
    "Executor",
    "SerialExecutor",
    "DaskExecutor",
    "plan",
    "run",
    "run_tasks",
    "run_isolated",
]

#: Default number of inputs in flight at once (the submission window).
DEFAULT_BATCH_SIZE = 256

#: Inputs per Dask task are chosen so that a task takes about this long (seconds): long enough
#: to amortise Dask's per-task cost (a few milliseconds, on the worker too), short enough for a
#: lively progress bar and a short tail.
TARGET_TASK_S = 0.2
#: Bounds of the adaptive number of inputs per Dask task (the first tasks use the lower one).
MIN_CHUNK_SIZE = 2
MAX_CHUNK_SIZE = 64

#: A Dask task whose worker died more often than this is given up by Dask (``KilledWorker``);
#: its inputs are then run one by one in an isolated process (see :func:`run_isolated`).
ALLOWED_WORKER_FAILURES = 1

#: Error class of an input whose worker process died while processing it.
WORKER_LOST = "WorkerLost"
#: Error class of an input whose Dask task failed for another reason (cancelled, lost scheduler).
WORKER_ERROR = "WorkerError"
#: Error class of an input whose output path is taken by another input.
OUTPUT_CONFLICT = "OutputConflict"

_MAPPING_HEADER = ("id_old", "id_new")


@dataclass(frozen=True)
class RunOptions:
    """How to run the pipeline (what to do is in :class:`~deid.config.DeidConfig`).

    Parameters
    ----------
    sources:
        Input files and folders (folders are walked recursively).
    out_dir:
        The output folder; it holds the outputs, ``report.*`` and ``.deid/manifest.sqlite``.
    workers:
        Local worker processes; ``None`` for one per core, ``0`` for in-process serial work.
    scheduler:
        Address of an existing Dask scheduler (``tcp://host:8786``); ``workers`` is then ignored.
        Its workers need the same version of deid and the same paths to the sources and the
        output folder (a shared file system). The config, key included, travels to them with
        each task: use a ``tls://`` scheduler across machines.
    force:
        Redo every input, deleting the outputs an earlier run recorded, even with other settings.
    mapping_file:
        Where to write the ``id_old,id_new`` CSV of original-to-pseudonym pairs (PHI).
    qa_originals:
        Folder for PNG thumbnails of the original images (PHI), beside the cleaned ones.
    batch_size:
        The most inputs in flight at once (bounds the memory of the client and the cluster).
    """

    sources: tuple[Path, ...]
    out_dir: Path
    workers: int | None = None
    scheduler: str | None = None
    force: bool = False
    mapping_file: Path | None = None
    qa_originals: Path | None = None
    batch_size: int = DEFAULT_BATCH_SIZE


class ProgressListener(Protocol):
    """Told about the progress of a run (the CLI shows a progress bar)."""

    def start(self, total: int | None) -> None:
        """The run starts; ``total`` inputs (``None`` when not counted)."""

    def advance(self, result: FileResult) -> None:
        """One more input is done (including inputs an earlier run had finished)."""

    def finish(self) -> None:
        """Every input is done (or the run stops on an error)."""


@dataclass(frozen=True)
class RunSummary:
    """The outcome of a run, over every input of the sources (resumed runs included)."""

    out_dir: Path
    counts: Mapping[str, int]
    """Inputs by status (``written``, ``failed``, ``skipped``, ``dry-run``)."""
    processed: int
    """Inputs processed by this run."""
    done_before: int
    """Inputs an earlier run of the same folder had finished (skipped by this one)."""
    elapsed_s: float
    reports: tuple[Path, ...]
    mapping_file: Path | None = None
    qa_originals: Path | None = None
    dry_run: bool = False
    flags: int = 0
    """Number of flagged inputs, counted once per finding (see ``report.html``)."""
    stale_temporaries: int = 0
    """Temporary files of a killed run removed at the start."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return int(self.counts.get(Status.FAILED.value, 0))

    @property
    def ok(self) -> bool:
        """True when no input failed."""
        return self.failed == 0

    @property
    def throughput(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def describe(self) -> str:
        """A few lines for a person: totals, time, where the reports are."""
        order = [s.value for s in Status]
        parts = [f"{self.counts[s]} {s}" for s in order if self.counts.get(s)]
        lines = [f"{self.total} inputs: {', '.join(parts) if parts else 'none found'}."]
        timing = (
            f"Processed {self.processed} in {self.elapsed_s:.1f} s "
            f"({self.throughput:.1f} files/s)"
        )
        if self.done_before:
            timing += f"; {self.done_before} already done by an earlier run"
        lines.append(timing + ".")
        if self.failed:
            lines.append(f"{self.failed} failed: reasons in {self.reports[0]} (and report.csv).")
        if self.flags:
            lines.append(f"Flags for review: {self.flags} (see {self.reports[0]}).")
        lines.append("Reports: " + ", ".join(str(p) for p in self.reports))
        if self.mapping_file is not None:
            lines.append(f"Mapping (PHI, keep it safe): {self.mapping_file}")
        if self.dry_run:
            lines.append("Dry run: no output was written, only the reports.")
        return "\n".join(lines)


# -- executors ----------------------------------------------------------------------------------


class Executor(Protocol):
    """Turns tasks into results, in any order; never raises for a bad input."""

    description: str

    def map_unordered(
        self, tasks: Iterable[FileTask], config: DeidConfig
    ) -> Iterator[tuple[FileTask, FileResult]]:
        """Run every task, yielding ``(task, result)`` as results come."""

    def close(self) -> None:
        """Release the workers."""


Runner = Callable[[tuple[FileTask, ...], DeidConfig, "Path | None"], list[FileResult]]
"""The function that runs a chunk of tasks on a worker (:func:`run_tasks`)."""


def run_tasks(
    tasks: tuple[FileTask, ...], config: DeidConfig, qa_dir: Path | None = None
) -> list[FileResult]:
    """Run a few tasks in a row: the function a Dask worker runs (never raises)."""
    results = []
    for task in tasks:
        result = run_task(task, config)
        if qa_dir is not None:
            _write_qa_original(task, result, qa_dir)
        results.append(result)
    return results


def _isolated_main(connection: Any, runner: Runner, config: DeidConfig,
                   qa_dir: Path | None) -> None:
    """The loop of an isolated process: one task in, its result out, until told to stop."""
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):  # the client went away
            return
        if task is None:
            return
        connection.send(runner((task,), config, qa_dir)[0])


def run_isolated(
    tasks: Iterable[FileTask], config: DeidConfig, qa_dir: Path | None = None,
    runner: Runner | None = None,
) -> Iterator[tuple[FileTask, FileResult]]:
    """Run tasks one at a time in a separate process of this machine, restarted after a crash.

    For the inputs of a Dask task whose worker died: run alone, an input that kills its process
    again is the culprit (``failed``, :data:`WORKER_LOST`); the others, which only shared a
    worker with it, end as they should.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pending = deque(tasks)
    while pending:
        parent, child = context.Pipe()
        process = context.Process(
            target=_isolated_main, args=(child, runner or run_tasks, config, qa_dir),
            name="deid-isolated", daemon=True,
        )
        process.start()
        child.close()
        try:
            while pending:
                task = pending[0]
                try:
                    parent.send(task)
                    result = parent.recv()
                except (EOFError, OSError):
                    process.join(10)
                    pending.popleft()
                    yield task, _failed(
                        task,
                        f"{task.source.relative}: the process de-identifying this input died (exit "
                        f"code {process.exitcode}), on a Dask worker and again alone (a crash in a "
                        "decoder, or out of memory); not written.",
                        WORKER_LOST,
                    )
                    break
                pending.popleft()
                yield task, result
        finally:
            with contextlib.suppress(OSError, ValueError):
                parent.send(None)
            parent.close()
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()


def _write_qa_original(task: FileTask, result: FileResult, qa_dir: Path) -> None:
    """``--qa-originals``: a PNG thumbnail of the *original* frame 0, with the boxes the pixel
    step masked outlined in red (kept text in green), for side-by-side review.

    Written only for inputs whose pixels were scanned, to ``QA/<source path>.png`` (PHI: the
    folder is refused inside the output folder or a source). Never fails the input.
    """
    pixels_outcome = result.pixels
    if result.status is not Status.WRITTEN or pixels_outcome is None or not pixels_outcome.scanned:
        return
    try:
        from deid.io import read_dataset
        from deid.pixels.frames import decode, rendering
        from deid.pixels.preview import thumbnail_png

        ds = read_dataset(task.source.path)
        decoded = decode(ds)
        boxes = [b for b in pixels_outcome.boxes if b.frame in (0, -1)]
        png = thumbnail_png(
            decoded, rendering(ds), 0,
            [(b.x, b.y, b.width, b.height) for b in boxes if not b.kept],
            [(b.x, b.y, b.width, b.height) for b in boxes if b.kept],
        )
        if png:
            _replace_bytes(png, qa_dir / f"{task.source.relative.as_posix()}.png")
    except Exception as exc:  # a QA thumbnail never fails an input
        logger.warning("%s: no QA thumbnail of the original (%s)", task.source.relative,
                       type(exc).__name__)


def _replace_bytes(data: bytes, dest: Path) -> None:
    """Write ``data`` to ``dest`` through a temporary file (a QA preview may be replaced)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class SerialExecutor:
    """Runs every task in this process, one after the other (``--workers 0``)."""

    description = "serial (in-process)"

    def __init__(self, qa_dir: Path | None = None) -> None:
        self._qa_dir = qa_dir

    def map_unordered(
        self, tasks: Iterable[FileTask], config: DeidConfig
    ) -> Iterator[tuple[FileTask, FileResult]]:
        for task in tasks:
            yield task, run_tasks((task,), config, self._qa_dir)[0]

    def close(self) -> None:
        pass


def _debugging() -> bool:
    return logging.getLogger("deid").getEffectiveLevel() <= logging.DEBUG


class _QuietDask:
    """Keep Dask's own log lines (cluster start and stop, closed comms) out of the CLI."""

    _NAMES = ("distributed", "tornado", "bokeh", "asyncio")

    def __init__(self, level: int) -> None:
        self._level = level
        self._saved: dict[str, int] = {}

    def __enter__(self) -> _QuietDask:
        if _debugging():
            return self  # -vv: let Dask speak
        for name in self._NAMES:
            log = logging.getLogger(name)
            self._saved[name] = log.level
            log.setLevel(self._level)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for name, level in self._saved.items():
            logging.getLogger(name).setLevel(level)


def _take(items: Iterator[FileTask], size: int) -> tuple[FileTask, ...]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            break
    return tuple(chunk)


class _ChunkSizer:
    """Inputs per task from the mean duration of the inputs done so far (see TARGET_TASK_S)."""

    def __init__(self, fixed: int | None) -> None:
        self.fixed = fixed
        self.size = fixed if fixed is not None else MIN_CHUNK_SIZE
        self._mean: float | None = None

    def observe(self, results: list[FileResult]) -> None:
        if self.fixed is not None or not results:
            return
        mean = sum(r.duration_s for r in results) / len(results)
        self._mean = mean if self._mean is None else 0.7 * self._mean + 0.3 * mean
        wanted = int(TARGET_TASK_S / max(self._mean, 1e-4))
        self.size = max(1, min(MAX_CHUNK_SIZE, wanted))


def _warm_worker() -> str:
    """Run once on every worker before the first task: import the task code (and so check that
    deid is installed there, for an existing cluster)."""
    import deid.task  # noqa: F401

    return deid.__version__


def _failed(task: FileTask, reason: str, error_class: str) -> FileResult:
    return FileResult(
        source=task.source.relative.as_posix(), status=Status.FAILED, reason=reason,
        error_class=error_class,
    )


def _future_error(future: Any) -> BaseException | None:
    """The exception of a failed or cancelled Dask future."""
    try:
        error: BaseException | None = future.exception()
    except BaseException as cancelled:  # CancelledError is not an Exception
        error = cancelled
    return error if error is not None else RuntimeError("no result")


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class DaskExecutor:
    """Runs tasks on a Dask cluster: a new local cluster of processes, or an existing scheduler.

    Tasks are submitted in a bounded window (never more than ``window`` inputs in flight) and
    results are streamed back as they complete. The config travels with each task (a few hundred
    bytes; it holds the key, which is never logged): no worker holds state that a restarted worker
    would have to fetch from a peer, and workers never talk to each other.

    A task whose worker dies (a decoder crash, out of memory) is retried by Dask on another worker
    up to :data:`ALLOWED_WORKER_FAILURES` times (local cluster); a chunk of several inputs is then
    split and each input retried alone, so that only the input that kills workers ends ``failed``
    with the reason ``WorkerLost``.

    Parameters
    ----------
    workers:
        Processes of the local cluster (``None``: one per core). Ignored with ``scheduler``.
    scheduler:
        Address of an existing scheduler.
    window:
        The most inputs in flight (see :attr:`window`: at least two tasks per worker).
    chunk_size:
        Inputs per Dask task; ``None`` (default) adapts it to the inputs' durations, aiming at
        :data:`TARGET_TASK_S` per task.
    qa_dir:
        ``--qa-originals`` folder.
    runner:
        The function a worker runs on a chunk (:func:`run_tasks`; tests replace it).
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        scheduler: str | None = None,
        window: int = DEFAULT_BATCH_SIZE,
        chunk_size: int | None = None,
        qa_dir: Path | None = None,
        runner: Runner = run_tasks,
    ) -> None:
        import dask
        import distributed

        self._qa_dir = qa_dir
        self._runner = runner
        self._closed = False
        self._quiet = _QuietDask(logging.ERROR).__enter__()
        # Held while the executor lives, so that restarted workers get it too. Dask keeps the
        # last messages of each connection for debugging (1000 by default): they hold the task
        # arguments, so memory would grow with the number of tasks up to that length.
        self._dask_config = dask.config.set({
            "distributed.admin.low-level-log-length": 16,
            "distributed.scheduler.allowed-failures": ALLOWED_WORKER_FAILURES,
            # The window bounds the tasks in flight: let each worker hold its next task instead
            # of waiting for the scheduler between two tasks.
            "distributed.scheduler.worker-saturation": float("inf"),
            "distributed.worker.daemon": True,
            # No statistical profiler sampling every worker's stacks every 10 ms (a few % of
            # CPU on a small machine; it feeds the dashboard, which deid does not start).
            "distributed.worker.profile.enabled": False,
        })
        self._dask_config.__enter__()
        self._cluster: Any = None
        try:
            if scheduler is not None:
                try:
                    self._client = distributed.Client(scheduler, set_as_default=False, timeout=30)
                except (OSError, TimeoutError) as exc:
                    raise DeidError(
                        f"cannot connect to the Dask scheduler at {scheduler} "
                        f"({type(exc).__name__}); check the address and that it is running."
                    ) from None
                info = self._client.scheduler_info()
                n = max(1, sum(int(w.get("nthreads", 1)) for w in info["workers"].values()))
                self.description = f"Dask scheduler {scheduler} ({n} threads)"
            else:
                n = workers if workers is not None and workers > 0 else default_workers()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # Dask's start-up notes are not for users
                    self._cluster = distributed.LocalCluster(
                        n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                        scheduler_port=0, dashboard_address=None,
                        # Workers' own logs stay quiet (a failing input is a result, not a log
                        # line); -vv lets them speak.
                        silence_logs=logging.INFO if _debugging() else logging.CRITICAL,
                        # No dashboard; its bare HTTP server on a free port, not 8787 (which
                        # another cluster may hold: Dask would warn on stderr).
                        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                    )
                self._client = distributed.Client(self._cluster, set_as_default=False)
                self.description = f"Dask local cluster of {n} processes"
        except BaseException:
            self.close()
            raise
        self.workers = n
        self._sizer = _ChunkSizer(chunk_size)
        self._batch = max(1, window)
        self._check_workers()

    @property
    def window(self) -> int:
        """The most inputs in flight now: three tasks per worker (two at least, whatever the
        batch size), within the batch size. Small until the first results tell how long an
        input takes."""
        per_task = self.workers * self._sizer.size
        return max(2 * per_task, min(self._batch, 3 * per_task))

    def _check_workers(self) -> None:
        """Import the task code on every worker now (in parallel, before the first task), and
        refuse clearly a cluster whose workers cannot."""
        try:
            versions = self._client.run(_warm_worker)
        except Exception as exc:
            self.close()
            raise DeidError(
                f"the Dask workers cannot run deid ({type(exc).__name__}); install deid (same "
                "version) on every worker of the cluster."
            ) from None
        from deid import __version__ as ours

        other = sorted({str(v) for v in versions.values()} - {ours})
        if other:
            self.close()
            raise DeidError(
                f"the Dask workers run deid {', '.join(other)}, this client {ours}; install the "
                "same version everywhere."
            )

    def map_unordered(
        self, tasks: Iterable[FileTask], config: DeidConfig
    ) -> Iterator[tuple[FileTask, FileResult]]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        source = iter(tasks)
        inflight: dict[Any, tuple[FileTask, ...]] = {}
        in_flight_inputs = 0
        # Results are fetched by the event loop as futures finish (no round trip per future).
        pending = as_completed(with_results=True, raise_errors=False, loop=self._client.loop)

        def submit(chunk: tuple[FileTask, ...]) -> None:
            nonlocal in_flight_inputs
            future = self._client.submit(self._runner, chunk, config, self._qa_dir, pure=False)
            inflight[future] = chunk
            in_flight_inputs += len(chunk)
            pending.add(future)

        def fill() -> None:
            while True:
                size = self._sizer.size
                if in_flight_inputs and in_flight_inputs + size > self.window:
                    return
                chunk = _take(source, size)
                if not chunk:
                    return
                submit(chunk)

        try:
            fill()
            for future, value in pending:
                chunk = inflight.pop(future)
                in_flight_inputs -= len(chunk)
                results: list[FileResult] | None = None
                error: BaseException | None = None
                if future.status == "finished":
                    if isinstance(value, list) and len(value) == len(chunk):
                        results = value
                    else:
                        error = ValueError("unexpected result")
                else:
                    error = _future_error(future)
                future.release()
                if error is not None and isinstance(error, KilledWorker):
                    logger.info("a worker died %d times on a task of %d inputs; running them one "
                                "by one in an isolated process", ALLOWED_WORKER_FAILURES + 1,
                                len(chunk))
                    yield from run_isolated(chunk, config, self._qa_dir, self._runner)
                elif error is not None:
                    yield from zip(chunk, [self._task_error(t, error) for t in chunk])
                if results is not None:
                    self._sizer.observe(results)
                    yield from zip(chunk, results)
                fill()
        finally:
            if inflight:
                self._client.cancel(list(inflight))

    @staticmethod
    def _task_error(task: FileTask, exc: BaseException | None) -> FileResult:
        name = type(exc).__name__ if exc is not None else "unknown error"
        return _failed(
            task,
            f"{task.source.relative}: the Dask task failed ({name}); not written, a rerun retries "
            "it.",
            WORKER_ERROR,
        )

    def _close_cluster(self) -> None:
        client = getattr(self, "_client", None)
        # Closing comms makes Dask log errors that mean nothing to a user.
        with _QuietDask(logging.CRITICAL + 1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close(timeout=10)
            if self._cluster is not None:
                with contextlib.suppress(Exception):
                    self._cluster.close(timeout=20)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._close_cluster()
        finally:
            self._dask_config.__exit__(None, None, None)
            self._quiet.__exit__(None, None, None)


def make_executor(options: RunOptions) -> Executor:
    """The executor ``options`` ask for."""
    if options.scheduler is None and options.workers == 0:
        return SerialExecutor(options.qa_originals)
    return DaskExecutor(
        workers=options.workers, scheduler=options.scheduler,
        window=max(1, options.batch_size), qa_dir=options.qa_originals,
    )


# -- checks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Paths:
    out_dir: Path
    sources: tuple[Path, ...]
    mapping_file: Path | None
    qa_originals: Path | None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def check_paths(options: RunOptions) -> _Paths:
    """Refuse output, mapping and QA locations that would mix with the inputs or each other.

    Raises
    ------
    OutputError
        The output folder is a source or inside one; a source is inside the output folder; the
        mapping file or the QA folder is inside the output folder or a source.
    DeidError
        A source is missing, or given twice (one inside another).
    """
    out = options.out_dir.resolve()
    sources: list[Path] = []
    for given in options.sources:
        src = Path(given).resolve()
        if not src.exists():
            raise DeidError(f"{given}: source does not exist.")
        if src.is_dir() and _inside(out, src) or out == src:
            raise OutputError(
                f"{options.out_dir}: the output folder is inside the source {given}; choose an "
                "output folder outside every source."
            )
        if _inside(src, out):
            raise OutputError(
                f"{given}: the source is inside the output folder {options.out_dir}; choose an "
                "output folder outside every source."
            )
        for other in sources:
            if _inside(src, other) or _inside(other, src):
                raise DeidError(f"{given}: source given twice (it overlaps {other}).")
        sources.append(src)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{options.out_dir}: exists and is not a folder.")
    mapping = options.mapping_file.resolve() if options.mapping_file is not None else None
    if mapping is not None:
        if _inside(mapping, out):
            raise OutputError(
                f"{options.mapping_file}: the mapping file is inside the output folder; it holds "
                "original identifiers (PHI): write it outside the output folder."
            )
        for src in sources:
            if src.is_dir() and _inside(mapping, src):
                raise OutputError(
                    f"{options.mapping_file}: the mapping file is inside the source {src}; write "
                    "it outside every source."
                )
        if mapping.is_dir():
            raise OutputError(f"{options.mapping_file}: is a folder; give a file name.")
    qa = options.qa_originals.resolve() if options.qa_originals is not None else None
    if qa is not None:
        if _inside(qa, out) or _inside(out, qa):
            raise OutputError(
                f"{options.qa_originals}: the QA folder holds original images (PHI): keep it "
                "apart from the output folder."
            )
        for src in sources:
            if src.is_dir() and _inside(qa, src):
                raise OutputError(
                    f"{options.qa_originals}: the QA folder is inside the source {src}; choose "
                    "one outside every source."
                )
    return _Paths(out, tuple(sources), mapping, qa)


def _check_settings(
    manifest: Manifest, settings: Mapping[str, Any], paths: _Paths, config: DeidConfig,
    force: bool,
) -> None:
    stored = manifest.stored_settings()
    if stored is None or dict(stored) == dict(settings) or force:
        return
    differ = Manifest.differences(stored, settings)
    hint = ""
    if "key" in differ and config.key_is_ephemeral:
        hint = (" (this run has a random one-run key: give the key of the first run with "
                "--key-file or $DEID_KEY)")
    raise OutputError(
        f"{paths.out_dir}: was made with other settings ({', '.join(differ)}){hint}; rerun with "
        "the same arguments to resume, or add --force to redo every input."
    )


def _forget_previous(manifest: Manifest, out_dir: Path) -> int:
    """``--force``: delete the outputs the manifest recorded, and forget every input."""
    removed = 0
    for output in manifest.written_outputs():
        target = out_dir / output
        try:
            target.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise OutputError(
                f"{target}: cannot delete the output of the earlier run ({exc.strerror})."
            ) from None
        parent = target.parent
        while parent != out_dir and _inside(parent, out_dir):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
    manifest.clear_inputs()
    if removed:
        logger.info("--force: removed %d outputs of the earlier run", removed)
    return removed


# -- the mapping journal ------------------------------------------------------------------------


class _MappingJournal:
    """Original-to-pseudonym pairs (PHI), kept beside the mapping file until the run ends.

    A SQLite file ``<mapping>.deid-partial`` deduplicates the pairs on disk and survives a kill,
    so that the pairs of inputs a resumed run skips are not lost. It is committed before the
    manifest, then turned into the CSV and deleted at the end of the run.
    """

    def __init__(self, mapping_file: Path, *, force: bool) -> None:
        self.mapping_file = mapping_file
        self.path = mapping_file.with_name(mapping_file.name + ".deid-partial")
        try:
            mapping_file.parent.mkdir(parents=True, exist_ok=True)
            if force:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            fresh = not self.path.exists()
            self._db = sqlite3.connect(str(self.path), isolation_level=None)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS pairs (old TEXT NOT NULL, new TEXT NOT NULL, "
                "PRIMARY KEY (old, new)) WITHOUT ROWID"
            )
            self._db.execute("BEGIN")
            if fresh and not force and mapping_file.is_file():
                self._import(mapping_file)
        except (OSError, sqlite3.Error) as exc:
            raise OutputError(
                f"{self.path}: cannot keep the mapping journal ({type(exc).__name__})."
            ) from None

    def _import(self, mapping_file: Path) -> None:
        with open(mapping_file, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is not None and tuple(header) != _MAPPING_HEADER:
                raise OutputError(
                    f"{mapping_file}: exists and is not a deid mapping file; choose another name."
                )
            self._db.executemany(
                "INSERT OR IGNORE INTO pairs VALUES (?, ?)", (r for r in reader if len(r) == 2)
            )

    def add(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._db.executemany("INSERT OR IGNORE INTO pairs VALUES (?, ?)", pairs)

    def commit(self) -> None:
        if self._db is None:  # type: ignore[comparison-overlap]
            return
        self._db.execute("COMMIT")
        self._db.execute("BEGIN")

    def write_csv(self) -> None:
        """Write the deduplicated pairs to the mapping file atomically; drop the journal."""
        self.commit()
        with atomic_text(self.mapping_file) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(_MAPPING_HEADER)
            writer.writerows(self._db.execute("SELECT old, new FROM pairs ORDER BY old, new"))
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def close(self) -> None:
        if self._db is not None:  # type: ignore[comparison-overlap]
            with contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:
                    self._db.execute("COMMIT")
            self._db.close()
            self._db = None  # type: ignore[assignment]


# -- planning and recording ---------------------------------------------------------------------


def plan(
    sources: tuple[Path, ...],
    out_dir: Path,
    manifest: Manifest,
    run_id: int,
    *,
    done: Any,
    stats: dict[Path, tuple[int, int]],
    key_of: Any = str,
) -> Iterator[FileTask]:
    """The tasks of the inputs that need work, lazily, in discovery order.

    Inputs the manifest says are done (same size and modification time) are marked seen by this
    run and passed to ``done(result)`` instead. ``stats`` receives the size and modification
    time of each planned input (taken before its task reads it), until its result is recorded.
    """
    for source in discover(sources, exclude=out_dir):
        size, mtime_ns = _stat(source)
        key = key_of(source.path)
        previous = manifest.is_done(key, size, mtime_ns, out_dir)
        if previous is not None:
            manifest.mark_seen(key, run_id)
            done(previous)
            continue
        stats[source.path] = (size, mtime_ns)
        yield FileTask(source, out_dir)


def _stat(source: SourceFile) -> tuple[int, int]:
    try:
        st = source.path.stat()
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


def _contested_output(result: FileResult) -> str | None:
    """The output path a result wrote, or the one it found taken (``OutputConflict``)."""
    return result.output or result.contested_output


def _conflict_reason(source: str, output: str, owner: str) -> str:
    return (f"{source}: output {output} is already taken by input {owner}; not written "
            "(rename or move one of the two inputs).")


def input_key(config: DeidConfig, path: Path) -> str:
    """The manifest's key of an input: a keyed hash of its absolute path, so that the output
    folder never holds the source's paths (folder names may carry names or IDs)."""
    message = b"input-path\x00" + str(path).encode("utf-8", "surrogateescape")
    return hmac.new(config.key, message, hashlib.sha256).hexdigest()[:40]


def _reconcile(manifest: Manifest, path: str, result: FileResult) -> FileResult:
    """Make a second input that lands on an output path already taken a ``failed`` conflict."""
    if result.output and result.status in (Status.WRITTEN, Status.DRY_RUN):
        owner = manifest.owner_of(result.output, excluding=path)
        if owner is not None:
            return replace(
                result, status=Status.FAILED, output=None, error_class=OUTPUT_CONFLICT,
                reason=_conflict_reason(result.source, result.output, owner), mapping=(),
            )
    elif result.error_class == OUTPUT_CONFLICT:
        output = _contested_output(result)
        owner = manifest.owner_of(output, excluding=path) if output else None
        if output and owner is not None:
            return replace(result, reason=_conflict_reason(result.source, output, owner))
    return result


def _name_conflict_owners(manifest: Manifest, run_id: int) -> None:
    """At the end, name the owner in the reason of conflicts whose owner finished later."""
    for path, result in manifest.conflicts(run_id):
        output = _contested_output(result)
        owner = manifest.owner_of(output, excluding=path) if output else None
        if output and owner is not None:
            manifest.update_reason(path, _conflict_reason(result.source, output, owner))
    manifest.commit()


# -- the run ------------------------------------------------------------------------------------


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


@dataclass
class _Counters:
    processed: int = 0
    done_before: int = 0


def run(
    options: RunOptions, config: DeidConfig, *, progress: ProgressListener | None = None
) -> RunSummary:
    """De-identify every input of ``options.sources`` into ``options.out_dir``; write the reports.

    Resumable: inputs a previous run with the same settings finished are skipped (see
    :mod:`deid.manifest`). With ``config.dry_run`` only the reports are written (the manifest is
    kept in memory).

    Raises
    ------
    OutputError, DeidError
        Refused locations (see :func:`check_paths`), settings that differ from those the output
        folder was made with (without ``force``), an unusable output folder. A bad input never
        raises: it is a ``failed`` entry of the reports.
    """
    paths = check_paths(options)
    out_dir = paths.out_dir
    started = time.time()
    clock = time.perf_counter()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{options.out_dir}: cannot create the output folder "
                          f"({exc.strerror}).") from None
    stale = remove_stale_temporaries(out_dir)
    if stale:
        logger.info("removed %d temporary files left by an interrupted run", stale)

    manifest = Manifest(None) if config.dry_run else Manifest.for_output(out_dir)
    journal: _MappingJournal | None = None
    counters = _Counters()
    try:
        settings = settings_for(config, paths.sources, paths.mapping_file)
        _check_settings(manifest, settings, paths, config, options.force)
        if options.force:
            _forget_previous(manifest, out_dir)
        manifest.store_settings(settings)
        if paths.mapping_file is not None and not config.dry_run:
            journal = _MappingJournal(paths.mapping_file, force=options.force)
            manifest.add_commit_hook(journal.commit)
        executing = replace(options, qa_originals=None if config.dry_run else paths.qa_originals)
        run_id = manifest.begin_run({
            "executor": describe_executor(options), "force": options.force,
            "batch_size": options.batch_size,
        })
        _execute(paths, config, manifest, run_id, executing, journal, counters, progress)
        _name_conflict_owners(manifest, run_id)
        manifest.finish_run(run_id, counters.processed)
        elapsed = time.perf_counter() - clock
        info = RunInfo(
            version=__version__, ps315_edition=__ps315_edition__, profile=config.profile.base,
            options=tuple(config.profile.options),
            profile_file_sha256=settings["profile_file_sha256"], pixels=config.pixels.value,
            redact=config.redact.value, layout=config.layout.value, dry_run=config.dry_run,
            key="one-run" if config.key_is_ephemeral else "persistent",
            executor=describe_executor(options), sources=tuple(str(s) for s in paths.sources),
            out_dir=str(out_dir), started=_utc(started), finished=_utc(time.time()),
            elapsed_s=round(elapsed, 3), processed=counters.processed,
            done_before=counters.done_before,
            mapping_file=str(paths.mapping_file) if paths.mapping_file is not None else None,
        )
        reports, counts, flags = _write_reports(manifest, run_id, out_dir, info)
        if journal is not None:
            journal.write_csv()
            journal = None
    finally:
        manifest.close()
        if journal is not None:
            journal.close()
    remove_stale_temporaries(out_dir)
    return RunSummary(
        out_dir=out_dir, counts=counts, processed=counters.processed,
        done_before=counters.done_before, elapsed_s=elapsed, reports=reports,
        mapping_file=paths.mapping_file if not config.dry_run else None,
        qa_originals=paths.qa_originals, dry_run=config.dry_run, flags=flags,
        stale_temporaries=stale,
    )


def _execute(
    paths: _Paths, config: DeidConfig, manifest: Manifest, run_id: int, options: RunOptions,
    journal: _MappingJournal | None, counters: _Counters, progress: ProgressListener | None,
) -> None:
    """Plan, execute, record. The executor (a Dask cluster) starts with the first input that
    needs work: a rerun with nothing left to do starts none."""
    if progress is not None:
        total = sum(1 for _ in discover(paths.sources, exclude=paths.out_dir))
        progress.start(total)

    def done(result: FileResult) -> None:
        counters.done_before += 1
        if progress is not None:
            progress.advance(result)

    stats: dict[Path, tuple[int, int]] = {}
    tasks = plan(paths.sources, paths.out_dir, manifest, run_id, done=done, stats=stats,
                 key_of=lambda path: input_key(config, path))
    executor: Executor | None = None
    try:
        first = next(tasks, None)
        if first is None:
            return
        executor = make_executor(options)
        for task, result in executor.map_unordered(itertools.chain([first], tasks), config):
            key = input_key(config, task.source.path)
            size, mtime_ns = stats.pop(task.source.path, (-1, -1))
            result = _reconcile(manifest, key, result)
            if journal is not None and result.status is Status.WRITTEN and result.mapping:
                journal.add(result.mapping)
            manifest.record(key, size, mtime_ns, result, run_id)
            counters.processed += 1
            if result.status is Status.FAILED:
                logger.info("failed: %s", result.reason)
            if progress is not None:
                progress.advance(result)
    finally:
        if executor is not None:
            executor.close()
        if progress is not None:
            progress.finish()
        manifest.commit()


def describe_executor(options: RunOptions) -> str:
    """How ``options`` run the tasks, in words (for the reports)."""
    if options.scheduler is not None:
        return f"Dask scheduler {options.scheduler}"
    if options.workers == 0:
        return SerialExecutor.description
    n = options.workers if options.workers is not None else default_workers()
    return f"Dask local cluster of {n} processes"


def _write_reports(
    manifest: Manifest, run_id: int, out_dir: Path, info: RunInfo
) -> tuple[tuple[Path, ...], dict[str, int], int]:
    from deid.html import write_html

    folder = out_dir
    if any(manifest.owner_of(name, excluding="") for name in REPORT_NAMES):
        # An input's output is named like a report: never replace it.
        folder = out_dir / STATE_DIR
        logger.warning("an output is named like a report; reports go to %s", folder)
    counts = manifest.count_by_status(run_id)
    study_flags = [mixed_study_flag(*s) for s in manifest.mixed_patient_studies(run_id)]
    records = ((r.result, r.path) for r in manifest.records(run_id))
    totals = write_json_and_csv(folder, info, counts, study_flags, records)
    thumbnails = manifest.thumbnails(run_id, limit=200)
    write_html(folder / HTML_NAME, info, counts, totals, thumbnails)
    flags = sum(f.inputs for f in totals.flags)
    return (folder / HTML_NAME, folder / JSON_NAME, folder / CSV_NAME), counts, flags

