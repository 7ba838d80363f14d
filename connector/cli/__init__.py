"""The `trust-ladder` command: one module per command group, registered here so `--help` lists them all."""

from __future__ import annotations

from connector.cli import calibrate, data, explain, report, rules, status, sync
from connector.cli.app import main
from connector.cli.digest import digest
from connector.crm.salesforce.commands import fields

for command in (
    data.demo,
    sync.sync_cmd,
    status.status,
    explain.explain,
    data.import_cmd,
    rules.rules,
    report.simulate,
    report.report,
    calibrate.calibrate,
    fields,
    digest,
):
    main.add_command(command)

__all__ = ["main"]
