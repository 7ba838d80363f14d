"""What every Salesforce REST and Bulk API 2.0 exchange shares: the connection, the budget, JSON calls, waiting
for Bulk jobs (connector.crm.salesforce.job_wait) and aborting them.

A job given up on, for whatever reason (the deadline, `job_timeout_seconds`, an error, Ctrl-C, another job of the
same wait that failed), is aborted ("Abort a Query Job", "Abort a Job": PATCH jobs/query|ingest/{id} with
{"state": "Aborted"}), so nothing keeps running in the org after the run has stopped.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

from connector import log
from connector.config import SalesforceSection
from connector.crm.salesforce import job_wait
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.job_wait import Waiting
from connector.crm.salesforce.limits import ApiUsage
from connector.errors import CrmError, TrustLadderError

_log = log.get("trust_ladder.salesforce")

_ABORT_GRACE_S = 15.0  # aborting a job may run this far past the run's deadline
_RAW_BODY_CHARS = 2000  # a body that is not a Salesforce error array (an HTML page) is cut here, and says so


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

    def url(self, path: str) -> str:
        return f"{self.conn.base_url}{path}"

    def json_call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = self.conn.session.request(method, self.url(path), headers=self.conn.headers(), **kwargs)
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
                    "PATCH", self.url(f"jobs/{kind}/{job_id}"), json={"state": "Aborted"}, headers=self.conn.headers()
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
        """Poll one job until it is done (connector.crm.salesforce.job_wait)."""
        return self.wait_for_jobs(kind, [Waiting(job_id, obj)])[job_id]

    def wait_for_jobs(self, kind: str, jobs: Sequence[Waiting]) -> dict[str, dict[str, Any]]:
        """Poll jobs created together until every one is done, on one back-off (connector.crm.salesforce.job_wait):
        a query job must complete, an ingest job may fail (its rows say why). Whatever ends the wait early aborts
        the jobs not yet done. Answers each job's last JobInfo, by Id."""
        done: dict[str, dict[str, Any]] = {}
        try:
            job_wait.JobWait(self, kind, jobs, done).run()
        except BaseException as exc:
            for job in jobs:
                if job.job_id not in done:
                    self.abort(kind, job.job_id, job.obj, reason=type(exc).__name__)
            raise
        return done
