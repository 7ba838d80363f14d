"""SalesforceCrm: the CrmBackend for a Salesforce org, through a local mirror.

The mirror is a LocalCrm file with the same Contact/Task/Event tables. `prepare` pulls what changed since each
object's watermark (all of it the first time) into the mirror, then exposes the mirror's `crm_contact` /
`crm_activity` to the engine, which reads them exactly as it reads the local CRM. Windowed features stay right
because the mirror keeps the whole history and the engine recomputes from it on every run.

This module puts the run together; each job is done beside it: the run's pull and its watermarks
(`mirror_pull`, with `pages` and `pull` for REST pages and Bulk query jobs, `details` for the optional objects),
Contact's describe remembered for a day (`describe_cache`), the write back and our own writes (`write_back`),
the follow-up Tasks (`follow_up_sync`), and what a refusal becomes (`refusals`).

The run has a deadline (`max_run_seconds`), asked between pages, batches and polls and capping every HTTP
timeout; when it stops early (deadline, budget, CRM down), the exception's `partial` says what it had written,
every record refused so far, and the API calls spent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from connector.config import ActivitiesSection, Config, EngineSection, FieldsSection, SalesforceSection
from connector.crm import ApplyResult, FollowUpResult, RuleNeeds
from connector.crm.local import schema as local_schema
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import fields as sf_fields
from connector.crm.salesforce import follow_up_sync, retry, skipped
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.describe_cache import ContactDescribe
from connector.crm.salesforce.limits import ApiUsage
from connector.crm.salesforce.mirror_pull import MirrorPull, ensure_columns
from connector.crm.salesforce.pull import Puller
from connector.crm.salesforce.push import Pusher
from connector.crm.salesforce.transport import SalesforceSession
from connector.crm.salesforce.write_back import WriteBack
from connector.deadline import Clock, Deadline
from connector.errors import ConfigError, TrustLadderError


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    """What tests replace: the back-off and polling sleep, this machine's wall clock (stamps in the mirror only;
    watermarks come from the org's), the monotonic clock of the run's deadline, and a hook that may adjust the
    HTTP session (a proxy, a test double)."""

    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], dt.datetime] = _utcnow
    session: Callable[[SalesforceSession], None] | None = None
    clock: Clock = time.monotonic


RUNTIME = Runtime()


class SalesforceCrm:
    def __init__(
        self,
        section: SalesforceSection,
        fields: FieldsSection,
        mirror_path: Path,
        *,
        runtime: Runtime | None = None,
        follow_ups: bool = False,
    ) -> None:
        rt = runtime or RUNTIME
        self.section = section
        self.follow_ups = follow_ups  # pull what the follow-up Tasks need (owner, status) with the Tasks
        self.fields = fields
        self.runtime = rt
        self.mirror = LocalCrm.open(mirror_path) if mirror_path.exists() else LocalCrm.create(mirror_path)
        self.con: duckdb.DuckDBPyConnection = self.mirror.con
        for stmt in local_schema.ddl():  # a mirror from an earlier release gains the tables added since (deals)
            self.con.execute(stmt)
        self.usage = ApiUsage(fraction=section.budget_fraction)
        self.deadline = Deadline(section.max_run_seconds, clock=rt.clock, what="the run")
        self.session = SalesforceSession(
            usage=self.usage,
            timeout=section.timeout_seconds,
            connect_timeout=section.connect_timeout_seconds,
            call_seconds=section.retry_deadline_seconds,
            deadline=self.deadline,
            retrying=retry.policy(max_attempts=section.max_attempts, cap=section.max_wait_seconds, sleep=rt.sleep),
        )
        if rt.session is not None:
            rt.session(self.session)
        self.conn = Connection(section, self.session)
        self.puller = Puller(self.conn, section, self.usage, rt.sleep)
        self.pusher = Pusher(self.conn, section, self.usage, rt.sleep)
        self.contact_describe = ContactDescribe(self.conn, self.usage, self.mirror, rt.now)
        self.pulling = MirrorPull(self.conn, section, self.usage, self.puller, self.mirror, self.contact_describe)
        self.writing = WriteBack(self.conn, section, self.usage, self.pusher, self.mirror)
        self._rules: RuleNeeds | None = None
        # Pulled activities the engine cannot use (see `skipped`): per object, per object and reason, a sample.
        self.skipped: dict[str, int] = {}
        self.skipped_by_reason: dict[str, dict[str, int]] = {}
        self.skipped_samples: dict[str, list[str]] = {}

    @classmethod
    def from_config(cls, cfg: Config) -> SalesforceCrm:
        section = cfg.salesforce
        if section is None:
            raise ConfigError('a [salesforce] section is required when [crm] backend = "salesforce"')
        return cls(section, cfg.fields, cfg.resolve(section.mirror), follow_ups=cfg.follow_up.enabled)

    @property
    def api_calls(self) -> int:
        return self.session.calls

    @api_calls.setter
    def api_calls(self, value: int) -> None:
        self.session.calls = value

    def close(self) -> None:
        self.session.close()
        self.mirror.close()

    def tune(self, engine: EngineSection, resolve: Callable[[Path], Path]) -> None:
        self.mirror.tune(engine, resolve)

    # -- describe and the fields check (connector.crm.salesforce.describe_cache) -------------------------------

    def describe(self, *, refresh: bool = False) -> dict[str, Any]:
        return self.contact_describe.get(refresh=refresh)

    def refresh_describe(self) -> bool:
        return self.contact_describe.refresh()

    def forget_describe(self) -> None:
        self.contact_describe.forget()

    def picklist_values(self) -> dict[str, list[str]]:
        return sf_fields.picklist_values(self.describe(), self.fields)

    def check_fields(self, fields: FieldsSection, rules: RuleNeeds | None = None) -> list[str]:
        return self.contact_describe.problems(fields, rules)

    def check_writable(self, fields: FieldsSection, rules: RuleNeeds | None = None) -> None:
        """Raise ConfigError, saying why, while the fields check finds anything: sync then writes nothing."""
        problems = self.check_fields(fields, rules if rules is not None else self._rules)
        if problems:
            raise ConfigError(
                "sync will not write to Salesforce while the fields check fails:\n  "
                + "\n  ".join(problems)
                + "\nRun `trust-ladder fields check` after fixing them."
            )

    # -- pull (connector.crm.salesforce.mirror_pull) ------------------------------------------------------------

    def prepare(
        self, fields: FieldsSection, rules: RuleNeeds | None = None, activities: ActivitiesSection | None = None
    ) -> None:
        self.pull(fields, rules, activities)
        self.expose(fields, activities)

    def pull(
        self, fields: FieldsSection, rules: RuleNeeds | None = None, activities: ActivitiesSection | None = None
    ) -> None:
        """What changed in the org since each watermark, into the mirror."""
        del activities  # the date policy is the exposure's
        self._rules = rules
        try:
            self.fields = fields = self.usable_fields(fields)  # pull only what the org has
            self.pulling.run(fields, rules, follow_ups=self.follow_ups, now=self.runtime.now())
        except TrustLadderError as exc:
            exc.partial = ApplyResult(api_calls=self.api_calls)  # nothing written yet; the calls are spent
            raise

    def expose(self, fields: FieldsSection, activities: ActivitiesSection | None = None) -> None:
        """The mirror's `crm_contact` / `crm_activity`, and what this run's pull and the mirror set aside."""
        found = self.pulling.expose(fields, activities)
        self.skipped, self.skipped_by_reason, self.skipped_samples = found.counts, found.by_reason, found.samples

    def activities_of(self, only: str | None) -> exp.Expr:
        return self.mirror.activities_of(only)

    def usable_fields(self, fields: FieldsSection) -> FieldsSection:
        return fields.without(sf_fields.absent_optional(self.describe(), fields))

    def signature(self) -> str:
        """The mirror's digest (LocalCrm.signature): it moves with every pulled change and every write; and the
        fields each object was last pulled with, since a full pull that brings a field the sync user could not see
        before (Trust_Listening__c once deployed) changes values without changing any row's stamp."""
        pulled = [self.mirror.meta(f"salesforce.fields.{obj}") or "" for obj in ("Contact", "Task", "Event")]
        return hashlib.sha256("|".join([self.mirror.signature(), *pulled]).encode()).hexdigest()

    def prepare_write(self, fields: FieldsSection) -> None:
        """Ready to write a plan computed from elsewhere (a warehouse copy), with no pull: the mirror, which keeps
        what was written, gets the trust columns."""
        self.fields = self.usable_fields(fields)
        ensure_columns(self.mirror, self.fields)

    def skipped_rows(self) -> list[skipped.SkippedRow]:
        """Every pulled activity this run set aside: (object, Id, reason), for a failures file."""
        return skipped.rows(self.con)

    # -- write back (connector.crm.salesforce.write_back, follow_up_sync) -----------------------------------------

    def apply(self, plan_table: str, fields: FieldsSection, rules_version: str) -> ApplyResult:
        self.check_writable(fields)
        return self.writing.apply(plan_table, fields, rules_version, self.pulling.contact_pulled)

    def sync_follow_ups(self, desired_table: str) -> FollowUpResult:
        return follow_up_sync.sync(
            self.con, self.pusher, desired_table, now=self.runtime.now, calls=lambda: self.api_calls
        )
