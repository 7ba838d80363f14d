"""`trust-ladder fields check` and `trust-ladder fields deploy`: the Contact fields trust-ladder owns."""

from __future__ import annotations

from typing import Any

import click
from simple_salesforce.exceptions import SalesforceError

from connector import log
from connector.config import Config
from connector.crm.salesforce import fields as sf_fields
from connector.crm.salesforce.backend import SalesforceCrm
from connector.errors import ConfigError, CrmError

_log = log.get("trust_ladder.salesforce")


def _config() -> Config:
    cfg = click.get_current_context().obj
    if not isinstance(cfg, Config):
        raise ConfigError("no configuration loaded")
    if cfg.crm.backend != "salesforce" or cfg.salesforce is None:
        raise ConfigError('the fields commands need [crm] backend = "salesforce" and a [salesforce] section')
    return cfg


def _rules(cfg: Config) -> Any:
    from connector import sync  # noqa: PLC0415 - sync imports the engine; `--help` stays fast

    return sync.load_rules(cfg)


@click.group()
def fields() -> None:
    """The Contact fields trust-ladder writes, in the Salesforce org."""


@fields.command(name="check")
def fields_check() -> None:
    """Describe Contact and say exactly what is missing, mistyped, or lacks picklist values."""
    cfg = _config()
    rules = _rules(cfg)
    crm = SalesforceCrm.from_config(cfg)
    try:
        problems = crm.check_fields(cfg.fields, rules)
        warnings = _history_warnings(crm, cfg)
    finally:
        crm.close()
    for problem in problems:
        click.echo(f"  {problem}")
    for warning in warnings:
        click.echo(f"  warning: {warning}")
    if problems:
        raise ConfigError(f"the fields check found {len(problems)} problem{'s' if len(problems) != 1 else ''}; "
                          "fix them with `trust-ladder fields deploy` (or deploy salesforce/force-app), then "
                          "check again")
    click.echo(f"Contact fields ok: {', '.join(cfg.fields.model_dump().values())} "
               f"(picklists hold every rung and flag of {rules.version})")


def _history_warnings(crm: SalesforceCrm, cfg: Config) -> list[str]:
    """Field history off on the stage or flags field is worth a warning; sync writes either way."""
    try:
        body = crm.conn.sf.restful("tooling/query/", params={"q": sf_fields.history_query(cfg.fields)},
                                   timeout=crm.section.timeout_seconds)
    except SalesforceError as exc:  # e.g. a user without "View Setup and Configuration"
        return [f"could not read field history tracking ({type(exc).__name__}); check it in Setup"]
    records = body.get("records", []) if isinstance(body, dict) else []
    return sf_fields.history_warnings(records, cfg.fields)


@fields.command(name="deploy")
def fields_deploy() -> None:
    """Create or update the six Contact fields through the Metadata API (picklist values from the rule file)."""
    cfg = _config()
    rules = _rules(cfg)
    crm = SalesforceCrm.from_config(cfg)
    try:
        md = crm.conn.sf.mdapi
        metadata = sf_fields.metadata(md, cfg.fields, rules)
        try:
            md.CustomField.upsert(metadata)
        except Exception as exc:  # noqa: BLE001 - simple-salesforce raises a plain Exception per failed component
            _log.error("salesforce.deploy_failed", error=str(exc)[:500])
            hint = (" (field history needs Contact history on: Setup > Object Manager > Contact > Fields & "
                    "Relationships > Set History Tracking > Enable Contact History)"
                    if "history" in str(exc).lower() else "")
            raise CrmError(f"the Metadata API refused the fields: {str(exc).strip()[:500]}{hint}") from None
    finally:
        crm.close()
    tracked = " and ".join(getattr(cfg.fields, logical) for logical in sf_fields.HISTORY_TRACKED)
    click.echo(f"Deployed {len(metadata)} Contact fields, with field history on {tracked}. Grant edit access to "
               "the sync user (permission set Trust_Ladder_Sync in salesforce/force-app), then run "
               "`trust-ladder fields check`.")
