"""Alerts: someone is told when a scheduled `sync` fails or ends partial, as Census and Hightouch tell a channel.

A run that exits with anything but 0 sends, to each channel `[notify]` configures, one message with the exit code,
the outcome, the run's figures (contacts, changed, failed, skipped, API calls) and the failures file. The figures
come from the run history (the state store records every run, however it ends), so a run stopped by the budget,
an outage or a signal reports what it had done. Two runs are not alerted: a dry run (someone is watching it), and
exit 8, a start that found another run holding the lock (that run alerts for itself if it fails).

An alert never changes the run's outcome: a webhook that is down, a mail command that fails or hangs past
`timeout_seconds`, is logged (`notify.failed`, with the channel and why) and the run exits with its own code.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import requests

from connector import log, state
from connector.config import Config, NotifySection
from connector.errors import TrustLadderError, interrupt_code
from connector.exit_codes import ExitCode

_log = log.get("trust_ladder.notify")

NOT_ALERTED = frozenset({ExitCode.OK, ExitCode.LOCKED})


@dataclass(frozen=True)
class Alert:
    command: str
    exit_code: int
    outcome: str  # partial, or what stopped the run (CrmError, BudgetExhausted, interrupted, crashed...)
    run_id: str
    host: str
    figures: dict[str, Any]  # contacts, changed, failed, skipped, api_calls (what the run history holds)
    failures_file: str | None
    error: str | None

    def text(self) -> str:
        """The message: what happened first, then the figures, the failures file and the error."""
        kind = "partial" if self.exit_code == ExitCode.PARTIAL else "failed"
        head = f"trust-ladder {self.command} {kind} on {self.host}: {self.outcome}, exit {self.exit_code}"
        lines = [f"{head} (run {self.run_id or 'unknown'})"]
        shown = [
            f"{name} {self.figures[key]:,}"
            for key, name in (
                ("contacts", "contacts"),
                ("changed", "changed"),
                ("failed", "failed"),
                ("skipped", "skipped"),
                ("api_calls", "API calls"),
            )
            if isinstance(self.figures.get(key), int)
        ]
        if shown:
            lines.append(", ".join(shown))
        if self.failures_file:
            lines.append(f"failures file: {self.failures_file}")
        if self.error:
            lines.append(f"error: {log.one_line(self.error)[:1000]}")
        if self.exit_code == ExitCode.PARTIAL:
            lines.append("The refused records are retried by the next run; `trust-ladder status` lists them.")
        return "\n".join(lines)

    def payload(self) -> dict[str, str]:
        """Slack's incoming-webhook message: a JSON object whose `text` is the message (Mattermost, Rocket.Chat
        and Teams' Slack-compatible hooks read the same)."""
        return {"text": self.text()}


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if isinstance(exc, TrustLadderError):
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return int(interrupt_code(exc))
    return int(ExitCode.INTERNAL)


def _recorded(cfg: Config, run_id: str) -> dict[str, Any] | None:
    """The run's record in the run history, if it got that far and the store can be read now."""
    path = cfg.resolve(cfg.state.path)
    if not run_id or not path.is_file():
        return None
    try:
        for run in state.Store(path, read_only=True).runs(limit=20):
            if run.get("run_id") == run_id:
                return run
    except (TrustLadderError, OSError, duckdb.Error) as exc:
        _log.warning("notify.history_unreadable", error=log.one_line(str(exc)))
    return None


def _outcome(exc: BaseException) -> str:
    """The outcome of a run the history does not hold (it stopped before it was recorded: a rule file error, a
    config problem), named as the history names them."""
    if isinstance(exc, SystemExit):
        return "partial" if exc.code == ExitCode.PARTIAL else f"exit {exc.code}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, TrustLadderError):
        return type(exc).__name__
    return "crashed"


def alert_for(cfg: Config, command: str, exit_code: int, outcome: str, error: str | None) -> Alert:
    run_id = log.current_run_id()
    run = _recorded(cfg, run_id) or {}
    code = int(run.get("exit_code") or exit_code)
    figures = {k: run.get(k) for k in ("contacts", "changed", "failed", "skipped", "api_calls")}
    return Alert(
        command=command,
        exit_code=code,
        outcome=str(run.get("outcome") or outcome),
        run_id=run_id,
        host=socket.gethostname(),
        figures=figures,
        failures_file=run.get("failures_file"),
        error=run.get("error") or error,
    )


def send(settings: NotifySection, alert: Alert) -> list[str]:
    """Send `alert` to every configured channel; the channels that took it. Never raises."""
    sent = []
    if settings.webhook_url_env and _webhook(settings, alert):
        sent.append("webhook")
    if settings.mail_command and _mail(settings, alert):
        sent.append("mail")
    return sent


def _failed(channel: str, reason: str, alert: Alert) -> bool:
    _log.error("notify.failed", channel=channel, reason=log.one_line(reason), exit_code=alert.exit_code)
    return False


def _webhook(settings: NotifySection, alert: Alert) -> bool:
    name = settings.webhook_url_env
    url = os.environ.get(name or "", "").strip()
    if not url:
        return _failed(
            "webhook", f"the environment variable {name} named by [notify] webhook_url_env is not set", alert
        )
    log.add_secret(url)  # the URL is the credential: masked in every log line, this one's errors included
    if not url.startswith(("https://", "http://")):
        return _failed("webhook", f"the value of {name} is not an http(s) URL", alert)
    try:
        response = requests.post(
            url,
            data=json.dumps(alert.payload()),
            headers={"Content-Type": "application/json"},
            timeout=settings.timeout_seconds,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return _failed("webhook", f"{type(exc).__name__}: {exc}", alert)
    if not 200 <= response.status_code < 300:
        return _failed("webhook", f"HTTP {response.status_code}: {response.text[:200]}", alert)
    _log.info("notify.sent", channel="webhook", exit_code=alert.exit_code)
    return True


def _mail(settings: NotifySection, alert: Alert) -> bool:
    try:
        proc = subprocess.run(  # noqa: S603 - the admin's own command line from the config, run without a shell
            settings.mail_command,
            input=alert.text() + "\n",
            capture_output=True,
            text=True,
            timeout=settings.timeout_seconds,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return _failed("mail", f"{settings.mail_command[0]}: {type(exc).__name__}: {exc}", alert)
    if proc.returncode != 0:
        said = proc.stderr.strip()[:200]
        why = f"{settings.mail_command[0]} exited {proc.returncode}" + (f": {said}" if said else "")
        return _failed("mail", why, alert)
    _log.info("notify.sent", channel="mail", exit_code=alert.exit_code)
    return True


@contextmanager
def on_failure(cfg: Config, command: str, *, enabled: bool = True) -> Iterator[None]:
    """Around a command: if it ends with a non-zero exit (an exception, or `sys.exit`), alert, then let it end as
    it would have. Nothing is sent when `[notify]` configures no channel."""
    try:
        yield
    except BaseException as exc:
        code = _exit_code(exc)
        if enabled and code not in NOT_ALERTED and (cfg.notify.webhook_url_env or cfg.notify.mail_command):
            error = None if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
            try:
                send(cfg.notify, alert_for(cfg, command, code, _outcome(exc), error))
            except Exception as problem:  # noqa: BLE001 - an alert never replaces the run's own outcome
                _log.error("notify.failed", channel="all", reason=f"{type(problem).__name__}: {problem}")
        raise
