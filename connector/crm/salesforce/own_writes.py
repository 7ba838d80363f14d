"""Our own Contact writes, recognised on the next pull so that it does not read them back.

Writing a contact's trust fields moves its `SystemModstamp` and `LastModifiedDate` and makes the sync user its
`LastModifiedById`. The mirror already holds what was written (the backend puts it there as each batch is
accepted), so reading those rows back would spend calls, and at 100,000 contacts a Bulk job, to learn nothing.

What is remembered, per write: the span of org time the write calls ran in (`start` is the org's clock just before
the first write call, `end` just after the last answer, each widened by `SLACK` because `Date` headers count whole
seconds), and the sync user's Id. The next incremental Contact pull adds, for each span it overlaps,

    AND (LastModifiedById != <sync user> OR SystemModstamp < <start> OR SystemModstamp > <end> OR Id IN (<re-read>))

so a row is left out only when its last change was made by the sync user, inside the span of our own write.

Correctness, case by case:
- Someone else edits any contact in the same span, before or after our write of it, or a contact we did not
  write: its `LastModifiedById` is that user, so it is read. Our later write of the same contact would hide an
  earlier edit (the row then shows the sync user), which is why, just before writing, the backend asks the org
  which contacts were changed by anyone else since this run's Contact pull (`SystemModstamp >= pull - overlap`,
  one query, normally empty): planned contacts among them are remembered by Id and always read back
  (`Id IN (<re-read>)`). More than `MAX_REREAD` of them, and the span is not used at all: everything in it is read.
- An edit that lands between that check and the write of the same record (seconds for sObject Collections, up
  to the job's run time for a Bulk job) is hidden by our write, as it was always hidden from the next diff by
  a write of the same record; it is read on that record's next change. A sync user shared with another tool
  that writes Contacts in the same span would have its writes taken for ours: give trust-ladder its own
  integration user (Salesforce's own advice for integrations).
- With no user Id (an existing access token, `auth = "session"`, signs in with no answer to read it from), or no
  pull in this run, nothing is remembered and our writes are read back, as before.

Spans older than the next pull's window are dropped as the watermark moves on.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from simple_salesforce.format import format_soql

from connector.crm.local.store import LocalCrm

KEY = "salesforce.own_writes.Contact"
SLACK = dt.timedelta(seconds=2)
MAX_REREAD = 200


@dataclass(frozen=True)
class Span:
    user: str
    start: dt.datetime
    end: dt.datetime
    reread: tuple[str, ...]


def load(mirror: LocalCrm) -> list[Span]:
    try:
        raw = json.loads(mirror.meta(KEY) or "[]")
    except ValueError:
        return []
    spans = []
    for item in raw if isinstance(raw, list) else []:
        try:
            spans.append(
                Span(
                    str(item["user"]),
                    dt.datetime.fromisoformat(item["start"]),
                    dt.datetime.fromisoformat(item["end"]),
                    tuple(str(i) for i in item["reread"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return spans


def save(mirror: LocalCrm, spans: list[Span]) -> None:
    mirror.set_meta(
        KEY,
        json.dumps(
            [
                {"user": s.user, "start": s.start.isoformat(), "end": s.end.isoformat(), "reread": list(s.reread)}
                for s in spans
            ]
        ),
    )


def add(mirror: LocalCrm, span: Span) -> None:
    save(mirror, [*load(mirror), span])


def keep_from(mirror: LocalCrm, since: dt.datetime) -> None:
    """Drop the spans that ended before `since`: no later pull reaches back to them."""
    spans = load(mirror)
    kept = [s for s in spans if s.end >= since]
    if len(kept) != len(spans):
        save(mirror, kept)


def clause(spans: list[Span], since: dt.datetime) -> str:
    """The SOQL condition that leaves our own writes out of a pull from `since` ('' when none applies)."""
    parts = []
    for span in spans:
        if span.end < since:
            continue
        soql = "(LastModifiedById != {user} OR SystemModstamp < {start} OR SystemModstamp > {end}"
        args: dict[str, object] = {"user": span.user, "start": span.start, "end": span.end}
        if span.reread:
            soql += " OR Id IN {reread}"
            args["reread"] = list(span.reread)
        parts.append(format_soql(soql + ")", **args))
    return " AND ".join(parts)


def changed_by_others(user: str, since: dt.datetime) -> str:
    """The check before a write: contacts someone other than the sync user changed from `since` on."""
    return format_soql(
        "SELECT Id FROM Contact WHERE SystemModstamp >= {since} AND LastModifiedById != {user}", since=since, user=user
    )
