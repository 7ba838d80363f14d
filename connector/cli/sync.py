"""`sync`: the scheduled command, and how its summary reads."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from connector import config as config_mod
from connector import notify
from connector.cli.app import as_of_option
from connector.commands import sync
from connector.commands.word_diff import word_diff
from connector.exit_codes import ExitCode


@click.command(name="sync")
@click.option("--dry-run", is_flag=True, help="Compute and show the planned changes; write nothing.")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Use this rule file instead of the configured one.",
)
@click.option(
    "--show",
    type=click.IntRange(0, 10_000),
    default=20,
    show_default=True,
    help="Planned changes to list on a dry run.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON.")
@click.option(
    "--out-table",
    default=None,
    metavar="NAME",
    help="Spark only: write the changes to this table (a Parquet folder when NAME is a path) for a reverse-ETL "
    "tool, instead of to the CRM.",
)
@as_of_option
@click.pass_obj
def sync_cmd(
    cfg: config_mod.Config,
    dry_run: bool,
    rules_file: Path | None,
    show: int,
    as_json: bool,
    out_table: str | None,
    as_of: dt.date | None,
) -> None:
    """Sync the configured CRM: compute every contact's rung and flags, write only what changed."""
    with notify.on_failure(cfg, "sync", enabled=not dry_run):  # a failed or partial run tells [notify]
        result = sync.run(
            cfg, as_of=as_of, dry_run=dry_run, rules_file=rules_file, sample_size=show, out_table=out_table
        )
        if as_json:
            click.echo(json.dumps(summary_dict(result), indent=2))
        else:
            click.echo(summary(result))
            if dry_run:
                click.echo(_planned(result))
        if result.failed:
            sys.exit(int(ExitCode.PARTIAL))


def _bar(n: int, total: int, width: int = 30) -> str:
    return "#" * (round(width * n / total) if total else 0)


def _seen(r: sync.SyncResult) -> str:
    """The contacts and activities the run read, saying what the activity figure counts: `rules check --data`
    counts the org's activities otherwise (each once, of every date and kind) and prints how the two reconcile."""
    day = r.as_of.isoformat()
    counted = f"of a kind and dated on or before {day}, once per contact who took part"
    if r.contacts_read is None or r.contacts_read >= r.contacts:
        return f"Contacts seen: {r.contacts:,}   activities classified: {r.activities:,} ({counted})"
    if r.contacts_read == 0:
        return (
            f"Contacts seen: {r.contacts:,}, none read again: nothing changed that could move one, so each stands "
            "as the last run left it (activities classified: 0)"
        )
    return (
        f"Contacts seen: {r.contacts:,}, {r.contacts_read:,} of them read again (history changed, or a change day "
        f"came; the others stand as the last run left them)\n"
        f"Activities classified: {r.activities:,}, those contacts' ({counted})"
    )


def summary(r: sync.SyncResult) -> str:
    total = r.contacts
    lines = [
        f"{'Dry run' if r.dry_run else 'Sync'} as of {r.as_of.isoformat()} with rules {r.rules_version}",
        _seen(r),
        "",
    ]
    for name, n in r.per_rung.items():
        pct = 100 * n / total if total else 0
        lines.append(f"  {name:<10} {n:>9,}  {pct:5.1f}%  {_bar(n, total)}")
    lines.append("")
    lines.append("Flags raised: " + (", ".join(f"{k} {v:,}" for k, v in r.flags.items()) or "none declared"))
    if r.in_grace or r.decaying:
        # Trust_Held_Until__c is set for both: the day of the next drop (the grace period's end, or the next decay).
        lines.append(
            f"In demotion grace: {r.in_grace:,}; decaying (grace over, one rung down each decay period): "
            f"{r.decaying:,}. Both have Trust_Held_Until__c, the day of their next drop: {r.in_grace + r.decaying:,}"
        )
    if r.skipped:
        lines.append(
            "Rows set aside (malformed, or not a contact's): " + ", ".join(f"{k} {v:,}" for k, v in r.skipped.items())
        )
    if r.dry_run:
        lines.append(f"Records that would change: {r.planned_records:,} (nothing written)")
    elif r.audit:
        lines.append(
            f"Audit mode: {r.planned_records:,} records would change; nothing written "
            "(`trust-ladder status` lists the changes)"
        )
    elif r.out_table is not None:
        lines.append(f"Records written to {r.out_table}: {r.changed:,}   ({r.duration_s:.1f} s)")
    else:
        lines.append(f"Records changed: {r.changed:,}   failed: {r.failed:,}   ({r.duration_s:.1f} s)")
    if r.failures_file:
        lines.append(f"Every failed and set-aside record, by Id: {r.failures_file}")
    return "\n".join(lines)


def _planned(r: sync.SyncResult) -> str:
    lines = ["", "Fields that would change: " + ", ".join(f"{k} {v:,}" for k, v in r.planned_fields.items())]
    if r.sample:
        lines.append(f"First changes (by contact Id, up to {len({c.contact_id for c in r.sample})} contacts):")
        for c in r.sample:
            lines.append(f"  {c.contact_id}  {c.field}: {word_diff(c.old, c.new)}")
    return "\n".join(lines)


def _json(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value


def short(value: object, width: int = 70) -> str:
    text = "(empty)" if value is None else str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def summary_dict(r: sync.SyncResult) -> dict[str, Any]:
    return {
        "as_of": r.as_of.isoformat(),
        "rules_version": r.rules_version,
        "dry_run": r.dry_run,
        "engine": r.engine,
        "out_table": r.out_table,
        "contacts": r.contacts,
        "activities": r.activities,
        "per_rung": r.per_rung,
        "flags": r.flags,
        "in_grace": r.in_grace,
        "decaying": r.decaying,
        "changed": r.changed,
        "failed": r.failed,
        "skipped": r.skipped,
        "failures": [{"id": f.record_id, "code": f.code, "message": f.message} for f in r.failures],
        "planned_records": r.planned_records,
        "api_calls": r.api_calls,
        "planned_fields": r.planned_fields,
        "planned_changes": [
            {"id": c.contact_id, "field": c.field, "old": _json(c.old), "new": _json(c.new)} for c in r.sample
        ]
        if r.dry_run
        else [],
        "duration_s": round(r.duration_s, 3),
        "failures_file": r.failures_file,
    }
