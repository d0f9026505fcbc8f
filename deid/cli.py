"""The ``deid`` command line: parse, build the config, call the API, map outcomes to exit codes.

Exit codes: 0 every input went well, 1 some inputs failed (or ``verify`` found a leak), 2 usage.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from deid import api
from deid.config import Layout, PixelMode, RedactMode
from deid.errors import DeidError

logger = logging.getLogger(__name__)


def _fail_usage(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


class _Group(click.Group):
    """Turns an unexpected internal error into one line (messages may quote values: only the
    class is shown); ``DEID_DEBUG=1`` shows the traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted: run the same command again to finish the job.", err=True)
            sys.exit(130)
        except Exception as exc:
            if os.environ.get("DEID_DEBUG"):
                raise
            click.echo(f"Internal error ({type(exc).__name__}); set DEID_DEBUG=1 for details. "
                       "Rerun the command: finished inputs are kept.", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deid-pipeline")
def main() -> None:
    """De-identify DICOM files and folders per DICOM PS3.15 Annex E."""


@main.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Output folder (created; may not be inside a source).")
@click.option("--profile", default="basic", show_default=True,
              help="A shipped profile name (see 'deid profiles') or a YAML profile file.")
@click.option("--option", "options", multiple=True, metavar="NAME",
              help="A PS3.15 option, e.g. retain-longitudinal-modified-dates (repeatable).")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Secret key for deterministic pseudonyms (else $DEID_KEY; else a one-run key).")
@click.option("--pixels", type=click.Choice([m.value for m in PixelMode]), default="auto",
              show_default=True, help="When to scan pixel data for burned-in text.")
@click.option("--redact", type=click.Choice([m.value for m in RedactMode]), default="all-text",
              show_default=True, help="Mask all detected text, or only identifying text.")
@click.option("--layout", type=click.Choice([m.value for m in Layout]), default="mirror",
              show_default=True, help="Mirror source paths, or patient/study/series/instance.")
@click.option("--workers", type=int, default=None,
              help="Local worker processes (default: all cores; 0 = in-process, for debugging).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Use an existing Dask cluster, e.g. tcp://host:8786.")
@click.option("--force", is_flag=True, help="Redo every input, even those already done.")
@click.option("--dry-run", is_flag=True, help="Write only the report of what would be done.")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write original-to-pseudonym pairs (CSV id_old,id_new) here. This file is PHI.")
@click.option("--qa-originals", type=click.Path(file_okay=False, path_type=Path),
              help="Also write thumbnails of original images here, for QA (PHI; kept apart).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; errors only.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def run(
    sources: tuple[Path, ...], out_dir: Path, profile: str, options: tuple[str, ...],
    key_file: Path | None, pixels: str, redact: str, layout: str, workers: int | None,
    scheduler: str | None, force: bool, dry_run: bool, mapping_file: Path | None,
    qa_originals: Path | None, quiet: bool, verbose: int,
) -> None:
    """De-identify SOURCE files and folders (recursively) into --out."""
    _setup_logging(verbose, quiet)
    try:
        config = api.make_config(
            profile=profile, options=options, key_file=key_file, pixels=pixels, redact=redact,
            layout=layout, dry_run=dry_run, collect_mapping=mapping_file is not None,
        )
    except DeidError as exc:
        _fail_usage(str(exc))
        return
    if config.pixels is not PixelMode.NEVER and scheduler is None:
        from deid.pixels.detect import check_tesseract

        try:
            check_tesseract()
        except DeidError as exc:
            _fail_usage(f"{exc} (or run with --pixels never if the archive has no burned-in "
                        "text)")
            return
    if config.key_is_ephemeral and not quiet:
        click.echo(
            "No key given (--key-file or $DEID_KEY): anonymising with a random key for this run "
            "only; pseudonyms will not match other runs.", err=True,
        )
    if mapping_file is not None and not quiet:
        click.echo(f"Warning: {mapping_file} will hold original identifiers: it is PHI.", err=True)
    from deid.progress import RichProgress

    try:
        summary = api.run(
            sources, out_dir, config, workers=workers, scheduler=scheduler, force=force,
            mapping_file=mapping_file, qa_originals=qa_originals,
            progress=None if quiet else RichProgress(),
        )
    except DeidError as exc:
        _fail_usage(str(exc))
        return
    if not quiet:
        click.echo(summary.describe())
    sys.exit(0 if summary.ok else 1)


@main.command()
def profiles() -> None:
    """List the shipped profiles and the PS3.15 options."""
    from deid.profiles import list_options, list_profiles

    click.echo("Profiles:")
    for name, description in list_profiles():
        click.echo(f"  {name:<12} {description}")
    click.echo("Options (--option NAME):")
    for name, description in list_options():
        click.echo(f"  {name:<40} {description}")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
def keygen(file: Path) -> None:
    """Write a new secret key to FILE (owner-only permissions; never overwrites)."""
    from deid.pseudonym import write_key_file

    try:
        write_key_file(file)
    except DeidError as exc:
        _fail_usage(str(exc))
        return
    click.echo(f"Wrote a new key to {file} (mode 0600). Keep it secret and backed up.")


@main.command()
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--source", "sources", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path), help="The original input (repeatable).")
@click.option("--allow-dates", is_flag=True,
              help="Do not report original dates (runs with retain-longitudinal-full-dates).")
@click.option("--allow", "allow_kinds", multiple=True, metavar="KIND",
              help="Do not report this kind of value, e.g. 'uid' for retain-uids runs.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the hits.")
def verify(out_dir: Path, sources: tuple[Path, ...], allow_dates: bool,
           allow_kinds: tuple[str, ...], quiet: bool) -> None:
    """Scan OUT_DIR for any identifying value of the SOURCE files; exit 1 on any hit."""
    from deid.verify import KINDS, verify_output

    unknown = sorted(set(allow_kinds) - set(KINDS))
    if unknown:
        _fail_usage(f"unknown kind {unknown[0]!r}; kinds are: {', '.join(KINDS)}.")
        return
    try:
        report = verify_output(out_dir, sources, allow_dates=allow_dates,
                               allow_kinds=allow_kinds)
    except DeidError as exc:
        _fail_usage(str(exc))
        return
    for hit in report.hits:
        click.echo(f"LEAK {hit.output} {hit.location} ({hit.kind})")
    if not quiet:
        click.echo(report.describe())
    sys.exit(1 if report.hits else 0)


if __name__ == "__main__":  # python -m deid.cli
    main()
