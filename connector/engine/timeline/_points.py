"""The days a contact's rung or flags can change (its points), the per-day counts, and the triggers of
`unanswered` features."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from connector import sql
from connector.engine import answers
from connector.engine.relations import (
    CLASSIFIED,
    CONTACTS,
)
from connector.engine.timeline._base import (
    BORN,
    DAYS,
    DAYS_ALL,
    POINTS,
    TODO,
    TRIGGERS,
    _any_kind,
    _date,
    _dn,
    _in_period,
    _of_batch,
    _over,
    _period,
    _Plan,
    _todo_contacts,
    _values,
)
from connector.ruleset.compiler import CompiledFeature


def _days(p: _Plan) -> exp.Expr:
    """Per contact and activity day, how many activities of each kind set; for a batch (`cached`), its contacts'
    rows of `_pooled`'s table."""
    if p.cached:
        return sql.create_temp(DAYS, _of_batch(DAYS_ALL, ["cid", "dn", *p.kindsets.values()]))
    return sql.create_temp(DAYS, _day_counts(p))


def _day_counts(p: _Plan) -> exp.Select:
    counts = [  # INTEGER: half the width of count()'s BIGINT, in tables of millions of rows that the batches re-read
        sql.alias(exp.cast(exp.Filter(this=sql.q("count(*)"), expression=exp.Where(this=_any_kind(ks))), "INTEGER"), n)
        for ks, n in p.kindsets.items()
    ]
    body = sql.select(sql.col("cid"), sql.alias(_dn(sql.col("day")), "dn"), *counts, from_=CLASSIFIED.name)
    return body.group_by(sql.col("cid"), sql.col("day"))


def _periods(p: _Plan) -> list[exp.Expr]:
    """For each `distinct_periods` kind set and period length: per contact and period number g (`_base._period`),
    the earliest and latest place within its period of each of the periods g, g-1, ..., g-P that saw such
    activity (`mn<k>`, `mx<k>` for period g-k), on the row of period g.

    A point on day t in period g, at place r, finds its last P periods in that row alone: its period m (the days
    t-(m+1)N+1 .. t-mN) is the end of period g-m from its start to place r, and the rest of period g-m-1 after
    place r. So m saw activity exactly when `mn<m> <= r` or `mx<m+1> > r`. One join instead of a window frame per
    period, which made the most expensive part of a first sync."""
    out: list[exp.Expr] = []
    for (n, per), periods in p.periods.items():
        name = p.period_table(n, per)
        assert name is not None
        dn = sql.col("dn")
        per_day = sql.q(
            "SELECT cid, $g AS g, min($r) AS mn, max($r) AS mx FROM $days WHERE $n > 0 GROUP BY cid, $g",
            g=_period(dn, per),
            r=_in_period(dn, per),
            days=sql.table(DAYS),
            n=sql.col(n),
        )
        cols = [  # a point reads mn<m> and mx<m+1> for m < P: neither mx0 nor mn<P>
            sql.q(f"{agg}({v}) FILTER (WHERE x.k = $k) AS {v}{k}", k=k)
            for k in range(periods + 1)
            for agg, v in (("min", "mn"), ("max", "mx"))
            if (v == "mn" and k < periods) or (v == "mx" and k > 0)
        ]
        body = (
            exp.select(sql.col("cid", "d"), sql.alias(sql.q("d.g + x.k"), "g"), *cols)
            .from_(exp.Subquery(this=per_day, alias=exp.TableAlias(this=sql.ident("d"))))
            .join(_values([(k,) for k in range(periods + 1)], "x", ["k"]), join_type="cross")
            .group_by(sql.col("cid", "d"), sql.q("d.g + x.k"))
        )
        out.append(sql.create_temp(name, body))
    return out


