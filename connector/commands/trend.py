"""The ladder month by month: how many contacts stood on each rung on the first day of each of the last months,
read from their timelines (connector.engine.timeline), so a report shows a year of trend from the first sync on,
not one dot per past run.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from connector import sql
from connector.engine import classify, session, timeline
from connector.ruleset.compiler import RuleSet

MONTHS = 12
_DAYS = "tl_trend_days"
_COUNTS = "SELECT day, owner, r, count(*) FROM tl_t_on_days GROUP BY day, owner, r ORDER BY day, owner, r"

Months = list[tuple[dt.date, dict[str, int]]]  # (day, contacts per rung), oldest first


def month_starts(as_of: dt.date, months: int = MONTHS) -> list[dt.date]:
    """The first day of each of the last `months` months, oldest first, and `as_of` itself."""
    first = as_of.replace(day=1)
    days = []
    for back in range(months - 1, -1, -1):
        year, month = divmod(first.year * 12 + first.month - 1 - back, 12)
        days.append(dt.date(year, month + 1, 1))
    return [*days, as_of] if as_of != first else days


def monthly(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, months: int = MONTHS) -> Months:
    """Contacts per rung on each day of `month_starts`, oldest first (those created by then)."""
    return org_wide(by_owner(con, rules, as_of, months))


def org_wide(owners: dict[str, Months]) -> Months:
    """The owners' counts summed, day by day (every owner's list has the same days)."""
    days = [d for d, _ in next(iter(owners.values()), [])]
    total: dict[dt.date, dict[str, int]] = {d: {} for d in days}
    for months in owners.values():
        for day, counts in months:
            for rung, n in counts.items():
                total[day][rung] = total[day].get(rung, 0) + n
    return [(d, total[d]) for d in days]


def by_owner(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, months: int = MONTHS) -> dict[str, Months]:
    """Per owner (OwnerId, '' for none), contacts per rung on each day of `month_starts`, oldest first: the
    report's owner filter narrows the trend too. An org with no contact has one owner, '', with empty counts."""
    days = month_starts(as_of, months)
    session.lock(con)
    classify.classify(con, rules, as_of)
    try:
        sql.run_each(con, timeline.rendered(rules), {"as_of": as_of})
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_DAYS} (k INTEGER, day DATE)")
        con.executemany(f"INSERT INTO {_DAYS} VALUES (?, ?)", list(enumerate(days)))
        sql.run(con, timeline.on_days(_DAYS))
        found: dict[str, dict[dt.date, dict[str, int]]] = {}
        for day, owner, rung, n in con.execute(_COUNTS).fetchall():
            per_day = found.setdefault(str(owner), {d: {} for d in days})
            per_day[day][rules.rungs[int(rung)].name] = int(n)
    finally:
        sql.run_each(con, timeline.dropped(rules, _DAYS))
    if not found:
        found[""] = {d: {} for d in days}
    return {owner: [(d, per_day[d]) for d in days] for owner, per_day in found.items()}
