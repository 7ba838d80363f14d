"""Tables of the local CRM: Salesforce-shaped Contact, Task, Event and User, with Salesforce API field names.

The trust fields on Contact are the defaults of PRODUCT.md. `FieldPicklist` stands in for what a Salesforce
describe would say about the picklist values of the trust fields, so a rule file that names a rung the CRM
does not know is caught locally exactly as it would be against a real org.
"""

from __future__ import annotations

# (column, DuckDB type). Order matters: it is the column order of the tables and of CSV imports.
USER_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("Name", "VARCHAR"),
    ("Email", "VARCHAR"),
    ("IsActive", "BOOLEAN"),
]

CONTACT_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("FirstName", "VARCHAR"),
    ("LastName", "VARCHAR"),
    ("Email", "VARCHAR"),
    ("Title", "VARCHAR"),
    ("AccountId", "VARCHAR"),
    ("OwnerId", "VARCHAR"),
    ("LeadSource", "VARCHAR"),
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
    ("Trust_Stage__c", "VARCHAR"),
    ("Trust_Stage_Since__c", "DATE"),
    ("Trust_Flags__c", "VARCHAR"),
    ("Trust_Next_Step__c", "VARCHAR"),
    ("Trust_Reason__c", "VARCHAR"),
    ("Trust_Rules_Version__c", "VARCHAR"),
]

TASK_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("WhoId", "VARCHAR"),
    ("WhatId", "VARCHAR"),
    ("AccountId", "VARCHAR"),
    ("OwnerId", "VARCHAR"),
    ("Subject", "VARCHAR"),
    ("ActivityDate", "DATE"),
    ("Status", "VARCHAR"),
    ("Priority", "VARCHAR"),
    ("Type", "VARCHAR"),
    ("TaskSubtype", "VARCHAR"),
    ("CallType", "VARCHAR"),
    ("CallDurationInSeconds", "INTEGER"),
    ("CallDisposition", "VARCHAR"),
    ("IsClosed", "BOOLEAN"),
    ("CompletedDateTime", "TIMESTAMP"),
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
]

EVENT_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("WhoId", "VARCHAR"),
    ("WhatId", "VARCHAR"),
    ("AccountId", "VARCHAR"),
    ("OwnerId", "VARCHAR"),
    ("Subject", "VARCHAR"),
    ("Type", "VARCHAR"),
    ("EventSubtype", "VARCHAR"),
    ("StartDateTime", "TIMESTAMP"),
    ("EndDateTime", "TIMESTAMP"),
    ("ActivityDateTime", "TIMESTAMP"),
    ("ActivityDate", "DATE"),
    ("DurationInMinutes", "INTEGER"),
    ("IsAllDayEvent", "BOOLEAN"),
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
]

TABLES: dict[str, list[tuple[str, str]]] = {
    "User": USER_COLUMNS,
    "Contact": CONTACT_COLUMNS,
    "Task": TASK_COLUMNS,
    "Event": EVENT_COLUMNS,
}

DEFAULT_PICKLISTS: dict[str, list[str]] = {
    "Trust_Stage__c": ["Fringe", "Friend", "Familiar", "Faithful", "Forever"],
    "Trust_Flags__c": ["Missing listening", "Missing thank-you"],
}


def ddl() -> list[str]:
    """CREATE statements for an empty local CRM."""
    stmts = [
        f'CREATE TABLE IF NOT EXISTS "{name}" ('
        + ", ".join(f'"{col}" {typ}' for col, typ in cols)
        + ")"
        for name, cols in TABLES.items()
    ]
    stmts.append(
        'CREATE TABLE IF NOT EXISTS "FieldPicklist" ("Field" VARCHAR, "Value" VARCHAR, "SortOrder" INTEGER, '
        'PRIMARY KEY ("Field", "Value"))'
    )
    stmts.append('CREATE TABLE IF NOT EXISTS "_TrustLadderMeta" ("Key" VARCHAR PRIMARY KEY, "Value" VARCHAR)')
    return stmts


def column_names(table: str) -> list[str]:
    return [c for c, _ in TABLES[table]]


def column_type(table: str, column: str) -> str | None:
    for c, t in TABLES[table]:
        if c == column:
            return t.split()[0]
    return None
