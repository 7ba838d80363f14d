"""`explain`: why one contact sits where it does."""

from __future__ import annotations

import datetime as dt
import json

import click

from connector import config as config_mod
from connector.cli.app import as_of_option
from connector.commands import sync


@click.command()
@click.argument("contact_id")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@as_of_option
@click.pass_obj
def explain(cfg: config_mod.Config, contact_id: str, as_json: bool, as_of: dt.date | None) -> None:
    """Why one contact sits on its rung: every criterion with its numbers, every flag with its activities."""
    from dataclasses import asdict

    from connector.commands import explain as explain_mod
    from connector.crm.factory import open_data

    rules = sync.load_rules(cfg)
    crm = open_data(cfg)  # the local CRM, or the Salesforce mirror as the last sync left it: no API call
    try:
        crm.tune(cfg.engine, cfg.resolve)
        crm.prepare(cfg.fields, rules.needs(), cfg.activities)
        day = as_of or dt.date.today()
        e = explain_mod.explain(crm.con, rules, contact_id, day)
    finally:
        crm.close()
    click.echo(json.dumps(asdict(e), default=str, indent=2) if as_json else explain_mod.render(e))
