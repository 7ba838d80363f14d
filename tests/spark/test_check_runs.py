"""`rules check --engine spark` passing means Spark runs the rules, and runs them as DuckDB does.

The statements the check renders (without Spark) are handed to Spark's own parser, and compared with the ones a real
run on `local[2]` executes; then a rule file with every construct and the text Spark would read otherwise
(tests/spark/every_construct.yaml) places every contact of a demo org whose subjects hold backslashes and
`${env:HOME}` exactly as DuckDB does. Skips, saying why, when pyspark or Java is missing; never installs anything.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from sqlglot import exp

from connector import sql
from connector.config import ActivitiesSection, FieldsSection
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm
from connector.engine import compute, dialect, plan, texts
from connector.engine import spark as spark_engine
from connector.ruleset import lint_spark
from connector.ruleset.compiler import load
from tests.spark import needs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = needs.SPARK

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULES = ROOT / "rules" / "ladder.yaml"
EVERY_CONSTRUCT = Path(__file__).resolve().parent / "every_construct.yaml"
AS_OF = dt.date(2026, 6, 15)
COLUMNS = ["cid", "new_stage", "new_since", "new_flags", "new_next", "new_reason"]
# Statements that spell out a view's columns (`* EXCLUDE`, the since-date join): the check knows the declared
# columns, a run reads the real ones.
COLUMN_LISTS = {"tl_h_act", "tl_h_contact"}


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-contact demo org as Parquet; one subject in seven holds a Windows path, one in seven `${env:HOME}`
    and a trailing backslash."""
    folder = tmp_path_factory.mktemp("org")
    crm = LocalCrm.create(folder / "crm.duckdb")
    try:
        demo.generate(crm, contacts=200, seed=11, as_of=AS_OF)
        crm.prepare(FieldsSection(), None, ActivitiesSection())
        crm.con.execute(
            """CREATE TEMP TABLE salted AS SELECT * REPLACE (CASE hash("Id") % 7
                 WHEN 0 THEN "Subject" || ' C:\\temp\\notes' WHEN 1 THEN "Subject" || ' ${env:HOME} \\'
                 ELSE "Subject" END AS "Subject") FROM crm_activity"""
        )
        crm.con.execute(f"COPY salted TO '{folder / 'crm_activity.parquet'}' (FORMAT parquet)")
        crm.con.execute(f"COPY (SELECT * FROM crm_contact) TO '{folder / 'crm_contact.parquet'}' (FORMAT parquet)")
    finally:
        crm.close()
    return folder


def _views(spark: SparkSession, folder: Path) -> None:
    for name in ("crm_contact", "crm_activity"):
        spark.read.parquet(str(folder / f"{name}.parquet")).createOrReplaceTempView(name)


