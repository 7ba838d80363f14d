"""Issue 10: every failure bounded in time. A server that accepts and never answers, a Bulk job that never
completes, and a call that keeps failing all end the run within its deadline, with exit code 9 when the run's
time is what ran out, and nothing left running in the org.

The clock here is the test's: it moves only when the connector sleeps (a back-off, a poll) or a hung call
costs its read timeout, so `run.clock.t - start` is the time the run would have taken.
"""

from __future__ import annotations

import json
import math

import pytest
from structlog.testing import capture_logs

from connector.errors import CrmError, DeadlineReached
from connector.exit_codes import ExitCode
from tests.salesforce.conftest import Run


def _contacts(run: Run, n: int) -> list[str]:
    return [run.org.contact(f"C{i}") for i in range(n)]


def test_a_server_that_never_answers_ends_the_run_within_max_run_seconds_with_exit_9(run: Run) -> None:
    """'Send Multiple Requests Using Composite' (POST composite/, the run's first queries): the request is accepted
    and no answer ever comes (requests' ReadTimeout after the read timeout). Without a run deadline this held a
    run for 6 x 120 s."""
    _contacts(run, 3)
    run.org.hang("POST", r"^composite$")
    start = run.clock.t
    with pytest.raises(DeadlineReached) as err:
        run.sync(max_run_seconds=100, timeout_seconds=60, connect_timeout_seconds=10)

    assert err.value.exit_code == ExitCode.DEADLINE
    assert int(err.value.exit_code) == 9
    assert run.clock.t - start <= 100
    assert "max_run_seconds" in str(err.value)
    hung = [t for m, p, t in run.org.timeouts if p == "composite"]
    assert hung[0] == (10, 60)  # connect and read timeouts of their own
    assert hung[1][1] < 60  # the retry got only the time the run had left
    assert err.value.partial is not None
    assert err.value.partial.api_calls == len(run.org.calls)  # the calls spent are reported


def test_every_call_gets_its_own_connect_and_read_timeout(run: Run) -> None:
    """Each API call carries (connect, read) timeouts, never more than the time the run has left."""
    _contacts(run, 2)
    run.sync(timeout_seconds=45, connect_timeout_seconds=5)
    assert run.org.timeouts
    assert {t for _, _, t in run.org.timeouts} == {(5, 45)}


def test_a_call_that_outlives_its_retry_deadline_fails_as_crm_down_not_after_six_tries(run: Run) -> None:
    """The retry deadline per call (`retry_deadline_seconds`) stops the tries while the run still has time:
    the CRM is unreachable (exit 6), reported well before the run's deadline."""
    _contacts(run, 2)
    run.org.hang("POST", r"^composite$")
    start = run.clock.t
    with pytest.raises(CrmError) as err:
        run.sync(retry_deadline_seconds=30, max_run_seconds=600)
    assert not isinstance(err.value, DeadlineReached)
    assert err.value.exit_code == ExitCode.CRM_DOWN
    assert "ReadTimeout" in str(err.value)
    assert run.clock.t - start <= 30
    assert [m for m, p in run.org.calls if p == "composite"] == ["hung POST"]


def test_a_bulk_query_job_that_never_completes_is_aborted_at_the_deadline_and_logged_while_waited_on(run: Run) -> None:
    """'Create a Query Job', 'Get Information About a Query Job' (state InProgress, forever) and 'Abort a Query
    Job' (https://developer.salesforce.com/docs/platform/api-asynch/guide/query-abort-job.html):
    PATCH /services/data/vXX.X/jobs/query/{id} with {"state": "Aborted"}, answered 200 with the JobInfo."""
    _contacts(run, 300)
    run.org.bulk_seconds = math.inf
    with capture_logs() as logs, pytest.raises(DeadlineReached):
        run.sync(bulk_read_threshold=10, page_size=200, max_run_seconds=60, poll_seconds=2)

    (job_id,) = run.org.jobs
    assert run.org.aborted == [job_id]
    assert run.org.jobs[job_id].state == "Aborted"
    assert ("PATCH", f"jobs/query/{job_id}") in run.org.calls
    polls = [p for m, p in run.org.calls if m == "GET" and p == f"jobs/query/{job_id}"]
    assert len(polls) <= 31  # 60 s at one poll every 2 s, not an hour of them
    waiting = [e for e in logs if e["event"] == "salesforce.bulk_job_waiting"]
    assert waiting
    assert {tuple(e["job_ids"]) for e in waiting} == {(job_id,)}
    assert {state for e in waiting[1:] for state in e["states"]} == {"InProgress"}  # the first wait comes before a poll
    assert [e["waited_s"] for e in waiting] == sorted(e["waited_s"] for e in waiting)
    assert any(e["event"] == "salesforce.bulk_job_aborted" and e["job_id"] == job_id for e in logs)


def test_job_timeout_seconds_gives_up_on_a_bulk_job_and_aborts_it(run: Run) -> None:
    """'Abort a Query Job': a job given up on before the run's deadline is aborted too."""
    _contacts(run, 300)
    run.org.bulk_seconds = math.inf
    with pytest.raises(CrmError, match="did not finish within 20 s") as err:
        run.sync(bulk_read_threshold=10, page_size=200, job_timeout_seconds=20, poll_seconds=2)
    assert err.value.exit_code == ExitCode.CRM_DOWN
    assert run.org.aborted == list(run.org.jobs)


