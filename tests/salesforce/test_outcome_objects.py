"""Deals for calibration come from Salesforce only when the rules' outcomes read them: Opportunity and
OpportunityContactRole ride the pull's opening Composite call like Contact, Task and Event, and a large org's deals
cost no more than two Bulk API 2.0 query jobs.

Wire formats as the fake org serves them (tests/salesforce/fake_org.py): "Send Multiple Requests Using Composite"
(https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html), "Create a
Query Job", "Get Information About a Query Job" and "Get Results for a Query Job" (Bulk API 2.0 and Bulk API
Developer Guide). The objects' fields are those of "Opportunity" and "OpportunityContactRole" in the Object
Reference (IsWon, CloseDate, Type; OpportunityId, ContactId, Role, IsPrimary).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from structlog.testing import capture_logs

from connector.commands import calibrate, sync
from connector.config import FieldsSection
from connector.crm.factory import open_data
from connector.crm.local import demo
from connector.ruleset import compiler
from tests.conftest import DEFAULT_RULES
from tests.salesforce.conftest import Run

TRUST = list(FieldsSection().required().values())  # the six every org has
DEALS = 40
HORIZON = 45
BULK = {"bulk_read_threshold": 10}  # above 10 rows a pull is a Bulk query job


def _bare_rules(folder: Path) -> Path:
    text = DEFAULT_RULES.read_text()
    path = folder / "no-outcomes.yaml"
    path.write_text(text[: text.index("\noutcomes:")] + "\n")
    return path


def _deals(run: Run) -> list[str]:
    """DEALS won deals, each with the first contacts as its contact role, closed a month ago."""
    org = run.org
    contacts = [r[0] for r in org.con.execute('SELECT "Id" FROM "Contact" ORDER BY "Id" LIMIT ?', [DEALS]).fetchall()]
    closed = run.as_of - dt.timedelta(days=30)
    for cid in contacts:
        opp = org.insert(
            "Opportunity",
            Name="Renewal",
            StageName="Closed Won",
            Type="Renewal",
            IsClosed=True,
            IsWon=True,
            CloseDate=closed,
        )
        org.insert("OpportunityContactRole", OpportunityId=opp, ContactId=cid, Role="Decision Maker", IsPrimary=True)
    return contacts


def _sync(run: Run, rules: Path | None = None) -> tuple[int, dict[str, str]]:
    """One sync (Bulk above 10 rows): its API calls, and the path each object's pull took."""
    with capture_logs() as logs:
        result = sync.run(run.config(**BULK), as_of=run.as_of, rules_file=rules)
    paths = {e["object"]: e["path"] for e in logs if e["event"] == "salesforce.pulled"}
    return result.api_calls, paths


def _fresh(run: Run) -> None:
    """Forget the mirror and the state, and the fields the first sync wrote, so the next sync is a first one."""
    (run.folder / "mirror.duckdb").unlink()
    (run.folder / "state.duckdb").unlink()
    run.org.con.execute(f'UPDATE "Contact" SET {", ".join(f"{chr(34)}{f}{chr(34)} = NULL" for f in TRUST)}')


def test_deals_cost_at_most_two_more_bulk_queries_and_only_when_the_outcomes_read_them(run: Run) -> None:
    demo.generate(run.org.crm, contacts=300, seed=5, as_of=run.as_of - dt.timedelta(days=1), activities_per_contact=4)
    _deals(run)
    run.org.advance(minutes=1)

    first = len(run.org.calls)
    bare_calls, bare_paths = _sync(run, _bare_rules(run.folder))
    jobs = [(method, path) for method, path in run.org.calls[first:] if path.startswith("jobs/query")]
    bulk_query_calls = len(jobs) / jobs.count(("POST", "jobs/query"))  # create, polls, results: one job
    assert not {"Opportunity", "OpportunityContactRole"} & set(bare_paths)  # no outcome reads deals: not asked for
    _fresh(run)
    with_calls, with_paths = _sync(run)  # the default rules: their outcomes read won deals

    assert with_paths["Opportunity"] == "bulk" and with_paths["OpportunityContactRole"] == "bulk"
    assert with_calls - bare_calls <= 2 * bulk_query_calls, (with_calls, bare_calls)


def test_calibrate_reads_the_deals_from_the_mirror_without_a_call(run: Run) -> None:
    """The first DEALS contacts won a renewal a month ago; calibrate on the mirror counts each of them on every
    month's first day whose horizon holds the close, if the contact existed by then, and the org sees no request."""
    demo.generate(run.org.crm, contacts=100, seed=5, as_of=run.as_of - dt.timedelta(days=1), activities_per_contact=4)
    won_by = _deals(run)
    run.org.advance(minutes=1)
    _sync(run)
    before = len(run.org.calls)
    crm = open_data(run.config())
    try:
        crm.prepare(FieldsSection())
        cal = calibrate.calibrate(crm.con, compiler.load(DEFAULT_RULES), run.as_of, horizon=HORIZON)
    finally:
        crm.close()
    assert len(run.org.calls) == before

    closed = run.as_of - dt.timedelta(days=30)
    created = dict(
        run.org.con.execute(
            'SELECT "Id", CAST("CreatedDate" AS DATE) FROM "Contact" WHERE "Id" IN ?', [won_by]
        ).fetchall()
    )
    window = [
        d
        for d in cal.days
        if d < closed <= d + dt.timedelta(days=HORIZON) and d + dt.timedelta(days=HORIZON) < run.as_of
    ]
    expected = sum(1 for d in window for cid in won_by if created[cid] <= d)
    assert window and expected > 0
    renewal = next(t for t in cal.outcomes if t.name == "renewal")
    assert sum(r.all.hits for r in renewal.rows) == expected
