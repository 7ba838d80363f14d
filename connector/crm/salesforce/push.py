"""Write back only the changed trust fields of the planned contacts (and the rules version with them).

Small sets go through sObject Collections (PATCH composite/sobjects, at most 200 records a call, allOrNone
false: one refused record never rolls back the others). Above `bulk_write_threshold`, Bulk API 2.0 update jobs
(upload CSV, close, poll, successfulResults, failedResults). Rows are sent sorted by AccountId to keep parent
lock contention low. Every refused record comes back as a RecordFailure with its Id, code and message: it
stays in the next run's plan, since the mirror still holds its old values. Nothing is dropped silently.

Follow-up Tasks (connector.follow_up) go through sObject Collections too: POST composite/sobjects creates them,
PATCH updates and closes them, 200 a call, each record's SaveResult kept (`Pusher.tasks`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from connector import log
from connector.config import FieldsSection
from connector.crm import RecordFailure
from connector.crm.salesforce.jobs import BulkClient, raise_for
from connector.engine.relations import PLAN_FIELDS as FIELDS
from connector.errors import CrmError

_log = log.get("trust_ladder.salesforce")

COLLECTION_SIZE = 200  # the sObject Collections maximum
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # Bulk API 2.0: upload at most 100 MB of raw CSV per job
TRANSIENT_RECORD_CODES = frozenset({"UNABLE_TO_LOCK_ROW"})
NULL_IN_CSV = "#N/A"  # Bulk API 2.0: an empty cell leaves the field alone; #N/A sets it to null

Batch = tuple[list[str], list[RecordFailure]]  # (Ids written, records refused)


@dataclass(frozen=True)
class Saved:
    """One record of a Collections call: the key it was sent under, its fields, its Id if saved, else why not."""

    key: str
    fields: dict[str, Any]
    id: str | None
    failure: RecordFailure | None


def _ordered_plan(plan_table: str) -> str:
    """The plan rows, parents together (lock contention), with the contact's AccountId."""
    return (
        f'SELECT p.*, c."AccountId" AS account_id FROM {plan_table} p LEFT JOIN crm_contact c ON c."Id" = p.cid '
        "ORDER BY account_id NULLS LAST, p.cid"
    )


