"""Log lines: JSON for machines, with the run id bound, and never a secret."""

from __future__ import annotations

import json

import pytest

from connector import log


def test_json_lines_carry_the_run_id_and_redact_secret_fields(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(json=True)
    run_id = log.bind_run()
    log.get("t").info(
        "crm.signed_in",
        username="ada@example.com",
        password="hunter2",
        security_token="tok",
        access_token="00D!abc",
        consumer_secret="s",
    )
    line = json.loads(capsys.readouterr().err.strip())
    assert line["event"] == "crm.signed_in"
    assert line["run_id"] == run_id
    assert line["username"] == "ada@example.com"
    for key in ("password", "security_token", "access_token", "consumer_secret"):
        assert line[key] == "***"
    assert "hunter2" not in json.dumps(line)


def test_console_lines_are_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(json=False)
    log.get("t").info("sync.finished", contacts=3)
    err = capsys.readouterr().err
    assert "sync.finished" in err
    assert "contacts=3" in err
    assert not err.lstrip().startswith("{")
