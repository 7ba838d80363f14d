"""Issue 17: what a sync costs in API calls, measured against the fake org (REST and Bulk 2.0 wire formats).

The pages whose shapes these tests rely on:
- "Send Multiple Requests Using Composite"
  (https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html):
  POST composite {"allOrNone", "compositeRequest": [{"method", "url", "referenceId"}]}, answered
  {"compositeResponse": [{"body", "httpHeaders", "httpStatusCode", "referenceId"}]}; "the entire series of
  requests counts as a single call toward your API limits"; at most 25 subrequests, 5 of them queries.
- "COUNT() and COUNT(fieldName)" (SOQL and SOSL Reference): SELECT COUNT() answers totalSize and no records.
- "Get Information About a Query Job" / "... an Ingest Job" (Bulk API 2.0): state, numberRecordsProcessed,
  numberRecordsFailed; "Get Job Failed Record Results": sf__Id, sf__Error.
- "login()" (SOAP API Developer Guide): loginResponse/result/userId, the user our writes are stamped with
  (LastModifiedById, "Contact", Object Reference).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, MutableMapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from connector.commands.sync_steps import SyncResult
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import write_back
from connector.crm.salesforce.push import split_bulk_error
from connector.errors import ConfigError, CrmError
from connector.exit_codes import ExitCode
from tests.salesforce.conftest import Run
from tests.salesforce.fake_org import ADMIN_USER, Job

OPTIONAL = {"EmailMessage", "TaskRelation", "EventRelation"}
REST: dict[str, Any] = {"bulk_read_threshold": 10**9, "bulk_write_threshold": 10**9}


def _seed(run: Run, contacts: int) -> None:
    demo.generate(
        run.org.crm, contacts=contacts, seed=5, as_of=run.as_of - dt.timedelta(days=1), activities_per_contact=4.0
    )


def _sync(run: Run, **settings: Any) -> tuple[SyncResult, dict[str, int]]:
    """One run: its result and the rows each object's pull brought."""
    with capture_logs() as logs:
        result = run.sync(**settings)
    pulled = {e["object"]: e["rows"] for e in logs if e["event"] == "salesforce.pulled"}
    return result, pulled


@pytest.mark.parametrize(
    ("contacts", "settings"),
    [(500, REST), (3000, {})],
    ids=["rest-500", "bulk-3000"],
)
def test_a_full_sync_a_rerun_and_a_quiet_run_cost_what_issue_17_allows(
    run: Run, contacts: int, settings: dict[str, Any]
) -> None:
    """An org without Enhanced Email or Shared Activities. 3,000 contacts with the default thresholds: the
    activities come through Bulk query jobs and the write through a Bulk update job."""
    run.org.disabled = set(OPTIONAL)
    _seed(run, contacts)
    full, _ = _sync(run, **settings)
    assert full.changed == contacts
    assert full.api_calls <= 20

    run.org.advance(minutes=1)
    rerun, pulled = _sync(run, **settings)
    assert rerun.api_calls <= 4
    assert pulled["Contact"] == 0  # none of the contacts it wrote is read back
    assert rerun.changed == 0

    run.org.advance(minutes=20)
    quiet, pulled = _sync(run, **settings)
    assert quiet.api_calls <= 3
    assert sum(pulled.values()) == 0
    assert quiet.changed == 0


@pytest.mark.parametrize(("contacts", "settings"), [(500, REST), (3000, {})], ids=["rest-500", "defaults-3000"])
def test_the_three_optional_objects_cost_at_most_three_more_calls_a_run(
    run: Run, contacts: int, settings: dict[str, Any]
) -> None:
    """A full sync, a rerun and a quiet run, with and without EmailMessage, TaskRelation and EventRelation. With
    the default thresholds the activities' and the relations' REST pages share Composite calls, five a call."""
    _seed(run, contacts)
    with_all: list[int] = []
    for _ in range(3):
        with_all.append(run.sync(**settings).api_calls)
        run.org.advance(minutes=20)
    run.org.disabled = set(OPTIONAL)
    (run.folder / "mirror.duckdb").unlink()
    (run.folder / "state.duckdb").unlink()
    run.org.con.execute('UPDATE "Contact" SET "Trust_Stage__c" = NULL')
    bare: list[int] = []
    for _ in range(3):
        bare.append(run.sync(**settings).api_calls)
        run.org.advance(minutes=20)
    assert all(a - b <= 3 for a, b in zip(with_all, bare, strict=True)), (with_all, bare)


