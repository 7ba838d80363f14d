"""The same rule file on Spark (local[2]) and on DuckDB places every contact of a demo org identically.

Spark is heavy: this module starts one local session for all its tests. It skips, saying why, when pyspark or Java
is missing; it never installs anything.
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

from connector.config import ActivitiesSection, EngineSection, FieldsSection
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm
from connector.engine import compute, plan
from connector.engine import spark as spark_engine
from connector.ruleset.compiler import load

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None,
        reason="pyspark is not installed: the README's test command provides the spark extra",
    ),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 and there is no `java` on PATH"),
]

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules" / "ladder.yaml"
DEMO_AS_OF = dt.date(2026, 6, 15)
DATES = [DEMO_AS_OF, DEMO_AS_OF + dt.timedelta(days=45), DEMO_AS_OF + dt.timedelta(days=200)]
COLUMNS = ["cid", "new_stage", "new_since", "new_flags", "new_next", "new_reason"]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = spark_engine.session(EngineSection(kind="spark", master="local[2]", app_name="trust-ladder-tests"))
    yield session
    session.stop()


@pytest.fixture(scope="module")
def demo_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-contact demo org, exported as Parquet next to its database."""
    folder = tmp_path_factory.mktemp("demo")
    crm = LocalCrm.create(folder / "crm.duckdb")
    try:
        demo.generate(crm, contacts=300, seed=7, as_of=DEMO_AS_OF)
    finally:
        crm.close()
    crm = LocalCrm.open(folder / "crm.duckdb")
    try:
        crm.prepare(FieldsSection(), None, ActivitiesSection())
        for name in ("crm_contact", "crm_activity"):
            crm.con.execute(f"COPY (SELECT * FROM {name}) TO '{folder / name}.parquet' (FORMAT parquet)")
    finally:
        crm.close()
    return folder


def _duckdb_rows(folder: Path, as_of: dt.date) -> tuple[list[tuple[Any, ...]], int]:
    con = duckdb.connect()
    try:
        for name in ("crm_contact", "crm_activity"):
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{folder / name}.parquet')")
        rules = load(RULES)
        compute(con, rules, as_of)
        changes = plan.build(con)
        rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM tl_place ORDER BY cid").fetchall()
        return rows, changes
    finally:
        con.close()


def _spark_rows(spark: SparkSession, folder: Path, as_of: dt.date) -> tuple[list[tuple[Any, ...]], int]:
    for name in ("crm_contact", "crm_activity"):
        spark.read.parquet(str(folder / f"{name}.parquet")).createOrReplaceTempView(name)
    engine = spark_engine.SparkEngine(spark, load(RULES))
    engine.compute(as_of)
    rows = [tuple(r) for r in spark.table("tl_place").select(*COLUMNS).orderBy("cid").collect()]
    return rows, spark.table("tl_plan").count()


@pytest.mark.parametrize("as_of", DATES, ids=[d.isoformat() for d in DATES])
def test_spark_places_every_contact_as_duckdb_does(spark: SparkSession, demo_org: Path, as_of: dt.date) -> None:
    expected, expected_changes = _duckdb_rows(demo_org, as_of)
    actual, actual_changes = _spark_rows(spark, demo_org, as_of)
    assert len(expected) == 300
    differing = [(e, a) for e, a in zip(expected, actual, strict=True) if e != a]
    assert differing[:3] == []
    assert actual_changes == expected_changes