def _json_value(value: Any) -> Any:
    """A plan value as sObject JSON: dates in ISO form; an empty text is a null (Salesforce stores no '')."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value == "":
        return None
    return value


class Pusher(BulkClient):
    # -- sObject Collections -------------------------------------------------------------------------------

    def collections(
        self, con: duckdb.DuckDBPyConnection, plan_table: str, fields: FieldsSection, rules_version: str
    ) -> Iterator[Batch]:
        owned = fields.owned()  # a field switched off is never changed in the plan, so never sent
        cols = ["cid"] + [c for k, (new, _) in FIELDS.items() for c in (f"ch_{k}", new)]
        # Fetched up front: the caller writes the mirror between batches on this connection, which would end an
        # open result. Collections serve sets below the Bulk threshold, so this stays small.
        planned = con.execute(f"SELECT {', '.join(cols)} FROM ({_ordered_plan(plan_table)})").fetchall()
        for start in range(0, len(planned), COLLECTION_SIZE):
            rows = planned[start : start + COLLECTION_SIZE]
            records = []
            for row in rows:
                rec: dict[str, Any] = {"attributes": {"type": "Contact"}, "id": row[0]}
                for i, logical in enumerate(FIELDS):
                    if row[1 + 2 * i]:
                        rec[owned[logical]] = _json_value(row[2 + 2 * i])
                rec[owned["rules_version"]] = rules_version
                records.append(rec)
            results = self.collection_call("PATCH", records, f"writing {len(records)} contacts")
            ok: list[str] = []
            failed: list[RecordFailure] = []
            for rec, res in zip(records, results, strict=True):  # results come back in request order
                if res.get("success"):
                    ok.append(rec["id"])
                else:
                    failed.append(_failure(rec["id"], res.get("errors") or []))
            yield ok, failed

    def collection_call(self, method: str, records: list[dict[str, Any]], doing: str) -> list[dict[str, Any]]:
        """One sObject Collections call (POST creates, PATCH updates; at most 200 records, allOrNone false):
        the per-record results, in request order ("Create Multiple Records with Fewer Round-Trips",
        "sObject Collections Create", "Update Records Using sObject Collections")."""
        assert len(records) <= COLLECTION_SIZE
        self.guard(doing)
        results = self.conn.sf.restful(
            "composite/sobjects", method=method, json={"allOrNone": False, "records": records}
        )
        if not isinstance(results, list) or len(results) != len(records):
            raise CrmError("sObject Collections answered with an unexpected body; nothing is assumed written")
        return results

    def tasks(self, method: str, rows: list[tuple[str, dict[str, Any]]]) -> Iterator[list[Saved]]:
        """Create (POST) or update (PATCH) Tasks through sObject Collections, 200 a call. `rows` pairs the Id a
        failure is reported under (the contact's for a create, the task's for an update) with the Task fields.
        POST is never repeated by the retry policy: a create whose answer was lost is found again by its marker
        on the next pull, never sent twice."""
        for start in range(0, len(rows), COLLECTION_SIZE):
            chunk = rows[start : start + COLLECTION_SIZE]
            records = [{"attributes": {"type": "Task"}, **fields} for _, fields in chunk]
            verb = "creating" if method == "POST" else "updating"
            results = self.collection_call(method, records, f"{verb} {len(records)} follow-up tasks")
            saved = []
            for (key, fields), res in zip(chunk, results, strict=True):
                if res.get("success"):
                    saved.append(Saved(key, fields, str(res.get("id") or fields.get("id") or ""), None))
                else:
                    saved.append(Saved(key, fields, None, _failure(key, res.get("errors") or [])))
            yield saved

    # -- Bulk API 2.0 ingest -------------------------------------------------------------------------------

    def bulk(
        self, con: duckdb.DuckDBPyConnection, plan_table: str, fields: FieldsSection, rules_version: str
    ) -> Iterator[Batch]:
        owned = fields.owned()
        select = ['cid AS "Id"']
        for logical, (new, _) in FIELDS.items():
            if logical not in owned:
                continue
            value = f"CAST({new} AS VARCHAR)"
            select.append(
                f"CASE WHEN ch_{logical} THEN COALESCE(NULLIF({value}, ''), '{NULL_IN_CSV}') END "
                f'AS "{owned[logical]}"'
            )
        select.append(f'? AS "{owned["rules_version"]}"')
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE sf_push AS SELECT row_number() OVER () - 1 AS rn, "
            f"{', '.join(select)} FROM ({_ordered_plan(plan_table)})",
            [rules_version],
        )
        total = int(con.execute("SELECT count(*) FROM sf_push").fetchone()[0])  # type: ignore[index]
        per_job = self.section.bulk_rows_per_job
        with tempfile.TemporaryDirectory(dir=self.temp_dir) as tmp:
            start = 0
            while start < total:
                path = Path(tmp) / f"update-{start}.csv"
                size = per_job
                while True:
                    _copy_csv(con, start, size, path)
                    if path.stat().st_size <= MAX_UPLOAD_BYTES or size == 1:
                        break
                    size = max(1, size // 2)
                yield self._one_job(path, Path(tmp))
                start += size

    def _one_job(self, path: Path, tmp: Path) -> Batch:
        self.guard("the Bulk update job")
        job = self.json_call(
            "POST",
            "jobs/ingest",
            json={
                "object": "Contact",
                "operation": "update",
                "contentType": "CSV",
                "lineEnding": "LF",
                "columnDelimiter": "COMMA",
            },
        )
        job_id = str(job["id"])
        _log.info("salesforce.bulk_update_job", job_id=job_id, bytes=path.stat().st_size)
        with self.aborted_on_failure("ingest", job_id, "Contact"):  # an open job left behind would never run
            self.guard("uploading the Bulk update data")
            resp = self.conn.session.request(
                "PUT",
                self.url(f"jobs/ingest/{job_id}/batches"),
                data=path.read_bytes(),
                headers=self.conn.headers(**{"Content-Type": "text/csv"}),
            )
            raise_for(resp, f"PUT jobs/ingest/{job_id}/batches")
            self.guard("closing the Bulk update job")
            self.json_call("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})
        info = self.wait_for_job("ingest", job_id, "Contact")
        uploaded = _uploaded_ids(path)
        processed, refused = _int(info.get("numberRecordsProcessed")), _int(info.get("numberRecordsFailed"))
        complete = info.get("state") == "JobComplete" and processed == len(uploaded)
        # The job's own counts ("Get Information About a Job": numberRecordsProcessed, numberRecordsFailed) say
        # when every uploaded row was processed: then no refusal means every row was written, with no result set
        # to read, and the written ones are the uploaded ones less the refused ones.
        failed = [_failure_csv(row) for row in self._rows(job_id, "failedResults")] if refused or not complete else []
        if complete:
            gone = {f.record_id for f in failed}
            ok = [i for i in uploaded if i not in gone]
        else:
            ok = self._results(job_id, "successfulResults", tmp)
        if info.get("state") != "JobComplete":
            for row in self._rows(job_id, "unprocessedrecords"):
                failed.append(
                    RecordFailure(
                        row.get("Id", ""),
                        "UNPROCESSED",
                        f"the Bulk job ended {info.get('state')}: {info.get('errorMessage', '')}",
                        transient=True,
                    )
                )
        return ok, failed

    def _results(self, job_id: str, kind: str, tmp: Path) -> list[str]:
        path = tmp / f"{job_id}-{kind}.csv"
        self.guard(f"reading {kind}")
        resp = self.conn.session.request(
            "GET", self.url(f"jobs/ingest/{job_id}/{kind}/"), stream=True, headers=self.conn.headers(Accept="text/csv")
        )
        with resp:
            raise_for(resp, f"GET jobs/ingest/{job_id}/{kind}/")
            with path.open("wb") as out:
                for chunk in resp.iter_content(chunk_size=1 << 20):
                    out.write(chunk)
        ids: list[str] = []
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                ids.append(row["sf__Id"])
        path.unlink()
        return ids

    def _rows(self, job_id: str, kind: str) -> list[dict[str, str]]:
        self.guard(f"reading {kind}")
        resp = self.conn.session.request(
            "GET", self.url(f"jobs/ingest/{job_id}/{kind}/"), headers=self.conn.headers(Accept="text/csv")
        )
        raise_for(resp, f"GET jobs/ingest/{job_id}/{kind}/")
        return list(csv.DictReader(io.StringIO(resp.content.decode("utf-8"))))


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return -1


def _uploaded_ids(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return [row["Id"] for row in csv.DictReader(f)]


def _copy_csv(con: duckdb.DuckDBPyConnection, start: int, size: int, path: Path) -> None:
    """One job's rows as CSV. Written from Python, not COPY: the engine's connection has no file access by the time
    the plan is pushed. Every value is already text; NULL (a field left as it is) is an empty cell."""
    cur = con.execute("SELECT * EXCLUDE (rn) FROM sf_push WHERE rn >= ? AND rn < ? ORDER BY rn", [start, start + size])
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        out.writerow([d[0] for d in cur.description])
        while rows := cur.fetchmany(10_000):
            out.writerows(rows)


def _failure(record_id: str, errors: list[dict[str, Any]]) -> RecordFailure:
    first = errors[0] if errors else {}
    code = str(first.get("statusCode", "UNKNOWN"))
    message = "; ".join(str(e.get("message", "")) for e in errors) or "refused without a message"
    return RecordFailure(record_id, code, message, transient=code in TRANSIENT_RECORD_CODES)


def _failure_csv(row: dict[str, str]) -> RecordFailure:
    code, message = split_bulk_error(row.get("sf__Error", ""))
    return RecordFailure(
        row.get("sf__Id") or row.get("Id", ""),
        code or "UNKNOWN",
        message,
        transient=code in TRANSIENT_RECORD_CODES,
    )


def split_bulk_error(error: str) -> tuple[str, str]:
    """A Bulk API 2.0 `sf__Error` ("Get Job Failed Record Results": "Error code and message") as (code, message).
    The value reads `CODE:message:fields --`, the fields part a comma-separated list of API names, empty when the
    error names none (`CODE:message:--`); the closing ` --` is not part of the message, and the fields are kept
    in words."""
    code, sep, rest = error.partition(":")
    if not sep:
        return "", error.strip()
    rest = rest.strip()
    if rest.endswith("--"):
        rest = rest[:-2].rstrip()
        head, colon, tail = rest.rpartition(":")
        if colon and _FIELD_LIST.fullmatch(tail.strip()):
            fields = tail.strip()
            rest = head.rstrip() + (f" (fields: {fields})" if fields else "")
    return code.strip(), rest or error.strip()


_FIELD_LIST = re.compile(r"(?:[A-Za-z]\w*(?:\.\w+)*(?:\s*,\s*[A-Za-z]\w*(?:\.\w+)*)*)?")
