"""A scheduler runs the sync every 15 minutes and nobody watches: locks, exit codes, crashes, retries, bad rows."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from structlog.testing import capture_logs

from connector import failpoints, state
from connector.cli import main
from connector.crm import ApplyResult, RecordFailure
from connector.crm.local.store import LocalCrm
from connector.exit_codes import ExitCode
from tests.conftest import DEFAULT_RULES, TRUST_FIELDS, Org

AS_OF = dt.date(2026, 11, 1)


def write_config(folder: Path) -> Path:
    path = folder / "trust-ladder.toml"
    path.write_text(
        f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n[rules]\npath = "{DEFAULT_RULES}"\n'
    )
    return path


def cli(folder: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "connector",
            "--config",
            str(folder / "trust-ladder.toml"),
            "--log-format",
            "json",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def events(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]


def copy_of(demo_org: Path, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(demo_org / "crm.duckdb", folder / "crm.duckdb")
    write_config(folder)
    return folder


def copy_folder(source: Path, tmp_path: Path, name: str) -> Path:
    """A private copy of an org folder: its CRM, its state store and its config (which names them relatively)."""
    folder = tmp_path / name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.lock", "*.wal"))
    return folder


def outcome(folder: Path) -> list[tuple[Any, ...]]:
    """What a run leaves behind that matters: the trust fields on every contact. Nothing else carries over: holds
    and since dates are read from each contact's history."""
    con = duckdb.connect(str(folder / "crm.duckdb"), read_only=True)
    fields = con.execute(f'SELECT "Id", {", ".join(TRUST_FIELDS)} FROM "Contact" ORDER BY "Id"').fetchall()
    con.close()
    return fields


# -- one run at a time --------------------------------------------------------------------------------------


