"""`trust-ladder calibrate`: each rung measured against what happened next, from the CRM data's own history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from connector import config as config_mod
from connector.cli.app import DATE
from connector.cli.report import _AS_OF, _RULE_FILE, HORIZON, local
from connector.commands import sync
from connector.errors import UsageError


@click.command()
@click.option(
    "--rules", "rules_file", type=_RULE_FILE, default=None, help="The rule file (default: the configured one)."
)
@click.option(
    "--since",
    type=DATE,
    default=None,
    help="The first month of the period (default: three years before the last day the CRM data covers).",
)
@HORIZON
@_AS_OF
@click.option("--json", "as_json", is_flag=True, help="Print the calibration as JSON.")
@click.pass_obj
def calibrate(
    cfg: config_mod.Config,
    rules_file: Path | None,
    since: dt.date | None,
    horizon: int | None,
    as_of: dt.date,
    as_json: bool,
) -> None:
    """Is each rung earned? Per rung, how often each outcome of the rule file followed within its horizon, with a
    95% interval and the lift over the rung below; reads the CRM data, writes nothing."""
    from connector.commands import calibrate as calibrate_mod
    from connector.commands import calibrate_text

    if since is not None and since >= as_of:
        raise click.BadParameter(
            f"{since.isoformat()} is not before the evaluation date {as_of.isoformat()}", param_hint="'--since'"
        )
    rules = sync.load_rules(cfg, rules_file)
    if not rules.outcomes:  # nothing to measure against: said before any data is read
        from connector.commands import calibrate_notes

        raise UsageError(calibrate_notes.no_outcomes(rules.path))
    if cfg.engine.kind == "spark":  # the second engine: from the CRM's data, or from the warehouse copy
        from connector.commands import calibrate_spark

        cal = calibrate_spark.run(cfg, rules, as_of, since=since, horizon=horizon)
    else:
        with local(cfg) as crm:
            cal = calibrate_mod.calibrate(crm.con, rules, as_of, since=since, horizon=horizon)
    click.echo(json.dumps(calibrate_text.as_dict(cal), indent=2) if as_json else calibrate_text.render(cal))
