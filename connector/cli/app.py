"""The `trust-ladder` group: global options, and our exceptions turned into exit codes in one place."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from connector import config as config_mod
from connector import log
from connector.errors import RuleError, TrustLadderError
from connector.exit_codes import ExitCode

F = TypeVar("F", bound=Callable[..., Any])
_log = log.get("trust_ladder.cli")


class _Date(click.ParamType):  # type: ignore[type-arg]
    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            self.fail(f"'{value}' is not a date; write YYYY-MM-DD", param, ctx)


DATE = _Date()


def as_of_option(f: F) -> F:
    return click.option("--as-of", type=DATE, default=None,
                        help="Evaluation date (default: today). Same date, same data: same result.")(f)


class _Group(click.Group):
    """Turns our exceptions into their exit codes, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TrustLadderError as exc:
            _log.error("command.failed", error=type(exc).__name__, exit_code=int(exc.exit_code),
                       message=str(exc).splitlines()[0] if str(exc) else "")
            click.echo(describe(exc), err=True)
            ctx.exit(int(exc.exit_code))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception:  # noqa: BLE001 - the one place a bug becomes exit 70 with its traceback logged
            _log.exception("command.crashed", exit_code=int(ExitCode.INTERNAL))
            click.echo("trust-ladder: internal error (a bug); the traceback is in the log above.", err=True)
            ctx.exit(int(ExitCode.INTERNAL))


def describe(exc: TrustLadderError) -> str:
    if isinstance(exc, RuleError):
        n = len(exc.findings)
        return f"{exc}\nThe rule file has {n} problem{'s' if n != 1 else ''}; nothing was written to the CRM."
    return f"trust-ladder: {exc}"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help=f"Config file (default: $TRUST_LADDER_CONFIG, else ./{config_mod.DEFAULT_CONFIG_NAME}, "
                   "else built-in defaults).")
@click.option("--log-format", type=click.Choice(["auto", "json", "console"]), default=None,
              help="Log lines on stderr: JSON when not on a terminal (auto), or forced.")
@click.version_option(package_name="trust-ladder")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_format: str | None) -> None:
    """Place every contact on the trust ladder (Fringe to Forever) and write it back onto the Contact."""
    try:
        cfg = config_mod.load(config_path)
    except TrustLadderError as exc:
        log.configure()
        click.echo(describe(exc), err=True)
        ctx.exit(int(exc.exit_code))
    fmt = log_format or cfg.log.format
    log.configure(json=None if fmt == "auto" else fmt == "json", level=cfg.log.level)
    log.bind_run()
    ctx.obj = cfg
