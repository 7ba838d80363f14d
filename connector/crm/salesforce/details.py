"""Pull the objects that say who took part in an activity and in which direction: EmailMessage (the Enhanced
Email behind an email Task), TaskRelation and EventRelation (Shared Activities' people and Event invitees).

What is read, and why:
- `EmailMessage` rows linked to a Task (`ActivityId != null`); `TaskRelation` and `EventRelation` rows of people
  (`IsWhat = false`). Relations go through plain REST query or, above `bulk_read_threshold`, a Bulk API 2.0 query
  job: both objects support Bulk query. `TaskWhoRelation`/`EventWhoRelation` do not, and Bulk rejects the
  parent-child subquery `(SELECT RelationId FROM TaskWhoRelations)`, so neither is used.
- The fields are the vocabulary's (connector.vocabulary), as far as the object's describe lists them: a field the
  sync user cannot see (field-level security), or that the org's API version lacks (EventRelation.IsWhat without
  Shared Activities, EmailMessage.ReplyToEmailMessageId in old versions), is pulled as NULL. The describe is kept
  in the mirror and read again after a day (in the same Composite call as the run's first queries, see
  connector.crm.salesforce.composite): a field list that changed means a full pull of the object. An incremental
  query refused for a field (INVALID_FIELD: its access was taken away) describes it again and pulls it in full.
- An org without Enhanced Email or Shared Activities has no such object (describe: NOT_FOUND, query:
  INVALID_TYPE): it is skipped with one `salesforce.object_unavailable` line and the run goes on; activities are
  then read from Task and Event alone. That answer is remembered for a day (`remembered.FRESH`), so such an org
  pays for the question once a day, not once a run.
- Each run asks for every available object's changes and deletions in one Composite call: a query (or, for a
  full pull, a COUNT()) and a getDeleted list per object, counted as a single API call.
- A full pull needs its count only to choose REST pages or a Bulk query job. The run's first Composite call also
  asks "Record Count" (`limits/recordCount?sObjects=...`, REST API Developer Guide) for the objects with no
  watermark that it also describes (so a count is used only for an object the same call found): a non-query
  subrequest, so it fits beside Contact's, Task's and Event's three queries where the
  optional objects' three would not (5 queries a call). That count is approximate (a cached snapshot, all live rows
  of the object, no filter); an object it puts above `bulk_read_threshold` goes straight to a Bulk query job, which
  reads every row whatever the snapshot said. The others, and every object when the resource is refused (it needs
  "View Setup and Configuration"), are counted exactly as before. A stale snapshot costs calls, never rows: too
  high, a small object takes a job (2 calls) where REST pages might have taken one; too low, the COUNT() says Bulk.

Changes and deletions. Each object has its own org-clock watermark, as Contact, Task and Event do (see
connector.crm.salesforce.backend). Changed rows are re-read with `SystemModstamp >= watermark - overlap` through
`query` (live rows). Deleted rows come from the getDeleted resource (`sobjects/<object>/deleted/?start=&end=`)
over the same window, because `IsDeleted` cannot be trusted for relations: a directly deleted TaskRelation
never reaches the Recycle Bin, and the Object Reference says not to use IsDeleted or queryAll to find it.
getDeleted serves only the last 30 days, so a watermark older than `GETDELETED_DAYS` (a sync paused for a month),
or an INVALID_REPLICATION_DATE answer, turns the pull into a full one that replaces the object's rows. Rows of
deleted Tasks and Events need nothing: `crm_activity` joins relations and emails to live activities only.
The upsert, the deletions and the new watermark are committed in one transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import duckdb
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.format import format_soql

from connector import log, vocabulary
from connector.config import SalesforceSection
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import composite, mirror, remembered
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.limits import ApiUsage
from connector.crm.salesforce.pull import Opening, Puller, count_soql, staging_table
from connector.crm.salesforce.soql import Pull

_log = log.get("trust_ladder.salesforce")

OBJECTS = vocabulary.ACTIVITY_DETAIL_OBJECTS
GETDELETED_DAYS = 29  # getDeleted answers for the last 30 days; an older watermark means a full pull
_UNAVAILABLE = {"INVALID_TYPE", "NOT_FOUND"}
# What a pull of each object keeps: the rows that can matter to an activity.
_FILTER = {"EmailMessage": "ActivityId != null", "TaskRelation": "IsWhat = false", "EventRelation": "IsWhat = false"}
RECORD_COUNT = "record_counts"  # the reference of the Record Count subrequest in the run's first Composite call


@dataclass
class Context:
    conn: Connection
    section: SalesforceSection
    usage: ApiUsage
    puller: Puller
    mirror: LocalCrm
    now: dt.datetime  # this machine's clock: how old a remembered describe is (watermarks use the org's)


class _Unavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _keys(obj: str) -> tuple[str, str, str]:
    return f"salesforce.watermark.{obj}", f"salesforce.fields.{obj}", f"salesforce.describe.{obj}"


def _described_at(obj: str) -> str:
    return f"salesforce.described_at.{obj}"


def _unavailable_key(obj: str) -> str:
    return f"salesforce.unavailable.{obj}"


def _forget(ctx: Context, obj: str) -> None:
    """No watermark and no describe: the next pull of this object is a full one, with a fresh describe."""
    remembered.forget(ctx.mirror, *_keys(obj), _described_at(obj))


def error_codes(exc: SalesforceError) -> set[str]:
    content = exc.content
    if isinstance(content, list):
        return {str(e.get("errorCode")) for e in content if isinstance(e, dict)}
    return set()


def _is_unavailable(exc: SalesforceError) -> bool:
    return exc.status == 404 or bool(error_codes(exc) & _UNAVAILABLE)


def describe_subs(ctx: Context) -> list[composite.Sub]:
    """The describes this run needs (none remembered, or a day old), for the run's first Composite call. An object
    the org was found to lack less than a day ago is not asked about."""
    subs = []
    for obj in OBJECTS:
        if remembered.fresh(ctx.mirror, _unavailable_key(obj), ctx.now):
            continue
        if ctx.mirror.meta(_keys(obj)[2]) and remembered.fresh(ctx.mirror, _described_at(obj), ctx.now):
            continue
        subs.append(composite.Sub(f"describe_{obj}", f"sobjects/{obj}/describe"))
    return subs


def take_describes(ctx: Context, answers: dict[str, composite.Answer]) -> None:
    """Keep what the describes in `answers` say: the fields of each object, or that the org lacks it."""
    for obj in OBJECTS:
        answer = answers.get(f"describe_{obj}")
        if answer is None:
            continue
        if isinstance(answer, SalesforceError):
            if not _is_unavailable(answer):
                raise answer
            _unavailable(ctx, obj, "the org has no such object the sync user can read")
            continue
        _keep_fields(ctx, obj, _fields(obj, answer))


def estimate_subs(ctx: Context) -> list[composite.Sub]:
    """The Record Count subrequest for the run's first Composite call: the approximate size of every object that
    has no watermark (a first pull, or one forgotten) and is described in that same call (`describe_subs`), so the
    org is known to have it, with the fields its job will name, when the count is used. None when each has a
    watermark: an incremental pull reads its changes through a query whatever the object's size."""
    described = {sub.ref.removeprefix("describe_") for sub in describe_subs(ctx)}
    wanted = [obj for obj in OBJECTS if obj in described and not ctx.mirror.meta(_keys(obj)[0])]
    if not wanted:
        return []
    return [composite.Sub(RECORD_COUNT, "limits/recordCount", {"sObjects": ",".join(wanted)})]


