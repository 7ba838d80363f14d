"""Pass 2: per-contact features, as one grouped aggregation over the classified activities (plus one small
pass over gratitude triggers for `unanswered` features, and which answer answered which trigger where one answer
answers one: connector.engine.answers), then contact fields and calculated features.

`unanswered` triggers count once they are more than `older_than_days` old (the product brief's "more than N
days"). Windows count back from the evaluation date: `within_days: N` keeps activities with day > as_of - N, so the
window holds N days including the evaluation day. Activity-citing features (first, last, unanswered) keep the
cited activity's date and subject; ties on the same day are broken by activity Id, so runs are reproducible.
"""

from __future__ import annotations

import datetime as dt

import duckdb
from sqlglot import exp

from connector import sql
from connector.engine import answers, origin
from connector.engine.relations import (
    BASE,
    CLASSIFIED,
    CONTACTS,
    FEATURES,
    UNANSWERED,
    feature_act_col,
    feature_answered_col,
    feature_col,
    feature_id_col,
    feature_kind_col,
    feature_private_col,
    feature_subject_col,
    kind_col,
)
from connector.ruleset.compiler import CompiledFeature, RuleSet, period_days

# The cited activity: day, Id, subject, whether it is private, and the label of its first kind in the feature.
_FIRST = 'min(struct_pack(d := day, i := aid, s := "Subject", p := "IsPrivate", k := $k))'
_LAST = 'max(struct_pack(d := day, i := aid, s := "Subject", p := "IsPrivate", k := $k))'
_OLDEST = 'min(struct_pack(d := a.day, i := a.aid, s := a."Subject", p := a."IsPrivate", k := $k))'


def _any(kinds: list[str], table: str | None = None) -> exp.Expr:
    return sql.any_of(sql.col(kind_col(k), table) for k in dict.fromkeys(kinds))


def _label(rules: RuleSet, kinds: list[str], table: str | None = None) -> exp.Expr:
    """The label of the first of `kinds` the activity is of, for citing it without its subject."""
    return sql.case(
        (sql.col(kind_col(k), table), origin.tag(sql.lit(rules.kinds[k].label or k), ("kinds", k, "label")))
        for k in dict.fromkeys(kinds)
        if k in rules.kinds
    )


def _within(days: int | None, table: str | None = None) -> exp.Expr:
    if not days:
        return exp.true()
    return sql.q("$day > $as_of - $n", day=sql.col("day", table), n=days)


_PERIOD_BITS = 62  # periods a BIGINT holds as bits (the sign bit and one spare left alone)


def _filtered(template: str, cond: exp.Expr, name: str, **slots: sql.Slot) -> exp.Expr:
    """`<aggregate> FILTER (WHERE cond) AS name`."""
    return sql.alias(exp.Filter(this=sql.q(template, **slots), expression=exp.Where(this=cond)), name)


def _aggregates(f: CompiledFeature, rules: RuleSet) -> list[exp.Expr]:
    s = f.spec
    if s.type == "count":
        assert s.count is not None
        return [_filtered("count(*)", exp.and_(_any(s.count), _within(s.within_days)), feature_col(f.name))]
    if s.type in ("first", "last"):
        kinds = s.first if s.type == "first" else s.last
        assert kinds is not None
        template = _FIRST if s.type == "first" else _LAST
        return [
            _filtered(
                template, exp.and_(_any(kinds), _within(s.within_days)), feature_act_col(f.name), k=_label(rules, kinds)
            )
        ]
    if s.type == "distinct_periods":
        assert s.distinct_periods is not None
        assert s.periods is not None
        p = period_days(s)
        cond = exp.and_(_any(s.distinct_periods), _within(p * s.periods))
        if s.periods > _PERIOD_BITS:
            return [_filtered("count(DISTINCT ($as_of - day) // $p)", cond, feature_col(f.name), p=p)]
        # The periods as bits of one number: a distinct count without a hash table per contact (a first sync's
        # most expensive aggregate, at a million contacts).
        # The shift is clamped as well as guarded: an engine may compute it on the rows the condition leaves out.
        bits = sql.q(
            "bit_or(CASE WHEN $cond THEN CAST(1 AS BIGINT) "
            "<< LEAST(GREATEST(CAST(($as_of - day) // $p AS INTEGER), 0), $top) END)",
            cond=cond,
            p=p,
            top=_PERIOD_BITS,
        )
        return [sql.alias(sql.q("COALESCE(bit_count($b), 0)", b=bits), feature_col(f.name))]
    if s.type == "ratio":
        assert s.ratio is not None
        assert s.per is not None
        ratio = sql.q(
            "CAST(count(*) FILTER (WHERE $a) AS DOUBLE) / NULLIF(count(*) FILTER (WHERE $b), 0)",
            a=exp.and_(_any(s.ratio), _within(s.within_days)),
            b=exp.and_(_any(s.per), _within(s.within_days)),
        )
        return [sql.alias(ratio, feature_col(f.name))]
    if s.type == "unanswered":
        assert s.answered_by is not None
        return [_filtered("max(day)", _any(s.answered_by), feature_answered_col(f.name))]
    return []


