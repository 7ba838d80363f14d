"""Pull the objects that say who took part in an activity and in which direction: EmailMessage (the Enhanced
Email behind an email Task), TaskRelation and EventRelation (Shared Activities' people and Event invitees).

What is read, and why:
- `EmailMessage` rows linked to a Task (`ActivityId != null`); `TaskRelation` and `EventRelation` rows of people
  (`IsWhat = false`). Relations go through plain REST query or, above `bulk_read_threshold`, a Bulk API 2.0 query
  job: both objects support Bulk query. `TaskWhoRelation`/`EventWhoRelation` do not, and Bulk rejects the
  parent-child subquery `(SELECT RelationId FROM TaskWhoRelations)`, so neither is used.
- The fields are the vocabulary's (connector.vocabulary), as far as the object's describe lists them: a field the
  sync user cannot see (field-level security), or that the org's API version lacks (EventRelation.IsWhat without
  Shared Activities, EmailMessage.ReplyToEmailMessageId in old versions), is pulled as NULL. The describe is read
  on every full pull of the object and kept in the mirror; an incremental query refused for a field
  (INVALID_FIELD: its access was taken away) re-reads it and pulls the object in full.
- An org without Enhanced Email or Shared Activities has no such object (describe: NOT_FOUND, query:
  INVALID_TYPE): it is skipped with one `salesforce.object_unavailable` line and the run goes on; activities are
  then read from Task and Event alone. It is looked for again on the next run.

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
from connector.crm.salesforce import mirror
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.limits import ApiUsage
from connector.crm.salesforce.pull import Puller, staging_table
from connector.crm.salesforce.soql import Pull

_log = log.get("trust_ladder.salesforce")

OBJECTS = vocabulary.ACTIVITY_DETAIL_OBJECTS
GETDELETED_DAYS = 29  # getDeleted answers for the last 30 days; an older watermark means a full pull
_UNAVAILABLE = {"INVALID_TYPE", "NOT_FOUND"}
# What a pull of each object keeps: the rows that can matter to an activity.
_FILTER = {"EmailMessage": "ActivityId != null", "TaskRelation": "IsWhat = false", "EventRelation": "IsWhat = false"}


@dataclass
class Context:
    conn: Connection
    section: SalesforceSection
    usage: ApiUsage
    puller: Puller
    mirror: LocalCrm


def pull(ctx: Context) -> None:
    """Bring EmailMessage, TaskRelation and EventRelation of the mirror up to date."""
    for obj in OBJECTS:
        try:
            _pull(ctx, obj, retry_fields=True)
        except _Unavailable as exc:
            _forget(ctx, obj)
            _log.info(
                "salesforce.object_unavailable", object=obj, reason=exc.reason, effect="activities are read without it"
            )


class _Unavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _keys(obj: str) -> tuple[str, str, str]:
    return f"salesforce.watermark.{obj}", f"salesforce.fields.{obj}", f"salesforce.describe.{obj}"


def _forget(ctx: Context, obj: str) -> None:
    """No watermark and no describe: the next pull of this object is a full one, with a fresh describe."""
    for key in _keys(obj):
        ctx.mirror.con.execute('DELETE FROM "_TrustLadderMeta" WHERE "Key" = ?', [key])


def _codes(exc: SalesforceError) -> set[str]:
    content = exc.content
    if isinstance(content, list):
        return {str(e.get("errorCode")) for e in content if isinstance(e, dict)}
    return set()


def _describe(ctx: Context, obj: str) -> list[str]:
    """The vocabulary's fields of `obj` that its describe lists (queryable by the sync user)."""
    ctx.usage.check(f"describing {obj}")
    try:
        body = ctx.conn.sf.restful(f"sobjects/{obj}/describe")
    except SalesforceError as exc:
        if exc.status == 404 or _codes(exc) & _UNAVAILABLE:
            raise _Unavailable(f"the org has no {obj} the sync user can read") from None
        raise
    listed = {str(f.get("name")) for f in (body or {}).get("fields", [])} if isinstance(body, dict) else set()
    hidden = [c for c in vocabulary.column_names(obj) if c not in listed]
    if hidden:
        _log.info("salesforce.fields_hidden", object=obj, fields=hidden, effect="pulled as NULL")
    return [c for c in vocabulary.column_names(obj) if c in listed]


