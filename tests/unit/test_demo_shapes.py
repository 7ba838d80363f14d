"""The demo org's issue-8 shapes: emails in both directions, shared and declined meetings, webinars, cancelled and
private events, backdated and unanswered calls; and `crm_activity` reading them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from connector import ids
from connector.config import FieldsSection
from connector.crm.local import demo, demo_shapes
from connector.crm.local.store import LocalCrm

AS_OF = dt.date(2026, 6, 15)
CONTACTS = 9000  # three webinars


@pytest.fixture(scope="module")
def crm() -> Iterator[LocalCrm]:
    c = LocalCrm.create(None)
    demo.generate(c, contacts=CONTACTS, as_of=AS_OF)
    c.prepare(FieldsSection())
    yield c
    c.close()


def _one(crm: LocalCrm, sql: str) -> object:
    row = crm.con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_emails_go_both_ways_and_only_recent_ones_have_a_message(crm: LocalCrm) -> None:
    incoming, outgoing, replies = crm.con.execute(
        'SELECT count(*) FILTER (WHERE "Incoming"), count(*) FILTER (WHERE NOT "Incoming"), '
        'count("ReplyToEmailMessageId") FROM "EmailMessage"'
    ).fetchone() or (0, 0, 0)
    assert incoming > 0 and outgoing > 0 and replies > 0
    first = _one(crm, """SELECT count(*) FROM "EmailMessage" WHERE "Incoming" AND "Subject" NOT LIKE 'Re:%'""")
    assert isinstance(first, int) and first > 0  # customers who write first
    lists = _one(
        crm,
        """SELECT count(*) FROM "Task" t JOIN "EmailMessage" m ON m."ActivityId" = t."Id"
                         WHERE t."TaskSubtype" = 'ListEmail' AND m."Incoming" """,
    )
    assert lists == 0  # a list email is always ours
    oldest = _one(crm, 'SELECT min("MessageDate") FROM "EmailMessage"')
    assert isinstance(oldest, dt.datetime)
    assert oldest.date() >= AS_OF - dt.timedelta(days=demo_shapes.ENHANCED_EMAIL_DAYS)
    assert (
        _one(
            crm,
            """SELECT count(*) FROM "Task" WHERE "TaskSubtype" = 'Email' AND "Id" NOT IN
                        (SELECT "ActivityId" FROM "EmailMessage")""",
        )
        != 0
    )  # older email: the subject fallback


def test_shared_meetings_credit_colleagues_of_the_same_account_and_some_decline(crm: LocalCrm) -> None:
    row = crm.con.execute("""
        SELECT count(*) FILTER (WHERE NOT "IsPrimary"), count(*) FILTER (WHERE "Declined"),
               count(*) FILTER (WHERE NOT "IsPrimary" AND a."AccountId" <> c."AccountId"
                                AND a."Subject" NOT LIKE 'Webinar:%')
        FROM crm_activity a JOIN "Contact" c ON c."Id" = a."WhoId" WHERE a.object = 'Event'""").fetchone()
    assert row is not None
    shared, declined, elsewhere = row
    assert shared > 0 and declined > 0
    assert elsewhere == 0
    assert _one(crm, 'SELECT count(*) FROM "TaskRelation"') != 0


def test_webinars_have_three_hundred_invitees(crm: LocalCrm) -> None:
    sizes = {
        r[0]
        for r in crm.con.execute(
            """SELECT DISTINCT "Attendees" FROM crm_activity WHERE "Subject" LIKE 'Webinar:%'"""
        ).fetchall()
    }
    assert sizes == {demo_shapes.WEBINAR_INVITEES}
    assert _one(crm, """SELECT count(DISTINCT "Id") FROM "Event" WHERE "Subject" LIKE 'Webinar:%'""") == 3


def test_cancelled_private_backdated_and_unanswered(crm: LocalCrm) -> None:
    assert _one(crm, 'SELECT count(*) FROM crm_activity WHERE "Cancelled"') != 0
    assert _one(crm, 'SELECT count(*) FROM crm_activity WHERE "IsPrivate"') != 0
    backdated = _one(
        crm,
        """SELECT count(*) FROM crm_activity WHERE object = 'Task' AND "LoggedDate" > day
                             AND "DaySource" = 'ActivityDate' AND "TaskSubtype" = 'Call'""",
    )
    assert isinstance(backdated, int) and backdated > 0
    dispositions = {r[0] for r in crm.con.execute('SELECT DISTINCT "CallDisposition" FROM "Task"').fetchall()}
    assert {"Connected", "Left voicemail", "No answer"} <= dispositions
    series = _one(
        crm,
        """SELECT count(*) FROM "Task" WHERE "Subject" = 'Call: discovery' AND "CallType" = 'Outbound'
                          AND "CallDurationInSeconds" = 2400""",
    )
    assert isinstance(series, int) and series > 0


def test_nothing_is_dated_on_or_after_the_evaluation_date(crm: LocalCrm) -> None:
    for table in ("Task", "Event", "EmailMessage", "TaskRelation", "EventRelation"):
        assert (
            _one(
                crm,
                f"""SELECT count(*) FROM "{table}" WHERE "CreatedDate" >= DATE '{AS_OF}'
                             OR "SystemModstamp" >= DATE '{AS_OF}'""",
            )
            == 0
        ), table


def test_every_new_id_is_valid_and_unique(crm: LocalCrm) -> None:
    for table, prefix in (
        ("EmailMessage", ids.EMAIL_MESSAGE),
        ("TaskRelation", ids.TASK_RELATION),
        ("EventRelation", ids.EVENT_RELATION),
        ("Task", ids.TASK),
        ("Event", ids.EVENT),
    ):
        got = [r[0] for r in crm.con.execute(f'SELECT "Id" FROM "{table}"').fetchall()]
        assert len(got) == len(set(got)), table
        assert all(ids.is_valid(i) and i.startswith(prefix) for i in got), table


def test_the_flag_leaves_the_shapes_out() -> None:
    plain = LocalCrm.create(None)
    demo.generate(plain, contacts=500, as_of=AS_OF, shapes=False)
    for table in ("EmailMessage", "TaskRelation", "EventRelation"):
        assert _one(plain, f'SELECT count(*) FROM "{table}"') == 0
    assert _one(plain, """SELECT count(*) FROM "Event" WHERE "Subject" LIKE 'Canceled:%'""") == 0


def test_concerns_they_raised_are_acted_on_or_worked_through_after_they_were_raised(crm: LocalCrm) -> None:
    concerns, acted, weathered, out_of_order = crm.con.execute(
        """SELECT count(*) FILTER (WHERE t."Subject" SIMILAR TO '(Concern raised|Complaint|Escalation):.*'),
                  count(*) FILTER (WHERE t."Subject" LIKE 'Acted on:%'),
                  count(*) FILTER (WHERE t."Subject" LIKE 'Worked through:%'),
                  count(*) FILTER (WHERE t."Subject" SIMILAR TO '(Acted on|Worked through):.*' AND NOT EXISTS (
                      SELECT 1 FROM "Task" c WHERE c."WhoId" = t."WhoId" AND c."ActivityDate" < t."ActivityDate"
                        AND c."Subject" SIMILAR TO '(Concern raised|Complaint|Escalation):.*'))
           FROM "Task" t"""
    ).fetchone() or (0, 0, 0, 0)
    assert concerns > CONTACTS // 100
    assert 0 < acted < concerns
    assert 0 < weathered < concerns
    assert out_of_order == 0  # what came of a concern always follows it
