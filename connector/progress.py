"""Progress for long runs: a live line per step on a terminal (rich), nothing extra when no one watches.

Off a terminal the log's step events (`sync.evaluated`, `sync.written`, ...) already say how far a run got, so
schedulers get plain JSON lines and no control characters. Every command that can run for more than a few
seconds shows one: sync, simulate, report, digest and import. A step's label is drawn as the step starts (not only
at the next tick), so someone watching sees which step a slow run is in.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


class Steps:
    """A run's named steps, shown as a bar that advances step by step."""

    def __init__(self, total: int, title: str, *, enabled: bool | None = None, console: Console | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.total = total
        self.title = title
        self._console = console

    def __enter__(self) -> Self:
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=self._console or Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.title, total=self.total)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, steps: int) -> None:
        """Steps found on the way (the files of an import, the owners of a digest)."""
        self.total += steps
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=self.total)

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=f"{self.title}: {label}")
            self._progress.refresh()
        yield
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)


def quiet() -> Steps:
    """Steps that show nothing: for a caller that has no terminal to show them on (tests, library use)."""
    return Steps(0, "", enabled=False)
