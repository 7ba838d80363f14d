"""A run's pull into the mirror: plan each object's query, open them all at once, read their rows, commit each
with its watermark.

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
optional objects' changes and deletions (connector.crm.salesforce.details) in one more. The same first call asks
for the optional objects' approximate record counts when they have no watermark: one too large for REST goes to
a Bulk job uncounted, so a full sync of a large org makes no call for their counts. The REST pages of all six
objects then come five to a Composite call (connector.crm.salesforce.pages); the larger pulls are Bulk query jobs,
all created before any is waited on and polled together (connector.crm.salesforce.pull, `start_jobs`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, cast

import duckdb
from simple_salesforce.exceptions import SalesforceError

from connector import log, sql
from connector.config import ActivitiesSection, FieldsSection, SalesforceSection
from connector.crm import RuleNeeds
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import activity_fields, composite, details, mirror, own_writes, pages, skipped, soql
from connector.crm.salesforce import fields as sf_fields
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.describe_cache import ContactDescribe
from connector.crm.salesforce.limits import ApiUsage
from connector.crm.salesforce.pull import Opening, Puller, count_soql, staging_table
from connector.crm.salesforce.refusals import salesforce_errors

_log = log.get("trust_ladder.salesforce")

FOLLOW_UP_TASK_FIELDS = ["OwnerId", "Status", "IsClosed"]  # marked tasks are read from the mirror


@dataclass
class Skipped:
    """Pulled activities the engine cannot use (see `skipped`): per object, per object and reason, a sample."""

    counts: dict[str, int]
    by_reason: dict[str, dict[str, int]]
    samples: dict[str, list[str]]


def trust_types(fields: FieldsSection) -> dict[str, str]:
    return {name: mirror.TRUST_TYPES[logical] for logical, name in fields.owned().items()}


def ensure_columns(store: LocalCrm, fields: FieldsSection, extra: dict[str, str] | None = None) -> None:
    """The mirror's Contact gets a column for each trust field it lacks (renamed fields, a first run), and for each
    of `extra` (name: DuckDB type; the custom fields a contact_gone outcome reads)."""
    have = set(store.columns("Contact"))
    wanted = {name: mirror.TRUST_TYPES[logical] for logical, name in fields.owned().items()} | (extra or {})
    for name, typ in wanted.items():
        if name not in have:
            store.con.execute(f'ALTER TABLE "Contact" ADD COLUMN {sql.render(sql.ident(name))} {typ}')


class MirrorPull:
    def __init__(
        self,
        conn: Connection,
        section: SalesforceSection,
        usage: ApiUsage,
        puller: Puller,
        store: LocalCrm,
        describe: ContactDescribe,
    ) -> None:
        self.conn = conn
        self.section = section
        self.usage = usage
        self.puller = puller
        self.mirror = store
        self.con = store.con
        self.describe = describe
        self.contact_pulled: dt.datetime | None = None  # the org's time of this run's Contact pull
        self.gone_types: dict[str, str] = {}  # the contact_gone outcome's fields the sync user can see, typed

    def run(
        self,
        fields: FieldsSection,
        rules: RuleNeeds | None,
        *,
        follow_ups: bool,
        now: dt.datetime,
    ) -> None:
        """Bring the mirror up to date with the org."""
        self.describe.require(fields)
        described = self.describe.get()
        self.gone_types = sf_fields.gone_columns(described, rules)
        ensure_columns(self.mirror, fields, self.gone_types)
        wanted = soql.field_lists(fields, rules, account=sf_fields.sees_account(described), gone=self.gone_types)
        if follow_ups:  # marked tasks are read from the mirror: it must know their owner and whether closed
            wanted["Task"] += [f for f in FOLLOW_UP_TASK_FIELDS if f not in wanted["Task"]]
        skipped.reset(self.con)
        ctx = details.Context(self.conn, self.section, self.usage, self.puller, self.mirror, now)
        objects = soql.objects(rules)
        asked = wanted
        wanted = activity_fields.narrow(self.mirror, asked)
        pulls = {obj: self.plan(obj, wanted[obj]) for obj in objects}
        subs = (
            details.describe_subs(ctx)
            + details.estimate_subs(ctx)
            + activity_fields.describe_subs(self.mirror, asked, now)
            + [
                composite.query(obj, count_soql(p) if p.full else p.soql, include_deleted=p.include_deleted)
                for obj, p in pulls.items()
            ]
        )
        with salesforce_errors("opening the pulls of Contact, Task and Event"):
            answers = composite.call(self.conn, self.usage, subs, doing="opening the pulls")
        org_time = self.conn.session.org_time
        self.mirror.set_meta(mirror.INSTANCE_URL_KEY, f"https://{self.conn.sf.sf_instance}")  # the digest's links
        with salesforce_errors("describing emails and activity relations"):
            details.take_describes(ctx, answers)
        with salesforce_errors("describing Task and Event"):
            activity_fields.take(self.mirror, answers, asked, now)
        # A full pull reads its rows after this call: it names the optional fields the describes just listed.
        seen = activity_fields.narrow(self.mirror, asked)
        for obj in activity_fields.OBJECTS:
            if obj in pulls and pulls[obj].full and seen[obj] != pulls[obj].fields:
                pulls[obj] = soql.build(obj, list(seen[obj]), None)
        for obj in objects:
            answer = answers[obj]
            if isinstance(answer, SalesforceError):
                self._refused(obj, answer, fields)
        opened = {
            obj: (pull, Opening(cast("dict[str, Any]", answers[obj]), org_time, counted=pull.full))
            for obj, pull in pulls.items()
        }
        with salesforce_errors("opening the pulls of emails and activity relations"):
            extra = details.open_pulls(ctx, details.take_estimates(answers))
        every = opened | extra.pulls
        with salesforce_errors("reading the pages of the pulls"):
            openings = pages.fetch(self.puller, self.con, every, doing="reading the pages of the pulls")
        with salesforce_errors("running the Bulk query jobs"):  # all at once: the org works on them together
            openings = self.puller.start_jobs({key: (pull, openings[key]) for key, (pull, _) in every.items()})
        for obj in objects:  # Contacts first: the activities' WhoIds are checked against them
            self._commit(pulls[obj], openings[obj], fields)
        with salesforce_errors("pulling emails and activity relations"):
            details.take(ctx, extra, openings)

    def expose(self, fields: FieldsSection, activities: ActivitiesSection | None) -> Skipped:
        """The mirror's `crm_contact` / `crm_activity`; what the pull and the mirror set aside comes back."""
        self.mirror.prepare(fields, activities=activities)
        return self._skipped()

    def plan(self, obj: str, wanted: list[str]) -> soql.Pull:
        """The object's pull: incremental from its watermark less the overlap, leaving out our own writes (Contact),
        or full the first time and when it now reads fields the mirror was not filled with (the rules now read
        them; the account's name, on a mirror filled before names were pulled or once the sync user may see the
        contact's account)."""
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
                reason="the pull now reads fields not pulled before (the rules', or the account's name)",
                fields=sorted(set(wanted) - set(pulled_before)),
            )
        return soql.build(obj, list(wanted), None)

    def _refused(self, obj: str, answer: SalesforceError, fields: FieldsSection) -> None:
        """The org refused an object's opening query: a field it no longer has is named; else exit 6."""
        if obj == "Contact" and "INVALID_FIELD" in details.error_codes(answer):
            self.describe.refresh()  # a field gone since the describe was remembered: say which
            self.describe.require(fields)
        with salesforce_errors(f"pulling {obj}"):
            raise answer

    def _commit(self, pull: soql.Pull, opening: Opening, fields: FieldsSection) -> None:
        obj = pull.obj
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
            extra = trust_types(fields) | self.gone_types if obj == "Contact" else None
            mirror.upsert(self.con, obj, stage, pull.fields, extra)
            if obj == "Contact" and set(soql.ACCOUNT_FIELDS) <= set(pull.fields):
                mirror.accounts(self.con, stage, full=pull.full)
            # This complete pull has seen every change the org had committed when it answered (the overlap covers
            # transactions still in flight then), so the org's time then is the new watermark, moved with the
            # upsert it covers.
            if new_mark is not None:
                self.mirror.set_meta(mark_key, new_mark.isoformat())
            self.mirror.set_meta(fields_key, json.dumps(sorted(pull.fields)))
            if obj == "Contact" and new_mark is not None:
                own_writes.keep_from(self.mirror, new_mark - dt.timedelta(seconds=self.section.overlap_seconds))
            self.con.execute("COMMIT")
        except duckdb.Error:
            self.con.execute("ROLLBACK")
            raise
        if obj == "Contact":
            self.contact_pulled = org_time
        since = None if pull.full or not mark else dt.datetime.fromisoformat(mark)
        skipped.note(self.con, obj, stage, pull.fields, since)
        _log.info(
            "salesforce.pulled",
            object=obj,
            rows=rows,
            path=path,
            full=pull.full,
            watermark=self.mirror.meta(mark_key),
            org_time=org_time.isoformat() if org_time else None,
        )

    def _skipped(self) -> Skipped:
        out = Skipped(*skipped.summarise(self.con))
        for obj in details.OBJECTS:  # relations to contacts the mirror does not hold: they credit nobody
            if obj in self.mirror.skipped:
                out.counts[obj] = self.mirror.skipped[obj]
                out.by_reason[obj] = {"unknown_contact": self.mirror.skipped[obj]}
                out.samples[obj] = self.mirror.skipped_samples[obj]
                _log.warning(
                    "salesforce.rows_skipped",
                    object=obj,
                    reason="unknown_contact",
                    count=self.mirror.skipped[obj],
                    ids=self.mirror.skipped_samples[obj],
                )
        return out
