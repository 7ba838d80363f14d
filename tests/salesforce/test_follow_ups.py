"""Follow-up Tasks against a fake org: marked tasks are read from the mirror (pulled with the other Tasks), and only
what differs is sent through sObject Collections: POST composite/sobjects to create ("Create Multiple Records with
Fewer Round-Trips", "sObject Collections Create": a SaveResult per record, in request order), PATCH to update and
close ("Update Records Using sObject Collections")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from structlog.testing import capture_logs

from connector import ids
from connector.commands import sync
from connector.config import FollowUpSection
from connector.crm.local.store import LocalCrm
from tests.salesforce.conftest import Run

OWNER = ids.make(ids.USER, 7)
THANKS = "[TL:missing_thank_you]"


def _sync(run: Run, *, enabled: bool = True, **settings: Any) -> tuple[sync.SyncResult, list[dict[str, Any]]]:
    cfg = run.config().model_copy(update={"follow_up": FollowUpSection(enabled=enabled, **settings)})
    with capture_logs() as logs:
        result = sync.run(cfg, as_of=run.as_of)
    return result, [dict(e) for e in logs]


def _counts(logs: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    if any(e["event"] == "sync.unchanged" for e in logs):  # nothing new since the last run: nothing to send
        assert not [e for e in logs if e["event"] == "sync.follow_ups"]
        return 0, 0, 0, 0
    [event] = [e for e in logs if e["event"] == "sync.follow_ups"]
    return event["created"], event["updated"], event["closed"], event["released"]


def _collection_calls(run: Run) -> list[tuple[str, str]]:
    return [(m, p) for m, p in run.org.calls if p == "composite/sobjects"]


def _unthanked(run: Run, first: str = "Ada") -> str:
    old = run.org._naive_now() - dt.timedelta(days=30)
    cid = run.org.contact(first, OwnerId=OWNER, stamp=old)
    run.org.task(
        cid,
        run.as_of - dt.timedelta(days=20),
        "Feedback call",
        TaskSubtype="Call",
        CallType="Inbound",
        CallDurationInSeconds=600,
        stamp=old,
    )
    return cid


def _marked(run: Run, who: str) -> list[dict[str, Any]]:
    return [t for t in run.org.tasks_of(who) if "[TL:" in (t["Subject"] or "")]


def _mirror_marked(run: Run) -> list[tuple[Any, ...]]:
    crm = LocalCrm.open(run.folder / "mirror.duckdb")
    try:
        return crm.con.execute(
            'SELECT "Id", "Subject", "IsClosed" FROM "Task" WHERE "Subject" LIKE \'%[TL:%\' ORDER BY "Id"'
        ).fetchall()
    finally:
        crm.close()


def test_an_open_flag_becomes_one_task_created_through_collections_and_a_rerun_sends_nothing(run: Run) -> None:
    ada = _unthanked(run)
    result, logs = _sync(run)

    assert _counts(logs) == (1, 0, 0, 0)
    assert ("POST", "composite/sobjects") in run.org.calls
    [task] = _marked(run, ada)
    [next_step] = run.org.fields_of(ada, "Trust_Next_Step__c")
    assert next_step.startswith("Send Ada a thank-you for the feedback of ")
    assert task["Subject"] == f"Trust: {next_step} {THANKS}"
    assert task["OwnerId"] == OWNER
    assert task["ActivityDate"] == run.as_of + dt.timedelta(days=7)
    assert (task["Status"], task["IsClosed"]) == ("Not Started", False)
    assert _mirror_marked(run) == [(task["Id"], task["Subject"], False)]  # known before the next pull
    assert result.api_calls == len(run.org.calls)

    run.org.advance(hours=1)
    before = len(run.org.calls)
    again, logs = _sync(run)
    assert _counts(logs) == (0, 0, 0, 0)
    assert again.changed == 0
    assert not [c for c in run.org.calls[before:] if c[1] == "composite/sobjects"]
    assert len(_marked(run, ada)) == 1
    assert run.org.task_writes == [("POST", task["Id"])]


def test_follow_ups_are_off_by_default_and_cost_no_call(run: Run) -> None:
    ada = _unthanked(run)
    result, logs = _sync(run, enabled=False)
    assert run.org.fields_of(ada, "Trust_Flags__c") == ("Missing thank-you",)
    assert _marked(run, ada) == []
    assert not [e for e in logs if e["event"] == "sync.follow_ups"]
    assert _collection_calls(run) == [("PATCH", "composite/sobjects")]  # the Contact write only
    pulled = [e for e in logs if e["event"] == "salesforce.pulled" and e["object"] == "Task"]
    assert pulled and result.failed == 0


def test_enabling_follow_ups_pulls_the_tasks_again_with_their_owner_and_status(run: Run) -> None:
    ada = _unthanked(run)
    _sync(run, enabled=False)
    run.org.advance(hours=1)
    _, logs = _sync(run)
    full = [e for e in logs if e["event"] == "salesforce.full_pull"]
    assert [e["object"] for e in full] == ["Task"]
    assert full[0]["fields"] and set(full[0]["fields"]) <= {"OwnerId", "Status", "IsClosed"}  # the rest: pulled
    assert _counts(logs) == (1, 0, 0, 0)
    assert len(_marked(run, ada)) == 1


def test_a_changed_next_step_is_one_patch_of_the_subject(run: Run) -> None:
    ada = _unthanked(run)
    _sync(run)
    [first] = _marked(run, ada)

    run.org.advance(hours=1)
    run.org.change("Contact", ada, FirstName="Adaeze")  # the name the next step cites is corrected
    _, logs = _sync(run)

    assert _counts(logs) == (0, 1, 0, 0)
    [task] = _marked(run, ada)
    assert task["Id"] == first["Id"]
    [next_step] = run.org.fields_of(ada, "Trust_Next_Step__c")
    assert next_step.startswith("Send Adaeze a thank-you for the feedback of ")
    assert task["Subject"] == f"Trust: {next_step} {THANKS}"
    assert task["ActivityDate"] == first["ActivityDate"]
    assert run.org.task_writes == [("POST", first["Id"]), ("PATCH", first["Id"])]


def test_a_cleared_flag_closes_the_task_in_the_org(run: Run) -> None:
    ada = _unthanked(run)
    _sync(run)
    run.org.advance(hours=1)
    run.org.task(ada, run.as_of - dt.timedelta(days=1), "Thank-you note")
    _, logs = _sync(run)

    assert _counts(logs) == (0, 0, 1, 0)
    [task] = _marked(run, ada)
    assert (task["Status"], task["IsClosed"]) == ("Completed", True)
    assert task["Subject"].endswith("[TL:missing_thank_you:cleared]")
    assert _mirror_marked(run) == [(task["Id"], task["Subject"], True)]

    run.org.advance(hours=1)
    before = len(run.org.calls)
    _, logs = _sync(run)
    assert _counts(logs) == (0, 0, 0, 0)
    assert not [c for c in run.org.calls[before:] if c[1] == "composite/sobjects"]


def test_a_task_the_owner_closed_in_the_org_is_not_reopened_nor_recreated(run: Run) -> None:
    ada = _unthanked(run)
    _sync(run)
    [task] = _marked(run, ada)
    run.org.advance(hours=1)
    run.org.change("Task", task["Id"], Status="Completed", IsClosed=True)  # the owner, in Salesforce

    _, logs = _sync(run)  # the incremental pull brings the closed task into the mirror
    assert _counts(logs) == (0, 0, 0, 0)
    assert [t["IsClosed"] for t in _marked(run, ada)] == [True]

    run.org.advance(hours=1)
    run.org.task(ada, run.as_of - dt.timedelta(days=1), "Thank-you note")
    _, logs = _sync(run)
    assert _counts(logs) == (0, 0, 0, 1)  # released: the flag opening again will get a new task
    assert _marked(run, ada)[0]["Subject"].endswith("[TL:missing_thank_you:cleared]")


def test_a_refused_create_is_reported_and_sent_again_next_run(run: Run) -> None:
    ada = _unthanked(run)
    bob = _unthanked(run, "Bob")
    run.org.refuse_tasks_for.add(bob)
    first, logs = _sync(run)

    assert _counts(logs) == (1, 0, 0, 0)
    assert first.failed == 1
    assert [(f.record_id, f.code) for f in first.failures] == [(bob, "FIELD_CUSTOM_VALIDATION_EXCEPTION")]
    assert len(_marked(run, ada)) == 1 and _marked(run, bob) == []

    run.org.refuse_tasks_for.clear()
    run.org.advance(hours=1)
    second, logs = _sync(run)
    assert _counts(logs) == (1, 0, 0, 0)
    assert second.failed == 0
    assert len(_marked(run, ada)) == len(_marked(run, bob)) == 1


def test_follow_up_tasks_in_the_org_do_not_move_anyone(run: Run) -> None:
    ada = _unthanked(run)
    _sync(run)
    run.org.advance(days=10)  # the task is past due, and "Send a thank-you ..." would match the thank_you kind
    result, logs = _sync(run)
    assert run.org.fields_of(ada, "Trust_Flags__c") == ("Missing thank-you",)
    assert result.changed == 0
    assert _counts(logs) == (0, 0, 0, 0)
    assert len(_marked(run, ada)) == 1
