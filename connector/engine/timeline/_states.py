"""On every point: the window aggregates, the features the conditions read, the flags, the criteria and the
rung qualified for."""

from __future__ import annotations

from sqlglot import exp

from connector import sql
from connector.engine.relations import (
    CONTACTS,
    criterion_col,
    feature_col,
    flag_col,
)
from connector.engine.timeline._base import (
    DAYS,
    PERIODS,
    POINTS,
    STATES,
    _date,
    _in_period,
    _over,
    _period,
    _Plan,
    _todo_contacts,
    _window,
)
from connector.ruleset.compiler import CompiledFeature, RuleSet, period_days
from connector.ruleset.expr import Type


def _grid(p: _Plan) -> exp.Select:
    """The window aggregates on every point (those the features registered, engine.timeline._states). Day
    numbers travel through the windows, dates are made after them: every column a window carries is sorted."""
    cols: list[exp.Expr] = [sql.col("cid", "g"), sql.col("dn", "g"), sql.alias(_date(sql.col("dn", "g")), "as_of")]
    pairs, single = _packed(p)
    firsts = {name: n for key, (name, _) in p.windows.items() if (n := p.first_ever(key)) is not None}
    cols += [sql.alias(w, name) for name, w in single if name not in firsts]
    cols += [
        sql.alias(sql.q("CASE WHEN $f <= g.dn THEN $v END", f=sql.col(f"f_{n}", "g"), v=sql.col(f"f_{n}", "g")), name)
        for name, n in firsts.items()
    ]
    cols += [sql.alias(w, f"pk_{i}") for i, (w, _) in enumerate(pairs)]
    src = exp.select(sql.col("cid", "p"), sql.col("dn", "p")).from_(exp.alias_(sql.table(POINTS), "p"))
    src = src.select(*(sql.col(n, "d") for n in p.kindsets.values()), append=True, copy=False)
    src = src.join(
        exp.alias_(sql.table(DAYS), "d"), on=sql.q("d.cid = p.cid AND d.dn = p.dn"), join_type="left", copy=False
    )
    if firsts:  # each contact's first day with such activity, beside every point
        ns = sorted(set(firsts.values()))
        mins = ", ".join(f"min(dn) FILTER (WHERE {n} > 0) AS f_{n}" for n in ns)
        ever = sql.q(f"SELECT cid, {mins} FROM $days GROUP BY cid", days=sql.table(DAYS))
        src = src.select(*(sql.col(f"f_{n}", "e") for n in ns), append=True, copy=False)
        src = src.join(
            exp.Subquery(this=ever, alias=exp.TableAlias(this=sql.ident("e"))),
            on=sql.q("e.cid = p.cid"),
            join_type="left",
            copy=False,
        )
    grid = exp.select(*cols).from_(src.subquery("g", copy=False), copy=False)
    if not pairs:
        return grid
    unpacked = [
        sql.alias(exp.cast(sql.q(f"pk_{i} {op} $b", b=_PACK), "BIGINT"), name)
        for i, (_, names) in enumerate(pairs)
        for op, name in zip(("%", "//"), names, strict=True)
    ]
    return exp.select(exp.Star(), *unpacked).from_(grid.subquery("k", copy=False), copy=False)


_PACK = 2**32  # two counts in one sum: each is below 2**31 (no contact has two billion activities)


def _packed(p: _Plan) -> tuple[list[tuple[exp.Expr, tuple[str, str]]], list[tuple[str, exp.Expr]]]:
    """The window aggregates, sums over the same frame paired into one sum of both counts (`pk_<i>`, the low and
    high 32 bits): one frame costs the same whatever it sums, and on the default rules three counts share the
    90-day frame. The others as they are."""
    frames: dict[tuple[str, int | None, int | None], list[tuple[str, str]]] = {}
    single: list[tuple[str, exp.Expr]] = []
    for (agg, n, kind, start, end), (name, w) in p.windows.items():
        if agg == "sum":
            frames.setdefault((kind, start, end), []).append((n, name))
        else:
            single.append((name, w))
    pairs: list[tuple[exp.Expr, tuple[str, str]]] = []
    for (kind, start, end), sums in frames.items():
        for j in range(0, len(sums) - 1, 2):
            (a, wa), (b, wb) = sums[j], sums[j + 1]
            both = sql.q("COALESCE($a, 0) + COALESCE($b, 0) * $k", a=sql.col(a), b=sql.col(b), k=_PACK)
            pairs.append((_window(exp.Sum(this=both), kind, start, end), (wa, wb)))
        if len(sums) % 2:
            n, name = sums[-1]
            single.append((name, _window(exp.Sum(this=sql.col(n)), kind, start, end)))
    return pairs, single


