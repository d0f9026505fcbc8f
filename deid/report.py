"""Per-input report records and the ``report.json`` / ``report.csv`` writers.

A report entry holds paths, tags, action codes, counts and pseudonyms: never an original value
(:class:`~deid.results.FileResult` never holds one, except ``mapping``, which is never read here).
The writers stream: the number of inputs does not change the memory they need.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from deid.io import TMP_PREFIX
from deid.results import FileResult, Status

logger = logging.getLogger(__name__)

JSON_NAME = "report.json"
CSV_NAME = "report.csv"
HTML_NAME = "report.html"
REPORT_NAMES = (JSON_NAME, CSV_NAME, HTML_NAME)

#: Action codes with a column of their own in ``report.csv`` (others go to ``actions_other``).
CSV_ACTION_CODES = ("X", "Z", "D", "U", "C", "K", "guard")

CSV_COLUMNS = (
    "source", "input_id", "status", "output", "error_class", "reason", "modality", "sop_class_uid",
    *(f"actions_{code}" for code in CSV_ACTION_CODES), "actions_other", "residual_hits",
    "warnings", "pixels_scanned", "pixels_reason", "frames", "boxes_masked", "boxes_kept",
    "transfer_syntax_in", "transfer_syntax_out", "patient_pseudonym", "study_uid", "duration_s",
)

#: How many failures and distinct flags the totals keep for the HTML view (the JSON and CSV
#: reports list every input).
MAX_LISTED = 1000
#: How many inputs a grouped flag names.
MAX_FLAG_SOURCES = 20


@dataclass(frozen=True)
class RunInfo:
    """What a run was asked to do, and how long it took (no key, no value from a file)."""

    version: str
    ps315_edition: str
    profile: str
    options: tuple[str, ...]
    profile_file_sha256: str | None
    pixels: str
    redact: str
    layout: str
    dry_run: bool
    key: str
    """``persistent`` (key file or ``$DEID_KEY``) or ``one-run`` (random, anonymisation)."""
    executor: str
    """``serial``, ``local cluster of N processes`` or ``scheduler ADDRESS``."""
    sources: tuple[str, ...]
    out_dir: str
    started: str
    """UTC, ISO 8601."""
    finished: str
    elapsed_s: float
    processed: int
    """Inputs processed by this run."""
    done_before: int
    """Inputs that an earlier run of the same folder had already finished (a resumed run)."""
    mapping_file: str | None

    @property
    def throughput(self) -> float:
        """Inputs processed per second by this run."""
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["options"] = list(self.options)
        data["sources"] = list(self.sources)
        data["throughput_files_per_s"] = round(self.throughput, 3)
        return data


@dataclass(frozen=True)
class Flag:
    """Something a reviewer should look at, and the inputs it concerns."""

    kind: str
    """``mixed-patient-study``, ``residual-identity`` or ``warning``."""
    detail: str
    sources: tuple[str, ...]
    """The inputs concerned (the first :data:`MAX_FLAG_SOURCES` when ``count`` is larger)."""
    count: int = 0
    """How many inputs (``len(sources)`` when 0)."""

    @property
    def inputs(self) -> int:
        return self.count or len(self.sources)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "inputs": self.inputs,
                "sources": list(self.sources)}


def mixed_study_flag(study_uid: str, pseudonyms: int, sources: list[str]) -> Flag:
    """The flag of a study whose instances carry different patient pseudonyms."""
    return Flag(
        "mixed-patient-study",
        f"study {study_uid} has instances of {pseudonyms} different patient pseudonyms; "
        "check that its source files belong to one patient",
        tuple(sources),
    )


def report_entry(result: FileResult, input_path: str | None = None) -> dict[str, Any]:
    """The report record of one input (JSON-ready)."""
    pixels = result.pixels
    return {
        "source": result.source,
        "input_id": input_path,
        "status": result.status.value,
        "output": result.output,
        "reason": result.reason,
        "error_class": result.error_class,
        "modality": result.modality,
        "sop_class_uid": result.sop_class_uid,
        "action_counts": dict(sorted(result.action_counts.items())),
        "residual_hits": list(result.residual_hits),
        "warnings": list(result.warnings),
        "pixels_scanned": pixels.scanned if pixels is not None else False,
        "pixels_reason": pixels.reason if pixels is not None else "",
        "frames": pixels.frames if pixels is not None else 0,
        "boxes_masked": pixels.masked if pixels is not None else 0,
        "boxes_kept": (len(pixels.boxes) - pixels.masked) if pixels is not None else 0,
        "transfer_syntax_in": pixels.transfer_syntax_in if pixels is not None else "",
        "transfer_syntax_out": pixels.transfer_syntax_out if pixels is not None else "",
        "patient_pseudonym": result.patient_pseudonym,
        "study_uid": result.study_uid,
        "duration_s": round(result.duration_s, 4),
    }


def csv_row(entry: dict[str, Any]) -> list[Any]:
    """One ``report.csv`` row from a :func:`report_entry`, in :data:`CSV_COLUMNS` order."""
    counts = entry["action_counts"]
    other = ";".join(f"{k}={v}" for k, v in sorted(counts.items()) if k not in CSV_ACTION_CODES)
    row: list[Any] = [
        entry["source"], entry["input_id"] or "", entry["status"], entry["output"] or "",
        entry["error_class"] or "", entry["reason"] or "", entry["modality"] or "",
        entry["sop_class_uid"] or "",
    ]
    row += [counts.get(code, 0) for code in CSV_ACTION_CODES]
    row += [
        other, ";".join(entry["residual_hits"]), " | ".join(entry["warnings"]),
        int(entry["pixels_scanned"]), entry["pixels_reason"], entry["frames"],
        entry["boxes_masked"], entry["boxes_kept"], entry["transfer_syntax_in"],
        entry["transfer_syntax_out"], entry["patient_pseudonym"], entry["study_uid"],
        entry["duration_s"],
    ]
    return row


@dataclass
class Totals:
    """Totals over every input, for the summary and the HTML view (lists capped).

    Per-input flags (the residual-identity guard, warnings) are grouped by what they say, so that
    a thousand inputs with the same finding make one line naming how many.
    """

    by_status: Counter[str] = field(default_factory=Counter)
    by_modality: Counter[str] = field(default_factory=Counter)
    by_action: Counter[str] = field(default_factory=Counter)
    pixels_scanned: int = 0
    boxes_masked: int = 0
    with_residual_hits: int = 0
    with_warnings: int = 0
    busy_s: float = 0.0
    """Sum of the per-input durations (worker time)."""
    failures: list[dict[str, Any]] = field(default_factory=list)
    more_failures: int = 0
    study_flags: list[Flag] = field(default_factory=list)
    more_flags: int = 0
    """Distinct findings left out of :attr:`flags` (over :data:`MAX_LISTED`)."""
    _grouped: dict[tuple[str, str], tuple[int, list[str]]] = field(default_factory=dict)

    def add(self, entry: dict[str, Any]) -> None:
        self.by_status[entry["status"]] += 1
        if entry["status"] != Status.FAILED.value:
            self.by_modality[entry["modality"] or "unknown"] += 1
        self.by_action.update(entry["action_counts"])
        self.pixels_scanned += int(bool(entry["pixels_scanned"]))
        self.boxes_masked += int(entry["boxes_masked"])
        self.busy_s += float(entry["duration_s"])
        if entry["status"] == Status.FAILED.value:
            if len(self.failures) < MAX_LISTED:
                self.failures.append(entry)
            else:
                self.more_failures += 1
        if entry["residual_hits"]:
            self.with_residual_hits += 1
            self._group(
                "residual-identity",
                "the residual-identity guard removed an identifying value from "
                + ", ".join(entry["residual_hits"]),
                entry["source"],
            )
        if entry["warnings"]:
            self.with_warnings += 1
            for warning in entry["warnings"]:
                self._group("warning", warning, entry["source"])

    def _group(self, kind: str, detail: str, source: str) -> None:
        key = (kind, detail)
        found = self._grouped.get(key)
        if found is None:
            if len(self._grouped) >= MAX_LISTED:
                self.more_flags += 1
                return
            found = (0, [])
        count, sources = found
        if len(sources) < MAX_FLAG_SOURCES:
            sources.append(source)
        self._grouped[key] = (count + 1, sources)

    @property
    def flags(self) -> list[Flag]:
        """Study flags first, then grouped findings, most frequent first."""
        grouped = [
            Flag(kind, detail, tuple(sources), count)
            for (kind, detail), (count, sources) in sorted(
                self._grouped.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ]
        return [*self.study_flags, *grouped]


@contextlib.contextmanager
def atomic_text(dest: Path) -> Iterator[IO[str]]:
    """Write a text file through a temporary file in the same folder, then replace ``dest``.

    The temporary file carries :data:`deid.io.TMP_PREFIX`, so a run killed half-way leaves
    nothing that the next run does not remove.
    """
    tmp = dest.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json_and_csv(
    folder: Path,
    info: RunInfo,
    counts: dict[str, int],
    study_flags: list[Flag],
    records: Iterable[tuple[FileResult, str]],
) -> Totals:
    """Write ``report.json`` and ``report.csv`` in ``folder`` in one streaming pass.

    Parameters
    ----------
    records:
        ``(result, absolute input path)`` for every input, in report order.

    Returns
    -------
    Totals
        Totals over every input, for :mod:`deid.html`.
    """
    totals = Totals(study_flags=list(study_flags))
    with atomic_text(folder / JSON_NAME) as jf, atomic_text(folder / CSV_NAME) as cf:
        writer = csv.writer(cf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        jf.write("{\n")
        jf.write(f'"run": {json.dumps(info.as_dict(), sort_keys=True)},\n')
        jf.write(f'"counts": {json.dumps(dict(sorted(counts.items())))},\n')
        jf.write(f'"total": {sum(counts.values())},\n')
        jf.write('"flags": [')
        jf.write(",".join("\n" + json.dumps(f.as_dict()) for f in study_flags))
        jf.write("\n],\n")
        jf.write('"inputs": [')
        first = True
        for result, input_path in records:
            entry = report_entry(result, input_path)
            totals.add(entry)
            jf.write(("\n" if first else ",\n") + json.dumps(entry))
            first = False
            writer.writerow(csv_row(entry))
        jf.write("\n],\n")
        # Per-input findings grouped (the guard, warnings): known only after every entry.
        grouped = totals.flags[len(study_flags):]
        jf.write('"findings": [')
        jf.write(",".join("\n" + json.dumps(f.as_dict()) for f in grouped))
        jf.write("\n]\n}\n")
    return totals
