"""Pass 2: per-contact features, as one grouped aggregation over the classified activities (plus one small
pass over gratitude triggers for `unanswered` features), then contact fields and calculated features.

`unanswered` triggers count once they are more than `older_than_days` old (the product brief's "more than N
days"). Windows count back from the evaluation date: `within_days: N` keeps activities with day > as_of - N, so the
window holds N days including the evaluation day. Activity-citing features (first, last, unanswered) keep the
cited activity's date and subject; ties on the same day are broken by activity Id, so runs are reproducible.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from connector.classify import ACT_TABLE, as_of_sql, kind_column
from connector.ruleset.compiler import AS_OF, CompiledFeature, RuleSet, period_days

FEAT_TABLE = "tl_feat"


def _any(kinds: list[str], alias: str = "") -> str:
    return "(" + " OR ".join(alias + kind_column(k) for k in dict.fromkeys(kinds)) + ")"


def _window(days: int | None) -> str:
    return f" AND day > {AS_OF} - {days}" if days else ""


def _aggregates(f: CompiledFeature) -> list[str]:
    s = f.spec
    name = f.name
    if s.type == "count":
        assert s.count is not None
        return [f'count(*) FILTER (WHERE {_any(s.count)}{_window(s.within_days)}) AS "{name}"']
    if s.type in ("first", "last"):
        kinds = s.first if s.type == "first" else s.last
        assert kinds is not None
        agg = "min" if s.type == "first" else "max"
        return [(f"{agg}(struct_pack(d := day, i := aid, s := Subject)) "
                 f'FILTER (WHERE {_any(kinds)}{_window(s.within_days)}) AS "{name}__act"')]
    if s.type == "distinct_periods":
        assert s.distinct_periods is not None
        assert s.periods is not None
        p = period_days(s)
        return [(f"count(DISTINCT ({AS_OF} - day) // {p}) "
                 f'FILTER (WHERE {_any(s.distinct_periods)} AND day > {AS_OF} - {p * s.periods}) AS "{name}"')]
    if s.type == "ratio":
        assert s.ratio is not None
        assert s.per is not None
        w = _window(s.within_days)
        return [(f"CAST(count(*) FILTER (WHERE {_any(s.ratio)}{w}) AS DOUBLE) / "
                 f'NULLIF(count(*) FILTER (WHERE {_any(s.per)}{w}), 0) AS "{name}"')]
    if s.type == "unanswered":
        assert s.answered_by is not None
        return [f'max(day) FILTER (WHERE {_any(s.answered_by)}) AS "{name}__answered"']
    return []


def build(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, *, contact_id: str | None = None) -> None:
    feats = list(rules.features.values())
    aggs = [a for f in feats for a in _aggregates(f)]
    base = f"SELECT cid, {', '.join(aggs)} FROM {ACT_TABLE} GROUP BY cid" if aggs else \
        f"SELECT DISTINCT cid FROM {ACT_TABLE}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE tl_base AS {base}".replace(AS_OF, as_of_sql(as_of)))

    unanswered = [f for f in feats if f.spec.type == "unanswered"]
    if unanswered:
        cols = []
        for f in unanswered:
            s = f.spec
            assert s.unanswered is not None
            assert s.older_than_days is not None
            cols.append(
                f"min(struct_pack(d := a.day, i := a.aid, s := a.Subject)) FILTER (WHERE "
                f"{_any(s.unanswered, 'a.')}"
                f" AND a.day < {AS_OF} - {s.older_than_days}{_window(s.within_days).replace('day', 'a.day')}"
                f' AND (b."{f.name}__answered" IS NULL OR a.day > b."{f.name}__answered")) AS "{f.name}__act"'
            )
        triggers = _any([k for f in unanswered for k in (f.spec.unanswered or [])], "a.")
        sql = (f"CREATE OR REPLACE TEMP TABLE tl_unans AS SELECT a.cid, {', '.join(cols)} "
               f"FROM {ACT_TABLE} a JOIN tl_base b ON a.cid = b.cid WHERE {triggers} GROUP BY a.cid")
        con.execute(sql.replace(AS_OF, as_of_sql(as_of)))

    select = ["c.Id AS cid", "c.cur_stage", "c.cur_since", "c.cur_flags", "c.cur_next", "c.cur_reason",
              "c.cur_version"]
    for f in feats:
        s = f.spec
        if s.type in ("count", "distinct_periods"):
            select.append(f'COALESCE(b."{f.name}", 0) AS "{f.name}"')
        elif s.type == "ratio":
            select.append(f'b."{f.name}"')
        elif f.cites_activity:
            src = "u" if s.type == "unanswered" else "b"
            select.append(f'{src}."{f.name}__act".d AS "{f.name}"')
            select.append(f'{src}."{f.name}__act".s AS "{f.name}__subject"')
            select.append(f'{src}."{f.name}__act".i AS "{f.name}__id"')
        elif s.type == "field":
            cast = 'CAST(c."{0}" AS DATE)' if f.type.name == "DATE" else 'c."{0}"'
            select.append(f'{cast.format(s.field)} AS "{f.name}"')
    joins = "LEFT JOIN tl_base b ON b.cid = c.Id"
    if unanswered:
        joins += " LEFT JOIN tl_unans u ON u.cid = c.Id"
    where = "WHERE c.Id = ?" if contact_id is not None else ""
    sql = f"SELECT {', '.join(select)} FROM crm_contact c {joins} {where}"
    for f in feats:
        if f.spec.type == "expr" and f.expr is not None:
            sql = f'SELECT *, {f.expr.sql} AS "{f.name}" FROM ({sql})'
    con.execute(f"CREATE OR REPLACE TEMP TABLE {FEAT_TABLE} AS {sql}".replace(AS_OF, as_of_sql(as_of)),
                [contact_id] if contact_id is not None else [])