def take_estimates(answers: dict[str, composite.Answer]) -> dict[str, int]:
    """Each object's approximate count from the Record Count answer, for the objects whose describe in the same
    call found them; none when it was not asked or was refused (then every full pull is counted with COUNT(), as
    it would be without the resource)."""
    answer = answers.get(RECORD_COUNT)
    if answer is None:
        return {}
    if isinstance(answer, SalesforceError):
        _log.info(
            "salesforce.record_count_refused",
            status=answer.status,
            codes=sorted(error_codes(answer)),
            effect="the optional objects are counted with COUNT() queries, one Composite call more",
        )
        return {}
    found = {obj for obj in OBJECTS if isinstance(answers.get(f"describe_{obj}"), dict)}
    out: dict[str, int] = {}
    for item in answer.get("sObjects", []):
        if isinstance(item, dict) and item.get("name") in found and isinstance(item.get("count"), int):
            out[str(item["name"])] = int(item["count"])
    return out


def _fields(obj: str, body: dict[str, Any]) -> list[str]:
    """The vocabulary's fields of `obj` that its describe lists (queryable by the sync user)."""
    listed = {str(f.get("name")) for f in body.get("fields", []) if isinstance(f, dict)}
    hidden = [c for c in vocabulary.column_names(obj) if c not in listed]
    if hidden:
        _log.info("salesforce.fields_hidden", object=obj, fields=hidden, effect="pulled as NULL")
    return [c for c in vocabulary.column_names(obj) if c in listed]


def _keep_fields(ctx: Context, obj: str, fields: list[str]) -> None:
    _, _, describe_key = _keys(obj)
    before = ctx.mirror.meta(describe_key)
    if before is not None and json.loads(before) != fields:
        _log.info("salesforce.full_pull", object=obj, reason="the fields the sync user can read have changed")
        _forget(ctx, obj)
    remembered.forget(ctx.mirror, _unavailable_key(obj))
    ctx.mirror.set_meta(describe_key, json.dumps(fields))
    ctx.mirror.set_meta(_described_at(obj), ctx.now.isoformat())


