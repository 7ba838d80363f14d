"""The days a contact's rung or flags can change (its points), the per-day counts, and the triggers of
`unanswered` features."""

from __future__ import annotations

from sqlglot import exp

from connector import sql
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
    _in_todo,
    _of_batch,
    _over,
    _period,
    _Plan,
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
    counts = [
        sql.alias(exp.Filter(this=sql.q("count(*)"), expression=exp.Where(this=_any_kind(ks))), n)
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
        cols = [
            sql.q(f"{agg}({v}) FILTER (WHERE x.k = $k) AS {v}{k}", k=k)
            for k in range(periods + 1)
            for agg, v in (("min", "mn"), ("max", "mx"))
        ]
        body = (
            exp.select(sql.col("cid", "d"), sql.alias(sql.q("d.g + x.k"), "g"), *cols)
            .from_(exp.Subquery(this=per_day, alias=exp.TableAlias(this=sql.ident("d"))))
            .join(_values([(k,) for k in range(periods + 1)], "x", ["k"]), join_type="cross")
            .group_by(sql.col("cid", "d"), sql.q("d.g + x.k"))
        )
        out.append(sql.create_temp(name, body))
    return out


def _pooled(p: _Plan) -> list[exp.Expr]:
    """What every batch reads, made once for all the contacts a sync computes (the engine's inputs are narrowed to
    them): the day counts and the day each contact was created. A batch picks its rows from these small tables
    instead of filtering the classified activities and the contacts' view again, which at a million contacts cost
    more than a third of the batches' own work."""
    born = sql.q(
        'SELECT "Id" AS cid, $dn AS dn FROM $contacts WHERE "CreatedDate" IS NOT NULL',
        dn=_dn(exp.cast(sql.col("CreatedDate"), exp.DataType.Type.DATE)),
        contacts=sql.table(CONTACTS.name),
    )
    triggers = [
        _by_batch_key(
            f"{TRIGGERS}{i}",
            sql.q(
                "SELECT cid, day, aid FROM $act WHERE $kinds", act=sql.table(CLASSIFIED.name), kinds=_any_kind(kinds)
            ),
        )
        for i, kinds in enumerate(f.spec.unanswered or [] for f in _unanswered(p))
    ]
    return [_by_batch_key(DAYS_ALL, _day_counts(p)), _by_batch_key(BORN, born), *triggers]


def _by_batch_key(name: str, body: exp.Expr) -> exp.Expr:
    """`body` with the batch key `h` (`_of_batch`), in its order: a batch's rows lie together, and its join
    skips the others' blocks."""
    return sql.create_temp(name, sql.q("SELECT hash(cid) AS h, * FROM ($b) b ORDER BY h", b=body))


def _points(p: _Plan) -> exp.Expr:
    """Every day a contact's rung or flags can change, and two more: the day its record was created (where its
    lowest rung starts) and the evaluation day."""
    branches: list[exp.Expr] = [sql.select(sql.col("cid"), sql.col("dn"), from_=DAYS)]
    if p.cached:  # a batch: its contacts are `tl_t_todo`'s
        branches += [
            _of_batch(BORN, ["cid", "dn"]),
            sql.q("SELECT cid, $dn AS dn FROM $todo", dn=_dn(sql.as_of()), todo=sql.table(TODO)),
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


def _first_come(p: _Plan, index: int, trig: str, ans: str, kinds: list[str]) -> exp.Expr:
    """For an `answers_oldest` feature: per trigger (its index among the contact's triggers), the day an answer
    closes it, first come first served. With S the running count of triggers minus answers at the end of each day
    (a day's triggers before its answers), the triggers closed by day d are the answers so far plus min(0, min S
    so far); trigger i closes on the first day that count reaches i + 1 (connector.engine.features._paired reads
    the evaluation day the same way). Triggers still close in index order, so the oldest open one stays the one
    whose index is the number closed."""
    levels = sql.q(
        "SELECT cid, dn, sum($a) OVER (PARTITION BY cid ORDER BY dn) "
        "+ LEAST(0, min(s) OVER (PARTITION BY cid ORDER BY dn)) AS closed FROM ("
        "  SELECT cid, dn, $a, sum($t - $a) OVER (PARTITION BY cid ORDER BY dn) AS s"
        "  FROM $days WHERE $t > 0 OR $a > 0) d",
        a=sql.col(ans),
        t=sql.col(trig),
        days=sql.table(DAYS),
    )
    triggers = sql.q(
        "SELECT cid, row_number() OVER (PARTITION BY cid ORDER BY day, aid) - 1 AS idx FROM ($src) s",
        src=_triggers(p, index, kinds),
    )
    return sql.q(
        "SELECT t.cid, t.idx, min(l.dn) AS na FROM ($triggers) t JOIN ($levels) l "
        "ON l.cid = t.cid AND l.closed >= t.idx + 1 GROUP BY t.cid, t.idx",
        triggers=triggers,
        levels=levels,
    )


def _unanswered(p: _Plan) -> list[CompiledFeature]:
    return [f for f in p.features if f.spec.type == "unanswered"]


def _triggers(p: _Plan, index: int, kinds: list[str]) -> exp.Expr:
    """The activities of these kinds (cid, day, aid): for a batch, its contacts' rows of `_pooled`'s table for
    the `index`th unanswered feature."""
    if p.cached:
        return _of_batch(f"{TRIGGERS}{index}", ["cid", "day", "aid"])
    return sql.q("SELECT cid, day, aid FROM $act WHERE $kinds", act=sql.table(CLASSIFIED.name), kinds=_any_kind(kinds))


def _unanswered_statements(p: _Plan) -> tuple[list[exp.Expr], dict[str, tuple[str, str]]]:
    """Per `unanswered` feature: its triggers in order (`tl_t_u<i>`: day, index, first day open, day it closes),
    and the number of triggers closed by each day (`tl_t_uc<i>`).

    A trigger on day d is open on the days t with d + older < t < d + within and no answer in [d, t]: from
    d + older + 1 up to the day before its window or its first answer closes it. Both ends grow with d, so the
    open triggers on a day are consecutive in day order, and the oldest open one is the first not yet closed: the
    trigger whose index is the number closed so far, if it has opened. With `each_answer: answers_oldest` an
    answer closes one trigger, not all before it (`_first_come`): the closing days still grow with the index."""
    out: list[exp.Expr] = []
    tables: dict[str, tuple[str, str]] = {}
    for i, f in enumerate(_unanswered(p)):
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
        if s.answers_oldest:
            answers = _first_come(p, i, trig, ans, s.unanswered or [])
        end = sql.q("LEAST(t.dn + $w, a.na)", w=s.within_days) if s.within_days else sql.q("a.na")
        join = "a.cid = t.cid AND a.idx = t.idx" if s.answers_oldest else "a.cid = t.cid AND a.dn = t.dn"
        body = sql.q(
            "SELECT t.cid, t.dn, t.idx, t.dn + $opens AS opens, $end AS closes FROM ("
            "  SELECT cid, $dn AS dn, row_number() OVER (PARTITION BY cid ORDER BY day, aid) - 1 AS idx"
            f"  FROM ($src) s) t {'LEFT ' if s.answers_oldest else ''}JOIN ($answers) a ON {join}",
            opens=(s.older_than_days or 0) + 1,
            end=end,
            dn=_dn(sql.col("day")),
            src=_triggers(p, i, s.unanswered or []),
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
