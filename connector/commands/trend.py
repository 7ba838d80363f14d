"""The ladder month by month: how many contacts stood on each rung on the first day of each of the last months,
read from their timelines (connector.engine.timeline), so a report shows a year of trend from the first sync on,
not one dot per past run.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from connector.engine import classify, session, sql, timeline
from connector.ruleset.compiler import RuleSet

MONTHS = 12
_DAYS = "tl_trend_days"
_COUNTS = "SELECT day, r, count(*) FROM tl_t_on_days GROUP BY day, r ORDER BY day, r"


def month_starts(as_of: dt.date, months: int = MONTHS) -> list[dt.date]:
    """The first day of each of the last `months` months, oldest first, and `as_of` itself."""
    first = as_of.replace(day=1)
    days = []
    for back in range(months - 1, -1, -1):
        year, month = divmod(first.year * 12 + first.month - 1 - back, 12)
        days.append(dt.date(year, month + 1, 1))
    return [*days, as_of] if as_of != first else days


def monthly(
    con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, months: int = MONTHS
) -> list[tuple[dt.date, dict[str, int]]]:
    """Contacts per rung on each day of `month_starts`, oldest first (those created by then)."""
    days = month_starts(as_of, months)
    session.lock(con)
    classify.classify(con, rules, as_of)
    try:
        for stmt in timeline.statements(rules):
            sql.run(con, stmt, {"as_of": as_of})
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_DAYS} (k INTEGER, day DATE)")
        con.executemany(f"INSERT INTO {_DAYS} VALUES (?, ?)", list(enumerate(days)))
        sql.run(con, timeline.on_days(_DAYS))
        found: dict[dt.date, dict[str, int]] = {d: {} for d in days}
        for day, rung, n in con.execute(_COUNTS).fetchall():
            found[day][rules.rungs[int(rung)].name] = int(n)
    finally:
        for name in (*timeline.scratch(rules), _DAYS):
            sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(name)))
    return [(d, found[d]) for d in days]
