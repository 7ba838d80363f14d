"""Every contact's rung, and which criteria it met, on chosen past days, read from its timeline.

Calibration (and the demo's outcome generator) ask the same question of many days at once: where did each contact
stand on the first of each month? The timeline answers it for every day from one computation at the latest day
(`timeline.on_days`); this module runs that computation in the timeline's own batches of contacts, as a sync does,
so a million contacts fit the engine's memory, and keeps one row per contact and day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import duckdb
from sqlglot import exp

from connector import sql
from connector.engine import classify, session, timeline
from connector.engine.relations import criterion_col
from connector.engine.timeline._base import STATES, TODO
from connector.ruleset.compiler import RuleSet

DAYS = "tl_rd_days"  # k, day: the days asked about
OUT = "tl_rd_rungs"  # k, day, cid, r, and with criteria c_<rung>_<j> (met that day)

_ASKED = "SELECT o.k, o.day, o.cid, o.r{key} FROM tl_t_on_days o JOIN $todo t ON t.cid = o.cid"


def criteria(rules: RuleSet) -> list[tuple[int, int]]:
    """(rung, criterion) of every criterion, lowest rung first."""
    return [(r.index, j) for r in rules.rungs for j in range(len(r.criteria))]


def rows_of(rules: RuleSet, *, with_criteria: bool) -> exp.Expr:
    """`tl_rd_rungs`' rows from `tl_t_on_days`, for the contacts of `tl_t_todo` (a batch), with the criteria each
    met that day when asked."""
    crit = criteria(rules) if with_criteria else []
    if not crit:
        return sql.q(_ASKED.format(key=""), todo=sql.table(TODO))
    asked = sql.q(_ASKED.format(key=", o.tl_key"), todo=sql.table(TODO))
    # The criteria stand on the timeline's points: the last point on or before the day holds them.
    cols = ", ".join(f"COALESCE(q.{criterion_col(r, j)}, false) AS {criterion_col(r, j)}" for r, j in crit)
    return sql.q(
        f"SELECT a.k, a.day, a.cid, a.r, {cols} FROM ($asked) a "
        "ASOF LEFT JOIN $states q ON q.cid = a.tl_key AND CAST(a.day - DATE '1970-01-01' AS INTEGER) >= q.dn",
        asked=asked,
        states=sql.table(STATES),
    )


def compute(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    as_of: dt.date,
    days: list[dt.date],
    *,
    with_criteria: bool = False,
    each_batch: Callable[[], None] | None = None,
    classified: Callable[[], None] | None = None,
) -> int:
    """Fill `tl_rd_rungs` with each contact's rung (and criteria) on each of `days` (all on or before `as_of`), for
    the contacts created by then. Returns the number of rows. The connection is locked first (engine.session).

    `each_batch`: called after each batch of contacts with `tl_rd_rungs` holding that batch alone, so a caller that
    aggregates never holds a million contacts' months at once. `classified`: called once the activities are
    classified (`tl_act`), before the first batch."""
    session.lock(con)
    classify.classify(con, rules, as_of)
    if classified is not None:
        classified()
    params = {"as_of": as_of}
    con.execute(f"CREATE OR REPLACE TEMP TABLE {DAYS} (k INTEGER, day DATE)")
    con.executemany(f"INSERT INTO {DAYS} VALUES (?, ?)", list(enumerate(days)))
    body = rows_of(rules, with_criteria=with_criteria)
    try:
        # Every live contact is to compute (nothing is cached for the days asked about), in the sync's batches.
        sql.run(con, sql.create_temp(timeline.TODO_ALL, sql.q('SELECT "Id" AS cid FROM crm_contact')))
        pooled, middle, _tail = timeline.cached_rendered(rules)
        todo = int(sql.scalar(con, sql.q("SELECT count(*) FROM $t", t=sql.table(timeline.TODO_ALL))))
        batches = max(1, -(-todo // timeline.BATCH))
        sql.run_each(con, pooled, params)
        rows = 0
        for i in range(batches):
            sql.run(con, timeline.batch(batches, i), params)
            sql.run_each(con, middle, params)
            sql.run(con, timeline.on_days(DAYS, batch=True), params)
            if i == 0 or each_batch is not None:
                sql.run(con, sql.create_temp(OUT, body))
            else:
                sql.run(con, exp.insert(body.copy(), sql.table(OUT)))
            rows += int(sql.scalar(con, sql.q("SELECT count(*) FROM $t", t=sql.table(OUT))))
            if each_batch is not None:
                each_batch()
    finally:
        sql.run_each(con, timeline.dropped(rules, timeline.TODO_ALL))
    return rows if each_batch is not None else int(sql.scalar(con, sql.q("SELECT count(*) FROM $t", t=sql.table(OUT))))
