"""Figures a sync reports and records, read from the engine's placement and plan."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
from sqlglot import exp

from connector import sql
from connector.config import Config
from connector.engine.relations import PLACE, PLAN, PLAN_FIELDS, changed_col, flag_col
from connector.ruleset.compiler import RuleSet


def audit_rows(con: duckdb.DuckDBPyConnection, cfg: Config) -> dict[str, object]:
    """One row per field an audit run would change: record_id, field (API name), old and new value as text."""
    parts = [
        sql.q(
            "SELECT cid AS record_id, $api AS field, CAST($cur AS VARCHAR) AS old_value, "
            "CAST($new AS VARCHAR) AS new_value FROM $plan WHERE $changed",
            api=getattr(cfg.fields, logical),
            cur=sql.col(cur),
            new=sql.col(new),
            plan=sql.table(PLAN.name),
            changed=sql.col(changed_col(logical)),
        )
        for logical, (new, cur) in PLAN_FIELDS.items()
    ]
    body = parts[0]
    for part in parts[1:]:
        body = exp.union(body, part, distinct=False)
    return dict(sql.run(con, body).fetchnumpy())


Fetch = Callable[[exp.Expr], list[tuple[Any, ...]]]  # runs a query on whichever engine placed the contacts


def on(con: duckdb.DuckDBPyConnection) -> Fetch:
    """The rows of a query on DuckDB; the Spark runner (connector.commands.sync_spark) gives its own."""
    return lambda tree: sql.run(con, tree).fetchall()


def counts(fetch: Fetch, table: str = PLACE.name) -> tuple[int, int, int]:
    """Contacts, those held by the grace period, and those decaying below it (a rung above the one they meet, the
    grace over: they drop one more rung each decay period), in `table` (`tl_place`, or a sync's `tl_standing`).
    Both of the last have a Trust_Held_Until__c, the day of their next drop: the summary names the two apart."""
    (row,) = fetch(
        sql.q(
            "SELECT count(*), count(*) FILTER (WHERE in_grace), "
            "count(*) FILTER (WHERE held_until IS NOT NULL AND NOT COALESCE(in_grace, false)) FROM $t",
            t=sql.table(table),
        )
    )
    return int(row[0]), int(row[1] or 0), int(row[2] or 0)


def per_rung(fetch: Fetch, rules: RuleSet, table: str = PLACE.name) -> dict[str, int]:
    got: dict[Any, Any] = dict(fetch(sql.q("SELECT new_stage, count(*) FROM $t GROUP BY 1", t=sql.table(table))))
    return {r.name: int(got.get(r.name, 0)) for r in rules.rungs}


def per_flag(fetch: Fetch, rules: RuleSet, table: str = PLACE.name) -> dict[str, int]:
    if not rules.flags:
        return {}
    counts = [
        exp.Filter(this=sql.q("count(*)"), expression=exp.Where(this=sql.col(flag_col(f.id)))) for f in rules.flags
    ]
    (row,) = fetch(sql.select(*counts, from_=table))
    return {f.label: int(v) for f, v in zip(rules.flags, row, strict=True)}
