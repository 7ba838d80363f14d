"""What `calibrate` finds, as plain data: per outcome, each rung's rate with its interval and lift, each
criterion's rates met and not met, and which rungs are not earned. connector.commands.calibrate computes it; the
text, HTML and JSON views and `rules check` read it."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field

from connector.commands.calibrate_months import LeftOut

RECENT_MONTHS = 6  # out of time: each outcome's most recent months, reported apart from the earlier (tuning) ones
MIN_OBSERVATIONS = 200  # rules check compares a rung with the one below only when both have this many contact-months
Z = 1.959963984540054  # 95%

# How a rung stands against the one below it on an outcome (above it for a good outcome, below for a bad one).
CLEARLY = "clearly"  # better, and the 95% intervals apart: earned
NOT_CLEARLY = "not clearly"  # better, but the intervals overlap: the difference may be chance
NOT_BETTER = "not"  # the same or worse
UNMEASURED = "unmeasured"  # one of the two has no contact-month


def wilson(hits: int, n: int, z: float = Z) -> tuple[float, float] | None:
    """The Wilson score interval of `hits` in `n` at the normal quantile `z` (right for rates near 0 or 1 and small
    counts, where the normal approximation is not); None without any observation."""
    if not n:
        return None
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    n: int
    hits: int

    @property
    def rate(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson score interval."""
        return wilson(self.hits, self.n)


@dataclass(frozen=True)
class RungRow:
    rung: str
    all: Rate  # every eligible day
    tuning: Rate  # the earlier days
    recent: Rate  # the last RECENT_MONTHS days
    contacts: int  # distinct contacts among the contact-months
    lift: float | None  # rate over the rung below's


@dataclass(frozen=True)
class CriterionRow:
    rung: str
    says: str
    met: Rate
    not_met: Rate


@dataclass(frozen=True)
class Step:
    """One rung against the one below it on one outcome: `standing` is CLEARLY, NOT_CLEARLY, NOT_BETTER or
    UNMEASURED."""

    rung: str
    below: str
    standing: str
    row: RungRow
    row_below: RungRow


def apart(a: Rate, b: Rate) -> bool:
    """Whether the two rates' 95% intervals do not overlap."""
    x, y = a.interval, b.interval
    return x is not None and y is not None and (x[1] < y[0] or y[1] < x[0])


@dataclass
class OutcomeTable:
    name: str
    says: str
    good: bool
    horizon_days: int
    first_day: dt.date | None
    last_day: dt.date | None
    recent_from: dt.date | None
    rows: list[RungRow]
    criteria: list[CriterionRow]
    declared_horizon_days: int = 0  # the rule file's; horizon_days differs when `--horizon` set another
    months: int = 0  # how many months' first days were measured

    @property
    def horizon_set(self) -> bool:
        """Whether the horizon measured is not the rule file's (`--horizon`)."""
        return bool(self.declared_horizon_days) and self.declared_horizon_days != self.horizon_days

    def inversions(self, *, enough: int = 1) -> list[tuple[str, str]]:
        """(rung, rung below) pairs out of order, among rungs with at least `enough` contact-months each."""
        out = []
        for below, row in zip(self.rows, self.rows[1:], strict=False):
            a, b = below.all, row.all
            if a.n < enough or b.n < enough or a.rate is None or b.rate is None:
                continue
            if (b.rate <= a.rate) if self.good else (b.rate >= a.rate):
                out.append((row.rung, below.rung))
        return out

    @property
    def ordered(self) -> bool:
        return not self.inversions()

    def steps(self) -> list[Step]:
        """Each rung against the one below it: clearly better (the intervals apart), better but not clearly (they
        overlap: may be chance), not better, or not measured (a rung without contact-months)."""
        out = []
        for below, row in zip(self.rows, self.rows[1:], strict=False):
            a, b = below.all, row.all
            if a.rate is None or b.rate is None:
                standing = UNMEASURED
            elif (b.rate <= a.rate) if self.good else (b.rate >= a.rate):
                standing = NOT_BETTER
            else:
                standing = CLEARLY if apart(a, b) else NOT_CLEARLY
            out.append(Step(row.rung, below.rung, standing, row, below))
        return out

    @property
    def earned(self) -> bool:
        """Every rung clearly better than the one below it."""
        return all(s.standing == CLEARLY for s in self.steps())


@dataclass(frozen=True)
class Unearned:
    """A rung not clearly better than the rung below on an outcome (`standing`: NOT_BETTER or NOT_CLEARLY), both
    measured on enough contact-months."""

    outcome: str
    good: bool
    rung: int
    rung_name: str
    below: str
    rate: Rate
    rate_below: Rate
    standing: str


@dataclass
class Calibration:
    as_of: dt.date
    since: dt.date
    rules_version: str
    rungs: list[str]
    days: list[dt.date]
    outcomes: list[OutcomeTable]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    last_day: dt.date | None = None  # the last day the CRM data covers: no measured month's horizon runs past it
    left: LeftOut | None = None  # the months of the period not measured, and why
    empty: str | None = None  # when no month is measured: why, and what to try (calibrate_months.what_to_try)


def says_within(says: str, declared: int, measured: int) -> str:
    """An outcome's words for the horizon measured: "within 180 days" reads "within 90 days" under `--horizon 90`
    (the rule file's number of days, wherever its words give it, becomes the one measured), so the table never
    prints a horizon it did not measure."""
    if declared == measured:
        return says

    def swap(m: re.Match[str]) -> str:
        sep = m.group(1)
        unit = "day" if sep == "-" or measured == 1 else "days"
        return f"{measured}{sep}{unit}"

    return re.sub(rf"\b{declared}(\s+|-)days?\b", swap, says)


def unearned(cal: Calibration, enough: int = MIN_OBSERVATIONS) -> list[Unearned]:
    """Every rung not clearly better than the one below it on some outcome (not better, or better within the
    intervals), where both rungs have `enough` contact-months: fewer cannot say so, a handful of contacts moves a
    rate by chance."""
    out = []
    for t in cal.outcomes:
        for i, step in enumerate(t.steps(), start=1):
            if step.standing not in (NOT_BETTER, NOT_CLEARLY):
                continue
            if step.row.all.n < enough or step.row_below.all.n < enough:
                continue
            out.append(
                Unearned(t.name, t.good, i, step.rung, step.below, step.row.all, step.row_below.all, step.standing)
            )
    return out
