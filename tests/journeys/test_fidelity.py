"""Relationships as they are, on the local CRM: who spoke (EmailMessage), who was there (relations), when it
happened (ActivityDate before the day it was logged), and since when (history, on a first sync)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from connector import ids
from tests.conftest import Org


def _insert(org: Org, table: str, **cols: Any) -> None:
    names = ", ".join(f'"{k}"' for k in cols)
    org._exec(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})', list(cols.values()))


def email(org: Org, who: str, days_ago: int, subject: str, *, incoming: bool) -> str:
    """An email Task with its Enhanced Email EmailMessage, as Salesforce logs it."""
    tid = org.task(who, days_ago, subject, subtype="Email")
    at = dt.datetime.combine(org.day(days_ago), dt.time(11))
    _insert(
        org,
        "EmailMessage",
        Id=ids.make(ids.EMAIL_MESSAGE, int(tid[5:15], 36) % 10**9),
        ActivityId=tid,
        Incoming=incoming,
        MessageDate=at,
        Subject=subject,
        Status="3",
        CreatedDate=at,
        SystemModstamp=at,
    )
    return tid


def invite(org: Org, event: str, who: str, n: int, *, status: str = "Accepted") -> None:
    _insert(
        org,
        "EventRelation",
        Id=ids.make(ids.EVENT_RELATION, n),
        EventId=event,
        RelationId=who,
        IsWhat=False,
        IsInvitee=True,
        IsParent=True,
        Status=status,
    )


def test_a_shared_meeting_credits_every_contact_present_but_not_one_who_declined(org: Org) -> None:
    ada, bo, cy, di = (org.contact(n) for n in ("Ada", "Bo", "Cy", "Di"))
    meeting = org.meeting(ada, 20, "Workshop with the finance team")
    invite(org, meeting, bo, 1)
    invite(org, meeting, cy, 2)
    invite(org, meeting, di, 3, status="Declined")
    org.sync()
    assert {n: org.fields(c)["stage"] for n, c in (("Ada", ada), ("Bo", bo), ("Cy", cy), ("Di", di))} == {
        "Ada": "Friend",
        "Bo": "Friend",
        "Cy": "Friend",
        "Di": "Fringe",
    }


def test_email_direction_comes_from_the_email_message_not_the_subject(org: Org) -> None:
    wrote_first = org.contact("Ada")
    email(org, wrote_first, 12, "Question about our invoices", incoming=True)  # no "Re:", yet it is theirs
    we_replied = org.contact("Bo")
    email(org, we_replied, 12, "Re: your newsletter", incoming=False)  # "Re:", yet it is ours
    org.sync()
    assert org.fields(wrote_first)["stage"] == "Friend"
    assert org.fields(we_replied)["stage"] == "Fringe"


def test_a_call_logged_late_counts_on_the_day_it_happened(org: Org) -> None:
    cid = org.contact("Ada")
    tid = org.call(cid, 10, "Call with Ada about the rollout")
    # Logged (and so completed and created) today, for a call ten days ago: as migrated history looks.
    logged = dt.datetime.combine(org.as_of, dt.time(17))
    org._exec('UPDATE "Task" SET "CompletedDateTime" = ?, "CreatedDate" = ? WHERE "Id" = ?', [logged, logged, tid])
    org.sync()
    f = org.fields(cid)
    assert f["stage"] == "Friend"
    assert f["since"] == org.day(10)  # the day of the call, not the day it was logged


def test_a_first_sync_dates_each_rung_by_the_history_that_earned_it(org: Org) -> None:
    cid = org.contact("Ada", known_for_days=400)
    org.reply(cid, 100)  # Friend from here
    org.meeting(cid, 60, "Discovery session")
    org.reply(cid, 45)  # the third conversation, with listening in the window: Familiar from here
    org.sync()
    f = org.fields(cid)
    assert f["stage"] == "Familiar"
    assert f["since"] == org.day(45)
    fringe = org.contact("Bo", known_for_days=30)
    org.sync()
    assert org.fields(fringe)["since"] == org.day(30)  # known to us since the record was created
    assert org.fields(cid)["since"] == org.day(45)  # kept while the rung holds


def _faithful_until_15_days_ago(org: Org) -> str:
    """Two-way contact every 45 days for over a year, and a discovery session 135 days ago: Faithful from 55 days
    ago (a year after the first meeting), until the discovery session turned 120 days old 15 days ago."""
    cid = org.contact("Ada", known_for_days=500)
    org.meeting(cid, 420, "First meeting")
    for days_ago in (10, 55, 100, 145, 190, 235, 280, 325, 370):
        org.reply(cid, days_ago)
    org.meeting(cid, 135, "Discovery session")
    return cid


def test_a_first_sync_holds_a_contact_its_history_shows_slipping_and_demotes_it_when_grace_runs_out(
    org: Org,
) -> None:
    cid = _faithful_until_15_days_ago(org)
    org.sync()
    f = org.fields(cid)
    # Held on Faithful as a ladder running all along would hold it: failing since 31 May, the first day without a
    # listening conversation in 120 days, so the 30-day grace period ends on 30 Jun.
    assert f["stage"] == "Faithful"
    assert f["since"] == org.day(55)  # the day its history reached Faithful, not the day of the sync
    assert f["reason"] == (
        "Held at Faithful during the demotion grace period, until 30 Jun 2026; slipping: a listening "
        "conversation in the last 120 days."
    )
    # What slips is Familiar's listening: the advice is Familiar's keep step, to listen.
    assert f["next_step"].startswith("To stay Faithful past 30 Jun 2026: book a listening conversation with")
    assert f["next_step"].endswith("Slipping: a listening conversation in the last 120 days.")
    # The next sync reads the same hold from the same history, dates and all: nothing to write.
    assert org.sync(days_later=5).changed == 0
    # The grace period is over on 30 Jun: down one rung (decay), dated the day it took effect, not the day of the
    # first sync to see it.
    org.sync(days_later=16)
    f = org.fields(cid)
    assert f["stage"] == "Familiar"
    assert f["since"] == org.day(-15)
    assert f["reason"].startswith("Familiar, decaying: it drops one rung every 90 days, the next on ")
    assert f["reason"].endswith("; slipping: a listening conversation in the last 120 days.")


def test_a_first_sync_does_not_hold_a_contact_that_slipped_before_the_grace_period(org: Org) -> None:
    cid = org.contact("Bo", known_for_days=500)
    org.reply(cid, 200)
    org.reply(cid, 250)
    org.meeting(cid, 260, "Discovery session")  # Familiar until 141 days ago, Friend until 21 days ago
    org.sync()
    f = org.fields(cid)
    assert f["stage"] == "Friend"  # failing since 20 days ago: held on Friend, not on Familiar
    assert f["reason"].startswith("Held at Friend during the demotion grace period, until 25 Jun 2026")
    # Friend since it came down from Familiar: Familiar was last met 141 days ago, held 30 days, down 110 days ago.
    assert f["since"] == org.day(110)
