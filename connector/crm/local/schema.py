"""Tables of the local CRM: Salesforce-shaped Contact, Task, Event and User, with Salesforce API field names.

The trust fields on Contact are the defaults of PRODUCT.md. `FieldPicklist` stands in for what a Salesforce
describe would say about the picklist values of the trust fields, so a rule file that names a rung the CRM
does not know is caught locally exactly as it would be against a real org.
"""

from __future__ import annotations

from connector.vocabulary import (
    CONTACT_COLUMNS,
    EVENT_COLUMNS,
    TABLES,
    TASK_COLUMNS,
    USER_COLUMNS,
    column_names,
    column_type,
)

__all__ = [
    "CONTACT_COLUMNS",
    "DEFAULT_PICKLISTS",
    "EVENT_COLUMNS",
    "TABLES",
    "TASK_COLUMNS",
    "USER_COLUMNS",
    "column_names",
    "column_type",
    "create",
    "ddl",
]

DEFAULT_PICKLISTS: dict[str, list[str]] = {
    "Trust_Stage__c": ["Fringe", "Friend", "Familiar", "Faithful", "Forever"],
    "Trust_Previous_Stage__c": ["Fringe", "Friend", "Familiar", "Faithful", "Forever"],
    "Trust_Flags__c": ["Missing listening", "Missing thank-you"],
}


def create(name: str) -> str:
    """The CREATE statement of one table of the vocabulary (nothing happens when it is there)."""
    return f'CREATE TABLE IF NOT EXISTS "{name}" (' + ", ".join(f'"{col}" {typ}' for col, typ in TABLES[name]) + ")"


def ddl() -> list[str]:
    """CREATE statements for an empty local CRM."""
    stmts = [create(name) for name in TABLES]
    stmts.append(
        'CREATE TABLE IF NOT EXISTS "FieldPicklist" ("Field" VARCHAR, "Value" VARCHAR, "SortOrder" INTEGER, '
        'PRIMARY KEY ("Field", "Value"))'
    )
    stmts.append('CREATE TABLE IF NOT EXISTS "_TrustLadderMeta" ("Key" VARCHAR PRIMARY KEY, "Value" VARCHAR)')
    return stmts
