"""The `trust-ladder` group: global options, and our exceptions turned into exit codes in one place.

- Our errors (TrustLadderError) exit with their own code, their whole message on stderr and in the JSON
  `command.failed` line (multi-line messages folded onto it).
- Ctrl-C exits 130 and SIGTERM 143 (a handler turns SIGTERM into `Interrupted` while a command runs), never 1.
- Anything else is a bug: exit 70, its traceback on stderr only; stdout stays for summaries and `--json`.
- `--config` and `--log-format` may come before or after the command (`trust-ladder sync --config X`).
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from connector import config as config_mod
from connector import log
from connector.entry import interrupted_while_starting
from connector.errors import (
    STOP_SETTLE_SECONDS,
    Interrupted,
    RuleError,
    TrustLadderError,
    clear_stop,
    interrupt_code,
    request_stop,
    stop_requested,
)
from connector.exit_codes import ExitCode

F = TypeVar("F", bound=Callable[..., Any])
_log = log.get("trust_ladder.cli")


# Evaluation dates the engine supports: its windows (years back, weeks of replay) must stay inside the calendar.
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)


class _Date(click.ParamType):  # type: ignore[type-arg]
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            day = value
        else:
            try:
                day = dt.date.fromisoformat(str(value))
            except ValueError:
                self.fail(f"'{value}' is not a date; write YYYY-MM-DD", param, ctx)
        if not MIN_DATE <= day <= MAX_DATE:
            self.fail(
                f"{day.isoformat()} is not in the supported range {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}",
                param,
                ctx,
            )
        return day


DATE = _Date()


def as_of_option(f: F) -> F:
    return click.option(
        "--as-of", type=DATE, default=None, help="Evaluation date (default: today). Same date, same data: same result."
    )(f)


_GLOBAL_OPTIONS = ("--config", "--log-format")


def hoist_global_options(args: list[str]) -> list[str]:
    """`trust-ladder sync --config X` as `trust-ladder --config X sync`: the global options that follow the
    command move before it (up to a `--`), so they work in either place."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":  # the group's own options
        i += 2 if args[i] in _GLOBAL_OPTIONS else 1
    if i >= len(args) or args[i] == "--":
        return args
    head, rest, moved = args[:i], [], []
    j = i
    while j < len(args):
        arg = args[j]
        if arg == "--":
            rest.extend(args[j:])
            break
        if arg in _GLOBAL_OPTIONS and j + 1 < len(args):
            moved += args[j : j + 2]
            j += 2
            continue
        if arg.startswith(tuple(f"{o}=" for o in _GLOBAL_OPTIONS)):
            moved.append(arg)
        else:
            rest.append(arg)
        j += 1
    return head + moved + rest


def _stop(signum: int, _: object) -> None:
    """Ctrl-C or SIGTERM: remembered (a query the signal cuts short raises the engine's own error), then raised."""
    if signum == signal.SIGINT:
        exc = Interrupted("SIGINT", ExitCode.INTERRUPTED)
    else:
        exc = Interrupted("SIGTERM" if signum == signal.SIGTERM else signal.Signals(signum).name, ExitCode.TERMINATED)
    request_stop(exc)
    raise exc


class _Group(click.Group):
    """Turns our exceptions into their exit codes, in one place."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args)))

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        """A Ctrl-C while the command line is read (before `invoke` answers signals) is an interruption, not
        click's "Aborted!" with exit 1."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except KeyboardInterrupt:
            interrupted_while_starting()

    def invoke(self, ctx: click.Context) -> Any:
        log.configure()  # until the config says otherwise: logs (a traceback too) on stderr, never stdout
        main_thread = threading.current_thread() is threading.main_thread()  # signals go to the main thread
        clear_stop()
        previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)} if main_thread else {}
        try:
            return super().invoke(ctx)
        except TrustLadderError as exc:
            _log.error(
                "command.failed", error=type(exc).__name__, exit_code=int(exc.exit_code), message=log.one_line(str(exc))
            )
            click.echo(describe(exc), err=True)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through `_stop`
            _interrupted(ctx, interrupt_code(exc))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception:  # noqa: BLE001 - the one place a bug becomes exit 70 with its traceback logged
            stop = stop_requested(settle=STOP_SETTLE_SECONDS)
            if stop is not None:  # a signal cut a query short: the engine raised its own error for it
                _interrupted(ctx, stop.exit_code)
            _log.exception("command.crashed", exit_code=int(ExitCode.INTERNAL))
            click.echo("trust-ladder: internal error (a bug); the traceback is in the log above.", err=True)
            ctx.exit(int(ExitCode.INTERNAL))
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _interrupted(ctx: click.Context, code: ExitCode) -> None:
    _log.warning(
        "command.interrupted", exit_code=int(code), signal="SIGTERM" if code == ExitCode.TERMINATED else "SIGINT"
    )
    click.echo(
        f"trust-ladder: interrupted ({'SIGTERM' if code == ExitCode.TERMINATED else 'Ctrl-C'}); "
        "what was written stays, and the next run continues from there.",
        err=True,
    )
    ctx.exit(int(code))


def describe(exc: TrustLadderError) -> str:
    if isinstance(exc, RuleError):
        n = len(exc.findings)
        return f"{exc}\nThe rule file has {n} problem{'s' if n != 1 else ''}; nothing was written to the CRM."
    return f"trust-ladder: {exc}"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Config file (default: $TRUST_LADDER_CONFIG, else ./{config_mod.DEFAULT_CONFIG_NAME}, "
    "else built-in defaults).",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default=None,
    help="Log lines on stderr: JSON when not on a terminal (auto), or forced.",
)
@click.version_option(package_name="trust-ladder")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_format: str | None) -> None:
    """Place every contact on the trust ladder (Fringe to Forever) and write it back onto the Contact."""
    try:
        cfg = config_mod.load(config_path)
    except TrustLadderError:
        # The config's own log settings are what failed: the command line's, else auto. `invoke` then logs
        # `command.failed` as for any other error, so a scheduled job's JSON log shows a broken config too.
        fmt = log_format or "auto"
        log.configure(json=None if fmt == "auto" else fmt == "json")
        log.bind_run()
        raise
    fmt = log_format or cfg.log.format
    log.configure(json=None if fmt == "auto" else fmt == "json", level=cfg.log.level)
    log.bind_run()
    ctx.obj = cfg
