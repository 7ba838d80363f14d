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
    ("Trust_Held_Until__c", "DATE"),
    ("Trust_Previous_Stage__c", "VARCHAR"),
    # Salesforce's bounce management (Object Reference, "Contact"): read only by a contact_gone outcome.
    ("IsEmailBounced", "BOOLEAN"),
    ("EmailBouncedDate", "TIMESTAMP"),
    ("EmailBouncedReason", "VARCHAR"),
]

# Salesforce's bounce management on Contact, read only by a contact_gone outcome: added to a CRM made before them.
CONTACT_BOUNCE_FIELDS = ("IsEmailBounced", "EmailBouncedDate", "EmailBouncedReason")

# Accounts by name, for the pages people read (the digest, the report, `explain`): two contacts of one name are
# told apart by their account. No rule and no placement reads an account, so the engine never sees this table
# (see DISPLAY_ONLY).
ACCOUNT_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("Name", "VARCHAR"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
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
    ("Description", "VARCHAR"),  # Comments: call notes; kept to DESCRIPTION_CAP characters
    ("Trust_Listening__c", "BOOLEAN"),  # ours, optional: the rep says it was (not) listening; see below
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
    ("IsPrivate", "BOOLEAN"),
    ("Description", "VARCHAR"),  # meeting notes; kept to DESCRIPTION_CAP characters
    ("Trust_Listening__c", "BOOLEAN"),  # ours, optional: the rep says it was (not) listening; see below
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
]

# Trust_Listening__c is the one activity field trust-ladder ships (salesforce/: a picklist on Activity, so on Task
# and Event, whose values are 'true' and 'false', labelled Yes and No: a Salesforce checkbox cannot be left unset,
# and unset is what most activities are). Set, it is the rep's word on whether the conversation was listening; the
# default rules let it decide over the words. An org without it, or whose sync user cannot see it, has it pulled as
# NULL (connector.crm.salesforce.activity_fields), as a local CRM or a Data Export without the column has.
OPTIONAL_ACTIVITY_FIELDS = ("Trust_Listening__c",)

# Task and Event Description is a long text area of up to 32,000 characters. Rules read the notes for words that
# say how a conversation went, which the first lines tell; a few kilobytes per activity across tens of millions of
# activities is what the local mirror can hold, so every adapter keeps at most this many characters. Salesforce
# pulls the field only when a rule names it (the pull's field list is the rules' fields).
DESCRIPTION_CAP = 2000

# Enhanced Email: one EmailMessage per email Task (ActivityId = the Task's Id); `Incoming` is its direction. Only
# in orgs with Enhanced Email or Email-to-Case. ReplyToEmailMessageId is in the field references of recent API
# versions (it is absent from describe in older ones; it is pulled as NULL there).
EMAIL_MESSAGE_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("ActivityId", "VARCHAR"),
    ("ParentId", "VARCHAR"),
    ("Incoming", "BOOLEAN"),
    ("MessageDate", "TIMESTAMP"),
    ("FromAddress", "VARCHAR"),
    ("ToAddress", "VARCHAR"),
    ("Status", "VARCHAR"),
    ("Subject", "VARCHAR"),
    ("ReplyToEmailMessageId", "VARCHAR"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
]

# Shared Activities (API 24.0+): a Task's contacts (up to 50, or one lead; IsWhat = false) and its "what" record
# (IsWhat = true). Only in orgs with Shared Activities enabled.
TASK_RELATION_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("TaskId", "VARCHAR"),
    ("RelationId", "VARCHAR"),
    ("IsWhat", "BOOLEAN"),
    ("AccountId", "VARCHAR"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
]

# An Event's invitees (users, contacts, leads, resources) and, with Shared Activities, its related people
# (IsParent) and what record (IsWhat). IsWhat and IsParent exist only with Shared Activities (API 26.0+); without it
# every row is an invitee and they are pulled as NULL. Status is a picklist: New, Accepted, Declined...
EVENT_RELATION_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("EventId", "VARCHAR"),
    ("RelationId", "VARCHAR"),
    ("IsWhat", "BOOLEAN"),
    ("IsInvitee", "BOOLEAN"),
    ("IsParent", "BOOLEAN"),
    ("IsOrganizer", "BOOLEAN"),
    ("Status", "VARCHAR"),
    ("Response", "VARCHAR"),
    ("RespondedDate", "TIMESTAMP"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
]

# What happened next, for calibration only (no rung reads them): deals and who took part in them. Read only when
# the rules' outcomes ask for won opportunities (RuleNeeds.opportunities).
OPPORTUNITY_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("AccountId", "VARCHAR"),
    ("Name", "VARCHAR"),
    ("StageName", "VARCHAR"),
    ("Type", "VARCHAR"),
    ("IsClosed", "BOOLEAN"),
    ("IsWon", "BOOLEAN"),
    ("CloseDate", "DATE"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
]