def _base(rules: RuleSet) -> exp.Expr:
    aggs = [origin.tag(a, ("features", f.name)) for f in rules.features.values() for a in _aggregates(f, rules)]
    if not aggs:
        return sql.create_temp(BASE.name, sql.q("SELECT DISTINCT cid FROM $t", t=sql.table(CLASSIFIED.name)))
    body = sql.select(sql.col("cid"), *aggs, from_=CLASSIFIED.name).group_by(sql.col("cid"))
    return sql.create_temp(BASE.name, body)


def _answered_table(i: int) -> str:
    return f"tl_answered_{i}"


def answered_tables(rules: RuleSet) -> dict[str, str]:
    """The table `statements` makes for each `answers_oldest` feature (connector.engine.answers), by feature name:
    which answer answered which trigger, as the timeline needs it too."""
    unanswered = [f for f in rules.features.values() if f.spec.type == "unanswered"]
    return {f.name: _answered_table(i) for i, f in enumerate(f for f in unanswered if f.spec.answers_oldest)}


def _unanswered(features: list[CompiledFeature], rules: RuleSet) -> exp.Expr:
    cols = []
    paired = [f for f in features if f.spec.answers_oldest]
    for f in features:
        s = f.spec
        assert s.unanswered is not None
        assert s.older_than_days is not None
        answered = sql.col(feature_answered_col(f.name), "b")
        if s.answers_oldest:
            # Open while no answer has answered it (connector.engine.answers: a thank-you answers its own input).
            open_ = sql.q("$na IS NULL", na=sql.col("na", f"m{paired.index(f)}"))
        else:
            open_ = sql.q("($answered IS NULL OR a.day > $answered)", answered=answered)
        cond = exp.and_(
            _any(s.unanswered, "a"),
            sql.q("a.day < $as_of - $n", n=s.older_than_days),
            _within(s.within_days, "a"),
            open_,
        )
        oldest = _filtered(_OLDEST, cond, feature_act_col(f.name), k=_label(rules, s.unanswered, "a"))
        cols.append(origin.tag(oldest, ("features", f.name)))
    triggers = _any([k for f in features for k in (f.spec.unanswered or [])], "a")
    body = (
        exp.select(sql.col("cid", "a"), *cols)
        .from_(exp.alias_(sql.table(CLASSIFIED.name), "a"))
        .join(exp.alias_(sql.table(BASE.name), "b"), on=sql.q("a.cid = b.cid"))
    )
    for i in range(len(paired)):
        body = body.join(
            exp.alias_(sql.table(_answered_table(i)), f"m{i}"),
            on=sql.q(f"m{i}.cid = a.cid AND m{i}.aid = a.aid"),
            join_type="left",
            copy=False,
        )
    body = body.where(triggers, copy=False).group_by(sql.col("cid", "a"), copy=False)
    return sql.create_temp(UNANSWERED.name, body)


