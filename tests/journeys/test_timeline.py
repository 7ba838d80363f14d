"""The timeline: every contact's rungs and flags over its whole history, computed once.

The rule it must keep: the rung and flags a contact's timeline shows on any day D are exactly what an evaluation with
`as_of = D` gives, and the rung it stands on (grace and decay included) depends only on its history up to D.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connector import engine, sql
from connector.commands import trend
from connector.crm.local.store import LocalCrm
from connector.engine import classify, evaluate, features, timeline
from connector.engine.relations import TIMELINE
from connector.engine.timeline import _base as timeline_base
from connector.ruleset.compiler import RuleSet, load
from tests.conftest import DEFAULT_RULES, EVERY_FEATURE, Org


def _place(con: duckdb.DuckDBPyConnection, rules: RuleSet, day: dt.date) -> None:
    """The passes of a sync on `day`, keeping the timeline's own tables."""
    classify.classify(con, rules, day)
    features.build(con, rules, day)
    for stmt in timeline.statements(rules):
        sql.run(con, stmt, {"as_of": day})
    evaluate.evaluate(con, rules, day)


def _on_day(con: duckdb.DuckDBPyConnection, rules: RuleSet, day: dt.date) -> dict[str, tuple[Any, ...]]:
    """What the timeline (already built) shows on `day`: qualified rung, flags, rung stood on."""
    flags = ", ".join(f'q."g_{f.id}"' for f in rules.flags) or "NULL"
    rows = con.execute(
        f"""
        SELECT q.cid, q.qualified, [{flags}], r.r FROM (
          SELECT *, row_number() OVER (PARTITION BY cid ORDER BY dn DESC) AS n FROM tl_t_q
          WHERE dn <= ? - DATE '1970-01-01') q
        JOIN (SELECT *, row_number() OVER (PARTITION BY cid ORDER BY dn DESC, pt) AS n FROM tl_t_rung
              WHERE dn <= ? - DATE '1970-01-01') r ON r.cid = q.cid AND r.n = 1
        WHERE q.n = 1
        """,
        [day, day],
    ).fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


def _evaluated(con: duckdb.DuckDBPyConnection, rules: RuleSet, day: dt.date) -> dict[str, tuple[Any, ...]]:
    """A fresh evaluation on `day`: the rung qualified for and the flags from that day's features, and the rung
    stood on from a timeline that ends that day."""
    _place(con, rules, day)
    flags = ", ".join(f'"g_{f.id}"' for f in rules.flags) or "NULL"
    rows = con.execute(f"SELECT cid, qualified, [{flags}], final FROM tl_place").fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


@pytest.mark.parametrize("rules_file", [DEFAULT_RULES, EVERY_FEATURE], ids=["default", "every_feature"])
def test_the_rung_on_any_day_is_what_an_evaluation_on_that_day_gives(org: Org, rules_file: Path) -> None:
    org.load_demo(contacts=200, seed=11)
    rules = load(rules_file)
    crm = LocalCrm.open(org.database)
    try:
        crm.prepare(org.config.fields)
        con = crm.con
        _place(con, rules, org.as_of)
        rng = random.Random(5)  # noqa: S311 - a fixed sample of days, not a secret
        picked = {org.as_of - dt.timedelta(days=rng.randrange(1, 1100)) for _ in range(4)}
        # Where the timeline changes is where it can be wrong: some of its change days, and the day before each.
        changes = [
            r[0] for r in con.execute("SELECT DISTINCT as_of FROM tl_t_pts WHERE as_of < ?", [org.as_of]).fetchall()
        ]
        for day in rng.sample(sorted(changes), 8):
            picked |= {day, day - dt.timedelta(days=1)}
        days = sorted(picked)
        seen = {d: _on_day(con, rules, d) for d in days}
        for day in days:
            fresh = _evaluated(con, rules, day)
            timeline_day = seen[day]
            differ = [cid for cid, v in fresh.items() if timeline_day.get(cid, (0, [False] * len(rules.flags), 0)) != v]
            assert not differ, (day, differ[:5], [(fresh[c], timeline_day.get(c)) for c in differ[:5]])
    finally:
        crm.close()


