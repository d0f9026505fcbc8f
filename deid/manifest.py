"""The SQLite record of every input of an output folder, for exactly-once resume.

The manifest lives in ``OUT/.deid/manifest.sqlite`` (WAL mode). It holds one row per input (keyed
by a keyed hash of its absolute path, never the path itself): its size and modification time
when it was processed, where it ended (``written``, ``failed``, ``skipped``, ``dry-run``), the
output path, and the :class:`~deid.results.FileResult` as JSON. It never holds an original
value: the result's ``mapping`` (original-to-pseudonym pairs, PHI) and the pixel thumbnail are
left out of the JSON; thumbnails of cleaned images go to a table of their own, capped in number.

It also holds the settings the folder was made with (profile, options, pixel mode, layout,
sources, a fingerprint of the key: an HMAC of a constant, never the key) so that a rerun with
other settings is refused instead of mixing two kinds of output in one folder.

Only the client process (the one that runs :func:`deid.pipeline.run`) opens the manifest; Dask
workers never touch it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deid.config import DeidConfig
from deid.errors import OutputError
from deid.results import BoxRecord, FileResult, PixelOutcome, Status

logger = logging.getLogger(__name__)

#: Folder of the output folder that holds the manifest (never an output of an input).
STATE_DIR = ".deid"
MANIFEST_NAME = "manifest.sqlite"
SCHEMA_VERSION = 1

#: Failure classes that a rerun retries instead of skipping: they say nothing about the input.
RETRY_ERROR_CLASSES = frozenset({"WorkerLost", "WorkerError", "OutputError"})

#: Statuses a rerun may keep (with the same size and modification time).
_FINAL_STATUSES = frozenset({Status.WRITTEN.value, Status.FAILED.value, Status.SKIPPED.value})

_KEY_FINGERPRINT_MESSAGE = b"deid manifest key fingerprint v1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inputs (
    path TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    output TEXT,
    error_class TEXT,
    reason TEXT,
    duration_s REAL NOT NULL DEFAULT 0,
    modality TEXT,
    study_uid TEXT NOT NULL DEFAULT '',
    patient_pseudonym TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL,
    run INTEGER NOT NULL,
    seen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inputs_output ON inputs (output);
CREATE INDEX IF NOT EXISTS inputs_seen_source ON inputs (seen, source, path);
CREATE INDEX IF NOT EXISTS inputs_study ON inputs (seen, study_uid);
CREATE TABLE IF NOT EXISTS thumbnails (
    path TEXT PRIMARY KEY,
    png BLOB NOT NULL,
    masked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    finished REAL,
    processed INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL DEFAULT '{}'
);
"""


def key_fingerprint(key: bytes) -> str:
    """A fingerprint that tells whether two runs used the same key without revealing it."""
    return hmac.new(key, _KEY_FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:32]


def settings_for(
    config: DeidConfig, sources: tuple[Path, ...], mapping_file: Path | None
) -> dict[str, Any]:
    """The settings that decide the content of the outputs, as stored in the manifest.

    A resumed run must have the same settings; worker counts and the scheduler do not matter.
    """
    from deid._version import __version__

    user_yaml = config.profile.user_yaml
    return {
        "deid_version": __version__,
        "profile": config.profile.base,
        "options": sorted(config.profile.options),
        "profile_file_sha256": (
            hashlib.sha256(user_yaml.encode("utf-8")).hexdigest() if user_yaml is not None else None
        ),
        "pixels": config.pixels.value,
        "redact": config.redact.value,
        "layout": config.layout.value,
        "key_fingerprint": key_fingerprint(config.key),
        "sources": [str(s) for s in sources],
        "mapping_file": str(mapping_file) if mapping_file is not None else None,
    }


#: How a setting is named in a refusal message.
_SETTING_NAMES = {
    "deid_version": "deid version",
    "profile": "profile",
    "options": "options",
    "profile_file_sha256": "profile file content",
    "pixels": "--pixels",
    "redact": "--redact",
    "layout": "--layout",
    "key_fingerprint": "key",
    "sources": "sources",
    "mapping_file": "--mapping",
}


