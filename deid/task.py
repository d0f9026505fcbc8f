"""One input file end to end (read → header actions → pixels → write → result).

:func:`run_task` is the picklable unit a worker runs; it never raises: a failure is a result.
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydicom.dataset import Dataset

from deid import pixels
from deid.actions import new_engine
from deid.config import DeidConfig, Layout
from deid.errors import CleaningError, DeidError, PixelError
from deid.identifiers import Identifiers, collect_identifiers
from deid.io import SourceFile, encode_dataset, is_dicomdir, read_dataset, write_atomic
from deid.profiles import CompiledProfile, compile_profile
from deid.pseudonym import Pseudonymizer
from deid.results import DatasetResult, FileResult, Status

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class FileTask:
    """One input to de-identify into ``out_dir``."""

    source: SourceFile
    out_dir: Path


@functools.lru_cache(maxsize=4)
def _prepared(config: DeidConfig) -> tuple[CompiledProfile, Pseudonymizer]:
    return compile_profile(config.profile), Pseudonymizer(config.key)


def deidentify_header(
    ds: Dataset, config: DeidConfig
) -> tuple[DatasetResult, pixels.PixelContext, dict[str, str]]:
    """Apply the profile and the residual guard to ``ds`` in place.

    Returns the result, the context the pixel step needs (taken from the original header; it
    holds identifying values and never leaves the worker) and the UIDs replaced (original →
    pseudonym, for output paths; never reported).
    """
    profile, pseudonyms = _prepared(config)
    identifiers = collect_identifiers(ds, profile.kept_tags)
    context = pixels.PixelContext(
        burned_in_annotation=_text(ds, "BurnedInAnnotation").upper() or None,
        modality=_text(ds, "Modality"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        manufacturer=_text(ds, "Manufacturer"),
        model=_text(ds, "ManufacturerModelName"),
        identifiers=identifiers,
    )
    engine = new_engine(profile, pseudonyms, identifiers, config.collect_mapping)
    engine.apply(ds)
    result = DatasetResult(
        actions=tuple(engine.actions),
        residual_hits=tuple(sorted({a.tag for a in engine.actions if a.action == "guard"})),
        warnings=tuple(engine.warnings),
        patient_pseudonym=_text(ds, "PatientID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        mapping=tuple(sorted(engine.mapping.items())),
    )
    return result, context, engine.uid_map


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return str(value).strip()


def output_path(
    relative: PurePosixPath, result: DatasetResult, layout: Layout,
    identifiers: Identifiers | None = None, uid_map: dict[str, str] | None = None,
) -> PurePosixPath:
    """Where an output goes, relative to the output folder.

    ``study`` names folders from pseudonymised values only. ``mirror`` keeps the source's relative
    path, except that an original UID of the file in a folder or file name (exports named by
    Study Instance UID) becomes its pseudonym, and an identifying value (a folder named after
    the patient) becomes the patient pseudonym.
    """
    if layout is Layout.STUDY:
        return PurePosixPath(
            result.patient_pseudonym or "PAT-UNKNOWN",
            result.study_uid or "study-unknown",
            result.series_uid or "series-unknown",
            f"{result.sop_instance_uid or 'instance-unknown'}.dcm",
        )
    parts = list(relative.parts)
    if uid_map:
        for old in sorted(uid_map, key=len, reverse=True):
            parts = [part.replace(old, uid_map[old]) if old in part else part for part in parts]
    if identifiers:
        pseudonym = result.patient_pseudonym or "PAT-UNKNOWN"
        parts = [identifiers.replace(part, pseudonym) for part in parts]
    return PurePosixPath(*parts)


def _silence_pydicom() -> None:
    """pydicom logs invalid values and decoder tracebacks verbatim: a value may be PHI (rule: no
    PHI in logs), so its logger is muted while deid runs; deid's own results say what failed."""
    pydicom_logger = logging.getLogger("pydicom")
    if pydicom_logger.level <= logging.CRITICAL:
        pydicom_logger.setLevel(logging.CRITICAL + 10)
        pydicom_logger.propagate = False


