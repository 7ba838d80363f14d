"""Time limits: one for the whole run (`max_run_seconds`), and shorter ones carved out of it (one call with its
retries, one Bulk job). The run asks its Deadline between batches, pages and polls, and caps every HTTP
timeout by the time left, so a hung server cannot hold a scheduled run past its slot.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from connector.errors import DeadlineReached

Clock = Callable[[], float]  # seconds, monotonic


class Deadline:
    """Ends `seconds` after it is made (never, when None), and never after its parent."""

    def __init__(
        self,
        seconds: float | None,
        *,
        clock: Clock = time.monotonic,
        what: str = "the run",
        parent: Deadline | None = None,
    ) -> None:
        self.clock = clock
        self.seconds = seconds
        self.what = what
        self.parent = parent
        self.started = clock()
        self.ends = math.inf if seconds is None else self.started + seconds

    def within(self, seconds: float | None, what: str) -> Deadline:
        """A shorter limit inside this one (a call and its retries, a Bulk job)."""
        return Deadline(seconds, clock=self.clock, what=what, parent=self)

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        own = self.ends - self.clock()
        return own if self.parent is None else min(own, self.parent.left())

    def binding(self) -> Deadline:
        """The limit that ends first: this one, or one of its parents."""
        if self.parent is None:
            return self
        outer = self.parent.binding()
        return outer if outer.ends <= self.ends else self

    @property
    def expired(self) -> bool:
        return self.left() <= 0

    def check(self, before: str) -> None:
        """Raise DeadlineReached when the run's own time is up (a shorter limit is the caller's to handle)."""
        run = self.root()
        if run.expired:
            raise run.reached(before)

    def root(self) -> Deadline:
        return self if self.parent is None else self.parent.root()

    def reached(self, before: str) -> DeadlineReached:
        limit = "" if self.seconds is None else f" of {self.seconds:.0f} s"
        return DeadlineReached(
            f"{self.what} reached its time limit{limit} (max_run_seconds) before {before}; it stopped cleanly and "
            "keeps what it wrote; the next run continues from there. Raise [salesforce] max_run_seconds if runs "
            "need longer, keeping it below the schedule's interval."
        )

    def cap(self, timeout: float) -> float:
        """`timeout`, or less when less time is left."""
        return max(0.0, min(timeout, self.left()))
