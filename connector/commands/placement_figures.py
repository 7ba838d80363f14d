"""Figures a sync reports and records, read from the engine's placement and plan."""

from __future__ import annotations

import duckdb
from sqlglot import exp

from connector.config import Config
from connector.engine import sql
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


def counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    row = sql.run(
        con, sql.q("SELECT count(*), count(*) FILTER (WHERE in_grace) FROM $t", t=sql.table(PLACE.name))
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def per_rung(con: duckdb.DuckDBPyConnection, rules: RuleSet) -> dict[str, int]:
    got = dict(sql.run(con, sql.q("SELECT new_stage, count(*) FROM $t GROUP BY 1", t=sql.table(PLACE.name))).fetchall())
    return {r.name: int(got.get(r.name, 0)) for r in rules.rungs}


def per_flag(con: duckdb.DuckDBPyConnection, rules: RuleSet) -> dict[str, int]:
    if not rules.flags:
        return {}
    counts = [
        exp.Filter(this=sql.q("count(*)"), expression=exp.Where(this=sql.col(flag_col(f.id)))) for f in rules.flags
    ]
    row = sql.run(con, sql.select(*counts, from_=PLACE.name)).fetchone()
    assert row is not None
    return {f.label: int(v) for f, v in zip(rules.flags, row, strict=True)}