# -- FileResult <-> JSON ------------------------------------------------------------------------


def result_to_dict(result: FileResult) -> dict[str, Any]:
    """The result as plain JSON data, without ``mapping`` (PHI) and without the thumbnail."""
    pixels: dict[str, Any] | None = None
    if result.pixels is not None:
        p = result.pixels
        pixels = {
            "scanned": p.scanned,
            "reason": p.reason,
            "frames": p.frames,
            "boxes": [dataclasses.asdict(b) for b in p.boxes],
            "transfer_syntax_in": p.transfer_syntax_in,
            "transfer_syntax_out": p.transfer_syntax_out,
            "has_thumbnail": p.thumbnail_png is not None,
        }
    return {
        "source": result.source,
        "status": result.status.value,
        "output": result.output,
        "reason": result.reason,
        "error_class": result.error_class,
        "modality": result.modality,
        "sop_class_uid": result.sop_class_uid,
        "action_counts": dict(sorted(result.action_counts.items())),
        "residual_hits": list(result.residual_hits),
        "warnings": list(result.warnings),
        "pixels": pixels,
        "patient_pseudonym": result.patient_pseudonym,
        "study_uid": result.study_uid,
        "duration_s": result.duration_s,
        "contested_output": result.contested_output,
    }


def result_from_dict(data: Mapping[str, Any]) -> FileResult:
    """Rebuild a :class:`FileResult` (without mapping and thumbnail) from :func:`result_to_dict`."""
    pixels = None
    raw = data.get("pixels")
    if raw is not None:
        pixels = PixelOutcome(
            scanned=bool(raw["scanned"]),
            reason=raw.get("reason", ""),
            frames=int(raw.get("frames", 0)),
            boxes=tuple(BoxRecord(**b) for b in raw.get("boxes", ())),
            transfer_syntax_in=raw.get("transfer_syntax_in", ""),
            transfer_syntax_out=raw.get("transfer_syntax_out", ""),
        )
    return FileResult(
        source=data["source"],
        status=Status(data["status"]),
        output=data.get("output"),
        reason=data.get("reason"),
        error_class=data.get("error_class"),
        modality=data.get("modality"),
        sop_class_uid=data.get("sop_class_uid"),
        action_counts=dict(data.get("action_counts", {})),
        residual_hits=tuple(data.get("residual_hits", ())),
        warnings=tuple(data.get("warnings", ())),
        pixels=pixels,
        patient_pseudonym=data.get("patient_pseudonym", ""),
        study_uid=data.get("study_uid", ""),
        duration_s=float(data.get("duration_s", 0.0)),
        contested_output=data.get("contested_output"),
    )


@dataclass(frozen=True)
class InputRecord:
    """One row of the manifest."""

    path: str
    """Keyed hash of the input's absolute path (:func:`deid.pipeline.input_key`)."""
    source: str
    """Path relative to its source root (the ``source`` of the result)."""
    size: int
    mtime_ns: int
    result: FileResult
    run: int
    """The run that produced the row."""


