"""Journeys of a scheduled Salesforce sync against a fake org served at the HTTP layer.

Every mocked exchange follows Salesforce's documentation; each test names the pages whose shapes it relies on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from structlog.testing import capture_logs

from connector.cli import status as status_cli
from connector.config import FieldsSection
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm
from connector.errors import BudgetExhausted, CrmError
from tests.salesforce.conftest import Run

TRUST = list(FieldsSection().required().values())  # the six every org has


def _org_values(run: Run) -> list[tuple[object, ...]]:
    return run.org.con.execute(f'SELECT "Id", {", ".join(TRUST[:5])} FROM "Contact" ORDER BY "Id"').fetchall()


def _mirror_values(run: Run) -> list[tuple[object, ...]]:
    crm = LocalCrm.open(run.folder / "mirror.duckdb")
    try:
        return crm.con.execute(f'SELECT "Id", {", ".join(TRUST[:5])} FROM "Contact" ORDER BY "Id"').fetchall()
    finally:
        crm.close()


def _seed_demo(run: Run, contacts: int) -> None:
    demo.generate(
        run.org.crm, contacts=contacts, seed=11, as_of=run.as_of - dt.timedelta(days=1), activities_per_contact=4.0
    )


def test_full_sync_of_thousands_of_contacts_pages_through_rest_and_writes_each_contact_once(run: Run) -> None:
    """'Execute a SOQL Query' (pages linked by nextRecordsUrl, records with attributes {type, url}) and
    'Update Records Using sObject Collections' (at most 200 records, results in request order)."""
    _seed_demo(run, 3000)
    result = run.sync(page_size=500, bulk_read_threshold=10**9, bulk_write_threshold=10**9)

    # The pages come five to a Composite call, each later one chained to the page before (connector/crm/
    # salesforce/pages.py): counted among its subrequests.
    pages = [p for _, p, _ in run.org.subrequests if p.startswith(("query/01g", "queryAll/01g"))]
    composites = [p for m, p in run.org.calls if m == "POST" and p == "composite"]
    patches = [p for m, p in run.org.calls if m == "PATCH" and p == "composite/sobjects"]
    assert result.contacts == 3000
    assert len(pages) > 20  # contacts alone take 6 pages of 500; the activities many more
    assert len(composites) <= 2 + (len(pages) + 6) // 5 + 1  # the opening, then up to 5 pages a call
    assert result.changed == 3000 == len(run.org.writes) == len(set(run.org.writes))
    assert len(patches) == 15  # 3000 contacts / 200 per call
    assert result.api_calls == len(run.org.calls)
    assert _org_values(run) == _mirror_values(run)  # the mirror holds what was written, before any new pull

    again = run.sync(page_size=500, bulk_read_threshold=10**9, bulk_write_threshold=10**9)
    assert again.changed == 0
    assert again.planned_records == 0


def test_full_sync_on_the_bulk_path_gives_the_same_answers_as_the_rest_path(run: Run) -> None:
    """Bulk API 2.0: 'Create a Query Job' and 'Get Results for a Query Job' (CSV result sets, Sforce-Locator
    paging ending with the string "null", Sforce-NumberOfRecords); 'Create a Job', 'Upload Job Data' (201),
    'Close or Abort a Job', 'Get Job Successful Record Results' and 'Get Job Failed Record Results'."""
    _seed_demo(run, 2000)
    odd = run.org.contact("Siobhan", 'O\'Dwyer, "Shiv"')  # a quote and a comma travel through CSV both ways
    run.org.task(odd, run.as_of - dt.timedelta(days=3), 'Re: thanks, "great" call', TaskSubtype="Email")
    result = run.sync(
        bulk_read_threshold=1000, bulk_page_records=3000, bulk_write_threshold=500, bulk_rows_per_job=1500
    )

    posts = [p for m, p in run.org.calls if m == "POST"]
    results = [p for m, p in run.org.calls if m == "GET" and p.endswith("/results")]
    # Contact, Task, Event, EmailMessage, EventRelation: each above the threshold (TaskRelation is not)
    assert posts.count("jobs/query") == 5
    assert posts.count("jobs/ingest") == 2  # 2001 contacts, at most 1500 per job
    assert len(results) > 3  # the activities span several result sets
    assert result.changed == 2001
    assert run.org.fields_of(odd, "LastName") == ('O\'Dwyer, "Shiv"',)
    bulk_values = _org_values(run)
    assert bulk_values == _mirror_values(run)

    # The same org through REST gives the same rungs, flags and reasons.
    run.org.con.execute(f'UPDATE "Contact" SET {", ".join(f"{chr(34)}{f}{chr(34)} = NULL" for f in TRUST)}')
    (run.folder / "mirror.duckdb").unlink()
    (run.folder / "state.duckdb").unlink(missing_ok=True)
    rest = run.sync(bulk_read_threshold=10**9, bulk_write_threshold=10**9)
    assert rest.changed == 2001
    assert _org_values(run) == bulk_values


def _small_org(run: Run) -> dict[str, str]:
    org = run.org
    old = org._naive_now() - dt.timedelta(days=30)
    ada = org.contact("Ada", stamp=old)
    bob = org.contact("Bob", stamp=old)
    for i, days in enumerate((20, 40, 70)):
        org.task(
            ada,
            run.as_of - dt.timedelta(days=days),
            "Re: our plans",
            TaskSubtype="Email",
            stamp=old + dt.timedelta(hours=i),
        )
    meeting = org.event(bob, run.as_of - dt.timedelta(days=35), "Quarterly meeting", stamp=old)
    return {"ada": ada, "bob": bob, "meeting": meeting}


def test_incremental_sync_pulls_only_what_changed_and_drops_a_deleted_activity(run: Run) -> None:
    """'Execute a SOQL Query' through queryAll (SystemModstamp window; deleted rows come back with IsDeleted)."""
    ids = _small_org(run)
    first = run.sync()
    assert first.per_rung["Friend"] == 2  # Ada replied, Bob met us

    run.org.advance(hours=1)
    run.org.delete("Event", ids["meeting"])
    run.org.task(ids["ada"], run.as_of, "Re: feedback session notes", TaskSubtype="Email")
    with capture_logs() as logs:
        second = run.sync()

    pulled = {e["object"]: e["rows"] for e in logs if e["event"] == "salesforce.pulled"}
    # Contacts: none; our own writes of the first run are not read back. Tasks: the new reply only (the watermark
    # is the org's time of the last pull, not the newest task's stamp). Events: the deleted meeting, through
    # queryAll. No email, relation or deal has changed (the default rules' outcomes read won deals, so Opportunity
    # and OpportunityContactRole are pulled too, incrementally like the others).
    assert pulled == {
        "Contact": 0,
        "Task": 1,
        "Event": 1,
        "Opportunity": 0,
        "OpportunityContactRole": 0,
        "EmailMessage": 0,
        "TaskRelation": 0,
        "EventRelation": 0,
    }
    assert all(not e["full"] for e in logs if e["event"] == "salesforce.pulled")
    crm = LocalCrm.open(run.folder / "mirror.duckdb")
    try:
        assert crm.con.execute('SELECT count(*) FROM "Event"').fetchone() == (0,)  # the deleted meeting is gone
        assert crm.con.execute('SELECT count(*) FROM "Task"').fetchone() == (4,)
    finally:
        crm.close()
    # Bob's only conversation is gone, and with it the rung his history earned: with no conversation on record he
    # never stood on Friend, so nothing holds him there (a rung is read from the history as it is now).
    assert second.in_grace == 0
    assert second.per_rung["Fringe"] == 1
    assert second.changed == 1

    third = run.sync()
    assert third.changed == 0
    # one Composite call for Contact, Task, Event and the deals (the describes are remembered), one for the changes
    # and deletions of the email/relation objects; no writes
    assert third.api_calls == 2
    marks = status_cli._watermarks(run.config())  # what `trust-ladder status` shows
    assert set(marks) == {
        "Contact",
        "Task",
        "Event",
        "EmailMessage",
        "TaskRelation",
        "EventRelation",
        "Opportunity",
        "OpportunityContactRole",
    }
    assert all(dt.datetime.fromisoformat(v) <= run.org.now for v in marks.values())


@pytest.mark.parametrize("path", ["rest", "bulk"])
def test_a_session_that_expires_mid_run_is_renewed_once_and_the_call_repeated(run: Run, path: str) -> None:
    """'Status Codes and Error Responses': 401 with [{"message", "errorCode": "INVALID_SESSION_ID"}]."""
    _seed_demo(run, 600)
    settings: dict[str, Any] = (
        {"page_size": 200, "bulk_read_threshold": 10**9}
        if path == "rest"
        else {"bulk_read_threshold": 100, "bulk_page_records": 500, "bulk_write_threshold": 100}
    )
    run.org.expire_at = 6  # the session dies after six calls: in the middle of the pull
    result = run.sync(**settings)

    assert run.org.logins == 2
    expired = [i for i, (m, _) in enumerate(run.org.calls) if m.startswith("401")]
    assert len(expired) == 1
    repeated = run.org.calls[expired[0] + 1]
    assert repeated[1] == run.org.calls[expired[0]][1]  # the very same call, with the new session
    assert result.changed == 600


def test_a_503_storm_backs_off_honouring_retry_after_then_succeeds(run: Run) -> None:
    """'Status Codes and Error Responses' (503: the server is unavailable; SERVER_UNAVAILABLE)."""
    _small_org(run)
    run.org.inject("POST", r"^composite$", 503, code="SERVER_UNAVAILABLE", message="Server unavailable", times=2)
    run.org.inject(
        "POST",
        r"^composite$",
        503,
        code="SERVER_UNAVAILABLE",
        message="Server unavailable",
        headers={"Retry-After": "7"},
    )
    run.org.inject("POST", r"^composite$", 500, code="UNKNOWN_EXCEPTION", message="An unexpected error occurred")
    result = run.sync()

    assert result.changed == 2
    assert len(run.waits) == 4
    assert 0.5 <= run.waits[0] <= 1.0  # full jitter below 1 s, then 2 s
    assert 1.0 <= run.waits[1] <= 2.0
    assert run.waits[2] == 7.0  # the server said when
    assert 4.0 <= run.waits[3] <= 8.0


def test_a_post_that_creates_a_bulk_job_is_never_retried_blindly(run: Run) -> None:
    """'Create a Query Job': a 503 on the POST could hide a job that was created; it is not repeated."""
    _seed_demo(run, 300)
    run.org.inject("POST", r"^jobs/query$", 503, code="SERVER_UNAVAILABLE", message="Server unavailable")
    with pytest.raises(CrmError, match="503"):
        run.sync(bulk_read_threshold=10, page_size=200)
    assert [p for m, p in run.org.calls if m == "POST" and p.startswith("jobs/")] == ["jobs/query"]
    assert run.waits == []


def test_a_validation_error_is_not_retried(run: Run) -> None:
    """'Status Codes and Error Responses': 400 INVALID_FIELD is ours to fix, not worth a retry."""
    _small_org(run)
    run.org.inject(
        "POST", r"^composite$", 400, code="INVALID_FIELD", message="No such column 'Foo' on entity 'Contact'"
    )
    with pytest.raises(CrmError, match="INVALID_FIELD"):
        run.sync()
    assert run.waits == []


@pytest.mark.parametrize("path", ["collections", "bulk"])
def test_record_lock_failures_are_reported_with_their_id_and_written_on_the_next_run(run: Run, path: str) -> None:
    """'Update Records Using sObject Collections' (200 with per-record errors, statusCode UNABLE_TO_LOCK_ROW)
    and 'Get Job Failed Record Results' (sf__Id, sf__Error)."""
    ids = _small_org(run)
    threshold = 10**9 if path == "collections" else 0
    run.org.lock_failures[ids["bob"]] = 1
    first = run.sync(bulk_write_threshold=threshold)

    assert first.changed == 1
    assert [(f.record_id, f.code, f.transient) for f in first.failures] == [(ids["bob"], "UNABLE_TO_LOCK_ROW", True)]
    assert "unable to obtain exclusive access" in first.failures[0].message
    assert run.org.fields_of(ids["bob"], "Trust_Stage__c") == (None,)

    second = run.sync(bulk_write_threshold=threshold)
    assert second.planned_records == 1
    assert second.changed == 1
    assert second.failures == []
    assert run.org.fields_of(ids["bob"], "Trust_Stage__c") == ("Friend",)


def test_the_budget_guard_stops_between_batches_and_keeps_what_was_written(run: Run) -> None:
    """'Limit Info Header': Sforce-Limit-Info: api-usage=used/limit on every response."""
    _seed_demo(run, 2000)
    run.org.api_limit = 200  # the reads take a few calls (REST pages five to a Composite call), the writes 10
    with pytest.raises(BudgetExhausted, match="budget reached"):
        run.sync(budget_fraction=0.08, bulk_read_threshold=10**9, bulk_write_threshold=10**9)
    written = len(run.org.writes)
    assert 0 < written < 2000
    assert written % 200 == 0  # whole batches, never half of one
    assert len(run.org.calls) == 16  # 8% of 200

    rest = run.sync(bulk_read_threshold=10**9, bulk_write_threshold=10**9)
    # The next run continues where the guard stopped. The stopped first sync saved no watch, so a contact its
    # history held, and that it wrote, starts its grace period again from this run: only those are written twice.
    assert 2000 - written <= rest.changed <= 2000 - written + rest.in_grace


def test_the_daily_limit_ends_the_run_at_once(run: Run) -> None:
    """'Status Codes and Error Responses': 403 REQUEST_LIMIT_EXCEEDED, "TotalRequests Limit exceeded."."""
    _small_org(run)
    run.org.inject("POST", r"^composite$", 403, code="REQUEST_LIMIT_EXCEEDED", message="TotalRequests Limit exceeded.")
    with pytest.raises(BudgetExhausted, match="daily API request limit"):
        run.sync()
    assert run.waits == []


def test_the_concurrent_request_limit_is_waited_out(run: Run) -> None:
    """'Status Codes and Error Responses': the same 403 code for too many long-running concurrent requests."""
    _small_org(run)
    run.org.inject(
        "POST",
        r"^composite$",
        403,
        code="REQUEST_LIMIT_EXCEEDED",
        message="ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
    )
    assert run.sync().changed == 2
    assert len(run.waits) == 1
