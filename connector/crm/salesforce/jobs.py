"""What every Salesforce REST and Bulk API 2.0 exchange shares: the connection, the budget, JSON calls, and
polling Bulk jobs until they leave their working states ("Get Information About a Query Job" / "... an Ingest
Job", Bulk API 2.0 Developer Guide).

Jobs created together are waited on together (`wait_for_jobs`): the org works on them at the same time, so one
back-off serves them all. Neither Composite nor Composite Batch can carry a Bulk API 2.0 request ("Send Multiple
Requests Using Composite" lists sObject, Query, QueryAll and sObject Collections resources; "Composite Batch" adds
Limits, Search, Connect, Chatter and Actions; neither lists jobs/query), so each poll is a call of its own. After
each wait the jobs still working are asked about smallest first, and the round ends at the first one still
working: a larger job started no earlier is rarely done before it. Six jobs of similar size then cost a poll per
wait while they work and one each as they finish, where polling them one after the other cost every job its own
series of polls. ("Get Information About All Query Jobs" answers every job in one call, but for the whole org, up
to 1,000 a page "in an indeterminate order", so in a busy org ours need not be on the page; it is not used.)

A job is polled only while the run has time (`max_run_seconds`) and the jobs have not outlived
`job_timeout_seconds`; a job given up on, for whatever reason (the deadline, an error, Ctrl-C, another job of the
same wait that failed), is aborted ("Abort a Query Job", "Abort a Job": PATCH jobs/query|ingest/{id} with
{"state": "Aborted"}), so nothing keeps running in the org after the run has stopped.

Polls back off: the first comes `poll_seconds` (1 s) after the jobs are created (a job is never done the moment
it is created), each later wait is twice the one before, up to `poll_max_seconds` (30 s), so a job that takes ten
minutes costs about 25 polls, not 300. Every wait is logged (`salesforce.bulk_job_waiting`: the jobs still
working, their objects and last states, this wait, the time waited so far and the run's time left). A wait never
runs past the run's deadline: the last one is shortened to leave time for one more poll, and when there is not
even that, the jobs are aborted and the run stops (exit 9).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import requests

from connector import log
from connector.config import SalesforceSection
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.limits import ApiUsage
from connector.errors import CrmError, TrustLadderError

_log = log.get("trust_ladder.salesforce")

_FINISHED = ("JobComplete", "Failed", "Aborted")
_LAST_POLL_S = 1.0  # the time a last poll needs before the run's deadline
_ABORT_GRACE_S = 15.0  # aborting a job may run this far past the run's deadline
_RAW_BODY_CHARS = 2000  # a body that is not a Salesforce error array (an HTML page) is cut here, and says so


class Waiting(NamedTuple):
    """A job being waited on: its Id, object, the rows it is expected to hold (the smallest is asked about
    first) and its last known state."""

    job_id: str
    obj: str
    rows: int = 0
    state: str = "UploadComplete"


def error_text(body: str) -> str:
    """A Salesforce error body as one whole line: `CODE: message; CODE: message` for the JSON error array of
    "Status Codes and Error Responses", else the raw text folded onto one line (long pages cut, saying so)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and parsed and all(isinstance(e, dict) for e in parsed):
        return log.one_line("; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in parsed))
    text = log.one_line(body)
    if len(text) > _RAW_BODY_CHARS:
        text = f"{text[:_RAW_BODY_CHARS]}… ({len(text) - _RAW_BODY_CHARS} more characters)"
    return text


def raise_for(resp: Any, what: str) -> None:
    if resp.status_code >= 300:
        detail = error_text(resp.text) if resp.text else "(no body)"
        raise CrmError(log.redact(f"Salesforce answered {resp.status_code} to {what}: {detail}"))


class BulkClient:
    def __init__(
        self,
        conn: Connection,
        section: SalesforceSection,
        usage: ApiUsage,
        sleep: Callable[[float], None],
        temp_dir: Path | None = None,
    ) -> None:
        self.conn = conn
        self.section = section
        self.usage = usage
        self.sleep = sleep
        self.temp_dir = temp_dir

    def guard(self, before: str) -> None:
        """Between batches, pages and polls: stop cleanly when the budget or the run's time is spent."""
        self.usage.check(before)
        self.conn.session.deadline.check(before)

    def _url(self, path: str) -> str:
        return f"{self.conn.base_url}{path}"

    def json_call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = self.conn.session.request(method, self._url(path), headers=self.conn.headers(), **kwargs)
        raise_for(resp, f"{method} {path}")
        body: dict[str, Any] = resp.json()
        return body

    @contextlib.contextmanager
    def aborted_on_failure(self, kind: str, job_id: str, obj: str) -> Iterator[None]:
        """Whatever ends the wait for this job early (the deadline, an error, an interrupt) aborts it first."""
        try:
            yield
        except BaseException as exc:
            self.abort(kind, job_id, obj, reason=type(exc).__name__)
            raise

    def abort(self, kind: str, job_id: str, obj: str, *, reason: str) -> None:
        """PATCH jobs/{kind}/{id} {"state": "Aborted"}, allowed a little past the deadline; never raises."""
        session = self.conn.session
        try:
            with session.grace(_ABORT_GRACE_S):
                resp = session.request(
                    "PATCH", self._url(f"jobs/{kind}/{job_id}"), json={"state": "Aborted"}, headers=self.conn.headers()
                )
        except (requests.RequestException, TrustLadderError) as exc:
            _log.error(
                "salesforce.bulk_job_abort_failed",
                job_id=job_id,
                object=obj,
                kind=kind,
                reason=reason,
                error=type(exc).__name__,
            )
            return
        if resp.status_code >= 300:
            _log.error(
                "salesforce.bulk_job_abort_failed",
                job_id=job_id,
                object=obj,
                kind=kind,
                reason=reason,
                status=resp.status_code,
                detail=error_text(resp.text),
            )
            return
        _log.warning("salesforce.bulk_job_aborted", job_id=job_id, object=obj, kind=kind, reason=reason)

    def wait_for_job(self, kind: str, job_id: str, obj: str) -> dict[str, Any]:
        """Poll one job until it is done (see `wait_for_jobs`)."""
        return self.wait_for_jobs(kind, [Waiting(job_id, obj)])[job_id]

    def wait_for_jobs(self, kind: str, jobs: Sequence[Waiting]) -> dict[str, dict[str, Any]]:
        """Poll jobs created together until every one is done, on one back-off: a query job must complete (one
        that fails stops the wait), an ingest job may fail (its rows say why). Whatever ends the wait early
        aborts the jobs not yet done. Answers each job's last JobInfo, by Id."""
        done: dict[str, dict[str, Any]] = {}
        try:
            self._poll(kind, jobs, done)
        except BaseException as exc:
            for job in jobs:
                if job.job_id not in done:
                    self.abort(kind, job.job_id, job.obj, reason=type(exc).__name__)
            raise
        return done

    def _poll(self, kind: str, jobs: Sequence[Waiting], done: dict[str, dict[str, Any]]) -> None:
        """Wait, then poll the jobs still working, smallest first, up to the first one still working: a larger
        job started no earlier is rarely done before a smaller one, so asking about it would cost a call for
        nothing. Each wait is twice the one before (up to `poll_max_seconds`)."""
        deadline = self.conn.session.deadline
        timeout = self.section.job_timeout_seconds
        order = sorted(range(len(jobs)), key=lambda i: (jobs[i].rows, i))
        pending = [jobs[i] for i in order]
        states = {job.job_id: job.state for job in jobs}
        wait = self.section.poll_seconds
        waited = 0.0
        while pending:
            room = deadline.left() - _LAST_POLL_S
            if room <= 0:  # no time left for a wait and one more poll
                raise deadline.root().reached(f"the {_what(kind, pending, states)} finished")
            this = min(wait, room, max(timeout - waited, 0.0))
            _log.info(
                "salesforce.bulk_job_waiting",
                kind=kind,
                job_ids=[job.job_id for job in pending],
                objects=[job.obj for job in pending],
                states=[states[job.job_id] for job in pending],
                wait_s=round(this, 1),
                waited_s=round(waited, 1),
                left_s=round(deadline.left(), 1),
            )
            self.sleep(this)
            waited += this
            wait = min(max(wait * 2, self.section.poll_seconds), self.section.poll_max_seconds)
            while pending:
                job = pending[0]
                self.guard(f"polling the {job.obj} Bulk {kind} job {job.job_id}")
                info = self.json_call("GET", f"jobs/{kind}/{job.job_id}")
                state = str(info.get("state"))
                states[job.job_id] = state
                if state not in _FINISHED:
                    break
                done[job.job_id] = info
                pending.pop(0)
                _log.info(
                    "salesforce.bulk_job_done",
                    job_id=job.job_id,
                    object=job.obj,
                    kind=kind,
                    state=state,
                    waited_s=round(waited, 1),
                )
                if kind == "query" and state != "JobComplete":
                    raise CrmError(
                        f"the Bulk {kind} job {job.job_id} for {job.obj} ended {state}: "
                        f"{log.one_line(str(info.get('errorMessage', '')))}"
                    )
            if pending and waited >= timeout:
                raise CrmError(
                    f"the {_what(kind, pending, states)} did not finish within {timeout:.0f} s; "
                    f"{'it was' if len(pending) == 1 else 'they were'} aborted"
                )


def _what(kind: str, pending: Sequence[Waiting], states: dict[str, str]) -> str:
    """`Bulk query job 750… for Task (state InProgress)`, or the same for several jobs."""
    jobs = ", ".join(f"{job.job_id} for {job.obj} (state {states[job.job_id]})" for job in pending)
    return f"Bulk {kind} job{'s' if len(pending) > 1 else ''} {jobs}"
