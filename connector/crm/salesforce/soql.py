"""SOQL for the pulls: the field lists derived from the rules, and the queries, always built with format_soql."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from simple_salesforce.format import format_soql

from connector.config import FieldsSection
from connector.crm import RuleNeeds
from connector.crm.local import schema

# What the engine always needs, whatever the rules say.
CONTACT_BASE = ["Id", "FirstName", "LastName", "OwnerId", "CreatedDate", "SystemModstamp", "IsDeleted"]
# The contact's account and its name, for the pages that name contacts (connector.crm.local.accounts): the name is
# a child-to-parent relationship field of the same query, so it costs no call ("Using Relationship Queries", SOQL
# and SOSL Reference); REST answers it as a nested record, `"Account": {"attributes": {...}, "Name": ...}` or
# `"Account": null`, and a Bulk API 2.0 query as a CSV column named `Account.Name`, empty without an account.
# Selected only when the sync user can see Contact.AccountId (field-level security): otherwise the query would
# be refused, and contacts are named without their account.
ACCOUNT_FIELDS = ["AccountId", "Account.Name"]
ACTIVITY_BASE = {
    "Task": [
        "Id",
        "WhoId",
        "Subject",
        "ActivityDate",
        "CompletedDateTime",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ],
    "Event": [
        "Id",
        "WhoId",
        "Subject",
        "ActivityDateTime",
        "StartDateTime",
        "ActivityDate",
        "IsPrivate",
        "CreatedDate",
        "SystemModstamp",
        "IsDeleted",
    ],
}
OBJECTS = ("Contact", "Task", "Event")
# Deals, pulled only when the rules' outcomes read won opportunities (RuleNeeds.opportunities): calibration alone
# reads them, so a sync without such outcomes never asks for them.
OUTCOME_OBJECTS = ("Opportunity", "OpportunityContactRole")


def objects(rules: RuleNeeds | None) -> tuple[str, ...]:
    """The objects a pull reads for these rules, in pull order (Contacts first)."""
    return OBJECTS + (OUTCOME_OBJECTS if rules is not None and rules.opportunities else ())


@dataclass(frozen=True)
class Pull:
    """One object's pull: its SOQL, and whether it goes through queryAll (deleted and archived rows too)."""

    obj: str
    fields: list[str]
    soql: str
    include_deleted: bool
    full: bool


def field_lists(
    fields: FieldsSection, rules: RuleNeeds | None, *, account: bool = True, gone: Collection[str] = ()
) -> dict[str, list[str]]:
    """Per object, exactly the fields to select: the engine's own, the contact's account and its name (`account`:
    the sync user can see Contact.AccountId), the rules' (kinds and `field:` features), the fields a contact_gone
    outcome reads among `gone` (those the sync user can see: `visible_gone_fields`), and for Contact the trust
    fields we own, so the plan diffs against what the org holds now."""
    out: dict[str, list[str]] = {"Contact": list(CONTACT_BASE) + (list(ACCOUNT_FIELDS) if account else [])}
    contact_cols = set(schema.column_names("Contact"))
    if rules is not None:
        for name in rules.contact_fields:
            if name in contact_cols and name not in out["Contact"]:
                out["Contact"].append(name)
        for name in rules.gone_fields:
            if name in gone and name not in out["Contact"]:
                out["Contact"].append(name)
    for name in fields.owned().values():
        if name not in out["Contact"]:
            out["Contact"].append(name)
    used = (
        list(rules.activity_fields) if rules is not None else schema.column_names("Task") + schema.column_names("Event")
    )
    for obj, base in ACTIVITY_BASE.items():
        have = set(schema.column_names(obj))
        out[obj] = list(base) + [f for f in used if f in have and f not in base]
    if rules is not None and rules.opportunities:
        for obj in OUTCOME_OBJECTS:
            out[obj] = schema.column_names(obj)
    return out


def build(obj: str, fields: list[str], since: dt.datetime | None, also: str = "") -> Pull:
    """Full pull when `since` is None (live rows; activities with a Who), else every row changed since then,
    deleted ones included, through queryAll. `since` must be timezone-aware. `also`: a further condition of an
    incremental pull, already made with format_soql (our own writes left out, connector.crm.salesforce.own_writes)."""
    select = ", ".join(fields)
    if since is None:
        if obj == "Contact" or obj in OUTCOME_OBJECTS:
            return Pull(obj, fields, f"SELECT {select} FROM {obj}", include_deleted=False, full=True)
        soql = f"SELECT {select} FROM {obj} WHERE WhoId != null AND IsDeleted = false"
        return Pull(obj, fields, soql, include_deleted=True, full=True)  # queryAll: archived activities count
    soql = format_soql(f"SELECT {select} FROM {obj} WHERE SystemModstamp >= {{since}}", since=since)
    if also:
        soql += f" AND {also}"
    return Pull(obj, fields, soql, include_deleted=True, full=False)
