"""Header-path benchmark: deid (one process, no pixel step) against a plain pydicom round trip
and the PyPI peers, on the same files, in one run.

Usage::

    bash benchmarks/setup_peers.sh                 # once: the peers' environments
    /work/venv/bin/python benchmarks/bench_header.py [--count 300] [--repeats 3] [--scale 4]

Contenders (see :mod:`peers` for the exact commands): ``deid`` (``deid run SRC --out OUT
--workers 0 --pixels never --key-file KEY -q``), ``deid-api`` (the same through
``deid.api.run``), ``pydicom`` (dcmread + save_as of every file), ``dicognito`` and
``dicom-anonymizer``. Each is warmed up once, then all run in turn ``--repeats`` times; the best
time counts. Then deid runs once on ``--scale`` times as many files to show that its peak RSS does
not grow with the number of inputs.

Goals: deid >= 0.8 x the pydicom round trip, and >= 2.5 x the faster peer (files/s).
With ``--pixels never`` deid may report a file that needs the pixel step instead of writing it;
its output count and report counts are printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import peers
from peers import Contender

GOAL_VS_PYDICOM = 0.8
GOAL_VS_PEER = 2.5

# Run in a child process (``--profile``): where deid's time goes, per step of deid.task, on the
# timed files, without and then with cProfile; the pydicom round trip in the same process.
PROFILE_DRIVER = """
import cProfile, collections, io, pstats, shutil, sys, time
from pathlib import Path
import pydicom
from deid import api, task
from deid.io import discover
src, out, key, top = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
config = api.make_config(key_file=key, pixels="never")
tasks = [task.FileTask(s, out) for s in discover([src])]
spent = collections.Counter()
def timed(owner, name):
    function = getattr(owner, name, None)
    if function is None:
        return
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - start
    setattr(owner, name, wrapper)
for name in ("read_dataset", "collect_identifiers", "encode_dataset", "write_atomic", "guard"):
    timed(task, name)
timed(task.pixels, "clean_pixels")
from deid import actions
if hasattr(actions, "Engine"):
    timed(actions.Engine, "apply")
def deid_pass():
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    for t in tasks:
        task.run_task(t, config)
    return time.perf_counter() - start
def pydicom_pass():
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    for t in tasks:
        dest = out / t.source.relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        pydicom.dcmread(t.source.path).save_as(dest)
    return time.perf_counter() - start
deid_pass()
best, shares = None, {}
for _ in range(3):
    spent.clear()
    seconds = deid_pass()
    if best is None or seconds < best:
        best, shares = seconds, dict(spent)
baseline = min(pydicom_pass() for _ in range(3))
n = len(tasks)
print(f"in-process, best of 3: deid.task.run_task {best:.3f} s ({n / best:.0f} files/s); "
      f"pydicom dcmread+save_as {baseline:.3f} s ({n / baseline:.0f} files/s)")
for name, seconds in sorted(shares.items(), key=lambda kv: -kv[1]):
    print(f"  {name:<22} {seconds:7.3f} s  {100 * seconds / best:5.1f} %")
print(f"  {'(rest of run_task)':<22} {best - sum(shares.values()):7.3f} s")
shutil.rmtree(out, ignore_errors=True)
profile = cProfile.Profile()
profile.enable()
for t in tasks:
    task.run_task(t, config)
profile.disable()
shutil.rmtree(out, ignore_errors=True)
stream = io.StringIO()
stats = pstats.Stats(profile, stream=stream)
stats.sort_stats("cumulative").print_stats(top)
print(stream.getvalue())
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help="Files in the timed set.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per contender.")
    parser.add_argument("--scale", type=int, default=4,
                        help="Memory check: run deid on this many times --count files too "
                             "(0 to skip).")
    parser.add_argument("--work", type=Path, default=peers.DEFAULT_WORK,
                        help="Scratch folder (inputs are kept there between runs).")
    parser.add_argument("--no-api", action="store_true", help="Skip the deid-api contender.")
    parser.add_argument("--profile", type=int, default=0, metavar="TOP",
                        help="Afterwards, show where deid's time goes: per step, then the TOP "
                             "functions of a cProfile run, by cumulative time.")
    args = parser.parse_args(argv)

    work = args.work.resolve()
    log = work / "bench_header.log"
    work.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    src = work / f"src-{args.count}"
    peers.ensure_files(src, args.count)
    key = peers.ensure_key(work)
    print(f"deid header benchmark: {args.count} files in {src}")
    print(f"machine: {peers.machine_line()}")
    print(f"dicognito {peers.peer_version(peers.DICOGNITO_VENV, 'dicognito')}; "
          f"dicom-anonymizer "
          f"{peers.peer_version(peers.DICOM_ANONYMIZER_VENV, 'dicom-anonymizer')}")

    deid = Contender("deid", peers.deid_cli(key, 0, "never"), ok_codes=(0, 1))
    contenders = [deid]
    if not args.no_api:
        contenders.append(Contender("deid-api", peers.deid_api(key, 0, "never"),
                                    ok_codes=(0, 1)))
    pydicom = Contender("pydicom", peers.pydicom_roundtrip)
    dicognito = Contender("dicognito", peers.dicognito)
    anonymizer = Contender("dicom-anonymizer", peers.dicom_anonymizer)
    contenders += [pydicom, dicognito, anonymizer]
    peers.time_contenders(contenders, src, work, repeats=args.repeats, log=log)

    print()
    print(peers.table(contenders, args.count))
    print()
    rate = {c.name: args.count / c.best.seconds for c in contenders}
    faster_peer = max((dicognito, anonymizer), key=lambda c: rate[c.name])
    print(peers.ratio_line("deid / pydicom round trip", rate["deid"] / rate["pydicom"],
                           GOAL_VS_PYDICOM))
    print(peers.ratio_line(f"deid / {faster_peer.name} (faster peer)",
                           rate["deid"] / rate[faster_peer.name], GOAL_VS_PEER))
    if "deid-api" in rate:
        print(peers.ratio_line("deid-api / pydicom round trip",
                               rate["deid-api"] / rate["pydicom"], GOAL_VS_PYDICOM))
    print(f"deid wrote {deid.best.outputs} of {args.count} files "
          f"({peers.deid_counts(work / 'out' / 'deid')})")
    peers.shutil.rmtree(work / "out", ignore_errors=True)

    peak_small = max(r.peak_rss_kib for r in deid.runs) / 1024
    print(f"\ndeid peak RSS, {args.count} files: {peak_small:.0f} MiB")
    if args.scale > 1:
        big_count = args.count * args.scale
        big = work / f"src-{big_count}"
        peers.ensure_files(big, big_count)
        out = work / "out" / "deid-scale"
        result = peers.run_once(deid.command(big, out), out, log)
        if result.returncode not in deid.ok_codes:
            raise RuntimeError(f"deid exited {result.returncode} on {big}; see {log}.")
        peak_big = result.peak_rss_kib / 1024
        print(f"deid peak RSS, {big_count} files: {peak_big:.0f} MiB "
              f"({big_count / result.seconds:.1f} files/s; "
              f"x{peak_big / peak_small:.2f} the RSS for x{args.scale} the files)")
        peers.shutil.rmtree(work / "out", ignore_errors=True)
    if args.profile:
        print(f"\nProfile of deid.task.run_task on the {args.count} files:")
        out = work / "out" / "profile"
        peers.subprocess.run([str(peers.PROJECT_PYTHON), "-c", PROFILE_DRIVER, str(src),
                              str(out), str(key), str(args.profile)], check=True)
        peers.shutil.rmtree(work / "out", ignore_errors=True)
    print(f"machine after: {peers.machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
