"""An admin switches `[engine] kind = "spark"` and syncs: the same six fields as the embedded engine, written through
the same backends, with the same dry run, exit codes, run history and `status`.

Spark is heavy: one local session serves every Spark test (tests/spark/conftest.py), and each journey syncs as few
times as it can. The module skips, saying why, when pyspark or Java is missing; it never installs anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from connector import state
from connector.cli.sync import sync_cmd
from connector.config import EngineSection
from connector.exit_codes import ExitCode
from tests.conftest import DEFAULT_RULES, TRUST_FIELDS
from tests.salesforce.conftest import Run, run  # noqa: F401 - the fake org's fixture, for the write-back journey
from tests.spark import needs
from tests.spark.conftest import AS_OF, CONTACTS, cli, events, summary, values

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = needs.SPARK


def _org(demo_crm: Path, folder: Path, *, engine: str = "spark", follow_ups: bool = False) -> Path:
    """A copy of the demo org in `folder`, with a config file that syncs it on `engine`."""
    folder.mkdir()
    shutil.copy(demo_crm, folder / "crm.duckdb")
    config = folder / "trust-ladder.toml"
    config.write_text(
        f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n[rules]\npath = "{DEFAULT_RULES}"\n'
        f'[engine]\nkind = "{engine}"\n[follow_up]\nenabled = {str(follow_ups).lower()}\n'
    )
    return config


def _follow_up_tasks(database: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(
            'SELECT "Id", "WhoId", "OwnerId", "Subject", "ActivityDate", "Status" FROM "Task" '
            'WHERE "Subject" LIKE \'%[TL:%\' ORDER BY "Id"'
        ).fetchall()
    finally:
        con.close()


@dataclass
class Journey:
    """The demo org synced by the embedded engine, and a copy of it dry-run, synced and synced again on Spark."""

    before: list[tuple[Any, ...]]
    duckdb_written: list[tuple[Any, ...]]
    duckdb_tasks: list[tuple[Any, ...]]
    duckdb_planned: int
    dry_run: Result
    after_dry_run: list[tuple[Any, ...]]
    first: Result
    spark_written: list[tuple[Any, ...]]
    spark_tasks: list[tuple[Any, ...]]
    second: Result
    status: dict[str, Any]


@pytest.fixture(scope="module")
def journey(spark: SparkSession, demo_crm: Path, tmp_path_factory: pytest.TempPathFactory) -> Journey:
    del spark  # running, for the syncs below to find
    root = tmp_path_factory.mktemp("journey")
    duck = _org(demo_crm, root / "duckdb", engine="duckdb", follow_ups=True)
    planned = json.loads(cli(duck, "sync", "--dry-run", "--json", "--as-of", AS_OF.isoformat()).stdout)
    assert cli(duck, "sync", "--as-of", AS_OF.isoformat()).exit_code == 0
    config = _org(demo_crm, root / "spark", follow_ups=True)
    before = values(root / "spark" / "crm.duckdb")
    dry = cli(config, "sync", "--dry-run", "--as-of", AS_OF.isoformat())
    after_dry = values(root / "spark" / "crm.duckdb")
    first = cli(config, "sync", "--as-of", AS_OF.isoformat())
    written = values(root / "spark" / "crm.duckdb")
    tasks = _follow_up_tasks(root / "spark" / "crm.duckdb")
    second = cli(config, "sync", "--json", "--as-of", AS_OF.isoformat())
    status = cli(config, "status", "--json")
    assert status.exit_code == 0, status.output
    return Journey(
        before=before,
        duckdb_written=values(root / "duckdb" / "crm.duckdb"),
        duckdb_tasks=_follow_up_tasks(root / "duckdb" / "crm.duckdb"),
        duckdb_planned=planned["planned_records"],
        dry_run=dry,
        after_dry_run=after_dry,
        first=first,
        spark_written=written,
        spark_tasks=tasks,
        second=second,
        status=json.loads(status.stdout),
    )


def test_a_dry_run_on_spark_shows_the_plan_and_writes_nothing(journey: Journey) -> None:
    assert journey.dry_run.exit_code == ExitCode.OK, journey.dry_run.output
    out = journey.dry_run.stdout
    assert f"Records that would change: {journey.duckdb_planned:,} (nothing written)" in out
    assert "First changes (by contact Id" in out
    assert journey.after_dry_run == journey.before


def test_a_spark_sync_writes_the_six_fields_a_duckdb_sync_writes(journey: Journey) -> None:
    assert journey.first.exit_code == ExitCode.OK, journey.first.output
    assert f"Records changed: {journey.duckdb_planned:,}   failed: 0" in journey.first.stdout
    assert len(journey.spark_written) == CONTACTS
    assert journey.spark_written == journey.duckdb_written
    (finished,) = events(journey.first, "sync.finished")
    assert (finished["engine"], finished["changed"]) == ("spark", journey.duckdb_planned)
    assert all(e["engine"] == "spark" for e in events(journey.first, "sync.written"))


def test_follow_up_tasks_made_on_spark_are_the_ones_duckdb_makes(journey: Journey) -> None:
    """`[follow_up] enabled`: the desired tasks are built on Spark and streamed to the backend like the plan."""
    assert journey.spark_tasks  # the demo org has open flags
    assert journey.spark_tasks == journey.duckdb_tasks
    (ups,) = events(journey.second, "sync.follow_ups")
    assert (ups["created"], ups["updated"], ups["closed"]) == (0, 0, 0)


def test_a_second_spark_sync_changes_nothing(journey: Journey) -> None:
    assert journey.second.exit_code == ExitCode.OK, journey.second.output
    summary = json.loads(journey.second.stdout)
    assert (summary["engine"], summary["planned_records"], summary["changed"]) == ("spark", 0, 0)
    assert summary["contacts"] == CONTACTS


def test_status_shows_the_spark_runs_like_any_other(journey: Journey) -> None:
    runs = journey.status["runs"]
    assert [(r["outcome"], r["exit_code"], r["changed"]) for r in runs] == [
        ("ok", 0, 0),
        ("ok", 0, journey.duckdb_planned),
        ("dry_run", 0, 0),
    ]
    assert all(r["contacts"] == CONTACTS for r in runs)
    assert journey.status["pending_writes"] == 0
    assert journey.status["schema_version"] == state.SCHEMA_VERSION


def test_out_table_holds_exactly_the_planned_rows_and_the_crm_is_untouched(
    spark: SparkSession, demo_crm: Path, journey: Journey, tmp_path: Path
) -> None:
    """`sync --out-table` for a reverse-ETL tool: Id and the six fields by their API names, one row per change."""
    config = _org(demo_crm, tmp_path / "org")
    out = tmp_path / "plan.parquet"
    result = cli(config, "sync", "--out-table", str(out), "--as-of", AS_OF.isoformat())

    assert result.exit_code == ExitCode.OK, result.output
    assert f"Records written to {out}: {journey.duckdb_planned:,}" in result.stdout
    table = spark.read.parquet(str(out))
    assert table.columns == ["Id", *TRUST_FIELDS, "trust_ladder_run_id", "trust_ladder_planned_at"]
    rows = sorted(tuple(r)[:-2] for r in table.collect())
    assert len(rows) == journey.duckdb_planned
    assert rows == journey.duckdb_written  # every contact changes on a first sync: the rows a CRM write would hold
    assert values(tmp_path / "org" / "crm.duckdb") == journey.before
    (first_run,) = {r.trust_ladder_run_id for r in table.collect()}

    # A month later, before a reverse-ETL tool has sent the first plan: the run appends its own, stamped.
    later = cli(
        config, "sync", "--json", "--out-table", str(out), "--as-of", (AS_OF + dt.timedelta(days=30)).isoformat()
    )
    assert later.exit_code == ExitCode.OK, later.output
    runs = spark.read.parquet(str(out)).groupBy("trust_ladder_run_id").count().collect()
    counts = {r.trust_ladder_run_id: r["count"] for r in runs}
    assert counts.pop(first_run) == journey.duckdb_planned
    assert list(counts.values()) == [json.loads(later.stdout)["changed"]]


def test_an_out_table_folder_that_cannot_be_written_is_refused_before_spark_starts(
    demo_crm: Path, tmp_path: Path
) -> None:
    config = _org(demo_crm, tmp_path / "org")
    (tmp_path / "a-file").write_text("not a folder")
    for where, says in ((tmp_path / "a-file", "is a file"), (Path("/proc/plan.parquet"), "cannot write there")):
        result = cli(config, "sync", "--out-table", str(where), "--as-of", AS_OF.isoformat())
        assert result.exit_code == ExitCode.CONFIG, result.output
        assert says in result.stderr
    assert values(tmp_path / "org" / "crm.duckdb") == values(demo_crm)


def test_out_table_needs_the_spark_engine(demo_crm: Path, tmp_path: Path) -> None:
    config = _org(demo_crm, tmp_path / "org", engine="duckdb")
    result = cli(config, "sync", "--out-table", "trust_plan", "--as-of", AS_OF.isoformat())
    assert result.exit_code == ExitCode.CONFIG
    assert 'needs [engine] kind = "spark"' in result.stderr


def test_a_salesforce_write_back_from_spark_keeps_a_refused_record_pending(
    spark: SparkSession,
    run: Run,  # noqa: F811 - the fixture imported above
) -> None:
    """The plan streamed from Spark goes through the Salesforce connector as on the embedded engine, here Bulk API
    2.0 ingest: 'Create a Job', 'Upload Job Data', 'Close or Abort a Job', 'Get Job Successful Record Results',
    'Get Job Failed Record Results' (sf__Id, sf__Error: UNABLE_TO_LOCK_ROW). The Collections path from a warehouse
    copy is in test_warehouse_sync.py."""
    del spark
    org = run.org
    old = org._naive_now() - dt.timedelta(days=30)
    ada, bob = org.contact("Ada", stamp=old), org.contact("Bob", stamp=old)
    for days in (20, 40, 70):
        org.task(ada, run.as_of - dt.timedelta(days=days), "Re: our plans", TaskSubtype="Email", stamp=old)
    org.event(bob, run.as_of - dt.timedelta(days=35), "Quarterly meeting", stamp=old)
    org.lock_failures[bob] = 1
    cfg = run.config(bulk_write_threshold=0)
    cfg = cfg.model_copy(update={"engine": EngineSection(kind="spark")})

    result = CliRunner().invoke(sync_cmd, ["--json", "--as-of", run.as_of.isoformat()], obj=cfg)

    assert result.exit_code == ExitCode.PARTIAL, result.output
    summary = json.loads(result.stdout)
    assert (summary["engine"], summary["changed"], summary["failed"]) == ("spark", 1, 1)
    assert [f["id"] for f in summary["failures"]] == [bob]
    assert org.fields_of(ada, "Trust_Stage__c") == ("Friend",)
    assert org.fields_of(bob, "Trust_Stage__c") == (None,)
    assert [p for m, p in org.calls if m == "POST" and p.startswith("jobs/")] == ["jobs/ingest"]
    assert not [p for m, p in org.calls if m == "PATCH" and p == "composite/sobjects"]
    failures = Path(summary["failures_file"]).read_text().splitlines()
    assert [(json.loads(line)["id"], json.loads(line)["kind"]) for line in failures] == [(bob, "failed")]
    store = state.Store(run.folder / "state.duckdb", read_only=True)
    total, pending = store.pending()
    assert (total, pending[0]["record_id"], pending[0]["last_code"]) == (1, bob, "UNABLE_TO_LOCK_ROW")
    assert store.runs(1)[0]["outcome"] == "partial"


def test_a_spark_session_leaves_the_clis_ctrl_c_handler_in_place() -> None:
    """A new SparkContext installs its own SIGINT handler (cancel every job, then KeyboardInterrupt). The JVM, which
    a terminal's Ctrl-C stops too, cannot answer it, and the run crashed (exit 70): the CLI's handler is put back."""
    probe = (
        "import signal\n"
        "from connector.config import EngineSection\n"
        "from connector.engine import spark\n"
        "def ours(signum, frame):\n"
        "    raise KeyboardInterrupt\n"
        "signal.signal(signal.SIGINT, ours)\n"
        "session = spark.session(EngineSection(kind='spark', master='local[1]'))\n"
        "print(signal.getsignal(signal.SIGINT) is ours)\n"
        "session.stop()\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "True"


def test_ctrl_c_to_the_whole_process_group_mid_sync_is_an_interruption_and_the_rerun_converges(
    spark: SparkSession, demo_crm: Path, tmp_path: Path
) -> None:
    """A terminal's Ctrl-C reaches the sync and Spark's JVM at once, here while the run is held with its relations
    loaded into Spark (`after_pull:pause`): exit 130, recorded `interrupted`, nothing written; the next run writes
    everything.

    The interrupted run is a process of its own, with its own JVM, for the keystroke to reach both; the rerun joins
    this process's running session (a second JVM would prove nothing more and cost a cold start)."""
    del spark  # running, for the rerun to find
    config = _org(demo_crm, tmp_path / "org")
    command = [sys.executable, "-m", "connector", "--config", str(config), "--log-format", "json", "sync"]
    env = {**os.environ, "TRUST_LADDER_FAILPOINT": "after_pull:pause"}
    proc = subprocess.Popen(
        [*command, "--as-of", AS_OF.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a foreground job
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if '"event": "sync.spark_loaded"' in line:
                break
        time.sleep(1.0)  # into the pause
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == ExitCode.INTERRUPTED, proc.stderr.read()[-3000:]
    runs = json.loads(cli(config, "status", "--json").stdout)["runs"]
    assert (runs[0]["outcome"], runs[0]["exit_code"]) == ("interrupted", int(ExitCode.INTERRUPTED))
    assert values(tmp_path / "org" / "crm.duckdb") == values(demo_crm)

    rerun = cli(config, "sync", "--json", "--as-of", AS_OF.isoformat())
    assert summary(rerun)["changed"] == CONTACTS
