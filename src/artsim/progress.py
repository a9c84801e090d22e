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

import sys
from typing import TextIO


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


class _LineTask(Task):
    def __init__(self, stream: TextIO, description: str, total: int):
        self.stream, self.description, self.total, self.done = stream, description, total, 0
        self._shown = -1

    def advance(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        percent = 100 * self.done // max(self.total, 1)
        if percent // 10 != self._shown // 10 or self.done == self.total:
            self._shown = percent
            end = "\n" if self.done >= self.total else ""
            print(f"\r{self.description}: {self.done}/{self.total}", end=end, file=self.stream)

    def complete(self) -> None:
        if self.done < self.total:
            self.advance(self.total - self.done)


class LineReporter(Reporter):
    """Plain text on a stream (stderr by default): ``embedding images: 40/100``, for scripts and
    notebooks that want to see progress without a terminal toolkit."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr

    def task(self, description: str, total: int) -> Task:
        return _LineTask(self.stream, description, total)

    def note(self, text: str, level: str = "info") -> None:
        print(f"warning: {text}" if level == "warning" else text, file=self.stream)


def as_reporter(progress: bool | Reporter | None) -> Reporter:
    """``True`` -> :class:`LineReporter`, ``False``/``None`` -> silent, a reporter -> itself."""
    if isinstance(progress, Reporter):
        return progress
    return LineReporter() if progress else SILENT
