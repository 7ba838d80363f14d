"""The `trust-ladder` command. Usage errors print a message and a named exit code; bugs log a traceback."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import duckdb

from connector import config as config_mod
from connector import log, sync
from connector.cli_report import report, simulate
from connector.cli_rules import rules
from connector.crm.salesforce.commands import fields
from connector.errors import ConfigError, RuleError, TrustLadderError
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


def _as_of_option(f: F) -> F:
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
            click.echo(_describe(exc), err=True)
            ctx.exit(int(exc.exit_code))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception:  # noqa: BLE001 - the one place a bug becomes exit 70 with its traceback logged
            _log.exception("command.crashed", exit_code=int(ExitCode.INTERNAL))
            click.echo("trust-ladder: internal error (a bug); the traceback is in the log above.", err=True)
            ctx.exit(int(ExitCode.INTERNAL))


def _describe(exc: TrustLadderError) -> str:
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
        click.echo(_describe(exc), err=True)
        ctx.exit(int(exc.exit_code))
    fmt = log_format or cfg.log.format
    log.configure(json=None if fmt == "auto" else fmt == "json", level=cfg.log.level)
    log.bind_run()
    ctx.obj = cfg


@main.command()
@click.option("--contacts", type=click.IntRange(1, 1_000_000), default=3000, show_default=True,
              help="How many contacts the demo org gets.")
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same org.")
@click.option("--replace", is_flag=True, help="Replace a local CRM that does not hold demo data.")
@_as_of_option
@click.pass_obj
def demo(cfg: config_mod.Config, contacts: int, seed: int, replace: bool, as_of: dt.date | None) -> None:
    """Create a demo org in the local CRM, sync it, and print the summary."""
    from connector.crm.local import demo as demo_mod
    from connector.crm.local.store import LocalCrm

    as_of = as_of or dt.date.today()
    path = cfg.resolve(cfg.local.database)
    if path.exists() and not replace:
        existing = LocalCrm.open(path)
        try:
            origin = existing.meta("origin")
        finally:
            existing.close()
        if origin != "demo":
            raise ConfigError(
                f"{path} holds data that is not a demo org ({origin or 'unknown origin'}); "
                "pass --replace to overwrite it, or point [local] database elsewhere")
    sync.load_rules(cfg)  # a broken rule file should fail before we spend time generating
    crm = LocalCrm.create(path, replace=True)
    try:
        stats = demo_mod.generate(crm, contacts=contacts, seed=seed, as_of=as_of)
        crm.set_meta("origin", "demo")
    finally:
        crm.close()
    state_path = cfg.resolve(cfg.state.path)
    state_path.unlink(missing_ok=True)
    click.echo(f"Demo org created in {path}: {stats.contacts:,} contacts, {stats.tasks:,} tasks, "
               f"{stats.events:,} events, {stats.users} owners.")
    result = sync.run(cfg, as_of=as_of)
    click.echo(_summary(result))
    click.echo("\nNext: `trust-ladder explain <ContactId>` for one contact, `trust-ladder sync --dry-run` "
               "after editing rules/ladder.yaml.")


@main.command(name="sync")
@click.option("--dry-run", is_flag=True, help="Compute and show the planned changes; write nothing.")
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), default=None,
              help="Use this rule file instead of the configured one.")
@click.option("--show", type=int, default=20, show_default=True, help="Planned changes to list on a dry run.")
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@_as_of_option
@click.pass_obj
def sync_cmd(cfg: config_mod.Config, dry_run: bool, rules_file: Path | None, show: int, as_json: bool,
             as_of: dt.date | None) -> None:
    """Sync the configured CRM: compute every contact's rung and flags, write only what changed."""
    result = sync.run(cfg, as_of=as_of, dry_run=dry_run, rules_file=rules_file, sample_size=show)
    if as_json:
        click.echo(json.dumps(_summary_dict(result), indent=2))
    else:
        click.echo(_summary(result))
        if dry_run:
            click.echo(_planned(result))
    if result.failed:
        sys.exit(int(ExitCode.PARTIAL))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, for monitoring.")
