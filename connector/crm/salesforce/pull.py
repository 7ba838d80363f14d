"""Pull one object into a staging table of text columns: REST query pages for small results, a Bulk API 2.0
query job (CSV result sets paged by Sforce-Locator) above `bulk_read_threshold`.

How many rows a query has decides the path, and it is learnt at no cost of its own: the backend sends every
object's opening request in one Composite call (connector.crm.salesforce.composite): for a full pull a
`SELECT COUNT()` with the pull's own WHERE clause (no row is fetched to be thrown away), for an incremental pull
the first REST page itself, kept and continued when REST is the path. The full pulls that REST will serve then
get their first pages in one more Composite call (`open_pages`). Only an incremental pull that finds more
changed rows than the threshold leaves its first page unused for a Bulk job, and that page cost no call of its
own. A page fetched through Composite holds up to 2,000 rows (the query default); later pages `page_size`.
Bulk result sets are streamed to a temporary file and read by the engine from there: no whole result is ever held
in Python memory.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
from simple_salesforce.exceptions import SalesforceError

from connector import log
from connector.crm.salesforce import composite
from connector.crm.salesforce.jobs import BulkClient, raise_for
from connector.crm.salesforce.soql import Pull
from connector.engine import sql

_log = log.get("trust_ladder.salesforce")


def staging_table(obj: str) -> str:
    return f"sf_stage_{obj.lower()}"


def create_staging(con: duckdb.DuckDBPyConnection, pull: Pull) -> str:
    table = staging_table(pull.obj)
    cols = ", ".join(f'"{f}" VARCHAR' for f in pull.fields)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({cols})")
    return table


class Pulled(NamedTuple):
    rows: int
    path: str  # "rest" or "bulk"
    org_time: dt.datetime | None  # the org's clock (`Date` header) when it answered the query: before any row read


class Opening(NamedTuple):
    """What the Composite call answered for a pull: the row count (`counted`: a COUNT() query, no records) or
    the first page, and the org's clock when it answered."""

    page: dict[str, Any]
    org_time: dt.datetime | None
    counted: bool


def count_soql(pull: Pull) -> str:
    """The pull's query as a COUNT(): same object, same WHERE clause ("COUNT() and COUNT(fieldName)", SOQL)."""
    _, _, rest = pull.soql.partition(" FROM ")
    return f"SELECT COUNT() FROM {rest}"


def open_pages(puller: BulkClient, openings: dict[str, tuple[Pull, Opening]], *, doing: str) -> dict[str, Opening]:
    """The first pages of the counted pulls that REST will serve (some rows, no more than `bulk_read_threshold`),
    all in one Composite call; the other openings as they are. The org's time stays the count's: the earlier one."""
    threshold = puller.section.bulk_read_threshold
    due = {
        key: (pull, opening)
        for key, (pull, opening) in openings.items()
        if opening.counted and 0 < int(opening.page.get("totalSize", 0)) <= threshold
    }
    out = {key: opening for key, (_, opening) in openings.items()}
    if not due:
        return out
    subs = [composite.query(key, pull.soql, include_deleted=pull.include_deleted) for key, (pull, _) in due.items()]
    answers = composite.call(puller.conn, puller.usage, subs, doing=doing)
    for key, (_, opening) in due.items():
        answer = answers[key]
        if isinstance(answer, SalesforceError):
            raise answer
        out[key] = Opening(answer, opening.org_time, counted=False)
    return out


