"""Issue 10, through the command line on the fake org: every refused record named (status --json, the failures
file, a summarised log), runs that stop early keep their account in the run history, and simulate, report and
explain read the mirror without a single API call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from connector import failures, ids
from connector.cli import main
from connector.commands import sync
from connector.exit_codes import ExitCode
from tests.conftest import DEFAULT_RULES
from tests.salesforce import fake_org
from tests.salesforce.conftest import Run


def _config(run: Run, **settings: object) -> Path:
    path = run.folder / "trust-ladder.toml"
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    path.write_text(
        f'[crm]\nbackend = "salesforce"\n[salesforce]\nusername = "{fake_org.USERNAME}"\n'
        f'mirror = "mirror.duckdb"\npoll_seconds = 0\n{extra}[rules]\npath = "{DEFAULT_RULES}"\n'
        '[state]\npath = "state.duckdb"\n',
        encoding="utf-8",
    )
    return path


def _cli(run: Run, *args: str, **settings: object) -> Result:
    # `--config` after the command, as README allows
    return CliRunner().invoke(main, ["--log-format", "json", *args, "--config", str(_config(run, **settings))])


def _events(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]


def _status(run: Run) -> dict[str, Any]:
    result = _cli(run, "status", "--json")
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_96_refused_records_are_all_named_in_status_json_and_the_failures_file(run: Run) -> None:
    contacts = [run.org.contact(f"C{i}") for i in range(300)]
    refused = sorted(contacts[::3][:96])
    for cid in refused:
        run.org.lock_failures[cid] = 1
    result = _cli(run, "sync", "--as-of", run.as_of.isoformat())
    assert result.exit_code == ExitCode.PARTIAL, result.stderr

    logged = _events(result)
    assert len([e for e in logged if e["event"] == "sync.record_failed"]) == sync.LOGGED_FAILURES
    (summarised,) = [e for e in logged if e["event"] == "sync.record_failures_summarised"]
    assert summarised["total"] == 96
    path = Path(summarised["failures_file"])
    lines = failures.read(path)
    assert sorted(line["id"] for line in lines if line["kind"] == "failed") == refused
    assert {(line["object"], line["code"]) for line in lines} == {("Contact", "UNABLE_TO_LOCK_ROW")}

    report = _status(run)
    assert report["pending_writes"] == 96
    assert sorted(p["record_id"] for p in report["pending"]) == refused  # all of them, not 50
    (last,) = report["runs"]
    assert (last["outcome"], last["failed"], last["changed"], last["failures_file"]) == ("partial", 96, 204, str(path))


def test_a_run_stopped_by_the_budget_exits_7_and_records_its_account(run: Run) -> None:
    """'Limit Info Header': the guard stops between batches; the run history says what the run wrote, refused
    and spent, and its refusals wait for retry."""
    contacts = [run.org.contact(f"C{i}") for i in range(1000)]
    for cid in contacts[:5]:
        run.org.lock_failures[cid] = 1
    run.org.api_limit = 100
    # 8 of 100 calls: the pull (the Contact describe and three Composite calls), the check for contacts changed
    # since the pull, and three write batches
    result = _cli(run, "sync", "--as-of", run.as_of.isoformat(), budget_fraction=0.08)
    assert result.exit_code == ExitCode.BUDGET, result.stderr
    (last,) = _status(run)["runs"]
    assert (last["outcome"], last["exit_code"]) == ("BudgetExhausted", 7)
    assert (last["changed"], last["failed"], last["api_calls"]) == (595, 5, len(run.org.calls))
    assert last["api_calls"] > 0
    assert sorted(line["id"] for line in failures.read(Path(last["failures_file"]))) == sorted(contacts[:5])
    assert _status(run)["pending_writes"] == 5


def test_a_run_that_reaches_its_deadline_exits_9_keeping_what_it_wrote(run: Run) -> None:
    """'Update Records Using sObject Collections': the third PATCH is accepted and never answered."""
    for i in range(1000):
        run.org.contact(f"C{i}")
    run.org.hang("PATCH", r"^composite/sobjects$", after=2)
    result = _cli(run, "sync", "--as-of", run.as_of.isoformat(), max_run_seconds=90)
    assert result.exit_code == ExitCode.DEADLINE, result.stderr
    (last,) = _status(run)["runs"]
    assert (last["outcome"], last["changed"], last["api_calls"]) == ("DeadlineReached", 400, len(run.org.calls))
    (failed,) = [e for e in _events(result) if e["event"] == "command.failed"]
    assert "max_run_seconds" in failed["message"]


def test_skipped_rows_on_salesforce_are_named_in_the_failures_file(run: Run) -> None:
    ada = run.org.contact("Ada")
    undated = run.org.insert("Event", WhoId=ada, Subject="Lunch", IsAllDayEvent=False)
    lead_task = run.org.task(ids.make(ids.LEAD, 7), run.as_of, "Call a lead")
    result = _cli(run, "sync", "--as-of", run.as_of.isoformat(), "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["skipped"] == {"Event": 1, "Task": 1}
    lines = failures.read(Path(summary["failures_file"]))
    assert {(line["id"], line["kind"], line["code"]) for line in lines} == {
        (undated, "skipped", "no_date"),
        (lead_task, "skipped", "lead"),
    }


def test_simulate_report_and_explain_read_the_mirror_without_an_api_call(run: Run) -> None:
    ada = run.org.contact("Ada")
    run.org.task(ada, run.as_of, "Re: thanks", TaskSubtype="Email")
    assert _cli(run, "sync", "--as-of", run.as_of.isoformat()).exit_code == 0
    calls = len(run.org.calls)
    simulated = _cli(
        run, "simulate", "--rules", str(DEFAULT_RULES), "--weeks", "0", "--as-of", run.as_of.isoformat(), "--json"
    )
    assert simulated.exit_code == 0, simulated.stderr
    assert json.loads(simulated.stdout)
    out = run.folder / "report.html"
    reported = _cli(run, "report", "--out", str(out), "--as-of", run.as_of.isoformat(), "--weeks", "0")
    assert reported.exit_code == 0, reported.stderr
    assert out.stat().st_size > 0
    explained = _cli(run, "explain", ada, "--as-of", run.as_of.isoformat())
    assert explained.exit_code == 0, explained.stderr
    assert ada in explained.stdout
    assert len(run.org.calls) == calls  # read from the mirror: no sign-in, no call