def test_the_days_an_activity_passes_into_an_older_period_read_as_an_evaluation_on_them(org: Org) -> None:
    """A `distinct_periods` count moves only when a period goes from empty to seen or back, so the days an activity
    passes from one period to the next are points only where that can happen (`_points._slides`). On those days,
    points or not, and the day before each, the timeline reads as an evaluation on that day."""
    org.load_demo(contacts=120, seed=31)
    rules = load(DEFAULT_RULES)  # its quarters: with every_feature.yaml, weekly periods make every such day a point
    crm = LocalCrm.open(org.database)
    try:
        crm.prepare(org.config.fields)
        con = crm.con
        _place(con, rules, org.as_of)
        plan = timeline_base._plan(rules)
        crossings: set[dt.date] = set()
        for (n, per), periods in plan.slides.items():
            active = con.execute(f"SELECT DISTINCT dn FROM tl_t_day WHERE {n} > 0").fetchall()
            for (dn,) in active:
                for m in range(1, periods + 1):
                    day = timeline_base.EPOCH + dt.timedelta(days=dn + m * per)
                    if day < org.as_of:
                        crossings.add(day)
        points = {r[0] for r in con.execute("SELECT DISTINCT as_of FROM tl_t_pts").fetchall()}
        skipped = sorted(crossings - points)
        assert skipped, "no crossing day was left out of the points: the test would check nothing new"
        rng = random.Random(8)  # noqa: S311 - a fixed sample of days, not a secret
        picked: set[dt.date] = set()
        for day in rng.sample(skipped, min(6, len(skipped))):
            picked |= {day, day - dt.timedelta(days=1)}
        days = sorted(picked)
        seen = {d: _on_day(con, rules, d) for d in days}
        for day in days:
            fresh = _evaluated(con, rules, day)
            differ = [cid for cid, v in fresh.items() if seen[day].get(cid, (0, [False] * len(rules.flags), 0)) != v]
            assert not differ, (day, differ[:5])
    finally:
        crm.close()


def test_a_sync_after_a_skipped_day_writes_what_daily_syncs_would_have(tmp_path: Path) -> None:
    daily, skipping = Org(tmp_path / "daily"), Org(tmp_path / "skipping")
    for o in (daily, skipping):
        o.folder.mkdir()
        LocalCrm.create(o.database).close()
        o.load_demo(contacts=300, seed=23)
    daily.sync()
    daily.sync(days_later=1)
    daily.sync(days_later=2)
    skipping.sync()
    skipping.sync(days_later=2)  # the run of day 1 never happened
    assert skipping.snapshot_fields() == daily.snapshot_fields()


def test_a_long_relationship_is_dated_from_its_history_not_from_recent_activity(org: Org) -> None:
    """A call every two weeks, a quarterly review and a thanked referral every June since early 2018: Forever by
    the default rules once 24 months of relationship were reached, in 2020."""
    org.as_of = dt.date(2026, 6, 15)
    cid = org.contact("Grace", known_for_days=3100)
    start = dt.date(2018, 2, 5)
    day = start
    while day <= org.as_of:
        org.call(cid, (org.as_of - day).days, "Call: weekly sync", seconds=1800)
        day += dt.timedelta(days=14)
    for year in range(2018, 2027):
        for month in (2, 5, 8, 11):
            d = dt.date(year, month, 10)
            if d <= org.as_of:
                org.meeting(cid, (org.as_of - d).days, "Quarterly business review")
        june = dt.date(year, 6, 1)
        if june <= org.as_of:
            org.task(cid, (org.as_of - june).days, "Referral: introduced a peer")
            org.task(cid, (org.as_of - june).days - 2, "Thank-you note for the referral")
    org.sync()
    got = org.fields(cid)
    assert got["stage"] == "Forever"
    # 24 months after the first conversation (5 Feb 2018) is 5 Feb 2020; every other criterion held by then.
    assert got["since"] == dt.date(2020, 2, 5)


def test_a_rung_reached_by_tenure_alone_is_dated_the_day_the_tenure_was_reached(org: Org) -> None:
    """Two-way contact every month and listening every quarter: Familiar, then Faithful on the day the relationship
    turned 365 days old, with no activity that day."""
    cid = org.contact("Ines", known_for_days=500)
    first = org.day(400)
    for back in range(400, 0, -30):
        org.reply(cid, back)
    for back in range(400, 0, -80):
        org.meeting(cid, back, "Check-in: what matters to you this quarter")
    org.sync()
    got = org.fields(cid)
    assert got["stage"] == "Faithful"
    assert got["since"] == first + dt.timedelta(days=365)


