"""Scaling benchmark of the Dask pipeline: throughput per worker count, memory per worker.

Usage::

    /work/venv/bin/python benchmarks/bench_scaling.py                       # 1000 files, 1..cores
    /work/venv/bin/python benchmarks/bench_scaling.py --files 300 --workers 1,2 --repeats 3
    /work/venv/bin/python benchmarks/bench_scaling.py --folder /data/export --workers 1,2,4
    /work/venv/bin/python benchmarks/bench_scaling.py --memory-files 1000,20000 --no-scaling

Two parts:

**Scaling.** The pipeline (``deid.pipeline.run``, pixels ``auto``, a fixed key) runs over the
same inputs on a local Dask cluster of 1, 2, ... worker processes (and in-process, ``serial``,
for reference), each in a fresh driver process and a fresh output folder. Throughput is the
number of inputs over the time from the first submission to the last result (the progress
listener's ``start`` and ``finish``: cluster start-up and the reports are left out; the
end-to-end time is printed too). The ratio to one worker is printed per worker count. Inputs are
``benchmarks/make_bench_files.py``'s realistic archive (CT/MR 512 and 256 px, CR/DX, US with
burned-in text, SC, enhanced MR, SR), or ``--folder``.

**Memory.** For each count of ``--memory-files`` (small synthetic CT slices, 64 x 64, so that
20,000 files are quick to make), the pipeline runs on the largest worker count, while the
benchmark samples (psutil, every 0.1 s) the resident memory of the driver process (the Dask
client, the scheduler and the manifest live there) and of each worker process. It prints the peak
per worker and of the client, and their ratio between the largest and the smallest count.

Goals (printed with a verdict): 2 workers >= 1.7 x one worker on a 2-core machine; peak memory
per worker flat (<= 1.10 x) from 1,000 to 20,000 files. The machine may be shared: the load
average is printed before each run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORK = BENCH_DIR / "_work" / "scaling"  # its own: other benchmarks remake theirs
GOAL_SCALING = 1.7
GOAL_MEMORY = 1.10

_DRIVER = """
import json, sys, time
from pathlib import Path

class Timing:
    start = finish = 0.0
    def start(self, total):
        Timing.start = time.perf_counter()
    def advance(self, result):
        pass
    def finish(self):
        Timing.finish = time.perf_counter()

def main():
    from deid.api import make_config
    from deid.pipeline import RunOptions, run
    src, out, workers, pixels = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    config = make_config(key=bytes.fromhex(sys.argv[5]), pixels=pixels)
    began = time.perf_counter()
    summary = run(RunOptions(sources=(Path(src),), out_dir=Path(out), workers=workers), config,
                  progress=Timing())
    total_s = time.perf_counter() - began
    failures = []
    if summary.failed:
        report = json.loads((Path(out) / "report.json").read_text())
        failures = [f"{e['source']}: {e['error_class']}: {e['reason']}"
                    for e in report["inputs"] if e["status"] == "failed"][:5]
    print(json.dumps({"processed": summary.processed, "counts": dict(summary.counts),
                      "work_s": Timing.finish - Timing.start, "total_s": total_s,
                      "failures": failures}))

if __name__ == "__main__":
    main()
