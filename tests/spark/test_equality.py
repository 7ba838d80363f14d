"""The same rule file on Spark (local[2]) and on DuckDB places every contact of a demo org identically: from the
relations DuckDB built, and from a warehouse copy of the org, in Salesforce and in Fivetran naming, that Spark reads
and turns into `crm_contact` and `crm_activity` itself.

Spark is heavy: its tests share one local session (tests/spark/conftest.py). It skips, saying why, when pyspark or Java
is missing; it never installs anything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from connector.config import ActivitiesSection, FieldsSection, WarehouseSection
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm
from connector.crm.warehouse import register, skipped_rows
from connector.crm.warehouse.export import export
from connector.crm.warehouse.naming import Naming
from connector.engine import compute, plan
from connector.engine import spark as spark_engine
from connector.engine.relations import PLAN_FIELDS, changed_col
from connector.errors import ConfigError
from connector.ruleset.compiler import load
from tests.spark import needs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = needs.SPARK

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules" / "ladder.yaml"
EVERY_FEATURE = Path(__file__).with_name("every_feature.yaml")
CONTACTS = 300
DEMO_AS_OF = dt.date(2026, 6, 15)
DATES = [DEMO_AS_OF, DEMO_AS_OF + dt.timedelta(days=45), DEMO_AS_OF + dt.timedelta(days=200)]
COLUMNS = ["cid", "new_stage", "new_since", "new_flags", "new_next", "new_reason"]
PLAN_COLUMNS = ["cid", *(changed_col(k) for k in PLAN_FIELDS)]
SYNCED_AT = dt.datetime(2026, 6, 14, 23, 30)
# The Fivetran copy as a custom pipeline might leave it: Task's WhoId under a name no rule derives.
RENAMED_WHO = "contact_ref"

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class DemoOrg:
    folder: Path
    warehouses: dict[Naming, WarehouseSection]

    @property
    def database(self) -> Path:
        return self.folder / "crm.duckdb"


@pytest.fixture(scope="module")
def demo_org(tmp_path_factory: pytest.TempPathFactory) -> DemoOrg:
    """A 300-contact demo org (EmailMessage, TaskRelation and EventRelation included), its relations exported as
    Parquet next to its database, and the org written out as a warehouse copy in each naming."""
    folder = tmp_path_factory.mktemp("demo")
    crm = LocalCrm.create(folder / "crm.duckdb")
    try:
        demo.generate(crm, contacts=CONTACTS, seed=7, as_of=DEMO_AS_OF)
    finally:
        crm.close()
    crm = LocalCrm.open(folder / "crm.duckdb")
    try:
        crm.prepare(FieldsSection(), None, ActivitiesSection())
        for name in ("crm_contact", "crm_activity"):
            crm.con.execute(f"COPY (SELECT * FROM {name}) TO '{folder / name}.parquet' (FORMAT parquet)")
        counts = crm.counts()
        assert min(counts[o] for o in ("EmailMessage", "TaskRelation", "EventRelation")) > 0, counts
        namings: list[Naming] = ["salesforce", "fivetran"]
        warehouses = {n: export(crm, folder / n, naming_=n, synced_at=SYNCED_AT) for n in namings}
    finally:
        crm.close()
    fivetran = warehouses["fivetran"]
    renamed = Path(fivetran.task).with_name("task_renamed")
    renamed.mkdir()
    duckdb.execute(
        f"COPY (SELECT * RENAME (who_id AS {RENAMED_WHO}) FROM read_parquet('{fivetran.task}/*.parquet')) "
        f"TO '{renamed / 'part-0.parquet'}' (FORMAT parquet)"
    )
    warehouses["fivetran"] = fivetran.model_copy(
        update={"task": str(renamed), "columns": {"task": {"WhoId": RENAMED_WHO}}}
    )
    return DemoOrg(folder, warehouses)


@dataclass(frozen=True)
class LocalAnswer:
    """What DuckDB makes of the local CRM under the every-feature rules: its relations, the rows it set aside, and
    per evaluation date the six fields of every contact and the planned changes."""

    contact_columns: list[str]
    activity_columns: list[str]
    contacts: Rows
    activities: Rows
    skipped: dict[str, int]
    skipped_rows: list[tuple[str, str, str]]
    placed: dict[dt.date, tuple[Rows, Rows]]


@pytest.fixture(scope="module")
def local_answer(demo_org: DemoOrg) -> LocalAnswer:
    rules = load(EVERY_FEATURE)
    crm = LocalCrm.open(demo_org.database)
    try:
        crm.prepare(FieldsSection(), rules.needs(), ActivitiesSection())
        con = crm.con
        answer = LocalAnswer(
            contact_columns=[r[0] for r in con.execute("DESCRIBE crm_contact").fetchall()],
            activity_columns=[r[0] for r in con.execute("DESCRIBE crm_activity").fetchall()],
            contacts=_sorted(con.execute("SELECT * FROM crm_contact").fetchall()),
            activities=_sorted(con.execute("SELECT * FROM crm_activity").fetchall()),
            skipped=crm.skipped,
            skipped_rows=crm.skipped_rows(),
            placed={},
        )
        for as_of in DATES:
            compute(con, rules, as_of)
            plan.build(con)
            rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM tl_place ORDER BY cid").fetchall()
            changes = con.execute(f"SELECT {', '.join(PLAN_COLUMNS)} FROM tl_plan ORDER BY cid").fetchall()
            answer.placed[as_of] = (rows, changes)
    finally:
        crm.close()
    return answer


def _sorted(rows: Rows) -> Rows:
    return sorted(rows, key=repr)


@pytest.mark.parametrize("naming", ["salesforce", "fivetran"])
def test_spark_reads_a_warehouse_copy_and_places_every_contact_as_duckdb_does(
    spark: SparkSession, demo_org: DemoOrg, local_answer: LocalAnswer, naming: Naming
) -> None:
    """A rule file with every feature type, at three evaluation dates: the six fields of every contact and the
    planned changes are the same from the warehouse copy on Spark as from the local CRM on DuckDB. Soft-deleted and
    superseded rows in the copy change nothing; the Fivetran copy's Task.WhoId is found through the mapping.

    The Fivetran copy is placed on the first date only: its relations are checked row for row against DuckDB's
    first, so the later dates would run the Salesforce copy's computation again on the same input."""
    rules = load(EVERY_FEATURE)
    expected = local_answer
    figures = register(spark, demo_org.warehouses[naming], FieldsSection(), rules.needs(), ActivitiesSection(), Path)

    assert (figures.contacts, figures.activities) == (CONTACTS, len(expected.activities))
    assert figures.skipped == expected.skipped
    assert skipped_rows(spark) == expected.skipped_rows
    contacts = spark.table("crm_contact")
    assert _sorted([tuple(r) for r in contacts.select(*expected.contact_columns).collect()]) == expected.contacts
    activities = spark.table("crm_activity").select(*expected.activity_columns)
    assert _sorted([tuple(r) for r in activities.collect()]) == expected.activities
    copied = {r[0] for r in contacts.select("copied_at").distinct().collect()}
    assert copied == {SYNCED_AT} if naming == "fivetran" else None not in copied

    for as_of in DATES if naming == "salesforce" else DATES[:1]:
        rows, changes = expected.placed[as_of]
        engine = spark_engine.SparkEngine(spark, rules)
        engine.compute(as_of)
        actual = [tuple(r) for r in spark.table("tl_place").select(*COLUMNS).orderBy("cid").collect()]
        actual_changes = [tuple(r) for r in spark.table("tl_plan").select(*PLAN_COLUMNS).orderBy("cid").collect()]
        assert len(rows) == CONTACTS, f"DuckDB placed {len(rows)} contacts on {as_of}"
        assert len(actual) == CONTACTS, f"Spark placed {len(actual)} contacts on {as_of}"
        assert len({r[1] for r in rows}) > 1, f"every contact on one rung on {as_of}: the test would prove little"
        differing = [(e, a) for e, a in zip(rows, actual, strict=True) if e != a]
        assert differing[:3] == [], f"{len(differing)} contacts differ on {as_of}"
        assert actual_changes == changes, f"the planned changes differ on {as_of}"


