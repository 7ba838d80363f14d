"""The Contact fields trust-ladder owns, checked against the org's describe, and deployed through the Metadata API.

`check` says exactly what is missing, mistyped, not writable, or lacks the picklist values the rule file's
rungs and flags need. `sync` refuses to write while it finds anything (see `SalesforceCrm.check_writable`).
The stage and flags fields keep field history, so the Contact's history shows each move: `deploy` turns it on,
and `history_warnings` says when an org has it off (a warning, not a reason to stop syncing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simple_salesforce.format import format_soql

from connector.config import FieldsSection
from connector.crm import RuleNeeds


@dataclass(frozen=True)
class Expected:
    types: tuple[str, ...]  # describe `type` values accepted
    label: str
    meta_type: str  # Metadata API FieldType
    length: int | None = None  # what `fields deploy` creates
    min_length: int | None = None  # the least a field of the org may hold
    what: str = ""  # in words, for a mismatch


EXPECTED: dict[str, Expected] = {
    "stage": Expected(("picklist",), "Trust Stage", "Picklist", what="a Picklist"),
    "stage_since": Expected(("date",), "Trust Stage Since", "Date", what="a Date"),
    "flags": Expected(("multipicklist",), "Trust Flags", "MultiselectPicklist", what="a Picklist (Multi-Select)"),
    "next_step": Expected(
        ("string", "textarea"), "Trust Next Step", "Text", 255, 255, what="a Text field of 255 characters"
    ),
    # The reason grows with the rule file's texts: a Text Area of 255 would refuse most writes.
    "reason": Expected(
        ("textarea",),
        "Trust Reason",
        "LongTextArea",
        32768,
        256,
        what="a Long Text Area (32,768 characters, as `fields deploy` creates)",
    ),
    "rules_version": Expected(
        ("string", "textarea"), "Trust Rules Version", "Text", 64, 64, what="a Text field of 64 characters"
    ),
    # Optional (issue 19): for list views, reports and the record card's at-risk and trend states.
    "held_until": Expected(("date",), "Trust Held Until", "Date", what="a Date"),
    "previous_stage": Expected(("picklist",), "Trust Previous Stage", "Picklist", what="a Picklist"),
}

# Describe `type` values in the words of Setup's field types, for messages.
_TYPE_WORDS = {
    "string": "Text",
    "textarea": "Text Area",
    "picklist": "Picklist",
    "multipicklist": "Picklist (Multi-Select)",
    "date": "Date",
    "datetime": "Date/Time",
    "time": "Time",
    "boolean": "Checkbox",
    "double": "Number",
    "int": "Number",
    "long": "Number",
    "currency": "Currency",
    "percent": "Percent",
    "email": "Email",
    "phone": "Phone",
    "url": "URL",
    "reference": "Lookup",
    "id": "record Id",
    "encryptedstring": "Text (Encrypted)",
    "combobox": "Combobox",
    "address": "Address",
    "location": "Geolocation",
}


# The fields whose every change Contact History should show: each move on the ladder, each flag opened or closed.
HISTORY_TRACKED = ("stage", "flags")


def by_name(describe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(f["name"]): f for f in describe.get("fields", [])}


def sees_account(describe: dict[str, Any]) -> bool:
    """The sync user can read Contact.AccountId, so the Contact pull can carry the account's name: a field hidden
    by field-level security is absent from the describe ("Get Field and Other Metadata for an Object")."""
    return "AccountId" in by_name(describe)


# The mirror's column type for a field a contact_gone outcome reads, from the describe's type; anything else is text.
_GONE_TYPES = {"boolean": "BOOLEAN", "date": "DATE", "datetime": "TIMESTAMP"}


def gone_columns(describe: dict[str, Any], rules: RuleNeeds | None) -> dict[str, str]:
    """The fields a contact_gone outcome reads that the sync user can see (field-level security hides the others
    from the describe), with the mirror's column type. A field left out is named by `calibrate`, which then
    counts what the others say."""
    have = by_name(describe)
    names = rules.gone_fields if rules is not None else ()
    return {n: _GONE_TYPES.get(str(have[n].get("type")), "VARCHAR") for n in names if n in have}


def picklist_values(describe: dict[str, Any], fields: FieldsSection) -> dict[str, list[str]]:
    """Active values of the stage and flags picklists, for the fields the org has."""
    have = by_name(describe)
    out: dict[str, list[str]] = {}
    for name in (fields.stage, fields.flags, fields.previous_stage):
        if name and name in have:
            out[name] = [str(v["value"]) for v in have[name].get("picklistValues") or [] if v.get("active", True)]
    return out


def needed_values(rules: RuleNeeds | None) -> dict[str, list[str]]:
    if rules is None:
        return {"stage": [], "flags": [], "previous_stage": []}
    return {"stage": list(rules.stages), "flags": list(rules.flag_labels), "previous_stage": list(rules.stages)}


def missing(describe: dict[str, Any], fields: FieldsSection) -> list[str]:
    """The required fields the org lacks (a sync cannot run without them)."""
    have = by_name(describe)
    return [name for name in fields.required().values() if name not in have]


def absent_optional(describe: dict[str, Any], fields: FieldsSection) -> list[str]:
    """The optional fields ([fields] keys) the org lacks: a sync writes the rest and says so once."""
    have = by_name(describe)
    return [k for k in fields.OPTIONAL if getattr(fields, k) and getattr(fields, k) not in have]


def optional_notice(fields: FieldsSection, absent: list[str]) -> str:
    names = ", ".join(f"Contact.{getattr(fields, k)}" for k in absent)
    return (
        f"the org has no {names} (optional): everything else is written; deploy salesforce/force-app or run "
        '`trust-ladder fields deploy` to add it, or set it to "" in [fields] to say you do without'
    )


def check(describe: dict[str, Any], fields: FieldsSection, rules: RuleNeeds | None) -> list[str]:
    """Every problem, one line each; empty when trust-ladder can read and write all its fields.

    Each configured field must be a custom field (describe `custom`), not a formula, of the type and length its
    value needs, writable by this user, and hold the picklist values the rule file's rungs and flags need.
    """
    have = by_name(describe)
    need = needed_values(rules)
    problems: list[str] = []
    absent = absent_optional(describe, fields)
    for logical, name in fields.owned().items():
        exp = EXPECTED[logical]
        got = have.get(name)
        if logical in absent:
            continue  # a notice (`optional_notice`), not a problem
        if got is None:
            problems.append(
                f"Contact.{name} is missing: create it as {exp.meta_type} "
                f"(`trust-ladder fields deploy`, or deploy salesforce/force-app)"
            )
            continue
        mismatch = _mismatch(logical, got, exp)
        if mismatch:
            problems.append(f"Contact.{name} ([fields] {logical}) {mismatch}")
            continue
        if not got.get("updateable", False):
            problems.append(
                f"Contact.{name} is not writable by this user: grant edit access "
                "(field-level security, e.g. the Trust_Ladder_Sync permission set)"
            )
        if logical in need:
            values = {str(v["value"]) for v in got.get("picklistValues") or [] if v.get("active", True)}
            lacking = [v for v in need[logical] if v not in values]
            if lacking:
                problems.append(
                    f"Contact.{name} lacks the picklist value{'s' if len(lacking) > 1 else ''} "
                    f"{', '.join(repr(v) for v in lacking)} that the rule file's "
                    f"{'flags' if logical == 'flags' else 'rungs'} need"
                )
        if logical == "flags" and need["flags"]:
            room, used = _int(got.get("length")), len(";".join(need["flags"]))
            if room and used > room:
                problems.append(
                    f"Contact.{name} holds {room:,} characters, but the rule file's flag labels "
                    f"take {used:,} when all are open: shorten them"
                )
    return problems


def _mismatch(logical: str, got: dict[str, Any], exp: Expected) -> str | None:
    """What is wrong with the kind of field `got` is, in words, or None when it is the right kind."""
    typ = str(got.get("type"))
    words = _TYPE_WORDS.get(typ, typ)
    if not got.get("custom", False):
        return (
            f"is a standard field, not one of ours: trust-ladder writes only custom fields of its own; it must "
            f"be {exp.what} (default {FieldsSection.model_fields[logical].default})"
        )
    if got.get("calculated", False):
        return f"is a formula field and cannot be written: it must be a plain {exp.what.removeprefix('a ')}"
    if typ not in exp.types:
        return f"is a {words} field (describe type {typ}); it must be {exp.what}"
    if got.get("htmlFormatted", False) or got.get("extraTypeInfo") == "richtextarea":
        return f"is a Rich Text Area, which would read our text as HTML; it must be {exp.what}"
    length = _int(got.get("length"))
    if exp.min_length and length < exp.min_length:
        return f"is a {words} field of {length:,} characters; it must be {exp.what}"
    return None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def history_query(fields: FieldsSection) -> str:
    """Tooling API SOQL: whether field history is on for the tracked trust fields (FieldDefinition)."""
    names = [getattr(fields, logical) for logical in HISTORY_TRACKED]
    return format_soql(
        "SELECT QualifiedApiName, IsFieldHistoryTracked FROM FieldDefinition "
        "WHERE EntityDefinition.QualifiedApiName = 'Contact' AND QualifiedApiName IN {names}",
        names=names,
    )


def history_warnings(records: list[dict[str, Any]], fields: FieldsSection) -> list[str]:
    """One line per tracked trust field whose history is off, from `history_query`'s records."""
    tracked = {str(r.get("QualifiedApiName")): bool(r.get("IsFieldHistoryTracked")) for r in records}
    return [
        f"Contact.{name} keeps no field history, so the Contact's history will not show each move: deploy "
        "salesforce/force-app or run `trust-ladder fields deploy` (or Setup > Object Manager > Contact > "
        "Fields & Relationships > Set History Tracking)"
        for name in (getattr(fields, logical) for logical in HISTORY_TRACKED)
        if name in tracked and not tracked[name]
    ]


def metadata(md: Any, fields: FieldsSection, rules: RuleNeeds | None) -> list[Any]:
    """CustomField metadata for the fields in use, built with simple-salesforce's mdapi types."""
    need = needed_values(rules)
    out = []
    for logical, name in fields.owned().items():
        exp = EXPECTED[logical]
        kwargs: dict[str, Any] = {
            "fullName": f"Contact.{name}",
            "label": exp.label,
            "type": md.FieldType(exp.meta_type),
            "trackHistory": logical in HISTORY_TRACKED,
        }
        if logical in need:
            kwargs["valueSet"] = md.ValueSet(
                restricted=True,
                valueSetDefinition=md.ValueSetValuesDefinition(
                    sorted=False, value=[md.CustomValue(fullName=v, label=v, default=False) for v in need[logical]]
                ),
            )
            if logical == "flags":
                kwargs["visibleLines"] = 4
        if exp.meta_type == "Text":
            kwargs["length"] = exp.length
        if exp.meta_type == "LongTextArea":
            kwargs["length"] = exp.length
            kwargs["visibleLines"] = 5
        out.append(md.CustomField(**kwargs))
    return out