def _unavailable(ctx: Context, obj: str, reason: str) -> None:
    _forget(ctx, obj)
    ctx.mirror.con.execute(f'DELETE FROM "{obj}"')
    ctx.mirror.set_meta(_unavailable_key(obj), ctx.now.isoformat())
    _log.info(
        "salesforce.object_unavailable",
        object=obj,
        reason=reason,
        effect="activities are read without it",
        next_check="in a day",
    )


def _describe(ctx: Context, obj: str) -> list[str]:
    """Describe `obj` alone (after a refusal that says its fields changed)."""
    ctx.usage.check(f"describing {obj}")
    try:
        body = ctx.conn.sf.restful(f"sobjects/{obj}/describe")
    except SalesforceError as exc:
        if _is_unavailable(exc):
            raise _Unavailable(f"the org has no {obj} the sync user can read") from None
        raise
    fields = _fields(obj, body if isinstance(body, dict) else {})
    _keep_fields(ctx, obj, fields)
    return fields


def build(obj: str, fields: list[str], since: dt.datetime | None) -> Pull:
    """The SOQL of one pull: rows that matter (`_FILTER`, when the field is there), changed since `since`."""
    where = [_FILTER[obj]] if _FILTER[obj].split()[0] in fields else []
    soql = f"SELECT {', '.join(fields)} FROM {obj}" + (f" WHERE {' AND '.join(where)}" if where else "")
    if since is not None:
        soql += (" AND " if where else " WHERE ") + format_soql("SystemModstamp >= {since}", since=since)
    return Pull(obj, fields, soql, include_deleted=False, full=since is None)


def _since(ctx: Context, obj: str, org_now: dt.datetime | None) -> dt.datetime | None:
    mark = ctx.mirror.meta(_keys(obj)[0])
    if not mark:
        return None
    last = dt.datetime.fromisoformat(mark)
    if org_now is not None and org_now - last >= dt.timedelta(days=GETDELETED_DAYS):
        _log.info("salesforce.full_pull", object=obj, reason="the watermark is older than getDeleted serves")
        return None
    return last - dt.timedelta(seconds=ctx.section.overlap_seconds)


@dataclass
class Opened:
    """The optional objects' pulls as the Composite call opened them: each one's count or first page, and the Ids
    getDeleted listed for it."""

    pulls: dict[str, tuple[Pull, Opening]]
    deleted: dict[str, list[str]]


def open_pulls(ctx: Context, estimates: dict[str, int] | None = None) -> Opened:
    """One Composite call asks for every available object's changes (or count) and deletions. An object the org
    refuses is set aside (unavailable) or pulled alone in full (a field refused, a window getDeleted no longer
    serves); the pages and Bulk jobs of the others follow with Contact's, Task's and Event's (`take`). A full pull
    whose approximate count (`estimates`, see `take_estimates`) is above `bulk_read_threshold` is not counted: it
    is opened for a Bulk query job as it stands, and when every pull is such, no call is made here."""
    org_now = ctx.conn.session.org_time  # the run's first Composite call answered at this time
    pulls: dict[str, Pull] = {}
    subs: list[composite.Sub] = []
    opened = Opened({}, {})
    for obj in OBJECTS:
        fields = json.loads(ctx.mirror.meta(_keys(obj)[2]) or "null")
        if remembered.fresh(ctx.mirror, _unavailable_key(obj), ctx.now) or not fields:
            continue
        since = _since(ctx, obj, org_now)
        query = build(obj, fields, since)
        estimate = (estimates or {}).get(obj, 0)
        if since is None and estimate > ctx.section.bulk_read_threshold:
            _log.info(
                "salesforce.count_skipped",
                object=obj,
                approximate_rows=estimate,
                reason="the org's record count is above bulk_read_threshold: a Bulk query job reads every row",
            )
            # No row is read before the job: the org's time of the first call is the watermark to come, earlier
            # than the job's own, so a change committed in between is read again next run, never lost.
            uncounted: dict[str, Any] = {"totalSize": estimate, "done": True, "records": []}
            opened.pulls[obj] = (query, Opening(uncounted, org_now, counted=True))
            opened.deleted[obj] = []
            continue
        pulls[obj] = query
        subs.append(composite.query(f"q_{obj}", query.soql if since else count_soql(query)))
        if since is not None:
            subs.append(composite.Sub(f"d_{obj}", f"sobjects/{obj}/deleted/", _deleted_params(since, org_now)))
    if not subs:
        return opened
    answers = composite.call(ctx.conn, ctx.usage, subs, doing="pulling emails and activity relations")
    org_time = ctx.conn.session.org_time
    for obj, query in pulls.items():
        try:
            if _refused(ctx, query, answers):
                continue
        except _Unavailable as exc:
            _unavailable(ctx, obj, exc.reason)
            continue
        page = answers[f"q_{obj}"]
        assert isinstance(page, dict)
        opened.pulls[obj] = (query, Opening(page, org_time, counted=query.full))
        gone = answers.get(f"d_{obj}")
        opened.deleted[obj] = _deleted_ids(gone) if isinstance(gone, dict) else []
    return opened