def run_task(task: FileTask, config: DeidConfig) -> FileResult:
    """De-identify one file; never raises (a failure is a ``failed`` result with a reason).

    The result names the input by its path relative to its source root, with any identifying
    value of the file in a folder or file name replaced (as in the mirror layout); messages
    never hold the absolute path.
    """
    start = time.perf_counter()
    _silence_pydicom()
    shown = [task.source.relative.as_posix()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warnings may quote values: never let them out
        try:
            return _run(task, config, start, shown)
        except DeidError as exc:
            reason, error_class = str(exc), type(exc).__name__
        except MemoryError:
            reason, error_class = "out of memory while de-identifying; not written.", "MemoryError"
        except Exception as exc:  # unknown problems: fail closed, message without values
            logger.debug("unexpected error on %s: %s", shown[0], type(exc).__name__)
            reason = f"could not be de-identified completely ({type(exc).__name__}); not written."
            error_class = type(exc).__name__
    reason = reason.replace(str(task.source.path), shown[0])
    if not reason.startswith(shown[0]):
        reason = f"{shown[0]}: {reason}"
    return FileResult(source=shown[0], status=Status.FAILED, reason=reason,
                      error_class=error_class, duration_s=time.perf_counter() - start)


def _run(task: FileTask, config: DeidConfig, start: float, shown: list[str]) -> FileResult:
    ds = read_dataset(task.source.path)
    if is_dicomdir(ds):
        return FileResult(
            source=shown[0], status=Status.SKIPPED, error_class="DICOMDIR",
            reason=f"{shown[0]}: a DICOMDIR indexes names and IDs; not copied "
                   "(rebuild one from the output if needed).",
            duration_s=time.perf_counter() - start,
        )
    try:
        result, context, uid_map = deidentify_header(ds, config)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
            UnicodeError, EOFError, NotImplementedError) as exc:
        raise CleaningError(
            f"unreadable or invalid element while cleaning ({type(exc).__name__}); not written."
        ) from None
    shown[0] = output_path(task.source.relative, result, Layout.MIRROR, context.identifiers,
                           uid_map).as_posix()
    relative = shown[0]
    try:
        outcome = pixels.clean_pixels(ds, context, mode=config.pixels, redact=config.redact)
    except PixelError as exc:
        message = str(exc)
        if "not written" not in message.lower():
            message += " Not written."
        raise PixelError(f"{relative}: {message}") from None
    target = output_path(task.source.relative, result, config.layout, context.identifiers,
                         uid_map)
    base = dict(
        source=relative, modality=_text(ds, "Modality") or None,
        sop_class_uid=_text(ds, "SOPClassUID") or None, action_counts=result.counts(),
        residual_hits=result.residual_hits, warnings=result.warnings, pixels=outcome,
        patient_pseudonym=result.patient_pseudonym, study_uid=result.study_uid,
        mapping=result.mapping,
    )
    if config.dry_run:
        return FileResult(status=Status.DRY_RUN, output=target.as_posix(),
                          duration_s=time.perf_counter() - start, **base)  # type: ignore[arg-type]
    data = encode_dataset(ds)
    written = write_atomic(data, task.out_dir / target)
    if written.state == "conflict":
        return FileResult(
            status=Status.FAILED, output=None, error_class="OutputConflict",
            contested_output=target.as_posix(),
            reason=f"{relative}: output {target.as_posix()} already holds another "
                   "file; not overwritten.",
            duration_s=time.perf_counter() - start, **base,  # type: ignore[arg-type]
        )
    return FileResult(status=Status.WRITTEN, output=target.as_posix(),
                      duration_s=time.perf_counter() - start, **base)  # type: ignore[arg-type]


def run_single_file(source: Path, destination: Path, config: DeidConfig) -> FileResult:
    """De-identify ``source`` into the exact path ``destination`` (API helper)."""
    task = FileTask(SourceFile(source.resolve(), PurePosixPath(destination.name)),
                    destination.parent)
    return run_task(task, config)