def _pooled(p: _Plan, answered: Mapping[str, str]) -> list[exp.Expr]:
    """What every batch reads, made once for all the contacts a sync computes (the engine's inputs are narrowed to
    them): the day counts and the day each contact was created. A batch picks its rows from these small tables
    instead of filtering the classified activities and the contacts' view again, which at a million contacts cost
    more than a third of the batches' own work. `answered`: the tables of connector.engine.answers already made
    for these contacts (engine.features makes the same ones), by feature name."""
    born = sql.q(
        'SELECT "Id" AS cid, $dn AS dn FROM $contacts WHERE "CreatedDate" IS NOT NULL',
        dn=_dn(exp.cast(sql.col("CreatedDate"), exp.DataType.Type.DATE)),
        contacts=sql.table(CONTACTS.name),
    )
    triggers: list[exp.Expr] = []
    for i, f in enumerate(_unanswered(p)):
        if f.spec.answers_oldest:  # which answer answered which trigger, once for all these contacts
            matched = answered.get(f.name)
            if matched is None:
                triggers += answers.statements(f, _matched(i), exp.true())
                matched = _matched(i)
            triggers.append(_by_batch_key(f"{TRIGGERS}{i}", sql.q("SELECT * FROM $m", m=sql.table(matched))))
        else:
            source = sql.q(
                "SELECT cid, day, aid FROM $act WHERE $kinds",
                act=sql.table(CLASSIFIED.name),
                kinds=_any_kind(f.spec.unanswered or []),
            )
            triggers.append(_by_batch_key(f"{TRIGGERS}{i}", source))
    return [_by_batch_key(DAYS_ALL, _day_counts(p), "dn"), _by_batch_key(BORN, born), *triggers]


def _matched(index: int) -> str:
    """The triggers of the `index`th unanswered feature with the day each was answered (connector.engine.answers)."""
    return answers.tables(f"tl_t_ans{index}")[2]


def _by_batch_key(name: str, body: exp.Expr, day: str | None = None) -> exp.Expr:
    """`body` with the batch key `h` (`_of_batch`), in its order: a batch's rows lie together, and its join
    skips the others' blocks. `day`: a contact's rows in the order of that column too, the order every window of
    the batch sorts them in (a sort of presorted rows costs less, whatever order the activities came in)."""
    order = f"h, {day}" if day else "h"
    return sql.create_temp(name, sql.q(f"SELECT hash(cid) AS h, * FROM ($b) b ORDER BY {order}", b=body))


