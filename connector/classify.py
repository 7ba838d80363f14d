"""Pass 1: every activity gets one boolean column per declared kind (an activity may be of several kinds).

Reads the backend's `crm_activity` relation (one row per Task/Event of a Contact, with its `day`) and keeps only
activities dated on or before the evaluation date that are of at least one kind, so later passes scan less.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from connector.ruleset.compiler import AS_OF, RuleSet

ACT_TABLE = "tl_act"


def as_of_sql(as_of: dt.date) -> str:
    return f"DATE '{as_of.isoformat()}'"


def kind_column(kind: str) -> str:
    return f'"k__{kind}"'


def classify(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, *, contact_id: str | None = None) -> int:
    """Materialise the classified activities; returns how many were kept."""
    kinds = ",\n  ".join(f"COALESCE({k.sql}, false) AS {kind_column(k.name)}" for k in rules.kinds.values())
    any_kind = " OR ".join(kind_column(k) for k in rules.kinds)
    where = f"day <= {as_of_sql(as_of)}"
    params: list[str] = []
    if contact_id is not None:
        where += " AND WhoId = ?"
        params.append(contact_id)
    sql = f"""
CREATE OR REPLACE TEMP TABLE {ACT_TABLE} AS
SELECT * FROM (
  SELECT WhoId AS cid, Id AS aid, day, Subject, object,
  {kinds}
  FROM crm_activity WHERE {where}
) WHERE {any_kind}
""".replace(AS_OF, as_of_sql(as_of))
    con.execute(sql, params)
    return int(con.execute(f"SELECT count(*) FROM {ACT_TABLE}").fetchone()[0])  # type: ignore[index]
