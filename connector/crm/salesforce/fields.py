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
from connector.ruleset.compiler import RuleSet


@dataclass(frozen=True)
class Expected:
    types: tuple[str, ...]  # describe `type` values accepted
    label: str
    meta_type: str  # Metadata API FieldType
    length: int | None = None


EXPECTED: dict[str, Expected] = {
    "stage": Expected(("picklist",), "Trust Stage", "Picklist"),
    "stage_since": Expected(("date",), "Trust Stage Since", "Date"),
    "flags": Expected(("multipicklist",), "Trust Flags", "MultiselectPicklist"),
    "next_step": Expected(("string",), "Trust Next Step", "Text", 255),
    "reason": Expected(("textarea",), "Trust Reason", "LongTextArea", 32768),
    "rules_version": Expected(("string",), "Trust Rules Version", "Text", 64),
}


# The fields whose every change Contact History should show: each move on the ladder, each flag opened or closed.
HISTORY_TRACKED = ("stage", "flags")


def by_name(describe: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(f["name"]): f for f in describe.get("fields", [])}


def picklist_values(describe: dict[str, Any], fields: FieldsSection) -> dict[str, list[str]]:
    """Active values of the stage and flags picklists, for the fields the org has."""
    have = by_name(describe)
    out: dict[str, list[str]] = {}
    for name in (fields.stage, fields.flags):
        if name in have:
            out[name] = [str(v["value"]) for v in have[name].get("picklistValues") or [] if v.get("active", True)]
    return out


def needed_values(rules: RuleSet | None) -> dict[str, list[str]]:
    if rules is None:
        return {"stage": [], "flags": []}
    return {"stage": [r.name for r in rules.rungs], "flags": [f.label for f in rules.flags]}


def missing(describe: dict[str, Any], fields: FieldsSection) -> list[str]:
    have = by_name(describe)
    return [name for name in fields.model_dump().values() if name not in have]


def check(describe: dict[str, Any], fields: FieldsSection, rules: RuleSet | None) -> list[str]:
    """Every problem, one line each; empty when trust-ladder can read and write all its fields."""
    have = by_name(describe)
    owned = fields.model_dump()
    need = needed_values(rules)
    problems: list[str] = []
    for logical, name in owned.items():
        exp = EXPECTED[logical]
        got = have.get(name)
        if got is None:
            problems.append(f"Contact.{name} is missing: create it as {exp.meta_type} "
                            f"(`trust-ladder fields deploy`, or deploy salesforce/force-app)")
            continue
        if got.get("type") not in exp.types:
            problems.append(f"Contact.{name} is of type {got.get('type')}, expected {'/'.join(exp.types)}")
            continue
        if exp.length and int(got.get("length") or 0) < exp.length and logical != "reason":
            problems.append(f"Contact.{name} holds {got.get('length')} characters, needs {exp.length}")
        if not got.get("updateable", False):
            problems.append(f"Contact.{name} is not writable by this user: grant edit access "
                            "(field-level security, e.g. the Trust_Ladder_Sync permission set)")
        if logical in need:
            values = {str(v["value"]) for v in got.get("picklistValues") or [] if v.get("active", True)}
            lacking = [v for v in need[logical] if v not in values]
            if lacking:
                problems.append(f"Contact.{name} lacks the picklist value{'s' if len(lacking) > 1 else ''} "
                                f"{', '.join(repr(v) for v in lacking)} that the rule file's "
                                f"{'rungs' if logical == 'stage' else 'flags'} need")
    return problems


def history_query(fields: FieldsSection) -> str:
    """Tooling API SOQL: whether field history is on for the tracked trust fields (FieldDefinition)."""
    names = [getattr(fields, logical) for logical in HISTORY_TRACKED]
    return format_soql("SELECT QualifiedApiName, IsFieldHistoryTracked FROM FieldDefinition "
                       "WHERE EntityDefinition.QualifiedApiName = 'Contact' AND QualifiedApiName IN {names}",
                       names=names)


def history_warnings(records: list[dict[str, Any]], fields: FieldsSection) -> list[str]:
    """One line per tracked trust field whose history is off, from `history_query`'s records."""
    tracked = {str(r.get("QualifiedApiName")): bool(r.get("IsFieldHistoryTracked")) for r in records}
    return [f"Contact.{name} keeps no field history, so the Contact's history will not show each move: deploy "
            "salesforce/force-app or run `trust-ladder fields deploy` (or Setup > Object Manager > Contact > "
            "Fields & Relationships > Set History Tracking)"
            for name in (getattr(fields, logical) for logical in HISTORY_TRACKED)
            if name in tracked and not tracked[name]]


def metadata(md: Any, fields: FieldsSection, rules: RuleSet | None) -> list[Any]:
    """CustomField metadata for the six fields, built with simple-salesforce's mdapi types."""
    need = needed_values(rules)
    out = []
    for logical, name in fields.model_dump().items():
        exp = EXPECTED[logical]
        kwargs: dict[str, Any] = {"fullName": f"Contact.{name}", "label": exp.label,
                                  "type": md.FieldType(exp.meta_type), "trackHistory": logical in HISTORY_TRACKED}
        if logical in need:
            kwargs["valueSet"] = md.ValueSet(restricted=True, valueSetDefinition=md.ValueSetValuesDefinition(
                sorted=False, value=[md.CustomValue(fullName=v, label=v, default=False) for v in need[logical]]))
            if logical == "flags":
                kwargs["visibleLines"] = 4
        if exp.meta_type == "Text":
            kwargs["length"] = exp.length
        if exp.meta_type == "LongTextArea":
            kwargs["length"] = exp.length
            kwargs["visibleLines"] = 5
        out.append(md.CustomField(**kwargs))
    return out
