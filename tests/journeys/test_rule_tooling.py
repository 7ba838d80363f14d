"""An admin tunes a rule: edit -> `rules check` (validate and lint) -> `rules test` (rule unit tests) -> commit.

Also: the pre-commit hook that runs `rules check`, and the JSON Schema editors use for rule files.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from connector import ids
from connector.cli.rules import schema_text
from connector.ruleset.schema import RuleFile
from tests.conftest import DEFAULT_RULES, ROOT, Org

DEFAULT_TEXT = DEFAULT_RULES.read_text()
TESTS_DIR = DEFAULT_RULES.parent / "tests"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", "--log-format", "json", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def line_of(text: str, needle: str) -> int:
    return text.count("\n", 0, text.index(needle)) + 1


def edited_rules(tmp_path: Path, *edits: tuple[str, str], name: str = "ladder.yaml") -> Path:
    text = DEFAULT_TEXT
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / name
    path.write_text(text)
    return path


# -- rules check ---------------------------------------------------------------------------------------------


def test_the_default_rules_pass_check_cleanly_and_an_unused_feature_is_named(tmp_path: Path) -> None:
    proc = cli("rules", "check", str(DEFAULT_RULES), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    # No local CRM in this folder: the checks against data are skipped, and the output says so.
    assert lines[0].startswith(f"{DEFAULT_RULES}:1:1: info: no local CRM at ")
    assert lines[-1] == "Checked 1 rule file: 0 errors, 0 warnings, 1 info; passed."

    edited = tmp_path / "ladder.yaml"
    edited.write_text(DEFAULT_TEXT.replace("features:\n", "features:\n  spare_count:\n    count: [meeting]\n", 1))
    proc = cli("rules", "check", "--no-data", str(edited), cwd=tmp_path)
    assert proc.returncode == 0
    line = line_of(edited.read_text(), "  spare_count:")
    assert f"{edited}:{line}:3: warning: feature 'spare_count' is declared but never used" in proc.stdout
    strict = cli("rules", "check", "--strict", "--no-data", str(edited), cwd=tmp_path)
    assert strict.returncode == 4
    assert strict.stdout.splitlines()[-1].endswith("failed (--strict: warnings fail).")


def test_a_higher_rung_with_a_lower_bar_is_flagged_as_thresholds_out_of_order(tmp_path: Path) -> None:
    rules = edited_rules(
        tmp_path,
        ("      - when: conversations_180d >= 1", "      - when: conversations_180d >= 3"),
        ("      - when: listening_120d >= 1", "      - when: conversations_180d >= 1"),
    )
    proc = cli("rules", "check", "--no-data", str(rules), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout  # a warning: the ladder still works, the criterion adds nothing
    line = line_of(rules.read_text(), "      - when: conversations_180d >= 1")
    assert (
        f"{rules}:{line}:15: warning: thresholds out of order: rung 'Familiar' needs 'conversations_180d >= 1', "
        "a lower bar than 'conversations_180d >= 3' on rung 'Friend' below it"
    ) in proc.stdout


def test_a_rung_that_contradicts_a_lower_rung_is_an_error_and_exits_4(tmp_path: Path) -> None:
    rules = edited_rules(
        tmp_path,
        ("      - when: relationship_days >= 365", "      - when: relationship_days >= 365 AND listening_120d = 0"),
    )
    proc = cli("rules", "check", "--no-data", str(rules), cwd=tmp_path)
    assert proc.returncode == 4
    text = rules.read_text()
    familiar = line_of(text, "      - when: listening_120d >= 1")
    assert (
        f"{rules}:{line_of(text, 'listening_120d = 0')}:44: error: no contact can reach rung 'Faithful', nor any "
        f"rung above it (Forever): 'listening_120d = 0' contradicts 'listening_120d >= 1' of rung 'Familiar' below "
        f"it (line {familiar}), and rungs are cumulative; change one of the two thresholds"
    ) in proc.stdout
    assert proc.stdout.splitlines()[-1] == "Checked 1 rule file: 1 error, 0 warnings, 0 info; failed."


def test_conditions_that_are_always_true_or_never_true_are_caught(tmp_path: Path) -> None:
    rules = edited_rules(
        tmp_path,
        ("      - when: listening_120d >= 1", "      - when: listening_120d >= 0"),
        (
            "    when: unthanked IS NOT NULL",
            "    when: unthanked IS NOT NULL AND outbound_90d > 5 AND outbound_90d < 3",
        ),
        ("      - when: two_way_quarters = 3", "      - when: two_way_quarters = 4"),
    )
    proc = cli("rules", "check", "--no-data", str(rules), cwd=tmp_path)
    assert proc.returncode == 4
    out = proc.stdout
    assert (
        "warning: 'listening_120d >= 0' is always true: listening_120d is a count (0 or more); remove it or "
        "raise the threshold"
    ) in out
    assert "error: 'outbound_90d < 3' contradicts 'outbound_90d > 5' in the same condition: it is always false" in out
    assert "error: 'two_way_quarters = 4' is never true: two_way_quarters is a number of periods from 0 to 3" in out


def test_a_load_error_keeps_its_position_and_suggestion_and_json_suits_tools(tmp_path: Path) -> None:
    rules = edited_rules(tmp_path, ("      - when: listening_120d >= 1", "      - when: listning_120d >= 1"))
    proc = cli("rules", "check", "--no-data", "--format", "json", str(rules), cwd=tmp_path)
    assert proc.returncode == 4
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    assert doc["summary"] == {"errors": 1, "warnings": 0, "infos": 0}
    assert doc["findings"] == [
        {
            "path": str(rules),
            "line": line_of(rules.read_text(), "listning_120d"),
            "col": 15,
            "severity": "error",
            "message": "unknown name 'listning_120d' (did you mean 'listening_120d'?)",
        }
    ]


def test_check_reads_the_local_crm_for_kinds_that_match_nothing_and_for_picklists(org: Org) -> None:
    cid = org.contact()
    org.reply(cid, 5)
    org.call(cid, 20, "Check-in call")
    rules = edited_rules(
        org.folder,
        ("  thank_you:\n", "  webinar:\n    match: Subject LIKE '%webinar%'\n  thank_you:\n"),
        ("    count: [listening]\n", "    count: [listening, webinar]\n"),
        ("  - name: Forever", "  - name: Evangelist"),
    )
    config = org.folder / "trust-ladder.toml"
    config.write_text(f'[local]\ndatabase = "crm.duckdb"\n[rules]\npath = "{rules}"\n')
    proc = cli("--config", str(config), "rules", "check", cwd=org.folder)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    text = rules.read_text()
    shown = rules.name  # the configured rule file, shown relative to where the admin stands
    assert (
        f"{shown}:{line_of(text, '  webinar:')}:3: warning: kind 'webinar' matches none of the 2 activities in "
        f"the local CRM {org.database}"
    ) in proc.stdout
    assert (
        f"{shown}:{line_of(text, 'Evangelist')}:5: error: rung 'Evangelist' is not a value of the CRM picklist "
        "Trust_Stage__c"
    ) in proc.stdout
    # Kinds the data does match are not reported.
    assert "kind 'inbound_email'" not in proc.stdout


def test_check_data_shows_what_share_of_the_orgs_own_activity_the_rules_cannot_read(org: Org) -> None:
    """An admin about to tune the rules asks how much of the org's logging they read: per kind, none at all, and
    the subjects behind the gap, most common first; a shared activity counts once."""
    ada, omar = org.contact("Ada"), org.contact("Omar")
    for days in (3, 10, 17):
        org.task(ada, days, "Prepare onsite visit")
    org.task(omar, 4, "prepare onsite visit ")
    org.task(omar, 5, "Log notes")
    org.reply(ada, 5)
    org.call(omar, 6, "Call", seconds=1500)
    org.meeting(ada, 8, "Renewal negotiation check-in")
    config = org.folder / "trust-ladder.toml"
    config.write_text(f'[local]\ndatabase = "crm.duckdb"\n[rules]\npath = "{DEFAULT_RULES}"\n')
    proc = cli("--config", str(config), "rules", "check", "--data", "--format", "json", cwd=org.folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)["files"][0]["data"]
    assert data["activities"] == 8
    assert data["unmatched"] == 5
    assert data["per_kind"]["inbound_email"] == 1
    assert data["per_kind"]["listening"] == 1  # the 25-minute "Call"; the negotiation is a meeting, not listening
    assert data["per_kind"]["meeting"] == 1
    assert data["unmatched_subjects"] == [["Prepare onsite visit", 4], ["Log notes", 1]]
    assert ["Call", 1] in data["short_subjects"]
    text = cli("--config", str(config), "rules", "check", "--data", cwd=org.folder).stdout
    assert "  no kind                     5   62.5%   <- what the rules cannot read" in text
    assert "        4  Prepare onsite visit" in text
    both = cli("--config", str(config), "rules", "check", "--data", "--no-data", cwd=org.folder)
    assert both.returncode == 2 and "--data reads the local CRM" in both.stderr


def test_the_sync_summary_and_check_data_say_what_they_count_and_reconcile(org: Org) -> None:
    """A new user runs the demo (its summary: "activities classified") and then `rules check --data` (its total)
    and gets two figures for one org. Each says what it counts, and the check walks from its total to the sync's:
    less the activities of no kind, less those dated after the day, then each once per contact who took part."""
    ada, omar = org.contact("Ada"), org.contact("Omar")
    meeting = org.meeting(ada, 8, "Quarterly review")  # shared: read once for Ada, once for Omar
    org._exec(
        'INSERT INTO "EventRelation" ("Id", "EventId", "RelationId", "IsWhat", "IsInvitee", "Status") '
        "VALUES (?, ?, ?, false, true, 'Accepted')",
        [ids.make(ids.EVENT_RELATION, 1), meeting, omar],
    )
    org.reply(ada, 5)
    org.reply(omar, -4)  # logged ahead of the day: read by a later sync, not this one
    org.task(omar, 5, "Log notes")  # no kind
    config = org.folder / "trust-ladder.toml"
    config.write_text(
        f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n[rules]\npath = "{DEFAULT_RULES}"\n'
    )
    day = org.as_of.isoformat()
    synced = cli("--config", str(config), "sync", "--as-of", day, cwd=org.folder)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert (
        f"Contacts seen: 2   activities classified: 3 (of a kind and dated on or before {day}, once per contact "
        "who took part)"
    ) in synced.stdout
    checked = cli("--config", str(config), "rules", "check", "--data", "--as-of", day, cwd=org.folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "4 activities in the local CRM (each once, however many contacts took part; every date)" in checked.stdout
    assert (
        f"A sync as of {day} reads 2 of them: the 4 less the 1 of no kind and the 1 dated after {day}. It counts "
        "each once per contact it is read for (a shared one for each who took part): its summary's 3 activities "
        "classified."
    ) in checked.stdout
    # A second sync of the same day reads no contact again, and says so rather than "0 activities".
    again = cli("--config", str(config), "sync", "--as-of", day, cwd=org.folder)
    assert "Contacts seen: 2, none read again: nothing changed that could move one" in again.stdout
    # One new reply of Ada's: only she is read again, and the figure says whose activities it counts.
    org.reply(ada, 1)
    one = cli("--config", str(config), "sync", "--as-of", day, cwd=org.folder)
    assert "Contacts seen: 2, 1 of them read again (history changed, or a change day came; " in one.stdout
    assert f"Activities classified: 3, those contacts' (of a kind and dated on or before {day}, " in one.stdout


def test_the_pre_commit_hook_runs_check_on_rule_files_and_rule_test_files(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "trust-ladder-rules-check"
    assert hook["entry"] == "trust-ladder rules check"
    assert hook["language"] == "python"
    pattern = re.compile(hook["files"])
    assert pattern.search("rules/ladder.yaml")
    assert pattern.search("rules/tests/flags.yml")
    assert not pattern.search("rules/ladder.schema.json")
    assert not pattern.search("connector/cli.py")
    # pre-commit passes the changed files; rule test files are validated against the rules they test.
    files = [str(DEFAULT_RULES), *sorted(str(p) for p in TESTS_DIR.glob("*.yaml"))]
    proc = cli("rules", "check", "--no-data", *files, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.splitlines()[-1] == (
        f"Checked 1 rule file, {len(files) - 1} rule test files: 0 errors, 0 warnings, 0 info; passed."
    )


# -- rules test ----------------------------------------------------------------------------------------------


def write_tests(folder: Path, body: str, name: str = "cases.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"rules: {DEFAULT_RULES}\nas_of: 2026-06-15\n{body}")
    return path


def test_the_shipped_rule_tests_pass_and_exercise_every_rung_flag_and_kind(tmp_path: Path) -> None:
    proc = cli("rules", "test", str(TESTS_DIR), "--min-coverage", "100", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert f"{TESTS_DIR / 'rungs.yaml'}::a reply exactly 180 days old is outside the 180-day window PASSED" in out
    assert (
        f"{TESTS_DIR / 'rungs.yaml'}::a listening call exactly 120 days old is outside the 120-day window PASSED" in out
    )
    assert "100.0% - rungs 5/5, flags 2/2, kinds 18/18" in out
    assert "every rung, flag and kind is exercised" in out
    assert re.search(r"=+ \d+ passed in [\d.]+s =+$", out.strip())


def test_the_default_test_folder_is_the_one_beside_the_configured_rules(tmp_path: Path) -> None:
    proc = cli("rules", "test", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rules/tests/flags.yaml::" in proc.stdout


def test_a_kind_hint_on_a_shared_meeting_is_checked_for_the_cases_own_contact(tmp_path: Path) -> None:
    """Bo came to the workshop Ada declined: a meeting for Bo, nothing for Ada. The hint on Ada's activity is
    about Ada, so Bo's row must not make it pass."""
    path = write_tests(
        tmp_path / "tests",
        """\
cases:
  - name: a declined workshop is a meeting for Ada
    contact: {FirstName: Ada}
    activities:
      - {days_ago: 10, object: Event, Subject: Workshop, with: [Bo came], declined: true, kind_hint: meeting}
    expect: {rung: Fringe}
  - name: Bo came
    contact: {FirstName: Bo}
    expect: {rung: Friend}
""",
    )
    proc = cli("rules", "test", str(path), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert f"{path}::a declined workshop is a meeting for Ada FAILED" in out
    assert f"{path}::Bo came PASSED" in out
    assert (
        "  activity 1 (line 7): kind_hint meeting, but for this case's contact (Ada Tester) it is classified as "
        "no kind (or dated after as_of)" in out
    )


def test_a_failing_case_shows_expected_and_actual_with_the_explain_trace_and_exits_1(tmp_path: Path) -> None:
    path = write_tests(
        tmp_path / "tests",
        """\
cases:
  - name: one reply is enough for Familiar
    contact: {FirstName: Ada}
    activities:
      - {days_ago: 10, TaskSubtype: Email, Subject: "Re: Pricing", kind_hint: listening}
    expect: {rung: Familiar, flags: [Missing listening], flag_since: {missing_listening: 2026-01-05}}
  - name: one reply makes a Friend
    activities:
      - {days_ago: 10, TaskSubtype: Email, Subject: "Re: Pricing"}
    expect: {rung: Friend, next_step_contains: Book a listening conversation}
""",
    )
    proc = cli("rules", "test", str(path), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert f"{path}::one reply is enough for Familiar FAILED" in out
    assert f"{path}::one reply makes a Friend PASSED" in out
    assert f"{path}:4: case 'one reply is enough for Familiar'" in out
    assert "  rung: expected Familiar, got Friend" in out
    # The flag as users see it on the contact (the rule file's label), its key in brackets for the admin.
    assert "  flags: expected [Missing listening (missing_listening)], got [none]" in out
    assert "  flag_since Missing listening (missing_listening): expected 2026-01-05, got not open" in out
    assert (
        "  activity 1 (line 7): kind_hint listening, but for this case's contact (Ada Tester) it is classified as "
        "inbound_email" in out
    )
    # The explain trace says why, criterion by criterion, with the numbers.
    assert "    Ada Tester (" in out
    assert (
        "      [ ] regular two-way contact (3 conversations in 180 days, or one in each of the last 2 quarters)" in out
    )
    assert (
        "            conversations_180d >= 3 OR two_way_quarters_2 = 2   (conversations_180d = 1, "
        "two_way_quarters_2 = 1)"
    ) in out
    assert re.search(r"=+ 1 failed, 1 passed in [\d.]+s =+$", out.strip())


def test_coverage_below_the_threshold_fails_the_run_and_names_what_is_missing(tmp_path: Path) -> None:
    path = write_tests(
        tmp_path,
        """\
cases:
  - name: a reply makes a Friend
    activities:
      - {days_ago: 10, TaskSubtype: Email, Subject: "Re: Pricing"}
    expect: {rung: Friend, flags: []}
""",
    )
    proc = cli("rules", "test", str(path), "--min-coverage", "50", cwd=tmp_path)
    assert proc.returncode == 1
    # 1 of 5 rungs, 0 of 2 flags, 1 of 18 kinds: 2 of 25.
    assert "8.0% - rungs 1/5, flags 0/2, kinds 1/18" in proc.stdout
    assert "not exercised: rung Fringe, rung Familiar" in proc.stdout
    assert "coverage 8.0% is below --min-coverage 50%" in proc.stdout
    assert cli("rules", "test", str(path), "--min-coverage", "8", cwd=tmp_path).returncode == 0


def test_an_invalid_test_file_is_reported_with_file_line_col_and_exits_4(tmp_path: Path) -> None:
    shape = write_tests(
        tmp_path,
        """\
cases:
  - name: typo in a key
    contact: {FristName: Ada}
    expect: {rung: Friend}
""",
        name="shape.yaml",
    )
    names = write_tests(
        tmp_path,
        """\
cases:
  - name: unknown names
    activities:
      - {days_ago: 3, object: Event, Subject: Lunch, kind_hint: meting}
    expect: {rung: Familar, flags: [missing_listning]}
""",
        name="names.yaml",
    )
    proc = cli("rules", "test", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout
    out = proc.stdout.splitlines()
    assert f"{shape}:5:15: error: unknown key 'FristName' (did you mean 'FirstName'?)" in out
    first = out.index(f"{names}:6:54: error: unknown kind 'meting' (did you mean 'meeting'?) in {DEFAULT_RULES}")
    assert out[first : first + 3] == [
        f"{names}:6:54: error: unknown kind 'meting' (did you mean 'meeting'?) in {DEFAULT_RULES}",
        f"{names}:7:14: error: unknown rung 'Familar' (did you mean 'Familiar'?) in {DEFAULT_RULES}",
        f"{names}:7:37: error: unknown flag 'missing_listning' (did you mean 'missing_listening'?) in {DEFAULT_RULES}",
    ]

    # `rules check` validates test files the same way, so the pre-commit hook catches them too.
    check = cli("rules", "check", "--no-data", str(names), cwd=tmp_path)
    assert check.returncode == 4
    assert f"{names}:7:14: error: unknown rung 'Familar' (did you mean 'Familiar'?) in {DEFAULT_RULES}" in check.stdout


def test_a_broken_rule_file_under_test_exits_4_with_its_own_positions(tmp_path: Path) -> None:
    rules = edited_rules(tmp_path, ("      - when: listening_120d >= 1", "      - when: listning_120d >= 1"))
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "t.yaml").write_text("cases:\n  - name: x\n    expect: {rung: Fringe}\n")
    proc = cli("rules", "test", str(tests), cwd=tmp_path)
    assert proc.returncode == 4
    line = line_of(rules.read_text(), "listning_120d")
    assert f"{rules}:{line}:15: error: unknown name 'listning_120d'" in proc.stdout


# -- JSON Schema ---------------------------------------------------------------------------------------------


def test_the_committed_schema_is_the_generated_one(tmp_path: Path) -> None:
    committed = DEFAULT_RULES.parent / "ladder.schema.json"
    assert committed.read_text() == schema_text(), "run `trust-ladder rules schema --out rules/ladder.schema.json`"
    out = tmp_path / "schema.json"
    proc = cli("rules", "schema", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == committed.read_text()


def test_the_default_rules_name_their_schema_and_validate_against_it() -> None:
    assert DEFAULT_TEXT.splitlines()[0] == "# yaml-language-server: $schema=./ladder.schema.json"
    schema = json.loads((DEFAULT_RULES.parent / "ladder.schema.json").read_text())
    data = yaml.safe_load(DEFAULT_TEXT)
    RuleFile.model_validate(data)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert [e.message for e in problems(data, schema)] == []
    # Editors show help: every property of every model has a description.
    for name, model in [("RuleFile", schema), *schema["$defs"].items()]:
        for prop, spec in model["properties"].items():
            assert spec.get("description"), f"{name}.{prop} has no description"
    # And the schema catches what the rule loader catches: a typo in a key, a second feature type.
    bad = yaml.safe_load(DEFAULT_TEXT.replace("  decay_every_days: 90", "  decay_evry_days: 90"))
    assert any(e.validator == "additionalProperties" and "decay_evry_days" in e.message for e in problems(bad, schema))
    two = yaml.safe_load(
        DEFAULT_TEXT.replace("    count: [listening]\n", "    count: [listening]\n    last: [meeting]\n")
    )
    assert any(e.validator == "oneOf" for e in problems(two, schema))


def problems(data: Any, schema: dict[str, Any]) -> list[jsonschema.ValidationError]:
    """Every error a real JSON Schema validator finds, with those under anyOf/oneOf branches."""
    found: list[jsonschema.ValidationError] = []
    pending = list(jsonschema.Draft202012Validator(schema).iter_errors(data))
    while pending:
        error = pending.pop()
        found.append(error)
        pending.extend(error.context or [])
    return found


def test_test_files_refuse_what_cannot_be_meant(tmp_path: Path) -> None:
    path = write_tests(
        tmp_path,
        """\
cases:
  - name: same name
    state: {demotion_from: Familiar, failing_for_days: 40}
    expect: {rung: Friend}
  - name: same name
    activities:
      - {days_ago: 3, object: Event, TaskSubtype: Call}
    expect: {rung: Friend}
""",
    )
    proc = cli("rules", "test", str(path), cwd=tmp_path)
    assert proc.returncode == 4
    assert f"{path}:9:9: error: Event has no field TaskSubtype" in proc.stdout
    fixed = path.read_text().replace("object: Event, TaskSubtype: Call", "object: Event, Subject: Lunch")
    path.write_text(fixed)
    proc = cli("rules", "test", str(path), cwd=tmp_path)
    assert proc.stdout.splitlines()[:2] == [
        (
            f"{path}:5:5: error: `state` is no longer read: a demotion grace runs from the contact's own history. "
            "Give the activities that met the rung it is held on (with days_ago), and drop `state`"
        ),
        f"{path}:7:5: error: duplicate case name 'same name' (case 1 has it)",
    ]