def _points(p: _Plan) -> exp.Expr:
    """Every day a contact's rung or flags can change, and two more: the day its record was created (where its
    lowest rung starts) and the evaluation day."""
    branches: list[exp.Expr] = [sql.select(sql.col("cid"), sql.col("dn"), from_=DAYS)]
    if p.cached:  # a batch: its contacts are `tl_t_todo`'s
        branches += [
            _of_batch(BORN, ["cid", "dn"]),
            sql.q("SELECT k AS cid, $dn AS dn FROM $todo", dn=_dn(sql.as_of()), todo=sql.table(TODO)),
        ]
    else:
        branches += [
            sql.q(
                'SELECT "Id" AS cid, $dn AS dn FROM $contacts WHERE "CreatedDate" IS NOT NULL',
                dn=_dn(exp.cast(sql.col("CreatedDate"), exp.DataType.Type.DATE)),
                contacts=sql.table(CONTACTS.name),
            ),
            sql.q(
                'SELECT "Id" AS cid, $dn AS dn FROM $contacts', dn=_dn(sql.as_of()), contacts=sql.table(CONTACTS.name)
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
    branches += [_slides(p, n, per, periods) for (n, per), periods in sorted(p.slides.items())]
    for name, offsets in sorted(p.linked.items()):
        if offsets:
            branches.append(_threshold_points(p, name, sorted(offsets)))
    union: exp.Expr = branches[0]
    for b in branches[1:]:
        union = exp.union(union, b, distinct=False)
    if p.lookahead is None:
        points = sql.q("SELECT DISTINCT cid, dn, $date AS as_of FROM ($u) u", u=union, date=_date(sql.col("dn")))
    else:  # the points past the lookahead, as one on the day after it (`_now` reads it as the day to look again)
        points = sql.q(
            "SELECT cid, dn, $date AS as_of FROM (SELECT DISTINCT cid, LEAST(dn, $last) AS dn FROM ($u) u) v",
            u=union,
            date=_date(sql.col("dn")),
            last=sql.q("$today + $n", today=_dn(sql.as_of()), n=p.lookahead + 1),
        )
    return sql.create_temp(POINTS, points)


def _slides(p: _Plan, n: str, per: int, periods: int) -> exp.Expr:
    """The days a `distinct_periods` count over `per`-day periods can change: when an activity on day a passes from
    period m-1 to period m (counted back from the point's day: the days t-(m+1)per+1 .. t-m*per), on day
    a + m*per, m = 1..periods. Period m-1 is then the days a+1 .. a+per and was a .. a+per-1 the day before; period
    m is a-per+1 .. a and was a-per .. a-1. So when such activity lies in both a-per .. a-1 and a+1 .. a+per,
    neither period goes from empty to seen or back, and the day is not a point (for the last period, counted by a
    feature of `periods` periods, only a+1 .. a+per matters: the period after it is not counted). Every change of
    a period's state comes from the activity entering or leaving it, so no change is lost; for a contact in touch
    more often than once a period, most of these days go, and they were two fifths of a first sync's points."""
    near = sql.q(
        "SELECT cid, dn, "
        "COALESCE(count(*) OVER (PARTITION BY cid ORDER BY dn RANGE BETWEEN $per PRECEDING AND 1 PRECEDING), 0) > 0 "
        "AS b, COALESCE(count(*) OVER (PARTITION BY cid ORDER BY dn RANGE BETWEEN 1 FOLLOWING AND $per2 FOLLOWING), 0)"
        " > 0 AS a FROM $days WHERE $n > 0",
        per=per,
        per2=per,
        days=sql.table(DAYS),
        n=sql.col(n),
    )
    steps = [(m, m * per) for m in range(1, periods + 1) if (n, m * per) not in p.exits]  # those not points anyway
    if not steps:
        return sql.q("SELECT cid, dn FROM $days WHERE false", days=sql.table(DAYS))
    return (
        exp.select(sql.col("cid", "s"), sql.alias(sql.q("s.dn + x.o"), "dn"))
        .from_(exp.Subquery(this=near, alias=exp.TableAlias(this=sql.ident("s"))))
        .join(_values(steps, "x", ["m", "o"]), join_type="cross")
        .where(sql.q("CASE WHEN x.m < $last THEN NOT (s.b AND s.a) ELSE NOT s.a END", last=periods))
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
            "SELECT $key AS cid, $dn AS dn FROM $contacts",
            key=sql.col("tl_key" if p.cached else "Id"),
            dn=_dn(exp.cast(sql.col(s.field), exp.DataType.Type.DATE)),
            contacts=(
                exp.Subquery(this=_todo_contacts(), alias=exp.TableAlias(this=sql.ident("c")))
                if p.cached
                else sql.table(CONTACTS.name)
            ),
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


def _unanswered(p: _Plan) -> list[CompiledFeature]:
    return [f for f in p.features if f.spec.type == "unanswered"]


def _triggers(p: _Plan, index: int, kinds: list[str]) -> exp.Expr:
    """The activities of these kinds (cid, day, aid): for a batch, its contacts' rows of `_pooled`'s table for
    the `index`th unanswered feature."""
    if p.cached:
        return _of_batch(f"{TRIGGERS}{index}", ["cid", "day", "aid"])
    return sql.q("SELECT cid, day, aid FROM $act WHERE $kinds", act=sql.table(CLASSIFIED.name), kinds=_any_kind(kinds))


def _unanswered_statements(p: _Plan, answered: Mapping[str, str]) -> tuple[list[exp.Expr], dict[str, str]]:
    """Per `unanswered` feature: its triggers (`tl_t_u<i>`: day, index, first day open, day it closes), and on
    every point the day of the oldest trigger open there (`tl_t_uo<i>`).

    A trigger on day d is open on the days t with d + older < t < d + within and not yet answered: from
    d + older + 1 up to the day before its window or its answer closes it. With `answers_all_before` the answer is
    the first answering activity on or after d; with `answers_oldest` the one connector.engine.answers gives it
    (a thank-you answers its own input, so triggers no longer close in the order they came: the oldest open one
    on a point is found among the contact's triggers, not by counting those closed). `answered`: see `_pooled`."""
    out: list[exp.Expr] = []
    tables: dict[str, str] = {}
    for i, f in enumerate(_unanswered(p)):
        s = f.spec
        triggers = f"tl_t_u{i}"
        opened = f"tl_t_uo{i}"
        if s.answers_oldest:
            if p.cached:  # a batch: its contacts' rows of `_pooled`'s table
                source = _of_batch(f"{TRIGGERS}{i}", ["cid", "day", "idx", "na"])
            else:
                matched = answered.get(f.name)
                if matched is None:
                    out += answers.statements(f, _matched(i), exp.true())
                    matched = _matched(i)
                source = sql.q("SELECT cid, day, idx, na FROM $m", m=sql.table(matched))
            dn = _dn(sql.col("day"))
            na = _dn(sql.col("na"))
            end = sql.q("LEAST($dn + $w, $na)", dn=dn.copy(), w=s.within_days, na=na) if s.within_days else na
            body = sql.q(
                "SELECT cid, $dn AS dn, idx, $dn1 + $opens AS opens, $end AS closes FROM ($src) m",
                dn=dn,
                dn1=dn.copy(),
                opens=(s.older_than_days or 0) + 1,
                end=end,
                src=source,
            )
        else:
            trig, ans = p.count(s.unanswered or []), p.count(s.answered_by or [])
            nxt = _over(
                exp.Min(this=sql.case([(exp.GT(this=sql.col(ans), expression=sql.lit(0)), sql.col("dn"))])),
                following=True,
            )
            found = sql.q(
                "SELECT cid, dn, $na AS na FROM $days WHERE $t > 0 OR $a > 0",
                na=nxt,
                days=sql.table(DAYS),
                t=sql.col(trig),
                a=sql.col(ans),
            )
            end = sql.q("LEAST(t.dn + $w, a.na)", w=s.within_days) if s.within_days else sql.q("a.na")
            body = sql.q(
                "SELECT t.cid, t.dn, t.idx, t.dn + $opens AS opens, $end AS closes FROM ("
                "  SELECT cid, $dn AS dn, row_number() OVER (PARTITION BY cid ORDER BY day, aid) - 1 AS idx"
                "  FROM ($src) s) t JOIN ($found) a ON a.cid = t.cid AND a.dn = t.dn",
                opens=(s.older_than_days or 0) + 1,
                end=end,
                dn=_dn(sql.col("day")),
                src=_triggers(p, i, s.unanswered or []),
                found=found,
            )
        out.append(sql.create_temp(triggers, body))
        # The oldest open trigger on each point: a few triggers a contact, each against the contact's points.
        out.append(
            sql.create_temp(
                opened,
                sql.q(
                    "SELECT p.cid, p.dn, min(t.dn) AS tdn FROM $points p JOIN $t t ON t.cid = p.cid "
                    "AND t.opens <= p.dn AND (t.closes IS NULL OR p.dn < t.closes) GROUP BY p.cid, p.dn",
                    points=sql.table(POINTS),
                    t=sql.table(triggers),
                ),
            )
        )
        tables[f.name] = opened
    return out, tables
