"""REST query pages through Composite: every page of every pull that REST serves, five pages a call.

A REST page holds at most 2,000 rows (`page_size`), and alone costs one API call. A Composite call carries up to
5 queries, and a later subrequest can name a field of an earlier one's answer ("Composite Subrequest": "You can
reference the referenceId in either the body or URL of a subrequest", `@{referenceId.FieldName}`), so one call
can ask for a page and the four after it, each subrequest's url being `@{the page before.nextRecordsUrl}`: up to
10,000 rows a call, for one object or several. The pulls' counts (or first pages) say how many pages each needs,
so the pages are planned across objects to fill the calls. A pull whose rows came and went between count and
pages is followed to its real end: the chain stops at the page that says `done`; an answer after it (refused,
its reference having no `nextRecordsUrl`) is not read, and a pull with more pages than counted goes on in the
next call from the last `nextRecordsUrl`.

The rows go straight into the pulls' staging tables, a call's worth at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import duckdb
from simple_salesforce.exceptions import SalesforceError

from connector import log
from connector.crm.salesforce import composite
from connector.crm.salesforce.jobs import BulkClient
from connector.crm.salesforce.pull import Opening, create_staging, insert_records
from connector.crm.salesforce.soql import Pull

_log = log.get("trust_ladder.salesforce")


@dataclass
class _Cursor:
    key: str
    pull: Pull
    opening: Opening
    table: str
    total: int  # the rows counted, then the latest page's totalSize: how many pages to ask for
    rows: int = 0
    pages: int = 0
    next_url: str | None = None  # None: the pull's query itself is the next page
    done: bool = False


def fetch(
    client: BulkClient, con: duckdb.DuckDBPyConnection, openings: dict[str, tuple[Pull, Opening]], *, doing: str
) -> dict[str, Opening]:
    """Every REST page of the pulls that REST serves (counted: some rows, no more than `bulk_read_threshold`;
    opened incrementally with more pages than the first), in as few Composite calls as 5 queries a call allow.
    Those pulls come back `staged` (their rows are in their staging tables); the others as they were."""
    threshold = client.section.bulk_read_threshold
    out = {key: opening for key, (_, opening) in openings.items()}
    cursors: list[_Cursor] = []
    for key, (pull, opening) in openings.items():
        total = int(opening.page.get("totalSize", 0))
        if total > threshold:
            continue  # a Bulk query job
        if opening.counted and total > 0:
            cursors.append(_Cursor(key, pull, opening, create_staging(con, pull), total))
        elif not opening.counted and not opening.page.get("done", True):
            cursor = _Cursor(key, pull, opening, create_staging(con, pull), total, pages=1)
            cursor.rows = insert_records(con, cursor.table, pull.fields, opening.page.get("records", []))
            cursor.next_url = str(opening.page["nextRecordsUrl"])
            cursors.append(cursor)
    calls = 0
    while pending := [c for c in cursors if not c.done]:
        client.guard(doing)
        _call(client, con, pending, doing=doing)
        calls += 1
    for c in cursors:
        out[c.key] = Opening(c.opening.page, c.opening.org_time, counted=False, staged=c.rows)
    if cursors:
        _log.info(
            "salesforce.rest_pages",
            objects={c.key: c.pages for c in cursors},
            rows=sum(c.rows for c in cursors),
            composite_calls=calls,
        )
    return out


def _call(client: BulkClient, con: duckdb.DuckDBPyConnection, pending: list[_Cursor], *, doing: str) -> None:
    """One Composite call: the next pages of the pending pulls, oldest first, up to 5 queries."""
    headers = _query_options(client.section.page_size)
    subs: list[composite.Sub] = []
    planned: list[tuple[_Cursor, list[str]]] = []
    for cursor in pending:
        room = composite.MAX_QUERIES - len(subs)
        if room <= 0:
            break
        left = cursor.total - cursor.rows
        wanted = min(room, max(1, math.ceil(left / client.section.page_size)))
        refs: list[str] = []
        for i in range(wanted):
            ref = f"{cursor.key}_page_{cursor.pages + i}"
            if refs:
                subs.append(composite.more(ref, f"@{{{refs[-1]}.nextRecordsUrl}}", headers=headers))
            elif cursor.next_url is not None:
                subs.append(composite.more(ref, cursor.next_url, headers=headers))
            else:
                pull = cursor.pull
                subs.append(composite.query(ref, pull.soql, include_deleted=pull.include_deleted, headers=headers))
            refs.append(ref)
        planned.append((cursor, refs))
    answers = composite.call(client.conn, client.usage, subs, doing=doing)
    for cursor, refs in planned:
        for ref in refs:
            answer = answers[ref]
            if isinstance(answer, SalesforceError):
                raise answer
            _take(con, cursor, answer)
            if cursor.done:
                break  # the pages chained after the last one were refused: nothing to read there


def _take(con: duckdb.DuckDBPyConnection, cursor: _Cursor, page: dict[str, Any]) -> None:
    cursor.rows += insert_records(con, cursor.table, cursor.pull.fields, page.get("records", []))
    cursor.pages += 1
    cursor.total = int(page.get("totalSize", cursor.total))  # the query's own count: rows may have come or gone
    if page.get("done", True) or not page.get("nextRecordsUrl"):
        cursor.done = True
    else:
        cursor.next_url = str(page["nextRecordsUrl"])


def _query_options(page_size: int) -> dict[str, str] | None:
    """`Sforce-Query-Options: batchSize=n` ("Query Options Header") when the page size is not the default 2,000."""
    return None if page_size == 2000 else {"Sforce-Query-Options": f"batchSize={page_size}"}
