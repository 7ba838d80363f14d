"""A stateful fake Salesforce org, served at the HTTP layer with `responses`, in the real payload shapes.

Its data lives in an in-memory LocalCrm (the same Salesforce-shaped Contact/Task/Event tables), so it can hold
a hundred thousand contacts and a million activities. It serves:
- SOAP and OAuth sign-in ("Understanding the Username-Password OAuth Flow"; simple-salesforce's soap_login);
- REST query and queryAll pages with nextRecordsUrl ("Execute a SOQL Query", "Query", "QueryAll");
- Contact describe ("Get Field and Other Metadata for an Object");
- a Tooling API query of FieldDefinition.IsFieldHistoryTracked for Contact fields ("FieldDefinition", Tooling API);
- sObject Collections update ("Update Records Using sObject Collections"), results in request order, for
  Contacts and Tasks;
- sObject Collections create ("Create Multiple Records with Fewer Round-Trips", "sObject Collections Create":
  POST composite/sobjects, every record with attributes.type and no id, a SaveResult per record in request
  order: {"id", "success": true, "errors": []} or {"success": false, "errors": [{statusCode, message, fields}]}),
  for Tasks;
- Bulk API 2.0 query jobs, CSV result sets paged by Sforce-Locator ("Create a Query Job", "Get Results for a
  Query Job"), and ingest update jobs ("Create a Job", "Upload Job Data", "Close or Abort a Job",
  "Get Job Successful Record Results", "Get Job Failed Record Results", "Get Job Unprocessed Record Results").
  A job works in the org's time, not by how often it is asked about: it is done `bulk_seconds` after it was
  created (a query job) or closed (an ingest job), plus a row's share of `bulk_rows_per_second` when that is set;
  until then "Get Information About a Query Job" / "... an Ingest Job" answer InProgress. Jobs created together
  work at the same time, as the org runs them. The org's clock (`now`) moves when a test or the bench advances
  it, and the connector's waits between polls advance it (the fixtures' sleep calls `advance`);
- aborting a Bulk job ("Abort a Query Job", "Abort a Job": PATCH jobs/query|ingest/{id} {"state": "Aborted"},
  answered with the JobInfo in state Aborted);
- Sforce-Limit-Info on every API response ("Limit Info Header"), the org's clock in the standard HTTP `Date`
  header (RFC 9110, IMF-fixdate), JSON-array error bodies ("Status Codes and Error Responses"), injected faults,
  and hung calls: a server that accepts the request and never answers, which costs the caller its read
  timeout (the `on_wait` hook advances the test's clock by it) and ends in requests' ReadTimeout.
- describe of Task and Event (for the optional Trust_Listening__c), of EmailMessage, TaskRelation and
  EventRelation ("Get Field and Other Metadata for an Object"), and
  their rows through query and Bulk query (Object Reference "EmailMessage", "TaskRelation", "EventRelation":
  ActivityId/Incoming/MessageDate/ReplyToEmailMessageId; TaskId/RelationId/IsWhat; EventId/RelationId/IsWhat/
  IsInvitee/IsParent/Status/Response); relation rows deleted directly vanish from queries (they never reach the
  Recycle Bin) and are reported by getDeleted ("Get Deleted Records": GET sobjects/<object>/deleted/?start=&end=,
  answered {"deletedRecords": [{"id", "deletedDate"}], "earliestDateAvailable", "latestDateCovered"});
- an org without Enhanced Email or Shared Activities (`disabled`): describe answers 404 NOT_FOUND, a query
  400 INVALID_TYPE ("sObject type '...' is not supported"), and field-level security per object (`hidden`);
- "Record Count" (REST API Developer Guide, https://developer.salesforce.com/docs/platform/api-rest/guide/
  resources-record-count.html): GET limits/recordCount?sObjects=A,B answered {"sObjects": [{"count", "name"}]},
  approximate (a cached snapshot: `stale_counts`), without soft-deleted records, objects the org lacks left out;
  refused when the sync user lacks "View Setup and Configuration" (`refuse_record_count`);
- the Composite resource ("Send Multiple Requests Using Composite",
  https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html):
  POST composite {"allOrNone", "compositeRequest": [{"method", "url", "referenceId"}]}, at most 25 subrequests of
  which at most 5 queries, answered {"compositeResponse": [{"body", "httpHeaders", "httpStatusCode",
  "referenceId"}]} in request order, the whole counted as one API call; each subrequest is served as if sent alone,
  with its own `httpHeaders`; a subrequest's url may name a field of an earlier one's answer, `@{ref.field}` (a
  query's nextRecordsUrl), and a reference to a failed answer or a missing field is refused PROCESSING_HALTED;
- `SELECT COUNT() FROM ...` ("COUNT() and COUNT(fieldName)", SOQL and SOSL Reference): {"totalSize": n,
  "done": true, "records": []};
- `LastModifiedById` on Contact: the sync user (`SYNC_USER`, the userId of the sign-in answer) for what the
  connector writes, `ADMIN_USER` for what a person changes (`change`), and a `Contact` query may filter on it.
- child-to-parent relationship fields in a Contact query, `Account.Name` ("Using Relationship Queries" and
  "Understanding Query Results", SOQL and SOSL Reference,
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_relationships_query_results.htm):
  REST nests the parent, `"Account": {"attributes": {"type": "Account", "url": ...}, "Name": "..."}`, and answers
  `"Account": null` for a contact without one ("null Values in Lookup Relationships and Outer Joins": the record is
  still returned, as with an outer join); a Bulk API 2.0 query ("Create a Query Job": child-to-parent
  relationship queries are supported) answers a CSV column named `Account.Name`, empty without an account (as
  salesforcer's "Supported Queries" vignette shows Bulk 1.0 and 2.0 do). The relationship is refused as
  INVALID_FIELD when field-level security hides Contact.AccountId (`missing_fields`), as any hidden field is;
  Contact's describe gives each lookup its `referenceTo` and `relationshipName` ("Get Field and Other Metadata
  for an Object": DescribeSObjectResult fields).
It understands only the SOQL the connector sends: SELECT fields FROM object [WHERE conditions].
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import itertools
import json
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses
from requests import PreparedRequest

from connector import ids
from connector.config import FieldsSection
from connector.crm.local import schema
from connector.crm.local.store import LocalCrm

INSTANCE = "acme.my.salesforce.com"
VERSION = "59.0"
DATA = f"/services/data/v{VERSION}/"
USERNAME = "sync@acme.example"
PASSWORD = "correct-horse-battery"
SECURITY_TOKEN = "TOKENabc123"
CLIENT_KEY = "3MVG9fake.consumer.key"
CLIENT_SECRET = "fake-client-secret-9f8e7d"
SYNC_USER = "005fake00000001AAA"  # the integration user the connector signs in as
ADMIN_USER = "005fake00000002AAA"  # a person editing records in the org

Reply = tuple[int, dict[str, str], str | bytes]

_TYPES = {"VARCHAR": "string", "TIMESTAMP": "datetime", "DATE": "date", "BOOLEAN": "boolean", "INTEGER": "int"}
TRUST_FIELDS = tuple(FieldsSection().model_dump().values())  # every field the tool writes, optional ones too
_TRUST = {
    "Trust_Stage__c": {"type": "picklist", "length": 255},
    "Trust_Stage_Since__c": {"type": "date", "length": 0},
    "Trust_Flags__c": {"type": "multipicklist", "length": 4099},
    "Trust_Next_Step__c": {"type": "string", "length": 255},
    "Trust_Reason__c": {"type": "textarea", "length": 32768, "extraTypeInfo": "plaintextarea"},
    "Trust_Rules_Version__c": {"type": "string", "length": 64},
    "Trust_Held_Until__c": {"type": "date", "length": 0},
    "Trust_Previous_Stage__c": {"type": "picklist", "length": 255},
}


# Contact's lookups as its describe names them: the parent object, and the relationship a query traverses.
_LOOKUPS = {"AccountId": (["Account"], "Account"), "OwnerId": (["User"], "Owner")}
_PARENTS = {"Account": ("AccountId", "Account")}  # a Contact relationship -> (its lookup field, the parent object)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps([{"message": message, "errorCode": code}]),
    )


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: str
    headers: dict[str, str]
    times: int
    after: int = 0  # matching calls let through before the fault applies


@dataclass
class Job:
    id: str
    kind: str  # query | ingest
    obj: str
    operation: str
    state: str
    ready_at: dt.datetime  # the org's time the job is done; moved on when an ingest job is closed
    table: str = ""
    fields: list[str] = field(default_factory=list)
    total: int = 0
    upload: bytes = b""
    ok: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


class FakeOrg:
    def __init__(
        self,
        *,
        now: dt.datetime | None = None,
        api_limit: int = 1_000_000,
        bulk_seconds: float = 2.0,
        bulk_rows_per_second: float | None = None,
        bulk_default_page: int = 100_000,
    ) -> None:
        self.crm = LocalCrm.create(None)
        self.con = self.crm.con
        self.now = now or dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
        self.api_used = 0
        self.api_limit = api_limit
        self.bulk_seconds = bulk_seconds  # how long a Bulk job works (math.inf: never done)
        self.bulk_rows_per_second = bulk_rows_per_second  # None: a job's size does not change how long it works
        self.failing_query_jobs: dict[str, str] = {}  # object -> the errorMessage its query jobs end Failed with
        self.other_query_jobs = 0  # query jobs of other users and tools the org keeps, listed before ours
        self.refuse_job_list = False  # "Get Information About All Query Jobs" answers 403 (the user may not list)
        # "Record Count" (limits/recordCount): a cached snapshot, refreshed at no fixed time. `stale_counts` holds
        # an object's count as the snapshot last took it (None: the live count); `refuse_record_count`: the sync
        # user lacks "View Setup and Configuration", which the resource requires.
        self.stale_counts: dict[str, int] = {}
        self.refuse_record_count = False
        self.bulk_default_page = bulk_default_page
        self.faults: list[Fault] = []
        self.lock_failures: dict[str, int] = {}  # contact Id -> writes still to refuse with UNABLE_TO_LOCK_ROW
        self.sessions: set[str] = set()
        self.expire_at: int | None = None  # the session expires when the API has served this many calls
        self.logins = 0
        self.failed_logins = 0
        self.calls: list[tuple[str, str]] = []  # (method, path below /services/data/vXX.X/) of API calls
        self.subrequests: list[tuple[str, str, int]] = []  # (method, path, status) of each Composite subrequest
        self.queries: list[str] = []  # the SOQL of every query, REST or Bulk, alone or in Composite
        self.writes: list[str] = []  # Contact Ids written, in order, one entry per record write
        self.missing_fields: set[str] = set()
        self.hidden: dict[str, set[str]] = {}  # object -> fields the sync user cannot see (not Contact's)
        self.disabled: set[str] = set()  # objects the org does not have (no Enhanced Email, no Shared Activities)
        self.deleted_log: list[tuple[str, str, dt.datetime]] = []  # (object, Id, when) of hard deletions
        self.readonly_fields: set[str] = set()  # the sync user lacks edit access (field-level security)
        self.field_changes: dict[str, dict[str, Any]] = {}  # field name -> describe attributes an admin changed
        self.untracked_history: set[str] = set()  # Contact fields whose field history tracking is off
        self.custom_fields: dict[str, str] = {}  # Contact fields an admin added (add_contact_field): DuckDB type
        self.picklists: dict[str, list[str]] = {k: list(v) for k, v in schema.DEFAULT_PICKLISTS.items()}
        self.task_statuses = {
            "Not Started": False,
            "In Progress": False,
            "Waiting on someone else": False,
            "Deferred": False,
            "Completed": True,
        }  # Task.Status value -> IsClosed
        self.task_writes: list[tuple[str, str]] = []  # (POST|PATCH, Task Id or refused WhoId), one per record
        self.refuse_tasks_for: set[str] = set()  # contacts whose new tasks a validation rule refuses
        self.jobs: dict[str, Job] = {}
        self.aborted: list[str] = []  # Bulk job Ids aborted by the client
        self.hangs: list[Fault] = []  # calls accepted and never answered
        self.on_wait: Callable[[float], None] = lambda _: None  # the test's clock, advanced by a hung call
        self.timeouts: list[tuple[str, str, Any]] = []  # (method, path, timeout=) of every API call
        self._cursors: dict[str, tuple[str, str, list[str], int, int]] = {}  # id -> (table, obj, fields, total, size)
        self._seq = itertools.count(900_000_000)  # clear of the demo generator's Ids
        self._tmp = tempfile.TemporaryDirectory()
        self.con.execute(f'ALTER TABLE "Contact" ADD COLUMN "LastModifiedById" VARCHAR DEFAULT \'{ADMIN_USER}\'')

    # -- seeding and changing data --------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return ids.make(prefix, next(self._seq))

    def _naive_now(self) -> dt.datetime:
        return self.now.astimezone(dt.UTC).replace(tzinfo=None)

    def insert(self, table: str, **values: Any) -> str:
        prefix = {
            "Account": ids.ACCOUNT,
            "Contact": ids.CONTACT,
            "Task": ids.TASK,
            "Event": ids.EVENT,
            "EmailMessage": ids.EMAIL_MESSAGE,
            "TaskRelation": ids.TASK_RELATION,
            "EventRelation": ids.EVENT_RELATION,
            "Opportunity": ids.OPPORTUNITY,
            "OpportunityContactRole": ids.OPPORTUNITY_CONTACT_ROLE,
        }[table]
        values.setdefault("Id", self._id(prefix))
        stamp = values.pop("stamp", None) or self._naive_now()
        values.setdefault("CreatedDate", stamp)
        values.setdefault("LastModifiedDate", stamp)
        values.setdefault("SystemModstamp", stamp)
        cols = ", ".join(f'"{c}"' for c in values)
        self.con.execute(
            f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join("?" * len(values))})', list(values.values())
        )
        return str(values["Id"])

    def account(self, name: str, **values: Any) -> str:
        return self.insert("Account", Name=name, IsDeleted=False, **values)

    def contact(self, first: str = "Ada", last: str = "Tester", **values: Any) -> str:
        return self.insert("Contact", FirstName=first, LastName=last, **values)

    def task(self, who: str, day: dt.date, subject: str, **values: Any) -> str:
        values.setdefault("Status", "Completed")
        values.setdefault("IsClosed", True)
        values.setdefault("TaskSubtype", "Task")
        return self.insert("Task", WhoId=who, ActivityDate=day, Subject=subject, **values)

    def event(self, who: str, day: dt.date, subject: str, **values: Any) -> str:
        start = dt.datetime.combine(day, dt.time(14))
        return self.insert(
            "Event",
            WhoId=who,
            Subject=subject,
            StartDateTime=start,
            EndDateTime=start + dt.timedelta(hours=1),
            ActivityDateTime=start,
            DurationInMinutes=60,
            IsAllDayEvent=False,
            **values,
        )

    def relate_task(self, task: str, who: str, *, is_what: bool = False) -> str:
        """Shared Activities: one more contact (or the what record) on a Task."""
        return self.insert("TaskRelation", TaskId=task, RelationId=who, IsWhat=is_what, IsDeleted=False)

    def relate_event(
        self, event: str, who: str, *, status: str = "Accepted", invitee: bool = True, parent: bool = False
    ) -> str:
        """An invitee (or, with `parent`, a related person) of an Event, with the invitation's status."""
        return self.insert(
            "EventRelation",
            EventId=event,
            RelationId=who,
            IsWhat=False,
            IsInvitee=invitee,
            IsParent=parent,
            IsOrganizer=False,
            Status=status,
            IsDeleted=False,
        )

    def email(
        self, task: str, *, incoming: bool, at: dt.datetime | None = None, reply_to: str | None = None, **values: Any
    ) -> str:
        """The Enhanced Email behind an email Task; `at` (naive UTC) is its MessageDate."""
        when = at or self._naive_now()
        return self.insert(
            "EmailMessage",
            ActivityId=task,
            Incoming=incoming,
            MessageDate=when,
            Status="3",
            ReplyToEmailMessageId=reply_to,
            IsDeleted=False,
            **values,
        )

    def unrelate(self, table: str, record_id: str) -> None:
        """A relation deleted directly: gone from every query, reported by getDeleted only."""
        self.con.execute(f'DELETE FROM "{table}" WHERE "Id" = ?', [record_id])
        self.deleted_log.append((table, record_id, self._naive_now()))

    def change(self, table: str, record_id: str, *, by: str = ADMIN_USER, **values: Any) -> None:
        """Someone (`by`) edits a record in the org: its SystemModstamp moves to now."""
        values["SystemModstamp"] = values["LastModifiedDate"] = self._naive_now()
        if table == "Contact":
            values["LastModifiedById"] = by
        sets = ", ".join(f'"{c}" = ?' for c in values)
        self.con.execute(f'UPDATE "{table}" SET {sets} WHERE "Id" = ?', [*values.values(), record_id])

    def delete(self, table: str, record_id: str) -> None:
        self.change(table, record_id, IsDeleted=True)

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)

    def _ready_at(self, rows: int) -> dt.datetime:
        """When a job of `rows` rows started now is done, in the org's time."""
        seconds = self.bulk_seconds + (rows / self.bulk_rows_per_second if self.bulk_rows_per_second else 0.0)
        if math.isinf(seconds):
            return dt.datetime.max.replace(tzinfo=dt.UTC)
        return self.now + dt.timedelta(seconds=seconds)

    def fields_of(self, contact_id: str, *names: str) -> tuple[Any, ...]:
        row = self.con.execute(
            f'SELECT {", ".join(f"{chr(34)}{n}{chr(34)}" for n in names)} FROM "Contact" WHERE "Id" = ?', [contact_id]
        ).fetchone()
        assert row is not None
        return tuple(row)

    def count(self, table: str) -> int:
        return int(self.con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # type: ignore[index]

    # -- faults ---------------------------------------------------------------------------------------------

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        code: str = "",
        message: str = "",
        body: str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """The next `times` matching API calls (after letting `after` through) get this answer instead."""
        text = body if body is not None else json.dumps([{"message": message, "errorCode": code}])
        self.faults.append(
            Fault(
                method,
                re.compile(path_regex),
                status,
                text,
                {"Content-Type": "application/json", **(headers or {})},
                times,
                after,
            )
        )

    def hang(self, method: str, path_regex: str, *, times: int = 10**9, after: int = 0) -> None:
        """The next `times` matching API calls (after letting `after` through) are accepted and never answered;
        each costs the caller its read timeout."""
        self.hangs.append(Fault(method, re.compile(path_regex), 0, "", {}, times, after))

    def expire_sessions(self) -> None:
        self.sessions.clear()

    # -- wiring ---------------------------------------------------------------------------------------------

    def install(self, rsps: responses.RequestsMock, *, keep_calls: bool = True) -> None:
        """Serve this org through `rsps`. A benchmark passes keep_calls=False: `responses` would otherwise keep
        every request and response body (gigabytes over a million activities)."""
        if not keep_calls:
            rsps._calls.add = lambda *_: None  # type: ignore[method-assign]
        for host in ("login", "test", "acme.my"):
            rsps.add_callback(
                responses.POST,
                re.compile(rf"https://{re.escape(host)}\.salesforce\.com/services/Soap/u/.*"),
                callback=self._soap_login,
            )
        rsps.add_callback(
            responses.POST,
            re.compile(r"https://[\w.]+\.salesforce\.com/services/oauth2/token"),
            callback=self._token_login,
        )
        api = re.compile(rf"https://{re.escape(INSTANCE)}/services/data/.*")
        for method in (responses.GET, responses.POST, responses.PATCH, responses.PUT, responses.DELETE):
            rsps.add_callback(method, api, callback=self._api)

    # -- sign-in --------------------------------------------------------------------------------------------

    def _new_session(self) -> str:
        self.logins += 1
        token = f"00Dfake!SESSION{self.logins}"
        self.sessions.add(token)
        return token

    def _soap_login(self, request: PreparedRequest) -> Reply:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        user = re.search(r"<n1:username>(.*?)</n1:username>", body)
        password = re.search(r"<n1:password>(.*?)</n1:password>", body)
        if not (user and password and user.group(1) == USERNAME and password.group(1) == PASSWORD + SECURITY_TOKEN):
            self.failed_logins += 1
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                "<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: "
                "Invalid username, password, security token; or user locked out.</faultstring><detail>"
                '<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>'
                "<sf:exceptionMessage>Invalid username, password, security token; or user locked out."
                "</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
            )
            return 500, {"Content-Type": "text/xml"}, fault
        token = self._new_session()
        ok = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com">'
            "<soapenv:Body><loginResponse><result>"
            f"<serverUrl>https://{INSTANCE}/services/Soap/u/{VERSION}/00Dfake</serverUrl>"
            f"<sessionId>{token}</sessionId><userId>{SYNC_USER}</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return 200, {"Content-Type": "text/xml"}, ok

    def _token_login(self, request: PreparedRequest) -> Reply:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        form = parse_qs(body)
        grant = form.get("grant_type", [""])[0]
        auth = request.headers.get("Authorization", "")
        good_basic = "Basic " + base64.b64encode(f"{CLIENT_KEY}:{CLIENT_SECRET}".encode()).decode()
        if (grant == "client_credentials" and auth == good_basic) or grant.endswith("jwt-bearer"):
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps(
                    {
                        "access_token": self._new_session(),
                        "instance_url": f"https://{INSTANCE}",
                        "id": f"https://login.salesforce.com/id/00Dfake000000001AAA/{SYNC_USER}",
                        "token_type": "Bearer",
                        "issued_at": "1718452800000",
                        "signature": "fake=",
                    }
                ),
            )
        self.failed_logins += 1
        return (
            400,
            {"Content-Type": "application/json"},
            json.dumps({"error": "invalid_client", "error_description": "invalid client credentials"}),
        )

    # -- the REST and Bulk API ------------------------------------------------------------------------------

    def _api(self, request: PreparedRequest) -> Reply:
        url = urlsplit(str(request.url))
        path = url.path.removeprefix(DATA)
        method = str(request.method)
        timeout = getattr(request, "req_kwargs", {}).get("timeout")
        self.timeouts.append((method, path, timeout))
        for hung in self.hangs:
            if hung.times > 0 and hung.method == method and hung.pattern.search(path) and _due(hung):
                hung.times -= 1
                self.calls.append(("hung " + method, path))
                self.on_wait(float(timeout[1] if isinstance(timeout, tuple) else timeout or 0))
                raise requests.ReadTimeout(
                    f"HTTPSConnectionPool(host='{INSTANCE}', port=443): Read timed out. (read timeout={timeout})"
                )
        date = {"Date": format_datetime(self.now.astimezone(dt.UTC), usegmt=True)}
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.pattern.search(path) and _due(fault):
                fault.times -= 1
                self.calls.append((method, path))
                return fault.status, {**fault.headers, **date}, fault.body
        if self.expire_at is not None and self.api_used >= self.expire_at:
            self.expire_at = None
            self.sessions.clear()
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.sessions:
            self.calls.append(("401 " + method, path))
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        self.calls.append((method, path))
        self.api_used += 1
        usage = {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}
        if self.api_used > self.api_limit:
            return _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", usage)
        status, headers, body = self._route(method, path, parse_qs(url.query), request)
        return status, {**headers, **usage, **date}, body

    def _route(self, method: str, path: str, query: dict[str, list[str]], request: PreparedRequest) -> Reply:
        parts = path.strip("/").split("/")
        if method == "GET" and parts[0] in ("query", "queryAll") and len(parts) == 1:
            options = request.headers.get("Sforce-Query-Options", "")
            size = int(options.split("=")[1]) if options.startswith("batchSize=") else 2000
            return self._query(query["q"][0], include_deleted=parts[0] == "queryAll", size=size, prefix=parts[0])
        if method == "GET" and parts[0] in ("query", "queryAll") and len(parts) == 2:
            cursor, _, offset = parts[1].rpartition("-")
            return self._page(cursor, int(offset), parts[0])
        if method == "GET" and parts == ["sobjects", "Contact", "describe"]:
            return 200, {"Content-Type": "application/json"}, json.dumps(self.describe())
        if method == "GET" and parts in (["sobjects", "Task", "describe"], ["sobjects", "Event", "describe"]):
            # only the fields the sync user can see (`hidden` takes them away)
            return 200, {"Content-Type": "application/json"}, json.dumps(self._describe_detail(parts[1]))
        if method == "GET" and len(parts) == 3 and parts[0] == "sobjects" and parts[1] in _DETAILS:
            if parts[1] in self.disabled:
                return _error(404, "NOT_FOUND", "The requested resource does not exist")
            if parts[2] == "describe":
                return 200, {"Content-Type": "application/json"}, json.dumps(self._describe_detail(parts[1]))
            if parts[2] == "deleted":
                return self._get_deleted(parts[1], query)
        if method == "GET" and parts == ["limits", "recordCount"]:
            return self._record_count(query)
        if method == "GET" and parts == ["tooling", "query"]:
            return self._field_definitions(query["q"][0])
        if method == "POST" and parts == ["composite"]:
            return self._composite(json.loads(_body(request)))
        if method == "PATCH" and parts == ["composite", "sobjects"]:
            return self._collections(json.loads(_body(request)))
        if method == "POST" and parts == ["composite", "sobjects"]:
            return self._create(json.loads(_body(request)))
        if parts[0] == "jobs":
            return self._jobs(method, parts[1:], query, request)
        return _error(404, "NOT_FOUND", f"The requested resource does not exist: {method} {path}")

    def _composite(self, body: dict[str, Any]) -> Reply:
        subs = body["compositeRequest"]
        assert len(subs) <= 25, "Composite takes at most 25 subrequests"
        queries = [s for s in subs if _is_query(s["url"])]
        assert len(queries) <= 5, "Composite takes at most 5 query subrequests"
        out = []
        answered: dict[str, tuple[int, Any]] = {}
        for sub in subs:
            payload: Any
            resolved = _resolve(sub["url"], answered)
            if resolved is None:  # a reference to a subrequest that failed or lacks the field
                status, payload = (
                    400,
                    [{"errorCode": "PROCESSING_HALTED", "message": f"Invalid reference specification: {sub['url']}"}],
                )
            else:
                url = urlsplit(resolved)
                assert url.path.startswith(DATA), sub["url"]
                method = sub["method"]
                assert method == "GET", "the connector sends only reads through Composite"
                stub = PreparedRequest()
                stub.prepare(method=method, url=f"https://{INSTANCE}{resolved}", headers=sub.get("httpHeaders") or {})
                status, _, text = self._route(method, url.path.removeprefix(DATA), parse_qs(url.query), stub)
                self.subrequests.append((method, url.path.removeprefix(DATA), status))
                payload = json.loads(text) if text else None
            answered[sub["referenceId"]] = (status, payload)
            out.append(
                {"body": payload, "httpHeaders": {}, "httpStatusCode": status, "referenceId": sub["referenceId"]}
            )
        return 200, {"Content-Type": "application/json"}, json.dumps({"compositeResponse": out})

    def add_contact_field(self, name: str, duck_type: str) -> None:
        """An admin adds a custom field to Contact (an Inactive__c checkbox): the describe lists it, queries read it."""
        self.con.execute(f'ALTER TABLE "Contact" ADD COLUMN "{name}" {duck_type}')
        self.custom_fields[name] = duck_type

    # -- describe -------------------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        out = []
        for col, typ in [*schema.CONTACT_COLUMNS, *self.custom_fields.items()]:
            if col in self.missing_fields:
                continue
            base = typ.split()[0]
            fld: dict[str, Any] = {
                "name": col,
                "label": col,
                "type": "id" if col == "Id" else ("reference" if col.endswith("Id") else _TYPES[base]),
                "length": 255 if base == "VARCHAR" else 0,
                "custom": col.endswith("__c"),
                "updateable": (col.endswith("__c") or col in ("FirstName", "LastName", "Email", "Title"))
                and col not in self.readonly_fields,
                "createable": col != "Id",
                "nillable": col != "Id",
                "picklistValues": [],
                "calculated": False,
                "htmlFormatted": False,
                "extraTypeInfo": None,
            }
            if col in _LOOKUPS:
                fld["referenceTo"], fld["relationshipName"] = _LOOKUPS[col]
            if col in _TRUST:
                fld.update(_TRUST[col])
            fld.update(self.field_changes.get(col, {}))
            if col in self.picklists:
                fld["picklistValues"] = [
                    {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                    for v in self.picklists[col]
                ]
            out.append(fld)
        return {"name": "Contact", "label": "Contact", "keyPrefix": "003", "custom": False, "fields": out}

    def _describe_detail(self, obj: str) -> dict[str, Any]:
        hidden = self.hidden.get(obj, set())
        fields = [
            {
                "name": col,
                "label": col,
                "type": "id" if col == "Id" else ("reference" if col.endswith("Id") else _TYPES[typ.split()[0]]),
                "custom": False,
                "nillable": col != "Id",
                "calculated": False,
            }
            for col, typ in schema.TABLES[obj]
            if col not in hidden
        ]
        return {"name": obj, "label": obj, "custom": False, "queryable": True, "fields": fields}

    def _get_deleted(self, obj: str, query: dict[str, list[str]]) -> Reply:
        start = dt.datetime.fromisoformat(query["start"][0]).astimezone(dt.UTC).replace(tzinfo=None)
        end = dt.datetime.fromisoformat(query["end"][0]).astimezone(dt.UTC).replace(tzinfo=None)
        if start < self._naive_now() - dt.timedelta(days=30):
            return _error(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
        gone = [(rid, when) for o, rid, when in self.deleted_log if o == obj and start <= when <= end]
        gone += [
            (str(rid), when)
            for rid, when in self.con.execute(
                f'SELECT "Id", "SystemModstamp" FROM "{obj}" WHERE "IsDeleted" AND "SystemModstamp" BETWEEN ? AND ?',
                [start, end],
            ).fetchall()
        ]
        fmt = "%Y-%m-%dT%H:%M:00.000+0000"
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps(
                {
                    "deletedRecords": [{"id": rid, "deletedDate": when.strftime(fmt)} for rid, when in gone],
                    "earliestDateAvailable": (self._naive_now() - dt.timedelta(days=30)).strftime(fmt),
                    "latestDateCovered": end.strftime(fmt),
                }
            ),
        )

    def _record_count(self, query: dict[str, list[str]]) -> Reply:
        """ "Record Count" (GET limits/recordCount?sObjects=A,B): each listed object's approximate count, without
        soft-deleted records; "if a listed object isn't found in the org, it's ignored and not returned"; the
        order is not guaranteed (here: reversed). The count ignores field-level security and any filter: all live
        rows of the object."""
        if self.refuse_record_count:
            return _error(
                403,
                "INSUFFICIENT_ACCESS",
                "You do not have the level of access necessary to perform the operation you requested.",
            )
        names = [n for n in query.get("sObjects", [""])[0].split(",") if n]
        known = {"Contact", "Task", "Event", *_DETAILS} - self.disabled
        out = []
        for name in names:
            if name not in known:
                continue
            count = self.stale_counts.get(name)
            if count is None:
                live = f'SELECT count(*) FROM "{name}" WHERE NOT COALESCE("IsDeleted", false)'
                count = int(self.con.execute(live).fetchone()[0])  # type: ignore[index]
            out.append({"count": count, "name": name})
        return 200, {"Content-Type": "application/json"}, json.dumps({"sObjects": out[::-1]})

    def _field_definitions(self, soql: str) -> Reply:
        """SELECT QualifiedApiName, IsFieldHistoryTracked FROM FieldDefinition WHERE ... IN ('a', 'b')."""
        assert "FROM FieldDefinition" in soql and "EntityDefinition.QualifiedApiName = 'Contact'" in soql, soql
        names = re.findall(r"'([^']+)'", soql.split(" IN ", 1)[1])
        have = {col for col, _ in schema.CONTACT_COLUMNS} - self.missing_fields
        records = [
            {
                "attributes": {
                    "type": "FieldDefinition",
                    "url": f"{DATA}tooling/sobjects/FieldDefinition/Contact.{name}",
                },
                "QualifiedApiName": name,
                "IsFieldHistoryTracked": name not in self.untracked_history,
            }
            for name in names
            if name in have
        ]
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps(
                {
                    "size": len(records),
                    "totalSize": len(records),
                    "done": True,
                    "queryLocator": None,
                    "entityTypeName": "FieldDefinition",
                    "records": records,
                }
            ),
        )

    # -- SOQL -----------------------------------------------------------------------------------------------

    def _soql(self, soql: str, *, include_deleted: bool) -> tuple[str, str, list[str], int] | Reply:
        self.queries.append(soql)
        m = re.fullmatch(r"SELECT (?P<fields>.+?) FROM (?P<obj>\w+)(?: WHERE (?P<where>.+))?", soql.strip(), re.DOTALL)
        assert m, f"the fake org does not understand this SOQL: {soql}"
        obj = m["obj"]
        if obj in self.disabled:
            return _error(
                400,
                "INVALID_TYPE",
                f"\n{soql[:40]}\n^\nERROR at Row:1:Column:1\nsObject type '{obj}' is "
                "not supported. If you are attempting to use a custom object, be sure to append the '__c' "
                "after the entity name.",
            )
        fields = [f.strip() for f in m["fields"].split(",")]
        counting = fields == ["COUNT()"]
        if counting:
            fields = ["Id"]
        hidden = self.missing_fields if obj == "Contact" else self.hidden.get(obj, set())
        have = (set(schema.column_names(obj)) | (set(self.custom_fields) if obj == "Contact" else set())) - hidden
        parents = _relationships(fields)
        for f in fields:
            rel, _, name = f.partition(".")
            if name and (obj != "Contact" or rel not in _PARENTS or _PARENTS[rel][0] in hidden):
                return _error(
                    400,
                    "INVALID_FIELD",
                    f"\n{f}\n^\nERROR at Row:1:Column:8\nDidn't understand relationship '{rel}' in field path. If "
                    "you are attempting to use a custom relationship, be sure to append the '__r' after the custom "
                    "relationship name.",
                )
            if name:
                if name not in schema.column_names(_PARENTS[rel][1]):
                    return _error(400, "INVALID_FIELD", f"No such column '{name}' on entity '{_PARENTS[rel][1]}'.")
                continue
            if f not in have:
                return _error(
                    400,
                    "INVALID_FIELD",
                    f"\n{f}\n^\nERROR at Row:1:Column:8\nNo such column '{f}' on "
                    f"entity '{obj}'. If you are attempting to use a custom field, be sure to append the "
                    "'__c' after the custom field name.",
                )
        where = m["where"] or "true"
        where = re.sub(
            r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})", r"TIMESTAMP '\1 \2'", where
        )
        where = where.replace("\\'", "''").replace("!= null", "IS NOT NULL").replace("= null", "IS NULL")
        if not include_deleted:
            where = f'({where}) AND NOT COALESCE("IsDeleted", false)'
        table = f"fq_{next(self._seq)}"
        # Each parent's Id rides after the selected fields, for the nested record's url (and its null).
        cols = ", ".join([*(f'"{f}"' for f in fields), *(f'"{rel}.Id"' for rel in parents)])
        source = f'"{obj}"'
        if parents:  # the parents' fields as "Rel.Field" columns beside the object's own
            joins = " ".join(
                f'LEFT JOIN "{_PARENTS[rel][1]}" "{rel}" ON "{rel}"."Id" = o."{_PARENTS[rel][0]}"' for rel in parents
            )
            picked = ", ".join(
                [
                    *(f'"{f.split(".")[0]}"."{f.split(".")[1]}" AS "{f}"' for f in fields if "." in f),
                    *(f'"{rel}"."Id" AS "{rel}.Id"' for rel in parents),
                ]
            )
            source = f'(SELECT o.*, {picked} FROM "{obj}" o {joins}) AS "{obj}"'
        self.con.execute(
            f'CREATE TEMP TABLE {table} AS SELECT row_number() OVER (ORDER BY "Id") AS rn, {cols} '
            f"FROM {source} WHERE {where}"
        )
        total = int(self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
        if counting:
            return table, obj, [], total
        return table, obj, fields, total

    def _query(self, soql: str, *, include_deleted: bool, size: int, prefix: str) -> Reply:
        got = self._soql(soql, include_deleted=include_deleted)
        if len(got) == 3:
            return got
        table, obj, fields, total = got
        if not fields:  # SELECT COUNT(): the count, no records
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"totalSize": total, "done": True, "records": []}),
            )
        cursor = f"01gFAKE{next(self._seq):09d}"
        self._cursors[cursor] = (table, obj, fields, total, max(200, min(size, 2000)))
        return self._page(cursor, 0, prefix)

    def _page(self, cursor: str, offset: int, prefix: str) -> Reply:
        table, obj, fields, total, size = self._cursors[cursor]
        rows = self.con.execute(
            f"SELECT * EXCLUDE (rn) FROM {table} WHERE rn > ? AND rn <= ? ORDER BY rn", [offset, offset + size]
        ).fetchall()
        records = []
        for row in rows:
            rec: dict[str, Any] = {"attributes": {"type": obj, "url": f"{DATA}sobjects/{obj}/{row[0]}"}}
            parent_ids = dict(zip(_relationships(fields), row[len(fields) :], strict=True))
            for f, v in zip(fields, row[: len(fields)], strict=True):
                rel, _, name = f.partition(".")
                if not name:
                    rec[f] = _json_value(v)
                elif parent_ids[rel] is None:
                    rec[rel] = None  # no parent: the relationship is null, the record still comes
                else:
                    parent = _PARENTS[rel][1]
                    nested = rec.setdefault(
                        rel, {"attributes": {"type": parent, "url": f"{DATA}sobjects/{parent}/{parent_ids[rel]}"}}
                    )
                    nested[name] = _json_value(v)
            records.append(rec)
        done = offset + size >= total
        body: dict[str, Any] = {"totalSize": total, "done": done, "records": records}
        if not done:
            body["nextRecordsUrl"] = f"{DATA}{prefix}/{cursor}-{offset + size}"
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    # -- writes ---------------------------------------------------------------------------------------------

    def _collections(self, body: dict[str, Any]) -> Reply:
        records = body["records"]
        assert len(records) <= 200, "sObject Collections takes at most 200 records"
        assert body.get("allOrNone") is False
        if records and all(r["attributes"]["type"] == "Task" for r in records):
            return 200, {"Content-Type": "application/json"}, json.dumps([self._update_task(r) for r in records])
        rows = []
        for rec in records:
            assert rec["attributes"]["type"] == "Contact" and rec.get("id")
            row: dict[str, str | None] = {"Id": rec["id"]}
            for k, v in rec.items():
                if k not in ("attributes", "id"):
                    row[k] = "#N/A" if v is None else str(v)
            rows.append(row)
        ok, failed = self._update(rows)
        results = []
        for row in rows:
            rid = str(row["Id"])
            if rid in ok:
                results.append({"id": rid, "success": True, "errors": []})
            else:
                code, message = failed[rid]
                results.append({"success": False, "errors": [{"statusCode": code, "message": message, "fields": []}]})
        return 200, {"Content-Type": "application/json"}, json.dumps(results)

    def _update(self, rows: list[dict[str, str | None]]) -> tuple[set[str], dict[str, tuple[str, str]]]:
        """Apply updates in the CSV convention (None or '' = leave alone, '#N/A' = null); set-based."""
        failed: dict[str, tuple[str, str]] = {}
        columns = sorted({k for r in rows for k in r if k != "Id"})
        live = {
            r[0]
            for r in self.con.execute(
                'SELECT "Id" FROM "Contact" WHERE NOT COALESCE("IsDeleted", false) AND "Id" IN '
                "(SELECT unnest(?::VARCHAR[]))",
                [[r["Id"] for r in rows]],
            ).fetchall()
        }
        for r in rows:
            rid = str(r["Id"])
            if self.lock_failures.get(rid, 0) > 0:
                self.lock_failures[rid] -= 1
                failed[rid] = (
                    "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access to this record or 1 records: " + rid,
                )
            elif rid not in live:
                failed[rid] = ("ENTITY_IS_DELETED", "entity is deleted")
            else:
                for col in ("Trust_Stage__c", "Trust_Flags__c", "Trust_Previous_Stage__c"):
                    value = r.get(col)
                    if (
                        value
                        and value != "#N/A"
                        and col in self.picklists
                        and any(v not in self.picklists[col] for v in value.split(";"))
                    ):
                        failed[rid] = (
                            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                            f"{col}: bad value for restricted picklist field: {value}",
                        )
        good = [r for r in rows if str(r["Id"]) not in failed]
        if good:
            types = dict(schema.CONTACT_COLUMNS)
            data = [[str(r["Id"]) for r in good]] + [[r.get(c) for r in good] for c in columns]
            sel = ", ".join(['unnest(?::VARCHAR[]) AS "Id"'] + [f'unnest(?::VARCHAR[]) AS "{c}"' for c in columns])
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE fake_upd AS SELECT {sel}", data)
            for c in columns:
                typ = types[c].split()[0]
                self.con.execute(
                    f'UPDATE "Contact" SET "{c}" = CASE WHEN u."{c}" = \'#N/A\' THEN NULL ELSE CAST(u."{c}" AS {typ}) '
                    f'END FROM fake_upd u WHERE "Contact"."Id" = u."Id" AND u."{c}" IS NOT NULL AND u."{c}" <> \'\''
                )
            self.con.execute(
                'UPDATE "Contact" SET "SystemModstamp" = ?, "LastModifiedDate" = ?, "LastModifiedById" = ? '
                'WHERE "Id" IN (SELECT "Id" FROM fake_upd)',
                [self._naive_now(), self._naive_now(), SYNC_USER],
            )
        self.writes.extend(str(r["Id"]) for r in rows)
        return {str(r["Id"]) for r in good}, failed

    def _create(self, body: dict[str, Any]) -> Reply:
        records = body["records"]
        assert len(records) <= 200, "sObject Collections takes at most 200 records"
        assert body.get("allOrNone") is False
        return 200, {"Content-Type": "application/json"}, json.dumps([self._create_task(r) for r in records])

    def _create_task(self, rec: dict[str, Any]) -> dict[str, Any]:
        assert rec["attributes"]["type"] == "Task", "the connector creates only Tasks"
        assert "id" not in rec and "Id" not in rec, "a create must not set the id"
        who = rec.get("WhoId")
        live = (
            who is not None
            and self.con.execute(
                'SELECT count(*) FROM "Contact" WHERE "Id" = ? AND NOT COALESCE("IsDeleted", false)', [who]
            ).fetchone()
        )
        if who in self.refuse_tasks_for:
            self.task_writes.append(("POST", str(who)))
            return {
                "success": False,
                "errors": [
                    {
                        "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        "message": "Tasks need a Type",
                        "fields": ["Type"],
                    }
                ],
            }
        if not live or not live[0]:
            return {
                "success": False,
                "errors": [
                    {
                        "statusCode": "INVALID_CROSS_REFERENCE_KEY",
                        "message": "invalid cross reference id",
                        "fields": ["WhoId"],
                    }
                ],
            }
        status = rec.get("Status", "Not Started")
        values = {k: v for k, v in rec.items() if k != "attributes"}
        values.update(
            Status=status,
            IsClosed=self.task_statuses[status],
            TaskSubtype="Task",
            Priority=rec.get("Priority", "Normal"),
            OwnerId=rec.get("OwnerId", "005fake000000001AAA"),
        )
        task_id = self.insert("Task", **values)
        self.task_writes.append(("POST", task_id))
        return {"id": task_id, "success": True, "errors": []}

    def _update_task(self, rec: dict[str, Any]) -> dict[str, Any]:
        task_id = rec.get("id")
        assert task_id, "an update names its record"
        self.task_writes.append(("PATCH", str(task_id)))
        live = self.con.execute(
            'SELECT count(*) FROM "Task" WHERE "Id" = ? AND NOT COALESCE("IsDeleted", false)', [task_id]
        ).fetchone()
        if not live or not live[0]:
            return {
                "success": False,
                "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}],
            }
        values = {k: v for k, v in rec.items() if k not in ("attributes", "id")}
        assert set(values) <= {"Subject", "OwnerId", "ActivityDate", "Status"}, values
        if "Status" in values:
            if values["Status"] not in self.task_statuses:
                return {
                    "success": False,
                    "errors": [
                        {
                            "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                            "message": f"Status: bad value for restricted picklist field: {values['Status']}",
                            "fields": ["Status"],
                        }
                    ],
                }
            values["IsClosed"] = self.task_statuses[values["Status"]]
            if values["IsClosed"]:
                values["CompletedDateTime"] = self._naive_now()
        self.change("Task", str(task_id), **values)
        return {"id": task_id, "success": True, "errors": []}

    def tasks_of(self, who: str) -> list[dict[str, Any]]:
        """The contact's Tasks as the org holds them, oldest first."""
        cur = self.con.execute('SELECT * FROM "Task" WHERE "WhoId" = ? ORDER BY "CreatedDate", "Id"', [who])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # -- Bulk API 2.0 ---------------------------------------------------------------------------------------

    def _job_info(self, job: Job) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": job.id,
            "operation": job.operation,
            "object": job.obj,
            "createdById": "005fake000000001AAA",
            "createdDate": "2026-06-15T12:00:00.000+0000",
            "systemModstamp": "2026-06-15T12:00:00.000+0000",
            "state": job.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(VERSION),
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }
        if job.kind == "ingest":
            info["contentUrl"] = f"services/data/v{VERSION}/jobs/ingest/{job.id}/batches"
            if job.state in ("JobComplete", "Failed", "Aborted"):
                info.update(
                    {
                        "numberRecordsProcessed": len(job.ok) + len(job.failed),
                        "numberRecordsFailed": len(job.failed),
                        "retries": 0,
                        "totalProcessingTime": 10,
                        "apiActiveProcessingTime": 5,
                        "apexProcessingTime": 0,
                    }
                )
        elif job.state == "JobComplete":
            info.update({"numberRecordsProcessed": job.total, "retries": 0, "totalProcessingTime": 10})
        elif job.state == "Failed":
            info["errorMessage"] = self.failing_query_jobs[job.obj]
        return info

    def _job_list(self, query: dict[str, list[str]]) -> Reply:
        """ "Get Information About All Query Jobs": every query job of the org, 1,000 a page, in an order the
        API leaves open; here the org's other jobs come first, the worst case for a client looking for its own."""
        if self.refuse_job_list:
            return _error(403, "INSUFFICIENT_ACCESS", "insufficient access rights on object id")
        for job in self.jobs.values():
            if job.kind == "query" and job.state in ("UploadComplete", "InProgress"):
                job.state = "InProgress" if self.now < job.ready_at else self._finished_state(job)
        others = [
            {**self._job_info(Job(f"750OTHER{i:010d}", "query", "Account", "query", "JobComplete", self.now))}
            for i in range(self.other_query_jobs)
        ]
        ours = [self._job_info(j) for j in self.jobs.values() if j.kind == "query"]
        records = [
            {
                k: v
                for k, v in r.items()
                if k not in ("errorMessage", "numberRecordsProcessed", "retries", "totalProcessingTime")
            }
            | {"jobType": "V2Query"}
            for r in others + ours
        ]
        start = int(query.get("queryLocator", ["0"])[0])
        page = records[start : start + 1000]
        more = start + 1000 < len(records)
        body: dict[str, Any] = {"done": not more, "records": page}
        body["nextRecordsUrl"] = f"{DATA}jobs/query?queryLocator={start + 1000}" if more else None
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    def _finished_state(self, job: Job) -> str:
        return "Failed" if job.kind == "query" and job.obj in self.failing_query_jobs else "JobComplete"

    def _jobs(self, method: str, parts: list[str], query: dict[str, list[str]], request: PreparedRequest) -> Reply:
        kind = parts[0]
        if method == "GET" and kind == "query" and len([p for p in parts if p]) == 1:
            return self._job_list(query)
        if method == "POST" and len(parts) == 1:
            spec = json.loads(_body(request))
            job_id = f"750FAKE{next(self._seq):011d}"
            if kind == "query":
                got = self._soql(spec["query"], include_deleted=spec["operation"] == "queryAll")
                if len(got) == 3:
                    return got
                table, obj, fields, total = got
                job = Job(
                    job_id, kind, obj, spec["operation"], "UploadComplete", self._ready_at(total), table, fields, total
                )
            else:
                assert spec["operation"] == "update" and spec["contentType"] == "CSV"
                job = Job(job_id, kind, spec["object"], "update", "Open", dt.datetime.max.replace(tzinfo=dt.UTC))
            self.jobs[job_id] = job
            return 200, {"Content-Type": "application/json"}, json.dumps(self._job_info(job))
        job = self.jobs[parts[1]]
        rest = [p for p in parts[2:] if p]
        if method == "GET" and not rest:
            if job.state in ("UploadComplete", "InProgress"):
                if self.now < job.ready_at:
                    job.state = "InProgress"
                elif self._finished_state(job) == "Failed":
                    job.state = "Failed"
                else:
                    job.state = "JobComplete"
                    if job.kind == "ingest":
                        self._run_ingest(job)
            return 200, {"Content-Type": "application/json"}, json.dumps(self._job_info(job))
        if method == "PATCH" and not rest and json.loads(_body(request)).get("state") == "Aborted":
            if job.state not in ("Open", "UploadComplete", "InProgress"):
                return _error(400, "INVALIDJOBSTATE", f"Aborting a job in state {job.state} is not allowed")
            job.state = "Aborted"
            self.aborted.append(job.id)
            return 200, {"Content-Type": "application/json"}, json.dumps(self._job_info(job))
        if kind == "query" and method == "GET" and rest == ["results"]:
            return self._results(job, query)
        if kind == "ingest" and method == "PUT" and rest == ["batches"]:
            assert job.state == "Open"
            job.upload += _body(request).encode() if isinstance(request.body, str) else bytes(request.body or b"")
            return 201, {}, ""
        if kind == "ingest" and method == "PATCH" and not rest:
            spec = json.loads(_body(request))
            job.state = spec["state"]
            if job.state == "UploadComplete":
                job.ready_at = self._ready_at(job.upload.count(b"\n") - 1)
            return 200, {"Content-Type": "application/json"}, json.dumps(self._job_info(job))
        if (
            kind == "ingest"
            and method == "GET"
            and rest[0] in ("successfulResults", "failedResults", "unprocessedrecords")
        ):
            return self._ingest_results(job, rest[0])
        return _error(404, "NOT_FOUND", "no such job resource")

    def _results(self, job: Job, query: dict[str, list[str]]) -> Reply:
        if job.state != "JobComplete":
            return _error(412, "JOB_NOT_COMPLETE", "the job is not complete")
        offset = int(base64.b64decode(query["locator"][0]).decode()) if "locator" in query else 0
        size = int(query.get("maxRecords", [str(self.bulk_default_page)])[0])
        cols = []
        types = dict(schema.TABLES[job.obj])
        for f in job.fields:
            typ = types[f].split()[0] if f in types else "VARCHAR"  # a parent's field ("Account.Name"): text
            if typ == "TIMESTAMP":
                cols.append(f'strftime("{f}", \'%Y-%m-%dT%H:%M:%S.000Z\') AS "{f}"')
            elif typ == "BOOLEAN":
                cols.append(f'CASE WHEN "{f}" THEN \'true\' WHEN NOT "{f}" THEN \'false\' END AS "{f}"')
            else:
                cols.append(f'CAST("{f}" AS VARCHAR) AS "{f}"')
        path = Path(self._tmp.name) / f"{job.id}-{offset}.csv"
        self.con.execute(
            f"COPY (SELECT {', '.join(cols)} FROM {job.table} WHERE rn > {offset} AND "
            f"rn <= {offset + size} ORDER BY rn) TO '{path}' (HEADER, DELIMITER ',', QUOTE '\"')"
        )
        body = path.read_bytes()
        path.unlink()
        count = max(0, min(size, job.total - offset))
        nxt = offset + size
        locator = base64.b64encode(str(nxt).encode()).decode() if nxt < job.total else "null"
        return 200, {"Content-Type": "text/csv", "Sforce-Locator": locator, "Sforce-NumberOfRecords": str(count)}, body

    def _run_ingest(self, job: Job) -> None:
        reader = csv.DictReader(io.StringIO(job.upload.decode("utf-8")))
        job.columns = list(reader.fieldnames or [])
        rows: list[dict[str, str | None]] = [dict(r) for r in reader]
        ok, failed = self._update(rows)
        for r in rows:
            rid = str(r["Id"])
            if rid in ok:
                job.ok.append({"sf__Id": rid, "sf__Created": "false", **{k: v or "" for k, v in r.items()}})
            else:
                code, message = failed[rid]
                job.failed.append(
                    {"sf__Id": rid, "sf__Error": f"{code}:{message}:--", **{k: v or "" for k, v in r.items()}}
                )

    def _ingest_results(self, job: Job, which: str) -> Reply:
        out = io.StringIO()
        if which == "unprocessedrecords":
            writer = csv.DictWriter(out, fieldnames=job.columns, lineterminator="\n")
            writer.writeheader()
        else:
            rows = job.ok if which == "successfulResults" else job.failed
            first = ["sf__Id", "sf__Created"] if which == "successfulResults" else ["sf__Id", "sf__Error"]
            writer = csv.DictWriter(out, fieldnames=first + job.columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return 200, {"Content-Type": "text/csv"}, out.getvalue()


_DETAILS = ("EmailMessage", "TaskRelation", "EventRelation")


def _relationships(fields: list[str]) -> list[str]:
    """The parents a field list reaches ("Account" for "Account.Name"), in a fixed order."""
    return sorted({f.split(".", 1)[0] for f in fields if "." in f})


def _is_query(url: str) -> bool:
    """A query, a later page of one (`query/<locator>`), or a reference to one: the kinds Composite counts among its
    5 queries (we count later pages too: the connector must never send more than 5 of any of them)."""
    path = urlsplit(url).path.removeprefix(DATA).strip("/")
    return url.startswith("@{") or path.split("/")[0] in ("query", "queryAll")


def _resolve(url: str, answered: dict[str, tuple[int, Any]]) -> str | None:
    """`@{ref.field}` replaced by that field of an earlier subrequest's answer ("Composite Subrequest": "You can
    reference the referenceId in either the body or URL of a subrequest"); None when it cannot be."""
    for ref, name in re.findall(r"@\{(\w+)\.(\w+)\}", url):
        status, payload = answered.get(ref, (0, None))
        value = payload.get(name) if 200 <= status < 300 and isinstance(payload, dict) else None
        if not isinstance(value, str):
            return None
        url = url.replace(f"@{{{ref}.{name}}}", value)
    return url


def _due(fault: Fault) -> bool:
    """A matching call: let it through while `after` lasts."""
    if fault.after > 0:
        fault.after -= 1
        return False
    return True


def _body(request: PreparedRequest) -> str:
    body = request.body
    if body is None:
        return ""
    return body.decode("utf-8") if isinstance(body, bytes) else str(body)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
