"""What the Spark tests share: one local session per test process (each pytest-xdist worker, or the one process of a
serial run), a small demo org, and the CLI run in this process (so a sync finds the session running and joins it, as
under spark-submit).

Starting Spark costs a JVM, and its first queries pay the JVM's warm-up: under `pytest -n`, tests/conftest.py makes
this folder one unit of work for one worker, so every Spark test shares its one session, and each module fixture
below and in the modules is built once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from connector.config import EngineSection
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm
from connector.engine import spark as spark_engine
from tests.conftest import TRUST_FIELDS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

AS_OF = dt.date(2026, 6, 15)
CONTACTS = 120


@pytest.fixture(scope="package")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """One local session (`local[2]`, the settings a sync gives it) for every Spark test of this process, its catalog
    tables in a temp folder of this process (for `--out-table NAME`). Stopped once the last Spark test has run (the
    folder's tests run one after another, on one worker): a running session's threads would otherwise share the
    worker's core with every test after them."""
    from pyspark.sql import SparkSession  # noqa: PLC0415 - optional extra

    tables = tmp_path_factory.mktemp("spark-warehouse")
    builder: Any = SparkSession.builder  # pyspark's one shared builder: spark_engine.session below reads it too
    builder.config("spark.sql.warehouse.dir", str(tables))
    session = spark_engine.session(EngineSection(kind="spark", master="local[2]", app_name="trust-ladder-tests"))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def demo_crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo org's local CRM file, never synced: copy it before use."""
    folder = tmp_path_factory.mktemp("demo")
    crm = LocalCrm.create(folder / "crm.duckdb")
    try:
        demo.generate(crm, contacts=CONTACTS, seed=7, as_of=AS_OF)
    finally:
        crm.close()
    return folder / "crm.duckdb"


def cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), "--log-format", "json", *args], catch_exceptions=False)


def summary(result: Result) -> dict[str, Any]:
    """A `sync --json` run's summary."""
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def events(result: Result, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    return [e for e in lines if e.get("event") == name]


def values(database: Path) -> list[tuple[Any, ...]]:
    """Every contact's Id and six trust fields, by Id."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(f'SELECT "Id", {", ".join(TRUST_FIELDS)} FROM "Contact" ORDER BY "Id"').fetchall()
    finally:
        con.close()