def _with_edit_before_write(run: Run, monkeypatch: pytest.MonkeyPatch, edit: Callable[[], None]) -> None:
    """Someone edits the org after this run's pull and before its write."""
    original = write_back.WriteBack.before_write

    def edited_first(self: write_back.WriteBack, plan_table: str, pulled: dt.datetime | None) -> Any:
        edit()
        return original(self, plan_table, pulled)

    monkeypatch.setattr(write_back.WriteBack, "before_write", edited_first)


def test_a_real_edit_in_the_window_of_our_writes_is_still_read(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our writes are left out of the next pull by LastModifiedById and their span of org time; a person's
    edits in that span are not: of a contact we did not write, of one we wrote (before our write: it would be
    hidden by it, so the check before the write names it; after it), all read on the next run."""
    org = run.org
    ada = org.contact("Ada", stamp=org._naive_now() - dt.timedelta(days=30))
    bob = org.contact("Bob", stamp=org._naive_now() - dt.timedelta(days=30))
    cy = org.contact("Cy", stamp=org._naive_now() - dt.timedelta(days=30))
    run.sync()  # all three written: each gets its first rung
    org.advance(hours=1)
    org.task(ada, run.as_of, "Re: your proposal", TaskSubtype="Email")  # Ada's rung moves: she is written again

    def edit() -> None:
        org.change("Contact", ada, LastName="Lovelace")  # before our write of Ada: hidden by it
        org.change("Contact", bob, OwnerId="005fake00000009AAA")  # a contact this run does not write

    original = write_back.WriteBack.before_write
    _with_edit_before_write(run, monkeypatch, edit)
    second = run.sync()
    monkeypatch.setattr(write_back.WriteBack, "before_write", original)
    assert second.changed == 1
    org.advance(seconds=30)
    org.change("Contact", cy, FirstName="Cyril")  # after our write, within the same minute

    org.advance(minutes=1)
    _, pulled = _sync(run)
    assert pulled["Contact"] == 3  # Ada (named by the check), Bob and Cy; none of our own writes
    mirror = LocalCrm.open(run.folder / "mirror.duckdb")
    try:
        got = dict(mirror.con.execute('SELECT "Id", "LastName" FROM "Contact"').fetchall())
        owner = mirror.con.execute('SELECT "OwnerId" FROM "Contact" WHERE "Id" = ?', [bob]).fetchone()
        first = mirror.con.execute('SELECT "FirstName" FROM "Contact" WHERE "Id" = ?', [cy]).fetchone()
    finally:
        mirror.close()
    assert got[ada] == "Lovelace"
    assert owner == ("005fake00000009AAA",)
    assert first == ("Cyril",)
    assert org.fields_of(ada, "LastModifiedById") != (ADMIN_USER,)  # the org shows our write last


def test_bulk_polls_back_off_from_one_second_doubling_to_thirty_and_log_each_wait(run: Run) -> None:
    """'Get Information About a Query Job': state InProgress for a while (here 100 s of the org's time), then
    JobComplete. The first poll comes a second after the job is created, then each wait doubles up to 30 s."""
    run.org.disabled = set(OPTIONAL)
    for i in range(30):
        run.org.contact(f"C{i}")
    run.org.bulk_seconds = 100
    with capture_logs() as logs:
        run.sync(bulk_read_threshold=10, poll_seconds=1, poll_max_seconds=30)
    waits = [e for e in logs if e["event"] == "salesforce.bulk_job_waiting"]
    assert [e["wait_s"] for e in waits] == [1, 2, 4, 8, 16, 30, 30, 30]  # polled at 1, 3, 7, ... 91, done at 121
    assert run.waits == [1, 2, 4, 8, 16, 30, 30, 30]
    (job_id,) = run.org.jobs
    assert [p for m, p in run.org.calls if m == "GET" and p == f"jobs/query/{job_id}"] == [f"jobs/query/{job_id}"] * 8
    assert [e["states"] for e in waits] == [["UploadComplete"]] + [["InProgress"]] * 7
    assert all(e["objects"] == ["Contact"] and e["job_ids"] == [job_id] for e in waits)
    assert all(e["left_s"] > 0 for e in waits)


def _three_bulk_jobs(run: Run, **org: Any) -> tuple[list[Job], list[tuple[str, str]], list[MutableMapping[str, Any]]]:
    """40 contacts and their activities, each of Contact, Task and Event above the Bulk threshold, every job done
    20 s after it was created: the jobs, the calls from the first job's creation on, and the waits logged."""
    run.org.disabled = set(OPTIONAL)
    _seed(run, 40)
    run.org.bulk_seconds = 20
    for name, value in org.items():
        setattr(run.org, name, value)
    with capture_logs() as logs:
        result = run.sync(bulk_read_threshold=10, bulk_write_threshold=10**9, poll_seconds=1)
    pulled = {e["object"]: e["rows"] for e in logs if e["event"] == "salesforce.pulled"}
    jobs = sorted(run.org.jobs.values(), key=lambda j: j.total)
    assert [j.obj for j in jobs] == ["Contact", "Event", "Task"]
    assert {j.obj: j.total for j in jobs} == {o: pulled[o] for o in ("Contact", "Task", "Event")}  # every row read
    assert result.contacts == 40
    first = run.org.calls.index(("POST", "jobs/query"))
    calls = [c for c in run.org.calls[first:] if c[0] in ("POST", "GET") and c[1].startswith("jobs/query")]
    assert calls[:3] == [("POST", "jobs/query")] * 3  # all three created before the first poll
    assert run.waits == [1, 2, 4, 8, 16]  # one back-off for the three: done at 20 s, found at 31 s
    waits = [e for e in logs if e["event"] == "salesforce.bulk_job_waiting"]
    assert [len(e["job_ids"]) for e in waits] == [3] * 5
    return jobs, calls[3:], logs


def test_bulk_query_jobs_are_created_together_and_one_call_a_wait_follows_them_all(run: Run) -> None:
    """Three objects above the Bulk threshold: every job is created before any is polled ('Create a Query Job');
    the org works on them at the same time; after each wait one call to 'Get Information About All Query Jobs'
    (https://developer.salesforce.com/docs/platform/api-asynch/guide/query-get-all-jobs.html: GET
    jobs/query?jobType=V2Query, {"done", "records": [JobInfo with "jobType"], "nextRecordsUrl"}) follows all
    three: 5 calls for the three jobs, where polling one job after the other cost 5 each."""
    jobs, calls, _ = _three_bulk_jobs(run)
    polls = [p for m, p in calls if not p.endswith("/results")]
    assert polls == ["jobs/query"] * 5
    assert sorted(p for m, p in calls if p.endswith("/results")) == sorted(f"jobs/query/{j.id}/results" for j in jobs)


def test_in_a_busy_org_the_jobs_are_polled_one_at_a_time_smallest_first(run: Run) -> None:
    """1,500 query jobs of other tools kept in the org: the list's first page (1,000, in an order the API leaves
    open) does not hold ours, so after that one call the wait says so and asks about each job on its own ('Get
    Information About a Query Job'), the smallest first, up to the first one still working: 3 polls of the
    smallest while they work, then one each as they are found done."""
    jobs, calls, logs = _three_bulk_jobs(run, other_query_jobs=1500)
    polls = [p for m, p in calls if not p.endswith("/results")]
    assert polls == ["jobs/query", f"jobs/query/{jobs[0].id}"] + [f"jobs/query/{jobs[0].id}"] * 4 + [
        f"jobs/query/{j.id}" for j in jobs[1:]
    ]
    unused = [e for e in logs if e["event"] == "salesforce.bulk_job_list_unused"]
    assert len(unused) == 1
    assert "not among the 1000 it listed first" in unused[0]["reason"]


def test_a_sync_user_who_may_not_list_the_orgs_jobs_polls_them_one_at_a_time(run: Run) -> None:
    """'Get Information About All Query Jobs' refused (403 INSUFFICIENT_ACCESS): one call lost, then the jobs
    are asked about one at a time; the run goes on."""
    jobs, calls, logs = _three_bulk_jobs(run, refuse_job_list=True)
    polls = [p for m, p in calls if not p.endswith("/results")]
    assert polls[0] == "jobs/query"
    assert polls[1:] == [f"jobs/query/{jobs[0].id}"] * 5 + [f"jobs/query/{j.id}" for j in jobs[1:]]
    (unused,) = [e for e in logs if e["event"] == "salesforce.bulk_job_list_unused"]
    assert unused["reason"] == "Salesforce answered 403"


def test_a_bulk_query_job_that_fails_stops_the_wait_and_aborts_the_jobs_still_working(run: Run) -> None:
    """'Get Information About a Query Job': a job that ends Failed carries an errorMessage. The run stops there
    (exit 6, the org's message quoted), and the job created with it that is still working is aborted ('Abort a
    Query Job'), so nothing the run started keeps working in the org."""
    run.org.disabled = set(OPTIONAL)
    _seed(run, 40)
    run.org.bulk_rows_per_second = 10  # Contact (40 rows) is done first, then Event (60), then Task
    run.org.failing_query_jobs = {"Event": "INVALID_QUERY_LOCATOR: the query ran out of time"}
    with pytest.raises(CrmError, match=r"the Bulk query job \w+ for Event ended Failed: INVALID_QUERY_LOCATOR") as err:
        run.sync(bulk_read_threshold=10, poll_seconds=1)
    assert err.value.exit_code == ExitCode.CRM_DOWN
    states = {j.obj: j.state for j in run.org.jobs.values()}
    assert states == {"Contact": "JobComplete", "Event": "Failed", "Task": "Aborted"}
    assert run.org.aborted == [j.id for j in run.org.jobs.values() if j.obj == "Task"]
    assert not [p for m, p in run.org.calls if p.endswith("/results")]  # nothing read from a run that stopped


def test_a_stuck_bulk_job_costs_a_handful_of_polls_in_a_ten_minute_run(run: Run) -> None:
    """The issue's stuck job was polled about 300 times in a 600 s run."""
    run.org.disabled = set(OPTIONAL)
    for i in range(30):
        run.org.contact(f"C{i}")
    run.org.bulk_seconds = math.inf
    with pytest.raises(Exception, match="max_run_seconds"):
        run.sync(bulk_read_threshold=10, max_run_seconds=600)
    (job_id,) = run.org.jobs
    polls = [p for m, p in run.org.calls if m == "GET" and p == f"jobs/query/{job_id}"]
    assert len(polls) <= 30
    assert run.org.aborted == [job_id]


_LOCKED = "unable to obtain exclusive access to this record"
_PICKLIST = "Trust Stage: bad value for restricted picklist field: Fan"
_RULE = "Tasks need a Type: see the rule"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (f"UNABLE_TO_LOCK_ROW:{_LOCKED}:--", ("UNABLE_TO_LOCK_ROW", _LOCKED)),
        (
            f"INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:{_PICKLIST}:Trust_Stage__c --",
            ("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f"{_PICKLIST} (fields: Trust_Stage__c)"),
        ),
        (
            f"FIELD_CUSTOM_VALIDATION_EXCEPTION:{_RULE}:Type, Status --",
            ("FIELD_CUSTOM_VALIDATION_EXCEPTION", f"{_RULE} (fields: Type, Status)"),
        ),
        ("a message with no code", ("", "a message with no code")),
    ],
)
def test_a_bulk_refusal_reads_as_its_code_and_message_without_the_closing_dashes(
    error: str, expected: tuple[str, str]
) -> None:
    """'Get Job Failed Record Results': sf__Error is "Error code and message", as CODE:message:fields --."""
    assert split_bulk_error(error) == expected


def test_bulk_refusals_in_the_failures_file_end_with_the_message(run: Run) -> None:
    ids = [run.org.contact(f"C{i}") for i in range(30)]
    for cid in ids[:3]:
        run.org.lock_failures[cid] = 1
    result = run.sync(bulk_write_threshold=0)
    assert result.failed == 3
    assert all(f.message.endswith(f"1 records: {f.record_id}") for f in result.failures)  # no closing " --"


def test_the_contact_describe_is_remembered_for_a_day(run: Run) -> None:
    """'Get Field and Other Metadata for an Object' (GET sobjects/Contact/describe)."""
    run.org.contact("Ada")
    run.sync()
    described = [p for _, p in run.org.calls].count("sobjects/Contact/describe")
    run.org.advance(hours=3)
    run.sync()
    assert [p for _, p in run.org.calls].count("sobjects/Contact/describe") == described
    run.org.advance(days=1)
    run.sync()
    assert [p for _, p in run.org.calls].count("sobjects/Contact/describe") == described + 1


def test_a_field_deleted_after_the_describe_was_remembered_is_named_not_a_crash(run: Run) -> None:
    """'Status Codes and Error Responses': 400 INVALID_FIELD ("No such column") on the query; the describe is
    read again and the missing field named (exit 3)."""
    run.org.contact("Ada")
    run.sync()
    run.org.missing_fields = {"Trust_Reason__c"}
    run.org.advance(hours=1)
    with pytest.raises(ConfigError, match="Trust_Reason__c"):
        run.sync()


def test_a_picklist_value_added_since_the_describe_was_remembered_is_found(run: Run) -> None:
    """The admin adds a rung's value to the picklist after a run remembered the describe: the next run asks
    the org again rather than refusing the rule file."""
    run.org.contact("Ada")
    run.org.picklists["Trust_Stage__c"].remove("Forever")
    with pytest.raises(Exception, match="Forever"):
        run.sync()
    run.org.picklists["Trust_Stage__c"].append("Forever")
    run.org.advance(minutes=15)
    assert run.sync().contacts == 1


# What each optional object's pull keeps (connector.crm.salesforce.details): the rows the engine can use.
_KEPT = {
    "EmailMessage": '"ActivityId" IS NOT NULL',
    "TaskRelation": 'NOT "IsWhat"',
    "EventRelation": 'NOT "IsWhat"',
}


@pytest.mark.parametrize(
    ("snapshot", "counted"),
    [
        ({}, {"TaskRelation"}),
        ({"refuse_record_count": True}, OPTIONAL),
        ({"stale_counts": {"EmailMessage": 0}}, {"EmailMessage", "TaskRelation"}),
        ({"stale_counts": {"TaskRelation": 10**6}}, set()),
    ],
    ids=["live-snapshot", "refused", "snapshot-too-low", "snapshot-too-high"],
)
def test_optional_objects_above_the_bulk_threshold_are_not_counted_on_a_full_sync(
    run: Run, snapshot: dict[str, Any], counted: set[str]
) -> None:
    """A first sync of an org with Enhanced Email and Shared Activities: 1,000 EmailMessage and 787 EventRelation
    rows, above the Bulk threshold (150 here), 108 TaskRelation rows, below it. "Record Count" (REST API Developer
    Guide, https://developer.salesforce.com/docs/platform/api-rest/guide/resources-record-count.html:
    GET limits/recordCount?sObjects=..., {"sObjects": [{"count", "name"}]}, "a cached snapshot in time that may not
    accurately represent the number of records", for users with "View Setup and Configuration") rides in the run's
    first Composite call beside the describes and three COUNT() queries. An object it puts above the threshold is
    read by a Bulk job with no COUNT() of its own; the others, or all of them with no snapshot (the user may not
    read it), or one it puts too low, are counted as before, in one Composite call more. Whatever the snapshot
    says, every row the engine uses arrives: too high, a small object is read by a Bulk job."""
    _seed(run, 300)
    for name, value in snapshot.items():
        setattr(run.org, name, value)
    with capture_logs() as logs:
        result = run.sync(bulk_read_threshold=150, bulk_write_threshold=10**9)
    pulled = {e["object"]: e["rows"] for e in logs if e["event"] == "salesforce.pulled"}
    for obj, kept in _KEPT.items():
        live = f'SELECT count(*) FROM "{obj}" WHERE {kept} AND NOT COALESCE("IsDeleted", false)'
        assert pulled[obj] == run.org.con.execute(live).fetchone()[0]  # type: ignore[index]
    assert (pulled["EmailMessage"], pulled["TaskRelation"], pulled["EventRelation"]) == (1000, 108, 787)
    jobs = {j.obj for j in run.org.jobs.values()} & OPTIONAL
    assert jobs == {"EmailMessage", "EventRelation"} | ({"TaskRelation"} - counted)
    counts = {q.split(" FROM ")[1].split()[0] for q in run.org.queries if q.startswith("SELECT COUNT()")}
    assert counts & OPTIONAL == counted
    composites = [p for m, p in run.org.calls if (m, p) == ("POST", "composite")]
    pages = 1 if "TaskRelation" in counted else 0  # its REST page, in a call of its own
    assert len(composites) == 1 + (1 if counted else 0) + pages  # the opening call, the optional objects' counts
    assert ("GET", "limits/recordCount", 403 if "refuse_record_count" in snapshot else 200) in run.org.subrequests
    assert result.contacts == 300

    # The next run reads what changed since, whichever way the first read each object: its watermark was set.
    org, asked = run.org, len(run.org.subrequests)
    org.advance(minutes=20)
    task = org.con.execute('SELECT "TaskId" FROM "TaskRelation" LIMIT 1').fetchone()[0]  # type: ignore[index]
    event = org.con.execute('SELECT "EventId" FROM "EventRelation" LIMIT 1').fetchone()[0]  # type: ignore[index]
    org.relate_task(task, org.contact("Newly", "Shared"))
    org.relate_event(event, "005000000000001AAA")
    org.email(task, incoming=True)
    _, pulled = _sync(run, bulk_read_threshold=150, bulk_write_threshold=10**9)
    assert {o: pulled[o] for o in OPTIONAL} == {"EmailMessage": 1, "TaskRelation": 1, "EventRelation": 1}
    assert not [p for _, p, _ in org.subrequests[asked:] if p.startswith("limits/")]  # incremental: no count
