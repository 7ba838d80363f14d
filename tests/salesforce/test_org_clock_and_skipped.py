"""Issue 10: the incremental watermark comes from the org's clock, and pulled activities the engine cannot use
are counted per reason and named, never dropped in silence."""

from __future__ import annotations

import datetime as dt

from structlog.testing import capture_logs

from connector import ids
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce.backend import SalesforceCrm
from connector.crm.salesforce.mirror import watermark
from connector.crm.salesforce.skipped import SkippedRow
from connector.ruleset import compiler
from tests.conftest import DEFAULT_RULES
from tests.salesforce.conftest import Run


def _mirror_tasks(run: Run) -> set[str]:
    crm = LocalCrm.open(run.folder / "mirror.duckdb")
    try:
        return {str(r[0]) for r in crm.con.execute('SELECT "Id" FROM "Task"').fetchall()}
    finally:
        crm.close()


def test_a_machine_clock_ten_minutes_fast_loses_no_change(run: Run) -> None:
    """'Execute a SOQL Query' through queryAll with `SystemModstamp >= since`; the org's time comes from the HTTP
    `Date` header of its answers (RFC 9110). The old watermark, this machine's clock at the run's start, sat ten
    minutes in the org's future: a reply logged two minutes later fell before it, beyond the 300 s overlap."""
    run.client_skew = dt.timedelta(minutes=10)
    ada = run.org.contact("Ada", stamp=run.org._naive_now() - dt.timedelta(days=30))
    run.org.task(ada, run.as_of - dt.timedelta(days=200), "Intro call", TaskSubtype="Call")
    run.sync()
    mark = run.mirror_stamp()
    assert mark is not None
    assert dt.datetime.fromisoformat(mark) <= run.org.now  # never ahead of the org

    run.org.advance(minutes=2)
    reply = run.org.task(ada, run.as_of, "Re: your proposal", TaskSubtype="Email")
    second = run.sync()

    assert reply in _mirror_tasks(run)
    assert second.per_rung["Friend"] == 1  # the reply counted: Ada moved up


def test_the_watermark_is_the_orgs_time_when_it_answered_the_pull() -> None:
    """Issue 17: the newest stamp seen kept a quiet org's window at its last change, re-read on every run."""
    noon = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
    seen = noon - dt.timedelta(minutes=3)
    assert watermark(seen, noon) == noon  # every change committed by noon was seen: the window moves on
    assert watermark(noon + dt.timedelta(hours=1), noon) == noon  # a stamp in the org's future is not trusted
    assert watermark(None, noon) == noon  # nothing changed up to the org's answer
    assert watermark(seen, None) == seen  # no `Date` header: the newest change seen
    assert watermark(None, None) is None  # nothing known: the old watermark stays


def test_unusable_activities_are_counted_per_reason_and_named(run: Run) -> None:
    """'Execute a SOQL Query' rows of Task and Event (WhoId: a Contact 003…, a Lead 00Q…, or null; Event
    StartDateTime/ActivityDate both null for an undated event)."""
    org = run.org
    old = org._naive_now() - dt.timedelta(days=1)
    ada = org.contact("Ada", stamp=old)
    org.task(ada, run.as_of - dt.timedelta(days=3), "Re: thanks", TaskSubtype="Email", stamp=old)
    undated = org.insert("Event", WhoId=ada, Subject="Lunch", IsAllDayEvent=False, stamp=old)
    lead_task = org.task(ids.make(ids.LEAD, 7), run.as_of, "Call a lead", stamp=old)
    stranger = org.task(ids.make(ids.CONTACT, 424242), run.as_of, "Call someone we cannot see", stamp=old)

    with capture_logs() as logs:
        first = run.sync()
    assert first.skipped == {"Event": 1, "Task": 2}
    lines = {(e["object"], e["reason"]): e for e in logs if e["event"] == "salesforce.rows_skipped"}
    assert set(lines) == {("Event", "no_date"), ("Task", "lead"), ("Task", "unknown_contact")}
    assert lines["Event", "no_date"]["ids"] == [undated]
    assert lines["Task", "lead"]["ids"] == [lead_task]
    assert lines["Task", "unknown_contact"]["ids"] == [stranger]

    org.advance(minutes=30)
    orphan = org.insert("Task", Subject="Account review", ActivityDate=run.as_of)  # no WhoId: not a person's
    with capture_logs() as logs:
        second = run.sync()
    assert second.skipped == {"Task": 1}
    assert [(e["reason"], e["ids"]) for e in logs if e["event"] == "salesforce.rows_skipped"] == [("no_who", [orphan])]


def test_the_backend_hands_every_skipped_row_to_its_caller(run: Run) -> None:
    """All of them, not a sample: 25 lead tasks, more than a log line names."""
    old = run.org._naive_now() - dt.timedelta(days=1)
    run.org.contact("Ada", stamp=old)
    leads = sorted(run.org.task(ids.make(ids.LEAD, i), run.as_of, "Lead call", stamp=old) for i in range(25))
    cfg = run.config()
    crm = SalesforceCrm.from_config(cfg)
    try:
        crm.prepare(cfg.fields, compiler.load(DEFAULT_RULES).needs())
        assert crm.skipped == {"Task": 25}
        assert crm.skipped_by_reason == {"Task": {"lead": 25}}
        assert len(crm.skipped_samples["Task"]) == 10
        assert crm.skipped_rows() == [SkippedRow("Task", i, "lead") for i in leads]
    finally:
        crm.close()
