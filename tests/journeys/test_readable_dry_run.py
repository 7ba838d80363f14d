"""An admin reads a dry run before a rule change reaches the CRM (issue 19): each changed text as a word-level diff,
so a reason that changes in one clause is not shown as two identical prefixes; `status` says what a dry run
planned instead of "changed 0"."""

from __future__ import annotations

import re

from connector.commands.word_diff import word_diff
from tests.conftest import Org
from tests.journeys.test_simulate_report import cli, familiar, raised_threshold


def test_a_stricter_rule_shows_the_words_of_each_reason_that_change_and_status_says_what_it_planned(
    org: Org,
) -> None:
    """Ada's three conversations meet Familiar's 'regular two-way contact' at 3 and not at 4: her reason keeps
    its long shared opening and changes in the middle."""
    ada = familiar(org, "Ada", 3)
    assert cli(org, "sync", "--as-of", org.as_of.isoformat()).returncode == 0
    stricter = raised_threshold(org.folder)
    proc = cli(org, "sync", "--dry-run", "--rules", str(stricter), "--as-of", org.as_of.isoformat())
    assert proc.returncode == 0, proc.stderr
    lines = {m.group(1): m.group(2) for m in re.finditer(rf"^  {ada}  (\w+): (.*)$", proc.stdout, re.MULTILINE)}
    assert lines["Trust_Stage__c"] == "[-Familiar-] {+Friend+}"
    reason = lines["Trust_Reason__c"]
    assert "[-Familiar: Regular two-way contact, and we listened.-] {+Friend:" in reason
    assert "regular two-way contact [-(3-] {+(4+} conversations in 180 …" in reason  # the clause that changed
    assert "…" in reason  # the words both sides share are elided, not printed twice
    assert " -> " not in reason
    assert re.fullmatch(r"\[-Friend-\] \{\+\w+\+\}", lines["Trust_Previous_Stage__c"])  # the optional field too

    status = cli(org, "status")
    assert status.returncode == 0, status.stderr
    (run,) = [line for line in status.stdout.splitlines() if " dry_run " in line]
    assert "would change 1 " in run
    assert "changed 0" not in run
    assert "stage 1" in run and "reason 1" in run
    assert re.search(r"would change 1 \(stage 1, .*reason 1.*\)  failed 0", run), run  # the fields beside their count

    again = cli(org, "sync", "--dry-run", "--as-of", org.as_of.isoformat())  # the rules synced: nothing to change
    assert again.returncode == 0, again.stderr
    latest = next(line for line in cli(org, "status").stdout.splitlines() if " dry_run " in line)  # newest first
    assert "would change 0  failed" in latest and "()" not in latest, latest


def test_a_word_diff_marks_only_what_changed() -> None:
    old = "Friend: A real conversation has happened recently. Meets: a reply or a meeting in the last 180 days."
    new = "Friend: A real conversation has happened recently. Meets: a reply or a call in the last 90 days."
    assert word_diff(old, new) == "… reply or a [-meeting-] {+call+} in the last [-180-] {+90+} days."
    assert word_diff("Fringe", "Friend") == "[-Fringe-] {+Friend+}"
    assert word_diff(None, "Friend") == "(empty) -> Friend"
    assert word_diff("a  b", "a b") == "(whitespace only)"