@click.option("--runs", "n_runs", type=int, default=10, show_default=True, help="How many past runs to show.")
@click.pass_obj
def status(cfg: config_mod.Config, as_json: bool, n_runs: int) -> None:
    """The last runs and their figures, records waiting for retry, and the rules version in force."""
    from connector import state

    state_path = cfg.resolve(cfg.state.path)
    if not state_path.exists():
        raise ConfigError(f"{state_path}: no state store yet; no sync has run with this configuration")
    store = state.Store(state_path, read_only=True)
    runs = store.runs(n_runs)
    pending_total, pending = store.pending()
    audit_total, audit_sample = store.audit()
    try:
        current_rules = sync.load_rules(cfg).version
    except RuleError:
        current_rules = "invalid (run `trust-ladder rules check`)"
    in_force = next((r["rules_version"] for r in runs if r["outcome"] in ("ok", "partial")), None)
    watermarks = _watermarks(cfg)
    report = {
        "state": str(state_path), "schema_version": state.schema_version(state_path),
        "rules_version_in_force": in_force, "rules_version_configured": current_rules,
        "backend": cfg.crm.backend, "watermarks": watermarks, "rules_mode": cfg.rules.mode,
        "audit_changes": audit_total, "audit_sample": audit_sample,
        "runs": runs, "pending_writes": pending_total, "pending": pending, "watched_for_demotion": store.watched(),
    }
    if as_json:
        click.echo(json.dumps(report, default=str, indent=2))
        return
    click.echo(f"State: {state_path} (schema {report['schema_version']})")
    click.echo(f"Rules in force: {in_force or 'none yet'}; configured: {current_rules}")
    click.echo(f"Backend: {cfg.crm.backend}; watermarks: "
               + (", ".join(f"{k} {v}" for k, v in watermarks.items()) if watermarks else
                  "none (the local CRM is read in place)" if cfg.crm.backend == "local" else "none yet"))
    click.echo(f"Records waiting for retry: {pending_total:,}; contacts watched for demotion: "
               f"{report['watched_for_demotion']:,}")
    for p in pending[:10]:
        click.echo(f"  {p['record_id']}  attempts {p['attempts']}  {p['last_code']}: {p['last_error']}")
    if cfg.rules.mode == "audit" or audit_total:
        click.echo(f"Rules mode: {cfg.rules.mode}; the last audit run would have changed {audit_total:,} fields:")
        for a in audit_sample:
            old, new = _short(a["old_value"], 40), _short(a["new_value"], 60)
            click.echo(f"  {a['record_id']}  {a['field']}: {old} -> {new}")
    click.echo("Last runs:")
    for r in runs:
        click.echo("  " + _run_line(r))


def _watermarks(cfg: config_mod.Config) -> dict[str, str]:
    """Incremental pull positions, kept in the Salesforce mirror with the data they cover."""
    if cfg.salesforce is None:
        return {}
    mirror = cfg.resolve(cfg.salesforce.mirror)
    if not mirror.exists():
        return {}
    try:
        con = duckdb.connect(str(mirror), read_only=True)
    except duckdb.Error:
        return {"mirror": "busy (a run holds it)"}
    try:
        rows = con.execute('SELECT "Key", "Value" FROM "_TrustLadderMeta" WHERE "Key" LIKE '
                           "'salesforce.watermark.%' ORDER BY 1").fetchall()
    finally:
        con.close()
    return {k.removeprefix("salesforce.watermark."): v for k, v in rows}


def _run_line(r: dict[str, Any]) -> str:
    took = f"{(r['finished_at'] - r['started_at']).total_seconds():.1f} s" if r["finished_at"] else ""
    code = "-" if r["exit_code"] is None else str(r["exit_code"])
    counts = "  ".join(f"{k} {r[k] or 0:,}" for k in ("contacts", "changed", "failed", "skipped", "api_calls"))
    line = f"{r['started_at']:%Y-%m-%d %H:%M:%S}  {r['outcome']:<14} exit {code:<3} {counts}  {took}"
    return f"{line}  {r['error'] or ''}".rstrip()


@main.command()
@click.argument("contact_id")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@_as_of_option
@click.pass_obj
def explain(cfg: config_mod.Config, contact_id: str, as_json: bool, as_of: dt.date | None) -> None:
    """Why one contact sits on its rung: every criterion with its numbers, every flag with its activities."""
    from dataclasses import asdict

    from connector import explain as explain_mod
    from connector.crm.factory import open_backend

    rules = sync.load_rules(cfg)
    crm = open_backend(cfg)
    try:
        crm.tune(cfg.engine, cfg.resolve)
        crm.prepare(cfg.fields, rules)
        e = explain_mod.explain(crm.con, rules, contact_id, as_of or dt.date.today(), cfg.resolve(cfg.state.path))
    finally:
        crm.close()
    click.echo(json.dumps(asdict(e), default=str, indent=2) if as_json else explain_mod.render(e))


