"""Several small REST reads in one API call: the Composite resource ("Send Multiple Requests Using Composite",
REST API Developer Guide: POST /services/data/vXX.X/composite). "The entire series of requests counts as a single
call toward your API limits": the describes, the first query page (or COUNT()) of each object and the getDeleted
lists of a run go out together instead of one call each.

Limits from the same page: at most 25 subrequests a call, at most 5 of them queries. Subrequests here are
independent reads (allOrNone false), each answered with its own status and body in `compositeResponse`; a refused
subrequest comes back as a `SalesforceError`, as simple-salesforce raises for the same call made alone, so the
callers handle a refusal the same way either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.limits import ApiUsage
from connector.errors import CrmError

MAX_SUBREQUESTS = 25
MAX_QUERIES = 5


@dataclass(frozen=True)
class Sub:
    """One subrequest: `path` is below /services/data/vXX.X/ (e.g. `sobjects/Contact/describe`)."""

    ref: str
    path: str
    params: dict[str, str] | None = None
    url: str | None = None  # used as is: a query's nextRecordsUrl, or a reference to one (`@{ref.nextRecordsUrl}`)
    headers: dict[str, str] | None = None  # the subrequest's own `httpHeaders` (Sforce-Query-Options)

    @property
    def is_query(self) -> bool:
        """Queries, and the later pages of one (counted as queries toward the limit of 5, to be safe)."""
        return self.url is not None or self.path.rstrip("/") in ("query", "queryAll")


def query(ref: str, soql: str, *, include_deleted: bool = False, headers: dict[str, str] | None = None) -> Sub:
    return Sub(ref, "queryAll/" if include_deleted else "query/", {"q": soql}, headers=headers)


def more(ref: str, url: str, *, headers: dict[str, str] | None = None) -> Sub:
    """The next page of a query: its `nextRecordsUrl`, or `@{earlier.nextRecordsUrl}` to chain pages in one call
    ("You can reference the referenceId in either the body or URL of a subrequest", Composite Subrequest)."""
    return Sub(ref, "query", url=url, headers=headers)


Answer = dict[str, Any] | SalesforceError  # the body of a subrequest that succeeded, or why it was refused


def _chunks(subs: list[Sub]) -> list[list[Sub]]:
    """Subrequests grouped so that no call carries more than 25 of them, or more than 5 queries."""
    out: list[list[Sub]] = [[]]
    for sub in subs:
        current = out[-1]
        queries = sum(1 for s in current if s.is_query)
        if len(current) >= MAX_SUBREQUESTS or (sub.is_query and queries >= MAX_QUERIES):
            out.append([])
        out[-1].append(sub)
    return [c for c in out if c]


def call(conn: Connection, usage: ApiUsage, subs: list[Sub], *, doing: str) -> dict[str, Answer]:
    """Send `subs` in as few Composite calls as the limits allow; each answer by its reference."""
    answers: dict[str, Answer] = {}
    base = urlsplit(conn.base_url).path  # /services/data/vXX.X/
    for chunk in _chunks(subs):
        usage.check(doing)
        body = {
            "allOrNone": False,
            "compositeRequest": [_subrequest(s, base) for s in chunk],
        }
        result = conn.sf.restful("composite", method="POST", json=body)
        replies = result.get("compositeResponse") if isinstance(result, dict) else None
        if not isinstance(replies, list):
            raise CrmError(f"the Composite resource answered with an unexpected body while {doing}")
        by_ref = {str(r.get("referenceId")): r for r in replies if isinstance(r, dict)}
        for sub in chunk:
            reply = by_ref.get(sub.ref)
            if reply is None:
                raise CrmError(f"the Composite resource left out the answer to {sub.path} while {doing}")
            answers[sub.ref] = _answer(sub, reply)
    return answers


def _subrequest(sub: Sub, base: str) -> dict[str, Any]:
    url = sub.url or base + sub.path + (f"?{urlencode(sub.params)}" if sub.params else "")
    out: dict[str, Any] = {"method": "GET", "url": url, "referenceId": sub.ref}
    if sub.headers:
        out["httpHeaders"] = sub.headers
    return out


def _answer(sub: Sub, reply: dict[str, Any]) -> Answer:
    status = int(reply.get("httpStatusCode") or 0)
    body = reply.get("body")
    if 200 <= status < 300:
        return body if isinstance(body, dict) else {}
    # simple-salesforce keeps the parsed error array as `content` (its annotation says bytes); so do we.
    content = cast("bytes", body)
    errors = {
        400: SalesforceMalformedRequest,
        403: SalesforceRefusedRequest,
        404: SalesforceResourceNotFound,
    }
    cls = errors.get(status)
    if cls is not None:
        return cls(sub.path, status, sub.path.split("/")[1] if "/" in sub.path else sub.path, content)
    return SalesforceGeneralError(sub.path, status, sub.path, content)
