"""Where a Spark sync reads from: `crm_contact` and `crm_activity` as Spark temp views, and the demotion watch.

- A backend (the local CRM, the Salesforce mirror) after its usual `prepare`: both relations go to Spark as Parquet
  through the run's exchange folder (connector.engine.spark_io).
- The warehouse copy (`[warehouse]`): connector.crm.warehouse registers both views straight from the warehouse
  tables; no API pull at all. Its `crm_contact` says when each row was copied (`copied_at`), and the copy lags what
  the last runs wrote, so `correct` puts the values the state store says were written since (connector.written_values)
  in place of the copy's `cur_*`, in one join on Spark, and `caught_up` names the rows the copy has caught up with.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from connector import state, written_values
from connector.config import Config
from connector.crm import CrmBackend
from connector.engine import spark_io, sql
from connector.engine.relations import ACTIVITIES, CONTACTS, WATCH
from connector.errors import ConfigError
from connector.ruleset.compiler import RuleSet

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from connector.engine.spark import SparkEngine

WRITTEN = "tl_written"  # the state store's written values, on Spark
RUN_VIEWS = ("crm_", "tl_")  # the temp views a run makes; dropped when it ends

_NEWER = "w.cid IS NOT NULL AND (c.copied_at IS NULL OR CAST(w.written_at AS TIMESTAMP) > c.copied_at)"
_CORRECT = f"""
CREATE OR REPLACE TEMP TABLE crm_contact AS
SELECT c.* EXCLUDE (cur_stage, cur_since, cur_flags, cur_next, cur_reason, cur_version),
       CASE WHEN {_NEWER} THEN w.stage ELSE c.cur_stage END AS cur_stage,
       CASE WHEN {_NEWER} THEN w.stage_since ELSE c.cur_since END AS cur_since,
       CASE WHEN {_NEWER} THEN w.flags ELSE c.cur_flags END AS cur_flags,
       CASE WHEN {_NEWER} THEN w.next_step ELSE c.cur_next END AS cur_next,
       CASE WHEN {_NEWER} THEN w.reason ELSE c.cur_reason END AS cur_reason,
       CASE WHEN {_NEWER} THEN w.rules_version ELSE c.cur_version END AS cur_version
FROM crm_contact c LEFT JOIN $written w ON w.cid = c."Id"
"""
# A written row the copy has caught up with (copied after the write), or whose contact the copy no longer holds.
_CAUGHT_UP = """
SELECT w.cid FROM $written w LEFT JOIN crm_contact c ON c."Id" = w.cid
WHERE c."Id" IS NULL OR c.copied_at >= CAST(w.written_at AS TIMESTAMP)
"""
_WATCH = "COPY (SELECT cid, from_rung, failing_since FROM tl_state.demotion_watch) TO $file (FORMAT parquet)"


def warehouse_section(cfg: Config) -> object | None:
    """The `[warehouse]` section, when the relations come from a warehouse copy."""
    return getattr(cfg, "warehouse", None)


def from_warehouse(spark: SparkSession, cfg: Config, rules: RuleSet) -> dict[str, int]:
    """The warehouse copy's relations as Spark temp views; returns the rows set aside, per object."""
    raise ConfigError("reading a warehouse copy needs connector.crm.warehouse")


def from_backend(spark: SparkSession, crm: CrmBackend, folder: Path) -> None:
    """The backend's relations (after `prepare`) as Spark temp views, through Parquet files in `folder`."""
    for name in (CONTACTS.name, ACTIVITIES.name):
        spark_io.to_spark(spark, crm.con, name, folder)


def watch(spark: SparkSession, state_path: Path, folder: Path) -> DataFrame:
    """The demotion watch the last run left, as a frame read from Parquet (it can hold many contacts)."""
    file = folder / f"{WATCH.name}.parquet"
    con = duckdb.connect()
    try:
        with state.attached(con, state_path):
            sql.run(con, sql.q(_WATCH, file=str(file)))
    finally:
        con.close()
    return spark.read.parquet(str(file))


def correct(engine: SparkEngine, state_path: Path, folder: Path) -> int:
    """`crm_contact`'s current values, corrected for what was written after the copy was taken. Returns how many
    written contacts the state store holds."""
    file = folder / f"{WRITTEN}.parquet"
    held = written_values.export(state_path, file)
    engine.spark.read.parquet(str(file)).createOrReplaceTempView(WRITTEN)
    if held:
        engine.run(sql.q(_CORRECT, written=sql.table(WRITTEN)))
    return held


def prune(engine: SparkEngine, state_path: Path) -> int:
    """Forget the written values the copy has caught up with (after `correct`, before this run writes). The Ids
    are streamed, never collected at once. Returns how many were forgotten."""
    caught = engine.run(sql.q(_CAUGHT_UP, written=sql.table(WRITTEN)))
    con = duckdb.connect()
    try:
        spark_io.stream(caught, con, "tl_caught_up", [("cid", "VARCHAR")])
        return written_values.prune(con, state_path, "tl_caught_up")
    finally:
        con.close()


def drop_views(spark: SparkSession) -> None:
    """Drop the run's temp views, so the materialised passes of one run do not stay in memory for the next."""
    for table in spark.catalog.listTables():
        if table.isTemporary and table.name.startswith(RUN_VIEWS):
            spark.catalog.dropTempView(table.name)