class Manifest:
    """The manifest of one output folder (or an in-memory one for a dry run).

    Use as a context manager; rows are committed in batches (every ``commit_every`` rows or
    ``commit_interval_s`` seconds) and at :meth:`close`. A kill between two commits loses only
    the record of the last few inputs: a rerun redoes them, and the atomic, non-clobbering writes
    of the task find their outputs already there with the same bytes.

    Parameters
    ----------
    path:
        The SQLite file, or ``None`` for an in-memory manifest (``--dry-run``).
    """

    def __init__(
        self,
        path: Path | None,
        *,
        commit_every: int = 100,
        commit_interval_s: float = 0.5,
        max_thumbnails: int = 200,
    ) -> None:
        self.path = path
        self._commit_every = commit_every
        self._commit_interval_s = commit_interval_s
        self._max_thumbnails = max_thumbnails
        self._pending = 0
        self._last_commit = time.monotonic()
        self._before_commit: list[Any] = []
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    logger.debug("manifest journal mode is %s (WAL not supported here)", mode)
                self._db.execute("PRAGMA synchronous=NORMAL")
            else:
                self._db = sqlite3.connect(":memory:", isolation_level=None)
            self._db.executescript(_SCHEMA)
            version = self.get_meta("schema_version")
            if version is None:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
            elif version != str(SCHEMA_VERSION):
                raise OutputError(
                    f"{path}: manifest schema version {version} is not supported by this deid "
                    f"(expects {SCHEMA_VERSION}); use a new output folder."
                )
        except sqlite3.Error as exc:
            raise OutputError(
                f"{path}: cannot open the manifest ({exc.__class__.__name__}); "
                "is the output folder writable?"
            ) from None
        self._db.execute("BEGIN")
        self._thumbnail_count = int(
            self._db.execute("SELECT COUNT(*) FROM thumbnails").fetchone()[0]
        )

    @classmethod
    def for_output(cls, out_dir: Path, **kwargs: Any) -> Manifest:
        """Open (or create) the manifest of ``out_dir``."""
        return cls(out_dir / STATE_DIR / MANIFEST_NAME, **kwargs)

    # -- context and transactions --------------------------------------------------------------

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add_commit_hook(self, hook: Any) -> None:
        """Call ``hook()`` before every commit (the mapping journal flushes there first)."""
        self._before_commit.append(hook)

    def commit(self) -> None:
        """Commit the rows recorded so far."""
        for hook in self._before_commit:
            hook()
        self._db.execute("COMMIT")
        self._db.execute("BEGIN")
        self._pending = 0
        self._last_commit = time.monotonic()

    def _maybe_commit(self) -> None:
        self._pending += 1
        if (
            self._pending >= self._commit_every
            or time.monotonic() - self._last_commit >= self._commit_interval_s
        ):
            self.commit()

    def close(self) -> None:
        """Commit and close."""
        if self._db is None:  # type: ignore[comparison-overlap]
            return
        try:
            for hook in self._before_commit:
                hook()
            if self._db.in_transaction:
                self._db.execute("COMMIT")
        finally:
            self._db.close()
            self._db = None  # type: ignore[assignment]

    # -- settings and runs ---------------------------------------------------------------------

    def get_meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def stored_settings(self) -> dict[str, Any] | None:
        """The settings the folder was made with, or ``None`` for a new folder."""
        text = self.get_meta("settings")
        return None if text is None else dict(json.loads(text))

    def store_settings(self, settings: Mapping[str, Any]) -> None:
        self.set_meta("settings", json.dumps(dict(settings), sort_keys=True))

    def has_inputs(self) -> bool:
        return self._db.execute("SELECT 1 FROM inputs LIMIT 1").fetchone() is not None

    @staticmethod
    def differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
        """Names (for a message) of the settings that differ; never their values."""
        names = []
        for key in sorted(set(stored) | set(current)):
            if stored.get(key) != current.get(key):
                names.append(_SETTING_NAMES.get(key, key))
        return names

    def begin_run(self, options: Mapping[str, Any]) -> int:
        """Record the start of a run; return its number."""
        cursor = self._db.execute(
            "INSERT INTO runs (started, options) VALUES (?, ?)",
            (time.time(), json.dumps(dict(options), sort_keys=True)),
        )
        self.commit()
        return int(cursor.lastrowid or 0)

    def latest_run(self) -> int | None:
        """The number of the last run recorded, or ``None``."""
        row = self._db.execute("SELECT MAX(id) FROM runs").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def finish_run(self, run: int, processed: int) -> None:
        self._db.execute(
            "UPDATE runs SET finished = ?, processed = ? WHERE id = ?",
            (time.time(), processed, run),
        )
        self.commit()

    # -- inputs --------------------------------------------------------------------------------

    def lookup(self, path: str) -> InputRecord | None:
        """The row of the input at absolute ``path``, if any."""
        row = self._db.execute(
            "SELECT path, source, size, mtime_ns, result, run FROM inputs WHERE path = ?", (path,)
        ).fetchone()
        if row is None:
            return None
        return InputRecord(
            path=row[0], source=row[1], size=row[2], mtime_ns=row[3],
            result=result_from_dict(json.loads(row[4])), run=row[5],
        )

    def is_done(self, path: str, size: int, mtime_ns: int, out_dir: Path) -> FileResult | None:
        """The stored result when the input needs no work; ``None`` when it must be (re)done.

        An input is done when its row is final (``written``, ``failed``, ``skipped``; not a
        transient failure such as a lost worker) for the same size and modification time, and,
        for ``written``, the output is still there.
        """
        row = self._db.execute(
            "SELECT size, mtime_ns, status, output, error_class, result FROM inputs "
            "WHERE path = ?",
            (path,),
        ).fetchone()
        if row is None:
            return None
        r_size, r_mtime, status, output, error_class, result = row
        if r_size != size or r_mtime != mtime_ns or status not in _FINAL_STATUSES:
            return None
        if status == Status.FAILED.value and error_class in RETRY_ERROR_CLASSES:
            return None
        if status == Status.WRITTEN.value and (not output or not (out_dir / output).is_file()):
            return None
        return result_from_dict(json.loads(result))

    def mark_seen(self, path: str, run: int) -> None:
        """Note that ``run`` found the input again (its row stays as it is)."""
        self._db.execute("UPDATE inputs SET seen = ? WHERE path = ?", (run, path))
        self._maybe_commit()

    def record(self, path: str, size: int, mtime_ns: int, result: FileResult, run: int) -> None:
        """Store the result of one input (replacing any earlier row of the same input)."""
        self._db.execute(
            "INSERT OR REPLACE INTO inputs (path, source, size, mtime_ns, status, output, "
            "error_class, reason, duration_s, modality, study_uid, patient_pseudonym, result, "
            "run, seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                path, result.source, size, mtime_ns, result.status.value, result.output,
                result.error_class, result.reason, result.duration_s, result.modality,
                result.study_uid, result.patient_pseudonym,
                json.dumps(result_to_dict(result), sort_keys=True), run, run,
            ),
        )
        png = result.pixels.thumbnail_png if result.pixels is not None else None
        if png is not None and result.status in (Status.WRITTEN, Status.DRY_RUN):
            self._store_thumbnail(path, png, masked=result.pixels.masked > 0)  # type: ignore[union-attr]
        elif self._thumbnail_count:
            if self._db.execute("DELETE FROM thumbnails WHERE path = ?", (path,)).rowcount:
                self._thumbnail_count -= 1
        self._maybe_commit()

    def _store_thumbnail(self, path: str, png: bytes, *, masked: bool) -> None:
        exists = self._db.execute("SELECT 1 FROM thumbnails WHERE path = ?", (path,)).fetchone()
        if exists is None and self._thumbnail_count >= self._max_thumbnails:
            if not masked:
                return
            # Images with masked text are what a reviewer must see: make room for them.
            victim = self._db.execute(
                "SELECT path FROM thumbnails WHERE masked = 0 LIMIT 1"
            ).fetchone()
            if victim is None:
                return
            self._db.execute("DELETE FROM thumbnails WHERE path = ?", (victim[0],))
            self._thumbnail_count -= 1
        self._db.execute(
            "INSERT OR REPLACE INTO thumbnails (path, png, masked) VALUES (?, ?, ?)",
            (path, png, int(masked)),
        )
        if exists is None:
            self._thumbnail_count += 1

    def owner_of(self, output: str, *, excluding: str) -> str | None:
        """Another input whose result claims ``output`` (written/dry-run), named by its source
        path and its ``input_id`` (two roots may hold the same relative path)."""
        row = self._db.execute(
            "SELECT source, path FROM inputs WHERE output = ? AND path != ? AND status IN (?, ?) "
            "ORDER BY run, path LIMIT 1",
            (output, excluding, Status.WRITTEN.value, Status.DRY_RUN.value),
        ).fetchone()
        return None if row is None else f"{row[0]} (input_id {row[1]})"

    def written_outputs(self) -> Iterator[str]:
        """Output paths (relative) of every ``written`` row."""
        for (output,) in self._db.execute(
            "SELECT output FROM inputs WHERE status = ? AND output IS NOT NULL",
            (Status.WRITTEN.value,),
        ):
            yield str(output)

    def clear_inputs(self) -> None:
        """Forget every input (``--force``)."""
        self._db.execute("DELETE FROM inputs")
        self._db.execute("DELETE FROM thumbnails")
        self._thumbnail_count = 0
        self.commit()

    def conflicts(self, run: int) -> list[tuple[str, FileResult]]:
        """``(path, result)`` of this run's inputs that failed on an output conflict."""
        rows = self._db.execute(
            "SELECT path, result FROM inputs WHERE seen = ? AND error_class = ? ORDER BY path",
            (run, "OutputConflict"),
        ).fetchall()
        return [(str(path), result_from_dict(json.loads(result))) for path, result in rows]

    def update_reason(self, path: str, reason: str) -> None:
        """Replace the reason of a failed row (naming the input that owns a contested output)."""
        row = self._db.execute("SELECT result FROM inputs WHERE path = ?", (path,)).fetchone()
        if row is None:
            return
        data = json.loads(row[0])
        data["reason"] = reason
        self._db.execute(
            "UPDATE inputs SET reason = ?, result = ? WHERE path = ?",
            (reason, json.dumps(data, sort_keys=True), path),
        )
        self._maybe_commit()

    # -- reading back for reports --------------------------------------------------------------

    def count_by_status(self, run: int) -> dict[str, int]:
        """Inputs seen by ``run``, counted by status."""
        return {
            str(status): int(n)
            for status, n in self._db.execute(
                "SELECT status, COUNT(*) FROM inputs WHERE seen = ? "
                "GROUP BY status ORDER BY status",
                (run,),
            )
        }

    def records(self, run: int) -> Iterator[InputRecord]:
        """Every input seen by ``run``, sorted by source path (streamed, memory bounded)."""
        cursor = self._db.cursor()
        cursor.execute(
            "SELECT path, source, size, mtime_ns, result, run FROM inputs WHERE seen = ? "
            "ORDER BY source, path",
            (run,),
        )
        while True:
            rows = cursor.fetchmany(500)
            if not rows:
                return
            for row in rows:
                yield InputRecord(
                    path=row[0], source=row[1], size=row[2], mtime_ns=row[3],
                    result=result_from_dict(json.loads(row[4])), run=row[5],
                )

    def mixed_patient_studies(self, run: int) -> list[tuple[str, int, list[str]]]:
        """Studies whose instances carry different patient pseudonyms.

        Returns ``(study_uid, number of distinct pseudonyms, sources)`` for each, sorted.
        """
        studies = self._db.execute(
            "SELECT study_uid, COUNT(DISTINCT patient_pseudonym) FROM inputs "
            "WHERE seen = ? AND study_uid != '' AND patient_pseudonym != '' "
            "GROUP BY study_uid HAVING COUNT(DISTINCT patient_pseudonym) > 1 ORDER BY study_uid",
            (run,),
        ).fetchall()
        found = []
        for study_uid, n in studies:
            sources = [
                str(s)
                for (s,) in self._db.execute(
                    "SELECT source FROM inputs WHERE seen = ? AND study_uid = ? "
                    "AND patient_pseudonym != '' ORDER BY source",
                    (run, study_uid),
                )
            ]
            found.append((str(study_uid), int(n), sources))
        return found

    def thumbnails(self, run: int, limit: int) -> list[tuple[InputRecord, bytes]]:
        """Up to ``limit`` thumbnails of this run's cleaned images, sorted by source."""
        rows = self._db.execute(
            "SELECT i.path, i.source, i.size, i.mtime_ns, i.result, i.run, t.png "
            "FROM thumbnails t JOIN inputs i ON i.path = t.path WHERE i.seen = ? "
            "ORDER BY i.source, i.path LIMIT ?",
            (run, limit),
        ).fetchall()
        return [
            (
                InputRecord(
                    path=r[0], source=r[1], size=r[2], mtime_ns=r[3],
                    result=result_from_dict(json.loads(r[4])), run=r[5],
                ),
                bytes(r[6]),
            )
            for r in rows
        ]