def build(obj: str, fields: list[str], since: dt.datetime | None) -> Pull:
    """The SOQL of one pull: rows that matter (`_FILTER`, when the field is there), changed since `since`."""
    where = [_FILTER[obj]] if _FILTER[obj].split()[0] in fields else []
    soql = f"SELECT {', '.join(fields)} FROM {obj}" + (f" WHERE {' AND '.join(where)}" if where else "")
    if since is not None:
        soql += (" AND " if where else " WHERE ") + format_soql("SystemModstamp >= {since}", since=since)
    return Pull(obj, fields, soql, include_deleted=False, full=since is None)


def _pull(ctx: Context, obj: str, *, retry_fields: bool) -> None:
    mark_key, _, describe_key = _keys(obj)
    meta = ctx.mirror.meta
    mark = meta(mark_key)
    org_now = ctx.conn.session.org_time
    since: dt.datetime | None = None
    if mark and meta(describe_key):
        last = dt.datetime.fromisoformat(mark)
        if org_now is None or org_now - last < dt.timedelta(days=GETDELETED_DAYS):
            since = last - dt.timedelta(seconds=ctx.section.overlap_seconds)
        else:
            _log.info("salesforce.full_pull", object=obj, reason="the watermark is older than getDeleted serves")
    fields = _describe(ctx, obj) if since is None else json.loads(meta(describe_key) or "[]")
    query = build(obj, fields, since)
    try:
        rows, path, org_time = ctx.puller.run(ctx.mirror.con, query)
        deleted = _deleted(ctx, obj, since, org_time) if since is not None else []
    except SalesforceError as exc:
        codes = _codes(exc)
        if codes & _UNAVAILABLE:
            raise _Unavailable(f"{obj} cannot be queried ({', '.join(sorted(codes))})") from None
        if since is not None and retry_fields and codes & {"INVALID_FIELD", "INVALID_REPLICATION_DATE"}:
            _log.info("salesforce.full_pull", object=obj, reason=", ".join(sorted(codes)))
            _forget(ctx, obj)
            _pull(ctx, obj, retry_fields=False)
            return
        raise
    _commit(ctx, query, org_time, deleted, describe_key if since is None else None)
    _log.info(
        "salesforce.pulled",
        object=obj,
        rows=rows,
        deleted=len(deleted),
        path=path,
        full=query.full,
        watermark=meta(mark_key),
        org_time=org_time.isoformat() if org_time else None,
    )


def _commit(
    ctx: Context, query: Pull, org_time: dt.datetime | None, deleted: list[str], describe_key: str | None
) -> None:
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
        if describe_key is not None:
            ctx.mirror.set_meta(describe_key, json.dumps(query.fields))
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise


def _minute(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _deleted(ctx: Context, obj: str, since: dt.datetime, org_time: dt.datetime | None) -> list[str]:
    """Ids of `obj` deleted from `since` to the org's time now ("Get Deleted Records", REST), to the minute: the
    API ignores seconds, so the window ends a minute after now."""
    end = (org_time or dt.datetime.now(dt.UTC)) + dt.timedelta(minutes=1)
    ctx.usage.check(f"listing deleted {obj}")
    body: Any = ctx.conn.sf.restful(f"sobjects/{obj}/deleted/", params={"start": _minute(since), "end": _minute(end)})
    records = body.get("deletedRecords", []) if isinstance(body, dict) else []
    return [str(r["id"]) for r in records if isinstance(r, dict) and r.get("id")]
