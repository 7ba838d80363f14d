"""REST query pages five to a Composite call, each chained to the page before (connector/crm/salesforce/pages.py).

The wire formats these tests rely on:
- "Send Multiple Requests Using Composite"
  (https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html): one
  API call for up to 25 subrequests, 5 of them queries; a subrequest may carry its own `httpHeaders`.
- "Composite Subrequest" (https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-graph-
  composite-subrequest.html): "You can reference the referenceId in either the body or URL of a subrequest",
  `@{referenceId.FieldName}`; here `@{page.nextRecordsUrl}`, the "Execute a SOQL Query" answer's link to the next
  page. A reference to an answer without that field is refused, and the pages after it are not read.
- "Query Options Header": `Sforce-Query-Options: batchSize=n`, 200 to 2,000 rows a page.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import composite
from tests.salesforce.conftest import Run

OPTIONAL = {"EmailMessage", "TaskRelation", "EventRelation"}


def _contacts(run: Run, n: int) -> list[str]:
    stamp = run.org._naive_now() - dt.timedelta(days=3)
    return [run.org.contact(f"C{i}", f"Number{i}", stamp=stamp) for i in range(n)]


def _mirrored_contacts(run: Run) -> int:
    crm = LocalCrm.open(run.folder / "mirror.duckdb")
    try:
        return int(crm.con.execute('SELECT count(*) FROM "Contact"').fetchone()[0])  # type: ignore[index]
    finally:
        crm.close()


def test_2_600_contacts_in_pages_of_200_take_3_composite_calls_not_13(run: Run) -> None:
    """13 pages of 200 rows: 5, 5 and 3 a call, each page after the first in a call chained to the one before."""
    run.org.disabled = set(OPTIONAL)
    _contacts(run, 2600)
    result = run.sync(page_size=200, bulk_read_threshold=10**9, bulk_write_threshold=10**9)
    assert result.contacts == 2600 == _mirrored_contacts(run)
    pages = [p for _, p, _ in run.org.subrequests if p.startswith("query/01g")]
    assert len(pages) == 12  # the first page is the query itself
    composites = [p for m, p in run.org.calls if m == "POST" and p == "composite"]
    # The opening (counts), then 13 pages at 5 a call: 3 calls.
    assert len(composites) == 1 + math.ceil(13 / 5)
    assert not [p for m, p in run.org.calls if m == "GET" and p.startswith("query/01g")]  # no page read alone


def test_contacts_deleted_between_the_count_and_the_pages_end_the_chain_early(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count said 1,000 (5 pages of 200); 450 are deleted before the pages are read: the third page says
    `done`, the two chained after it are refused (no nextRecordsUrl to follow) and not read, and the run goes on."""
    run.org.disabled = set(OPTIONAL)
    ids = _contacts(run, 1000)
    real_call = composite.call
    deleted: list[str] = []

    def call(conn: Any, usage: Any, subs: list[composite.Sub], *, doing: str) -> dict[str, composite.Answer]:
        if doing.startswith("reading the pages") and not deleted:
            for cid in ids[:450]:
                run.org.delete("Contact", cid)
                deleted.append(cid)
        return real_call(conn, usage, subs, doing=doing)

    monkeypatch.setattr(composite, "call", call)
    result = run.sync(page_size=200, bulk_read_threshold=10**9, bulk_write_threshold=10**9)
    assert result.contacts == 550 == _mirrored_contacts(run)
    assert result.changed == 550
    # 5 pages asked for in one call; the query and 2 later pages answered, the last 2 refused by reference
    assert len([p for _, p, _ in run.org.subrequests if p.startswith("query/01g")]) == 2


def test_contacts_added_between_the_count_and_the_pages_are_read_in_the_next_call(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count said 400 (2 pages of 200); 700 more arrive before the pages are read: the pull follows the
    last page's nextRecordsUrl in a second call until the query is done, 1,100 contacts in all."""
    run.org.disabled = set(OPTIONAL)
    _contacts(run, 400)
    real_call = composite.call
    added: list[int] = []

    def call(conn: Any, usage: Any, subs: list[composite.Sub], *, doing: str) -> dict[str, composite.Answer]:
        if doing.startswith("reading the pages") and not added:
            added.append(len(_contacts(run, 700)))
        return real_call(conn, usage, subs, doing=doing)

    monkeypatch.setattr(composite, "call", call)
    result = run.sync(page_size=200, bulk_read_threshold=10**9, bulk_write_threshold=10**9)
    assert _mirrored_contacts(run) == 1100
    assert result.contacts == 1100
    # the first call asked for the 2 counted pages; its answers said 1,100 rows: the 4 left came in one call
    composites = [p for m, p in run.org.calls if m == "POST" and p == "composite"]
    assert len(composites) == 1 + 2
