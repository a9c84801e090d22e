"""The library's progress steps and notes drawn with rich (:class:`artsim.progress.Reporter`)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from artsim.progress import Reporter, Task


class _RichTask(Task):
    def __init__(self, reporter: RichReporter, progress: Progress, task_id, total: int):
        self.reporter, self.progress, self.task_id, self.total = reporter, progress, task_id, total

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task_id, n)
        self.reporter._stop_when_done(self.progress)

    def complete(self) -> None:
        self.progress.update(self.task_id, completed=self.total)
        self.reporter._stop_when_done(self.progress)


class RichReporter(Reporter):
    """Bars for steps and coloured lines for notes, on ``console``; use it as a context manager.

    The bars are drawn only while some step is unfinished, so another live display (Lightning's
    epoch bar) can run between the steps. ``transient`` bars vanish when done; ``enabled=False``
    shows notes only (e.g. on DDP ranks other than zero, or with ``--no-progress``).
    """

    def __init__(
        self,
        console: Console,
        *,
        transient: bool = False,
        enabled: bool = True,
        remaining: bool = False,
        description_width: int | None = None,
    ):
        self.console, self.transient, self.enabled = console, transient, enabled
        description = "{task.description}"
        if description_width:
            description = f"{{task.description:<{description_width}}}"
        self.columns = [
            TextColumn(description),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        if remaining:
            self.columns.append(TimeRemainingColumn())
        self.progress: Progress | None = None

    def __enter__(self) -> RichReporter:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def task(self, description: str, total: int) -> Task:
        if self.progress is None:
            self.progress = Progress(
                *self.columns,
                console=self.console,
                transient=self.transient,
                disable=not self.enabled,
            )
            self.progress.start()
        task_id = self.progress.add_task(description, total=total)
        return _RichTask(self, self.progress, task_id, total)

    def _stop_when_done(self, progress: Progress) -> None:
        if progress is self.progress and all(task.finished for task in progress.tasks):
            progress.stop()
            self.progress = None

    def note(self, text: str, level: str = "info") -> None:
        # a note is one line: never wrapped at the terminal's width (paths stay whole)
        if level == "warning":
            self.console.print(
                f"[yellow]{escape(text)}[/]", markup=True, highlight=False, soft_wrap=True
            )
        else:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