class Puller(BulkClient):
    def run(self, con: duckdb.DuckDBPyConnection, pull: Pull, opening: Opening | None = None) -> Pulled:
        """Fill the staging table. `opening`: the count or first page the Composite call brought, if any."""
        table = create_staging(con, pull)
        opts = {"Sforce-Query-Options": f"batchSize={self.section.page_size}"}
        if opening is None:
            self.guard(f"querying {pull.obj}")
            page = self.conn.sf.query(pull.soql, include_deleted=pull.include_deleted, headers=opts)
            org_time, counted = self.conn.session.org_time, False
        else:
            page, org_time, counted = opening
        total = int(page.get("totalSize", 0))
        if total > self.section.bulk_read_threshold and (counted or not page.get("done", True)):
            _log.info("salesforce.pull_bulk", object=pull.obj, rows=total, full=pull.full)
            return Pulled(self._bulk(con, table, pull), "bulk", org_time)
        if counted:
            if total == 0:
                _log.info("salesforce.pull_rest", object=pull.obj, rows=0, full=pull.full)
                return Pulled(0, "rest", org_time)
            self.guard(f"querying {pull.obj}")
            page = self.conn.sf.query(pull.soql, include_deleted=pull.include_deleted, headers=opts)
        rows = _insert_records(con, table, pull.fields, page.get("records", []))
        while not page.get("done", True):
            self.guard(f"the next {pull.obj} page")
            page = self.conn.sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=opts)
            rows += _insert_records(con, table, pull.fields, page.get("records", []))
        _log.info("salesforce.pull_rest", object=pull.obj, rows=rows, full=pull.full)
        return Pulled(rows, "rest", org_time)

    # -- Bulk API 2.0 query --------------------------------------------------------------------------------

    def _bulk(self, con: duckdb.DuckDBPyConnection, table: str, pull: Pull) -> int:
        self.guard(f"the {pull.obj} Bulk query job")
        job = self.json_call(
            "POST",
            "jobs/query",
            json={
                "operation": "queryAll" if pull.include_deleted else "query",
                "query": pull.soql,
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            },
        )
        job_id = str(job["id"])
        self.wait_for_job("query", job_id, pull.obj)
        rows = 0
        locator: str | None = None
        with tempfile.TemporaryDirectory(dir=self.temp_dir) as tmp:
            part = 0
            while True:
                self.guard(f"the next {pull.obj} Bulk result set")
                params: dict[str, Any] = {"maxRecords": self.section.bulk_page_records}
                if locator:
                    params["locator"] = locator
                path = Path(tmp) / f"{pull.obj}-{part}.csv"
                resp = self.conn.session.request(
                    "GET",
                    self._url(f"jobs/query/{job_id}/results"),
                    params=params,
                    stream=True,
                    headers=self.conn.headers(Accept="text/csv"),
                )
                with resp:
                    raise_for(resp, f"GET jobs/query/{job_id}/results")
                    with path.open("wb") as out:
                        for chunk in resp.iter_content(chunk_size=1 << 20):
                            out.write(chunk.replace(b"\x00", b""))
                    locator = resp.headers.get("Sforce-Locator")
                if int(resp.headers.get("Sforce-NumberOfRecords", "1")) > 0:
                    rows += _insert_csv(con, table, path)
                path.unlink()
                part += 1
                if not locator or locator == "null":
                    break
        _log.info("salesforce.pull_bulk_done", object=pull.obj, rows=rows, result_sets=part)
        return rows


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return None  # a relationship sub-record; we never select one
    return str(value)


def _insert_records(
    con: duckdb.DuckDBPyConnection, table: str, fields: list[str], records: list[dict[str, Any]]
) -> int:
    if not records:
        return 0
    columns = [[_text(r.get(f)) for r in records] for f in fields]
    select = ", ".join(f'unnest(?::VARCHAR[]) AS "{f}"' for f in fields)
    con.execute(f"INSERT INTO {table} SELECT {select}", columns)
    return len(records)


def _insert_csv(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> int:
    before = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
    quoted = sql.render(sql.lit(str(path)))
    con.execute(
        f"INSERT INTO {table} BY NAME SELECT * FROM read_csv({quoted}, header = true, "
        "all_varchar = true, delim = ',', quote = '\"', escape = '\"', strict_mode = false)"
    )
    after = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
    return after - before