def take(ctx: Context, opened: Opened, openings: dict[str, Opening]) -> None:
    """Each opened object's rows (REST pages already staged, or its Bulk job now) and deletions, committed."""
    for obj, (query, _) in opened.pulls.items():
        _take(ctx, query, openings[obj], opened.deleted[obj])


def _refused(ctx: Context, query: Pull, answers: dict[str, composite.Answer]) -> bool:
    """An object whose query or getDeleted list the org refused: unavailable, pulled in full alone (a field it
    refuses, a watermark getDeleted no longer serves: True), or the refusal raised."""
    obj = query.obj
    for answer in (answers[f"q_{obj}"], answers.get(f"d_{obj}")):
        if isinstance(answer, SalesforceError):
            codes = error_codes(answer)
            if codes & _UNAVAILABLE:
                raise _Unavailable(f"{obj} cannot be queried ({', '.join(sorted(codes))})")
            if not query.full and codes & {"INVALID_FIELD", "INVALID_REPLICATION_DATE"}:
                _log.info("salesforce.full_pull", object=obj, reason=", ".join(sorted(codes)))
                _forget(ctx, obj)
                try:
                    _pull_alone(ctx, obj)
                except _Unavailable as exc:
                    _unavailable(ctx, obj, exc.reason)
                return True
            raise answer
    return False


def _take(ctx: Context, query: Pull, opening: Opening, deleted: list[str]) -> None:
    rows, path, org_time = ctx.puller.run(ctx.mirror.con, query, opening)
    _commit(ctx, query, org_time, deleted)
    _pulled(ctx, query, rows, len(deleted), path, org_time)


def _pull_alone(ctx: Context, obj: str) -> None:
    """A full pull of one object, describe first, each call on its own: after a refusal, rare."""
    query = build(obj, _describe(ctx, obj), None)
    try:
        rows, path, org_time = ctx.puller.run(ctx.mirror.con, query)
    except SalesforceError as exc:
        if error_codes(exc) & _UNAVAILABLE:
            raise _Unavailable(f"{obj} cannot be queried ({', '.join(sorted(error_codes(exc)))})") from None
        raise
    _commit(ctx, query, org_time, [])
    _pulled(ctx, query, rows, 0, path, org_time)


def _pulled(ctx: Context, query: Pull, rows: int, deleted: int, path: str, org_time: dt.datetime | None) -> None:
    _log.info(
        "salesforce.pulled",
        object=query.obj,
        rows=rows,
        deleted=deleted,
        path=path,
        full=query.full,
        watermark=ctx.mirror.meta(_keys(query.obj)[0]),
        org_time=org_time.isoformat() if org_time else None,
    )


def _commit(ctx: Context, query: Pull, org_time: dt.datetime | None, deleted: list[str]) -> None:
    con = ctx.mirror.con
    obj = query.obj
    mark_key, fields_key, _ = _keys(obj)
    stage = staging_table(obj)
    new_mark = mirror.watermark(mirror.newest(con, stage), org_time)
    con.execute("BEGIN TRANSACTION")
    try:
        if query.full:
            con.execute(f'DELETE FROM "{obj}"')
        mirror.upsert(con, obj, stage, query.fields)
        mirror.delete(con, obj, deleted)
        if new_mark is not None:
            ctx.mirror.set_meta(mark_key, new_mark.isoformat())
        ctx.mirror.set_meta(fields_key, json.dumps(sorted(query.fields)))
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise


def _minute(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _deleted_params(since: dt.datetime, org_time: dt.datetime | None) -> dict[str, str]:
    """ "Get Deleted Records" (REST, sobjects/<object>/deleted/?start=&end=) from `since` to the org's time now, to
    the minute: the API ignores seconds, so the window ends a minute after now."""
    end = (org_time or dt.datetime.now(dt.UTC)) + dt.timedelta(minutes=1)
    return {"start": _minute(since), "end": _minute(end)}


def _deleted_ids(body: dict[str, Any]) -> list[str]:
    records = body.get("deletedRecords", [])
    return [str(r["id"]) for r in records if isinstance(r, dict) and r.get("id")]
