"""`demo` and `import`: the commands that fill the local CRM.

Both change the CRM and the state, so both take the run lock first: during a running sync they exit 8 and
touch nothing. Every input is checked before anything is replaced.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import click

from connector import config as config_mod
from connector import log, progress, state
from connector.cli.app import as_of_option
from connector.cli.sync import summary
from connector.commands import sync
from connector.errors import ConfigError, DataError
from connector.exit_codes import ExitCode

_log = log.get("trust_ladder.import")


@click.command()
@click.option(
    "--contacts",
    type=click.IntRange(1, 1_000_000),
    default=3000,
    show_default=True,
    help="How many contacts the demo org gets.",
)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=7, show_default=True, help="Same seed, same org.")
@click.option("--replace", is_flag=True, help="Replace a local CRM that does not hold demo data.")
@click.option(
    "--warehouse",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also write the synced org out as a Fivetran-named warehouse copy in this folder, with a config that "
    "syncs from it on Spark.",
)
@as_of_option
@click.pass_obj
def demo(
    cfg: config_mod.Config, contacts: int, seed: int, replace: bool, warehouse: Path | None, as_of: dt.date | None
) -> None:
    """Create a demo org in the local CRM, sync it, and print the summary."""
    as_of = as_of or dt.date.today()
    path = cfg.resolve(cfg.local.database)
    from connector.commands import warehouse_trial

    if warehouse is not None:
        warehouse_trial.check(warehouse)  # before the local CRM is replaced
    with state.RunLock(state.lock_path(cfg.resolve(cfg.state.path))) as lock:
        lock.acquire(log.bind_run(), what="demo")  # a running sync keeps its CRM and state: exit 8
        _demo(cfg, path, contacts, seed, as_of, replace=replace)
        if warehouse is not None:
            config = warehouse_trial.write(cfg, warehouse)
            click.echo(
                f"\nIts Fivetran-named warehouse copy is in {warehouse}. To sync from it on Spark into this local "
                f"CRM (pip install -e '.[spark]'): `trust-ladder --config {config} sync`"
            )


def _demo(cfg: config_mod.Config, path: Path, contacts: int, seed: int, as_of: dt.date, *, replace: bool) -> None:
    from connector.crm.local import demo as demo_mod
    from connector.crm.local.store import LocalCrm

    rebuilt = path.exists()
    if path.exists() and not replace:
        existing = LocalCrm.open(path)
        try:
            origin = existing.meta("origin")
        finally:
            existing.close()
        if origin != "demo":
            raise ConfigError(
                f"{path} holds data that is not a demo org ({origin or 'unknown origin'}); "
                "pass --replace to overwrite it, or point [local] database elsewhere"
            )
    from connector.commands import demo_outcomes

    rules = sync.load_rules(cfg)  # a broken rule file should fail before we spend time generating
    crm = LocalCrm.create(path, replace=True)
    try:
        stats = demo_mod.generate(crm, contacts=contacts, seed=seed, as_of=as_of)
        deals = demo_outcomes.add(crm, rules, seed=seed, as_of=as_of, fields=cfg.fields, activities=cfg.activities)
        crm.set_meta("origin", "demo")
    finally:
        crm.close()
    state_path = cfg.resolve(cfg.state.path)
    history = state_path.exists()
    state_path.unlink(missing_ok=True)
    if rebuilt:  # say so: a rerun of the README's first command starts over, and what it started over from
        cleared = f", and its run history ({state_path}) cleared" if history else ""
        click.echo(f"The local CRM in {path} was replaced by a new demo org{cleared}.")
    click.echo(
        f"Demo org created in {path}: {stats.contacts:,} contacts, {stats.tasks:,} tasks, "
        f"{stats.events:,} events, {stats.users} owners, {deals:,} closed deals."
    )
    result = sync.run(cfg, as_of=as_of, lock_held=True)
    click.echo(summary(result))
    crm = LocalCrm.open(path)
    try:
        examples = crm.examples(cfg.fields)
    finally:
        crm.close()
    if examples:
        click.echo("\nA contact on each rung:")
        for cid, name, rung, flags in examples:
            click.echo(f"  {cid}  {rung:<10} {name}" + (f"  ({flags})" if flags else ""))
    first = examples[0][0] if examples else "<ContactId>"
    click.echo(
        f"\nNext: `trust-ladder explain {first}` for why one contact is where it is, `trust-ladder sync --dry-run` "
        "after editing rules/ladder.yaml."
    )


@click.command(name="import")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
@click.pass_obj
def import_cmd(cfg: config_mod.Config, folder: Path) -> None:
    """Load a Salesforce Data Export folder (Contact.csv, Task.csv, Event.csv; Account.csv for account names) into
    the local CRM."""
    from connector.crm.local import export
    from connector.crm.local.store import LocalCrm

    path = cfg.resolve(cfg.local.database)
    check_export_folder(folder)
    with state.RunLock(state.lock_path(cfg.resolve(cfg.state.path))) as lock:
        lock.acquire(log.bind_run(), what="import")  # a running sync keeps its CRM: exit 8
        crm = LocalCrm.open(path) if path.exists() else LocalCrm.create(path)
        try:
            with progress.Steps(0, "import") as steps:
                report = export.import_export(crm, folder, steps=steps)
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
    if "Account" not in report.imported and "Account" not in report.kept:
        click.echo(
            f"Account: no Account.csv in {folder}; the digest, the report and `explain` show each contact's "
            "AccountId instead of its account's name (export Accounts too to see the names)",
            err=True,
        )
        _log.warning("import.no_account_names", reason="no Account.csv in the folder")
    for table, count in report.kept.items():
        click.echo(
            f"{table}: no {table}.csv in {folder}; the {count:,} records already in the local CRM are kept "
            "(export that object too to replace them)",
            err=True,
        )
        _log.warning("import.table_kept", table=table, records=count, reason=f"no {table}.csv in the folder")
    if any(report.skipped.values()):
        sys.exit(int(ExitCode.PARTIAL))  # some rows were left out: say so to a scheduler


def check_export_folder(folder: Path) -> None:
    """Before anything is replaced: every export file the import would read is a readable regular file. (An
    import replaces every Contact, Task and Event; a `Task.csv` that cannot be read must not empty the Tasks.)"""
    from connector.crm.local import export

    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder. Unzip the Salesforce Data Export and point at the folder.")
    wanted = {f"{obj}.csv".lower(): obj for obj, _ in export.OBJECTS}
    for entry in sorted(folder.iterdir()):
        obj = wanted.get(entry.name.lower())
        if obj is None:
            continue
        if not entry.is_file():
            raise DataError(
                f"{entry}: not a file (a folder, or a link to nothing); the import replaces every {obj} "
                "with this file's records, so it stopped before changing anything. Put the exported "
                f"{obj}.csv here, or remove the entry."
            )
        if not os.access(entry, os.R_OK):
            raise DataError(f"{entry}: cannot be read (permission denied); nothing was imported or changed.")
