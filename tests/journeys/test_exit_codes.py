"""Issue 10: every exit code in docs/commands.md is produced by a test, through the real command line.

`PRODUCED_BY` maps each code to the test that produces it (most of them here, the Salesforce stops in
tests/salesforce/test_cli_stops.py); `test_every_exit_code_is_produced_by_a_test` checks that the map, the
`ExitCode` enum and the documented table name the same codes, and that every test named exists.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connector import failpoints, ids, state
from connector.errors import StateBusy
from connector.exit_codes import ExitCode
from tests.journeys.test_unattended import AS_OF, cli, copy_of, events, write_config

ROOT = Path(__file__).resolve().parents[2]

PRODUCED_BY: dict[int, str] = {
    0: "tests.journeys.test_exit_codes::test_0_a_clean_sync",
    1: "tests.journeys.test_exit_codes::test_1_an_import_that_skips_some_rows",
    2: "tests.journeys.test_exit_codes::test_2_arguments_out_of_range_name_the_allowed_range",
    3: "tests.journeys.test_exit_codes::test_3_a_config_path_that_is_a_folder_or_not_utf8",
    4: "tests.journeys.test_exit_codes::test_4_a_broken_rule_file",
    5: "tests.journeys.test_exit_codes::test_5_an_import_that_rejects_every_contact_changes_nothing",
    6: "tests.journeys.test_unattended::test_an_unreadable_crm_file_is_a_connection_failure_exit_6",
    7: "tests.salesforce.test_cli_stops::test_a_run_stopped_by_the_budget_exits_7_and_records_its_account",
    8: "tests.journeys.test_exit_codes::test_8_demo_and_import_during_a_sync_exit_8_and_the_sync_stands",
    9: "tests.salesforce.test_cli_stops::test_a_run_that_reaches_its_deadline_exits_9_keeping_what_it_wrote",
    70: "tests.journeys.test_exit_codes::test_70_a_bug_puts_its_traceback_on_stderr_only",
    130: "tests.journeys.test_exit_codes::test_130_143_a_signal_during_a_sync_is_recorded_as_interrupted",
    143: "tests.journeys.test_exit_codes::test_130_143_a_signal_during_a_sync_is_recorded_as_interrupted",
}


def test_every_exit_code_is_produced_by_a_test() -> None:
    page = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    table = {int(m) for m in re.findall(r"^\| (\d+) \|", page, flags=re.MULTILINE)}
    assert table == {int(c) for c in ExitCode} == set(PRODUCED_BY)
    for node in PRODUCED_BY.values():
        module, name = node.split("::")
        assert callable(getattr(importlib.import_module(module), name)), node


def _status(folder: Path) -> dict[str, Any]:
    proc = cli(folder, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


def test_0_a_clean_sync(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    proc = cli(folder, "sync", "--as-of", AS_OF.isoformat())
    assert proc.returncode == ExitCode.OK, proc.stderr


def _export(folder: Path, contacts: list[str]) -> Path:
    folder.mkdir()
    (folder / "Contact.csv").write_text(
        '"Id","FirstName","LastName"\n' + "".join(f'"{cid}","Ada","Tester {i}"\n' for i, cid in enumerate(contacts)),
        encoding="utf-8",
    )
    return folder


def test_1_an_import_that_skips_some_rows(tmp_path: Path) -> None:
    write_config(tmp_path)
    export = _export(tmp_path / "export", [ids.make(ids.CONTACT, 1), "not-an-id"])
    proc = cli(tmp_path, "import", str(export))
    assert proc.returncode == ExitCode.PARTIAL, proc.stderr
    assert "Contact: 1 imported, 1 skipped" in proc.stdout


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["sync", "--show", "-1"], "0<=x<=10000"),
        (["status", "--runs", "-1"], "1<=x<=10000"),
        (["status", "--runs", str(10**30)], "1<=x<=10000"),
        (["demo", "--seed", "-1"], "0<=x<=4294967295"),
        (
            ["simulate", "--rules", "rules/ladder.yaml", "--weeks", "104", "--as-of", "0001-01-01"],
            "1900-01-01 to 2999-12-31",
        ),
        (["explain", "0038d000000000AAAA", "--as-of", "9999-12-31"], "1900-01-01 to 2999-12-31"),
    ],
)
def test_2_arguments_out_of_range_name_the_allowed_range(tmp_path: Path, args: list[str], allowed: str) -> None:
    write_config(tmp_path)
    (tmp_path / "crm.duckdb").write_bytes(b"")  # a demo --seed -1 must not reach it
    args = [str(ROOT / a) if a.startswith("rules/") else a for a in args]
    proc = cli(tmp_path, *args)
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert allowed in proc.stderr
    assert (tmp_path / "crm.duckdb").read_bytes() == b""


def test_3_a_config_path_that_is_a_folder_or_not_utf8(tmp_path: Path) -> None:
    folder_cfg = subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(tmp_path), "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert folder_cfg.returncode == ExitCode.CONFIG
    assert "folder" in folder_cfg.stderr
    assert folder_cfg.stdout == ""
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes("[log]\n# caf\xe9\n".encode("latin-1"))
    after = subprocess.run(
        [sys.executable, "-m", "connector", "status", "--config", str(latin1)],
        capture_output=True,
        text=True,
        check=False,
    )  # --config after the command
    assert after.returncode == ExitCode.CONFIG
    assert "not UTF-8" in after.stderr
    assert "Traceback" not in after.stderr + after.stdout


def test_3_a_broken_config_is_a_json_command_failed_line_for_a_scheduled_job(tmp_path: Path) -> None:
    """A cron job that logs JSON finds a broken config in its log like any other failure: the config's own log
    settings are what failed, so the command line's (`--log-format json`) are used."""
    broken = tmp_path / "trust-ladder.toml"
    broken.write_text('[local]\ndatabase = 5\n[log]\nformat = "console"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(broken), "--log-format", "json", "sync"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == ExitCode.CONFIG
    assert proc.stdout == ""
    first, second = proc.stderr.splitlines()
    failed = json.loads(first)
    assert (failed["event"], failed["level"], failed["exit_code"], failed["error"]) == (
        "command.failed",
        "error",
        ExitCode.CONFIG,
        "ConfigError",
    )
    assert str(broken) in failed["message"]
    assert "[local.database]" in failed["message"]
    assert re.fullmatch(r"[0-9a-f]{12}", failed["run_id"])
    assert second.startswith(f"trust-ladder: {broken}: [local.database]")


def test_4_a_broken_rule_file(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    broken = folder / "broken.yaml"
    broken.write_text("rungs: [\n", encoding="utf-8")
    proc = cli(folder, "sync", "--rules", str(broken))
    assert proc.returncode == ExitCode.RULES
    assert "broken.yaml:" in proc.stderr


@pytest.mark.parametrize("option", [["simulate", "--rules"], ["simulate", "--against"], ["report", "--simulate"]])
def test_4_a_rule_file_that_is_a_folder_or_missing_is_a_rule_file_error(
    demo_org: Path, tmp_path: Path, option: list[str]
) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    ladder = str(ROOT / "rules" / "ladder.yaml")
    for given in (folder, folder / "no-such-rules.yaml"):
        extra = ["--rules", ladder] if option[1] == "--against" else []
        proc = cli(folder, *option, str(given), *extra)
        assert proc.returncode == ExitCode.RULES, proc.stderr
        assert str(given) in proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout


def test_5_an_import_that_rejects_every_contact_changes_nothing(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    before = _contacts(folder)
    export = _export(tmp_path / "export", ["not-an-id", "neither"])
    proc = cli(folder, "import", str(export))
    assert proc.returncode == ExitCode.DATA, proc.stderr
    assert "every record of Contact.csv was rejected" in proc.stderr
    assert _contacts(folder) == before


def test_an_import_whose_task_csv_is_a_folder_deletes_nothing(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    tasks_before = _count(folder, "Task")
    export = _export(tmp_path / "export", ["0038d000000000AAAA"])
    (export / "Task.csv").mkdir()
    proc = cli(folder, "import", str(export))
    assert proc.returncode == ExitCode.DATA
    assert "Task.csv: not a file" in proc.stderr
    assert _count(folder, "Task") == tasks_before > 0


def _contacts(folder: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(folder / "crm.duckdb"), read_only=True)
    try:
        return con.execute('SELECT "Id" FROM "Contact" ORDER BY 1').fetchall()
    finally:
        con.close()


def _count(folder: Path, table: str) -> int:
    con = duckdb.connect(str(folder / "crm.duckdb"), read_only=True)
    try:
        return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def _paused_sync(folder: Path, point: str = "after_compute") -> subprocess.Popen[str]:
    """A real sync, held still at `point` once it has logged `sync.planned`, for the test to act on."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connector",
            "--config",
            str(folder / "trust-ladder.toml"),
            "--log-format",
            "json",
            "sync",
            "--as-of",
            AS_OF.isoformat(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, failpoints.ENV: f"{point}:pause"},
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if '"sync.planned"' in line:
            return proc
    proc.kill()
    pytest.fail(f"the sync never reached {point}: {proc.communicate()}")


def test_8_demo_and_import_during_a_sync_exit_8_and_the_sync_stands(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    export = _export(tmp_path / "export", ["0038d000000000AAAA"])
    sync = _paused_sync(folder)
    try:
        demo = cli(folder, "demo", "--replace", "--contacts", "10")
        imported = cli(folder, "import", str(export))
        status = _status(folder)
    finally:
        sync.send_signal(signal.SIGINT)
        sync.communicate(timeout=60)
    assert (demo.returncode, imported.returncode) == (ExitCode.LOCKED, ExitCode.LOCKED)
    assert "another run holds the lock" in demo.stderr
    assert status["runs"][0]["outcome"] == "running"  # its lock is held: alive
    assert len(_contacts(folder)) == 400  # nothing replaced
    rerun = cli(folder, "sync", "--as-of", AS_OF.isoformat(), "--json")
    assert rerun.returncode == 0
    assert json.loads(rerun.stdout)["changed"] == 400  # the CRM is the sync's, untouched by demo or import


def test_70_a_bug_puts_its_traceback_on_stderr_only(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    bug = (
        "import sys; from connector.commands import sync; from connector.cli import main\n"
        "def boom(*a, **k): raise ZeroDivisionError('a bug')\n"
        "sync.run = boom\nmain()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", bug, "--config", str(folder / "trust-ladder.toml"), "sync"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == ExitCode.INTERNAL
    assert "ZeroDivisionError" in proc.stderr
    assert "Traceback" not in proc.stdout
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, ExitCode.INTERRUPTED), (signal.SIGTERM, ExitCode.TERMINATED)]
)
def test_130_143_a_signal_during_a_sync_is_recorded_as_interrupted(
    demo_org: Path, tmp_path: Path, sig: signal.Signals, code: ExitCode
) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    sync = _paused_sync(folder)
    sync.send_signal(sig)
    _, err = sync.communicate(timeout=60)
    assert sync.returncode == code, err
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e["event"] == "sync.interrupted" and e["exit_code"] == code for e in logged)
    assert "Traceback" not in err
    (run,) = _status(folder)["runs"]
    assert (run["outcome"], run["exit_code"], run["contacts"]) == ("interrupted", code, 400)
    assert cli(folder, "sync", "--as-of", AS_OF.isoformat()).returncode == 0  # the lock went with it


def test_a_killed_run_shows_as_died_at_once_not_running(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    killed = cli(folder, "sync", "--as-of", AS_OF.isoformat(), env={failpoints.ENV: "after_compute"})
    assert killed.returncode == -signal.SIGKILL
    report = _status(folder)
    (run,) = report["runs"]
    assert run["outcome"] == "died"
    assert run["started_at"].endswith("+00:00")
    assert not state.lock_held(state.lock_path(folder / "state.duckdb"))


def test_every_skipped_row_is_named_in_the_failures_file_and_status(demo_org: Path, tmp_path: Path) -> None:
    folder = copy_of(demo_org, tmp_path, "org")
    proc = cli(folder, "sync", "--as-of", AS_OF.isoformat(), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    path = Path(summary["failures_file"])
    assert path.parent == folder / "failures"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    per_object: dict[str, int] = {}
    for line in lines:
        assert set(line) == {"run_id", "object", "id", "kind", "code", "message"}
        per_object[line["object"]] = per_object.get(line["object"], 0) + 1
    assert per_object == summary["skipped"]  # every one counted is named
    assert {line["code"] for line in lines} >= {"lead", "no_who"}  # not-a-contact rows of the demo org
    finished = next(e for e in events(proc) if e["event"] == "sync.finished")
    assert finished["failures_file"] == str(path)
    report = _status(folder)
    assert report["runs"][0]["failures_file"] == str(path)
    assert isinstance(report["runs"][0]["per_rung"], dict)
    assert report["runs"][0]["finished_at"].endswith("+00:00")


def test_command_failed_keeps_the_whole_message(tmp_path: Path) -> None:
    write_config(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("kinds: 1\nrungs: 2\n", encoding="utf-8")
    proc = cli(tmp_path, "sync", "--rules", str(broken))
    (failed,) = [e for e in events(proc) if e["event"] == "command.failed"]
    shown = [ln for ln in proc.stderr.splitlines() if "broken.yaml:" in ln and not ln.startswith("{")]
    assert len(shown) > 1
    assert all(ln in failed["message"] for ln in shown)


def test_rules_check_takes_a_folder_and_skips_its_test_files(tmp_path: Path) -> None:
    write_config(tmp_path)
    proc = cli(tmp_path, "rules", "check", "--no-data", str(ROOT / "rules"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rule test" not in proc.stdout
    assert "Checked" in proc.stdout


def test_a_state_store_held_by_another_process_is_busy_exit_8_not_crm_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_path = tmp_path / "state.duckdb"
    state.Store(store_path).runs()  # create it
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(store_path)], stdout=subprocess.PIPE, text=True)
    monkeypatch.setattr(state, "_BUSY_WAIT_S", 0.2)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StateBusy, match="held by another process") as err:
            state.Store(store_path).runs()
    finally:
        holder.kill()
        holder.wait()
    assert err.value.exit_code == ExitCode.LOCKED


def test_a_signal_that_cuts_a_query_short_is_still_an_interruption(
    demo_org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB turns a signal that lands during a query into its own "Query interrupted" error: the run must still
    exit 143 and be recorded `interrupted`, never as a crash (exit 70)."""
    from click.testing import CliRunner  # noqa: PLC0415

    from connector import engine  # noqa: PLC0415
    from connector.cli import main  # noqa: PLC0415
    from connector.errors import Interrupted, clear_stop, request_stop  # noqa: PLC0415

    folder = copy_of(demo_org, tmp_path, "signalled")

    def signalled_mid_query(*_: object, **__: object) -> int:
        request_stop(Interrupted("SIGTERM", ExitCode.TERMINATED))  # what the handler does before raising
        raise RuntimeError("Query interrupted")  # what DuckDB raises instead when the signal lands in a query

    monkeypatch.setattr(engine, "compute", signalled_mid_query)
    monkeypatch.chdir(folder)
    try:
        result = CliRunner().invoke(main, ["--config", str(write_config(folder)), "sync", "--as-of", AS_OF.isoformat()])
    finally:
        clear_stop()
    assert result.exit_code == ExitCode.TERMINATED, result.output
    runs = _status(folder)["runs"]
    assert (runs[0]["outcome"], runs[0]["exit_code"]) == ("interrupted", int(ExitCode.TERMINATED))


def test_a_ctrl_c_that_reaches_sparks_jvm_first_is_still_an_interruption(
    demo_org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A terminal's Ctrl-C goes to the whole process group: Spark's JVM can die of it, and the call into it fail,
    before this process runs its own handler. The run waits for the signal on its way: exit 130, `interrupted`."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from click.testing import CliRunner  # noqa: PLC0415

    from connector import engine  # noqa: PLC0415
    from connector.cli import main  # noqa: PLC0415
    from connector.errors import clear_stop  # noqa: PLC0415

    folder = copy_of(demo_org, tmp_path, "jvm-first")

    def jvm_gone_then_signalled(*_: object, **__: object) -> int:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()  # our own copy of the keystroke
        raise ConnectionRefusedError("An error occurred while calling o168.localCheckpoint")  # py4j, JVM gone

    monkeypatch.setattr(engine, "compute", jvm_gone_then_signalled)
    monkeypatch.chdir(folder)
    try:
        result = CliRunner().invoke(main, ["--config", str(write_config(folder)), "sync", "--as-of", AS_OF.isoformat()])
    finally:
        clear_stop()
    assert result.exit_code == ExitCode.INTERRUPTED, result.output
    runs = _status(folder)["runs"]
    assert (runs[0]["outcome"], runs[0]["exit_code"]) == ("interrupted", int(ExitCode.INTERRUPTED))
