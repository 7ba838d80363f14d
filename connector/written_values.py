"""What a sync from a warehouse copy wrote, kept in the state store until the copy has caught up.

A warehouse copy of Contact (Fivetran, a lakehouse table) lags the CRM: it was taken at `copied_at`, so a write at
T shows in it only once a copy taken after T lands. Until then the copy still shows the old values, and the next run
would plan the same changes again. So a run from the warehouse records, per contact it wrote, the six values and
when (`record`); the next one hands them to Spark (`export`), where they stand in for the copy's values of rows
copied before the write (connector.commands.spark_source); rows the copy has caught up with are dropped (`prune`).

Times are UTC, taken after the write has finished, so a copy stamped later surely holds it. This machine's clock
and the warehouse's copy stamps must agree to within the time between a write and the next copy.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from connector import sql, state
from connector.engine.relations import PLAN_FIELDS, changed_col

TABLE = "tl_state.written_values"
# The stored column of each logical field, and the crm_contact column it stands in for.
COLUMNS: dict[str, str] = {
    "stage": "cur_stage",
    "stage_since": "cur_since",
    "flags": "cur_flags",
    "next_step": "cur_next",
    "reason": "cur_reason",
    "rules_version": "cur_version",
    "held_until": "cur_held_until",
    "previous_stage": "cur_previous",
}

_RECORD = """
INSERT OR REPLACE INTO tl_state.written_values BY NAME
SELECT cid, $stage AS stage, $stage_since AS stage_since, $flags AS flags, $next_step AS next_step, $reason AS reason,
       $version AS rules_version, $at AS written_at, $held_until AS held_until, $previous_stage AS previous_stage
FROM $plan
WHERE NOT list_contains(CAST($refused AS VARCHAR[]), cid)
"""
_EXPORT = "COPY (SELECT * FROM tl_state.written_values) TO $file (FORMAT parquet)"
_COUNT = "SELECT count(*) FROM tl_state.written_values"
_PRUNE = "DELETE FROM tl_state.written_values WHERE cid IN (SELECT cid FROM $caught)"


def now() -> dt.datetime:
    """A write's time as the store keeps it: UTC, without a zone."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def record(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    plan_table: str,
    refused: list[str],
    rules_version: str,
    written_at: dt.datetime,
) -> int:
    """Keep what the CRM (or the out-table) now holds for each planned contact it did not refuse: the new value
    of a changed field, the current one of the others, and the rules version. Set-based, from `plan_table` on
    `con`. Returns how many contacts are recorded now."""
    values = {
        logical: sql.case([(sql.col(changed_col(logical)), sql.col(new))], sql.col(cur))
        for logical, (new, cur) in PLAN_FIELDS.items()
    }
    tree = sql.q(_RECORD, plan=sql.table(plan_table), version=rules_version, **values)
    with state.attached(con, path):
        sql.run(con, tree, {"refused": refused, "at": written_at})
        return int(sql.scalar(con, sql.q(_COUNT)))


def export(path: Path, file: Path) -> int:
    """The recorded values as one Parquet file for Spark to read; returns the row count."""
    with state.opened(path) as con:
        sql.run(con, sql.q(_EXPORT, file=str(file)))
        return int(sql.scalar(con, sql.q(_COUNT)))


def prune(con: duckdb.DuckDBPyConnection, path: Path, caught_table: str) -> int:
    """Forget the values a copy has caught up with: `caught_table` on `con` holds their `cid`. Called before the
    run writes, so nothing it writes is forgotten. Returns how many were forgotten."""
    with state.attached(con, path):
        before = int(sql.scalar(con, sql.q(_COUNT)))
        sql.run(con, sql.q(_PRUNE, caught=sql.table(caught_table)))
        return before - int(sql.scalar(con, sql.q(_COUNT)))
