"""The public API: de-identify a dataset in memory, a file, a folder; run the whole pipeline.

The command line (:mod:`deid.cli`) is a thin layer over these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from deid.config import DeidConfig, Layout, PixelMode, ProfileSpec, RedactMode
from deid.errors import ProfileError
from deid.profiles import resolve_profile_spec
from deid.pseudonym import generate_key, key_from_env, read_key_file
from deid.results import DatasetResult, FileResult

if TYPE_CHECKING:
    from deid.pipeline import ProgressListener, RunSummary

logger = logging.getLogger(__name__)

__all__ = [
    "make_config",
    "deidentify_dataset",
    "deidentify_file",
    "deidentify_folder",
    "run",
]


def make_config(
    *,
    profile: str = "basic",
    options: Iterable[str] = (),
    key: bytes | None = None,
    key_file: Path | None = None,
    pixels: str | PixelMode = PixelMode.AUTO,
    redact: str | RedactMode = RedactMode.ALL_TEXT,
    layout: str | Layout = Layout.MIRROR,
    dry_run: bool = False,
    collect_mapping: bool = False,
) -> DeidConfig:
    """Build a :class:`DeidConfig`.

    The key comes from ``key``, else ``key_file``, else ``$DEID_KEY``; without any, a random key
    is made for this run only (anonymisation: pseudonyms do not match other runs) and
    ``key_is_ephemeral`` is set.

    Raises
    ------
    ProfileError
        Unknown profile or option, or an invalid profile file.
    KeyFileError
        The key file cannot be read or is too short.
    """
    spec: ProfileSpec = resolve_profile_spec(profile, tuple(options))
    ephemeral = False
    if key is None and key_file is not None:
        key = read_key_file(key_file)
    if key is None:
        key = key_from_env()
    if key is None:
        key = generate_key()
        ephemeral = True
    try:
        return DeidConfig(
            profile=spec, key=key, key_is_ephemeral=ephemeral, pixels=PixelMode(pixels),
            redact=RedactMode(redact), layout=Layout(layout), dry_run=dry_run,
            collect_mapping=collect_mapping,
        )
    except ValueError as exc:
        raise ProfileError(str(exc)) from None


def deidentify_dataset(ds: Dataset, config: DeidConfig) -> DatasetResult:
    """De-identify ``ds`` in place (header only; PS3.15 E.1.1 and the options of the profile).

    Returns the list of actions applied, per element (tag, keyword, action; never a value).
    Pixel data is not scanned here: use :func:`deidentify_file` for the full treatment.
    """
    from deid.task import deidentify_header

    result, _context, _uids = deidentify_header(ds, config)
    return result


def deidentify_file(source: Path, destination: Path, config: DeidConfig) -> FileResult:
    """De-identify one file into ``destination`` (header, then pixels; atomic write).

    Never raises for a bad input: the result says ``failed`` with the reason.
    """
    from deid.task import run_single_file

    return run_single_file(Path(source), Path(destination), config)


def deidentify_folder(
    source: Path, out_dir: Path, config: DeidConfig, *, workers: int | None = 0
) -> RunSummary:
    """De-identify a folder into ``out_dir`` (in-process by default), with reports."""
    return run([Path(source)], Path(out_dir), config, workers=workers)


def run(
    sources: Sequence[Path],
    out_dir: Path,
    config: DeidConfig,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    mapping_file: Path | None = None,
    qa_originals: Path | None = None,
    progress: ProgressListener | None = None,
) -> RunSummary:
    """Run the pipeline over ``sources`` into ``out_dir`` (see :mod:`deid.pipeline`)."""
    from deid.pipeline import RunOptions
    from deid.pipeline import run as _run_pipeline

    options = RunOptions(
        sources=tuple(Path(s) for s in sources), out_dir=Path(out_dir), workers=workers,
        scheduler=scheduler, force=force, mapping_file=mapping_file, qa_originals=qa_originals,
    )
    return _run_pipeline(options, config, progress=progress)