def _columns(f: CompiledFeature) -> list[exp.Expr]:
    s = f.spec
    name = f.name
    if s.type in ("count", "distinct_periods"):
        return [sql.alias(sql.q("COALESCE($v, 0)", v=sql.col(feature_col(name), "b")), feature_col(name))]
    if s.type == "ratio":
        return [sql.alias(sql.col(feature_col(name), "b"), feature_col(name))]
    if f.cites_activity:
        act = sql.col(feature_act_col(name), "u" if s.type == "unanswered" else "b")
        return [
            sql.alias(sql.q("struct_extract($a, 'd')", a=act), feature_col(name)),
            sql.alias(sql.q("struct_extract($a, 's')", a=act), feature_subject_col(name)),
            sql.alias(sql.q("struct_extract($a, 'i')", a=act), feature_id_col(name)),
            sql.alias(sql.q("struct_extract($a, 'p')", a=act), feature_private_col(name)),
            sql.alias(sql.q("struct_extract($a, 'k')", a=act), feature_kind_col(name)),
        ]
    if s.type == "field":
        assert s.field is not None
        value: exp.Expr = sql.col(s.field, "c")
        if f.type.name == "DATE":
            value = exp.cast(value, "DATE")
        return [sql.alias(value, feature_col(name))]
    return []


def _levels(rules: RuleSet) -> list[list[CompiledFeature]]:
    """Expression features grouped so each group uses only features computed before it."""
    level: dict[str, int] = {}
    for f in rules.features.values():  # dependency order
        if f.spec.type == "expr" and f.expr is not None:
            level[f.name] = 1 + max((level.get(n, 0) for n in f.expr.names), default=0)
    groups: list[list[CompiledFeature]] = [[] for _ in range(max(level.values(), default=0))]
    for name, lv in level.items():
        groups[lv - 1].append(rules.features[name])
    return groups


def _features(rules: RuleSet, *, one_contact: bool, unanswered: bool, replay: bool) -> exp.Expr:
    cur = [sql.alias(sql.col("Id", "c"), "cid"), *(sql.col(n, "c") for n in CONTACTS.names if n.startswith("cur_"))]
    if replay:  # each row is a contact at one past date (connector.engine.history): the date travels along
        cur.append(sql.col("as_of", "c"))
    cols = [origin.tag(c, ("features", f.name)) for f in rules.features.values() for c in _columns(f)]
    body = (
        exp.select(*cur, *cols)
        .from_(exp.alias_(sql.table(CONTACTS.name), "c"))
        .join(exp.alias_(sql.table(BASE.name), "b"), on=sql.q('b.cid = c."Id"'), join_type="left")
    )
    if unanswered:
        body = body.join(
            exp.alias_(sql.table(UNANSWERED.name), "u"), on=sql.q('u.cid = c."Id"'), join_type="left", copy=False
        )
    if one_contact:
        body = body.where(sql.q('c."Id" = $contact_id'), copy=False)
    out: exp.Select = body
    for group in _levels(rules):
        exprs = [sql.alias(f.expr.expr.copy(), feature_col(f.name)) for f in group if f.expr is not None]
        out = exp.select(exp.Star(), *exprs).from_(out.subquery(copy=False), copy=False)
    return sql.create_temp(FEATURES.name, out)


def statements(rules: RuleSet, *, one_contact: bool = False, replay: bool = False) -> list[exp.Expr]:
    unanswered = [f for f in rules.features.values() if f.spec.type == "unanswered"]
    out = [_base(rules)]
    for i, f in enumerate(f for f in unanswered if f.spec.answers_oldest):
        out += answers.statements(f, _answered_table(i), exp.true())
    if unanswered:
        out.append(_unanswered(unanswered, rules))
    out.append(_features(rules, one_contact=one_contact, unanswered=bool(unanswered), replay=replay))
    return out


def build(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, *, contact_id: str | None = None) -> None:
    params: dict[str, object] = {"as_of": as_of, "contact_id": contact_id}
    one = contact_id is not None
    sql.run_each(
        con, rules.memo.keep(("features", one), lambda: sql.rendered_each(statements(rules, one_contact=one))), params
    )
