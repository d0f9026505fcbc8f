"""Helpers shared by the benchmarks: the commands that run deid, its peers and the baseline.

Every contender runs as a separate process and is timed from the outside (wall clock, from the
start of the process to its exit, interpreter start-up and imports included), so all pay the same
fixed costs; the peak RSS of the process comes from ``wait4``.

How each contender is called (one process over the whole folder; outputs in a fresh folder):

``deid``
    ``/work/venv/bin/deid run SRC --out OUT --workers W --pixels P --key-file KEY -q``
    (the console script of the project's environment; ``deid_api`` runs the same through
    ``deid.api.run`` in a small Python driver).
``pydicom``
    The baseline: a single-process loop in the project's environment doing ``dcmread(path)`` then
    ``save_as(dest)`` for every file of SRC (walked with ``os.walk``, mirrored under OUT).
``dicognito``
    ``benchmarks/.venv-dicognito/bin/python -m dicognito --output-directory OUT --quiet
    --seed bench SRC`` (the console script of 0.19.0 crashes; ``python -m`` works). It walks SRC
    itself and names outputs after their new SOP Instance UID.
``dicom-anonymizer``
    Its CLI does not walk sub-folders, so a single-process loop in its own environment calls
    ``dicomanonymizer.simpledicomanonymizer.anonymize_dicom_file(src, dest, None, True)`` (what
    its ``anonymize()`` calls per file, minus the tqdm bar) for every file of SRC, mirrored under
    OUT. A file it raises on is counted as failed and the loop goes on.

The peers' environments are made by ``benchmarks/setup_peers.sh`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
#: Interpreter of the project's environment (the one running the benchmark).
PROJECT_PYTHON = Path(sys.executable)
DEID = PROJECT_PYTHON.parent / "deid"
DICOGNITO_VENV = BENCH_DIR / ".venv-dicognito"
DICOM_ANONYMIZER_VENV = BENCH_DIR / ".venv-dicom-anonymizer"
#: Default scratch folder for inputs and outputs (git-ignored; other benchmarks use ``_work``
#: too, under other names).
DEFAULT_WORK = BENCH_DIR / "_work" / "compare"
#: A contender still running after this many seconds is killed (a hang is a failure).
RUN_TIMEOUT = 600.0

# A single-process loop over every file of SRC, mirrored under OUT; ``{call}`` processes one file.
_LOOP = """
import os, sys, time
{imports}
src, out = sys.argv[1], sys.argv[2]
done = failed = 0
for root, dirs, files in os.walk(src):
    dirs.sort()
    for name in sorted(files):
        path = os.path.join(root, name)
        dest = os.path.join(out, os.path.relpath(path, src))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            {call}
            done += 1
        except Exception:
            failed += 1
print(f"written={{done}} failed={{failed}}", file=sys.stderr)
"""

PYDICOM_ROUNDTRIP = _LOOP.format(
    imports="import pydicom",
    call="pydicom.dcmread(path).save_as(dest)",
)

DICOM_ANONYMIZER_LOOP = _LOOP.format(
    imports="import warnings\nwarnings.simplefilter('ignore')\n"
            "from dicomanonymizer.simpledicomanonymizer import anonymize_dicom_file",
    call="anonymize_dicom_file(path, dest, None, True)",
)

DEID_API_DRIVER = """
import sys
from pathlib import Path
from deid import api
src, out, key, workers, pixels = sys.argv[1:6]
config = api.make_config(key_file=Path(key), pixels=pixels)
summary = api.run([Path(src)], Path(out), config, workers=int(workers))
print(f"written={summary.total - summary.failed} failed={summary.failed}", file=sys.stderr)
"""


class PeerMissing(RuntimeError):
    """A peer's virtual environment is missing: run ``benchmarks/setup_peers.sh``."""


def _venv_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        raise PeerMissing(f"{venv} is missing: run benchmarks/setup_peers.sh first.")
    return python


def peer_version(venv: Path, distribution: str) -> str:
    """``distribution``'s version in ``venv`` (and the pydicom it uses)."""
    code = (f"from importlib.metadata import version; "
            f"print(version({distribution!r}), '/ pydicom', version('pydicom'))")
    return subprocess.run([str(_venv_python(venv)), "-c", code], capture_output=True,
                          text=True, check=True).stdout.strip()


