"""Issue 17: the last places where a user's mistake exited 70 ("a bug") or lost data, through the real command line.

Each case: the exit code of its kind (2 for a command-line value, 3 for the configuration, 5 for data that matches
nothing, 130 for Ctrl-C), a message that says what the path or Id is, no traceback, and nothing created or
emptied by a refused run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from connector import ids
from connector.exit_codes import ExitCode
from tests.journeys.test_unattended import AS_OF, cli, copy_of, write_config

UNKNOWN_OWNER = "005000000000000AAA"


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "internal error" not in proc.stderr


def _synced(demo_org: Path, tmp_path: Path) -> Path:
    folder = copy_of(demo_org, tmp_path, "org")
    proc = cli(folder, "sync", "--as-of", AS_OF.isoformat())
    assert proc.returncode == ExitCode.OK, proc.stderr
    return folder


@pytest.mark.parametrize("out", ["/proc/x", "/dev/null"])
def test_digest_out_where_nothing_can_be_written_is_a_usage_error(demo_org: Path, tmp_path: Path, out: str) -> None:
    folder = _synced(demo_org, tmp_path)
    proc = cli(folder, "digest", "--out", out, "--as-of", AS_OF.isoformat())
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert "--out" in proc.stderr
    assert ("cannot write there" in proc.stderr) if out == "/proc/x" else ("is a device, not a folder" in proc.stderr)
    _no_traceback(proc)


@pytest.mark.parametrize(
    ("out", "says"),
    [("/proc/x/report.html", "cannot write there"), ("/dev/null", "is a device, not a regular file")],
)
def test_report_out_where_nothing_can_be_written_is_a_usage_error(
    demo_org: Path, tmp_path: Path, out: str, says: str
) -> None:
    folder = _synced(demo_org, tmp_path)
    proc = cli(folder, "report", "--out", out, "--as-of", AS_OF.isoformat())
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert says in proc.stderr
    _no_traceback(proc)


def test_an_output_path_under_a_file_is_refused_and_no_folder_is_left_behind(demo_org: Path, tmp_path: Path) -> None:
    folder = _synced(demo_org, tmp_path)
    (tmp_path / "plain.txt").write_text("not a folder")
    proc = cli(folder, "report", "--out", str(tmp_path / "plain.txt" / "a" / "report.html"))
    assert proc.returncode == ExitCode.USAGE, proc.stderr
    assert "plain.txt is a file, not a folder" in proc.stderr
    _no_traceback(proc)

    before = sorted(p.name for p in tmp_path.iterdir())
    refused = cli(folder, "digest", "--out", str(tmp_path / "new" / "deeper"), "--owner", UNKNOWN_OWNER)
    assert refused.returncode == ExitCode.DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no `new/` made by the refused run


def test_digest_for_an_owner_with_no_contact_exits_5_with_one_clean_message(demo_org: Path, tmp_path: Path) -> None:
    """5, as `explain` for an unknown contact Id: the Id is well formed (not a usage error), and the data holds
    nothing for it."""
    folder = _synced(demo_org, tmp_path)
    proc = cli(folder, "digest", "--out", str(tmp_path / "digest"), "--owner", UNKNOWN_OWNER)
    assert proc.returncode == ExitCode.DATA, proc.stderr
    assert f"no contact is owned by {UNKNOWN_OWNER}" in proc.stderr
    _no_traceback(proc)
    assert not (tmp_path / "digest").exists()

    # What is no Salesforce Id at all is said to be one, before any work, as `explain` says it.
    for typed, says in [
        ("005NOPE", "--owner: '005NOPE' is not a Salesforce Id (15 or 18 characters)"),
        ("005000000000000zzz", "its last three characters do not match the first 15"),
    ]:
        proc = cli(folder, "digest", "--out", str(tmp_path / "digest"), "--owner", typed)
        assert proc.returncode == ExitCode.DATA, proc.stderr
        assert says in proc.stderr
        _no_traceback(proc)
        assert not (tmp_path / "digest").exists()


def test_a_digest_that_can_be_written_makes_its_folder(demo_org: Path, tmp_path: Path) -> None:
    folder = _synced(demo_org, tmp_path)
    out = tmp_path / "digests" / "this-week"
    proc = cli(folder, "digest", "--out", str(out), "--as-of", AS_OF.isoformat())
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert (out / "owners.tsv").is_file()


def _config(folder: Path, *, state: str = "state.duckdb", database: str = "crm.duckdb") -> None:
    text = (folder / "trust-ladder.toml").read_text()
    text = text.replace('path = "state.duckdb"', f'path = "{state}"').replace(
        'database = "crm.duckdb"', f'database = "{database}"'
    )
    (folder / "trust-ladder.toml").write_text(text)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_text("runs: 3\n"), "is a file that is not a DuckDB database"),
        (lambda p: (p.parent / "under").write_text("x"), "under is a file, not a folder"),
    ],
    ids=["folder", "other-file", "under-a-file"],
)
def test_a_state_path_that_cannot_be_the_state_store_is_a_config_error_at_once(
    demo_org: Path, tmp_path: Path, make: object, says: str
) -> None:
    """Before: a folder or a stray file waited 10 s and exited 8, "held by another process"."""
    folder = copy_of(demo_org, tmp_path, "org")
    name = "under/state.duckdb" if "under" in says else "state-store"
    make(folder / ("under" if "under" in says else name))  # type: ignore[operator]
    _config(folder, state=name)
    for command in (["sync", "--as-of", AS_OF.isoformat()], ["status"]):
        proc = cli(folder, *command)
        # Exit 3, not the 8 a wait for the lock ends in: the state store's busy wait only ever ends in exit 8, so
        # this proves no wait without timing a process on a machine whose load the test does not control.
        assert proc.returncode == ExitCode.CONFIG, proc.stderr
        assert "[state] path" in proc.stderr
        assert says in proc.stderr
        _no_traceback(proc)


def test_a_local_database_that_is_a_folder_is_a_config_error(tmp_path: Path) -> None:
    """Before: exit 6, as if the CRM could not be reached."""
    write_config(tmp_path)
    (tmp_path / "crm.duckdb").mkdir()
    for command in (["sync"], ["demo", "--contacts", "10"]):
        proc = cli(tmp_path, *command)
        assert proc.returncode == ExitCode.CONFIG, proc.stderr
        assert "crm.duckdb is a folder" in proc.stderr
        _no_traceback(proc)


def _count(folder: Path, table: str) -> int:
    con = duckdb.connect(str(folder / "crm.duckdb"), read_only=True)
    try:
        row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def test_an_import_without_task_or_user_files_keeps_those_tables_and_says_so(demo_org: Path, tmp_path: Path) -> None:
    """Before: the import emptied Tasks (and Users), exited 0 and said nothing."""
    folder = copy_of(demo_org, tmp_path, "org")
    tasks, users = _count(folder, "Task"), _count(folder, "User")
    assert tasks > 0
    export = tmp_path / "export"
    export.mkdir()
    (export / "Contact.csv").write_text(f'"Id","FirstName","LastName"\n"{ids.make(ids.CONTACT, 7)}","Ada","Tester"\n')
    proc = cli(folder, "import", str(export))
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert _count(folder, "Task") == tasks
    assert _count(folder, "User") == users
    assert f"Task: no Task.csv in {export}; the {tasks:,} records already in the local CRM are kept" in proc.stderr
    if users:
        assert "User: no User.csv" in proc.stderr
    assert _count(folder, "Contact") == 1  # the file it has replaces its table, as before


def test_ctrl_c_while_the_program_starts_prints_the_one_line_message_and_exits_130(tmp_path: Path) -> None:
    """SIGINT delivered while the command's modules are still being imported (a second or two on a cold start)."""
    script = (
        "import builtins, os, signal, sys\n"
        # A parent that ignores SIGINT (a test runner's worker may) hands that on to its children: restore Python's
        # own handler, as a terminal's process starts with.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "real = builtins.__import__\n"
        "def slow(name, *args, **kwargs):\n"
        "    if name == 'connector.cli':\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(name, *args, **kwargs)\n"
        "builtins.__import__ = slow\n"
        "sys.argv = ['trust-ladder', 'status']\n"
        "from connector.entry import run\n"
        "run()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=tmp_path, timeout=60
    )
    assert proc.returncode == ExitCode.INTERRUPTED, proc.stderr
    assert proc.stderr.strip() == "trust-ladder: interrupted (Ctrl-C) while starting; nothing was done."
    assert proc.stdout == ""