@pytest.mark.parametrize("rules_file", [DEFAULT_RULES, EVERY_CONSTRUCT], ids=["ladder", "every-construct"])
def test_the_statements_the_check_renders_are_the_ones_spark_parses_and_runs(
    spark: SparkSession, org: Path, rules_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = load(rules_file)
    rendered = lint_spark.render(rules)
    assert not rendered.refused
    parser = spark._jsparkSession.sessionState().sqlParser()
    for st in rendered.statements:
        assert parser.parsePlan(st.text) is not None

    ran: list[str] = []
    run_sql = spark.sql

    def recording(text: str, args: Mapping[str, Any] | None = None) -> DataFrame:
        ran.append(text)
        return run_sql(text, args=dict(args)) if args else run_sql(text)

    monkeypatch.setattr(spark, "sql", recording)
    _views(spark, org)
    spark_engine.SparkEngine(spark, rules).compute(AS_OF)
    assert len(ran) == len(rendered.statements)
    for st, text in zip(rendered.statements, ran, strict=True):
        if st.target not in COLUMN_LISTS and not text.startswith("SELECT `t`."):
            assert text == st.text


def test_every_construct_places_every_contact_as_duckdb_does(spark: SparkSession, org: Path) -> None:
    rules = load(EVERY_CONSTRUCT)
    con = duckdb.connect()
    try:
        for name in ("crm_contact", "crm_activity"):
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{org / name}.parquet')")
        compute(con, rules, AS_OF)
        expected_changes = plan.build(con)
        expected = con.execute(f"SELECT {', '.join(COLUMNS)} FROM tl_place ORDER BY cid").fetchall()
        notes = con.execute("SELECT count(*) FROM tl_place WHERE f_path_notes > 0").fetchone()
    finally:
        con.close()
    _views(spark, org)
    spark_engine.SparkEngine(spark, rules).compute(AS_OF)
    actual = [tuple(r) for r in spark.table("tl_place").select(*COLUMNS).orderBy("cid").collect()]
    assert len(expected) == 200
    assert notes is not None
    assert notes[0] > 0  # the kind matching backslashes and ${env:HOME} in subjects matched some
    assert [(e, a) for e, a in zip(expected, actual, strict=True) if e != a][:3] == []
    assert spark.table("tl_plan").count() == expected_changes
    stages = {row[1] for row in actual}
    assert "Fringe ${env:HOME}" in stages  # shown as written, never substituted
    home = os.environ.get("HOME")
    assert not home or not any(home in str(v) for row in actual for v in row[1:])


def test_translated_constructs_mean_the_same_on_both_engines(spark: SparkSession) -> None:
    """LIKE patterns with backslashes, `${...}` text, decimal numbers and the regular expressions of the texts."""
    subjects = ["C:\\temp\\x", "a\\b", "50% off", "a_b", "${env:HOME}", "Re: RE:  fwd: x", "ends\n", "x\x0by", ""]
    patterns = ["%\\%", "%C:\\temp%", "a\\b", "%\\", "50\\% off", "a_b", "${env:HOME}", "%${%"]
    ratios = [0.15, 0.25, -0.04, 2.0, 12345678.94, 1 / 3]
    subject = sql.col("s")
    columns = [
        *(exp.ILike(this=subject.copy(), expression=sql.lit(p)) for p in patterns),
        exp.ILike(this=subject.copy(), expression=sql.col("s")),
        sql.q("trim(regexp_replace($s, $p, '', 'i'))", s=subject.copy(), p=texts._PREFIXES),
        texts.cut(subject.copy(), 4),
        sql.lit("${env:HOME} ${spark.sql.ansi.enabled}"),
        *(texts.decimal_text(exp.cast(sql.lit(r), "DOUBLE")) for r in ratios),
    ]
    tree = exp.select(*columns).from_(sql.table("t")).order_by(sql.col("s"))
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE t (s VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?)", [[s] for s in subjects])
        expected = sql.run(con, tree).fetchall()
    finally:
        con.close()
    spark.createDataFrame([(s,) for s in subjects], "s STRING").createOrReplaceTempView("t")
    actual = [tuple(r) for r in spark.sql(dialect.render(tree)).collect()]
    assert actual == expected


def test_a_warehouse_date_stored_as_text_that_does_not_convert_is_null_not_a_crash(spark: SparkSession) -> None:
    """A copy that stores dates as text, some in a form no cast reads ('05/12/2024'): the value becomes NULL (the
    row is then set aside for having no date), as on DuckDB; Spark's ANSI CAST would fail the whole run."""
    from connector.config import WarehouseSection  # noqa: PLC0415
    from connector.crm.warehouse import read  # noqa: PLC0415

    section = WarehouseSection.model_validate(
        {"contact": "sf.contact", "task": "sf.task", "event": "sf.event", "naming": "fivetran"}
    )
    wanted = [("Id", "VARCHAR"), ("ActivityDate", "DATE"), ("CompletedDateTime", "TIMESTAMP"), ("IsDeleted", "BOOLEAN")]
    frame = spark.createDataFrame(
        [("00T1", "2024-12-05", "2024-12-05 10:00:00", "FALSE"), ("00T2", "05/12/2024", "yesterday", "TRUE")],
        ["id", "activity_date", "completed_date_time", "is_deleted"],
    )
    frame.createOrReplaceTempView(read.raw_name("Task"))
    st = dialect.statement(read.view(section, "Task", "sf.task", frame, wanted, ["Id"]))
    rows = sorted((r.Id, r.ActivityDate, r.CompletedDateTime, r.IsDeleted) for r in spark.sql(st.text).collect())
    assert rows == [
        ("00T1", dt.date(2024, 12, 5), dt.datetime(2024, 12, 5, 10, 0), False),
        ("00T2", None, None, True),
    ]
    counted = {
        api: tuple(spark.sql(dialect.statement(statement).text).collect()[0])
        for api, statement in read.unreadable(section, "Task", frame, wanted)
    }
    assert counted == {"ActivityDate": (1, ["00T2"]), "CompletedDateTime": (1, ["00T2"])}  # reported, by Id


def test_a_record_copied_twice_is_read_once_newest_copy_first_and_reported(spark: SparkSession) -> None:
    """A warehouse load rerun, or a pipeline bug, leaves two live rows for one Contact: counting both would count its
    activities twice. The newest copy is read (`_fivetran_synced`), and the duplicates are counted and named."""
    from connector.config import WarehouseSection  # noqa: PLC0415
    from connector.crm.warehouse import read  # noqa: PLC0415

    section = WarehouseSection.model_validate(
        {"contact": "sf.contact", "task": "sf.task", "event": "sf.event", "naming": "fivetran"}
    )
    wanted = [("Id", "VARCHAR"), ("FirstName", "VARCHAR")]
    old, new = dt.datetime(2026, 6, 1), dt.datetime(2026, 6, 14)
    frame = spark.createDataFrame(
        [
            ("0031", "Ada", old, False),
            ("0031", "Impostor", new, False),  # the newer copy wins
            ("0032", "Grace", new, False),
            ("0032", "Deleted", new, True),  # a deleted row is no copy at all
            ("0033", "Impostor", old, False),
            ("0033", "Alan", new, False),
            ("0033", "Impostor", None, False),
        ],
        ["id", "first_name", "_fivetran_synced", "_fivetran_deleted"],
    )
    frame.createOrReplaceTempView(read.raw_name("Contact"))
    st = dialect.statement(read.view(section, "Contact", "sf.contact", frame, wanted, ["Id"]))
    assert sorted((r.Id, r.FirstName) for r in spark.sql(st.text).collect()) == [
        ("0031", "Impostor"),
        ("0032", "Grace"),
        ("0033", "Alan"),
    ]
    (live,) = spark.sql(dialect.statement(read.live_rows("Contact", frame)).text).collect()[0]
    assert live - 3 == 3  # three second copies: what a run logs, beside the Ids
    (ids,) = spark.sql(dialect.statement(read.duplicates(section, "Contact", frame)).text).collect()[0]
    assert list(ids) == ["0031", "0033"]
