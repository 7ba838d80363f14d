"""Every error a user can fix exits with a code that says so, never 70 ("a bug", connector/exit_codes.py)."""

from __future__ import annotations

import click
from click.testing import CliRunner

from connector.cli import app
from connector.errors import ConfigError, DataError, UsageError
from connector.exit_codes import ExitCode


def _exit_of(error: Exception) -> tuple[int, str]:
    """A command under the real CLI group's error handling that raises `error`."""

    @click.group(cls=app._Group)
    def cli() -> None:
        """A stand-in for `trust-ladder`."""

    @cli.command()
    def act() -> None:
        raise error

    result = CliRunner().invoke(cli, ["act"])
    return result.exit_code, result.stderr


def test_a_usage_error_of_no_more_precise_kind_exits_2_with_its_message_and_no_traceback() -> None:
    code, err = _exit_of(UsageError("--since 2026-12-01 is after --until 2026-11-01; swap them"))
    assert code == 2 == int(ExitCode.USAGE)
    lines = err.strip().splitlines()  # the log line (JSON on a non-terminal), then the message for the user
    assert lines[-1] == "trust-ladder: --since 2026-12-01 is after --until 2026-11-01; swap them"
    assert "Traceback" not in err


def test_the_precise_kinds_keep_their_own_codes() -> None:
    assert _exit_of(ConfigError("[state] path is a folder"))[0] == ExitCode.CONFIG
    assert _exit_of(DataError("no contact 003000000000001AAA"))[0] == ExitCode.DATA
