"""Each contact's rungs and flags over its whole history, computed once, set-based, exact to the day.

A contact's rung and flags can change only on a few days: the days of its activities, the days an activity leaves a
window (its day + N for each `within_days` of a feature that counts it, + m x period for `distinct_periods`), the day
a trigger of an `unanswered` feature becomes old enough or leaves its window, and the days a condition over `as_of`
crosses its threshold (for `relationship_days >= 365`: the first conversation + 365). Those days are the contact's
*points* (`tl_t_pts`); between two points nothing a condition reads can change. The features are computed on every
point at once by window frames over day numbers (`RANGE BETWEEN N-1 PRECEDING AND CURRENT ROW` is `within_days: N`),
never by copying the history once per day; then the flags, the criteria and the rung each point qualifies for, with
the very condition trees a snapshot evaluation uses, `$as_of` read from the point's own day.

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

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlglot import exp

from connector.engine import sql
from connector.engine.relations import (
    CLASSIFIED,
    CONTACTS,
    TIMELINE,
    criterion_col,
    feature_col,
    flag_col,
    flag_since_col,
    kind_col,
)
from connector.ruleset.compiler import CompiledFeature, RuleSet, period_days
from connector.ruleset.expr import Type

EPOCH = dt.date(1970, 1, 1)
MAX_OFFSET = 2 * 36_500  # days: no threshold beyond two hundred years can flip within a contact's history
RUNG_BITS = 16  # a rung index is below this (schema.MAX_RUNGS is 12): `dn * 16 + rung` carries both in one number

DAYS = "tl_t_day"  # per contact and activity day: how many activities of each kind set
POINTS = "tl_t_pts"  # per contact: the days its rung or flags can change
STATES = "tl_t_q"  # per contact and point: features, flags, criteria, the rung it qualifies for
RUNGS = "tl_t_rung"  # per contact and point (and each day a held rung drops): the rung it stands on
SCRATCH = (DAYS, POINTS, STATES, RUNGS, "tl_t_drop")


def _dn(date: exp.Expr) -> exp.Expr:
    """A date as a day number, the order key of every window frame."""
    return exp.cast(exp.Sub(this=date, expression=sql.lit(EPOCH)), exp.DataType.Type.INT)


def _date(dn: exp.Expr) -> exp.Expr:
    return exp.cast(
        exp.Add(this=sql.lit(EPOCH), expression=exp.cast(dn, exp.DataType.Type.INT)), exp.DataType.Type.DATE
    )


def _window(
    agg: exp.Expr, kind: str, start: int | None, end: int | None, *, order: Iterable[exp.Expr] = ()
) -> exp.Window:
    """`agg OVER (PARTITION BY cid ORDER BY dn kind BETWEEN start PRECEDING AND end PRECEDING)`; None for
    UNBOUNDED (start) or CURRENT ROW (end)."""
    spec = exp.WindowSpec(
        kind=kind,
        start="UNBOUNDED" if start is None else sql.lit(start),
        start_side="PRECEDING",
        end="CURRENT ROW" if end is None or end == 0 else sql.lit(end),
        end_side=None if end is None or end == 0 else "PRECEDING",
    )
    keys = [exp.Ordered(this=sql.col("dn"), nulls_first=False), *order]
    return exp.Window(this=agg, partition_by=[sql.col("cid")], order=exp.Order(expressions=keys), spec=spec)


def _over(agg: exp.Expr, *, order: Iterable[exp.Expr] = (), following: bool = False) -> exp.Window:
    """A window with no frame (lead, lag, row_number), or the rows from this one on (`following`)."""
    keys = [exp.Ordered(this=sql.col("dn"), nulls_first=False), *order]
    spec = (
        exp.WindowSpec(kind="ROWS", start="CURRENT ROW", end="UNBOUNDED", end_side="FOLLOWING") if following else None
    )
    return exp.Window(this=agg, partition_by=[sql.col("cid")], order=exp.Order(expressions=keys), spec=spec)


@dataclass
class _Plan:
    """What the rules need of the timeline: kind sets to count per day, window aggregates, and where points come
    from."""

    rules: RuleSet
    kindsets: dict[frozenset[str], str] = field(default_factory=dict)  # kind set -> per-day count column
    windows: dict[tuple[str, str, str, int | None, int | None], tuple[str, exp.Expr]] = field(default_factory=dict)
    exits: set[tuple[str, int]] = field(default_factory=set)  # (count column, days after an activity)
    linked: dict[str, set[int]] = field(default_factory=dict)  # date feature -> day offsets of as_of thresholds
    features: list[CompiledFeature] = field(default_factory=list)  # those the conditions read, in dependency order
    cached: bool = False  # only the contacts of `tl_t_todo` are computed; the others come from the cache

    def count(self, kinds: Iterable[str]) -> str:
        key = frozenset(kinds)
        if key not in self.kindsets:
            self.kindsets[key] = f"n_{len(self.kindsets)}"
        return self.kindsets[key]

    def window(self, agg: str, n: str, kind: str, start: int | None, end: int | None) -> exp.Expr:
        """A window aggregate over a count column, made once however many features use it."""
        key = (agg, n, kind, start, end)
        if key not in self.windows:
            value: exp.Expr
            if agg == "sum":
                value = exp.Sum(this=sql.col(n))
            else:  # min/max of the point's day where such activity happened: first and last
                cond = exp.GT(this=sql.col(n), expression=sql.lit(0))
                day = sql.case([(cond, sql.col("as_of"))])
                value = exp.Min(this=day) if agg == "min" else exp.Max(this=day)
            self.windows[key] = (f"w_{len(self.windows)}", _window(value, kind, start, end))
        return sql.col(self.windows[key][0])


def _names(tree: exp.Expr) -> set[str]:
    return {c.name for c in tree.find_all(exp.Column)}


def _reads_as_of(tree: exp.Expr) -> bool:
    return any(p.name == sql.AS_OF_PARAM for p in tree.find_all(exp.Placeholder))


def _conditions(rules: RuleSet) -> list[exp.Expr]:
    return [f.compiled.expr for f in rules.flags] + [c.compiled.expr for r in rules.rungs for c in r.criteria]


def _needed(rules: RuleSet) -> list[CompiledFeature]:
    """The features the flags and criteria read, with those the expr features among them read, in rule order."""
    by_col = {feature_col(n): n for n in rules.features}
    want = {by_col[c] for t in _conditions(rules) for c in _names(t) if c in by_col}
    for f in reversed(list(rules.features.values())):  # dependency order: users after what they use
        if f.name in want and f.expr is not None:
            want |= {n for n in f.expr.names if n in rules.features}
    return [f for f in rules.features.values() if f.name in want]


def _thresholds(rules: RuleSet, needed: list[CompiledFeature]) -> dict[str, set[int]]:
    """For each date feature a condition compares with `as_of` (directly or through expr features), the day
    offsets at which such a comparison can flip: every number of the comparison, as days after the date (and
    before it, for a Contact field, which may lie ahead)."""
    names = {f.name: f for f in needed}
    by_col = {feature_col(n): n for n in names}
    dep: dict[str, bool] = {}  # expr feature -> whether it reads as_of
    dates: dict[str, set[str]] = {}  # feature -> the date features it reads (itself for a date feature)
    for f in needed:
        if f.expr is not None:
            used = [n for n in f.expr.names if n in names]
            dep[f.name] = _reads_as_of(f.expr.expr) or any(dep.get(n, False) for n in used)
            dates[f.name] = {d for n in used for d in dates.get(n, set())}
        elif f.type == Type.DATE:
            dates[f.name] = {f.name}
    out: dict[str, set[int]] = {}
    trees = _conditions(rules) + [f.expr.expr for f in needed if f.expr is not None]
    comparisons = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)
    for tree in trees:
        for node in tree.find_all(*comparisons):
            used = [by_col[c] for c in _names(node) if c in by_col]
            if not (_reads_as_of(node) or any(dep.get(n, False) for n in used)):
                continue
            linked = {d for n in used for d in dates.get(n, set())}
            consts = _numbers(node)
            for n in used:  # numbers inside the expr features the comparison reads
                f = names[n]
                if f.expr is not None:
                    consts |= _numbers(f.expr.expr)
            for d in linked:
                field_date = names[d].spec.type == "field"
                offs = out.setdefault(d, set())
                for c in consts:
                    for o in (c, c + 1, -c, -c + 1):
                        if o > 0 or (field_date and o != 0):
                            offs.add(o)
    return out


def _numbers(tree: exp.Expr) -> set[int]:
    """The whole numbers a threshold of `tree` can put a change day at: its numeric literals, rounded both ways;
    none beyond MAX_OFFSET days (a comparison with 1e308 never flips within a history)."""
    out: set[int] = set()
    for lit in tree.find_all(exp.Literal):
        if lit.is_string:
            continue
        try:
            value = float(lit.this)
        except ValueError:
            continue
        if math.isfinite(value) and abs(value) <= MAX_OFFSET:
            out |= {math.floor(value), math.ceil(value)}
    return out


def _plan(rules: RuleSet) -> _Plan:
    p = _Plan(rules)
    p.features = _needed(rules)
    p.linked = _thresholds(rules, p.features)
    for f in p.features:
        s = f.spec
        if s.type in ("count", "first", "last") and s.within_days:
            p.exits.add((p.count(s.count or s.first or s.last or []), s.within_days))
        if s.type == "ratio" and s.within_days:
            p.exits.add((p.count(s.ratio or []), s.within_days))
            p.exits.add((p.count(s.per or []), s.within_days))
        if s.type == "distinct_periods":
            n = p.count(s.distinct_periods or [])
            for m in range(1, (s.periods or 0) + 1):
                p.exits.add((n, m * period_days(s)))
        if s.type == "unanswered":
            n = p.count(s.unanswered or [])
            p.count(s.answered_by or [])
            p.exits.add((n, (s.older_than_days or 0) + 1))
            if s.within_days:
                p.exits.add((n, s.within_days))
        if s.type in ("count", "first", "last", "ratio", "distinct_periods"):
            for kinds in (s.count, s.first, s.last, s.ratio, s.per, s.distinct_periods):
                if kinds:
                    p.count(kinds)
    p.exits = {(n, o) for n, o in p.exits if o > 0}
    return p


def _any_kind(kinds: Iterable[str]) -> exp.Expr:
    return sql.any_of(sql.col(kind_col(k)) for k in sorted(kinds))


def _days(p: _Plan) -> exp.Expr:
    counts = [
        sql.alias(exp.Filter(this=sql.q("count(*)"), expression=exp.Where(this=_any_kind(ks))), n)
        for ks, n in p.kindsets.items()
    ]
    body = sql.select(sql.col("cid"), sql.alias(_dn(sql.col("day")), "dn"), *counts, from_=CLASSIFIED.name)
    if p.cached:
        body = body.where(_in_todo("cid"))
    return sql.create_temp(DAYS, body.group_by(sql.col("cid"), sql.col("day")))


def _values(rows: Sequence[tuple[int, ...]], alias: str, columns: list[str]) -> exp.Expr:
    return exp.Values(
        expressions=[exp.Tuple(expressions=[sql.lit(v) for v in row]) for row in rows],
        alias=exp.TableAlias(this=sql.ident(alias), columns=[sql.ident(c) for c in columns]),
    )


def _points(p: _Plan) -> exp.Expr:
    """Every day a contact's rung or flags can change, and two more: the day its record was created (where its
    lowest rung starts) and the evaluation day."""
    branches: list[exp.Expr] = [
        sql.select(sql.col("cid"), sql.col("dn"), from_=DAYS),
        sql.q(
            'SELECT "Id" AS cid, $dn AS dn FROM $contacts WHERE "CreatedDate" IS NOT NULL AND $todo',
            dn=_dn(exp.cast(sql.col("CreatedDate"), exp.DataType.Type.DATE)),
            contacts=sql.table(CONTACTS.name),
            todo=_in_todo("Id") if p.cached else exp.true(),
        ),
        sql.q(
            'SELECT "Id" AS cid, $dn AS dn FROM $contacts WHERE $todo',
            dn=_dn(sql.as_of()),
            contacts=sql.table(CONTACTS.name),
            todo=_in_todo("Id") if p.cached else exp.true(),
        ),
    ]
    exits = sorted(p.exits)
    if exits:
        cols = sorted({n for n, _ in exits})
        which = {n: i for i, n in enumerate(cols)}
        cond = sql.any_of(
            exp.and_(sql.q("x.k = $i", i=which[n]), exp.GT(this=sql.col(n, "d"), expression=sql.lit(0))) for n in cols
        )
        body = (
            exp.select(sql.col("cid", "d"), sql.alias(sql.q("d.dn + x.o"), "dn"))
            .from_(exp.alias_(sql.table(DAYS), "d"))
            .join(_values([(which[n], o) for n, o in exits], "x", ["k", "o"]), join_type="cross")
            .where(cond)
        )
        branches.append(body)
    for name, offsets in sorted(p.linked.items()):
        if offsets:
            branches.append(_threshold_points(p, name, sorted(offsets)))
    union: exp.Expr = branches[0]
    for b in branches[1:]:
        union = exp.union(union, b, distinct=False)
    return sql.create_temp(
        POINTS, sql.q("SELECT DISTINCT cid, dn, $date AS as_of FROM ($u) u", u=union, date=_date(sql.col("dn")))
    )


def _threshold_points(p: _Plan, name: str, offsets: list[int]) -> exp.Expr:
    """The days a comparison of `as_of` with the date feature `name` can flip: each day the feature can take, plus
    each offset."""
    f = p.rules.features[name]
    s = f.spec
    source: exp.Expr
    if s.type == "field":
        assert s.field is not None
        source = sql.q(
            'SELECT "Id" AS cid, $dn AS dn FROM $contacts WHERE $todo',
            dn=_dn(exp.cast(sql.col(s.field), exp.DataType.Type.DATE)),
            contacts=sql.table(CONTACTS.name),
            todo=_in_todo("Id") if p.cached else exp.true(),
        )
    else:
        kinds = s.first or s.last or s.unanswered or []
        n = p.count(kinds)
        source = sql.q("SELECT cid, dn FROM $days WHERE $n > 0", days=sql.table(DAYS), n=sql.col(n))
        if s.type == "first" and not s.within_days:  # one day per contact: its first such activity
            source = sql.q("SELECT cid, min(dn) AS dn FROM ($s) f GROUP BY cid", s=source)
    return (
        exp.select(sql.col("cid", "s"), sql.alias(sql.q("s.dn + x.o"), "dn"))
        .from_(exp.Subquery(this=source, alias=exp.TableAlias(this=sql.ident("s"))))
        .join(_values([(o,) for o in offsets], "x", ["o"]), join_type="cross")
        .where(sql.q("s.dn IS NOT NULL"))
    )


def _unanswered_statements(p: _Plan) -> tuple[list[exp.Expr], dict[str, tuple[str, str]]]:
    """Per `unanswered` feature: its triggers in order (`tl_t_u<i>`: day, index, first day open, day it closes),
    and the number of triggers closed by each day (`tl_t_uc<i>`).

    A trigger on day d is open on the days t with d + older < t < d + within and no answer in [d, t]: from
    d + older + 1 up to the day before its window or its first answer closes it. Both ends grow with d, so the
    open triggers on a day are consecutive in day order, and the oldest open one is the first not yet closed: the
    trigger whose index is the number closed so far, if it has opened."""
    out: list[exp.Expr] = []
    tables: dict[str, tuple[str, str]] = {}
    for i, f in enumerate(x for x in p.features if x.spec.type == "unanswered"):
        s = f.spec
        trig, ans = p.count(s.unanswered or []), p.count(s.answered_by or [])
        triggers = f"tl_t_u{i}"
        closed = f"tl_t_uc{i}"
        nxt = _over(
            exp.Min(this=sql.case([(exp.GT(this=sql.col(ans), expression=sql.lit(0)), sql.col("dn"))])),
            following=True,
        )
        answers = sql.q(
            "SELECT cid, dn, $na AS na FROM $days WHERE $t > 0 OR $a > 0",
            na=nxt,
            days=sql.table(DAYS),
            t=sql.col(trig),
            a=sql.col(ans),
        )
        end = sql.q("LEAST(a.dn + $w, a.na)", w=s.within_days) if s.within_days else sql.q("a.na")
        body = sql.q(
            "SELECT t.cid, t.dn, t.idx, t.dn + $opens AS opens, $end AS closes FROM ("
            "  SELECT cid, $dn AS dn, row_number() OVER (PARTITION BY cid ORDER BY day, aid) - 1 AS idx"
            "  FROM $act WHERE $kinds AND $todo) t JOIN ($answers) a ON a.cid = t.cid AND a.dn = t.dn",
            opens=(s.older_than_days or 0) + 1,
            end=end,
            dn=_dn(sql.col("day")),
            act=sql.table(CLASSIFIED.name),
            kinds=_any_kind(s.unanswered or []),
            todo=_in_todo("cid") if p.cached else exp.true(),
            answers=answers,
        )
        out.append(sql.create_temp(triggers, body))
        out.append(
            sql.create_temp(
                closed,
                sql.q(
                    "SELECT cid, closes AS dn, count(*) AS n FROM $t WHERE closes IS NOT NULL GROUP BY cid, closes",
                    t=sql.table(triggers),
                ),
            )
        )
        tables[f.name] = (triggers, closed)
    return out, tables


def _grid(p: _Plan, unanswered: dict[str, tuple[str, str]]) -> exp.Select:
    """The window aggregates on every point (those the features registered, engine.timeline._states)."""
    cols: list[exp.Expr] = [sql.col("cid", "g"), sql.col("dn", "g"), sql.col("as_of", "g")]
    cols += [sql.alias(w, name) for name, w in p.windows.values()]
    src = exp.select(sql.col("cid", "p"), sql.col("dn", "p"), sql.col("as_of", "p")).from_(
        exp.alias_(sql.table(POINTS), "p")
    )
    src = src.select(*(sql.col(n, "d") for n in p.kindsets.values()), append=True)
    src = src.join(exp.alias_(sql.table(DAYS), "d"), on=sql.q("d.cid = p.cid AND d.dn = p.dn"), join_type="left")
    for i, (name, (_, closed)) in enumerate(unanswered.items()):
        alias = f"uc{i}"
        src = src.select(sql.alias(sql.col("n", alias), f"closed_{i}"), append=True)
        on = exp.and_(
            exp.EQ(this=sql.col("cid", alias), expression=sql.col("cid", "p")),
            exp.EQ(this=sql.col("dn", alias), expression=sql.col("dn", "p")),
        )
        src = src.join(exp.alias_(sql.table(closed), alias), on=on, join_type="left")
        total = _window(exp.Sum(this=sql.col(f"closed_{i}")), "ROWS", None, None)
        cols.append(sql.alias(exp.Coalesce(this=total, expressions=[sql.lit(0)]), f"ci_{name}"))
    return exp.select(*cols).from_(src.subquery("g"))


def _feature_value(p: _Plan, f: CompiledFeature, unanswered: dict[str, tuple[str, str]]) -> exp.Expr | None:
    """A feature's value on a point, from the grid (`g`), the contact (`c`) and its trigger table; None for an expr
    feature (computed after the others)."""
    s = f.spec
    if s.type == "count":
        return exp.Coalesce(this=exp.cast(_grid_col(p, f), "BIGINT"), expressions=[sql.lit(0)])
    if s.type in ("first", "last"):
        return _grid_col(p, f)
    if s.type == "distinct_periods":
        n = p.count(s.distinct_periods or [])
        per = period_days(s)
        hits: exp.Expr = sql.lit(0)
        for m in range(s.periods or 0):
            w = p.window("sum", n, "RANGE", (m + 1) * per - 1, m * per)
            hit = sql.q("CASE WHEN COALESCE($w, 0) > 0 THEN 1 ELSE 0 END", w=w)
            hits = exp.Add(this=hits, expression=hit)
        return exp.cast(hits, "BIGINT")
    if s.type == "ratio":
        days = s.within_days
        a, b = (
            p.window("sum", p.count(kinds), "RANGE", days - 1, None)
            if days
            else p.window("sum", p.count(kinds), "ROWS", None, None)
            for kinds in (s.ratio or [], s.per or [])
        )
        return sql.q("CAST(COALESCE($a, 0) AS DOUBLE) / NULLIF(COALESCE($b, 0), 0)", a=a, b=b)
    if s.type == "unanswered":
        i = list(unanswered).index(f.name)
        return sql.q(
            "CASE WHEN $opens <= $dn THEN $day END",
            opens=sql.col("opens", f"u{i}"),
            dn=sql.col("dn", "g"),
            day=_date(sql.col("dn", f"u{i}")),
        )
    if s.type == "field":
        assert s.field is not None
        value: exp.Expr = sql.col(s.field, "c")
        return exp.cast(value, "DATE") if f.type == Type.DATE else value
    return None


def _grid_col(p: _Plan, f: CompiledFeature) -> exp.Expr:
    s = f.spec
    kinds = s.count or s.first or s.last or []
    agg = {"count": "sum", "first": "min", "last": "max"}[s.type]
    w = s.within_days
    return (
        p.window(agg, p.count(kinds), "RANGE", w - 1, None) if w else p.window(agg, p.count(kinds), "ROWS", None, None)
    )


def _levels(features: list[CompiledFeature]) -> list[list[CompiledFeature]]:
    """Expr features grouped so each group reads only features computed before it."""
    level: dict[str, int] = {}
    for f in features:
        if f.spec.type == "expr" and f.expr is not None:
            level[f.name] = 1 + max((level.get(n, 0) for n in f.expr.names), default=0)
    groups: list[list[CompiledFeature]] = [[] for _ in range(max(level.values(), default=0))]
    for f in features:
        if f.name in level:
            groups[level[f.name] - 1].append(f)
    return groups


def _as_of_col(tree: exp.Expr) -> exp.Expr:
    return sql.retarget(tree, {}, as_of_column="as_of")


def _states(p: _Plan, unanswered: dict[str, tuple[str, str]], grid: exp.Select) -> exp.Expr:
    """On every point: the features the conditions read, the flags, the criteria and the rung qualified for; all
    of them as one signature (to find the next change), the next point, and whether the rung qualified for changed
    there (the rung pass reads only those points)."""
    rules = p.rules
    values = [(f, _feature_value(p, f, unanswered)) for f in p.features]
    inner = sql.select(
        sql.col("cid", "g"),
        sql.col("dn", "g"),
        sql.col("as_of", "g"),
        *(sql.alias(v, feature_col(f.name)) for f, v in values if v is not None),
        from_=exp.Subquery(this=grid, alias=exp.TableAlias(this=sql.ident("g"))),
    )
    if any(f.spec.type == "field" for f in p.features):
        inner = inner.join(exp.alias_(sql.table(CONTACTS.name), "c"), on=sql.q('c."Id" = g.cid'), join_type="left")
    for i, (name, (triggers, _)) in enumerate(unanswered.items()):
        on = exp.and_(
            exp.EQ(this=sql.col("cid", f"u{i}"), expression=sql.col("cid", "g")),
            exp.EQ(this=sql.col("idx", f"u{i}"), expression=sql.col(f"ci_{name}", "g")),
        )
        inner = inner.join(exp.alias_(sql.table(triggers), f"u{i}"), on=on, join_type="left")
    out: exp.Select = inner
    for group in _levels(p.features):
        exprs = [sql.alias(_as_of_col(f.expr.expr), feature_col(f.name)) for f in group if f.expr is not None]
        out = exp.select(exp.Star(), *exprs).from_(out.subquery())
    flags = [
        sql.alias(exp.Coalesce(this=_as_of_col(f.compiled.expr), expressions=[exp.false()]), flag_col(f.id))
        for f in rules.flags
    ]
    out = exp.select(exp.Star(), *flags).from_(out.subquery())
    open_flags: exp.Expr = sql.lit(0)
    for f in rules.flags:
        open_flags = exp.Add(this=open_flags, expression=exp.cast(sql.col(flag_col(f.id)), "INTEGER"))
    out = exp.select(exp.Star(), sql.alias(open_flags, "open_flags")).from_(out.subquery())
    crit = [
        sql.alias(exp.Coalesce(this=_as_of_col(c.compiled.expr), expressions=[exp.false()]), criterion_col(r.index, j))
        for r in rules.rungs
        for j, c in enumerate(r.criteria)
    ]
    out = exp.select(exp.Star(), *crit).from_(out.subquery())
    top = len(rules.rungs) - 1
    whens = [
        (
            sql.all_of(
                sql.col(criterion_col(r.index, j)) for r in rules.rungs[1 : k + 1] for j in range(len(r.criteria))
            ),
            sql.lit(k),
        )
        for k in range(top, 0, -1)
    ]
    qualified = sql.alias(sql.case(whens, sql.lit(0)), "qualified")
    out = exp.select(exp.Star(), qualified).from_(out.subquery())
    # Along the timeline: the next point, and whether the rung qualified for differs from the point before.
    before = _over(exp.Lag(this=sql.col("qualified")))
    extra = [
        sql.alias(_over(exp.Lead(this=sql.col("dn"))), "nd"),
        *(sql.alias(sig, f"sig_{i}") for i, sig in enumerate(_signatures(rules))),
        sql.alias(sql.q("COALESCE($b <> qualified, true)", b=before), "qchg"),
    ]
    out = exp.select(exp.Star(), *extra).from_(out.subquery())
    return sql.create_temp(STATES, out)


SIG_BITS = 62  # booleans per signature column (a BIGINT)


def _signatures(rules: RuleSet) -> list[exp.Expr]:
    """Every flag and criterion of a point as bits of BIGINT columns: two points differ in anything a record shows
    exactly when one of these differs."""
    bools = [sql.col(flag_col(f.id)) for f in rules.flags]
    bools += [sql.col(criterion_col(r.index, j)) for r in rules.rungs for j in range(len(r.criteria))]
    out: list[exp.Expr] = []
    for start in range(0, len(bools), SIG_BITS):
        sig: exp.Expr = sql.lit(0)
        for bit, b in enumerate(bools[start : start + SIG_BITS]):
            sig = exp.Add(this=sig, expression=sql.q("CASE WHEN $b THEN $v ELSE 0 END", b=b, v=2**bit))
        out.append(exp.cast(sig, "BIGINT"))
    return out or [exp.cast(sql.lit(0), "BIGINT")]


def _steps(elapsed: exp.Expr, rules: RuleSet) -> exp.Expr:
    """How many rungs a held rung has dropped `elapsed` days after it was last met: none within the grace period,
    then one, and one more every decay period (without decay: all of them)."""
    grace = rules.settings.demotion_grace_days
    every = rules.settings.decay_every_days
    after = sql.q("1 + ($x - $g) // $e", x=elapsed.copy(), g=grace, e=every) if every else sql.lit(len(rules.rungs))
    return sql.q("CASE WHEN $x < $g THEN 0 ELSE $after END", x=elapsed, g=grace, after=after)


def _drops(rules: RuleSet) -> exp.Expr:
    """The days a held rung drops: for each run of days on which a contact met rung k, ending on day b, the days
    b + 1 + grace + m x decay, until it has dropped k rungs."""
    grace = rules.settings.demotion_grace_days
    every = rules.settings.decay_every_days
    top = len(rules.rungs) - 1
    pairs = [(k, m) for k in range(1, top + 1) for m in (range(k) if every else range(1))]
    if not pairs:
        return sql.create_temp("tl_t_drop", sql.q("SELECT cid, dn FROM $s WHERE false", s=sql.table(STATES)))
    runs = sql.q(
        "SELECT cid, dn, qualified, lead(dn) OVER (PARTITION BY cid ORDER BY dn) AS nd, "
        "lead(qualified) OVER (PARTITION BY cid ORDER BY dn) AS next_q FROM $s WHERE qchg",
        s=sql.table(STATES),
    )
    body = (
        exp.select(sql.col("cid", "s"), sql.alias(sql.q("s.nd + $g + x.m * $e", g=grace, e=every or 0), "dn"))
        .from_(exp.Subquery(this=runs, alias=exp.TableAlias(this=sql.ident("s"))))
        .join(_values(pairs, "x", ["k", "m"]), join_type="cross")
        .where(sql.q("s.nd IS NOT NULL AND s.qualified >= x.k AND s.next_q < x.k"))
    )
    return sql.create_temp("tl_t_drop", body)


def _rungs(rules: RuleSet) -> exp.Expr:
    """The rung a contact stands on at each point and each day a held rung drops: the highest of the rung it
    qualifies for and, for each rung it met before, that rung less the steps it has dropped since."""
    top = len(rules.rungs) - 1
    grace = rules.settings.demotion_grace_days
    both = sql.q(
        "SELECT cid, dn, 1 AS pt, dn * $bits + qualified AS enc FROM $s WHERE qchg OR dn = $today "
        "UNION ALL SELECT cid, dn, 0 AS pt, CAST(NULL AS BIGINT) AS enc FROM tl_t_drop",
        bits=RUNG_BITS,
        s=sql.table(STATES),
        today=_dn(sql.as_of()),
    )
    pt_first = exp.Ordered(this=sql.col("pt"), desc=True)
    carried = sql.q(
        "$m % $bits",
        m=_window(exp.Max(this=sql.col("enc")), "ROWS", None, None, order=[pt_first.copy()]),
        bits=RUNG_BITS,
    )
    level1 = exp.select(
        sql.col("cid"),
        sql.col("dn"),
        sql.col("pt"),
        sql.alias(carried, "q"),
        sql.alias(_over(exp.Lead(this=sql.col("dn")), order=[pt_first.copy()]), "nd"),
    ).from_(exp.Subquery(this=both, alias=exp.TableAlias(this=sql.ident("b"))))
    last_met = []
    for k in range(1, top + 1):
        met = sql.q("CASE WHEN q >= $k THEN nd - 1 END", k=k)
        spec = exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end=sql.lit(1), end_side="PRECEDING"
        )
        w = exp.Window(
            this=exp.Max(this=met),
            partition_by=[sql.col("cid")],
            order=exp.Order(expressions=[exp.Ordered(this=sql.col("dn"), nulls_first=False), pt_first.copy()]),
            spec=spec,
        )
        last_met.append(sql.alias(w, f"lm_{k}"))
    level2 = exp.select(exp.Star(), *last_met).from_(level1.subquery("l1"))
    shadows = [
        sql.q(
            "CASE WHEN $lm IS NULL THEN 0 ELSE GREATEST($k - $steps, 0) END",
            lm=sql.col(f"lm_{k}"),
            k=k,
            steps=_steps(sql.q("dn - $lm - 1", lm=sql.col(f"lm_{k}")), rules),
        )
        for k in range(1, top + 1)
    ]
    rung = exp.Greatest(this=sql.col("q"), expressions=shadows, ignore_nulls=True) if shadows else sql.col("q")
    graced = sql.any_of(
        sql.q("$k = r AND $lm IS NOT NULL AND dn - $lm - 1 < $g", k=k, lm=sql.col(f"lm_{k}"), g=grace)
        for k in range(1, top + 1)
    )
    level3 = exp.select(exp.Star(), sql.alias(rung, "r")).from_(level2.subquery("l2"))
    level4 = exp.select(exp.Star(), sql.alias(exp.and_(sql.q("r > q"), exp.paren(graced)), "in_grace")).from_(
        level3.subquery("l3")
    )
    return sql.create_temp(RUNGS, level4)


def _now(rules: RuleSet, *, cached: bool = False) -> exp.Expr:
    """One row per contact: where the timeline stands on the evaluation day, since when, and what comes next if
    nothing happens (the day a held rung drops, the next day anything a record shows can change)."""
    today = _dn(sql.as_of())
    sigs = len(_signatures(rules))
    differs = sql.any_of(
        exp.NEQ(this=sql.col(f"sig_{i}", "q"), expression=sql.col(f"sig_{i}", "t")) for i in range(sigs)
    )
    flag_cols = [sql.col(flag_col(f.id), "t") for f in rules.flags]
    closed = [
        sql.alias(
            sql.q(
                "max(CASE WHEN NOT $g AND q.dn <= $today THEN q.nd END)", g=sql.col(flag_col(f.id), "q"), today=today
            ),
            f"fo_{f.id}",
        )
        for f in rules.flags
    ]
    states = (
        exp.select(
            sql.col("cid", "q"),
            *flag_cols,
            sql.alias(sql.q("min(q.dn)"), "first_dn"),
            sql.alias(
                exp.Filter(
                    this=sql.q("min(q.dn)"), expression=exp.Where(this=exp.and_(sql.q("q.dn > $t", t=today), differs))
                ),
                "next_state",
            ),
            *closed,
        )
        .from_(exp.alias_(sql.table(STATES), "q"))
        .join(exp.alias_(sql.table(STATES), "t"), on=sql.q("t.cid = q.cid AND t.dn = $t", t=today))
        .group_by(sql.col("cid", "q"), *(c.copy() for c in flag_cols))
    )
    flag_since = [
        sql.alias(
            sql.q(
                "CASE WHEN $g THEN $d END",
                g=sql.col(flag_col(f.id), "s"),
                d=_date(sql.q("COALESCE($o, s.first_dn)", o=sql.col(f"fo_{f.id}", "s"))),
            ),
            flag_since_col(f.id),
        )
        for f in rules.flags
    ]
    body = sql.q(
        """
        SELECT r.cid, r.r AS final, r.q AS qualified_now, r.in_grace,
               CASE WHEN s.first_dn = $today THEN NULL ELSE $since END AS since,
               $held AS held_until, $next AS next_change
        FROM $rungs r
        JOIN (SELECT a.cid,
                     max(CASE WHEN a.r <> b.r AND a.dn < $today THEN a.nd END) AS began,
                     min(a.dn) FILTER (WHERE a.dn > $today AND a.r < b.r) AS drop_dn,
                     min(a.dn) FILTER (WHERE a.dn > $today AND a.r <> b.r) AS move_dn
              FROM $rungs a JOIN $rungs b ON b.cid = a.cid AND b.dn = $today AND b.pt = 1
              GROUP BY a.cid) h ON h.cid = r.cid
        JOIN ($states) s ON s.cid = r.cid
        WHERE r.dn = $today AND r.pt = 1
        """,
        today=today,
        since=_date(sql.q("COALESCE(h.began, s.first_dn)")),
        held=sql.q("CASE WHEN r.r > r.q THEN $d END", d=_date(sql.col("drop_dn", "h"))),
        next=_date(sql.q("LEAST(s.next_state, h.move_dn)")),
        rungs=sql.table(RUNGS),
        states=states,
    )
    assert isinstance(body, exp.Select)
    body = body.select(*flag_since, append=True)
    return sql.create_temp(NOW if cached else TIMELINE.name, body)


def statements(rules: RuleSet, *, cached: bool = False) -> list[exp.Expr]:
    """From the classified activities (`tl_act`) and the contacts to `tl_timeline`. `$as_of` is the only
    parameter. `cached`: `tl_timeline_cache` holds rows of these rules computed earlier (see `load_cache`); only
    the contacts whose history or fields changed since, or whose next change day has come, are computed, and
    `tl_timeline_new` holds their rows to keep."""
    p = _plan(rules)
    p.cached = cached
    unans_stmts, unanswered = _unanswered_statements(p)
    placeholder = exp.select(exp.Star()).from_(sql.table(POINTS))
    _states(p, unanswered, placeholder)  # registers the window aggregates and kind sets the features read
    states = _states(p, unanswered, _grid(p, unanswered))
    points = _points(p)
    head = [_fingerprints(p), _todo()] if cached else []
    tail = [_reused(rules), _fresh(rules)] if cached else []
    return [
        *head,
        _days(p),  # made last but one, run first: every kind set is known by now
        points,
        *unans_stmts,
        states,
        _drops(rules),
        _rungs(rules),
        _now(rules, cached=cached),
        *tail,
    ]


CACHE = "tl_timeline_cache"  # cached rows of this rules version, as the state store keeps them
FINGERPRINTS = "tl_t_fp"  # per live contact: a hash of everything its timeline reads
TODO_ALL = "tl_t_todo_all"  # the contacts to compute
TODO = "tl_t_todo"  # those of this batch
NOW = "tl_t_now"  # their rows
NOW_ALL = "tl_t_now_all"  # the rows of every batch
BATCH = 50_000  # contacts a batch computes at most: what a first sync of a million holds in memory at once
FRESH = "tl_timeline_new"  # their rows as the state store keeps them
# The timeline's row, with what it was computed from (fp, as_of) and the open flags' days, ';'-joined in rule order
# ('' for a closed flag), since the flags are the rule file's.
CACHE_COLUMNS = (
    TIMELINE.columns[0],
    ("fp", "UBIGINT"),
    ("as_of", "DATE"),
    *TIMELINE.columns[1:],
    ("flag_since", "VARCHAR"),
)


def _in_todo(column: str) -> exp.Expr:
    return sql.q("$c IN (SELECT cid FROM $todo)", c=sql.col(column), todo=sql.table(TODO))


def _fingerprints(p: _Plan) -> exp.Expr:
    """What a contact's timeline reads, hashed: each classified activity's Id, day and kinds, and the contact's
    creation day and the fields the conditions read. Any change to one of them changes the hash."""
    kinds = [sql.col(kind_col(k)) for k in p.rules.kinds]
    per_activity = sql.func("hash", sql.col("aid"), sql.col("day"), *kinds)
    fields = [sql.col(f.spec.field, "c") for f in p.features if f.spec.type == "field" and f.spec.field]
    body = sql.q(
        'SELECT c."Id" AS cid, $hash AS fp FROM $contacts c '
        'LEFT JOIN (SELECT cid, bit_xor($act_hash) AS fp FROM $act GROUP BY cid) a ON a.cid = c."Id"',
        hash=sql.func("hash", sql.col("CreatedDate", "c"), *fields, sql.q("COALESCE(a.fp, 0)")),
        act_hash=per_activity,
        contacts=sql.table(CONTACTS.name),
        act=sql.table(CLASSIFIED.name),
    )
    return sql.create_temp(FINGERPRINTS, body)


def _todo() -> exp.Expr:
    """New contacts, changed ones, rows computed for a later day, and rows whose next change day has come."""
    return sql.create_temp(
        TODO_ALL,
        sql.q(
            "SELECT f.cid FROM $fp f LEFT JOIN $cache k ON k.cid = f.cid "
            "WHERE k.cid IS NULL OR k.fp <> f.fp OR k.as_of > $as_of OR k.next_change <= $as_of",
            fp=sql.table(FINGERPRINTS),
            cache=sql.table(CACHE),
            as_of=sql.as_of(),
        ),
    )


def _reused(rules: RuleSet) -> exp.Expr:
    """`tl_timeline`: the computed rows, and the cached rows of every other live contact."""
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
    """The computed rows, as the state store keeps them."""
    days = [sql.q("COALESCE(CAST($d AS VARCHAR), '')", d=sql.col(flag_since_col(f.id), "n")) for f in rules.flags]
    flag_since = sql.func("concat_ws", sql.lit(";"), *days) if days else sql.lit("")
    body = sql.q(
        "SELECT n.cid, f.fp, CAST($as_of AS DATE) AS as_of, n.final, n.qualified_now, n.in_grace, n.since, "
        "n.held_until, n.next_change, $flag_since AS flag_since FROM $now n JOIN $fp f ON f.cid = n.cid",
        as_of=sql.as_of(),
        flag_since=flag_since,
        now=sql.table(NOW_ALL),
        fp=sql.table(FINGERPRINTS),
    )
    return sql.create_temp(FRESH, body)


def cached_parts(rules: RuleSet) -> tuple[list[exp.Expr], list[exp.Expr], list[exp.Expr]]:
    """The cached form of `statements` in three parts: what to compute (`tl_t_todo_all`), the timeline of one
    batch of it (`tl_t_todo` -> `tl_t_now`, run once per `batch`, then `collect`), and `tl_timeline` with the rows
    to keep. Batches of at most BATCH contacts bound the memory a first sync of a large org needs."""
    full = statements(rules, cached=True)
    return full[:2], full[2:-2], full[-2:]


def batch(batches: int, index: int) -> exp.Expr:
    """`tl_t_todo`: the contacts of one batch of `tl_t_todo_all`, by a hash of the Id."""
    return sql.create_temp(
        TODO,
        sql.q(
            "SELECT cid FROM $all WHERE hash(cid) % $n = $i",
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
    if rows is not None and len(rows["cid"]):
        con.register("tl_cache_rows", rows)
        casts = ", ".join(f"CAST({sql.render(sql.col(n))} AS {t})" for n, t in CACHE_COLUMNS)
        con.execute(f"INSERT INTO {CACHE} SELECT {casts} FROM tl_cache_rows")
        con.unregister("tl_cache_rows")


def fresh_rows(con: duckdb.DuckDBPyConnection) -> Any:
    """The rows a cached run computed, as columns for `Store.save_timeline`."""
    return con.execute(f"SELECT * FROM {FRESH}").fetchnumpy()


def scratch(rules: RuleSet) -> list[str]:
    """The timeline's own tables, dropped after a run (the cache and the rows to keep are the caller's)."""
    n = sum(1 for f in _needed(rules) if f.spec.type == "unanswered")
    return [
        *SCRATCH,
        "tl_t_on_days",
        FINGERPRINTS,
        TODO_ALL,
        TODO,
        NOW,
        NOW_ALL,
        *(f"tl_t_u{i}" for i in range(n)),
        *(f"tl_t_uc{i}" for i in range(n)),
    ]


ON_DAYS = "tl_t_on_days"  # per day of `days` and contact created by then: the rung it stood on
_ON_DAYS = """
SELECT w.k, w.day, c."Id" AS cid, COALESCE(c."OwnerId", '') AS owner, COALESCE(r.r, 0) AS r
FROM $days w
JOIN crm_contact c ON c."CreatedDate" IS NULL OR CAST(c."CreatedDate" AS DATE) <= w.day
ASOF LEFT JOIN (SELECT cid, dn, max(r) AS r FROM $rungs GROUP BY cid, dn) r
  ON r.cid = c."Id" AND $day_dn >= r.dn
"""


def on_days(days: str) -> exp.Expr:
    """`tl_t_on_days`: the rung each contact created by then stood on, on each day of the table `days` (k, day),
    read from the timeline built for a later day (`tl_t_rung`): the last row on or before that day, the lowest
    rung before the first. A rung on a day depends only on the history up to it, so this is what a sync on that
    day would write."""
    return sql.create_temp(
        ON_DAYS,
        sql.q(_ON_DAYS, days=sql.table(days), rungs=sql.table(RUNGS), day_dn=_dn(sql.col("day", "w"))),
    )
