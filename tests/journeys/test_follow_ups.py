"""Follow-up Tasks on the local CRM: each open flag becomes one open Task for the contact's owner, found again by
its marker on later runs, updated while the flag stays open, closed when it clears, never duplicated."""

from __future__ import annotations

import datetime as dt
from typing import Any

from structlog.testing import capture_logs

from connector import ids
from connector.commands import sync
from connector.config import Config, FollowUpSection
from connector.crm.local.store import LocalCrm
from tests.conftest import Org

OWNER = ids.make(ids.USER, 1)
OTHER_OWNER = ids.make(ids.USER, 2)
THANKS = "[TL:missing_thank_you]"
LISTEN = "[TL:missing_listening]"


def _config(org: Org, **settings: Any) -> Config:
    return org.config.model_copy(update={"follow_up": FollowUpSection(enabled=True, **settings)})


def _sync(org: Org, *, days_later: int = 0, **settings: Any) -> tuple[sync.SyncResult, dict[str, Any]]:
    """An enabled sync; returns the result and the `sync.follow_ups` log event."""
    with capture_logs() as logs:
        result = sync.run(_config(org, **settings), as_of=org.as_of + dt.timedelta(days=days_later))
    events = [e for e in logs if e["event"] == "sync.follow_ups"]
    if any(e["event"] == "sync.unchanged" for e in logs):  # nothing changed since the last run: nothing to do
        assert events == []
        return result, {"created": 0, "updated": 0, "closed": 0, "released": 0}
    assert len(events) == 1
    return result, dict(events[0])


def _counts(event: dict[str, Any]) -> tuple[int, int, int, int]:
    return event["created"], event["updated"], event["closed"], event["released"]