"""


@dataclass
class Sample:
    """Peak resident memory (bytes) of the client and of each worker process of one run."""

    client: int = 0
    workers: dict[int, int] = field(default_factory=dict)

    @property
    def worker_peak(self) -> int:
        return max(self.workers.values(), default=0)


def _is_worker(cmdline: list[str]) -> bool:
    text = " ".join(cmdline)
    return "spawn_main" in text and "resource_tracker" not in text


def _sample(pid: int, sample: Sample, stop: threading.Event) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            sample.client = max(sample.client, root.memory_info().rss)
            for child in root.children(recursive=True):
                try:
                    if _is_worker(child.cmdline()):
                        rss = child.memory_info().rss
                        sample.workers[child.pid] = max(sample.workers.get(child.pid, 0), rss)
                except psutil.Error:
                    continue
        except psutil.Error:
            return
        stop.wait(0.1)


@dataclass
class Result:
    workers: int
    files: int
    work_s: float
    total_s: float
    counts: dict[str, int]
    memory: Sample

    @property
    def rate(self) -> float:
        return self.files / self.work_s if self.work_s > 0 else 0.0


def run_pipeline(src: Path, out: Path, workers: int, pixels: str, key: str) -> Result:
    """One run in a fresh driver process; memory sampled from outside."""
    shutil.rmtree(out, ignore_errors=True)
    process = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(src), str(out), str(workers), pixels, key],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    sample = Sample()
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(process.pid, sample, stop), daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    stop.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"the pipeline failed (exit {process.returncode}):\n{stderr[-3000:]}")
    data = json.loads(stdout.strip().splitlines()[-1])
    for failure in data.get("failures", []):
        print(f"\n    failed: {failure}", end="")
    return Result(workers, int(data["processed"]), float(data["work_s"]),
                  float(data["total_s"]), data["counts"], sample)


def make_small_files(folder: Path, count: int) -> Path:
    """``count`` small CT slices (64 x 64, planted PHI), 50 per series, 4 series per study."""
    marker = folder.with_name(folder.name + ".complete")
    if marker.exists() and marker.read_text() == str(count):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    from deid.testing import synthetic as syn

    made = 0
    started = time.perf_counter()
    study_index = 0
    while made < count:
        patient = syn.PATIENTS[study_index % len(syn.PATIENTS)]
        study = syn.Study(seed=f"scale-{study_index}", accession_number=f"S{study_index:06d}")
        for number in range(1, 5):
            series = syn.Series(study, number, "CT")
            target = folder / f"study{study_index:05d}" / f"series{number}"
            target.mkdir(parents=True, exist_ok=True)
            for instance in range(1, 51):
                if made >= count:
                    break
                ds = syn.build_ct_image(patient, series, instance, rows=64, columns=64)
                (target / f"IM{instance:03d}.dcm").write_bytes(syn.encode(ds))
                made += 1
        study_index += 1
    marker.write_text(str(count))
    print(f"  made {count} small files in {time.perf_counter() - started:.0f} s")
    return folder


def realistic_files(work: Path, count: int) -> Path:
    sys.path.insert(0, str(BENCH_DIR))
    import peers

    folder = work / f"src-{count}"
    peers.ensure_files(folder, count)
    return folder


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def machine_ceiling(processes: int) -> float:
    """How much faster ``processes`` processes spin a pure-Python loop than one, right now.

    On a machine shared with other work, or with hyper-threads, this is below ``processes``:
    the pipeline cannot scale better than the machine does.
    """
    import multiprocessing

    rates = {}
    for n in (1, processes):
        with multiprocessing.get_context("spawn").Pool(n) as pool:
            pool.map(_spin, [1] * n, chunksize=1)  # every process started
            started = time.perf_counter()
            pool.map(_spin, [2_000_000] * (4 * n), chunksize=1)
            rates[n] = 4 * n / (time.perf_counter() - started)
    return rates[processes] / rates[1]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def _mib(value: int) -> str:
    return f"{value / 2**20:7.1f}"


def _parse_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def scaling(args: argparse.Namespace, key: str) -> bool:
    src = args.folder.resolve() if args.folder else realistic_files(args.work, args.files)
    counts = list(args.workers)
    if args.serial:
        counts = [0, *counts]
    print(f"\nScaling: {src} ({sum(1 for p in src.rglob('*') if p.is_file())} files), "
          f"pixels {args.pixels}, {os.cpu_count()} CPUs")
    best: dict[int, Result] = {}
    for repeat in range(args.repeats):
        for workers in counts:  # interleaved, so that a burst of load hits all alike
            label = "serial" if workers == 0 else f"{workers} worker{'s' * (workers > 1)}"
            print(f"  run {repeat + 1}/{args.repeats} {label:<10} ({_load()}) ...", end="",
                  flush=True)
            result = run_pipeline(src, args.work / "out-scaling" / str(workers), workers,
                                  args.pixels, key)
            print(f" {result.work_s:6.2f} s  {result.rate:7.1f} files/s  "
                  f"(end to end {result.total_s:.2f} s) {result.counts}")
            if workers not in best or result.work_s < best[workers].work_s:
                best[workers] = result
    base = best.get(1)
    print("\n  workers   files/s   vs 1 worker   end-to-end s   peak RSS MiB: client  worker")
    for workers in counts:
        r = best[workers]
        ratio = f"{r.rate / base.rate:10.2f}x" if base and base.rate else "         -"
        label = "serial" if workers == 0 else str(workers)
        print(f"  {label:>7} {r.rate:9.1f} {ratio}   {r.total_s:12.2f}         "
              f"{_mib(r.memory.client)} {_mib(r.memory.worker_peak)}")
    ok = True
    if base is not None and 2 in best:
        ratio = best[2].rate / base.rate
        ok = ratio >= GOAL_SCALING
        ceiling = machine_ceiling(2)
        print(f"\n  2 workers / 1 worker = {ratio:.2f}x (goal >= {GOAL_SCALING}x: "
              f"{'met' if ok else 'NOT met'}); this machine, a pure-Python loop in 2 processes "
              f"/ 1, just now: {ceiling:.2f}x ({_load()})")
    return ok


def memory(args: argparse.Namespace, key: str) -> bool:
    workers = max(args.workers)
    print(f"\nMemory: small CT files, {workers} workers")
    rows: list[tuple[int, Result]] = []
    for count in args.memory_files:
        src = make_small_files(args.work / f"small-{count}", count)
        print(f"  {count} files ({_load()}) ...", end="", flush=True)
        result = run_pipeline(src, args.work / "out-memory", workers, args.pixels, key)
        print(f" {result.work_s:.1f} s, {result.rate:.0f} files/s, {result.counts}")
        rows.append((count, result))
    print("\n    files   peak RSS MiB: client   per worker (each)")
    for count, r in rows:
        each = " ".join(_mib(v).strip() for v in sorted(r.memory.workers.values()))
        print(f"  {count:7d}   {_mib(r.memory.client)}             {_mib(r.memory.worker_peak)} "
              f"({each})")
    if len(rows) < 2:
        return True
    (n0, r0), (n1, r1) = rows[0], rows[-1]
    worker_ratio = r1.memory.worker_peak / r0.memory.worker_peak
    client_ratio = r1.memory.client / r0.memory.client
    ok = worker_ratio <= GOAL_MEMORY
    print(f"\n  peak per worker {n1} / {n0} files = {worker_ratio:.2f}x (goal <= {GOAL_MEMORY}x: "
          f"{'met' if ok else 'NOT met'}); client {client_ratio:.2f}x")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000,
                        help="Inputs of the scaling part (made by make_bench_files.py).")
    parser.add_argument("--folder", type=Path, help="Use this folder of inputs instead.")
    parser.add_argument("--workers", type=_parse_list,
                        default=list(range(1, (os.cpu_count() or 1) + 1)),
                        help="Worker counts, comma-separated (default 1..cores).")
    parser.add_argument("--serial", action="store_true", help="Also time the in-process run.")
    parser.add_argument("--repeats", type=int, default=1, help="Runs per worker count (best).")
    parser.add_argument("--pixels", default="auto", choices=("auto", "always", "never"))
    parser.add_argument("--memory-files", type=_parse_list, default=[],
                        help="File counts of the memory part, e.g. 1000,20000.")
    parser.add_argument("--no-scaling", action="store_true", help="Only the memory part.")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="Scratch folder.")
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    ok = True
    if not args.no_scaling:
        ok = scaling(args, key) and ok
    if args.memory_files:
        ok = memory(args, key) and ok
    shutil.rmtree(args.work / "out-scaling", ignore_errors=True)
    shutil.rmtree(args.work / "out-memory", ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
