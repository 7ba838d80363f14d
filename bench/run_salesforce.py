"""Benchmark: the Salesforce connector against the fake org (in-process `responses`, no network).

    .venv/bin/python bench/run_salesforce.py                       # 100,000 contacts, ~1,000,000 activities
    .venv/bin/python bench/run_salesforce.py --contacts 10000      # a quicker look
    .venv/bin/python bench/run_salesforce.py --path bulk           # one path only
    .venv/bin/python bench/run_salesforce.py --with-details        # EmailMessage, TaskRelation, EventRelation too
    .venv/bin/python bench/run_salesforce.py --with-details --refuse-record-count  # counted with COUNT() instead

For each path (REST queries + sObject Collections, then Bulk API 2.0 query and ingest jobs) it runs, as issue 17
measures them:
1. a full sync of a fresh mirror, which writes every contact;
2. a rerun one minute later, right after that write: it must read none of its own writes back;
3. a quiet run twenty minutes after the last write: nothing changed, nothing to read.
By default the org has none of the three optional objects (no Enhanced Email, no Shared Activities), as the
issue's targets are stated; `--with-details` gives it all three. The fake org's Bulk jobs work `--bulk-seconds`
(2 s) of its time, plus one row's share of `--bulk-rows-per-second` each when that is given; the connector's
waits between polls move its clock. It prints API calls (what the fake org's
Sforce-Limit-Info counted, which equals the connector's own count), the rows pulled, and wall time. The wall
time includes the fake org building its answers in the same process. The naive
approach (one query per contact and object, one update per record) is computed, not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import responses
from structlog.testing import capture_logs

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector import log  # noqa: E402 - after the path set-up, so `tests` imports from a checkout
from connector.commands import sync  # noqa: E402
from connector.config import Config, CrmSection, RulesSection, SalesforceSection, StateSection  # noqa: E402
from connector.crm.local import demo  # noqa: E402
from connector.crm.salesforce import backend  # noqa: E402
from tests.salesforce import fake_org  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "salesforce"
PATHS = {
    "rest": {"bulk_read_threshold": 10**12, "bulk_write_threshold": 10**12},
    "bulk": {},  # the defaults: Bulk above 10,000 rows read or 2,000 contacts written
}


def run_path(org: fake_org.FakeOrg, name: str, folder: Path, as_of: dt.date) -> list[dict[str, Any]]:
    """The three runs on one path. The run's deadline is lifted: the fake org builds its answers in this same
    process, and on a busy machine that alone can pass the default 600 s (`max_run_seconds`)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    org.con.execute(
        'UPDATE "Contact" SET "Trust_Stage__c" = NULL, "Trust_Stage_Since__c" = NULL, '
        '"Trust_Flags__c" = NULL, "Trust_Next_Step__c" = NULL, "Trust_Reason__c" = NULL, '
        '"Trust_Rules_Version__c" = NULL'
    )
    cfg = Config(
        crm=CrmSection(backend="salesforce"),
        salesforce=SalesforceSection(
            username=fake_org.USERNAME,
            mirror=folder / "mirror.duckdb",
            max_run_seconds=24 * 3600,
            **PATHS[name],  # type: ignore[arg-type]
        ),
        state=StateSection(path=folder / "state.duckdb"),
        rules=RulesSection(path=ROOT / "rules/ladder.yaml"),
    )
    rows = []
    for label, later in (("full sync", 1), ("rerun right after the write", 20), ("quiet run 20 min later", 15)):
        before, writes_before = org.api_used, len(org.writes)
        t = time.perf_counter()
        with capture_logs() as logs:
            result = sync.run(cfg, as_of=as_of)
        wall = time.perf_counter() - t
        pulled = sum(int(e["rows"]) for e in logs if e["event"] == "salesforce.pulled")
        calls = org.api_used - before
        assert calls == result.api_calls, (calls, result.api_calls)
        rows.append(
            {
                "path": name,
                "run": label,
                "calls": calls,
                "wall_s": wall,
                "changed": result.changed,
                "pulled": pulled,
                "records_written": len(org.writes) - writes_before,
                "contacts": result.contacts,
                "activities": result.activities,
            }
        )
        print(
            f"  {name:<4} {label:<30} {calls:>7,} calls  {pulled:>9,} rows pulled  {wall:7.1f} s  "
            f"changed {result.changed:>7,}",
            flush=True,
        )
        org.advance(minutes=later)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--activities-per-contact", type=float, default=10.0)
    parser.add_argument("--path", choices=["rest", "bulk", "both"], default="both")
    parser.add_argument("--with-details", action="store_true", help="the org has the three optional objects")
    parser.add_argument("--out", type=Path, default=OUT, help="the mirrors and state stores (two runs: two folders)")
    parser.add_argument(
        "--bulk-seconds", type=float, default=2.0, help="how long the fake org's Bulk jobs work (its time)"
    )
    parser.add_argument(
        "--bulk-rows-per-second", type=float, default=None, help="and a row's share of that time, if set"
    )
    parser.add_argument(
        "--refuse-record-count",
        action="store_true",
        help='the sync user lacks "View Setup and Configuration": Record Count is refused',
    )
    args = parser.parse_args()

    log.configure(json=True, level="info")  # the pulls' rows are counted from their log lines, captured
    os.environ["SF_PASSWORD"] = fake_org.PASSWORD  # the fake org's sign-in, read as a real one would be
    os.environ["SF_SECURITY_TOKEN"] = fake_org.SECURITY_TOKEN
    org = fake_org.FakeOrg(
        api_limit=10_000_000, bulk_seconds=args.bulk_seconds, bulk_rows_per_second=args.bulk_rows_per_second
    )
    org.refuse_record_count = args.refuse_record_count
    if not args.with_details:
        org.disabled = {"EmailMessage", "TaskRelation", "EventRelation"}
    as_of = org.now.date()
    t = time.perf_counter()
    stats = demo.generate(
        org.crm,
        contacts=args.contacts,
        seed=7,
        as_of=as_of - dt.timedelta(days=1),
        activities_per_contact=args.activities_per_contact,
    )
    print(
        f"fake org: {stats.contacts:,} contacts, {stats.tasks + stats.events:,} activities "
        f"({org.count('Task') + org.count('Event'):,} rows with deleted and Who-less ones), generated in "
        f"{time.perf_counter() - t:.1f} s (not timed)",
        flush=True,
    )
    # A wait between polls takes no real time, but the org's clock moves by it, so its Bulk jobs work meanwhile.
    backend.RUNTIME = backend.Runtime(sleep=lambda s: org.advance(seconds=s), now=lambda: org.now)
    rows: list[dict[str, Any]] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        org.install(rsps, keep_calls=False)
        for name in ["rest", "bulk"] if args.path == "both" else [args.path]:
            rows += run_path(org, name, args.out / name, as_of)

    contacts = stats.contacts
    naive = math.ceil(contacts / 2000) + 2 * contacts + contacts
    print(
        f"\nnaive (computed): {math.ceil(contacts / 2000):,} contact pages + {2 * contacts:,} activity queries "
        f"(Task and Event per contact) + {contacts:,} single-record updates = {naive:,} calls for a full sync; "
        f"{math.ceil(contacts / 2000) + 2 * contacts:,} for a no-change run"
    )
    print("\n| path | run | API calls | rows pulled | wall | contacts changed | records written |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['path']} | {r['run']} | {r['calls']:,} | {r['pulled']:,} | {r['wall_s']:.1f} s | {r['changed']:,} | "
            f"{r['records_written']:,} |"
        )


if __name__ == "__main__":
    main()
