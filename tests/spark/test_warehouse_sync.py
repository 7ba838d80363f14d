"""A Spark sync from a warehouse copy of Salesforce (here the demo org exported in Fivetran's naming), and the copy's
lag: what the last run wrote stands in for the copy's values until a copy taken after the write lands, then the
state store forgets it. The CRM is only written to: nothing is pulled.

One local Spark session serves every Spark test (tests/spark/conftest.py); it skips, saying why, without pyspark
or Java.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from connector import state, written_values
from connector.commands import spark_source, sync
from connector.config import Config, LocalSection, RulesSection, StateSection, WarehouseSection
from connector.crm.local.store import LocalCrm
from connector.crm.warehouse.export import export
from connector.engine import spark as spark_engine
from connector.engine import spark_io
from connector.engine.relations import PLAN
from connector.exit_codes import ExitCode
from connector.ruleset.compiler import load
from tests.conftest import DEFAULT_RULES
from tests.salesforce.conftest import Run, run  # noqa: F401 - the fake org's fixture, for the write-back journey
from tests.salesforce.fake_org import USERNAME
from tests.spark import needs
from tests.spark.conftest import AS_OF, CONTACTS, cli, events, summary, values

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = needs.SPARK

WRITTEN_AT = dt.datetime(2026, 6, 15, 6, 0, tzinfo=dt.UTC)


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

    assert spark_source.written(engine, state_path, tmp_path) == 3
    assert spark_source.prune(engine, state_path) == 2  # B caught up, GONE is no longer in the copy
    spark_source.correct(engine)
    assert _current(spark) == {"003A": ("Friend", "v2"), "003B": ("Friend", "v1"), "003C": ("Fringe", "v1")}

    assert written_values.export(state_path, tmp_path / "left.parquet") == 1
    left = duckdb.connect().execute(
        "SELECT cid, stage, written_at FROM read_parquet(?)", [str(tmp_path / "left.parquet")]
    )
    assert left.fetchall() == [("003A", "Friend", WRITTEN_AT.replace(tzinfo=None))]


def _config(folder: Path, copy: WarehouseSection, *, crm: str = "local", **salesforce: Any) -> Path:
    """A config that syncs on Spark from `copy` and writes to the local CRM in `folder` (or to Salesforce)."""
    lines = [
        f'[crm]\nbackend = "{crm}"\n[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"',
        f'[rules]\npath = "{DEFAULT_RULES}"\n[engine]\nkind = "spark"\n[warehouse]',
        *(f'{key} = "{value}"' for key, value in copy.model_dump(exclude_none=True, exclude={"columns"}).items()),
    ]
    if salesforce:
        lines += ["[salesforce]", *(f"{key} = {json.dumps(str(value))}" for key, value in salesforce.items())]
    config = folder / "trust-ladder.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _export(database: Path, folder: Path, synced_at: dt.datetime) -> WarehouseSection:
    crm = LocalCrm.open(database)
    try:
        return export(crm, folder, naming_="fivetran", synced_at=synced_at)
    finally:
        crm.close()


@dataclass
class Copies:
    """The demo org synced by the embedded engine; a copy of it exported as a Fivetran warehouse and synced from
    it on Spark, again from the same (now stale) copy, and from a copy exported after the write."""

    duckdb_written: list[tuple[Any, ...]]
    duckdb_planned: int
    first: dict[str, Any]
    spark_written: list[tuple[Any, ...]]
    held_after_first: int
    stale: dict[str, Any]
    fresh: dict[str, Any]
    fresh_events: list[dict[str, Any]]
    held_after_fresh: int
    leftovers: list[Path]


def _held(state_path: Path, folder: Path) -> int:
    return written_values.export(state_path, folder / "held.parquet")


@pytest.fixture(scope="module")
def copies(spark: SparkSession, demo_crm: Path, tmp_path_factory: pytest.TempPathFactory) -> Copies:
    del spark  # running, for the syncs below to find
    root = tmp_path_factory.mktemp("copies")
    (root / "duckdb").mkdir()
    shutil.copy(demo_crm, root / "duckdb" / "crm.duckdb")
    duck = Config(
        local=LocalSection(database=root / "duckdb" / "crm.duckdb"),
        state=StateSection(path=root / "duckdb" / "state.duckdb"),
        rules=RulesSection(path=DEFAULT_RULES),
    )
    planned = sync.run(duck, as_of=AS_OF).changed
    org = root / "org"
    org.mkdir()
    shutil.copy(demo_crm, org / "crm.duckdb")
    before_write = written_values.now() - dt.timedelta(hours=1)
    config = _config(org, _export(org / "crm.duckdb", root / "stale", before_write))
    first = summary(cli(config, "sync", "--json", "--as-of", AS_OF.isoformat()))
    held = _held(org / "state.duckdb", root)
    stale = summary(cli(config, "sync", "--json", "--as-of", AS_OF.isoformat()))
    config = _config(org, _export(org / "crm.duckdb", root / "fresh", written_values.now()))
    fresh_run = cli(config, "sync", "--json", "--as-of", AS_OF.isoformat())
    return Copies(
        duckdb_written=values(root / "duckdb" / "crm.duckdb"),
        duckdb_planned=planned,
        first=first,
        spark_written=values(org / "crm.duckdb"),
        held_after_first=held,
        stale=stale,
        fresh=summary(fresh_run),
        fresh_events=events(fresh_run, "sync.written_values"),
        held_after_fresh=_held(org / "state.duckdb", root),
        leftovers=list(org.glob("spark-exchange-*")),
    )


def test_a_sync_from_a_fivetran_copy_writes_what_a_duckdb_sync_writes(copies: Copies) -> None:
    assert (copies.first["engine"], copies.first["failed"]) == ("spark", 0)
    assert copies.first["changed"] == copies.duckdb_planned
    assert len(copies.spark_written) == CONTACTS
    assert copies.spark_written == copies.duckdb_written
    assert copies.held_after_first == copies.duckdb_planned  # kept until the copy has them
    assert copies.first["skipped"]  # the copy's rows no contact can use are set aside, as the local CRM's are


def test_a_second_sync_from_the_same_stale_copy_plans_nothing(copies: Copies) -> None:
    """The copy still shows the values from before the first write; the state store knows better."""
    assert (copies.stale["planned_records"], copies.stale["changed"]) == (0, 0)


def test_a_copy_taken_after_the_write_plans_nothing_and_the_written_values_are_forgotten(copies: Copies) -> None:
    assert (copies.fresh["planned_records"], copies.fresh["changed"]) == (0, 0)
    assert [(e["held"], e["pruned"]) for e in copies.fresh_events] == [(0, copies.duckdb_planned)]
    assert copies.held_after_fresh == 0
    assert copies.leftovers == []  # the run's exchange folder is gone


def test_follow_ups_are_refused_with_a_warehouse_before_anything_runs(tmp_path: Path) -> None:
    copy = WarehouseSection(format="parquet", naming="fivetran", contact="c", task="t", event="e")
    config = _config(tmp_path, copy)
    config.write_text(config.read_text() + "[follow_up]\nenabled = true\n")
    result = cli(config, "sync", "--as-of", AS_OF.isoformat())
    assert result.exit_code == ExitCode.CONFIG
    assert "[follow_up] enabled cannot be used with [warehouse]" in result.stderr
    assert not (tmp_path / "state.duckdb").exists()  # refused before the run


def test_a_sync_from_a_copy_writes_salesforce_without_pulling_it(
    spark: SparkSession,
    run: Run,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """The write backend is Salesforce and the relations come from the copy: sign-in, Contact's describe (the
    picklists and the fields check), and 'Update Records Using sObject Collections' (PATCH composite/sobjects,
    allOrNone false, results in request order); no query, no Bulk query job."""
    del spark
    org = run.org
    old = org._naive_now() - dt.timedelta(days=30)
    ada, bob = org.contact("Ada", stamp=old), org.contact("Bob", stamp=old)
    for days in (20, 40, 70):
        org.task(ada, run.as_of - dt.timedelta(days=days), "Re: our plans", TaskSubtype="Email", stamp=old)
    org.event(bob, run.as_of - dt.timedelta(days=35), "Quarterly meeting", stamp=old)
    copy = export(org.crm, tmp_path / "copy", naming_="fivetran", synced_at=written_values.now())
    config = _config(tmp_path, copy, crm="salesforce", username=USERNAME, mirror=tmp_path / "mirror.duckdb")

    result = summary(cli(config, "sync", "--json", "--as-of", run.as_of.isoformat()))

    assert (result["engine"], result["changed"], result["failed"]) == ("spark", 2, 0)
    assert org.fields_of(ada, "Trust_Stage__c") == org.fields_of(bob, "Trust_Stage__c") == ("Friend",)
    paths = [p for _, p in org.calls]
    assert not [p for p in paths if p.startswith(("query", "queryAll", "jobs/query"))]
    assert [p for m, p in org.calls if m == "PATCH"] == ["composite/sobjects"]
    assert result["api_calls"] == len(org.calls)


def test_a_contact_copied_twice_is_read_once_and_named_in_the_log(
    spark: SparkSession, demo_crm: Path, copies: Copies, tmp_path: Path
) -> None:
    """A pipeline that loaded one Contact twice (an older copy beside the newer): a dry run counts the org's
    contacts once, plans what the clean copy plans (every contact a DuckDB sync of the same org changes), and the
    log names the duplicated Id."""
    del spark
    org = tmp_path / "org"
    org.mkdir()
    shutil.copy(demo_crm, org / "crm.duckdb")
    copy = _export(org / "crm.duckdb", tmp_path / "lake", WRITTEN_AT)
    contact = Path(copy.contact)
    duck = duckdb.connect()
    (cid,) = duck.execute(f"SELECT min(id) FROM read_parquet('{contact}/*.parquet')").fetchone() or ("",)
    duck.execute(
        f"COPY (SELECT * REPLACE ('Impostor' AS first_name, _fivetran_synced - INTERVAL 1 DAY AS _fivetran_synced) "
        f"FROM read_parquet('{contact}/*.parquet') WHERE id = ?) TO '{contact}/part-older.parquet' (FORMAT parquet)",
        [cid],
    )
    result = cli(_config(org, copy), "sync", "--json", "--dry-run", "--as-of", AS_OF.isoformat())
    assert result.exit_code == ExitCode.OK, result.output
    again = summary(result)
    assert (again["contacts"], again["planned_records"]) == (CONTACTS, copies.duckdb_planned)
    (found,) = events(result, "warehouse.duplicate_ids")
    assert (found["object"], found["count"], found["ids"]) == ("Contact", 1, [cid])
