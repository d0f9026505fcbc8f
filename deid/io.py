"""Find inputs, read them, write outputs atomically, and build output paths."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from deid.errors import InputError, OutputError

logger = logging.getLogger(__name__)

#: Prefix of temporary files in the output folder; a rerun removes stale ones.
TMP_PREFIX = ".deid-tmp-"


@dataclass(frozen=True)
class SourceFile:
    """One input: its absolute path and its path relative to the output root (POSIX)."""

    path: Path
    relative: PurePosixPath


def discover(sources: Iterable[Path], *, exclude: Path | None = None) -> Iterator[SourceFile]:
    """Yield every file under ``sources`` lazily, in a stable (sorted) order.

    With one folder, relative paths are taken from inside it; with several sources each keeps its
    own folder name as the first component so that outputs cannot collide. A file given directly
    is relative to its parent. ``exclude`` (the output folder) is never descended into.
    """
    sources = [Path(s) for s in sources]
    several = len(sources) > 1
    excluded = exclude.resolve() if exclude is not None else None
    for source in sources:
        if source.is_file():
            yield SourceFile(source.resolve(), PurePosixPath(source.name))
            continue
        root = source.resolve()
        prefix = PurePosixPath(root.name) if several else PurePosixPath()
        yield from _walk(root, root, prefix, excluded)


def _walk(
    root: Path, folder: Path, prefix: PurePosixPath, excluded: Path | None
) -> Iterator[SourceFile]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        logger.warning("cannot list folder %s: %s", folder, exc.strerror)
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if excluded is not None and path.resolve() == excluded:
                continue
            yield from _walk(root, path, prefix, excluded)
        elif entry.is_file():
            rel = path.relative_to(root).as_posix()
            yield SourceFile(path, prefix / rel)


def read_dataset(path: Path) -> Dataset:
    """Read a DICOM Part 10 file, raising :class:`InputError` with a one-line reason.

    The whole file is parsed up front so that corrupt lengths surface here, not half-way through
    cleaning. The message never quotes a value of the file.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}).") from None
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes), not DICOM.")
    try:
        ds = pydicom.dcmread(path, force=False)
    except InvalidDicomError:
        raise InputError(
            f"{path}: not a DICOM Part 10 file (no 'DICM' preamble and file meta)."
        ) from None
    except (EOFError, OSError, ValueError, KeyError, IndexError, TypeError, NotImplementedError,
            AttributeError, UnicodeError, OverflowError) as exc:
        raise InputError(f"{path}: truncated or corrupt DICOM ({type(exc).__name__}).") from None
    if "TransferSyntaxUID" not in ds.file_meta:
        raise InputError(f"{path}: file meta has no (0002,0010) TransferSyntaxUID.")
    _check_complete(ds, path)
    return ds


def _check_complete(ds: Dataset, path: Path) -> None:
    """pydicom stops quietly at the end of a truncated file: compare each top-level element's
    stated length with what was read, and native pixel data with the image size."""
    for tag in ds.keys():
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.value is not None \
                and raw.length != 0xFFFFFFFF and len(raw.value) != raw.length:
            raise InputError(
                f"{path}: truncated or corrupt DICOM: element ({tag >> 16:04X},{tag & 0xFFFF:04X}) "
                "is shorter than its stated length."
            )
    raw = ds.get_item(0x7FE00010)
    if raw is None or getattr(ds.file_meta.TransferSyntaxUID, "is_compressed", True):
        return
    try:
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        if str(ds.get("PhotometricInterpretation", "")).endswith("_422"):
            samples = 2  # chroma subsampled: two samples per pixel on average
        expected = (int(ds.Rows) * int(ds.Columns) * samples
                    * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.BitsAllocated))
    except (AttributeError, TypeError, ValueError):
        return
    stated = len(raw.value) if raw.value is not None else 0
    if stated * 8 < expected:
        raise InputError(f"{path}: truncated pixel data (7FE0,0010): fewer bytes than the image "
                         "size needs.")


def is_dicomdir(ds: Dataset) -> bool:
    """True for a DICOMDIR (Media Storage Directory Storage), which indexes identifying values."""
    sop_class = ds.file_meta.get("MediaStorageSOPClassUID", "")
    return bool(sop_class == "1.2.840.10008.1.3.10" or "DirectoryRecordSequence" in ds)


def encode_dataset(ds: Dataset) -> bytes:
    """Encode ``ds`` as a DICOM Part 10 file (preamble, file meta, dataset)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@dataclass(frozen=True)
class WriteOutcome:
    """``written`` (new file), ``identical`` (already there with the same bytes: a resumed run) or
    ``conflict`` (another file is there: never overwritten)."""

    state: str
    path: Path


def write_atomic(data: bytes, dest: Path) -> WriteOutcome:
    """Write ``data`` to ``dest`` through a temporary file and an atomic, non-clobbering link.

    A kill at any moment leaves either no ``dest`` or a complete one; at most a temporary file
    named ``.deid-tmp-*`` that :func:`remove_stale_temporaries` deletes on the next run. (No
    fsync: a killed process loses nothing the kernel already has; durability across power loss
    is the file system's.)
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{dest.parent}: cannot create output folder ({exc.strerror}).") from None
    tmp = dest.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        try:
            os.link(tmp, dest)
            state = "written"
        except FileExistsError:
            state = "identical" if _same_content(dest, data) else "conflict"
        except OSError:  # file systems without hard links
            if dest.exists():
                state = "identical" if _same_content(dest, data) else "conflict"
            else:
                os.replace(tmp, dest)
                return WriteOutcome("written", dest)
    except OSError as exc:
        raise OutputError(f"{dest}: cannot write output ({exc.strerror}).") from None
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
    return WriteOutcome(state, dest)


def _same_content(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size != len(data):
            return False
        return hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
    except OSError:
        return False


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete temporary files a killed run left in ``out_dir``; return how many."""
    removed = 0
    if not out_dir.exists():
        return 0
    for dirpath, _dirnames, filenames in os.walk(out_dir):
        for name in filenames:
            if name.startswith(TMP_PREFIX):
                try:
                    os.unlink(os.path.join(dirpath, name))
                    removed += 1
                except OSError:
                    pass
    return removed