def test_a_bulk_update_job_given_up_on_is_aborted_and_the_stop_says_what_was_spent(run: Run) -> None:
    """'Create a Job', 'Upload Job Data', 'Upload Complete', then 'Abort a Job'
    (https://developer.salesforce.com/docs/platform/api-asynch/guide/abort-job.html): PATCH
    /services/data/vXX.X/jobs/ingest/{id} with {"state": "Aborted"}."""
    _contacts(run, 50)
    run.org.bulk_seconds = math.inf  # REST reads need no job; the update job never completes
    with pytest.raises(DeadlineReached) as err:
        run.sync(bulk_write_threshold=10, max_run_seconds=30, poll_seconds=2)
    (job_id,) = run.org.jobs
    assert run.org.jobs[job_id].kind == "ingest"
    assert run.org.aborted == [job_id]
    partial = err.value.partial
    assert partial is not None
    assert partial.changed == 0
    assert partial.api_calls == len(run.org.calls)


def test_a_retry_after_wait_is_logged_with_the_call_and_the_time_waited(run: Run) -> None:
    """'Status Codes and Error Responses': 503 with Retry-After; the back-off line names the call."""
    _contacts(run, 1)
    run.org.inject(
        "POST",
        r"^composite$",
        503,
        code="SERVER_UNAVAILABLE",
        message="Server unavailable",
        headers={"Retry-After": "9"},
    )
    with capture_logs() as logs:
        run.sync()
    (backoff,) = [e for e in logs if e["event"] == "salesforce.backoff"]
    assert backoff["call"] == "POST composite"
    assert backoff["wait_s"] == 9.0
    assert backoff["waited_s"] == 9.0


@pytest.mark.parametrize("path", ["collections", "bulk"])
def test_96_refused_records_are_all_returned_with_their_ids(run: Run, path: str) -> None:
    """'Update Records Using sObject Collections'
    (https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-update.html):
    200 with per-record {"success": false, "errors": [{"statusCode", "message", "fields"}]}; and
    'Get Job Failed Record Results' (sf__Id, sf__Error)."""
    ids = _contacts(run, 300)
    refused = ids[::3][:96]
    for cid in refused:
        run.org.lock_failures[cid] = 1
    result = run.sync(bulk_write_threshold=10**9 if path == "collections" else 0)
    assert result.failed == 96
    assert sorted(f.record_id for f in result.failures) == sorted(refused)
    assert {f.code for f in result.failures} == {"UNABLE_TO_LOCK_ROW"}
    assert result.changed == 300 - 96


def test_a_run_stopped_by_the_budget_reports_what_it_wrote_refused_and_spent(run: Run) -> None:
    """'Limit Info Header' (Sforce-Limit-Info: api-usage=used/limit): the guard stops between batches; the
    exception carries the batches written, every refusal in them, and the calls."""
    ids = _contacts(run, 1000)
    for cid in ids[:5]:
        run.org.lock_failures[cid] = 1
    run.org.api_limit = 100
    with pytest.raises(Exception) as err:
        run.sync(budget_fraction=0.08)
    assert err.value.exit_code == ExitCode.BUDGET  # type: ignore[attr-defined]
    partial = err.value.partial  # type: ignore[attr-defined]
    # the Contact describe; one Composite call with the detail describes and the counts of Contact, Task and Event;
    # one with the first Contact page; one with the counts and deletions of the detail objects; the check for
    # contacts changed since the pull; three writes of 200
    assert partial.api_calls == len(run.org.calls) == 8
    assert partial.changed == 600 - 5 == len(set(run.org.writes)) - 5
    assert sorted(f.record_id for f in partial.failures) == sorted(ids[:5])


def test_a_run_stopped_by_a_crm_outage_mid_write_reports_what_it_wrote(run: Run) -> None:
    """'Status Codes and Error Responses': 503 SERVER_UNAVAILABLE on every try of the third write."""
    _contacts(run, 1000)
    run.org.inject(
        "PATCH", r"^composite/sobjects$", 503, code="SERVER_UNAVAILABLE", message="Server unavailable", times=6, after=2
    )
    with pytest.raises(CrmError) as err:
        run.sync()
    assert err.value.exit_code == ExitCode.CRM_DOWN
    assert err.value.partial is not None
    assert err.value.partial.changed == 400
    assert err.value.partial.api_calls == len(run.org.calls)


def test_a_server_that_hangs_mid_write_stops_the_run_at_its_deadline_keeping_the_batches_written(run: Run) -> None:
    """'Update Records Using sObject Collections': the third PATCH is accepted and never answered."""
    _contacts(run, 1000)
    run.org.hang("PATCH", r"^composite/sobjects$", after=2)
    start = run.clock.t
    with pytest.raises(DeadlineReached) as err:
        run.sync(max_run_seconds=90)
    assert run.clock.t - start <= 90
    assert err.value.partial is not None
    assert err.value.partial.changed == 400 == len(run.org.writes)
    body = json.dumps(err.value.partial.failures, default=str)
    assert body == "[]"
