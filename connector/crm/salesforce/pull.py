"""Pull one object into a staging table of text columns: REST query pages for small results, a Bulk API 2.0
query job (CSV result sets paged by Sforce-Locator) above `bulk_read_threshold`.

How many rows a query has decides the path, and it is learnt at no cost of its own: the backend sends every
object's opening request in one Composite call (connector.crm.salesforce.composite): for a full pull a
`SELECT COUNT()` with the pull's own WHERE clause (no row is fetched to be thrown away), for an incremental pull
the first REST page itself, kept and continued when REST is the path. The pages REST then serves come five to a
Composite call (connector.crm.salesforce.pages), already in the staging table when `run` is called (`staged`).
Only an incremental pull that finds more changed rows than the threshold leaves its first page unused for a Bulk
job, and that page cost no call of its own. Bulk result sets are streamed to a temporary file and read by the
engine from there: no whole result is ever held in Python memory.

A run's Bulk query jobs are created together, before any is waited on (`start_jobs`), and waited on together
(connector.crm.salesforce.jobs): the org works on them at the same time, and their polls share one back-off.
Their results are then read one object at a time, as each pull is committed (`run` with the job in `opening`).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from connector import log, sql
from connector.crm.salesforce.job_wait import Waiting
from connector.crm.salesforce.jobs import BulkClient, raise_for
from connector.crm.salesforce.soql import Pull

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
    the first page, and the org's clock when it answered. `staged`: every row is already in the staging table
    (connector.crm.salesforce.pages fetched them), this many."""

    page: dict[str, Any]
    org_time: dt.datetime | None
    counted: bool
    staged: int | None = None
    job: str | None = None  # the Bulk query job that holds the rows, complete (`Puller.start_jobs`)


def goes_bulk(opening: Opening, threshold: int) -> bool:
    """More rows than `threshold`, counted, or found by a first page that is not the last: a Bulk query job."""
    total = int(opening.page.get("totalSize", 0))
    return total > threshold and (opening.counted or not opening.page.get("done", True))


def count_soql(pull: Pull) -> str:
    """The pull's query as a COUNT(): same object, same WHERE clause ("COUNT() and COUNT(fieldName)", SOQL)."""
    _, _, rest = pull.soql.partition(" FROM ")
    return f"SELECT COUNT() FROM {rest}"


class Puller(BulkClient):
    def run(self, con: duckdb.DuckDBPyConnection, pull: Pull, opening: Opening | None = None) -> Pulled:
        """Fill the staging table. `opening`: the count or first page the Composite call brought, if any."""
        if opening is not None and opening.staged is not None:
            _log.info("salesforce.pull_rest", object=pull.obj, rows=opening.staged, full=pull.full)
            return Pulled(opening.staged, "rest", opening.org_time)
        table = create_staging(con, pull)
        if opening is not None and opening.job is not None:
            return Pulled(self._results(con, table, pull, opening.job), "bulk", opening.org_time)
        opts = {"Sforce-Query-Options": f"batchSize={self.section.page_size}"}
        if opening is None:
            self.guard(f"querying {pull.obj}")
            page = self.conn.sf.query(pull.soql, include_deleted=pull.include_deleted, headers=opts)
            org_time, counted = self.conn.session.org_time, False
        else:
            page, org_time, counted = opening.page, opening.org_time, opening.counted
        total = int(page.get("totalSize", 0))
        if goes_bulk(Opening(page, org_time, counted), self.section.bulk_read_threshold):
            _log.info("salesforce.pull_bulk", object=pull.obj, rows=total, full=pull.full)
            job_id = self._create_job(pull)
            self.wait_for_jobs("query", [Waiting(job_id, pull.obj, total)])
            return Pulled(self._results(con, table, pull, job_id), "bulk", org_time)
        if counted:
            if total == 0:
                _log.info("salesforce.pull_rest", object=pull.obj, rows=0, full=pull.full)
                return Pulled(0, "rest", org_time)
            self.guard(f"querying {pull.obj}")
            page = self.conn.sf.query(pull.soql, include_deleted=pull.include_deleted, headers=opts)
        rows = insert_records(con, table, pull.fields, page.get("records", []))
        while not page.get("done", True):
            self.guard(f"the next {pull.obj} page")
            page = self.conn.sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=opts)
            rows += insert_records(con, table, pull.fields, page.get("records", []))
        _log.info("salesforce.pull_rest", object=pull.obj, rows=rows, full=pull.full)
        return Pulled(rows, "rest", org_time)

    # -- Bulk API 2.0 query --------------------------------------------------------------------------------

    def start_jobs(self, pulls: dict[str, tuple[Pull, Opening]]) -> dict[str, Opening]:
        """Create a Bulk query job for every pull that needs one, then wait for them all at once; those pulls
        come back with their (complete) job, the others as they were. A failure on the way aborts the jobs
        already created."""
        out = {key: opening for key, (_, opening) in pulls.items()}
        wanted = [(key, pull, o) for key, (pull, o) in pulls.items() if o.staged is None and o.job is None]
        bulk = [(key, pull, o) for key, pull, o in wanted if goes_bulk(o, self.section.bulk_read_threshold)]
        created: list[Waiting] = []
        try:
            for key, pull, opening in bulk:
                rows = int(opening.page.get("totalSize", 0))
                _log.info("salesforce.pull_bulk", object=pull.obj, rows=rows, full=pull.full)
                created.append(Waiting(self._create_job(pull), pull.obj, rows))
                out[key] = opening._replace(job=created[-1].job_id)
        except BaseException as exc:
            for job in created:
                self.abort("query", job.job_id, job.obj, reason=type(exc).__name__)
            raise
        if created:
            self.wait_for_jobs("query", created)
        return out

    def _create_job(self, pull: Pull) -> str:
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
        return str(job["id"])

    def _results(self, con: duckdb.DuckDBPyConnection, table: str, pull: Pull, job_id: str) -> int:
        """The complete job's result sets, streamed to disk one at a time and read into the staging table."""
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
                    self.url(f"jobs/query/{job_id}/results"),
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
        return None  # a whole relationship sub-record: only its fields are selected (`Account.Name`)
    return str(value)


def _field(record: dict[str, Any], name: str) -> Any:
    """A field of a REST record; a relationship field (`Account.Name`) from its nested record, None when the
    record has no parent (`"Account": null`, "null Values in Lookup Relationships and Outer Joins")."""
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def insert_records(con: duckdb.DuckDBPyConnection, table: str, fields: list[str], records: list[dict[str, Any]]) -> int:
    if not records:
        return 0
    columns = [[_text(_field(r, f)) for r in records] for f in fields]
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
