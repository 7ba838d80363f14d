"""Pass 1: every activity gets one boolean column per declared kind (an activity may be of several kinds).

Reads the backend's `crm_activity` relation (one row per Task/Event of a Contact, with its `day`) and keeps only
activities dated on or before the evaluation date that are of at least one kind, so later passes scan less.
"""

from __future__ import annotations

import datetime as dt

import duckdb
from sqlglot import exp

from connector import sql
from connector.engine.relations import ACTIVITY_FACTS, CLASSIFIED, kind_col
from connector.ruleset.compiler import RuleSet

_SOURCE = 'SELECT "WhoId" AS cid, "Id" AS aid, day, "Subject", object FROM crm_activity WHERE day <= $as_of'
_COLUMNS = "SELECT column_name FROM duckdb_columns() WHERE table_name = 'crm_activity'"


def kinds_tree(rules: RuleSet) -> list[exp.Expr]:
    """`COALESCE(<match>, false) AS k_<kind>` for every kind."""
    return [
        sql.alias(exp.Coalesce(this=k.expr.copy(), expressions=[exp.false()]), kind_col(k.name))
        for k in rules.kinds.values()
    ]


def statement(rules: RuleSet, *, one_contact: bool = False, have: frozenset[str] | None = None) -> exp.Expr:
    """`have`: the columns `crm_activity` provides; a fact it lacks is carried as NULL."""
    inner = sql.q(_SOURCE)
    assert isinstance(inner, exp.Select)
    facts = [
        sql.col(name) if have is None or name in have else sql.alias(exp.cast(exp.Null(), typ), name)
        for name, typ in ACTIVITY_FACTS
    ]
    inner = inner.select(*facts, *kinds_tree(rules), append=True, copy=False)
    if one_contact:
        inner = inner.where(sql.q('"WhoId" = $contact_id'), copy=False)
    any_kind = sql.any_of(sql.col(kind_col(k)) for k in rules.kinds)
    outer = exp.select(exp.Star()).from_(inner.subquery(copy=False), copy=False).where(any_kind, copy=False)
    return sql.create_temp(CLASSIFIED.name, outer)


def classify(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, *, contact_id: str | None = None) -> int:
    """Materialise the classified activities; returns how many were kept."""
    params: dict[str, object] = {"as_of": as_of, "contact_id": contact_id}
    have = frozenset(str(r[0]) for r in con.execute(_COLUMNS).fetchall())
    sql.run(con, statement(rules, one_contact=contact_id is not None, have=have), params)
    return int(sql.scalar(con, sql.q("SELECT count(*) FROM $t", t=sql.table(CLASSIFIED.name))))
