"""End-to-end benchmark: ``deid run`` with its defaults (pixel step ``auto``) on one and two
worker processes, against the PyPI peers and a plain pydicom round trip, on the same files.

Usage::

    bash benchmarks/setup_peers.sh                 # once: the peers' environments
    /work/venv/bin/python benchmarks/bench_end_to_end.py [--count 300] [--repeats 3]

Contenders (see :mod:`peers` for the exact commands): ``deid-w0`` / ``deid-w1`` / ``deid-w2``
(``deid run SRC --out OUT --workers 0|1|2 --key-file KEY -q``: in-process, then a Dask local
cluster of one or two processes; pixels ``auto``: the files whose BurnedInAnnotation is YES, or
of a modality known to burn text in, are scanned for text and masked), ``pydicom``
(dcmread + save_as of every file), ``dicognito`` and ``dicom-anonymizer`` (header only: neither
looks at pixel data). Each is warmed up once, then all run in turn ``--repeats`` times; the best
time counts.

Goal: ``deid-w2`` >= 1.7 x ``deid-w1`` (files/s) on a 2-core machine. The other ratios are
printed for information: the peers and the baseline do no pixel work. Before and after the
timed runs a pure-Python CPU loop is timed on one and on two processes: that ratio is the most
any two-worker speed-up can show on the machine at that moment (on a shared machine other jobs
may hold a core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import peers
from peers import Contender

GOAL_SCALING = 1.7


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help="Files in the timed set.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed runs per contender.")
    parser.add_argument("--work", type=Path, default=peers.DEFAULT_WORK,
                        help="Scratch folder (inputs are kept there between runs).")
    parser.add_argument("--no-peers", action="store_true",
                        help="Time deid and the pydicom baseline only.")
    args = parser.parse_args(argv)

    work = args.work.resolve()
    log = work / "bench_end_to_end.log"
    work.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    src = work / f"src-{args.count}"
    peers.ensure_files(src, args.count)
    key = peers.ensure_key(work)
    print(f"deid end-to-end benchmark: {args.count} files in {src}")
    print(f"machine: {peers.machine_line()}")

    w0 = Contender("deid-w0", peers.deid_cli(key, 0, "auto"), ok_codes=(0, 1))
    w1 = Contender("deid-w1", peers.deid_cli(key, 1, "auto"), ok_codes=(0, 1))
    w2 = Contender("deid-w2", peers.deid_cli(key, 2, "auto"), ok_codes=(0, 1))
    pydicom = Contender("pydicom", peers.pydicom_roundtrip)
    contenders = [w0, w1, w2, pydicom]
    peer_list: list[Contender] = []
    if not args.no_peers:
        print(f"dicognito {peers.peer_version(peers.DICOGNITO_VENV, 'dicognito')}; "
              f"dicom-anonymizer "
              f"{peers.peer_version(peers.DICOM_ANONYMIZER_VENV, 'dicom-anonymizer')}")
        peer_list = [Contender("dicognito", peers.dicognito),
                     Contender("dicom-anonymizer", peers.dicom_anonymizer)]
        contenders += peer_list
    ceiling_before = peers.cpu_scaling(2)
    peers.time_contenders(contenders, src, work, repeats=args.repeats, log=log)
    ceiling_after = peers.cpu_scaling(2)

    print()
    print(peers.table(contenders, args.count))
    print("(peak RSS of deid-w1/-w2 is the client process's; the Dask workers are apart)")
    print()
    rate = {c.name: args.count / c.best.seconds for c in contenders}
    print(peers.ratio_line("deid 2 workers / 1 worker", rate["deid-w2"] / rate["deid-w1"],
                           GOAL_SCALING))
    print(f"{'  ceiling: pure CPU loop, 2 proc / 1 proc':<40} {ceiling_before:6.2f}x before, "
          f"{ceiling_after:.2f}x after (below ~1.9x, other jobs hold a core)")
    print(f"{'deid 1 worker / in-process (--workers 0)':<40} "
          f"{rate['deid-w1'] / rate['deid-w0']:6.2f}x")
    print(f"{'deid 2 workers / in-process (--workers 0)':<40} "
          f"{rate['deid-w2'] / rate['deid-w0']:6.2f}x")
    print(f"{'deid-w0 / pydicom round trip':<40} {rate['deid-w0'] / rate['pydicom']:6.2f}x")
    print(f"{'deid-w1 / pydicom round trip':<40} {rate['deid-w1'] / rate['pydicom']:6.2f}x")
    print(f"{'deid-w2 / pydicom round trip':<40} {rate['deid-w2'] / rate['pydicom']:6.2f}x")
    if peer_list:
        faster = max(peer_list, key=lambda c: rate[c.name])
        print(f"{'deid-w2 / ' + faster.name + ' (faster peer)':<40} "
              f"{rate['deid-w2'] / rate[faster.name]:6.2f}x")
        print(f"{'deid-w0 / ' + faster.name:<40} {rate['deid-w0'] / rate[faster.name]:6.2f}x")
    print(f"deid-w0: {peers.deid_counts(work / 'out' / 'deid-w0')}")
    print(f"deid-w1: {peers.deid_counts(work / 'out' / 'deid-w1')}")
    print(f"deid-w2: {peers.deid_counts(work / 'out' / 'deid-w2')}")
    peers.shutil.rmtree(work / "out", ignore_errors=True)
    print(f"machine after: {peers.machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