def test_a_run_started_while_another_holds_the_lock_exits_8_naming_the_holder(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    lock = state.RunLock(state.lock_path(folder / "state.duckdb"))
    lock.acquire("holder-run")
    try:
        proc = cli(folder, "sync", "--as-of", AS_OF.isoformat())
    finally:
        lock.release()
    assert proc.returncode == ExitCode.LOCKED
    assert f'"pid": {os.getpid()}' in proc.stderr
    assert "holder-run" in proc.stderr
    assert any(e["event"] == "sync.locked" for e in events(proc))
    assert cli(folder, "sync", "--as-of", AS_OF.isoformat()).returncode == 0


def test_a_lock_left_by_a_killed_process_is_taken_over(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    take_lock_and_die = (
        "import os, signal, sys; from pathlib import Path; from connector import state; "
        "state.RunLock(state.lock_path(Path(sys.argv[1]))).acquire('doomed'); os.kill(os.getpid(), signal.SIGKILL)"
    )
    holder = subprocess.run([sys.executable, "-c", take_lock_and_die, str(folder / "state.duckdb")], check=False)
    assert holder.returncode == -signal.SIGKILL
    assert "doomed" in (folder / "state.duckdb.lock").read_text()  # the dead holder's note is still there
    proc = cli(folder, "sync", "--as-of", AS_OF.isoformat())
    assert proc.returncode == 0, proc.stderr


# -- crash-safe and idempotent ------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [False, True], ids=["later_sync", "first_sync"])
@pytest.mark.parametrize("point", failpoints.POINTS)
def test_a_run_killed_at_any_point_converges_on_what_a_clean_run_produces(
    demo_org: Path, synced_org: Path, clean_outcome: Callable[[str], Any], tmp_path: Path, point: str, first: bool
) -> None:
    """A first sync killed mid-write used to come back with new hold dates for the contacts it had written (their
    watch was saved after the write): now nothing a run needs depends on a write having landed. The clean run to
    compare with, and the org after a clean first sync, are made once for all the points (conftest.py)."""
    later = (AS_OF if first else AS_OF + dt.timedelta(days=40)).isoformat()
    crashed = copy_of(demo_org, tmp_path, "crashed") if first else copy_folder(synced_org, tmp_path, "crashed")
    killed = cli(crashed, "sync", "--as-of", later, env={failpoints.ENV: point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = cli(crashed, "sync", "--as-of", later, "--json")
    assert rerun.returncode == 0, rerun.stderr

    assert outcome(crashed) == clean_outcome(later)
    if point == "after_write":
        assert json.loads(rerun.stdout)["changed"] == 0  # the writes had landed: nothing is written twice
    status = cli(crashed, "status", "--json")
    runs = json.loads(status.stdout)["runs"]
    assert [r["outcome"] for r in runs] == ["ok", "died"] + ([] if first else ["ok"])


# -- state store ---------------------------------------------------------------------------------------------


def test_a_state_store_from_schema_1_is_migrated_and_the_grace_runs_from_the_history(org: Org) -> None:
    cid = org.familiar_contact()
    org.sync()
    assert org.fields(cid)["stage"] == "Familiar"
    # A schema-1 store, as the first release wrote it, watching this contact since 25 days before the next run.
    state_file = org.folder / "state.duckdb"
    state_file.unlink()
    con = duckdb.connect(str(state_file))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute(
        "CREATE TABLE demotion_watch (cid VARCHAR PRIMARY KEY, from_rung INTEGER NOT NULL, failing_since DATE NOT NULL)"
    )
    con.execute("INSERT INTO demotion_watch VALUES (?, 2, ?)", [cid, org.day(-40 + 25)])
    con.close()

    org.sync(days_later=40)  # the discovery call left the 120-day window on day 30: held for 30 days
    assert state.schema_version(state_file) == state.SCHEMA_VERSION
    assert org.fields(cid)["stage"] == "Familiar"
    org.sync(days_later=45)  # the old watch said "failing since day 15": it is no longer read
    assert org.fields(cid)["stage"] == "Familiar"
    org.sync(days_later=60)  # 30 days after the day it last met Familiar (day 29): demoted
    assert org.fields(cid)["stage"] == "Friend"
    assert [r["outcome"] for r in state.Store(state_file).runs()] == ["ok", "ok", "ok"]


def test_a_state_store_from_a_newer_release_is_refused(org: Org) -> None:
    org.sync()
    con = duckdb.connect(str(org.folder / "state.duckdb"))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(Exception, match="newer trust-ladder"):
        org.sync()


# -- failed writes are retried ------------------------------------------------------------------------------


def test_records_whose_write_failed_are_reported_exit_1_and_retried_next_run(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked, fine = org.contact("Locked"), org.contact("Fine")
    original = LocalCrm.apply

    def refuse_one(self: LocalCrm, plan_table: str, fields: Any, version: str) -> ApplyResult:
        self.con.execute(f"DELETE FROM {plan_table} WHERE cid = ?", [locked])
        done = original(self, plan_table, fields, version)
        done.failures.append(
            RecordFailure(locked, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", transient=True)
        )
        return done

    monkeypatch.setattr(LocalCrm, "apply", refuse_one)
    config = write_config(org.folder)
    runner = CliRunner()
    first = runner.invoke(main, ["--config", str(config), "sync", "--as-of", org.as_of.isoformat(), "--json"])
    assert first.exit_code == ExitCode.PARTIAL
    summary = json.loads(first.stdout)
    assert summary["failures"] == [
        {"id": locked, "code": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access"}
    ]
    assert org.fields(fine)["stage"] == "Fringe"
    assert org.fields(locked)["stage"] is None
    total, pending = state.Store(org.folder / "state.duckdb").pending()
    assert (total, pending[0]["record_id"], pending[0]["attempts"]) == (1, locked, 1)

    monkeypatch.setattr(LocalCrm, "apply", original)
    second = runner.invoke(main, ["--config", str(config), "sync", "--as-of", org.as_of.isoformat(), "--json"])
    assert second.exit_code == 0
    assert json.loads(second.stdout)["changed"] == 1  # only the record that failed
    assert org.fields(locked)["stage"] == "Fringe"
    assert state.Store(org.folder / "state.duckdb").pending() == (0, [])


# -- malformed rows ------------------------------------------------------------------------------------------


def test_malformed_rows_are_skipped_named_and_counted_and_the_rest_is_synced(org: Org) -> None:
    good = org.contact()
    org.reply(good, 5)
    org._exec(
        'INSERT INTO "Contact" ("Id", "LastName") VALUES (?, ?), (?, ?)',
        ["0038d0000000099XXX", "Bad checksum", "not-an-id", "Bad shape"],
    )
    org._exec(
        'INSERT INTO "Task" ("Id", "WhoId", "Subject", "TaskSubtype") VALUES (?, ?, ?, ?)',
        ["00T8d00000000ZZAAI", good, "Re: undated", "Email"],
    )
    with capture_logs() as logs:
        result = org.sync()
    assert result.skipped == {"Contact": 2, "Task": 1}
    assert result.contacts == 1
    assert org.fields(good)["stage"] == "Friend"
    skipped = {e["object"]: e["ids"] for e in logs if e["event"] == "sync.rows_skipped"}
    assert skipped == {"Contact": ["0038d0000000099XXX", "not-an-id"], "Task": ["00T8d00000000ZZAAI"]}


# -- exit codes ----------------------------------------------------------------------------------------------


def test_an_unreadable_crm_file_is_a_connection_failure_exit_6(tmp_path: Path) -> None:
    write_config(tmp_path)
    (tmp_path / "crm.duckdb").write_bytes(b"this is not a database" * 100)
    proc = cli(tmp_path, "sync")
    assert proc.returncode == ExitCode.CRM_DOWN
    assert "cannot open the local CRM" in proc.stderr


def test_every_run_is_in_the_history_with_its_outcome_and_figures(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    assert cli(folder, "sync", "--as-of", AS_OF.isoformat(), "--dry-run").returncode == 0
    proc = cli(folder, "sync", "--as-of", AS_OF.isoformat())
    assert proc.returncode == 0
    finished = next(e for e in events(proc) if e["event"] == "sync.finished")
    assert finished["contacts"] == 400
    assert finished["changed"] == 400
    assert set(finished) >= {"run_id", "api_calls", "duration_s", "rules_version", "failed", "skipped"}
    report = json.loads(cli(folder, "status", "--json").stdout)
    last, first = report["runs"]
    assert (first["outcome"], last["outcome"]) == ("dry_run", "ok")
    assert (last["contacts"], last["changed"], last["exit_code"]) == (400, 400, 0)
    assert last["run_id"] == finished["run_id"]
    assert report["rules_version_in_force"] == finished["rules_version"]
    assert report["pending_writes"] == 0


def test_a_crm_held_by_a_running_sync_is_named_as_busy_not_broken(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    hold_the_file = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(30)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold_the_file, str(folder / "crm.duckdb")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        proc = cli(folder, "explain", "0038d0000000001AAA")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == ExitCode.CRM_DOWN
    assert "in use by another process (a sync running?)" in proc.stderr