def test_syncs_that_reuse_kept_timelines_write_what_one_full_computation_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync recomputes only the contacts whose history changed or whose next change day has come, in batches;
    after weeks of such syncs, with new activities on the way, every field is what a first sync on the last day
    writes in one batch."""
    # The same Ids for the activities added to both orgs, clear of the demo's own.
    kept = Org(tmp_path / "kept", _seq=itertools.count(10_000_000))
    fresh = Org(tmp_path / "fresh", _seq=itertools.count(10_000_000))
    for o in (kept, fresh):
        o.folder.mkdir()
        LocalCrm.create(o.database).close()
        o.load_demo(contacts=300, seed=29)
    crm = LocalCrm.open(kept.database)
    try:
        ids = [r[0] for r in crm.con.execute('SELECT "Id" FROM "Contact" ORDER BY "Id" LIMIT 40').fetchall()]
    finally:
        crm.close()
    monkeypatch.setattr(timeline, "BATCH", 37)  # the kept org's syncs compute in batches of 37 contacts
    kept.sync()
    for o in (kept, fresh):  # what happens after the first sync: replies, a listening call, a thank-you
        for i, cid in enumerate(ids):
            o.reply(cid, -3 - i % 5)
            if i % 3 == 0:
                o.meeting(cid, -20, "Check-in: what matters to them")
            if i % 4 == 0:
                o.task(cid, -25, "Thank-you note for the feedback")
    for later in (5, 21, 40, 41, 95, 200):
        kept.sync(days_later=later)
    monkeypatch.undo()
    fresh.sync(days_later=200)
    assert kept.snapshot_fields() == fresh.snapshot_fields()


def test_the_monthly_trend_reads_each_contacts_rung_on_the_first_of_each_month(org: Org) -> None:
    """Created 7 Mar; a discovery meeting 17 Mar (Friend), replies 16 May and 5 Jun (three conversations and a
    listening one: Familiar from 5 Jun). No sync ran on any of those days."""
    org.familiar_contact()
    crm = LocalCrm.open(org.database)
    try:
        crm.prepare(org.config.fields)
        months = trend.monthly(crm.con, load(DEFAULT_RULES), org.as_of)
    finally:
        crm.close()
    assert [d for d, _ in months][-4:] == [dt.date(2026, 4, 1), dt.date(2026, 5, 1), dt.date(2026, 6, 1), org.as_of]
    assert len(months) == 13  # twelve month starts, and the day itself
    assert months[-4:] == [
        (dt.date(2026, 4, 1), {"Friend": 1}),
        (dt.date(2026, 5, 1), {"Friend": 1}),
        (dt.date(2026, 6, 1), {"Friend": 1}),
        (org.as_of, {"Familiar": 1}),
    ]
    assert months[-5] == (dt.date(2026, 3, 1), {})  # not in the CRM yet


def _computed(org: Org, **kwargs: Any) -> int:
    """A sync, and how many contacts it read and placed (the others stood as the last sync left them)."""
    from structlog.testing import capture_logs  # noqa: PLC0415 - only this journey reads the log

    with capture_logs() as logs:
        org.sync(**kwargs)
    [event] = [e for e in logs if e["event"] == "sync.timelines"]
    return int(event["computed"])


def test_a_sync_reads_only_the_contacts_that_changed_and_writes_what_a_full_sync_writes(tmp_path: Path) -> None:
    org, fresh = Org(tmp_path / "org"), Org(tmp_path / "fresh")
    org.folder.mkdir()
    LocalCrm.create(org.database).close()
    org.load_demo(contacts=300, seed=31)
    assert _computed(org) == 300
    crm = LocalCrm.open(org.database)
    try:
        moved, gained, edited = (
            str(r[0])
            for r in crm.con.execute(
                'SELECT "Id" FROM "Contact" WHERE "Id" IN (SELECT "WhoId" FROM "Task") ORDER BY "Id" LIMIT 3'
            ).fetchall()
        )
        # An activity logged on the wrong contact is moved to another: both change, although only the new one is
        # named by the activity now. A CRM stamps every edit.
        crm.con.execute(
            'UPDATE "Task" SET "WhoId" = ?, "SystemModstamp" = now() WHERE "Id" = '
            '(SELECT min("Id") FROM "Task" WHERE "WhoId" = ?)',
            [gained, moved],
        )
        # Someone clears a trust field by hand.
        crm.con.execute(
            'UPDATE "Contact" SET "Trust_Stage__c" = NULL, "SystemModstamp" = now() WHERE "Id" = ?', [edited]
        )
    finally:
        crm.close()
    fresh.folder.mkdir()
    (fresh.folder / "crm.duckdb").write_bytes(org.database.read_bytes())

    assert _computed(org) == 3
    assert _computed(fresh) == 300
    assert org.snapshot_fields() == fresh.snapshot_fields()
    assert _computed(org, days_later=1) < 300  # a day later: the contacts whose timeline moves, not all


def _timeline_rows(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    cur = con.execute(f"SELECT * FROM {TIMELINE.name}")
    names = [d[0] for d in cur.description]
    return {str(r[0]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}


@pytest.mark.parametrize("rules_file", [DEFAULT_RULES, EVERY_FEATURE], ids=["default", "every_feature"])
def test_a_sync_that_looks_a_quarter_ahead_writes_what_the_whole_timeline_gives(
    org: Org, rules_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync follows each timeline point by point only a little past the evaluation day (the points further on
    collapse into one). Every field equals what the whole timeline gives; the next change day may come earlier
    (a day to look again), never later."""
    org.load_demo(contacts=300, seed=37)
    rules = load(rules_file)
    monkeypatch.setattr(timeline_base, "LOOKAHEAD_DAYS", 1)  # as short as the grace period allows: most collapse
    crm = LocalCrm.open(org.database)
    try:
        crm.prepare(org.config.fields)
        _place(crm.con, rules, org.as_of)
        whole = _timeline_rows(crm.con)
        engine.compute(crm.con, rules, org.as_of, cache={})
        ahead = _timeline_rows(crm.con)
    finally:
        crm.close()
    assert whole.keys() == ahead.keys()
    rechecked = 0
    for cid, exact in whole.items():
        got = dict(ahead[cid])
        soon, later = got.pop("next_change"), exact["next_change"]
        if later is not None:
            assert soon is not None and soon <= later, (cid, soon, later)
        rechecked += soon != later
        assert got == {k: v for k, v in exact.items() if k != "next_change"}, cid
    assert rechecked  # the lookahead did cut some timelines short


