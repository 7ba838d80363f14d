"""A Spark sync from a warehouse copy of Salesforce, and the copy's lag: what the last run wrote stands in for the
copy's values until a copy taken after the write lands, then the state store forgets it.

One local Spark session serves the module; it skips, saying why, without pyspark or Java.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from connector import state, written_values
from connector.commands import spark_source
from connector.config import EngineSection
from connector.engine import spark as spark_engine
from connector.engine import spark_io
from connector.engine.relations import PLAN
from connector.ruleset.compiler import load
from tests.conftest import DEFAULT_RULES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None,
        reason="pyspark is not installed: the README's test command provides the spark extra",
    ),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 and there is no `java` on PATH"),
]

AS_OF = dt.date(2026, 6, 15)
WRITTEN_AT = dt.datetime(2026, 6, 15, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = spark_engine.session(EngineSection(kind="spark", app_name="trust-ladder-tests"))
    yield session
    session.stop()


def _written(state_path: Path, rows: list[tuple[str, str]]) -> None:
    """Record that a run wrote `stage` to each contact at WRITTEN_AT (the other fields unchanged)."""
    con = duckdb.connect()
    try:
        spark_io.create(con, PLAN.name, PLAN.columns)
        values: dict[str, object] = dict.fromkeys(PLAN.names)
        plan_rows = []
        for cid, stage in rows:
            row = {**values, "cid": cid, "new_stage": stage, "cur_stage": "Fringe", "cur_version": "v1"}
            row.update({n: n == "ch_stage" for n, _ in PLAN.columns if n.startswith("ch_")})
            plan_rows.append([row[n] for n, _ in PLAN.columns])
        spark_io.insert(con, PLAN.name, PLAN.columns, plan_rows)
        written_values.record(con, state_path, PLAN.name, [], "v2", WRITTEN_AT.replace(tzinfo=None))
    finally:
        con.close()


def _copy(spark: SparkSession, rows: list[tuple[str, str, dt.datetime]]) -> None:
    """`crm_contact` as a warehouse source registers it: the current values and when each row was copied."""
    schema = (
        "Id STRING, cur_stage STRING, cur_since DATE, cur_flags STRING, cur_next STRING, cur_reason STRING, "
        "cur_version STRING, copied_at TIMESTAMP"
    )
    data = [(cid, stage, None, None, None, None, "v1", copied) for cid, stage, copied in rows]
    spark.createDataFrame(data, schema).createOrReplaceTempView("crm_contact")


def _current(spark: SparkSession) -> dict[str, tuple[Any, ...]]:
    rows = spark.table("crm_contact").select("Id", "cur_stage", "cur_version").collect()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_what_was_written_after_the_copy_replaces_its_values_and_a_caught_up_copy_is_forgotten(
    spark: SparkSession, tmp_path: Path
) -> None:
    state_path = tmp_path / "state.duckdb"
    state.Store(state_path).start_run("r1", as_of=AS_OF, dry_run=False)  # the store at schema 6
    _written(state_path, [("003A", "Friend"), ("003B", "Friend"), ("003GONE", "Friend")])
    before, after = WRITTEN_AT - dt.timedelta(hours=1), WRITTEN_AT + dt.timedelta(hours=1)
    # A: copied before the write (stale); B: copied after it (the copy has it); C: never written; GONE: deleted.
    _copy(spark, [("003A", "Fringe", before), ("003B", "Friend", after), ("003C", "Fringe", before)])
    engine = spark_engine.SparkEngine(spark, load(DEFAULT_RULES))

    assert spark_source.correct(engine, state_path, tmp_path) == 3
    assert _current(spark) == {"003A": ("Friend", "v2"), "003B": ("Friend", "v1"), "003C": ("Fringe", "v1")}

    assert spark_source.prune(engine, state_path) == 2  # B caught up, GONE is no longer in the copy
    assert written_values.export(state_path, tmp_path / "left.parquet") == 1
    left = duckdb.connect().execute(
        "SELECT cid, stage, written_at FROM read_parquet(?)", [str(tmp_path / "left.parquet")]
    )
    assert left.fetchall() == [("003A", "Friend", WRITTEN_AT.replace(tzinfo=None))]