# --------------------------------------------------------------------------- commands

Command = Callable[[Path, Path], list[str]]


def deid_cli(key: Path, workers: int, pixels: str) -> Command:
    """``deid run SRC --out OUT --workers W --pixels P --key-file KEY -q``."""
    def command(src: Path, out: Path) -> list[str]:
        return [str(DEID), "run", str(src), "--out", str(out), "--workers", str(workers),
                "--pixels", pixels, "--key-file", str(key), "-q"]
    return command


def deid_api(key: Path, workers: int, pixels: str) -> Command:
    """``deid.api.run([SRC], OUT, make_config(key_file=KEY, pixels=P), workers=W)``."""
    def command(src: Path, out: Path) -> list[str]:
        return [str(PROJECT_PYTHON), "-c", DEID_API_DRIVER, str(src), str(out), str(key),
                str(workers), pixels]
    return command


def pydicom_roundtrip(src: Path, out: Path) -> list[str]:
    """dcmread + save_as of every file, one process (the baseline)."""
    return [str(PROJECT_PYTHON), "-c", PYDICOM_ROUNDTRIP, str(src), str(out)]


def dicognito(src: Path, out: Path) -> list[str]:
    """``python -m dicognito --output-directory OUT --quiet --seed bench SRC`` in its venv."""
    return [str(_venv_python(DICOGNITO_VENV)), "-m", "dicognito", "--output-directory", str(out),
            "--quiet", "--seed", "bench", str(src)]


def dicom_anonymizer(src: Path, out: Path) -> list[str]:
    """``anonymize_dicom_file`` over every file, one process, in its venv."""
    return [str(_venv_python(DICOM_ANONYMIZER_VENV)), "-c", DICOM_ANONYMIZER_LOOP, str(src),
            str(out)]


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Run:
    """One timed process: wall seconds, peak RSS (KiB), exit code, files written."""

    seconds: float
    peak_rss_kib: int
    returncode: int
    outputs: int


def count_outputs(out: Path) -> int:
    """DICOM files written under ``out`` (reports and deid's state folder left out)."""
    total = 0
    for _root, dirs, files in os.walk(out):
        dirs[:] = [d for d in dirs if d != ".deid"]
        total += sum(1 for f in files if not f.startswith("report."))
    return total


def run_once(
    command: list[str], out: Path, log: Path | None = None, timeout: float = RUN_TIMEOUT
) -> Run:
    """Run ``command`` into a fresh ``out`` and time it; stderr goes to ``log`` (or is dropped).

    The peak RSS is ``ru_maxrss`` from ``wait4``. Linux carries the parent's high-water mark
    into a child across fork and exec, so the benchmark process itself must stay small (it
    imports only the standard library): otherwise small children would report its size.
    A command still running after ``timeout`` seconds is killed with its process group.
    """
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    stderr = open(log, "ab") if log is not None else subprocess.DEVNULL
    timed_out = threading.Event()
    try:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr,
                                   start_new_session=True)

        def kill() -> None:  # the command and everything it started (Dask workers)
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    finally:
        if log is not None:
            stderr.close()  # type: ignore[union-attr]
    process.returncode = os.waitstatus_to_exitcode(status)
    if timed_out.is_set():
        raise RuntimeError(f"{command[0]} ran past {timeout:.0f} s and was killed.")
    return Run(seconds, int(usage.ru_maxrss), process.returncode, count_outputs(out))


@dataclass
class Contender:
    """A named command timed several times on the same input."""

    name: str
    command: Command
    runs: list[Run] = field(default_factory=list)
    #: Exit codes that are not a failure of the benchmark (deid exits 1 when it quarantines).
    ok_codes: tuple[int, ...] = (0,)

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda r: r.seconds)

    @property
    def median_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)


