"""Our small exception hierarchy: usage errors (the user can fix them) versus failures (the world broke)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connector import log
from connector.exit_codes import ExitCode

if TYPE_CHECKING:
    from connector.crm import ApplyResult
    from connector.engine.origin import Origin


class TrustLadderError(Exception):
    """Base of every error we raise on purpose. Its text never shows a known secret value (`log.add_secret`),
    whatever put it there, a server echoing a token included.

    `partial`: when a run stops early (budget, CRM down, deadline) after some batches, what it had done by then:
    records written, every record refused so far, and the API calls spent, for the caller to record."""

    exit_code: ExitCode = ExitCode.INTERNAL
    partial: ApplyResult | None = None

    def __str__(self) -> str:
        return log.redact(super().__str__())


class UsageError(TrustLadderError):
    """Something the user can fix: configuration, rule files, input data. Raised as itself (no more precise
    kind fits), it is wrong use: exit 2, as click's own usage errors, never 70 ("a bug")."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    exit_code = ExitCode.CONFIG


class DataError(UsageError):
    exit_code = ExitCode.DATA


@dataclass(frozen=True)
class Finding:
    """One located problem in a rule file."""

    path: str
    line: int
    col: int
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message}"


@dataclass
class RuleError(UsageError):
    """A rule file failed to load; carries every finding so the admin sees them all at once."""

    findings: list[Finding] = field(default_factory=list)
    exit_code = ExitCode.RULES

    def __str__(self) -> str:
        return "\n".join(str(f) for f in self.findings)


class EngineUnavailable(ConfigError):
    """The configured engine cannot start here (`[engine] kind = "spark"` without pyspark or Java)."""


class DialectError(TrustLadderError):
    """A statement the engine built has no faithful rendering in the chosen engine's SQL. `origin` (an
    `engine.origin.Origin`) is the part of the rule file that made the construct, when one did: `rules check
    --engine spark` reports it there; without one, the construct is the engine's own (a bug of ours)."""

    def __init__(self, message: str, origin: Origin | None = None) -> None:
        super().__init__(message)
        self.origin = origin


class CrmError(TrustLadderError):
    """The CRM could not be reached or refused us."""

    exit_code = ExitCode.CRM_DOWN


class BudgetExhausted(CrmError):
    exit_code = ExitCode.BUDGET


class DeadlineReached(TrustLadderError):
    """The run's time (`max_run_seconds`) is up: it stops between batches, keeping what it wrote, so that a
    scheduled run never holds the lock into the next one."""

    exit_code = ExitCode.DEADLINE


class LockHeld(TrustLadderError):
    exit_code = ExitCode.LOCKED


class StateBusy(LockHeld):
    """The state store file is held by another process (a run, a `status` poll) longer than we wait: busy, not
    broken, and not the CRM's fault; the next scheduled run tries again."""


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop: Ctrl-C (SIGINT, exit 130) or SIGTERM (exit 143, raised by the handler
    `connector.cli.app` installs). A KeyboardInterrupt, so no `except Exception` can swallow it; the CLI turns it
    into its exit code, and a sync records itself as `interrupted` with what it had done."""

    def __init__(self, signal_name: str = "SIGINT", exit_code: ExitCode = ExitCode.INTERRUPTED) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.exit_code = exit_code


STOP_SETTLE_SECONDS = 1.0  # after a crash: time for a stop signal on its way to arrive (see stop_requested)
_stop: list[Interrupted] = []  # the stop signal this process received, if any


def request_stop(exc: Interrupted) -> None:
    """Remember that the process was asked to stop. The embedded engine turns a signal that lands during a query
    into its own "Query interrupted" error, so the signal itself must be remembered to be reported right."""
    _stop[:] = [exc]


def stop_requested(settle: float = 0.0) -> Interrupted | None:
    """The stop signal received, if any. `settle`: how long to let one that is on its way arrive. A terminal's
    Ctrl-C reaches Spark's JVM as well: the JVM can be gone, and the call into it fail, before this process has
    run its own handler for the same keystroke."""
    ends = time.monotonic() + settle
    try:
        while not _stop and time.monotonic() < ends:
            time.sleep(0.05)
    except Interrupted:  # the handler ran during the wait, and recorded the signal
        pass
    return _stop[0] if _stop else None


def clear_stop() -> None:
    _stop.clear()


def interrupt_code(exc: KeyboardInterrupt) -> ExitCode:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return exc.exit_code if isinstance(exc, Interrupted) else ExitCode.INTERRUPTED
