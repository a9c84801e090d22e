"""How the library reports progress and notes without knowing about a terminal.

Long library calls (training, evaluation, index builds, corpus builds) take a ``reporter``. The
base :class:`Reporter` ignores everything, so a library user sees nothing unless they ask; the
commands pass :class:`artsim.cli.progress.RichReporter`, which draws bars and coloured lines.

>>> reporter = Reporter()
>>> advance = reporter.task("embedding images", total=3)
>>> advance(2); advance.complete()
>>> reporter.note("2 rows skipped", level="warning")
"""

from __future__ import annotations


class Task:
    """One step with a known size. Call it (or :meth:`advance`) with how many units were done."""

    def __call__(self, n: int = 1) -> None:
        self.advance(n)

    def advance(self, n: int = 1) -> None:
        """``n`` more units are done."""

    def complete(self) -> None:
        """The step is finished, whatever was counted (e.g. cached rows never report)."""


class Reporter:
    """Receives progress steps and notes from the library; this base class shows nothing."""

    def task(self, description: str, total: int) -> Task:
        """Start a step of ``total`` units described by ``description``."""
        return Task()

    def note(self, text: str, level: str = "info") -> None:
        """A line for the user; ``level`` is ``info`` or ``warning``."""


SILENT = Reporter()


def or_silent(reporter: Reporter | None) -> Reporter:
    """``reporter``, or one that shows nothing."""
    return SILENT if reporter is None else reporter
