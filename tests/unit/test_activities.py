"""`crm_activity` as the engine reads it: who took part (TaskRelation, EventRelation), in which direction
(EmailMessage), and when (the [activities] date policy). Issue 8, the data side."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from connector import ids, sql
from connector.config import ActivitiesSection, FieldsSection
from connector.crm.local.store import LocalCrm

_seq = itertools.count(1)
DAY = dt.date(2026, 3, 10)
NOON = dt.datetime(2026, 3, 10, 12)


def _add(crm: LocalCrm, table: str, prefix: str, **values: Any) -> str:
    values.setdefault("Id", ids.make(prefix, next(_seq)))
    cols = ", ".join(f'"{c}"' for c in values)
    crm.con.execute(f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join("?" * len(values))})', list(values.values()))
    return str(values["Id"])


def contact(crm: LocalCrm) -> str:
    return _add(crm, "Contact", ids.CONTACT, LastName="Tester", CreatedDate=NOON)


def task(crm: LocalCrm, who: str | None, **values: Any) -> str:
    values.setdefault("ActivityDate", DAY)
    values.setdefault("CreatedDate", NOON)
    values.setdefault("Subject", "Call")
    return _add(crm, "Task", ids.TASK, WhoId=who, **values)


def event(crm: LocalCrm, who: str | None, **values: Any) -> str:
    start = dt.datetime.combine(values.pop("day", DAY), dt.time(14))
    values.setdefault("Subject", "Meeting")
    return _add(
        crm,
        "Event",
        ids.EVENT,
        WhoId=who,
        StartDateTime=start,
        ActivityDateTime=start,
        ActivityDate=start.date(),
        CreatedDate=NOON,
        **values,
    )


def task_rel(crm: LocalCrm, task_id: str, who: str, *, is_what: bool = False) -> str:
    return _add(crm, "TaskRelation", ids.TASK_RELATION, TaskId=task_id, RelationId=who, IsWhat=is_what)


def event_rel(crm: LocalCrm, event_id: str, who: str, status: str = "Accepted") -> str:
    return _add(
        crm,
        "EventRelation",
        ids.EVENT_RELATION,
        EventId=event_id,
        RelationId=who,
        IsWhat=False,
        IsInvitee=True,
        IsParent=False,
        Status=status,
    )


def email(crm: LocalCrm, task_id: str, *, incoming: bool, at: dt.datetime = NOON, reply_to: str | None = None) -> str:
    return _add(
        crm,
        "EmailMessage",
        ids.EMAIL_MESSAGE,
        ActivityId=task_id,
        Incoming=incoming,
        MessageDate=at,
        Status="3",
        ReplyToEmailMessageId=reply_to,
        CreatedDate=at,
    )


def rows(crm: LocalCrm, policy: ActivitiesSection | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    crm.prepare(FieldsSection(), activities=policy)
    cur = crm.con.execute("SELECT * FROM crm_activity")
    names = [d[0] for d in cur.description]
    out = {}
    for row in cur.fetchall():
        rec = dict(zip(names, row, strict=True))
        key = (rec["Id"], rec["WhoId"])
        assert key not in out, f"two rows for {key}"
        out[key] = rec
    return out


@pytest.fixture
def crm() -> LocalCrm:
    return LocalCrm.create(None)


def test_a_shared_meeting_is_credited_to_every_invitee_once(crm: LocalCrm) -> None:
    a, b, c = contact(crm), contact(crm), contact(crm)
    user = ids.make(ids.USER, 1)
    ev = event(crm, a)
    for who in (a, b):  # the WhoId is also an invitee: still one row for it
        event_rel(crm, ev, who)
    event_rel(crm, ev, c, status="Declined")
    event_rel(crm, ev, user)  # the organiser: an attendee, not a contact
    got = rows(crm)
    assert set(got) == {(ev, a), (ev, b), (ev, c)}
    assert [got[ev, x]["IsPrimary"] for x in (a, b, c)] == [True, False, False]
    assert {r["Attendees"] for r in got.values()} == {4}
    assert [got[ev, x]["Declined"] for x in (a, b, c)] == [False, False, True]


def test_a_task_with_several_contacts_credits_each_and_counts_them(crm: LocalCrm) -> None:
    a, b = contact(crm), contact(crm)
    t = task(crm, a)
    task_rel(crm, t, a)
    task_rel(crm, t, b)
    task_rel(crm, t, ids.make(ids.ACCOUNT, 1), is_what=True)  # the what record: nobody
    alone = task(crm, a)
    got = rows(crm)
    assert set(got) == {(t, a), (t, b), (alone, a)}
    assert (got[t, a]["Attendees"], got[t, b]["Attendees"], got[alone, a]["Attendees"]) == (2, 2, 1)
    assert got[alone, a]["IsPrimary"] is True


def test_relations_to_unknown_contacts_are_skipped_and_counted(crm: LocalCrm) -> None:
    a = contact(crm)
    t = task(crm, a)
    ghost = ids.make(ids.CONTACT, 999_999)
    rel = task_rel(crm, t, ghost)
    got = rows(crm)
    assert set(got) == {(t, a)}
    assert crm.skipped["TaskRelation"] == 1
    assert crm.skipped_samples["TaskRelation"] == [rel]


def test_email_direction_comes_from_the_email_message(crm: LocalCrm) -> None:
    a, b = contact(crm), contact(crm)
    theirs = task(crm, a, Subject="Question about pricing", TaskSubtype="Email")  # they wrote first: no Re:
    email(crm, theirs, incoming=True)
    ours = task(crm, b, Subject="Email: Our offer", TaskSubtype="Email")
    sent = email(crm, ours, incoming=False, at=NOON - dt.timedelta(days=40))
    reply = task(crm, b, Subject="Re: Our offer", TaskSubtype="Email")
    email(crm, reply, incoming=True, reply_to=sent)  # 40 days later, but a reply to ours
    plain = task(crm, a, Subject="Re: hello")
    got = rows(crm)
    assert (got[theirs, a]["Incoming"], got[theirs, a]["HasEmailMessage"], got[theirs, a]["AnswersOurs"]) == (
        True,
        True,
        False,
    )
    assert (got[ours, b]["Incoming"], got[ours, b]["AnswersOurs"]) == (False, False)
    assert got[reply, b]["AnswersOurs"] is True
    assert (got[plain, a]["Incoming"], got[plain, a]["HasEmailMessage"], got[plain, a]["AnswersOurs"]) == (
        None,
        False,
        None,
    )


def test_an_incoming_email_soon_after_one_of_ours_to_the_same_contact_answers_it(crm: LocalCrm) -> None:
    a, b = contact(crm), contact(crm)
    email(crm, task(crm, a, TaskSubtype="Email"), incoming=False, at=NOON - dt.timedelta(days=10))
    soon = task(crm, a, TaskSubtype="Email")
    email(crm, soon, incoming=True)
    other = task(crm, b, TaskSubtype="Email")  # ours went to a, not b
    email(crm, other, incoming=True)
    email(crm, task(crm, b, TaskSubtype="Email"), incoming=False, at=NOON - dt.timedelta(days=31))
    got = rows(crm)
    assert got[soon, a]["AnswersOurs"] is True
    assert got[other, b]["AnswersOurs"] is False  # b's outgoing email is 31 days older


def test_a_backdated_task_is_dated_by_its_activity_date(crm: LocalCrm) -> None:
    a = contact(crm)
    logged = dt.datetime(2026, 3, 20, 9)
    t = task(crm, a, ActivityDate=DAY, CompletedDateTime=logged, CreatedDate=logged, Status="Completed")
    undated = task(crm, a, ActivityDate=None, CompletedDateTime=logged, CreatedDate=logged)
    got = rows(crm)
    assert (got[t, a]["day"], got[t, a]["DaySource"], got[t, a]["LoggedDate"]) == (DAY, "ActivityDate", logged.date())
    assert (got[undated, a]["day"], got[undated, a]["DaySource"]) == (logged.date(), "CompletedDateTime")
    policy = ActivitiesSection(task_date=["CompletedDateTime", "ActivityDate"])
    assert rows(crm, policy)[t, a]["day"] == logged.date()


def test_cancelled_private_and_follow_up_rows(crm: LocalCrm) -> None:
    a = contact(crm)
    gone = event(crm, a, Subject="  CANCELED: Quarterly review")
    also = event(crm, a, Subject="Cancelled: lunch")
    private = event(crm, a, Subject="Doctor", IsPrivate=True)
    ours = task(crm, a, Subject="Trust: book a call [TL:listening]")
    got = rows(crm)
    assert got[gone, a]["Cancelled"] is True
    assert got[also, a]["Cancelled"] is True
    assert got[private, a]["Cancelled"] is False
    assert (ours, a) not in got
    assert (private, a) in got
    assert (private, a) not in rows(crm, ActivitiesSection(count_private_events=False))


def test_date_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="not a Task date field"):
        ActivitiesSection(task_date=["DueDate"])
    with pytest.raises(ValueError, match="more than once"):
        ActivitiesSection(event_date=["StartDateTime", "StartDateTime"])
    with pytest.raises(ValueError, match="at least one"):
        ActivitiesSection(task_date=[])


def test_a_sync_that_computes_a_few_contacts_reads_all_their_rows_and_only_theirs(crm: LocalCrm) -> None:
    """`activities_of` picks a few contacts' activities before the facts are joined (what a next-day sync reads):
    a contact credited only as an invitee or a task relation, never as the WhoId, keeps every row it has."""
    a, b, c, d = contact(crm), contact(crm), contact(crm), contact(crm)
    ev = event(crm, a)
    event_rel(crm, ev, a)
    event_rel(crm, ev, b)  # b only through the invitation
    call = task(crm, c)
    task_rel(crm, call, c)
    task_rel(crm, call, b)  # and through a two-person call
    mail = task(crm, d, TaskSubtype="Email")
    email(crm, mail, incoming=True)
    task(crm, a)
    everyone = rows(crm)
    crm.con.execute("CREATE TEMP TABLE few AS SELECT UNNEST([?, ?]) AS cid", [b, d])
    narrowed = crm.con.execute(
        "SELECT * FROM (" + sql.render(crm.activities_of("few")) + ') WHERE "WhoId" IN (SELECT cid FROM few)'
    )
    names = [x[0] for x in narrowed.description]
    got = {(r["Id"], r["WhoId"]): r for r in (dict(zip(names, row, strict=True)) for row in narrowed.fetchall())}
    assert set(got) == {(ev, b), (call, b), (mail, d)}
    assert got == {key: everyone[key] for key in got}  # the same rows, column for column
