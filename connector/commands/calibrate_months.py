"""Which months `calibrate` measures: the first day of each month whose horizon the CRM data can still show.

A month's first day D counts for an outcome only when D + horizon falls on or before the last day the data covers.
That day is the newest one the data shows something happening, capped at the evaluation date: a demo made
`--as-of` a past day and calibrated today ends months before today, and counting the months after its end would
read the silence after the data as contacts falling silent (every rung alike), so the ladder would look unearned.

"Something happening" is an activity (the day it happened, or the day it was logged if that is earlier: a meeting
scheduled weeks ahead is logged before its day, and until then it shows nothing about the months between), a won
deal's close, or an email bounce with its day. These are properties of the data, not of the rule file, so two rule
sets compared on one CRM (`simulate`) are measured on the same months. Both engines run the same tree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlglot import exp

from connector import sql

MONTHS = 36  # default period: three years of month starts, back from the last day the data covers

_ACTIVITY = "SELECT max(least(day, COALESCE($logged, day))) AS d FROM crm_activity WHERE day <= $as_of"
_DEALS = (
    'SELECT max("CloseDate") AS d FROM "Opportunity" '
    'WHERE "IsWon" AND NOT COALESCE("IsDeleted", false) AND "CloseDate" <= $as_of'
)
_BOUNCES = (
    'SELECT max(CAST("EmailBouncedDate" AS DATE)) AS d FROM "Contact" '
    'WHERE NOT COALESCE("IsDeleted", false) AND CAST("EmailBouncedDate" AS DATE) <= $as_of'
)


def month_days(since: dt.date, before: dt.date) -> list[dt.date]:
    """The first day of each month from `since` (its month's first day if later) to before `before`."""
    y, m = since.year, since.month
    if since.day > 1:
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    out = []
    while dt.date(y, m, 1) < before:
        out.append(dt.date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def default_since(last: dt.date, months: int = MONTHS) -> dt.date:
    """`months` months before the month of `last` (the last day the data covers), on its first day."""
    total = last.year * 12 + last.month - 1 - months
    return dt.date(total // 12, total % 12 + 1, 1)


def last_day_query(*, logged: bool, deals: bool, bounces: bool) -> exp.Expr:
    """The newest day the CRM data shows something happening, on or before `$as_of` (NULL for data without any).
    `logged`: `crm_activity` has LoggedDate; `deals`: the data holds Opportunity; `bounces`: Contact has
    EmailBouncedDate."""
    logged_day = sql.col("LoggedDate") if logged else sql.col("day")
    parts = [sql.q(_ACTIVITY, logged=logged_day, as_of=sql.as_of())]
    if deals:
        parts.append(sql.q(_DEALS, as_of=sql.as_of()))
    if bounces:
        parts.append(sql.q(_BOUNCES, as_of=sql.as_of()))
    union = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    return sql.q("SELECT max(d) AS last_day FROM ($u) t", u=union)


def covered(as_of: dt.date, newest: object) -> dt.date:
    """The last day the data covers: its newest day (a query's value), or the evaluation date if that is earlier
    or the data shows nothing."""
    if isinstance(newest, dt.datetime):
        newest = newest.date()
    return min(as_of, newest) if isinstance(newest, dt.date) else as_of


def measured(days: list[dt.date], horizon: int, last: dt.date) -> list[int]:
    """The indexes of `days` whose horizon the data covers (a prefix: the days are in order)."""
    return [k for k, d in enumerate(days) if d + dt.timedelta(days=horizon) <= last]


@dataclass(frozen=True)
class LeftOut:
    """The months of the period no outcome measures, and why, in one line."""

    days: list[dt.date]
    why: str


def what_to_try(since: dt.date, shortest: int, last: dt.date, *, since_given: bool = True) -> str:
    """When no month is measured: why (no month's first day from `since` has its `shortest` horizon end by `last`,
    the last day the data covers) and the options that would measure some, with the values that work: an earlier
    --since (when one was given: the default already reaches three years back), a shorter --horizon."""
    first = since if since.day == 1 else month_days(since, since + dt.timedelta(days=32))[0]
    latest = last - dt.timedelta(days=shortest)  # the latest first of a month this horizon can measure
    tries = []
    if since_given and latest >= dt.date.min + dt.timedelta(days=31):
        tries.append(f"an earlier --since (on or before {latest.replace(day=1).isoformat()})")
    if first < last:
        most = (last - first).days
        tries.append(f"a shorter --horizon (at most {most} day{'s' if most != 1 else ''} from {first.isoformat()})")
    why = (
        f"nothing measured: no first of a month from {since.isoformat()} is {shortest} days or more before "
        f"{last.isoformat()}, the last day the CRM data covers"
    )
    return f"{why}; try {' or '.join(tries)}" if tries else why


def left_out(days: list[dt.date], used: int, shortest: int, last: dt.date, as_of: dt.date) -> LeftOut | None:
    """`days[used:]`, which even the shortest horizon runs past the last day covered; None when there are none."""
    rest = days[used:]
    if not rest:
        return None
    span = rest[0].isoformat() if len(rest) == 1 else f"{rest[0].isoformat()} to {rest[-1].isoformat()}"
    ends = (
        "the evaluation date"
        if last == as_of
        else f"its newest activity, won deal or bounce; the evaluation date is {as_of.isoformat()}"
    )
    months = "1 month" if len(rest) == 1 else f"{len(rest)} months"
    why = (
        f"left out: {span} ({months}): the shortest horizon, {shortest} days, runs past {last.isoformat()}, the "
        f"last day the CRM data covers ({ends}), so what followed is not in the data yet"
    )
    return LeftOut(rest, why)
