"""Rule tests: the cases' contacts and activities written into an in-memory local CRM, with what Salesforce
keeps beside an activity (EmailMessage, TaskRelation, EventRelation) when a case gives it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import duckdb

from connector import ids
from connector.commands.rule_test_specs import (
    ActivitySpec,
    RuleTestFile,
)


def insert(
    con: duckdb.DuckDBPyConnection,
    spec: RuleTestFile,
    as_of: dt.date,
) -> tuple[list[str], list[list[str]]]:
    seq = iter(range(1, 10**9))
    contacts: list[str] = []
    activities: list[list[str]] = []
    shared: list[tuple[ActivitySpec, str, str]] = []  # (activity, its Id, the case's contact): relations, at the end
    for case in spec.cases:
        cid = ids.make(ids.CONTACT, next(seq))
        c = case.contact
        created: dt.datetime | dt.date = c.CreatedDate or dt.datetime.combine(
            as_of - dt.timedelta(days=100 if c.known_for_days is None else c.known_for_days), dt.time(9)
        )
        cols: dict[str, Any] = {"Id": cid, "CreatedDate": created}
        cols.update({k: v for k, v in c.model_dump().items() if k[0].isupper() and k != "CreatedDate"})
        if case.crm is not None:
            cols.update(case.crm.model_dump())
        _row(con, "Contact", cols)
        aids: list[str] = []
        messages: list[str | None] = []  # each activity's EmailMessage Id, for replies_to
        for n, act in enumerate(case.activities, start=1):
            day = act.date or as_of - dt.timedelta(days=act.days_ago or 0)
            logged = (
                None
                if act.logged_days_ago is None
                else dt.datetime.combine(as_of - dt.timedelta(days=act.logged_days_ago), dt.time(17))
            )
            if act.object == "Task":
                aid = ids.make(ids.TASK, next(seq))
                at = dt.datetime.combine(day, dt.time(10))
                row: dict[str, Any] = {
                    "Id": aid,
                    "WhoId": cid,
                    "ActivityDate": day,
                    "CreatedDate": logged or at,
                    "Status": "Completed",
                    "IsClosed": True,
                    "TaskSubtype": "Task",
                }
                if logged is not None:
                    row["CompletedDateTime"] = logged  # Salesforce stamps it when the task is closed: on logging
            else:
                aid = ids.make(ids.EVENT, next(seq))
                start = dt.datetime.combine(day, dt.time(14))
                minutes = act.DurationInMinutes or 60
                row = {
                    "Id": aid,
                    "WhoId": cid,
                    "StartDateTime": start,
                    "ActivityDateTime": start,
                    "EndDateTime": start + dt.timedelta(minutes=minutes),
                    "ActivityDate": day,
                    "DurationInMinutes": minutes,
                    "IsAllDayEvent": False,
                    "EventSubtype": "Event",
                    "CreatedDate": logged or start - dt.timedelta(days=7),
                }
            row.update(act.fields())
            _row(con, act.object, row)
            message = None
            if act.incoming is not None:
                reply_to = None
                if act.replies_to is not None:
                    if act.replies_to >= n or messages[act.replies_to - 1] is None:
                        raise ValueError(
                            f"case '{case.name}', activity {n}: replies_to: {act.replies_to} names no email "
                            "listed before it (give that activity incoming: true or false)"
                        )
                    reply_to = messages[act.replies_to - 1]
                message = _email(
                    con,
                    seq,
                    aid,
                    incoming=act.incoming,
                    at=row["CreatedDate"] if logged else at,
                    answers_ours=bool(act.answers_ours),
                    reply_to=reply_to,
                )
            messages.append(message)
            if act.with_ or act.attendees or act.declined:
                shared.append((act, aid, cid))
            aids.append(aid)
        contacts.append(cid)
        activities.append(aids)
    by_name = {case.name: cid for case, cid in zip(spec.cases, contacts, strict=True)}
    for act, aid, cid in shared:
        people = [cid, *(by_name[n] for n in act.with_)]
        for i in range(act.attendees or 0):
            extra = ids.make(ids.CONTACT, next(seq))
            _row(
                con,
                "Contact",
                {
                    "Id": extra,
                    "FirstName": "Guest",
                    "LastName": f"Attendee {i + 1}",
                    "CreatedDate": dt.datetime.combine(as_of - dt.timedelta(days=400), dt.time(9)),
                },
            )
            people.append(extra)
        for who in people:
            if act.object == "Task":
                _row(
                    con,
                    "TaskRelation",
                    {"Id": ids.make(ids.TASK_RELATION, next(seq)), "TaskId": aid, "RelationId": who, "IsWhat": False},
                )
            else:
                status = "Declined" if act.declined and who == cid else "Accepted"
                _row(
                    con,
                    "EventRelation",
                    {
                        "Id": ids.make(ids.EVENT_RELATION, next(seq)),
                        "EventId": aid,
                        "RelationId": who,
                        "IsWhat": False,
                        "IsInvitee": True,
                        "IsParent": who == cid,
                        "Status": status,
                    },
                )
    return contacts, activities


def _email(
    con: duckdb.DuckDBPyConnection,
    seq: Iterator[int],
    aid: str,
    *,
    incoming: bool,
    at: dt.datetime,
    answers_ours: bool,
    reply_to: str | None = None,
) -> str:
    """The EmailMessage of an email Task (its Id); one that answers ours replies to an outgoing message of ours
    (which belongs to no Task of the case: it only gives the reply something to answer), one with `reply_to`
    replies to that message."""
    if answers_ours:
        reply_to = ids.make(ids.EMAIL_MESSAGE, next(seq))
        _row(
            con,
            "EmailMessage",
            {
                "Id": reply_to,
                "Incoming": False,
                "MessageDate": at - dt.timedelta(days=1),
                "Status": "3",
                "CreatedDate": at - dt.timedelta(days=1),
            },
        )
    message = ids.make(ids.EMAIL_MESSAGE, next(seq))
    _row(
        con,
        "EmailMessage",
        {
            "Id": message,
            "ActivityId": aid,
            "Incoming": incoming,
            "MessageDate": at,
            "Status": "1" if incoming else "3",
            "CreatedDate": at,
            "ReplyToEmailMessageId": reply_to,
        },
    )
    return message


def _row(con: duckdb.DuckDBPyConnection, table: str, cols: dict[str, Any]) -> None:
    names = ", ".join(f'"{k}"' for k in cols)
    con.execute(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})', list(cols.values()))
