"""Issue 19: nobody was told when a scheduled run failed. With `[notify]`, a failed or partial `sync` posts one
message to a webhook that takes Slack's incoming-webhook JSON and/or hands it to a mail command: the exit code,
the outcome, the run's figures and its failures file. An alert that cannot be sent is logged and never changes
the run's own exit code.

The webhook is a local HTTP server (tests/webhook.py); its wire format is Slack's: a POST of
`Content-type: application/json` with `{"text": "..."}` (https://docs.slack.dev/tools/java-slack-sdk/guides/incoming-webhooks,
"How to use"). The org is the fake one (tests/salesforce/fake_org.py), reached through `responses`, which lets the
requests to 127.0.0.1 through to the receiver.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from connector.cli import main
from connector.exit_codes import ExitCode
from tests.conftest import DEFAULT_RULES
from tests.salesforce import fake_org
from tests.salesforce.conftest import Run
from tests.webhook import Hook

HOOK_ENV = "TL_TEST_WEBHOOK_URL"


def _sync(run: Run, notify: str, *args: str, **salesforce: object) -> Result:
    run.rsps.add_passthru("http://127.0.0.1")  # type: ignore[union-attr]
    path = run.folder / "trust-ladder.toml"
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in salesforce.items())
    path.write_text(
        f'[crm]\nbackend = "salesforce"\n[salesforce]\nusername = "{fake_org.USERNAME}"\n'
        f'mirror = "mirror.duckdb"\npoll_seconds = 0\n{extra}[rules]\npath = "{DEFAULT_RULES}"\n'
        f'[state]\npath = "state.duckdb"\n[notify]\n{notify}',
        encoding="utf-8",
    )
    return CliRunner().invoke(
        main, ["--log-format", "json", "--config", str(path), "sync", "--as-of", run.as_of.isoformat(), *args]
    )


def _events(result: Result, name: str) -> list[dict[str, Any]]:
    return [e for e in (json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")) if e["event"] == name]


def _last_run(run: Run) -> dict[str, Any]:
    path = run.folder / "trust-ladder.toml"
    status = CliRunner().invoke(main, ["--config", str(path), "status", "--json"])
    runs: list[dict[str, Any]] = json.loads(status.stdout)["runs"]
    return runs[0]


def test_a_partial_run_posts_its_exit_code_counts_and_failures_file(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    contacts = [run.org.contact(f"C{i}") for i in range(30)]
    for cid in contacts[:3]:
        run.org.lock_failures[cid] = 1  # UNABLE_TO_LOCK_ROW: refused this run, retried the next
    with Hook() as hook:
        monkeypatch.setenv(HOOK_ENV, hook.url)
        result = _sync(run, f'webhook_url_env = "{HOOK_ENV}"\n')

    assert result.exit_code == ExitCode.PARTIAL, result.stderr
    (post,) = hook.received
    assert post.path == "/services/T000/B000/test-token"
    assert post.headers["content-type"] == "application/json"
    message = post.json()
    assert list(message) == ["text"]
    last = _last_run(run)
    lines = message["text"].splitlines()
    assert lines[0].startswith("trust-ladder sync partial on ")
    assert lines[0].endswith(f": partial, exit 1 (run {last['run_id']})")
    assert lines[1] == "contacts 30, changed 27, failed 3, skipped 0, API calls " + str(last["api_calls"])
    assert lines[2] == f"failures file: {last['failures_file']}"
    assert Path(last["failures_file"]).is_file()
    assert _events(result, "notify.sent") == [
        {**_events(result, "notify.sent")[0], "channel": "webhook", "exit_code": 1}
    ]
    assert hook.url not in result.stderr  # the URL is the credential: masked in every log line


def test_a_run_stopped_by_the_budget_says_what_it_had_done(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(1000):
        run.org.contact(f"C{i}")
    run.org.api_limit = 100
    with Hook() as hook:
        monkeypatch.setenv(HOOK_ENV, hook.url)
        result = _sync(run, f'webhook_url_env = "{HOOK_ENV}"\n', budget_fraction=0.08)

    assert result.exit_code == ExitCode.BUDGET, result.stderr
    text = hook.received[0].json()["text"]
    last = _last_run(run)
    assert f": BudgetExhausted, exit 7 (run {last['run_id']})" in text.splitlines()[0]
    assert f"changed {last['changed']:,}, failed 0" in text
    assert "error: " in text  # why it stopped, as the run history has it


def test_an_alert_that_cannot_be_sent_is_logged_and_the_run_keeps_its_exit_code(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = run.org.contact("Ada")
    run.org.lock_failures[ada] = 1
    with Hook(status=404, answer=b"no_service") as hook:  # what Slack answers for a removed webhook
        monkeypatch.setenv(HOOK_ENV, hook.url)
        result = _sync(run, f'webhook_url_env = "{HOOK_ENV}"\nmail_command = ["false"]\n')

    assert result.exit_code == ExitCode.PARTIAL, result.stderr  # not 70, not the alert's failure
    assert len(hook.received) == 1
    reasons = {e["channel"]: e["reason"] for e in _events(result, "notify.failed")}
    assert reasons == {"webhook": "HTTP 404: no_service", "mail": "false exited 1"}
    assert _events(result, "notify.sent") == []


def test_a_webhook_variable_that_is_not_set_is_logged_not_fatal(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    run.org.lock_failures[run.org.contact("Ada")] = 1
    monkeypatch.delenv(HOOK_ENV, raising=False)
    result = _sync(run, f'webhook_url_env = "{HOOK_ENV}"\n')
    assert result.exit_code == ExitCode.PARTIAL
    (failed,) = _events(result, "notify.failed")
    assert failed["reason"] == f"the environment variable {HOOK_ENV} named by [notify] webhook_url_env is not set"


def test_the_mail_command_gets_the_message_on_stdin(run: Run, tmp_path: Path) -> None:
    run.org.lock_failures[run.org.contact("Ada")] = 1
    mailbox = tmp_path / "mailbox.txt"
    writer = f"import sys; open({str(mailbox)!r}, 'w').write(sys.argv[1] + '|' + sys.stdin.read())"
    result = _sync(run, f"mail_command = {json.dumps([sys.executable, '-c', writer, 'trust-ladder alert'])}\n")

    assert result.exit_code == ExitCode.PARTIAL, result.stderr
    subject, body = mailbox.read_text().split("|", 1)
    assert subject == "trust-ladder alert"
    assert body.startswith("trust-ladder sync partial on ")
    assert "failed 1" in body
    assert "`trust-ladder status` lists them" in body
    assert [e["channel"] for e in _events(result, "notify.sent")] == ["mail"]


def test_a_clean_run_and_a_dry_run_send_nothing(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    ada = run.org.contact("Ada")
    with Hook() as hook:
        monkeypatch.setenv(HOOK_ENV, hook.url)
        assert _sync(run, f'webhook_url_env = "{HOOK_ENV}"\n').exit_code == 0
        run.org.lock_failures[ada] = 1
        run.org.task(ada, run.as_of, "Re: thanks", TaskSubtype="Email")
        dry = _sync(run, f'webhook_url_env = "{HOOK_ENV}"\n', "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert hook.received == []
