"""Issue 19: an admin who runs `simulate`, `report`, `digest` or `import` at a terminal sees which step a long run
is in, as `sync` shows it; off a terminal (a scheduler, a pipe) nothing but the log lines reaches stderr.

The commands run under a pseudo-terminal, as a person's shell would run them: the progress display (rich) draws
only when stderr is a terminal.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

from connector import ids
from tests.conftest import DEFAULT_RULES, Org

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def _config(folder: Path) -> Path:
    config = folder / "trust-ladder.toml"
    config.write_text(
        f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n[rules]\npath = "{DEFAULT_RULES}"\n'
    )
    return config


def at_a_terminal(folder: Path, *args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal; the exit code, stdout, and what the terminal showed."""
    primary, secondary = pty.openpty()
    shown = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed: the command is done
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("NO_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(_config(folder)), *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=secondary,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    os.close(secondary)
    reader.join(timeout=10)
    os.close(primary)
    return proc.returncode, proc.stdout, _ANSI.sub("", shown.decode("utf-8", "replace"))


def off_a_terminal(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(_config(folder)), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def small_org(org: Org) -> None:
    ada = org.contact("Ada")
    org.reply(ada, 5)
    org.call(org.contact("Bea"), 30, "Product feedback call")
    org.sync()


def test_simulate_shows_each_step_at_a_terminal(org: Org) -> None:
    small_org(org)
    code, out, shown = at_a_terminal(
        org.folder, "simulate", "--rules", str(DEFAULT_RULES), "--as-of", org.as_of.isoformat(), "--weeks", "2"
    )
    assert code == 0, shown
    assert "Nothing was written to the CRM." in out
    for step in (
        "simulate: reading the CRM",
        "simulate: placing contacts under the current rules",
        "simulate: placing contacts under the new rules",
        "simulate: comparing",
        "simulate: replaying the current rules over 2 weeks",
        "simulate: replaying the new rules over 2 weeks",
    ):
        assert step in shown, f"{step!r} not shown:\n{shown}"
    assert "6/6" not in out  # the display is on the terminal (stderr), never in the output


def test_report_shows_each_step_at_a_terminal_and_nothing_off_one(org: Org, tmp_path: Path) -> None:
    small_org(org)
    out = tmp_path / "r.html"
    code, _, shown = at_a_terminal(org.folder, "report", "--out", str(out), "--as-of", org.as_of.isoformat())
    assert code == 0, shown
    for step in ("reading the CRM", "the trend, month by month", "placing contacts on the ladder", "drawing the page"):
        assert f"report: {step}" in shown, f"{step!r} not shown:\n{shown}"

    piped = off_a_terminal(org.folder, "report", "--out", str(out), "--as-of", org.as_of.isoformat())
    assert piped.returncode == 0, piped.stderr
    assert "report: " not in piped.stderr
    assert "\x1b" not in piped.stderr  # JSON log lines only: no control characters for a scheduler's log


def test_report_of_a_simulation_counts_its_steps(org: Org, tmp_path: Path) -> None:
    small_org(org)
    code, _, shown = at_a_terminal(
        org.folder, "report", "--simulate", str(DEFAULT_RULES), "--out", str(tmp_path / "s.html"), "--weeks", "0"
    )
    assert code == 0, shown
    assert "report: placing contacts under the new rules" in shown
    assert "report: drawing the page" in shown
    assert "replaying" not in shown  # --weeks 0: no replay, and none counted
    assert re.search(r"report: drawing the page.*\b6/6\b", shown), shown


def test_digest_shows_each_step_at_a_terminal(org: Org, tmp_path: Path) -> None:
    small_org(org)
    code, out, shown = at_a_terminal(org.folder, "digest", "--out", str(tmp_path / "d"))
    assert code == 0, shown
    assert "Digest for 1 owner" in out
    for step in ("reading the CRM", "placing contacts on the ladder", "writing the pages"):
        assert f"digest: {step}" in shown, f"{step!r} not shown:\n{shown}"


def test_import_shows_each_file_it_reads_at_a_terminal(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    ada, call = ids.make(ids.CONTACT, 1), ids.make(ids.TASK, 1)
    (export / "Contact.csv").write_text(f'"Id","FirstName","LastName"\n"{ada}","Ada","Tester"\n')
    (export / "Task.csv").write_text(
        f'"Id","WhoId","Subject","ActivityDate","Status"\n"{call}","{ada}","Call","2026-05-01","Completed"\n'
    )
    code, out, shown = at_a_terminal(tmp_path, "import", str(export))
    assert code == 0, shown
    assert "Contact: 1 imported" in out
    for step in ("reading Contact.csv", "reading Task.csv", "writing the local CRM"):
        assert f"import: {step}" in shown, f"{step!r} not shown:\n{shown}"
    assert re.search(r"import: writing the local CRM.*\b3/3\b", shown), shown
