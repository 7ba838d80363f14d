"""The CRM vocabulary: the Salesforce objects and fields trust-ladder reads and writes, with their types.

One list that the rule compiler (which names a rule may use), the local CRM (its tables) and the Salesforce
backend (what it pulls) share, so a field a rule can name is a field every backend provides.
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

ACTIVITY_OBJECTS = ("Task", "Event")

# Bookkeeping and date fields an activity kind may not match on: dates are the engine's `day`, the rest is noise.
_NOT_FOR_KINDS = {"Id", "WhoId", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp",
                  "CompletedDateTime", "StartDateTime", "EndDateTime", "ActivityDateTime", "ActivityDate"}


def base_type(declared: str) -> str:
    """'VARCHAR PRIMARY KEY' -> 'VARCHAR'."""
    return declared.split(maxsplit=1)[0]


def activity_fields() -> dict[str, str]:
    """Fields a kind may match on, with their DuckDB types: the union of Task and Event fields, plus `object`."""
    out: dict[str, str] = {"object": "VARCHAR"}
    for table in ACTIVITY_OBJECTS:
        for col, typ in TABLES[table]:
            if col not in _NOT_FOR_KINDS:
                out[col] = base_type(typ)
    return out


def contact_fields() -> dict[str, str]:
    return {col: base_type(typ) for col, typ in CONTACT_COLUMNS}


def column_names(table: str) -> list[str]:
    return [c for c, _ in TABLES[table]]


def column_type(table: str, column: str) -> str | None:
    for c, t in TABLES[table]:
        if c == column:
            return base_type(t)
    return None