def test_a_column_the_copy_lacks_is_named_with_the_key_that_maps_it(spark: SparkSession, demo_org: DemoOrg) -> None:
    section = demo_org.warehouses["fivetran"].model_copy(update={"columns": {}})
    rules = load(EVERY_FEATURE)
    with pytest.raises(ConfigError) as caught:
        register(spark, section, FieldsSection(), rules.needs(), ActivitiesSection(), Path)
    message = str(caught.value)
    assert f"[warehouse] task = '{section.task}'" in message
    assert "who_id (Task.WhoId)" in message
    assert '[warehouse.columns.task], e.g. WhoId = "<its column>"' in message
    assert RENAMED_WHO in message  # among the columns found


def test_a_missing_table_is_named_with_its_key(spark: SparkSession, demo_org: DemoOrg) -> None:
    section = WarehouseSection(format="table", contact="crm.contact", task="crm.task", event="crm.event")
    with pytest.raises(ConfigError, match=r"\[warehouse\] contact = 'crm.contact': cannot read the Contact copy"):
        register(spark, section, FieldsSection(), load(RULES).needs(), ActivitiesSection(), Path)
    del demo_org


def _duckdb_rows(folder: Path, as_of: dt.date) -> tuple[Rows, int]:
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


@pytest.mark.parametrize("as_of", DATES, ids=[d.isoformat() for d in DATES])
def test_spark_places_every_contact_as_duckdb_does(spark: SparkSession, demo_org: DemoOrg, as_of: dt.date) -> None:
    """The shipped rules, on the relations DuckDB built."""
    folder = demo_org.folder
    expected, expected_changes = _duckdb_rows(folder, as_of)
    for name in ("crm_contact", "crm_activity"):
        spark.read.parquet(str(folder / f"{name}.parquet")).createOrReplaceTempView(name)
    engine = spark_engine.SparkEngine(spark, load(RULES))
    engine.compute(as_of)
    actual = [tuple(r) for r in spark.table("tl_place").select(*COLUMNS).orderBy("cid").collect()]
    assert len(expected) == CONTACTS
    assert len(actual) == CONTACTS
    differing = [(e, a) for e, a in zip(expected, actual, strict=True) if e != a]
    assert differing[:3] == []
    assert spark.table("tl_plan").count() == expected_changes