def time_contenders(
    contenders: Sequence[Contender], src: Path, work: Path, *, repeats: int = 3,
    warmup: bool = True, log: Path | None = None, echo: Callable[[str], None] = print,
) -> None:
    """Warm up each contender once, then run them in turn ``repeats`` times (interleaved, so a
    burst of load on the machine hits all alike); the runs are stored on each contender.
    The outputs of the last round stay in ``work/out/NAME`` (callers remove them)."""
    rounds = ([("warm-up", False)] if warmup else []) + [
        (f"run {i + 1}/{repeats}", True) for i in range(repeats)]
    for label, keep in rounds:
        for contender in contenders:
            out = work / "out" / contender.name
            result = run_once(contender.command(src, out), out, log)
            if result.returncode not in contender.ok_codes:
                raise RuntimeError(
                    f"{contender.name} exited {result.returncode} ({label}); see {log}.")
            echo(f"  {label:>9} {contender.name:<18} {result.seconds:7.2f} s  "
                 f"{result.outputs} outputs  peak RSS {result.peak_rss_kib / 1024:.0f} MiB")
            if keep:
                contender.runs.append(result)


def table(contenders: Sequence[Contender], files: int) -> str:
    """A plain-text table of the best and median time, files/s and peak RSS of each."""
    lines = [f"{'contender':<18} {'best s':>8} {'median s':>9} {'files/s':>8} "
             f"{'outputs':>8} {'peak RSS MiB':>13}"]
    for c in contenders:
        best = c.best
        lines.append(f"{c.name:<18} {best.seconds:8.2f} {c.median_seconds:9.2f} "
                     f"{files / best.seconds:8.1f} {best.outputs:8d} "
                     f"{max(r.peak_rss_kib for r in c.runs) / 1024:13.0f}")
    return "\n".join(lines)


def ratio_line(label: str, value: float, goal: float) -> str:
    """``label: 1.23x (goal >= 0.80x: met)``."""
    verdict = "met" if value >= goal else "MISSED"
    return f"{label:<40} {value:6.2f}x  (goal >= {goal:.2f}x: {verdict})"


# --------------------------------------------------------------------------- inputs


def ensure_files(folder: Path, count: int, seed: int = 0) -> int:
    """Make ``count`` benchmark files in ``folder`` unless the same set is already there."""
    import hashlib

    marker = folder.with_name(folder.name + ".complete")  # beside, not inside, the inputs
    digest = hashlib.sha256()
    # (read, not imported: this process stays small, see run_once)
    for source in (BENCH_DIR / "make_bench_files.py", REPO / "deid" / "testing" / "synthetic.py"):
        digest.update(source.read_bytes())
    expected = f"{count} {seed} {digest.hexdigest()}"  # remade when the generators change
    if marker.exists() and marker.read_text() == expected:
        return count
    shutil.rmtree(folder, ignore_errors=True)
    marker.unlink(missing_ok=True)
    subprocess.run([str(PROJECT_PYTHON), str(BENCH_DIR / "make_bench_files.py"), "--out",
                    str(folder), "--count", str(count), "--seed", str(seed)], check=True)
    marker.write_text(expected)
    return count


def ensure_key(work: Path) -> Path:
    """A deid key file in ``work`` (made with ``deid keygen`` the first time)."""
    key = work / "bench.key"
    if not key.exists():
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(DEID), "keygen", str(key)], check=True, stdout=subprocess.DEVNULL)
    return key


_CPU_BURN = """
import multiprocessing, sys, time
def burn(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
if __name__ == "__main__":
    processes = int(sys.argv[1])
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        pool.map(burn, [3_000_000] * 8)
    print(time.perf_counter() - start)
"""


def cpu_scaling(processes: int = 2, repeats: int = 3) -> float:
    """What ``processes`` processes gain over one on a pure-Python CPU loop right now (best of
    ``repeats`` each): the ceiling of any worker-scaling ratio measured on this machine at the
    moment (other jobs may hold cores)."""
    def best(n: int) -> float:
        return min(float(subprocess.run([str(PROJECT_PYTHON), "-c", _CPU_BURN, str(n)],
                                        capture_output=True, text=True, check=True).stdout)
                   for _ in range(repeats))
    return best(1) / best(processes)


def machine_line() -> str:
    """CPU count and load average, printed with every result (the machine is shared)."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def deid_counts(out: Path) -> str:
    """The status counts and pixel-scan count of a deid run, from its ``report.json``."""
    import json

    try:
        report = json.loads((out / "report.json").read_text())
    except (OSError, ValueError):
        return "no report.json"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.get("counts", {}).items()))
    scanned = sum(1 for i in report.get("inputs", []) if i.get("pixels_scanned"))
    return f"{counts}; pixel data scanned in {scanned}"
