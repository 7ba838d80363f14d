"""SalesforceCrm: the CrmBackend for a Salesforce org, through a local mirror.

The mirror is a LocalCrm file with the same Contact/Task/Event tables. `prepare` pulls what changed since each
object's watermark (all of it the first time) into the mirror, then exposes the mirror's `crm_contact` /
`crm_activity` to the engine, which reads them exactly as it reads the local CRM. Windowed features stay right
because the mirror keeps the whole history and the engine recomputes from it on every run.

Watermarks (one per object, in the mirror's `_TrustLadderMeta`) move in the same transaction as the upsert
they cover, and are read from the org's clock, never this machine's: the org's time when it answered the pull's
first request (its `Date` header), the time by which the pull has seen every committed change; with no such
header, the newest SystemModstamp the pull saw. The next pull compares with `>=` from the watermark minus a small
overlap (`overlap_seconds`, for transactions still in flight then), so ties and late commits cause re-reads,
never losses, however wrong the local clock is, and a quiet org is not read again: its watermark moves on with
every run, not only with its newest change. A run that fails before the commit leaves the watermark where it
was, and the next run pulls the same window again. The Contact pull leaves out our own writes
(connector.crm.salesforce.own_writes).

Every run opens with one Composite call (connector.crm.salesforce.composite) that carries the describes due
(connector.crm.salesforce.remembered: they are kept for a day) and, for Contact, Task and Event, the count of a
full pull or the first page of an incremental one; a quiet run costs that call and nothing else, with the
optional objects' changes and deletions in one more.

The run has a deadline (`max_run_seconds`), asked between pages, batches and polls and capping every HTTP
timeout; when it stops early (deadline, budget, CRM down), the exception's `partial` says what it had written,
every record refused so far, and the API calls spent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import duckdb
import requests
from simple_salesforce.exceptions import SalesforceError

from connector import log
from connector.config import ActivitiesSection, Config, EngineSection, FieldsSection, SalesforceSection
from connector.crm import ApplyResult, FollowUpResult, RuleNeeds
from connector.crm import follow_ups as follow_up
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import (
    composite,
    details,
    follow_up_records,
    mirror,
    own_writes,
    remembered,
    retry,
    skipped,
    soql,
)
from connector.crm.salesforce import fields as sf_fields
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.jobs import error_text
from connector.crm.salesforce.limits import ApiUsage
from connector.crm.salesforce.pull import Opening, Puller, count_soql, open_pages, staging_table
from connector.crm.salesforce.push import Batch, Pusher
from connector.crm.salesforce.transport import SalesforceSession
from connector.deadline import Clock, Deadline
from connector.errors import ConfigError, CrmError, TrustLadderError

_log = log.get("trust_ladder.salesforce")


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
        self._describe: dict[str, Any] | None = None
        self._describe_remembered = False  # this run's Contact describe came from the mirror, not the org
        self._contact_pulled: dt.datetime | None = None  # the org's time of this run's Contact pull
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

    # -- describe and the fields check ------------------------------------------------------------------------

    def describe(self, *, refresh: bool = False) -> dict[str, Any]:
        """Contact's describe: the one the mirror remembers while it is less than a day old, else the org's (then
        remembered). `refresh`: the org's, whatever is remembered (`fields check`)."""
        if self._describe is not None and not (refresh and self._describe_remembered):
            return self._describe
        now = self.runtime.now()
        kept = None if refresh else remembered.contact_describe(self.mirror, now)
        if kept is not None:
            self._describe, self._describe_remembered = kept, True
            return kept
        self.usage.check("describing Contact")
        with salesforce_errors("describing Contact"):
            body = self.conn.sf.restful("sobjects/Contact/describe")
        self._describe, self._describe_remembered = (body if isinstance(body, dict) else {}), False
        remembered.keep_contact_describe(self.mirror, self._describe, now)
        return self._describe

    def refresh_describe(self) -> bool:
        """Read Contact's describe from the org again, unless this run already did; True when it did now. A
        remembered describe that finds a problem is checked against a fresh one before anything is refused."""
        if self._describe is not None and not self._describe_remembered:
            return False
        self.describe(refresh=True)
        _log.info("salesforce.describe_refreshed", object="Contact", reason="the remembered describe may be stale")
        return True

    def forget_describe(self) -> None:
        """After `fields deploy`: the next describe is the org's."""
        remembered.forget(self.mirror, remembered.CONTACT_DESCRIBE, remembered.CONTACT_DESCRIBED_AT)
        self._describe = None

    def picklist_values(self) -> dict[str, list[str]]:
        return sf_fields.picklist_values(self.describe(), self.fields)

    def check_fields(self, fields: FieldsSection, rules: RuleNeeds | None = None) -> list[str]:
        problems = sf_fields.check(self.describe(), fields, rules)
        if problems and self.refresh_describe():
            problems = sf_fields.check(self.describe(), fields, rules)
        return problems

    def usable_fields(self, fields: FieldsSection) -> FieldsSection:
        return fields.without(sf_fields.absent_optional(self.describe(), fields))

    def check_writable(self, fields: FieldsSection, rules: RuleNeeds | None = None) -> None:
        """Raise ConfigError, saying why, while the fields check finds anything: sync then writes nothing."""
        problems = self.check_fields(fields, rules if rules is not None else self._rules)
        if problems:
            raise ConfigError(
                "sync will not write to Salesforce while the fields check fails:\n  "
                + "\n  ".join(problems)
                + "\nRun `trust-ladder fields check` after fixing them."
            )

    # -- pull -------------------------------------------------------------------------------------------------

    def prepare(
        self, fields: FieldsSection, rules: RuleNeeds | None = None, activities: ActivitiesSection | None = None
    ) -> None:
        try:
            self._prepare(fields, rules, activities)
        except TrustLadderError as exc:
            exc.partial = ApplyResult(api_calls=self.api_calls)  # nothing written yet; the calls are spent
            raise

    def prepare_write(self, fields: FieldsSection) -> None:
        """Ready to write a plan computed from elsewhere (a warehouse copy), with no pull: the mirror, which keeps
        what was written, gets the trust columns."""
        self.fields = self.usable_fields(fields)
        self._ensure_columns(self.fields)

    def skipped_rows(self) -> list[skipped.SkippedRow]:
        """Every pulled activity this run set aside: (object, Id, reason), for a failures file."""
        return skipped.rows(self.con)

    def _prepare(self, fields: FieldsSection, rules: RuleNeeds | None, activities: ActivitiesSection | None) -> None:
        self._rules = rules
        self._require_fields(fields)
        fields = self.usable_fields(fields)  # pull only what the org has
        self.fields = fields
        self._ensure_columns(fields)
        wanted = soql.field_lists(fields, rules)
        if self.follow_ups:  # marked tasks are read from the mirror: it must know their owner and whether closed
            wanted["Task"] += [f for f in _FOLLOW_UP_TASK_FIELDS if f not in wanted["Task"]]
        skipped.reset(self.con)
        ctx = details.Context(self.conn, self.section, self.usage, self.puller, self.mirror, self.runtime.now())
        pulls = {obj: self._plan_pull(obj, wanted[obj]) for obj in soql.OBJECTS}
        subs = details.describe_subs(ctx) + [
            composite.query(obj, count_soql(p) if p.full else p.soql, include_deleted=p.include_deleted)
            for obj, p in pulls.items()
        ]
        with salesforce_errors("opening the pulls of Contact, Task and Event"):
            answers = composite.call(self.conn, self.usage, subs, doing="opening the pulls")
        org_time = self.conn.session.org_time
        self.mirror.set_meta(mirror.INSTANCE_URL_KEY, f"https://{self.conn.sf.sf_instance}")
        with salesforce_errors("describing emails and activity relations"):
            details.take_describes(ctx, answers)
        refused = {obj: a for obj in soql.OBJECTS if isinstance(a := answers[obj], SalesforceError)}
        for obj, answer in refused.items():
            self._refused(obj, answer)
        opened = {
            obj: (pull, Opening(cast("dict[str, Any]", answers[obj]), org_time, counted=pull.full))
            for obj, pull in pulls.items()
        }
        with salesforce_errors("opening the pulls of Contact, Task and Event"):
            openings = open_pages(self.puller, opened, doing="opening the pulls")
        for obj in soql.OBJECTS:  # Contacts first: the activities' WhoIds are checked against them
            self._pull(pulls[obj], openings[obj])
        with salesforce_errors("pulling emails and activity relations"):
            details.pull(ctx)
        self.mirror.prepare(fields, activities=activities)
        summary = skipped.summarise(self.con)
        self.skipped, self.skipped_by_reason, self.skipped_samples = summary
        for obj in details.OBJECTS:  # relations to contacts the mirror does not hold: they credit nobody
            if obj in self.mirror.skipped:
                self.skipped[obj] = self.mirror.skipped[obj]
                self.skipped_by_reason[obj] = {"unknown_contact": self.mirror.skipped[obj]}
                self.skipped_samples[obj] = self.mirror.skipped_samples[obj]
                _log.warning(
                    "salesforce.rows_skipped",
                    object=obj,
                    reason="unknown_contact",
                    count=self.mirror.skipped[obj],
                    ids=self.mirror.skipped_samples[obj],
                )

    def _require_fields(self, fields: FieldsSection) -> None:
        lacking = sf_fields.missing(self.describe(), fields)
        if lacking and self.refresh_describe():
            lacking = sf_fields.missing(self.describe(), fields)
        if lacking:
            raise ConfigError(
                f"the org's Contact has no field {', '.join(lacking)}; sync cannot read or write the trust fields. "
                "Run `trust-ladder fields check`, then `trust-ladder fields deploy`."
            )

    def _trust_types(self) -> dict[str, str]:
        return {name: mirror.TRUST_TYPES[logical] for logical, name in self.fields.owned().items()}

    def _ensure_columns(self, fields: FieldsSection) -> None:
        have = set(self.mirror.columns("Contact"))
        for logical, name in fields.owned().items():
            if name not in have:
                self.con.execute(f'ALTER TABLE "Contact" ADD COLUMN "{name}" {mirror.TRUST_TYPES[logical]}')

    def _plan_pull(self, obj: str, wanted: list[str]) -> soql.Pull:
        """The object's pull: incremental from its watermark less the overlap, leaving out our own writes (Contact),
        or full the first time and when the rules now read fields the mirror was not filled with."""
        mark = self.mirror.meta(f"salesforce.watermark.{obj}")
        pulled_before = json.loads(self.mirror.meta(f"salesforce.fields.{obj}") or "[]")
        if mark and set(wanted) <= set(pulled_before):
            since = dt.datetime.fromisoformat(mark) - dt.timedelta(seconds=self.section.overlap_seconds)
            also = own_writes.clause(own_writes.load(self.mirror), since) if obj == "Contact" else ""
            return soql.build(obj, list(wanted), since, also)
        if mark:
            _log.info(
                "salesforce.full_pull",
                object=obj,
                reason="the rules now use fields not pulled before",
                fields=sorted(set(wanted) - set(pulled_before)),
            )
        return soql.build(obj, list(wanted), None)

    def _refused(self, obj: str, answer: SalesforceError) -> None:
        """The org refused an object's opening query: a field it no longer has is named; else exit 6."""
        if obj == "Contact" and "INVALID_FIELD" in details.error_codes(answer):
            self.refresh_describe()  # a field gone since the describe was remembered: say which
            self._require_fields(self.fields)
        with salesforce_errors(f"pulling {obj}"):
            raise answer

    def _pull(self, pull: soql.Pull, opening: Opening) -> None:
        obj, fields = pull.obj, pull.fields
        mark_key, fields_key = f"salesforce.watermark.{obj}", f"salesforce.fields.{obj}"
        mark = self.mirror.meta(mark_key)
        with salesforce_errors(f"pulling {obj}"):
            rows, path, org_time = self.puller.run(self.con, pull, opening)
        stage = staging_table(obj)
        new_mark = mirror.watermark(mirror.newest(self.con, stage), org_time)
        self.con.execute("BEGIN TRANSACTION")
        try:
            if pull.full:
                self.con.execute(f'DELETE FROM "{obj}"')
            mirror.upsert(self.con, obj, stage, fields, self._trust_types() if obj == "Contact" else None)
            # This complete pull has seen every change the org had committed when it answered (the overlap covers
            # transactions still in flight then), so the org's time then is the new watermark, moved with the
            # upsert it covers.
            if new_mark is not None:
                self.mirror.set_meta(mark_key, new_mark.isoformat())
            self.mirror.set_meta(fields_key, json.dumps(sorted(fields)))
            if obj == "Contact" and new_mark is not None:
                own_writes.keep_from(self.mirror, new_mark - dt.timedelta(seconds=self.section.overlap_seconds))
            self.con.execute("COMMIT")
        except duckdb.Error:
            self.con.execute("ROLLBACK")
            raise
        if obj == "Contact":
            self._contact_pulled = org_time
        skipped.note(self.con, obj, stage, fields, None if pull.full or not mark else dt.datetime.fromisoformat(mark))
        _log.info(
            "salesforce.pulled",
            object=obj,
            rows=rows,
            path=path,
            full=pull.full,
            watermark=self.mirror.meta(mark_key),
            org_time=org_time.isoformat() if org_time else None,
        )

    # -- write back -------------------------------------------------------------------------------------------

    def apply(self, plan_table: str, fields: FieldsSection, rules_version: str) -> ApplyResult:
        self.check_writable(fields)
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
                    span = self._before_write(plan_table)
                    try:
                        for ok, failed in batches:
                            self._mirror_written(plan_table, ok, fields, rules_version)
                            result.changed += len(ok)
                            result.failures.extend(failed)
                    finally:
                        if span is not None and result.changed:
                            self._after_write(span)
            except TrustLadderError as exc:
                self._stopped(exc, result, "salesforce.write_stopped")
                raise
        result.api_calls = self.api_calls
        _log.info(
            "salesforce.written",
            changed=result.changed,
            failed=len(result.failures),
            api_calls=self.api_calls,
            org_used=self.usage.used,
            org_limit=self.usage.limit,
        )
        return result

    def _before_write(self, plan_table: str) -> own_writes.Span | None:
        """Just before the first write: which planned contacts someone else changed since this run's Contact pull
        (they are read back next run, whatever our write does to their stamps), and where our writes start by the
        org's clock. None when our writes cannot be told apart (no user Id, no pull this run)."""
        user, pulled = self.session.user_id, self._contact_pulled
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
        start = (self.session.org_time or pulled) - own_writes.SLACK
        return own_writes.Span(user, start, start, tuple(reread))

    def _after_write(self, span: own_writes.Span) -> None:
        end = (self.session.org_time or span.start) + own_writes.SLACK
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

    # -- follow-up tasks (connector.follow_up) -----------------------------------------------------------------

    def sync_follow_ups(self, desired_table: str) -> FollowUpResult:
        """The marked Tasks are read from the mirror (pulled with the other Tasks, incrementally); only what
        differs is sent, through sObject Collections: POST for new tasks, one PATCH stream for updates, closes
        and releases. What the org accepted goes into the mirror at once; refused records come back as failures
        and, since the mirror still differs, are planned again next run. Nothing to do costs no API call."""
        planned = follow_up.diff(self.con, desired_table)
        result = FollowUpResult()
        if planned.empty:
            return result
        _log.info(
            "salesforce.follow_ups",
            create=planned.create,
            update=planned.update,
            close=planned.close,
            release=planned.release,
        )
        creates, patches, kinds = follow_up_records.records(self.con)
        try:
            self._write_follow_ups(creates, patches, kinds, result)
        except TrustLadderError as exc:
            self._stopped(
                exc,
                ApplyResult(
                    changed=result.created + result.updated + result.closed + result.released, failures=result.failures
                ),
                "salesforce.follow_ups_stopped",
            )
            raise
        _log.info(
            "salesforce.follow_ups_written",
            created=result.created,
            updated=result.updated,
            closed=result.closed,
            released=result.released,
            failed=len(result.failures),
            api_calls=self.api_calls,
        )
        return result

    def _stopped(self, exc: TrustLadderError, done: ApplyResult, event: str) -> None:
        """The run stops early: the exception carries what was written, every refusal so far, the calls spent."""
        done.api_calls = self.api_calls
        exc.partial = done
        _log.warning(
            event, changed=done.changed, failed=len(done.failures), api_calls=done.api_calls, reason=type(exc).__name__
        )

    def _write_follow_ups(
        self,
        creates: list[tuple[str, dict[str, Any]]],
        patches: list[tuple[str, dict[str, Any]]],
        kinds: dict[str, str],
        result: FollowUpResult,
    ) -> None:
        with salesforce_errors("writing follow-up Tasks"):
            for saved in self.pusher.tasks("POST", creates):
                mirror.created_tasks(
                    self.con, [s for s in saved if s.id], self.runtime.now().astimezone(dt.UTC).replace(tzinfo=None)
                )
                result.created += sum(1 for s in saved if s.id)
                result.failures.extend(s.failure for s in saved if s.failure)
            for saved in self.pusher.tasks("PATCH", patches):
                mirror.patched_tasks(self.con, [s for s in saved if s.id])
                follow_up_records.tally(saved, kinds, result)


_FOLLOW_UP_TASK_FIELDS = ["OwnerId", "Status", "IsClosed"]


@contextlib.contextmanager
def salesforce_errors(doing: str) -> Iterator[None]:
    """simple-salesforce's and requests' exceptions become our CrmError (exit 6), saying what we were doing."""
    try:
        yield
    except SalesforceError as exc:
        content = exc.content
        body = json.dumps(content) if isinstance(content, list) else str(content)
        raise CrmError(
            log.redact(
                f"Salesforce refused the call while {doing}: HTTP {exc.status} from "
                f"{exc.resource_name or exc.url}: {error_text(body)}"
            )
        ) from None
    except requests.RequestException as exc:
        raise CrmError(f"could not reach Salesforce while {doing}: {type(exc).__name__}") from None
