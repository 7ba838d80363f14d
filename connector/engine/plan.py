"""Pass 4: the write-back plan, only the contacts and fields whose value would change.

Multi-select values are compared as sets, because Salesforce returns them in picklist order whatever order we
wrote. The rules version is not compared: it is written along with a real change, never on its own, so a rule
edit that moves nobody costs no writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlglot import exp

from connector import sql
from connector.config import FieldsSection
from connector.engine.relations import PLACE, PLAN, PLAN_FIELDS, changed_col


@dataclass(frozen=True)
class FieldChange:
    contact_id: str
    field: str  # API name
    old: object
    new: object


def _multi(column: str) -> exp.Expr:
    return sql.q("list_sort(string_split(COALESCE($c, ''), ';'))", c=sql.col(column))


def statement(fields: FieldsSection | None = None) -> exp.Expr:
    """`tl_plan`. An optional field the CRM lacks (switched off in `fields`) never counts as changed, so a contact
    is not planned again and again for a value that cannot be written."""
    in_use = (fields or FieldsSection()).owned()
    changed = []
    for logical, (new, cur) in PLAN_FIELDS.items():
        if logical not in in_use:
            differs: exp.Expr = exp.false()
        elif logical == "flags":
            differs = exp.NullSafeNEQ(this=_multi(new), expression=_multi(cur))
        else:
            differs = exp.NullSafeNEQ(this=sql.col(new), expression=sql.col(cur))
        changed.append(sql.alias(exp.Paren(this=differs), changed_col(logical)))
    values = [sql.col(c) for new, cur in PLAN_FIELDS.values() for c in (new, cur)]
    inner = sql.select(sql.col("cid"), *values, sql.col("cur_version"), *changed, from_=PLACE.name)
    outer = (
        exp.select(exp.Star())
        .from_(inner.subquery(copy=False), copy=False)
        .where(sql.any_of(sql.col(changed_col(k)) for k in PLAN_FIELDS), copy=False)
    )
    return sql.create_temp(PLAN.name, outer)


def build(con: duckdb.DuckDBPyConnection, fields: FieldsSection | None = None) -> int:
    sql.run(con, statement(fields))
    return int(sql.scalar(con, sql.q("SELECT count(*) FROM $t", t=sql.table(PLAN.name))))


Fetch = Callable[[exp.Expr], list[tuple[Any, ...]]]  # a query's rows, on whichever engine holds `tl_plan`


def sample(fetch: Fetch, fields: FieldsSection, limit: int = 20) -> list[FieldChange]:
    """The first planned changes, by contact Id, for a dry run to show."""
    cols = [sql.col(c) for k, (new, cur) in PLAN_FIELDS.items() for c in (changed_col(k), new, cur)]
    tree = sql.select(sql.col("cid"), *cols, from_=PLAN.name).order_by("cid").limit(sql.lit(int(limit)))
    out: list[FieldChange] = []
    for row in fetch(tree):
        cid, rest = row[0], row[1:]
        for i, logical in enumerate(PLAN_FIELDS):
            ch, new, cur = rest[3 * i : 3 * i + 3]
            if ch and getattr(fields, logical):
                out.append(FieldChange(cid, getattr(fields, logical), cur, new))
    return out


def field_counts(fetch: Fetch) -> dict[str, int]:
    counts = [
        exp.Filter(this=sql.q("count(*)"), expression=exp.Where(this=sql.col(changed_col(k)))) for k in PLAN_FIELDS
    ]
    (row,) = fetch(sql.select(*counts, from_=PLAN.name))
    return dict(zip(PLAN_FIELDS, (int(v) for v in row), strict=True))
