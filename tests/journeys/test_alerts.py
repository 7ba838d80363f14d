"""Issue 19: a scheduled `sync` that fails tells someone, through the real command line, as cron or systemd runs
it: a separate process posting Slack's incoming-webhook JSON to a receiver on 127.0.0.1 (tests/webhook.py), and
exiting with its own code whatever the alert did."""

from __future__ import annotations

import os
from pathlib import Path

from connector.exit_codes import ExitCode
from tests.journeys.test_unattended import cli, write_config
from tests.webhook import Hook

HOOK_ENV = "TL_TEST_WEBHOOK_URL"


def _notifying(folder: Path) -> None:
    config = write_config(folder)
    config.write_text(config.read_text() + f'[notify]\nwebhook_url_env = "{HOOK_ENV}"\ntimeout_seconds = 5\n')


def test_a_sync_that_cannot_open_the_crm_alerts_with_its_exit_code(tmp_path: Path) -> None:
    _notifying(tmp_path)
    (tmp_path / "crm.duckdb").write_bytes(b"this is not a database" * 100)
    with Hook() as hook:
        proc = cli(tmp_path, "sync", env={**os.environ, HOOK_ENV: hook.url})
    assert proc.returncode == ExitCode.CRM_DOWN, proc.stderr
    (post,) = hook.received
    text = post.json()["text"]
    assert ": CrmError, exit 6 (run " in text.splitlines()[0]
    assert "trust-ladder sync failed on " in text
    assert "cannot open the local CRM" in text  # the error, as the run history recorded it
    assert hook.url not in proc.stderr


def test_a_broken_rule_file_alerts_before_any_run_is_recorded(tmp_path: Path) -> None:
    _notifying(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("ladder: [\n")
    with Hook() as hook:
        proc = cli(tmp_path, "sync", "--rules", str(broken), env={**os.environ, HOOK_ENV: hook.url})
    assert proc.returncode == ExitCode.RULES, proc.stderr
    text = hook.received[0].json()["text"]
    assert ": RuleError, exit 4 (run " in text.splitlines()[0]
    assert "broken.yaml" in text  # the error names the file
    assert "failures file" not in text  # no run was recorded: nothing to point at


def test_a_receiver_that_is_down_leaves_the_exit_code_alone(tmp_path: Path) -> None:
    _notifying(tmp_path)
    (tmp_path / "crm.duckdb").write_bytes(b"this is not a database" * 100)
    with Hook() as hook:
        url = hook.url  # the receiver stops here: nothing listens on its port any more
    proc = cli(tmp_path, "sync", env={**os.environ, HOOK_ENV: url})
    assert proc.returncode == ExitCode.CRM_DOWN
    assert '"event": "notify.failed"' in proc.stderr
    assert "ConnectionError" in proc.stderr