def _tasks(org: Org, who: str | None = None) -> list[dict[str, Any]]:
    """The marked tasks (of one contact), oldest first."""
    crm = LocalCrm.open(org.database)
    try:
        cur = crm.con.execute(
            'SELECT "Id", "WhoId", "OwnerId", "Subject", "ActivityDate", "Status", "IsClosed", "SystemModstamp" '
            'FROM "Task" WHERE "Subject" LIKE \'%[TL:%\' AND (? IS NULL OR "WhoId" = ?) '
            'ORDER BY "CreatedDate", "Id"',
            [who, who],
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        crm.close()


def _owner_closes(org: Org, task_id: str) -> None:
    crm = LocalCrm.open(org.database)
    try:
        crm.con.execute(  # stamped, as a CRM stamps every edit
            'UPDATE "Task" SET "Status" = \'Completed\', "IsClosed" = true, "SystemModstamp" = now() WHERE "Id" = ?',
            [task_id],
        )
    finally:
        crm.close()


def _unthanked(org: Org) -> str:
    """A contact who gave feedback 20 days ago and was never thanked: the missing thank-you flag is open."""
    cid = org.contact("Ada", OwnerId=OWNER)
    org.call(cid, 20, "Feedback call")
    return cid


def test_an_open_flag_becomes_one_task_for_the_owner_and_a_rerun_writes_nothing(org: Org) -> None:
    ada = _unthanked(org)
    _, event = _sync(org)

    assert _counts(event) == (1, 0, 0, 0)
    [task] = _tasks(org, ada)
    next_step = org.fields(ada)["next_step"]
    assert next_step.startswith("Send Ada a thank-you for the feedback of ")
    assert task["Subject"] == f"Trust: {next_step} {THANKS}"
    assert task["OwnerId"] == OWNER
    assert task["ActivityDate"] == org.as_of + dt.timedelta(days=7)
    assert (task["Status"], task["IsClosed"]) == ("Not Started", False)

    before = _tasks(org)
    result, event = _sync(org)
    assert _counts(event) == (0, 0, 0, 0)
    assert result.changed == 0
    assert _tasks(org) == before  # not even a SystemModstamp moved


def test_follow_ups_are_off_by_default(org: Org) -> None:
    ada = _unthanked(org)
    with capture_logs() as logs:
        org.sync()
    assert org.fields(ada)["flags"] == "Missing thank-you"
    assert _tasks(org) == []
    assert not [e for e in logs if e["event"] == "sync.follow_ups"]


def test_each_open_flag_gets_its_own_task_with_its_own_next_step(org: Org) -> None:
    ada = _unthanked(org)
    for days in (5, 15, 25):
        org.email_out(ada, days)
    _, event = _sync(org, subject_prefix="Follow up: ", due_in_days=3)

    assert _counts(event) == (2, 0, 0, 0)
    listen, thanks = sorted(t["Subject"] for t in _tasks(org, ada))
    assert thanks == f"Follow up: {org.fields(ada)['next_step']} {THANKS}"  # the first flag's is the Contact's
    assert listen.startswith("Follow up: Book a listening conversation") and listen.endswith(f" {LISTEN}")
    assert {t["ActivityDate"] for t in _tasks(org, ada)} == {org.as_of + dt.timedelta(days=3)}


def test_a_changed_next_step_updates_the_same_task_and_keeps_its_due_date(org: Org) -> None:
    ada = _unthanked(org)
    _sync(org)
    [first] = _tasks(org, ada)

    crm = LocalCrm.open(org.database)
    try:  # the contact's first name, which the next step cites, is corrected
        crm.con.execute('UPDATE "Contact" SET "FirstName" = \'Adaeze\', "SystemModstamp" = now() WHERE "Id" = ?', [ada])
    finally:
        crm.close()
    _, event = _sync(org, days_later=2)

    assert _counts(event) == (0, 1, 0, 0)
    [task] = _tasks(org, ada)
    assert task["Id"] == first["Id"]
    assert "Adaeze" in org.fields(ada)["next_step"]
    assert task["Subject"] == f"Trust: {org.fields(ada)['next_step']} {THANKS}"
    assert task["ActivityDate"] == first["ActivityDate"]  # a due date that slid every day would never fall due


def test_a_new_owner_gets_the_open_task(org: Org) -> None:
    ada = _unthanked(org)
    _sync(org)
    crm = LocalCrm.open(org.database)
    try:
        crm.con.execute(
            'UPDATE "Contact" SET "OwnerId" = ?, "SystemModstamp" = now() WHERE "Id" = ?', [OTHER_OWNER, ada]
        )
    finally:
        crm.close()
    _, event = _sync(org)
    assert _counts(event) == (0, 1, 0, 0)
    assert [t["OwnerId"] for t in _tasks(org, ada)] == [OTHER_OWNER]


def test_a_cleared_flag_closes_its_task(org: Org) -> None:
    ada = _unthanked(org)
    _sync(org)
    org.task(ada, 1, "Thank-you note")  # someone thanked Ada
    _, event = _sync(org)

    assert org.fields(ada)["flags"] is None
    assert _counts(event) == (0, 0, 1, 0)
    [task] = _tasks(org, ada)
    assert (task["Status"], task["IsClosed"]) == ("Completed", True)
    assert task["Subject"].endswith("[TL:missing_thank_you:cleared]")

    _, event = _sync(org)
    assert _counts(event) == (0, 0, 0, 0)


def test_a_task_the_owner_closed_is_not_recreated_until_its_flag_has_cleared(org: Org) -> None:
    ada = _unthanked(org)
    _sync(org)
    [first] = _tasks(org, ada)
    _owner_closes(org, first["Id"])

    _, event = _sync(org)  # the flag is still open: the owner decided; no new task, no reopening
    assert org.fields(ada)["flags"] == "Missing thank-you"
    assert _counts(event) == (0, 0, 0, 0)
    assert [(t["Id"], t["IsClosed"]) for t in _tasks(org, ada)] == [(first["Id"], True)]

    org.task(ada, 1, "Thank-you note")
    _, event = _sync(org)  # the flag clears: the closed task is released
    assert _counts(event) == (0, 0, 0, 1)
    assert _tasks(org, ada)[0]["Subject"].endswith("[TL:missing_thank_you:cleared]")

    org.call(ada, -5, "Feedback on the new release")  # new input, five days after as-of, never thanked
    _, event = _sync(org, days_later=20)  # the flag opens again: a new task
    assert _counts(event) == (1, 0, 0, 0)
    tasks = _tasks(org, ada)
    assert len(tasks) == 2
    assert tasks[1]["Subject"].endswith(THANKS) and not tasks[1]["IsClosed"]


def test_a_duplicate_marked_task_is_closed_and_the_oldest_kept(org: Org) -> None:
    ada = _unthanked(org)
    _sync(org)
    [kept] = _tasks(org, ada)
    copy = ids.make(ids.TASK, 999)
    crm = LocalCrm.open(org.database)
    try:  # someone copied the task
        crm.con.execute(
            'INSERT INTO "Task" SELECT * REPLACE (? AS "Id", "CreatedDate" + INTERVAL 1 HOUR AS '
            '"CreatedDate") FROM "Task" WHERE "Id" = ?',
            [copy, kept["Id"]],
        )
    finally:
        crm.close()
    _, event = _sync(org)
    assert _counts(event) == (0, 0, 1, 0)
    assert [(t["Id"], t["IsClosed"]) for t in _tasks(org, ada)] == [(kept["Id"], False), (copy, True)]


def test_follow_up_tasks_are_no_activities_for_the_ladder(org: Org) -> None:
    ada = _unthanked(org)
    _sync(org)
    # Ten days on, the open task "Trust: Send a thank-you ..." is past its due date (the day a task counts as
    # an activity), and its subject would match the thank_you kind: yet the flag stays, and so does the task.
    _, event = _sync(org, days_later=10)
    assert org.fields(ada)["flags"] == "Missing thank-you"
    assert _counts(event) == (0, 0, 0, 0)
    assert [t["IsClosed"] for t in _tasks(org, ada)] == [False]


def test_a_demo_org_places_every_contact_the_same_with_or_without_its_follow_up_tasks(org: Org) -> None:
    org.load_demo(contacts=400, seed=5)
    _, event = _sync(org)
    assert event["created"] > 50
    later = org.as_of + dt.timedelta(days=30)  # every follow-up task is past due, as a done task would be

    # Each from no cache, so that both classify every activity: a sync reads only the contacts that changed.
    (org.folder / "state.duckdb").unlink()
    with_tasks = sync.run(org.config, as_of=later, dry_run=True)
    crm = LocalCrm.open(org.database)
    try:
        crm.con.execute('DELETE FROM "Task" WHERE "Subject" LIKE \'%[TL:%\'')
    finally:
        crm.close()
    (org.folder / "state.duckdb").unlink()
    without = sync.run(org.config, as_of=later, dry_run=True)

    assert with_tasks.per_rung == without.per_rung
    assert with_tasks.flags == without.flags
    assert with_tasks.activities == without.activities
    assert with_tasks.planned_fields == without.planned_fields
    assert with_tasks.skipped == without.skipped
