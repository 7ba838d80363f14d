"""`trust-ladder fields check` and `trust-ladder fields deploy`: the Contact fields trust-ladder owns.

`fields deploy` exits with the code of what went wrong, like a sync: a refused sign-in 6, the API budget 7, the
run's deadline 9, an HTTP failure of the Metadata API 6 with a message naming the endpoint and the status
(never a parser's complaint about a body that was not SOAP), a refused component 6 with Salesforce's reason.
"""

from __future__ import annotations

import re
from typing import Any

import click
import requests
from simple_salesforce.exceptions import SalesforceError

from connector import log
from connector.config import Config
from connector.crm.salesforce import fields as sf_fields
from connector.crm.salesforce.backend import SalesforceCrm
from connector.crm.salesforce.jobs import error_text
from connector.errors import BudgetExhausted, ConfigError, CrmError, TrustLadderError

_log = log.get("trust_ladder.salesforce")

_FAULT = re.compile(r"<faultcode>(?:\w+:)?([^<]*)</faultcode>\s*<faultstring>([^<]*)</faultstring>", re.DOTALL)


def _config() -> Config:
    cfg = click.get_current_context().obj
    if not isinstance(cfg, Config):
        raise ConfigError("no configuration loaded")
    if cfg.crm.backend != "salesforce" or cfg.salesforce is None:
        raise ConfigError('the fields commands need [crm] backend = "salesforce" and a [salesforce] section')
    return cfg


def _rules(cfg: Config) -> Any:
    from connector.commands import sync  # noqa: PLC0415 - sync imports the engine; `--help` stays fast

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
        crm.describe(refresh=True)  # the org's describe now, never the one remembered for sync
        problems = crm.check_fields(cfg.fields, rules.needs())
        absent = sf_fields.absent_optional(crm.describe(), cfg.fields)
        warnings = _history_warnings(crm, cfg)
    finally:
        crm.close()
    for problem in problems:
        click.echo(f"  {problem}")
    for warning in warnings:
        click.echo(f"  warning: {warning}")
    if absent:
        click.echo(f"  notice: {sf_fields.optional_notice(cfg.fields, absent)}")
    if problems:
        raise ConfigError(
            f"the fields check found {len(problems)} problem{'s' if len(problems) != 1 else ''}; "
            "fix them with `trust-ladder fields deploy` (or deploy salesforce/force-app), then "
            "check again"
        )
    click.echo(
        f"Contact fields ok: {', '.join(cfg.fields.without(absent).owned().values())} "
        f"(picklists hold every rung and flag of {rules.version})"
    )


def _history_warnings(crm: SalesforceCrm, cfg: Config) -> list[str]:
    """Field history off on the stage or flags field is worth a warning; sync writes either way."""
    try:
        body = crm.conn.sf.restful(
            "tooling/query/", params={"q": sf_fields.history_query(cfg.fields)}, timeout=crm.section.timeout_seconds
        )
    except SalesforceError as exc:  # e.g. a user without "View Setup and Configuration"
        return [f"could not read field history tracking ({type(exc).__name__}); check it in Setup"]
    records = body.get("records", []) if isinstance(body, dict) else []
    return sf_fields.history_warnings(records, cfg.fields)


@fields.command(name="deploy")
def fields_deploy() -> None:
    """Create or update the Contact fields (the six, and the optional ones in use) through the Metadata API
    (picklist values from the rule file)."""
    cfg = _config()
    rules = _rules(cfg)
    crm = SalesforceCrm.from_config(cfg)
    try:
        md = _metadata_api(crm)  # signs in: a refused sign-in is SignInFailed (6), a missing secret ConfigError (3)
        metadata = sf_fields.metadata(md, cfg.fields, rules.needs())
        try:
            md.CustomField.upsert(metadata)
        except TrustLadderError:
            raise  # the budget (7), the deadline (9), an expired session (6): already named
        except requests.RequestException as exc:
            raise CrmError(
                f"could not reach the Metadata API at {crm.conn.sf.metadata_url}: {type(exc).__name__}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - zeep and simple-salesforce raise plain exceptions
            raise _deploy_error(crm, exc) from None
        crm.forget_describe()  # the fields changed: the next run describes Contact again
    finally:
        crm.close()
    tracked = " and ".join(getattr(cfg.fields, logical) for logical in sf_fields.HISTORY_TRACKED)
    click.echo(
        f"Deployed {len(metadata)} Contact fields, with field history on {tracked}. Grant edit access to "
        "the sync user (permission set Trust_Ladder_Sync in salesforce/force-app), then run "
        "`trust-ladder fields check`."
    )


def _metadata_api(crm: SalesforceCrm) -> Any:
    """simple-salesforce's Metadata API client, its SOAP calls sent through our session: zeep would otherwise
    use a session of its own, with no timeout, no deadline and no record of what the server answered."""
    md = crm.conn.sf.mdapi
    md._client.transport.session = crm.session  # noqa: SLF001 - the one way in: SfdcMetadataApi builds the Client
    return md


def _deploy_error(crm: SalesforceCrm, exc: Exception) -> TrustLadderError:
    """What the Metadata API answered, in words: the endpoint and HTTP status when the call failed, the fault
    ("SOAP API Developer Guide": faultcode, faultstring), or the refused components' reasons."""
    last = crm.session.last
    if last is None or last[2] < 300:
        _log.error("salesforce.deploy_refused", error=log.one_line(str(exc)))
        hint = (
            " (field history needs Contact history on: Setup > Object Manager > Contact > Fields & "
            "Relationships > Set History Tracking > Enable Contact History)"
            if "history" in str(exc).lower()
            else ""
        )
        return CrmError(log.redact(f"the Metadata API refused the fields: {log.one_line(str(exc))}{hint}"))
    method, url, status = last
    body = crm.session.last_error
    fault = _FAULT.search(body)
    detail = f"{fault.group(1)}: {fault.group(2).strip()}" if fault else error_text(body) or "(no body)"
    _log.error("salesforce.deploy_failed", endpoint=url, status=status, detail=detail)
    if fault and fault.group(1) == "REQUEST_LIMIT_EXCEEDED":
        return BudgetExhausted(
            log.redact(
                f"the Metadata API at {url} refused the call: the org's API request "
                f"limit is reached ({detail}); run again when it frees calls"
            )
        )
    return CrmError(log.redact(f"the Metadata API answered HTTP {status} to {method} {url}: {detail}"))
