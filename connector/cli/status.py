"""`status`: the last runs, records waiting for retry, watermarks and the rules in force.

A run row left `running` whose lock is free belongs to a process that died: it is shown as `died` at once (the
next sync records it so). Times are UTC, in ISO 8601 with their offset; `--json` lists every record waiting
for retry, and each run names its failures file (every record it could not write or set aside).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
import duckdb

from connector import config as config_mod
from connector import log
from connector.commands import sync
from connector.commands.word_diff import word_diff
from connector.errors import ConfigError, RuleError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, for monitoring.")
@click.option(
    "--runs",
    "n_runs",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="How many past runs to show.",
)
@click.pass_obj
def status(cfg: config_mod.Config, as_json: bool, n_runs: int) -> None:
    """The last runs and their figures, records waiting for retry, and the rules version in force."""
    from connector import state

    state_path = cfg.resolve(cfg.state.path)
    if not state_path.exists():
        state.check_path(state_path)  # a folder or a file on the way is said as such
        raise ConfigError(f"{state_path}: no state store yet; no sync has run with this configuration")
    store = state.Store(state_path, read_only=True)
    runs = store.runs(n_runs)
    if any(r["outcome"] == "running" for r in runs) and not state.lock_held(state.lock_path(state_path)):
        for r in runs:  # nobody holds the lock: the process that was running is gone
            if r["outcome"] == "running":
                r["outcome"] = "died"
    pending_total, pending = store.pending(None if as_json else 10)
    audit_total, audit_sample = store.audit()
    try:
        current_rules = sync.load_rules(cfg).version
    except RuleError:
        current_rules = "invalid (run `trust-ladder rules check`)"
    in_force = next((r["rules_version"] for r in runs if r["outcome"] in ("ok", "partial")), None)
    watermarks = _watermarks(cfg)
    report = {
        "state": str(state_path),
        "schema_version": state.schema_version(state_path),
        "rules_version_in_force": in_force,
        "rules_version_configured": current_rules,
        "backend": cfg.crm.backend,
        "watermarks": watermarks,
        "rules_mode": cfg.rules.mode,
        "audit_changes": audit_total,
        "audit_sample": audit_sample,
        "runs": runs,
        "pending_writes": pending_total,
        "pending": pending,
    }
    if as_json:
        click.echo(json.dumps(report, default=_json_value, indent=2))
        return
    click.echo(f"State: {state_path} (schema {report['schema_version']})")
    click.echo(f"Rules in force: {in_force or 'none yet'}; configured: {current_rules}")
    click.echo(
        f"Backend: {cfg.crm.backend}; watermarks: "
        + (
            ", ".join(f"{k} {v}" for k, v in watermarks.items())
            if watermarks
            else "none (the local CRM is read in place)"
            if cfg.crm.backend == "local"
            else "none yet"
        )
    )
    click.echo(f"Records waiting for retry: {pending_total:,}")
    for p in pending[:10]:
        click.echo(f"  {p['record_id']}  attempts {p['attempts']}  {p['last_code']}: {p['last_error']}")
    if pending_total > len(pending[:10]):
        click.echo(f"  ... {pending_total - len(pending[:10]):,} more: `trust-ladder status --json` lists them all")
    last_file = next((r.get("failures_file") for r in runs if r.get("failures_file")), None)
    if last_file:
        click.echo(f"Failures file of the last run that had any (every record failed or set aside): {last_file}")
    if cfg.rules.mode == "audit" or audit_total:
        click.echo(f"Rules mode: {cfg.rules.mode}; the last audit run would have changed {audit_total:,} fields:")
        for a in audit_sample:
            click.echo(f"  {a['record_id']}  {a['field']}: {word_diff(a['old_value'], a['new_value'])}")
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
        rows = con.execute(
            'SELECT "Key", "Value" FROM "_TrustLadderMeta" WHERE "Key" LIKE \'salesforce.watermark.%\' ORDER BY 1'
        ).fetchall()
    finally:
        con.close()
    return {k.removeprefix("salesforce.watermark."): v for k, v in rows}


def _json_value(value: object) -> object:
    """Times as ISO 8601 with their offset; anything else as text."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _run_line(r: dict[str, Any]) -> str:
    took = f"{(r['finished_at'] - r['started_at']).total_seconds():.1f} s" if r["finished_at"] else ""
    code = "-" if r["exit_code"] is None else str(r["exit_code"])
    done = "would change" if r.get("dry_run") else "changed"
    # A dry run's fields it would change follow its count ("would change 3 (stage 2, reason 3)"), only where any.
    fields = [f"{k} {v:,}" for k, v in (r.get("planned_fields") or {}).items() if v] if r.get("dry_run") else []
    by_field = f" ({', '.join(fields)})" if fields else ""
    counts = "  ".join(
        f"{done} {(r.get('planned') if r.get('dry_run') else r[k]) or 0:,}{by_field}"
        if k == "changed"
        else f"{k} {r[k] or 0:,}"
        for k in ("contacts", "changed", "failed", "skipped", "api_calls")
    )
    line = f"{r['started_at']:%Y-%m-%d %H:%M:%S}Z  {r['outcome']:<14} exit {code:<3} {counts}  {took}"
    return f"{line}  {log.one_line(r['error'] or '')}".rstrip()