def _feature_value(p: _Plan, f: CompiledFeature, unanswered: dict[str, str]) -> exp.Expr | None:
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
        table = p.period_table(n, per, s.periods or 0)
        hits: exp.Expr = sql.lit(0)
        for m in range(s.periods or 0):
            if table is not None:  # see `_points._periods`
                pp, r = _period_alias(table), _in_period(sql.col("dn", "g"), per)
                seen = sql.q("$mn <= $r OR $mx > $r", mn=sql.col(f"mn{m}", pp), mx=sql.col(f"mx{m + 1}", pp), r=r)
            else:
                seen = exp.GT(this=p.window("sum", n, "RANGE", (m + 1) * per - 1, m * per), expression=sql.lit(0))
            hit = sql.q("CASE WHEN COALESCE($seen, false) THEN 1 ELSE 0 END", seen=seen)
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
        return _date(sql.col("tdn", f"u{i}"))
    if s.type == "field":
        assert s.field is not None
        value: exp.Expr = sql.col(s.field, "c")
        return exp.cast(value, "DATE") if f.type == Type.DATE else value
    return None


def _period_alias(table: str) -> str:
    return "pp" + table.removeprefix(PERIODS)


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


def _states(p: _Plan, unanswered: dict[str, str], grid: exp.Select) -> exp.Expr:
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
        contacts = exp.Subquery(this=_todo_contacts(), alias=exp.TableAlias(this=sql.ident("c")))
        inner = inner.join(
            contacts if p.cached else exp.alias_(sql.table(CONTACTS.name), "c"),
            on=sql.q("c.tl_key = g.cid" if p.cached else 'c."Id" = g.cid'),
            join_type="left",
            copy=False,
        )
    for n, per in p.periods:
        table = p.period_table(n, per)
        assert table is not None
        a = _period_alias(table)
        on = sql.q(
            "$a = g.cid AND $g = $period",
            a=sql.col("cid", a),
            g=sql.col("g", a),
            period=_period(sql.col("dn", "g"), per),
        )
        inner = inner.join(exp.alias_(sql.table(table), a), on=on, join_type="left", copy=False)
    for i, opened in enumerate(unanswered.values()):
        on = exp.and_(
            exp.EQ(this=sql.col("cid", f"u{i}"), expression=sql.col("cid", "g")),
            exp.EQ(this=sql.col("dn", f"u{i}"), expression=sql.col("dn", "g")),
        )
        inner = inner.join(exp.alias_(sql.table(opened), f"u{i}"), on=on, join_type="left", copy=False)
    out: exp.Select = inner
    for group in _levels(p.features):
        exprs = [sql.alias(_as_of_col(f.expr.expr), feature_col(f.name)) for f in group if f.expr is not None]
        out = exp.select(exp.Star(), *exprs).from_(out.subquery(copy=False), copy=False)
    flags = [
        sql.alias(exp.Coalesce(this=_as_of_col(f.compiled.expr), expressions=[exp.false()]), flag_col(f.id))
        for f in rules.flags
    ]
    out = exp.select(exp.Star(), *flags).from_(out.subquery(copy=False), copy=False)
    open_flags: exp.Expr = sql.lit(0)
    for f in rules.flags:
        open_flags = exp.Add(this=open_flags, expression=exp.cast(sql.col(flag_col(f.id)), "INTEGER"))
    out = exp.select(exp.Star(), sql.alias(open_flags, "open_flags")).from_(out.subquery(copy=False), copy=False)
    crit = [
        sql.alias(exp.Coalesce(this=_as_of_col(c.compiled.expr), expressions=[exp.false()]), criterion_col(r.index, j))
        for r in rules.rungs
        for j, c in enumerate(r.criteria)
    ]
    out = exp.select(exp.Star(), *crit).from_(out.subquery(copy=False), copy=False)
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
    out = exp.select(exp.Star(), qualified).from_(out.subquery(copy=False), copy=False)
    # Along the timeline: the next point, and whether the rung qualified for differs from the point before.
    before = _over(exp.Lag(this=sql.col("qualified")))
    extra = [
        sql.alias(_over(exp.Lead(this=sql.col("dn"))), "nd"),
        *(sql.alias(sig, f"sig_{i}") for i, sig in enumerate(_signatures(rules))),
        sql.alias(sql.q("COALESCE($b <> qualified, true)", b=before), "qchg"),
    ]
    # What the later passes read (and engine.timeline.on_days' criteria); the features stay behind.
    kept = [
        sql.col("cid"),
        sql.col("dn"),
        *(sql.col(flag_col(f.id)) for f in rules.flags),
        *(sql.col(criterion_col(r.index, j)) for r in rules.rungs for j in range(len(r.criteria))),
        sql.col("qualified"),
    ]
    out = exp.select(*kept, *extra).from_(out.subquery(copy=False), copy=False)
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