@main.command(name="import")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.pass_obj
def import_cmd(cfg: config_mod.Config, folder: Path) -> None:
    """Load a Salesforce Data Export folder (Contact.csv, Task.csv, Event.csv) into the local CRM."""
    from connector.crm.local import export
    from connector.crm.local.store import LocalCrm

    path = cfg.resolve(cfg.local.database)
    crm = LocalCrm.open(path) if path.exists() else LocalCrm.create(path)
    try:
        report = export.import_export(crm, folder)
        crm.set_meta("origin", f"import of {folder.resolve()}")
    finally:
        crm.close()
    for problem in report.problems:
        click.echo(f"{folder / problem.file}:{problem.line}: {problem.record_id or '-'}: {problem.message}", err=True)
    for table, more in report.problems_not_listed.items():
        if more:
            click.echo(f"{table}: {more:,} more problems not listed", err=True)
    for table, count in report.imported.items():
        skipped = report.skipped.get(table, 0)
        click.echo(f"{table}: {count:,} imported" + (f", {skipped:,} skipped" if skipped else ""))
    for table, cols in report.ignored_columns.items():
        if cols:
            click.echo(f"{table}: ignored columns {', '.join(cols)}")
    if any(report.skipped.values()):
        sys.exit(int(ExitCode.PARTIAL))  # some rows were left out: say so to a scheduler


def _bar(n: int, total: int, width: int = 30) -> str:
    return "#" * (round(width * n / total) if total else 0)


def _summary(r: sync.SyncResult) -> str:
    total = r.contacts
    lines = [
        f"{'Dry run' if r.dry_run else 'Sync'} as of {r.as_of.isoformat()} with rules {r.rules_version}",
        f"Contacts seen: {r.contacts:,}   activities classified: {r.activities:,}",
        "",
    ]
    for name, n in r.per_rung.items():
        pct = 100 * n / total if total else 0
        lines.append(f"  {name:<10} {n:>9,}  {pct:5.1f}%  {_bar(n, total)}")
    lines.append("")
    lines.append("Flags raised: " + (", ".join(f"{k} {v:,}" for k, v in r.flags.items()) or "none declared"))
    if r.in_grace:
        lines.append(f"In demotion grace: {r.in_grace:,}")
    if r.skipped:
        lines.append("Rows skipped as malformed (see the log for their Ids): "
                     + ", ".join(f"{k} {v:,}" for k, v in r.skipped.items()))
    if r.dry_run:
        lines.append(f"Records that would change: {r.planned_records:,} (nothing written)")
    elif r.audit:
        lines.append(f"Audit mode: {r.planned_records:,} records would change; nothing written "
                     "(`trust-ladder status` lists the changes)")
    else:
        lines.append(f"Records changed: {r.changed:,}   failed: {r.failed:,}   ({r.duration_s:.1f} s)")
    return "\n".join(lines)


def _planned(r: sync.SyncResult) -> str:
    lines = ["", "Fields that would change: " + ", ".join(f"{k} {v:,}" for k, v in r.planned_fields.items())]
    if r.sample:
        lines.append(f"First changes (by contact Id, up to {len({c.contact_id for c in r.sample})} contacts):")
        for c in r.sample:
            lines.append(f"  {c.contact_id}  {c.field}: {_short(c.old)} -> {_short(c.new)}")
    return "\n".join(lines)


def _short(value: object, width: int = 70) -> str:
    text = "(empty)" if value is None else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _summary_dict(r: sync.SyncResult) -> dict[str, Any]:
    return {
        "as_of": r.as_of.isoformat(), "rules_version": r.rules_version, "dry_run": r.dry_run,
        "contacts": r.contacts, "activities": r.activities, "per_rung": r.per_rung, "flags": r.flags,
        "in_grace": r.in_grace, "changed": r.changed, "failed": r.failed, "skipped": r.skipped,
        "failures": [{"id": f.record_id, "code": f.code, "message": f.message} for f in r.failures],
        "planned_records": r.planned_records, "api_calls": r.api_calls,
        "planned_fields": r.planned_fields, "duration_s": round(r.duration_s, 3),
    }


# Admin tools live in their own modules; registered here so `trust-ladder --help` lists them all.
main.add_command(rules)
main.add_command(simulate)
main.add_command(report)
main.add_command(fields)
