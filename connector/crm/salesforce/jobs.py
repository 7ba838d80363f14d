"""What every Salesforce REST and Bulk API 2.0 exchange shares: the connection, the budget, JSON calls, and
polling a Bulk job until it leaves its working states ("Get Information About a Query Job" / "... an Ingest
Job", Bulk API 2.0 Developer Guide).

A job is polled only while the run has time (`max_run_seconds`) and the job has not outlived
`job_timeout_seconds`; a job given up on, for whatever reason (the deadline, an error, Ctrl-C), is aborted
("Abort a Query Job", "Abort a Job": PATCH jobs/query|ingest/{id} with {"state": "Aborted"}), so nothing keeps
running in the org after the run has stopped.

Polls back off: the first comes `poll_seconds` (1 s) after the job is created, each later wait is twice the one
before, up to `poll_max_seconds` (30 s), so a job that takes ten minutes costs about 25 polls, not 300. Every wait
is logged (`salesforce.bulk_job_waiting`: the job, its state, this wait, the time waited so far and the run's time
left). A wait never runs past the run's deadline: the last one is shortened to leave time for one more poll, and
when there is not even that, the job is aborted and the run stops (exit 9).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests

from connector import log
from connector.config import SalesforceSection
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.limits import ApiUsage
from connector.errors import CrmError, TrustLadderError

_log = log.get("trust_ladder.salesforce")

_LAST_POLL_S = 1.0  # the time a last poll needs before the run's deadline
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
        """Poll until the job is done; a query job must complete, an ingest job may fail (its rows say why)."""
        with self.aborted_on_failure(kind, job_id, obj):
            info = self._poll(kind, job_id, obj)
        state = info.get("state")
        if state != "JobComplete" and kind == "query":
            raise CrmError(
                f"the Bulk {kind} job {job_id} for {obj} ended {state}: "
                f"{log.one_line(str(info.get('errorMessage', '')))}"
            )
        return info

    def _poll(self, kind: str, job_id: str, obj: str) -> dict[str, Any]:
        deadline = self.conn.session.deadline
        wait = self.section.poll_seconds
        waited = 0.0
        while True:
            self.guard(f"polling the {obj} Bulk {kind} job {job_id}")
            info = self.json_call("GET", f"jobs/{kind}/{job_id}")
            state = info.get("state")
            if state in ("JobComplete", "Failed", "Aborted"):
                _log.info(
                    "salesforce.bulk_job_done",
                    job_id=job_id,
                    object=obj,
                    kind=kind,
                    state=state,
                    waited_s=round(waited, 1),
                )
                return info
            if waited >= self.section.job_timeout_seconds:
                raise CrmError(
                    f"the Bulk {kind} job {job_id} for {obj} did not finish within "
                    f"{self.section.job_timeout_seconds:.0f} s (state {state}); it was aborted"
                )
            room = deadline.left() - _LAST_POLL_S
            if room <= 0:  # no time left for a wait and one more poll
                raise deadline.root().reached(f"the {obj} Bulk {kind} job {job_id} finished (state {state})")
            this = min(wait, room, max(self.section.job_timeout_seconds - waited, 0.0))
            _log.info(
                "salesforce.bulk_job_waiting",
                job_id=job_id,
                object=obj,
                kind=kind,
                state=state,
                wait_s=round(this, 1),
                waited_s=round(waited, 1),
                left_s=round(deadline.left(), 1),
            )
            self.sleep(this)
            waited += this
            wait = min(max(wait * 2, self.section.poll_seconds), self.section.poll_max_seconds)
