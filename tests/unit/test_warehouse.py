"""The warehouse source without a JVM: the [warehouse] section, Fivetran's names, and the copy `export` writes.

Fivetran's Salesforce connector names tables and columns in snake_case of the API names (`event_relation`: `id`,
`event_id`, `relation_id`, `is_deleted`, `system_modstamp`; https://fivetran.com/docs/connectors/applications/
salesforce/connector-schema) and adds `_fivetran_synced` and `_fivetran_deleted` to every table, `_fivetran_active`
in history mode (https://fivetran.com/docs/core-concepts/system-columns-and-tables).
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from connector import config, ids, sql, vocabulary
from connector.config import ActivitiesSection, FieldsSection, WarehouseSection
from connector.crm.local import demo, quarantine
from connector.crm.local.store import LocalCrm
from connector.crm.warehouse import naming, read
from connector.crm.warehouse.export import export
from connector.errors import ConfigError
from connector.ruleset.compiler import load
from connector.ruleset.schema import FEATURE_TYPES, PERIOD_DAYS, RuleFile
from tests.conftest import EVERY_FEATURE, ROOT

SYNCED = dt.datetime(2026, 6, 14, 23, 30)


@pytest.mark.parametrize(
    ("api", "column"),
    [
        ("WhoId", "who_id"),
        ("ActivityDate", "activity_date"),
        ("CallDurationInSeconds", "call_duration_in_seconds"),
        ("SystemModstamp", "system_modstamp"),
        ("ReplyToEmailMessageId", "reply_to_email_message_id"),
        ("Trust_Stage__c", "trust_stage_c"),
        ("HTMLBody", "html_body"),
        ("EventRelation", "event_relation"),
    ],
)
def test_fivetran_names_columns_and_tables_in_snake_case(api: str, column: str) -> None:
    assert naming.snake_case(api) == column


def _section(**extra: object) -> WarehouseSection:
    return WarehouseSection.model_validate({"contact": "sf.contact", "task": "sf.task", "event": "sf.event", **extra})


def test_a_mapping_names_one_column_and_the_rule_names_the_rest() -> None:
    section = _section(naming="fivetran", columns={"task": {"WhoId": "contact_ref"}})
    assert naming.column(section, "Task", "WhoId") == "contact_ref"
    assert naming.column(section, "Task", "ActivityDate") == "activity_date"
    assert naming.column(section, "Event", "WhoId") == "who_id"
    assert naming.column(_section(), "Task", "WhoId") == "WhoId"


def test_the_copy_time_is_fivetrans_sync_time_or_the_last_change() -> None:
    assert naming.copied_at(_section(naming="fivetran")) == "_fivetran_synced"
    assert naming.copied_at(_section()) == "SystemModstamp"
    assert naming.copied_at(_section(columns={"contact": {"SystemModstamp": "modstamp"}})) == "modstamp"
    assert naming.copied_at(_section(naming="fivetran", copied_at="loaded_at")) == "loaded_at"


def test_objects_lists_where_each_object_the_org_has_lives() -> None:
    section = _section(email_message="sf.email_message")
    assert section.objects() == {
        "Contact": "sf.contact",
        "Task": "sf.task",
        "Event": "sf.event",
        "EmailMessage": "sf.email_message",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('contact = "contact"\ntask = "sf.task"\nevent = "sf.event"', "contact = 'contact' is not a table name"),
        ('contact = "lake/contact"\ntask = "sf.task"\nevent = "sf.event"', 'format = "parquet" or "delta"'),
        ('contact = "sf.contact"\nevent = "sf.event"', "[warehouse.task] Field required"),
        ('contact = "sf.c"\ntask = "sf.t"\nevent = "sf.e"\nnaming = "airbyte"', "Input should be 'salesforce'"),
        (
            'contact = "sf.c"\ntask = "sf.t"\nevent = "sf.e"\n[warehouse.columns.task]\nWhoID = "who"',
            "[warehouse.columns.task] WhoID: not a Task field trust-ladder reads",
        ),
        (
            'contact = "sf.c"\ntask = "sf.t"\nevent = "sf.e"\n[warehouse.columns.task]\nWhoId = "who id"',
            "[warehouse.columns.task.WhoId] String should match pattern",
        ),
        ('contact = "sf.c"\ntask = "sf.t"\nevent = "sf.e"\n[warehouse.columns.tasks]\nWhoId = "w"', "'task_relation'"),
    ],
)
def test_a_bad_warehouse_section_says_what_to_write(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tl.toml"
    path.write_text("[warehouse]\n" + text + "\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert message in str(caught.value)


def test_files_may_live_anywhere_a_path_or_url_reaches(tmp_path: Path) -> None:
    path = tmp_path / "tl.toml"
    path.write_text('[warehouse]\nformat = "delta"\ncontact = "lake/c"\ntask = "s3a://lake/t"\nevent = "/abs/e"\n')
    section = config.load(path).warehouse
    assert section is not None
    assert section.objects()["Task"] == "s3a://lake/t"


def test_the_commented_warehouse_example_is_a_valid_section() -> None:
    text = (ROOT / "config.example.toml").read_text()
    block = text[text.index("# [warehouse]") : text.index("# [salesforce]")]
    head, columns = block.split("# [warehouse.columns.contact]")
    keys = re.findall(r"^# (\w+ = .*)$", head, re.MULTILINE)
    mapping = tomllib.loads("\n".join(re.findall(r"^# (\w+ = .*)$", columns, re.MULTILINE)))
    section = WarehouseSection.model_validate({**tomllib.loads("\n".join(keys)), "columns": {"contact": mapping}})
    assert set(section.objects()) == {
        "Contact",
        "Task",
        "Event",
        "EmailMessage",
        "TaskRelation",
        "EventRelation",
        "Opportunity",
        "OpportunityContactRole",
    }
    assert section.naming == "fivetran"


def test_the_id_checksum_in_sql_is_the_one_ids_computes() -> None:
    made = [ids.make(ids.CONTACT, n) for n in (0, 1, 35, 36**5 + 7, 36**9 * 5 + 123)]
    made += ["0035e00000AbCdEfGh", "003XYZ0000ABCDEFGH"]
    tree = sql.q("SELECT x, $suffix FROM (SELECT unnest($xs) AS x)", suffix=quarantine.id_suffix(sql.col("x")))
    rows = sql.run(duckdb.connect(), tree, {"xs": [m[:15] for m in made]}).fetchall()
    assert dict(rows) == {m[:15]: ids.checksum(m[:15]) for m in made}


@pytest.fixture(scope="module")
def small_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("org") / "crm.duckdb"
    crm = LocalCrm.create(path)
    try:
        demo.generate(crm, contacts=60, seed=3, as_of=dt.date(2026, 6, 15))
    finally:
        crm.close()
    return path


def test_a_fivetran_copy_holds_the_org_with_what_fivetran_adds(small_org: Path, tmp_path: Path) -> None:
    crm = LocalCrm.open(small_org)
    try:
        section = export(crm, tmp_path / "lake", naming_="fivetran", synced_at=SYNCED)
        live = crm.counts()
    finally:
        crm.close()
    assert section.naming == "fivetran"
    assert section.format == "parquet"
    assert Path(section.task).name == "task"
    assert Path(section.event_relation or "").name == "event_relation"
    con = duckdb.connect()

    def read(where: str | None, query: str) -> list[tuple[Any, ...]]:
        con.execute(f"CREATE OR REPLACE VIEW t AS SELECT * FROM read_parquet('{where}/*.parquet')")
        return con.execute(query).fetchall()

    task_columns = [r[0] for r in read(section.task, "DESCRIBE t")]
    assert {"id", "who_id", "activity_date", "task_subtype", "is_deleted", "_fivetran_synced"} <= set(task_columns)
    assert "WhoId" not in task_columns
    assert read(section.task, "SELECT DISTINCT typeof(is_closed) FROM t") == [("VARCHAR",)]
    assert {r[0] for r in read(section.task, "SELECT DISTINCT is_closed FROM t")} <= {"TRUE", "FALSE", None}
    assert read(section.task, "SELECT count(*) FROM t WHERE _fivetran_deleted") == [(1,)]
    assert read(section.task, "SELECT count(*) FROM t WHERE is_deleted = 'TRUE' AND NOT _fivetran_deleted")[0][0] >= 1
    assert read(section.contact, "SELECT DISTINCT _fivetran_synced FROM t") == [(SYNCED,)]
    assert read(section.contact, "SELECT count(*) FROM t WHERE _fivetran_deleted") == [(1,)]
    assert read(section.contact, "SELECT count(*), count(DISTINCT id) FROM t WHERE NOT _fivetran_active") == [(3, 3)]
    current = read(section.contact, "SELECT count(*) FROM t WHERE _fivetran_active AND NOT _fivetran_deleted")
    assert current == [(live["Contact"],)]
    assert read(section.email_message, "SELECT count(*) FROM t")[0][0] >= live["EmailMessage"]


def test_a_salesforce_named_copy_keeps_the_api_names(small_org: Path, tmp_path: Path) -> None:
    crm = LocalCrm.open(small_org)
    try:
        section = export(crm, tmp_path / "lake", naming_="salesforce")
    finally:
        crm.close()
    assert Path(section.task).name == "Task"
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{section.task}/*.parquet')")
    columns = [r[0] for r in con.execute("DESCRIBE t").fetchall()]
    assert {"Id", "WhoId", "ActivityDate", "IsDeleted"} <= set(columns)
    assert not [c for c in columns if c.startswith("_fivetran")]
    assert con.execute("SELECT typeof(IsClosed) FROM t LIMIT 1").fetchall() == [("BOOLEAN",)]


def test_the_equality_rule_file_uses_every_feature_type_and_option() -> None:
    spec = RuleFile.model_validate(yaml.safe_load(EVERY_FEATURE.read_text()))
    features = spec.features.values()
    assert {f.type for f in features} == set(FEATURE_TYPES)
    for option in ("within_days", "per", "answered_by", "older_than_days", "each_answer", "named_by"):
        assert any(getattr(f, option) is not None for f in features), option
    assert {f.period for f in features if f.period} == set(PERIOD_DAYS)
    for kind in ("count", "first", "last", "ratio", "unanswered"):
        windows = {f.within_days is not None for f in features if f.type == kind}
        assert windows == {True, False}, kind
    assert spec.ladder.demotion_grace_days > 0
    assert spec.ladder.decay_every_days is not None
    matches = " ".join(k.match for k in spec.kinds.values())
    for derived, _ in vocabulary.DERIVED_ACTIVITY_COLUMNS:
        assert derived in matches, derived
    texts = " ".join([spec.ladder.top_next_step, *(r.next_step or "" for r in spec.rungs)])
    texts += " ".join([*(r.keep_step or "" for r in spec.rungs), *(f.next_step for f in spec.flags)])
    for form in (".date", ".subject", ".kind", "|"):
        assert form in texts, form


def test_the_equality_rule_file_passes_rules_check(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "connector", "rules", "check", str(EVERY_FEATURE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 errors, 0 warnings" in done.stdout


def test_a_copy_folder_that_is_not_there_is_named_before_spark_starts(tmp_path: Path) -> None:
    """A typo in a path costs a config error at once, not minutes of Spark work first (a review's finding)."""
    for folder in ("contact", "event"):
        (tmp_path / folder).mkdir()
    section = WarehouseSection.model_validate(
        {"format": "parquet", "naming": "fivetran", "contact": "contact", "task": "tasks_typo", "event": "event"}
    )
    with pytest.raises(ConfigError, match=r"\[warehouse\] task = 'tasks_typo': no such folder .* for the Task copy"):
        read.check_paths(section, lambda p: tmp_path / p)
    (tmp_path / "tasks_typo").mkdir()
    read.check_paths(section, lambda p: tmp_path / p)


class _Frame:
    """What `read.absent` looks at in a Spark DataFrame: its columns and their types."""

    def __init__(self, *names: str) -> None:
        self.dtypes = [(n, "string") for n in names]


def test_a_copy_without_an_optional_column_is_named_not_read_as_null_in_silence() -> None:
    wanted = [("Id", "VARCHAR"), ("WhoId", "VARCHAR"), ("CallDisposition", "VARCHAR"), ("Subject", "VARCHAR")]
    section = _section(naming="fivetran", columns={"task": {"Subject": "title"}})
    frame = _Frame("ID", "who_id", "Title")  # a warehouse may upper-case names; matching ignores case
    assert read.absent(section, "Task", frame, wanted) == ["call_disposition (Task.CallDisposition)"]  # type: ignore[arg-type]
    assert read.absent(section, "Task", _Frame("id", "who_id", "call_disposition", "title"), wanted) == []  # type: ignore[arg-type]


def test_a_copy_of_an_org_without_the_listening_field_is_read_with_it_empty() -> None:
    """The default rules read Trust_Listening__c, which an org has only once our metadata is deployed: a warehouse
    copy need not have it (it is then NULL, the words decide), while the other fields the rules read stay
    required."""
    needs = load(Path(__file__).resolve().parents[2] / "rules" / "ladder.yaml").needs()
    assert "Trust_Listening__c" in needs.activity_fields
    for obj in ("Task", "Event"):
        wanted = read.required(obj, FieldsSection(), needs, ActivitiesSection())
        assert "Trust_Listening__c" not in wanted
        assert "Subject" in wanted