COMES_BACK = """\
name: comes-back
ladder:
  demotion_grace_days: 30
  top_next_step: "Keep talking with them"
kinds:
  reply: {match: "TaskSubtype = 'Email' AND Subject LIKE 'Re:%'"}
  push: {match: "TaskSubtype = 'Email' AND NOT Subject LIKE 'Re:%'"}
features:
  replies: {count: [reply], within_days: 180}
  pushes: {count: [push], within_days: 14}
rungs:
  - name: Fringe
  - name: Friend
    requires:
      - when: "replies >= 1"
  - name: Familiar
    requires:
      - when: "pushes = 0"
"""


def test_a_held_contact_that_qualifies_again_on_its_own_is_dated_from_the_whole_timeline(
    org: Org, tmp_path: Path
) -> None:
    """Familiar on a reply, held there by the grace period after a push email, and Familiar again once the push is
    two weeks old, with nothing new logged: the day it would drop lies past the sync's lookahead (after the reply
    leaves its 180-day window), and the sync still writes it, as the whole timeline has it."""
    rules_file = tmp_path / "comes-back.yaml"
    rules_file.write_text(COMES_BACK, encoding="utf-8")
    org.rules = rules_file
    cid = org.contact("Rita", known_for_days=400)
    org.reply(cid, 20)
    org.email_out(cid, 5, "Our spring offer")
    org.sync()
    written = org.fields(cid)
    crm = LocalCrm.open(org.database)
    try:
        crm.prepare(org.config.fields)
        _place(crm.con, load(rules_file), org.as_of)
        exact = _timeline_rows(crm.con)[cid]
    finally:
        crm.close()
    assert written["stage"] == "Familiar"
    assert exact["in_grace"] and exact["held_until"] is not None
    assert exact["held_until"] > org.as_of + dt.timedelta(days=timeline_base.lookahead(load(rules_file)))
    assert written["held_until"] == exact["held_until"]


WEEKS = """\
name: weeks
ladder:
  top_next_step: "Keep writing"
kinds:
  reply: {match: "TaskSubtype = 'Email' AND Subject LIKE 'Re:%'"}
features:
  weeks_20: {distinct_periods: [reply], period: week, periods: 20}
  weeks_60: {distinct_periods: [reply], period: week, periods: 60}
  weeks_70: {distinct_periods: [reply], period: week, periods: 70}
rungs:
  - name: Fringe
  - name: Steady
    requires:
      - when: "weeks_60 = 60 AND weeks_20 = 20"
  - name: Constant
    requires:
      - when: "weeks_70 = 70"
"""


def test_periods_are_counted_alike_however_many_a_feature_looks_back(org: Org, tmp_path: Path) -> None:
    """Up to 62 periods are counted as bits of one number, more by a distinct count (and on the timeline, up to 24
    from a table of the contact's periods, more by a window per period, both over the same replies here): a reply
    every week for 80 weeks fills 60 of 60 and 70 of 70; one missed week, 14 weeks ago, leaves 59 and 69."""
    rules_file = tmp_path / "weeks.yaml"
    rules_file.write_text(WEEKS, encoding="utf-8")
    rules = load(rules_file)
    every, gap = org.contact("Wes", known_for_days=700), org.contact("Gil", known_for_days=700)
    for week in range(80):
        org.reply(every, 7 * week)
        if week != 14:
            org.reply(gap, 7 * week)
    crm = LocalCrm.open(org.database)
    try:
        crm.prepare(org.config.fields)
        _place(crm.con, rules, org.as_of)
        got = {
            str(r[0]): r[1:]
            for r in crm.con.execute("SELECT cid, f_weeks_60, f_weeks_70, final FROM tl_place").fetchall()
        }
    finally:
        crm.close()
    assert got[every] == (60, 70, 2)
    assert got[gap] == (59, 69, 0)