OPPORTUNITY_CONTACT_ROLE_COLUMNS: list[tuple[str, str]] = [
    ("Id", "VARCHAR PRIMARY KEY"),
    ("OpportunityId", "VARCHAR"),
    ("ContactId", "VARCHAR"),
    ("Role", "VARCHAR"),
    ("IsPrimary", "BOOLEAN"),
    ("IsDeleted", "BOOLEAN DEFAULT false"),
    ("CreatedDate", "TIMESTAMP"),
    ("LastModifiedDate", "TIMESTAMP"),
    ("SystemModstamp", "TIMESTAMP"),
]

TABLES: dict[str, list[tuple[str, str]]] = {
    "User": USER_COLUMNS,
    "Account": ACCOUNT_COLUMNS,
    "Contact": CONTACT_COLUMNS,
    "Task": TASK_COLUMNS,
    "Event": EVENT_COLUMNS,
    "EmailMessage": EMAIL_MESSAGE_COLUMNS,
    "TaskRelation": TASK_RELATION_COLUMNS,
    "EventRelation": EVENT_RELATION_COLUMNS,
    "Opportunity": OPPORTUNITY_COLUMNS,
    "OpportunityContactRole": OPPORTUNITY_CONTACT_ROLE_COLUMNS,
}

OUTCOME_OBJECTS = ("Opportunity", "OpportunityContactRole")

# Tables no sync result depends on: a change to them alone (an account renamed) neither breaks a quiet run's mark
# nor makes any contact computed again; the pages that name contacts read them as they are when they are made.
DISPLAY_ONLY = ("Account",)

# The objects that say who took part in an activity and in which direction an email went. An org may lack any of
# them (no Enhanced Email, no Shared Activities): then activities are read from Task and Event alone.
ACTIVITY_DETAIL_OBJECTS = ("EmailMessage", "TaskRelation", "EventRelation")

# Columns `crm_activity` derives for every (activity, contact) row, beside the Task/Event fields; kinds may match
# on them. See connector.crm.local.activities for how each is computed.
DERIVED_ACTIVITY_COLUMNS: list[tuple[str, str]] = [
    ("Incoming", "BOOLEAN"),  # the linked EmailMessage's direction; NULL without one
    ("HasEmailMessage", "BOOLEAN"),  # a Task with an EmailMessage (Enhanced Email)
    ("AnswersOurs", "BOOLEAN"),  # an incoming email answering one we sent; false outgoing; NULL without email
    ("RepliesTo", "VARCHAR"),  # the email Task this email replies to (EmailMessage ReplyToEmailMessageId); NULL if none
    ("IsPrimary", "BOOLEAN"),  # this row's contact is the activity's own WhoId (not one of its relations)
    ("Attendees", "INTEGER"),  # people on the activity (contacts of a Task; every person row of an Event)
    ("Declined", "BOOLEAN"),  # this row's contact declined the Event (EventRelation Status 'Declined')
    ("Cancelled", "BOOLEAN"),  # the subject starts 'Canceled:' or 'Cancelled:', as calendar sync writes
    ("LoggedDate", "DATE"),  # the day it was logged (CreatedDate), beside `day`, the day it happened
    ("DaySource", "VARCHAR"),  # the field `day` came from ([activities] task_date / event_date)
]

ACTIVITY_OBJECTS = ("Task", "Event")

# Bookkeeping and date fields an activity kind may not match on: dates are the engine's `day`, the rest is noise.
_NOT_FOR_KINDS = {
    "Id",
    "WhoId",
    "IsDeleted",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "CompletedDateTime",
    "StartDateTime",
    "EndDateTime",
    "ActivityDateTime",
    "ActivityDate",
}


def base_type(declared: str) -> str:
    """'VARCHAR PRIMARY KEY' -> 'VARCHAR'."""
    return declared.split(maxsplit=1)[0]


def activity_fields() -> dict[str, str]:
    """Fields a kind may match on, with their DuckDB types: the union of Task and Event fields, `object`, and the
    columns derived from EmailMessage, TaskRelation/EventRelation and the date policy."""
    out: dict[str, str] = {"object": "VARCHAR"}
    for table in ACTIVITY_OBJECTS:
        for col, typ in TABLES[table]:
            if col not in _NOT_FOR_KINDS:
                out[col] = base_type(typ)
    out.update(DERIVED_ACTIVITY_COLUMNS)
    return out


def raw_activity_fields() -> list[str]:
    """The Task/Event fields of `crm_activity` (kinds' fields without `object` and the derived columns)."""
    derived = {c for c, _ in DERIVED_ACTIVITY_COLUMNS}
    return [f for f in activity_fields() if f != "object" and f not in derived]


def contact_fields() -> dict[str, str]:
    return {col: base_type(typ) for col, typ in CONTACT_COLUMNS}


def column_names(table: str) -> list[str]:
    return [c for c, _ in TABLES[table]]


def column_type(table: str, column: str) -> str | None:
    for c, t in TABLES[table]:
        if c == column:
            return base_type(t)
    return None
