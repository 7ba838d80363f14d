"""What `calibrate` finds, as plain data: per outcome, each rung's rate with its interval and lift, each
criterion's rates met and not met, and which rungs are not earned. connector.commands.calibrate computes it; the
text, HTML and JSON views and `rules check` read it."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field

from connector.commands.calibrate_months import LeftOut

MIN_OBSERVATIONS = 200  # a rung compared with the one below only when both have this many contact-months
Z = 1.959963984540054  # 95%


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
        if not self.n:
            return None
        p, n = self.hits / self.n, self.n
        centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
        half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


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


@dataclass(frozen=True)
class Unearned:
    """A rung whose outcome rate is no better than the rung below's, both measured on enough contact-months."""

    outcome: str
    good: bool
    rung: int
    rung_name: str
    below: str
    rate: float
    rate_below: float
    n: int
    n_below: int


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
    """Every rung not better than the one below it on some outcome, where both rungs have `enough` contact-months
    (fewer cannot say so: a handful of contacts moves a rate by chance)."""
    out = []
    for t in cal.outcomes:
        for rung, below in t.inversions(enough=enough):
            i = next(k for k, r in enumerate(t.rows) if r.rung == rung)
            a, b = t.rows[i].all, t.rows[i - 1].all
            assert a.rate is not None
            assert b.rate is not None
            out.append(Unearned(t.name, t.good, i, rung, below, a.rate, b.rate, a.n, b.n))
    return out
