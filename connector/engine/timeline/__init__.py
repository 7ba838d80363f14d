"""Each contact's rungs and flags over its whole history, computed once, set-based, exact to the day.

A contact's rung and flags can change only on a few days: the days of its activities, the days an activity leaves a
window (its day + N for each `within_days` of a feature that counts it, + m x period for `distinct_periods`), the day
a trigger of an `unanswered` feature becomes old enough or leaves its window, and the days a condition over `as_of`
crosses its threshold (for `relationship_days >= 365`: the first conversation + 365). Those days are the contact's
*points* (`tl_t_pts`); between two points nothing a condition reads can change. The features are computed on every
point at once by window frames over day numbers (`RANGE BETWEEN N-1 PRECEDING AND CURRENT ROW` is `within_days: N`;
counts over the same frame share one sum), and a `distinct_periods` from a table of the contact's calendar periods
(`_points._periods`), never by copying the history once per day; then the flags, the criteria and the rung each
point qualifies for, with the very condition trees a snapshot evaluation uses, `$as_of` read from the point's own
day.

The demotion grace and decay read the same timeline. A contact keeps the highest rung it met within the last
`demotion_grace_days`; past that it drops one rung, and one more every `decay_every_days`, counted from the last day
it met that rung; never below the rung it qualifies for. So the rung shown on a day depends only on the history up
to that day and the rules, never on which days a sync ran or whether its writes landed.

From the rung timeline (`tl_t_rung`, refined by the days a held rung drops) come, for the evaluation day: the rung,
since when it has stood there (the first day of its current run, for every rung including the lowest), the day a held
contact drops if nothing happens, since when each open flag has been open, and the next day anything can change
without new activity (`tl_timeline`, one row per contact; engine.evaluate reads it).

Activities dated after the evaluation date are never counted (engine.classify), so the points after it show what
happens if nothing new is logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
from sqlglot import exp

from connector import sql
from connector.engine import answers
from connector.engine.relations import (
    TIMELINE,
    flag_since_col,
)
from connector.engine.timeline._base import (
    BATCH,
    CACHE,
    CACHE_COLUMNS,
    FINGERPRINTS,
    FRESH,
    NOW,
    NOW_ALL,
    POINTS,
    SCRATCH,
    TODO,
    TODO_ALL,
    TRIGGERS,
    _needed,
    _numbered,
    _plan,
    lookahead,
)
from connector.engine.timeline._points import (
    _days,
    _periods,
    _points,
    _pooled,
    _unanswered_statements,
)
from connector.engine.timeline._rungs import (
    _drops,
    _now,
    _rungs,
    on_days,
)
from connector.engine.timeline._states import (
    _grid,
    _states,
)
from connector.ruleset.compiler import RuleSet

__all__ = [
    "BATCH",
    "CACHE",
    "CACHE_COLUMNS",
    "FINGERPRINTS",
    "FRESH",
    "TODO",
    "TODO_ALL",
    "batch",
    "cached_parts",
    "cached_rendered",
    "collect",
    "dropped",
    "load_cache",
    "on_days",
    "rendered",
    "scratch",
    "statements",
    "unsure",
]


def statements(
    rules: RuleSet, *, cached: bool = False, lookahead: int | None = None, answered: Mapping[str, str] | None = None
) -> list[exp.Expr]:
    """`answered`: the tables of connector.engine.answers already made for the same contacts (engine.features
    makes them: `features.answered_tables`), by feature name; the others are made here."""
    return _statements(rules, cached=cached, lookahead=lookahead, answered=answered)[1]


def rendered(rules: RuleSet, *, answered: Mapping[str, str] | None = None) -> list[sql.Rendered]:
    """`statements(rules)` as DuckDB runs them, built and rendered once per rule set and `answered`."""
    key = ("timeline", tuple(sorted((answered or {}).items())))
    return rules.memo.keep(key, lambda: sql.rendered_each(statements(rules, answered=answered)))


def _statements(
    rules: RuleSet, *, cached: bool = False, lookahead: int | None = None, answered: Mapping[str, str] | None = None
) -> tuple[list[exp.Expr], list[exp.Expr]]:
    """From the classified activities (`tl_act`) and the contacts to `tl_timeline`. `$as_of` is the only
    parameter. `cached`: `tl_timeline_cache` holds rows of these rules computed earlier (see `load_cache`); only
    the contacts whose history or fields changed since, or whose next change day has come, are computed, and
    `tl_timeline_new` holds their rows to keep. `lookahead`: see `_base.lookahead`."""
    p = _plan(rules, lookahead)
    p.cached = cached
    unans_stmts, unanswered = _unanswered_statements(p, {} if cached else answered or {})
    placeholder = exp.select(exp.Star()).from_(sql.table(POINTS))
    _states(p, unanswered, placeholder)  # registers the window aggregates and kind sets the features read
    states = _states(p, unanswered, _grid(p))
    points = _points(p)
    tail = [_reused(rules), _fresh(rules)] if cached else []
    pooled = _pooled(p, answered or {}) if cached else []  # made last: every kind set is known by now
    return pooled, [
        _days(p),
        *_periods(p),
        points,
        *unans_stmts,
        states,
        _drops(rules),
        _rungs(rules),
        _now(rules, cached=cached, lookahead=lookahead),
        *tail,
    ]


def _reused(rules: RuleSet) -> exp.Expr:
    """`tl_timeline`: the computed rows, and the cached rows of every other live contact (`tl_t_fp`)."""
    cols = [sql.col(n) for n, _ in TIMELINE.columns]
    flags = [
        sql.alias(
            sql.q("CAST(NULLIF(split_part(k.flag_since, ';', $i), '') AS DATE)", i=i + 1),
            flag_since_col(f.id),
        )
        for i, f in enumerate(rules.flags)
    ]
    cached = (
        exp.select(*(sql.col(n, "k") for n, _ in TIMELINE.columns), *flags)
        .from_(exp.alias_(sql.table(CACHE), "k"))
        .join(exp.alias_(sql.table(FINGERPRINTS), "f"), on=sql.q("f.cid = k.cid"))
        .where(sql.q("k.cid NOT IN (SELECT cid FROM $todo)", todo=sql.table(TODO_ALL)))
    )
    fresh = exp.select(*cols, *(sql.col(flag_since_col(f.id)) for f in rules.flags)).from_(sql.table(NOW_ALL))
    return sql.create_temp(TIMELINE.name, exp.union(fresh, cached, distinct=False))


def _fresh(rules: RuleSet) -> exp.Expr:
    """The computed rows, as the state store keeps them (`ph` is set once they are placed: engine.scope)."""
    days = [sql.q("COALESCE(CAST($d AS VARCHAR), '')", d=sql.col(flag_since_col(f.id), "n")) for f in rules.flags]
    flag_since = sql.func("concat_ws", sql.lit(";"), *days) if days else sql.lit("")
    body = sql.q(
        "SELECT n.cid, f.fp, CAST(NULL AS UBIGINT) AS ph, CAST($as_of AS DATE) AS as_of, n.final, n.qualified_now, "
        "n.in_grace, n.since, n.held_until, LEAST(n.next_change, f.nf) AS next_change, n.previous, "
        "$flag_since AS flag_since FROM $now n JOIN $fp f ON f.cid = n.cid",
        as_of=sql.as_of(),
        flag_since=flag_since,
        now=sql.table(NOW_ALL),
        fp=sql.table(FINGERPRINTS),
    )
    return sql.create_temp(FRESH, body)


def cached_parts(
    rules: RuleSet, *, ahead: bool = True, answered: Mapping[str, str] | None = None
) -> tuple[list[exp.Expr], list[exp.Expr], list[exp.Expr]]:
    """The cached form of `statements` in three parts, for the contacts of `tl_t_todo_all` (connector.engine.scope
    makes it, and narrows the engine's inputs to them): what every batch reads, made once; the timeline of one
    batch (`tl_t_todo` -> `tl_t_now`, run once per `batch`, then `collect`); and `tl_timeline` with the rows to
    keep. Batches of at most BATCH contacts bound the memory a first sync of a large org needs. `ahead`: follow
    the days after the evaluation day only as far as the lookahead (`_base.lookahead`); then `unsure()` names the
    contacts to compute again without it. `answered`: see `_points._pooled`."""
    pooled, full = _statements(rules, cached=True, lookahead=lookahead(rules) if ahead else None, answered=answered)
    return pooled, full[:-2], full[-2:]


Parts = tuple[list[sql.Rendered], list[sql.Rendered], list[sql.Rendered]]


def cached_rendered(rules: RuleSet, *, ahead: bool = True, answered: Mapping[str, str] | None = None) -> Parts:
    """`cached_parts` as DuckDB runs them, built and rendered once per rule set and arguments."""

    def build() -> Parts:
        pooled, body, tail = cached_parts(rules, ahead=ahead, answered=answered)
        return sql.rendered_each(pooled), sql.rendered_each(body), sql.rendered_each(tail)

    return rules.memo.keep(("timeline.cached", ahead, tuple(sorted((answered or {}).items()))), build)


def unsure() -> list[exp.Expr]:
    """Take the contacts the lookahead left unsure (a held contact that qualifies again on its own) out of
    `tl_t_now_all` into `tl_t_todo`, to be computed again (`cached_parts(ahead=False)`, `collect`)."""
    return [
        sql.create_temp(TODO, sql.q(_numbered("unsure"), all=sql.table(NOW_ALL))),
        sql.q("DELETE FROM $all WHERE unsure", all=sql.table(NOW_ALL)),
    ]


def batch(batches: int, index: int) -> exp.Expr:
    """`tl_t_todo`: the contacts of one batch of `tl_t_todo_all`, a range of their batch key `h` (a hash of the
    Id; its top 24 bits say the batch)."""
    return sql.create_temp(
        TODO,
        sql.q(
            _numbered("((hash(cid) >> 40) * $n) >> 24 = $i"),
            all=sql.table(TODO_ALL),
            n=batches,
            i=index,
        ),
    )


def collect(*, first: bool) -> exp.Expr:
    """Add the batch's rows to `tl_t_now_all`."""
    if first:
        return sql.create_temp(NOW_ALL, sql.q("SELECT * FROM $now", now=sql.table(NOW)))
    return sql.q("INSERT INTO $all SELECT * FROM $now", all=sql.table(NOW_ALL), now=sql.table(NOW))


def load_cache(con: duckdb.DuckDBPyConnection, rows: Any | None) -> None:
    """Make `tl_timeline_cache` from the rows the state store gave (`Store.timeline_cache`; None: empty)."""
    columns = ", ".join(f"{sql.render(sql.col(n))} {t}" for n, t in CACHE_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {CACHE} ({columns})")
    if rows and len(rows["cid"]):
        con.register("tl_cache_rows", rows)
        casts = ", ".join(f"CAST({sql.render(sql.col(n))} AS {t})" for n, t in CACHE_COLUMNS)
        con.execute(f"INSERT INTO {CACHE} SELECT {casts} FROM tl_cache_rows")
        con.unregister("tl_cache_rows")


def dropped(rules: RuleSet, *more: str) -> list[sql.Rendered]:
    """`DROP TABLE IF EXISTS` for each of the timeline's own tables (`scratch`) and `more`."""
    return rules.memo.keep(
        ("timeline.dropped", more),
        lambda: sql.rendered_each(sql.q("DROP TABLE IF EXISTS $t", t=sql.table(n)) for n in (*scratch(rules), *more)),
    )


def scratch(rules: RuleSet) -> list[str]:
    """The timeline's own tables, dropped after a run (the cache and the rows to keep are the caller's)."""
    n = sum(1 for f in _needed(rules) if f.spec.type == "unanswered")
    p = _plan(rules)
    return [
        *(p.period_table(c, per) or "" for c, per in p.periods),
        *SCRATCH,
        "tl_t_on_days",
        FINGERPRINTS,
        TODO_ALL,
        TODO,
        NOW,
        NOW_ALL,
        *(f"tl_t_u{i}" for i in range(n)),
        *(f"{TRIGGERS}{i}" for i in range(n)),
        *(f"tl_t_uo{i}" for i in range(n)),
        *(t for i in range(n) for t in answers.tables(f"tl_t_ans{i}")),
    ]
