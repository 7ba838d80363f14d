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
    # 31 days on, the discovery call is 91 days old: no listening in 90 days, Familiar is no longer met.
    org.sync(days_later=31)
    f = org.fields(cid)
    assert f["stage"] == "Familiar"
    assert f["reason"].startswith("Held at Familiar during the demotion grace period, until 15 Aug 2026")
    # Advice about what is slipping and by when, not about climbing to Faithful.
    assert f["next_step"] == (
        "Familiar until 15 Aug 2026: no longer a listening conversation in the last 120 days. "
        "Book a listening conversation with Ada (last one 17 Mar 2026)"
    )
    org.sync(days_later=31 + 29)
    assert org.fields(cid)["stage"] == "Familiar"
    org.sync(days_later=31 + 30)
    f = org.fields(cid)
    assert f["stage"] == "Friend"
    assert f["since"] == org.day(-61)


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
    for later in (200, 229, 230, 319, 320, 410, 500):
        org.sync(days_later=later)
        stages[later] = org.fields(cid)["stage"]
    # Nothing is met after ~190 quiet days; failing since day 200: grace 30 days, then one rung every 90.
    assert stages == {
        200: "Forever",
        229: "Forever",
        230: "Faithful",
        319: "Faithful",
        320: "Familiar",
        410: "Friend",
        500: "Fringe",
    }


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
    held = org.sync(days_later=200)
    assert held.in_grace == 1
    decaying = org.sync(days_later=240)
    assert decaying.in_grace == 0
    f = org.fields(cid)
    assert f["stage"] == "Faithful"
    assert f["reason"].startswith("Faithful, decaying: it no longer meets ")
    assert f["reason"].endswith("so it drops one rung every 90 days since 31 Jan 2027.")


def test_without_decay_a_contact_drops_straight_to_its_rung_once_grace_is_over(org: Org, tmp_path: Path) -> None:
    no_decay = tmp_path / "ladder.yaml"
    no_decay.write_text(org.rules.read_text().replace("decay_every_days: 90", "decay_every_days: null"))
    cid = org.forever_contact()
    org.sync(rules=no_decay)
    org.sync(days_later=200, rules=no_decay)
    org.sync(days_later=229, rules=no_decay)
    assert org.fields(cid)["stage"] == "Forever"
    org.sync(days_later=230, rules=no_decay)
    assert org.fields(cid)["stage"] == "Fringe"


def test_explain_on_a_date_before_the_last_sync_does_not_apply_its_watch(org: Org) -> None:
    cid = org.familiar_contact()
    org.sync()
    org.sync(days_later=31)  # held from today (failing since day 31): the watch the state store keeps
    config = write_config(org)

    def explained(days_later: int) -> dict[str, Any]:
        day = (org.as_of + dt.timedelta(days=days_later)).isoformat()
        proc = run_cli("explain", cid, "--as-of", day, "--json", cwd=org.folder, env_config=config)
        assert proc.returncode == 0, proc.stderr
        got: dict[str, Any] = json.loads(proc.stdout)
        return got

    on_the_day = explained(31)
    assert on_the_day["in_grace"]
    assert "until 15 Aug 2026" in on_the_day["reason"]  # the watch's grace period, from day 31
    # 60 days before that sync, its watch (failing since a day still to come) does not apply: the contact is
    # explained as a sync on that day would place it.
    before = explained(-29)
    assert "15 Aug 2026" not in before["reason"]
