"""Findings a rule file earns only against data: kinds that match no activity of the CRM at hand."""

from __future__ import annotations

import duckdb
from sqlglot import exp

from connector.engine import sql
from connector.errors import Finding
from connector.ruleset.compiler import RuleSet
from connector.ruleset.lint import WARNING


def data_findings(rules: RuleSet, con: duckdb.DuckDBPyConnection, label: str) -> list[Finding]:
    """Kinds that match no activity in the CRM's `crm_activity` (all of it, whatever its date)."""
    if not rules.kinds:
        return []
    counts = [
        exp.Filter(
            this=sql.q("count(*)"),
            expression=exp.Where(this=exp.Coalesce(this=k.expr.copy(), expressions=[exp.false()])),
        )
        for k in rules.kinds.values()
    ]
    row = sql.run(con, sql.select(sql.q("count(*)"), *counts, from_="crm_activity")).fetchone()
    assert row is not None
    total = int(row[0])
    out = []
    for (name, _), n in zip(rules.kinds.items(), row[1:], strict=True):
        if not n:
            out.append(
                rules.source.finding(
                    ("kinds", name),
                    f"kind '{name}' matches none of the {total:,} activities in {label}: check its "
                    "match condition against how your org logs this activity",
                    severity=WARNING,
                )
            )
    return out


# -- helpers -------------------------------------------------------------------------------------------------
