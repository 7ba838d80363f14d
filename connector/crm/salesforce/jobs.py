"""What every Salesforce REST and Bulk API 2.0 exchange shares: the connection, the budget, JSON calls, and
polling a Bulk job until it leaves its working states ("Get Information About a Query Job" / "... an Ingest
Job", Bulk API 2.0 Developer Guide)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from connector.config import SalesforceSection
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.limits import ApiUsage
from connector.errors import CrmError


def raise_for(resp: Any, what: str) -> None:
    if resp.status_code >= 300:
        detail = resp.text[:300] if resp.text else ""
        raise CrmError(f"Salesforce answered {resp.status_code} to {what}: {detail}")


class BulkClient:
    def __init__(self, conn: Connection, section: SalesforceSection, usage: ApiUsage,
                 sleep: Callable[[float], None], temp_dir: Path | None = None) -> None:
        self.conn = conn
        self.section = section
        self.usage = usage
        self.sleep = sleep
        self.temp_dir = temp_dir

    def _url(self, path: str) -> str:
        return f"{self.conn.base_url}{path}"

    def json_call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = self.conn.session.request(method, self._url(path), headers=self.conn.headers(), **kwargs)
        raise_for(resp, f"{method} {path}")
        body: dict[str, Any] = resp.json()
        return body

    def wait_for_job(self, kind: str, job_id: str, obj: str) -> dict[str, Any]:
        """Poll until the job is done; a query job must complete, an ingest job may fail (its rows say why)."""
        waited = 0.0
        while True:
            self.usage.check(f"polling the {obj} Bulk job")
            info = self.json_call("GET", f"jobs/{kind}/{job_id}")
            state = info.get("state")
            if state == "JobComplete" or (kind == "ingest" and state in ("Failed", "Aborted")):
                return info
            if state in ("Failed", "Aborted"):
                raise CrmError(f"the Bulk {kind} job {job_id} for {obj} ended {state}: {info.get('errorMessage', '')}")
            if waited >= self.section.job_timeout_seconds:
                raise CrmError(f"the Bulk {kind} job {job_id} for {obj} did not finish within "
                               f"{self.section.job_timeout_seconds:.0f} s (state {state})")
            self.sleep(self.section.poll_seconds)
            waited += self.section.poll_seconds
