"""Writing the plan back to the org's Contacts, and keeping the mirror and the record of our own writes in step.

sObject Collections for a few hundred contacts, a Bulk ingest job above `bulk_write_threshold`
(connector.crm.salesforce.push). What the org accepted goes into the mirror at once, so the next diff is right
before the next pull. Around the first write, the span of org time our writes take is kept
(connector.crm.salesforce.own_writes), so the next pull leaves them out; contacts someone else changed since this
run's pull are named and read back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from connector import log
from connector.config import FieldsSection, SalesforceSection
from connector.crm import ApplyResult
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import own_writes
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.limits import ApiUsage
from connector.crm.salesforce.push import Batch, Pusher
from connector.crm.salesforce.refusals import salesforce_errors, stopped
from connector.errors import TrustLadderError

_log = log.get("trust_ladder.salesforce")


class WriteBack:
    def __init__(
        self, conn: Connection, section: SalesforceSection, usage: ApiUsage, pusher: Pusher, store: LocalCrm
    ) -> None:
        self.conn = conn
        self.section = section
        self.usage = usage
        self.pusher = pusher
        self.mirror = store
        self.con = store.con

    def apply(
        self, plan_table: str, fields: FieldsSection, rules_version: str, contact_pulled: dt.datetime | None
    ) -> ApplyResult:
        """Write the planned contacts; `contact_pulled`: the org's time of this run's Contact pull, if any."""
        planned = int(self.con.execute(f"SELECT count(*) FROM {plan_table}").fetchone()[0])  # type: ignore[index]
        result = ApplyResult()
        if planned:
            bulk = planned > self.section.bulk_write_threshold
            _log.info("salesforce.writing", contacts=planned, path="bulk" if bulk else "collections")
            batches: Iterator[Batch] = (self.pusher.bulk if bulk else self.pusher.collections)(
                self.con, plan_table, fields, rules_version
            )
            try:
                with salesforce_errors("writing Contacts"):
                    span = self.before_write(plan_table, contact_pulled)
                    try:
                        for ok, failed in batches:
                            self._mirror_written(plan_table, ok, fields, rules_version)
                            result.changed += len(ok)
                            result.failures.extend(failed)
                    finally:
                        if span is not None and result.changed:
                            self._after_write(span)
            except TrustLadderError as exc:
                stopped(exc, result, self.conn.session.calls, "salesforce.write_stopped")
                raise
        result.api_calls = self.conn.session.calls
        _log.info(
            "salesforce.written",
            changed=result.changed,
            failed=len(result.failures),
            api_calls=result.api_calls,
            org_used=self.usage.used,
            org_limit=self.usage.limit,
        )
        return result

    def before_write(self, plan_table: str, pulled: dt.datetime | None) -> own_writes.Span | None:
        """Just before the first write: which planned contacts someone else changed since this run's Contact pull
        (they are read back next run, whatever our write does to their stamps), and where our writes start by the
        org's clock. None when our writes cannot be told apart (no user Id, no pull this run)."""
        user = self.conn.session.user_id
        if user is None or pulled is None:
            return None
        since = pulled - dt.timedelta(seconds=self.section.overlap_seconds)
        self.usage.check("checking for contacts changed since the pull")
        changed = {str(r["Id"]) for r in self.conn.sf.query_all_iter(own_writes.changed_by_others(user, since))}
        if changed:
            self.con.execute(
                "CREATE OR REPLACE TEMP TABLE sf_changed AS SELECT unnest(?::VARCHAR[]) AS cid", [sorted(changed)]
            )
            reread = sorted(
                str(r[0])
                for r in self.con.execute(f"SELECT cid FROM {plan_table} JOIN sf_changed USING (cid)").fetchall()
            )
        else:
            reread = []
        if reread:
            _log.info(
                "salesforce.changed_since_pull", contacts=len(reread), ids=reread[:20], effect="read back next run"
            )
        if len(reread) > own_writes.MAX_REREAD:
            return None  # too many to name: this write's rows are all read back
        start = (self.conn.session.org_time or pulled) - own_writes.SLACK
        return own_writes.Span(user, start, start, tuple(reread))

    def _after_write(self, span: own_writes.Span) -> None:
        end = (self.conn.session.org_time or span.start) + own_writes.SLACK
        own_writes.add(self.mirror, own_writes.Span(span.user, span.start, end, span.reread))

    def _mirror_written(self, plan_table: str, ok: list[str], fields: FieldsSection, rules_version: str) -> None:
        """What Salesforce accepted goes into the mirror at once, so the next diff is right before the next pull."""
        if not ok:
            return
        self.con.execute("CREATE OR REPLACE TEMP TABLE sf_written AS SELECT unnest(?::VARCHAR[]) AS cid", [ok])
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE sf_plan_written AS SELECT p.* FROM {plan_table} p "
            "JOIN sf_written w USING (cid)"
        )
        self.mirror.apply("sf_plan_written", fields, rules_version)
