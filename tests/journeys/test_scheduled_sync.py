"""Syncing again and again: no writes without news, demotion only after grace, decay when quiet."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from tests.conftest import Org
from tests.journeys.test_admin_rules import run_cli, write_config


def test_second_sync_with_no_new_activity_writes_nothing(org: Org) -> None:
    for name in ("Ada", "Bob", "Cy"):
        org.familiar_contact(name)
    org.contact("Dee")
    first = org.sync()
    before = org.snapshot()
    second = org.sync()
    assert first.changed == 4
    assert second.changed == 0
    assert second.planned_records == 0
    assert org.snapshot() == before  # not even SystemModstamp moved


def test_a_dry_run_plans_changes_and_writes_nothing(org: Org) -> None:
    cid = org.familiar_contact()
    before = org.snapshot()
    result = org.sync(dry_run=True)
    assert result.planned_records == 1
    assert result.changed == 0
    assert {c.field for c in result.sample if c.contact_id == cid} >= {"Trust_Stage__c", "Trust_Reason__c"}
    assert org.snapshot() == before


def test_a_demotion_waits_for_the_grace_period(org: Org) -> None:
    cid = org.familiar_contact()
    org.sync()
    assert org.fields(cid)["stage"] == "Familiar"
    # On day 30 the discovery call (day -90) is 120 days old: no listening in 120 days, Familiar is no longer met.
    # It was last met on day 29, so it is held 30 days from day 30, whichever day a sync first sees it.
    org.sync(days_later=31)
    f = org.fields(cid)
    assert f["stage"] == "Familiar"
    assert f["reason"].startswith("Held at Familiar during the demotion grace period, until 14 Aug 2026")
    # What to do to keep the rung and by when, then what is slipping; not about climbing to Faithful.
    assert f["next_step"] == (
        "To stay Familiar past 14 Aug 2026: book a listening conversation with Ada (last one 17 Mar 2026). "
        "Slipping: a listening conversation in the last 120 days."
    )
    org.sync(days_later=30 + 29)
    assert org.fields(cid)["stage"] == "Familiar"
    org.sync(days_later=30 + 30)
    f = org.fields(cid)
    assert f["stage"] == "Friend"
    assert f["since"] == org.day(-60)


def test_a_contact_that_recovers_during_grace_keeps_its_rung_and_its_date(org: Org) -> None:
    cid = org.familiar_contact()
    org.sync()
    reached = org.fields(cid)["since"]
    assert reached < org.as_of  # read from the history: the day its activities made it Familiar
    org.sync(days_later=31)
    org.call(cid, -40, "Check-in call")
    org.sync(days_later=45)
    f = org.fields(cid)
    assert f["stage"] == "Familiar"
    assert f["since"] == reached
    assert not f["reason"].startswith("Held")


def test_a_quiet_relationship_decays_one_rung_per_idle_period(org: Org) -> None:
    cid = org.forever_contact()
    org.sync()
    assert org.fields(cid)["stage"] == "Forever"
    stages = {}
    for later in (79, 80, 109, 110, 199, 200, 289, 290, 379, 380):
        org.sync(days_later=later)
        f = org.fields(cid)
        stages[later] = (f["stage"], (f["since"] - org.as_of).days)
    # The discovery session (day -40) turns 120 days old on day 80: no rung above Friend is met from then on, and
    # Friend itself only until day 169. Forever was last met on day 79: held 30 days, then one rung every 90.
    assert stages == {
        79: ("Forever", stages[79][1]),
        80: ("Forever", stages[79][1]),
        109: ("Forever", stages[79][1]),
        110: ("Faithful", 110),
        199: ("Faithful", 110),
        200: ("Familiar", 200),
        289: ("Familiar", 200),
        290: ("Friend", 290),
        379: ("Friend", 290),
        380: ("Fringe", 380),
    }
    assert stages[79][1] < 0  # Forever since a day of its history, before the first sync


def test_the_rules_version_is_written_with_every_change_and_only_then(org: Org, tmp_path: Path) -> None:
    cid = org.familiar_contact()
    first = org.sync()
    assert org.fields(cid)["version"] == first.rules_version
    assert first.rules_version.startswith("default@")
    # An edit that moves nobody (a comment) gives a new version but costs no write.
    edited = tmp_path / "ladder.yaml"
    edited.write_text(org.rules.read_text() + "\n# tuned nothing\n")
    second = org.sync(rules=edited)
    assert second.rules_version != first.rules_version
    assert second.changed == 0
    assert org.fields(cid)["version"] == first.rules_version


def test_after_grace_a_decaying_contact_says_so_and_is_no_longer_counted_in_grace(org: Org) -> None:
    cid = org.forever_contact()
    org.sync()
    held = org.sync(days_later=100)  # Forever last met on day 79 (see the decay journey above)
    assert held.in_grace == 1
    decaying = org.sync(days_later=240)
    assert decaying.in_grace == 0
    f = org.fields(cid)
    assert f["stage"] == "Familiar"
    # Day 290 (1 Apr 2027) is when it drops to Friend if nothing happens.
    assert f["reason"].startswith(
        "Familiar, decaying: it drops one rung every 90 days, the next on 1 Apr 2027; slipping: "
    )


def test_without_decay_a_contact_drops_straight_to_its_rung_once_grace_is_over(org: Org, tmp_path: Path) -> None:
    no_decay = tmp_path / "ladder.yaml"
    no_decay.write_text(org.rules.read_text().replace("decay_every_days: 90", "decay_every_days: null"))
    cid = org.forever_contact()
    org.sync(rules=no_decay)
    org.sync(days_later=100, rules=no_decay)
    org.sync(days_later=109, rules=no_decay)
    assert org.fields(cid)["stage"] == "Forever"
    org.sync(days_later=110, rules=no_decay)  # the grace from day 80 is over: down to Friend, met until day 169
    assert org.fields(cid)["stage"] == "Friend"
    org.sync(days_later=200, rules=no_decay)  # Friend was last met on day 169: 30 days later, Fringe
    assert org.fields(cid)["stage"] == "Fringe"


def test_explain_on_an_earlier_date_shows_the_contact_as_it_stood_that_day(org: Org) -> None:
    cid = org.familiar_contact()
    org.sync()
    org.sync(days_later=31)  # held since day 30, when the discovery call left the 120-day window
    config = write_config(org)

    def explained(days_later: int) -> dict[str, Any]:
        day = (org.as_of + dt.timedelta(days=days_later)).isoformat()
        proc = run_cli("explain", cid, "--as-of", day, "--json", cwd=org.folder, env_config=config)
        assert proc.returncode == 0, proc.stderr
        got: dict[str, Any] = json.loads(proc.stdout)
        return got

    on_the_day = explained(31)
    assert on_the_day["in_grace"]
    assert "until 14 Aug 2026" in on_the_day["reason"]  # the grace from day 30, read from the history
    # 60 days before that sync, its watch (failing since a day still to come) does not apply: the contact is
    # explained as a sync on that day would place it.
    before = explained(-29)
    assert "14 Aug 2026" not in before["reason"]
    assert not before["in_grace"]


def _quiet(org: Org, **kwargs: Any) -> tuple[bool, Any]:
    """A sync, and whether it ended before the engine (nothing changed since the last complete run)."""
    from structlog.testing import capture_logs  # noqa: PLC0415 - only these journeys read the log

    with capture_logs() as logs:
        result = org.sync(**kwargs)
    return any(e["event"] == "sync.unchanged" for e in logs), result


def test_a_run_every_15_minutes_with_nothing_new_stops_before_the_engine_and_any_change_wakes_it(org: Org) -> None:
    ada = org.familiar_contact("Ada")
    org.contact("Dee")
    first_quiet, first = _quiet(org)
    assert not first_quiet and first.changed == 2

    quiet, again = _quiet(org)  # the same day, nothing new: the last run's result stands
    assert quiet
    assert (again.changed, again.activities, again.planned_records) == (0, 0, 0)
    assert (again.contacts, again.per_rung, again.flags) == (first.contacts, first.per_rung, first.flags)

    org.reply(ada, 0, "Re: thanks for the call")  # a new activity
    assert not _quiet(org)[0]
    assert _quiet(org)[0]

    for subject in ("Re: a question", "Re: a later question"):
        org.task(ada, 5, subject)
    org._exec('UPDATE "Task" SET "SystemModstamp" = now() WHERE "Subject" = \'Re: a question\'', [])
    org._exec('UPDATE "Task" SET "SystemModstamp" = now() + INTERVAL 1 DAY WHERE "Subject" LIKE \'%later%\'', [])
    assert not _quiet(org)[0]
    org._exec(  # edited by hand and stamped with a time before the last run: neither count nor newest stamp moves
        'UPDATE "Task" SET "Subject" = \'Discovery call\', "SystemModstamp" = TIMESTAMP \'2020-01-01 00:00\' '
        "WHERE \"Subject\" = 'Re: a question'",
        [],
    )
    assert not _quiet(org)[0]
    assert _quiet(org)[0]

    org._exec('UPDATE "Contact" SET "Trust_Stage__c" = NULL, "SystemModstamp" = now() WHERE "Id" = ?', [ada])
    woke, fixed = _quiet(org)  # someone cleared a trust field by hand: the next run puts it back
    assert not woke and fixed.changed == 1
    assert org.fields(ada)["stage"] == "Familiar"

    assert not _quiet(org, days_later=1)[0]  # the first run of a day: time moves the ladder
    assert not _quiet(org, days_later=1, dry_run=True)[0]  # a dry run always computes what it shows
    assert _quiet(org, days_later=1)[0]


def test_a_rule_edit_wakes_the_quiet_run(org: Org, tmp_path: Path) -> None:
    org.familiar_contact("Ada")
    org.sync()
    assert _quiet(org)[0]
    edited = tmp_path / "ladder.yaml"
    edited.write_text(org.rules.read_text().replace("demotion_grace_days: 30", "demotion_grace_days: 31"))
    assert "demotion_grace_days: 31" in edited.read_text()
    assert not _quiet(org, rules=edited)[0]


def test_a_crm_made_by_an_earlier_release_without_the_deal_tables_syncs_and_rests(org: Org) -> None:
    org.familiar_contact("Ada")
    org._exec('DROP TABLE IF EXISTS "OpportunityContactRole"', [])
    org._exec('DROP TABLE IF EXISTS "Opportunity"', [])
    assert not _quiet(org)[0]
    assert _quiet(org)[0]
