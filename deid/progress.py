"""The progress bar of ``deid run`` (rich, on stderr): files/s, ETA and the count of failures.

Implements :class:`deid.pipeline.ProgressListener`. It shows source paths never: only counts.
"""

from __future__ import annotations

import logging
import sys
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from deid.results import FileResult, Status

logger = logging.getLogger(__name__)


class _RateColumn(ProgressColumn):
    """Inputs per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- files/s" if speed is None else f"{speed:.1f} files/s", style="cyan")


class RichProgress:
    """A rich progress bar on stderr: done/total, files/s, elapsed, ETA, failures.

    Parameters
    ----------
    file:
        Where to draw (default ``sys.stderr``). On something that is not a terminal, rich
        prints the final state only.
    """

    def __init__(self, file: IO[str] | None = None) -> None:
        self._console = Console(file=file or sys.stderr, stderr=file is None)
        self._progress: Progress | None = None
        self._task_id: object = None
        self.done = 0
        self.failed = 0
        self.skipped = 0

    def start(self, total: int | None) -> None:
        self._progress = Progress(
            TextColumn("[bold]De-identifying"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[failures]}"),
            console=self._console,
            transient=False,
            redirect_stderr=False,
            redirect_stdout=False,
        )
        self._progress.start()
        self._task_id = self._progress.add_task("run", total=total, failures="")

    def advance(self, result: FileResult) -> None:
        self.done += 1
        if result.status is Status.FAILED:
            self.failed += 1
        elif result.status is Status.SKIPPED:
            self.skipped += 1
        if self._progress is None:
            return
        text = f"[red]{self.failed} failed[/red]" if self.failed else ""
        self._progress.update(self._task_id, advance=1, failures=text)  # type: ignore[arg-type]

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
