"""Where a Spark sync reads from: `crm_contact` and `crm_activity` as Spark temp views.

- A backend (the local CRM, the Salesforce mirror) after its usual `prepare`: both relations go to Spark as Parquet
  through the run's exchange folder (connector.engine.spark_io).
- The warehouse copy (`[warehouse]`): connector.crm.warehouse registers both views straight from the warehouse
  tables; no API pull at all. Its `crm_contact` says when each row was copied (`copied_at`), and the copy lags what
  the last runs wrote: `written` hands the values the state store says were written (connector.written_values) to
  Spark, `prune` forgets those the copy has caught up with, and `correct` puts the others in place of the copy's
  `cur_*` where the write came after the copy, in one join on Spark.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
from sqlglot import exp

from connector import sql, written_values
from connector.config import Config
from connector.crm import CrmBackend, warehouse
from connector.crm.warehouse import WarehouseFigures
from connector.crm.warehouse.source import OBJECTS as WAREHOUSE_OBJECTS
from connector.engine import spark_io
from connector.engine.relations import ACTIVITIES, CONTACTS
from connector.errors import ConfigError
from connector.ruleset.compiler import RuleSet
from connector.vocabulary import OUTCOME_OBJECTS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from connector.engine.spark import SparkEngine

WRITTEN = "tl_written"  # the state store's written values, on Spark
RUN_VIEWS = ("crm_", "tl_", "local_")  # the temp views a run makes (and the warehouse objects'); dropped at its end

_NEWER = "w.cid IS NOT NULL AND (c.copied_at IS NULL OR CAST(w.written_at AS TIMESTAMP) > c.copied_at)"

# A written row the copy has caught up with: copied after the write, or showing the written values already (a copy
# whose `copied_at` is the row's SystemModstamp stamps our own write a moment before we note it); or a row whose
# contact the copy no longer holds.
_CAUGHT_UP = """
SELECT w.cid FROM $written w LEFT JOIN crm_contact c ON c."Id" = w.cid
WHERE c."Id" IS NULL OR c.copied_at >= CAST(w.written_at AS TIMESTAMP) OR ($same)
"""


def from_warehouse(spark: SparkSession, cfg: Config, rules: RuleSet) -> WarehouseFigures:
    """The warehouse copy's relations as Spark temp views (connector.crm.warehouse), and what it set aside."""
    if cfg.warehouse is None:
        raise ConfigError("no [warehouse] section: nothing to read a warehouse copy from")
    return warehouse.register(spark, cfg.warehouse, cfg.fields, rules.needs(), cfg.activities, cfg.resolve)


def from_backend(spark: SparkSession, crm: CrmBackend, folder: Path) -> None:
    """The backend's relations (after `prepare`) as Spark temp views, through Parquet files in `folder`."""
    for name in (CONTACTS.name, ACTIVITIES.name):
        spark_io.to_spark(spark, crm.con, name, folder)


def written(engine: SparkEngine, state_path: Path, folder: Path) -> int:
    """What the state store says the last runs wrote, as the Spark view `tl_written`; returns its row count."""
    file = folder / f"{WRITTEN}.parquet"
    held = written_values.export(state_path, file)
    engine.spark.read.parquet(str(file)).createOrReplaceTempView(WRITTEN)
    return held


def correct(engine: SparkEngine) -> None:
    """`crm_contact`'s current values, corrected for what was written after the copy was taken (after `written`).
    A copy without the optional fields keeps to the others."""
    have = set(engine.columns(CONTACTS.name))
    pairs = [(stored, cur) for stored, cur in written_values.COLUMNS.items() if cur in have]
    # Our own column names only: no rule or config text enters this statement.
    cases = ", ".join(f"CASE WHEN {_NEWER} THEN w.{stored} ELSE c.{cur} END AS {cur}" for stored, cur in pairs)
    excluded = ", ".join(cur for _, cur in pairs)
    body = (
        f"CREATE OR REPLACE TEMP TABLE crm_contact AS SELECT c.* EXCLUDE ({excluded}), {cases} "
        'FROM crm_contact c LEFT JOIN $written w ON w.cid = c."Id"'
    )
    engine.run(sql.q(body, written=sql.table(WRITTEN)))


def prune(engine: SparkEngine, state_path: Path) -> int:
    """Forget the written values the copy has caught up with: after `written`, before `correct` (which makes the
    copy's values the written ones) and before this run writes. The Ids are streamed, never collected at once.
    Returns how many were forgotten."""
    have = set(engine.columns(CONTACTS.name))  # a copy without the optional fields compares the others
    same = [
        exp.NullSafeEQ(this=sql.col(cur, "c"), expression=sql.col(stored, "w"))
        for stored, cur in written_values.COLUMNS.items()
        if cur in have
    ]
    caught = engine.run(sql.q(_CAUGHT_UP, written=sql.table(WRITTEN), same=exp.and_(*same)))
    con = duckdb.connect()
    try:
        spark_io.stream(caught, con, "tl_caught_up", [("cid", "VARCHAR")])
        return written_values.prune(con, state_path, "tl_caught_up")
    finally:
        con.close()


def drop_views(spark: SparkSession) -> None:
    """Drop the run's temp views, so the materialised passes of one run do not stay in memory for the next."""
    objects = {o.lower() for o in (*WAREHOUSE_OBJECTS, *OUTCOME_OBJECTS)}  # calibrate reads the deals too
    for table in spark.catalog.listTables():
        if table.isTemporary and (table.name.startswith(RUN_VIEWS) or table.name.lower() in objects):
            spark.catalog.dropTempView(table.name)
