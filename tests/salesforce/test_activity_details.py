"""Journeys of a Salesforce sync that reads who took part and in which direction (issue 8): EmailMessage,
TaskRelation and EventRelation, as the fake org serves them in the shapes of the Object Reference pages
"EmailMessage", "TaskRelation" and "EventRelation", the REST "Get Deleted Records" resource, and
"Get Field and Other Metadata for an Object" (describe)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from structlog.testing import capture_logs

from connector.crm.local.store import LocalCrm
from tests.salesforce.conftest import Run


def _activity_rows(run: Run) -> dict[tuple[str, str], dict[str, Any]]:
    """crm_activity as the mirror exposes it after the sync."""
    crm = LocalCrm.open(run.folder / "mirror.duckdb")
    try:
        crm.prepare(run.config().fields)
        cur = crm.con.execute("SELECT * FROM crm_activity")
        names = [d[0] for d in cur.description]
        return {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    finally:
        crm.close()


def _account_meeting(run: Run) -> dict[str, str]:
    org = run.org
    old = org._naive_now() - dt.timedelta(days=2)
    people = {
        name: org.contact(name, "Tester", AccountId="001000000000001AAA", stamp=old)
        for name in ("ada", "bob", "cy", "di")
    }
    meeting = org.event(people["ada"], run.as_of - dt.timedelta(days=5), "Quarterly review", stamp=old)
    for name in ("ada", "bob", "cy"):
        org.relate_event(meeting, people[name], parent=name == "ada")
    org.relate_event(meeting, people["di"], status="Declined")
    org.relate_event(meeting, "005000000000001AAA")  # our colleague
    return {**people, "meeting": meeting}


def test_a_shared_meeting_is_credited_to_every_invitee_and_a_declined_one_is_marked(run: Run) -> None:
    ids = _account_meeting(run)
    result = run.sync()
    rows = _activity_rows(run)
    meeting = ids["meeting"]
    credited = {cid for aid, cid in rows if aid == meeting}
    assert credited == {ids["ada"], ids["bob"], ids["cy"], ids["di"]}
    assert rows[meeting, ids["di"]]["Declined"] is True
    assert rows[meeting, ids["bob"]]["Declined"] is False
    assert {rows[meeting, c]["Attendees"] for c in credited} == {5}
    assert rows[meeting, ids["ada"]]["IsPrimary"] is True
    assert result.activities == 3  # the meeting credited to Ada, Bob and Cy; Di declined, so for her it is none


def test_email_direction_comes_from_the_email_message(run: Run) -> None:
    """A customer who writes first (no 'Re:') is Incoming; a reply to one of ours answers it."""
    org = run.org
    ada = org.contact("Ada")
    first = org.task(ada, run.as_of - dt.timedelta(days=9), "Email: Question about renewal", TaskSubtype="Email")
    org.email(first, incoming=True)
    ours = org.task(ada, run.as_of - dt.timedelta(days=8), "Email: Renewal terms", TaskSubtype="Email")
    sent = org.email(ours, incoming=False)
    back = org.task(ada, run.as_of - dt.timedelta(days=7), "Email: Terms look fine", TaskSubtype="Email")
    org.email(back, incoming=True, reply_to=sent)
    run.sync()
    rows = _activity_rows(run)
    assert (rows[first, ada]["Incoming"], rows[first, ada]["HasEmailMessage"]) == (True, True)
    assert (rows[ours, ada]["Incoming"], rows[ours, ada]["AnswersOurs"]) == (False, False)
    assert rows[back, ada]["AnswersOurs"] is True


def test_a_backdated_task_is_dated_by_its_activity_date(run: Run) -> None:
    org = run.org
    ada = org.contact("Ada")
    call_day = run.as_of - dt.timedelta(days=10)
    logged = org._naive_now() - dt.timedelta(hours=1)
    call = org.task(
        ada, call_day, "Call: pricing questions", TaskSubtype="Call", CompletedDateTime=logged, stamp=logged
    )
    run.sync()
    row = _activity_rows(run)[call, ada]
    assert (row["day"], row["DaySource"], row["LoggedDate"]) == (call_day, "ActivityDate", logged.date())


def test_a_relation_deleted_in_the_org_disappears_on_the_next_incremental_sync(run: Run) -> None:
    """TaskRelation rows deleted directly never reach the Recycle Bin: getDeleted reports them."""
    org = run.org
    ada, bob = org.contact("Ada"), org.contact("Bob")
    call = org.task(ada, run.as_of - dt.timedelta(days=3), "Call: kickoff", TaskSubtype="Call")
    org.relate_task(call, ada)
    rel = org.relate_task(call, bob)
    run.sync()
    assert (call, bob) in _activity_rows(run)

    org.advance(hours=1)
    org.unrelate("TaskRelation", rel)
    with capture_logs() as logs:
        run.sync()
    pulled = {e["object"]: e for e in logs if e["event"] == "salesforce.pulled"}
    assert pulled["TaskRelation"]["deleted"] == 1
    assert not pulled["TaskRelation"]["full"]
    assert ("GET", "sobjects/TaskRelation/deleted/", 200) in org.subrequests  # inside the run's Composite call
    rows = _activity_rows(run)
    assert (call, bob) not in rows
    assert rows[call, ada]["Attendees"] == 1


def test_an_org_without_enhanced_email_or_shared_activities_still_syncs(run: Run) -> None:
    org = run.org
    org.disabled = {"EmailMessage", "TaskRelation", "EventRelation"}
    ada = org.contact("Ada")
    reply = org.task(ada, run.as_of - dt.timedelta(days=4), "Re: our plans", TaskSubtype="Email")
    with capture_logs() as logs:
        result = run.sync()
    unavailable = [e["object"] for e in logs if e["event"] == "salesforce.object_unavailable"]
    assert unavailable == ["EmailMessage", "TaskRelation", "EventRelation"]
    assert result.contacts == 1
    row = _activity_rows(run)[reply, ada]
    assert (row["Incoming"], row["HasEmailMessage"], row["Attendees"]) == (None, False, 1)

    # The org's answer is remembered: the runs of the next day do not ask again (no 404 describe per run).
    org.advance(minutes=20)
    asked = len(org.subrequests)
    quiet = run.sync()
    assert not [p for _, p, _ in org.subrequests[asked:] if p.endswith("/describe")]
    assert quiet.api_calls == 1  # the one Composite call that opens the pulls of Contact, Task and Event

    org.disabled = set()  # the admin turns Enhanced Email on: a run a day later looks again and pulls it in full
    org.email(reply, incoming=True)
    org.advance(days=1)
    run.sync()
    assert _activity_rows(run)[reply, ada]["Incoming"] is True


def test_a_field_the_sync_user_cannot_see_is_pulled_as_null(run: Run) -> None:
    org = run.org
    org.hidden = {"EmailMessage": {"ReplyToEmailMessageId"}}
    ada = org.contact("Ada")
    mail = org.task(ada, run.as_of - dt.timedelta(days=2), "Email: hello", TaskSubtype="Email")
    org.email(mail, incoming=True)
    with capture_logs() as logs:
        run.sync()
    hidden = [e for e in logs if e["event"] == "salesforce.fields_hidden"]
    assert [(e["object"], e["fields"]) for e in hidden] == [("EmailMessage", ["ReplyToEmailMessageId"])]
    assert _activity_rows(run)[mail, ada]["Incoming"] is True


def test_a_webinar_s_invitees_come_through_bulk_above_the_threshold(run: Run) -> None:
    """'Create a Query Job': EventRelation supports Bulk query (EventWhoRelation does not); 250 invitees are more
    than one REST page of 200 and than the threshold."""
    org = run.org
    people = [org.contact(f"P{i}") for i in range(250)]
    webinar = org.event(people[0], run.as_of - dt.timedelta(days=3), "Webinar: what is new")
    for cid in people:
        org.relate_event(webinar, cid)
    run.sync(bulk_read_threshold=100, page_size=200)
    queries = [e for m, e in org.calls if m == "POST" and e == "jobs/query"]
    assert len(queries) == 2  # Contacts and EventRelation
    rows = _activity_rows(run)
    assert len(rows) == 250
    assert {r["Attendees"] for r in rows.values()} == {250}
