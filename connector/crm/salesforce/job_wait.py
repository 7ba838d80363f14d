"""Waiting for Bulk API 2.0 jobs created together, on one back-off, with as few polls as the API allows.

The org works on a run's jobs at the same time, so they are created first and waited on together: one series of
waits serves them all. Polls back off: the first comes `poll_seconds` (1 s) after the jobs are created (a job is
never done the moment it is created), each later wait is twice the one before, up to `poll_max_seconds` (30 s),
so a job that takes ten minutes costs about 25 polls, not 300. Every wait is logged (`salesforce.bulk_job_waiting`:
the jobs still working, their objects and last states, this wait, the time waited so far and the run's time left).
A wait never runs past the run's deadline: the last one is shortened to leave time for one more poll, and when
there is not even that, the run stops (exit 9) and the jobs are aborted (connector.crm.salesforce.jobs). Jobs
still working after `job_timeout_seconds` of waiting are given up on the same way.

What a poll costs. Neither Composite nor Composite Batch can carry a Bulk API 2.0 request ("Send Multiple Requests
Using Composite" lists the sObject, Query, QueryAll and sObject Collections resources; "Composite Batch" adds
Limits, Search, Connect, Chatter and Actions; neither has jobs/), so each request about a job is a call of its own.
Two ways keep their number down:
- Several query jobs: "Get Information About All Query Jobs" (GET jobs/query?jobType=V2Query) answers the state of
  every Bulk API 2.0 query job of the org in one call, up to 1,000 a page "in an indeterminate order". In an org
  with fewer such jobs kept, ours are all on that page and one call a wait follows all of them. Where one of ours
  is missing (a busy org) or the call is refused, the wait logs `salesforce.bulk_job_list_unused` and goes on with
  the jobs one at a time; the list is not asked again in that wait. The list's JobInfo has no errorMessage: a job
  it shows Failed is read alone for the message.
- One at a time: after each wait the jobs still working are asked about smallest first, and the round ends at the
  first one still working: a larger job started no earlier is rarely done before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from connector import log
from connector.errors import CrmError

if TYPE_CHECKING:
    from connector.crm.salesforce.jobs import BulkClient

_log = log.get("trust_ladder.salesforce")

_FINISHED = ("JobComplete", "Failed", "Aborted")
_LAST_POLL_S = 1.0  # the time a last poll needs before the run's deadline


class Waiting(NamedTuple):
    """A job being waited on: its Id, object, the rows it is expected to hold (the smallest is asked about
    first) and its state when created."""

    job_id: str
    obj: str
    rows: int = 0
    state: str = "UploadComplete"


class JobWait:
    """One wait for `jobs` of one kind; each job's last JobInfo lands in `done` as it finishes."""

    def __init__(self, client: BulkClient, kind: str, jobs: Sequence[Waiting], done: dict[str, dict[str, Any]]) -> None:
        self.client = client
        self.kind = kind
        self.done = done
        order = sorted(range(len(jobs)), key=lambda i: (jobs[i].rows, i))
        self.pending = [jobs[i] for i in order]
        self.states = {job.job_id: job.state for job in jobs}
        self.use_list = kind == "query" and len(jobs) > 1

    def run(self) -> None:
        section = self.client.section
        deadline = self.client.conn.session.deadline
        timeout = section.job_timeout_seconds
        wait = section.poll_seconds
        waited = 0.0
        while self.pending:
            room = deadline.left() - _LAST_POLL_S
            if room <= 0:  # no time left for a wait and one more poll
                raise deadline.root().reached(f"the {self._what()} finished")
            this = min(wait, room, max(timeout - waited, 0.0))
            _log.info(
                "salesforce.bulk_job_waiting",
                kind=self.kind,
                job_ids=[job.job_id for job in self.pending],
                objects=[job.obj for job in self.pending],
                states=[self.states[job.job_id] for job in self.pending],
                wait_s=round(this, 1),
                waited_s=round(waited, 1),
                left_s=round(deadline.left(), 1),
            )
            self.client.sleep(this)
            waited += this
            wait = min(max(wait * 2, section.poll_seconds), section.poll_max_seconds)
            self._round(waited)
            if self.pending and waited >= timeout:
                raise CrmError(
                    f"the {self._what()} did not finish within {timeout:.0f} s; "
                    f"{'it was' if len(self.pending) == 1 else 'they were'} aborted"
                )

    def _round(self, waited: float) -> None:
        """One poll round: the list, when it holds all our jobs still working; else one job at a time."""
        if self.use_list and len(self.pending) > 1:
            listed = self._listed()
            if listed is not None:
                for job in list(self.pending):
                    self._seen(job, listed[job.job_id], waited)
                return
        while self.pending:
            job = self.pending[0]
            if not self._seen(job, self._get(job), waited):
                break

    def _get(self, job: Waiting) -> dict[str, Any]:
        self.client.guard(f"polling the {job.obj} Bulk {self.kind} job {job.job_id}")
        return self.client.json_call("GET", f"jobs/{self.kind}/{job.job_id}")

    def _listed(self) -> dict[str, dict[str, Any]] | None:
        """The first page of "Get Information About All Query Jobs", by job Id, when it holds every job still
        working; else None (and the list is not asked again in this wait)."""
        client = self.client
        client.guard(f"polling the Bulk query jobs of {', '.join(job.obj for job in self.pending)}")
        resp = client.conn.session.request(
            "GET", client.url("jobs/query"), params={"jobType": "V2Query"}, headers=client.conn.headers()
        )
        reason = None
        records: dict[str, dict[str, Any]] = {}
        if resp.status_code >= 300:
            reason = f"Salesforce answered {resp.status_code}"
        else:
            body = resp.json()
            rows = body.get("records", []) if isinstance(body, dict) else []
            records = {str(r.get("id")): r for r in rows if isinstance(r, dict)}
            missing = [job.obj for job in self.pending if job.job_id not in records]
            if missing:
                reason = f"the jobs of {', '.join(missing)} are not among the {len(records)} it listed first"
        if reason is None:
            return records
        self.use_list = False
        _log.info(
            "salesforce.bulk_job_list_unused",
            reason=reason,
            effect="each job is asked about on its own for the rest of this wait",
        )
        return None

    def _seen(self, job: Waiting, info: dict[str, Any], waited: float) -> bool:
        """Take a job's JobInfo: True when the job is done. A query job that did not complete stops the wait."""
        state = str(info.get("state"))
        self.states[job.job_id] = state
        if state not in _FINISHED:
            return False
        if self.kind == "query" and state != "JobComplete" and "errorMessage" not in info:
            info = self._get(job)  # the list's JobInfo carries no errorMessage
        self.done[job.job_id] = info
        self.pending.remove(job)
        _log.info(
            "salesforce.bulk_job_done",
            job_id=job.job_id,
            object=job.obj,
            kind=self.kind,
            state=state,
            waited_s=round(waited, 1),
        )
        if self.kind == "query" and state != "JobComplete":
            raise CrmError(
                f"the Bulk {self.kind} job {job.job_id} for {job.obj} ended {state}: "
                f"{log.one_line(str(info.get('errorMessage', '')))}"
            )
        return True

    def _what(self) -> str:
        """`Bulk query job 750… for Task (state InProgress)`, or the same for several jobs."""
        jobs = ", ".join(f"{job.job_id} for {job.obj} (state {self.states[job.job_id]})" for job in self.pending)
        return f"Bulk {self.kind} job{'s' if len(self.pending) > 1 else ''} {jobs}"
