"""An admin edits the rule file: mistakes are caught with file:line and never reach the CRM."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from connector.errors import RuleError
from connector.ruleset import compiler
from tests.conftest import DEFAULT_RULES, Org

DEFAULT_TEXT = DEFAULT_RULES.read_text()


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth occurrence of `needle`."""
    pos = -1
    for _ in range(nth):
        pos = text.index(needle, pos + 1)
    return text.count("\n", 0, pos) + 1


def edited(old: str, new: str) -> str:
    assert old in DEFAULT_TEXT, old
    return DEFAULT_TEXT.replace(old, new, 1)


def findings(text: str) -> list[str]:
    with pytest.raises(RuleError) as info:
        compiler.load_text(text, "rules/ladder.yaml")
    return [str(f) for f in info.value.findings]


def test_the_default_rules_load() -> None:
    rules = compiler.load(DEFAULT_RULES)
    assert [r.name for r in rules.rungs] == ["Fringe", "Friend", "Familiar", "Faithful", "Forever"]
    assert [f.label for f in rules.flags] == ["Missing thank-you", "Missing listening"]


def test_a_yaml_syntax_error_points_at_its_line() -> None:
    text = edited("  demotion_grace_days: 30", "  demotion_grace_days: [30")
    (msg,) = findings(text)
    assert msg.startswith(f"rules/ladder.yaml:{line_of(text, 'decay_every_days')}:")
    assert "not valid YAML" in msg


def test_an_unknown_feature_is_named_with_the_nearest_known_one() -> None:
    text = edited("      - when: listening_120d >= 1", "      - when: listning_120d >= 1")
    (msg,) = findings(text)
    line = line_of(text, "listning_120d")
    assert msg == (f"rules/ladder.yaml:{line}:15: error: unknown name 'listning_120d' (did you mean 'listening_120d'?)")


def test_a_type_mismatch_says_which_types_clash() -> None:
    text = edited("      - when: conversations_180d >= 3", "      - when: conversations_180d >= 'three'")
    (msg,) = findings(text)
    assert f":{line_of(text, 'three')}:" in msg
    assert "cannot compare a number with a text" in msg


def test_a_condition_that_is_not_true_or_false_is_refused() -> None:
    text = edited("      - when: conversations_180d >= 1", "      - when: conversations_180d")
    (msg,) = findings(text)
    assert "gives a number, but a true/false is needed" in msg


def test_a_duplicate_rung_points_at_the_second_one() -> None:
    text = edited("  - name: Forever", "  - name: Familiar")
    (msg,) = findings(text)
    assert msg.startswith(f"rules/ladder.yaml:{line_of(text, '- name: Familiar', 2)}:5:")
    assert "duplicate rung 'Familiar'" in msg


def test_a_duplicate_yaml_key_is_an_error_not_a_silent_override() -> None:
    text = edited("  demotion_grace_days: 30", "  demotion_grace_days: 30\n  demotion_grace_days: 10")
    (msg,) = findings(text)
    assert "duplicate key 'demotion_grace_days'" in msg


def test_an_unknown_key_and_an_unknown_kind_and_a_bad_placeholder_are_all_reported() -> None:
    text = edited("    count: [advocacy, weathered]", "    count: [advocasy, weathered]")
    text = text.replace("{unthanked.cited}", "{unthankd.cited}")
    msgs = findings(text)
    assert any("unknown activity kind 'advocasy' (did you mean 'advocacy'?)" in m for m in msgs)
    assert any("unknown placeholder '{unthankd.cited}' (did you mean 'unthanked'?)" in m for m in msgs)
    shape = findings(edited("  decay_every_days: 90", "  decay_every_days: 90\n  decay_evry_day: 1"))
    assert any("unknown key 'decay_evry_day'" in m for m in shape)


def test_functions_and_subqueries_are_not_part_of_the_language() -> None:
    for bad in ("read_csv('x') IS NULL", "(SELECT 1) = 1", "conversations_180d >= 1; DROP TABLE Contact"):
        msgs = findings(edited("      - when: conversations_180d >= 1", f'      - when: "{bad}"'))
        assert len(msgs) == 1, msgs


def test_a_bad_rule_file_leaves_the_crm_untouched(org: Org, tmp_path: Path) -> None:
    cid = org.contact()
    org.reply(cid, 5)
    org.sync()
    before = org.snapshot()
    org.reply(cid, 1)
    broken = tmp_path / "broken.yaml"
    broken.write_text(edited("      - when: listening_120d >= 1", "      - when: listning_120d >= 1"))
    with pytest.raises(RuleError):
        org.sync(rules=broken)
    assert org.snapshot() == before


def test_a_rung_missing_from_the_crm_picklist_is_caught_before_any_write(org: Org, tmp_path: Path) -> None:
    cid = org.contact()
    renamed = tmp_path / "renamed.yaml"
    text = edited("  - name: Forever", "  - name: Evangelist")
    renamed.write_text(text)
    with pytest.raises(RuleError) as info:
        org.sync(rules=renamed)
    (finding,) = info.value.findings
    assert finding.line == line_of(text, "Evangelist")
    assert "not a value of the CRM picklist Trust_Stage__c" in finding.message
    assert org.fields(cid)["stage"] is None


def run_cli(*args: str, cwd: Path, env_config: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "connector", "--log-format", "json"]
    if env_config:
        cmd += ["--config", str(env_config)]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, check=False)


def write_config(org: Org, rules: Path | None = None) -> Path:
    path = org.folder / "trust-ladder.toml"
    path.write_text(
        f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n'
        f'[rules]\npath = "{rules or DEFAULT_RULES}"\n'
    )
    return path


def test_cli_rules_error_exits_4_with_file_line_and_logs_json(org: Org, tmp_path: Path) -> None:
    org.contact()
    broken = tmp_path / "broken.yaml"
    broken.write_text(edited("  - name: Forever", "  - name: Familiar"))
    proc = run_cli("sync", cwd=org.folder, env_config=write_config(org, broken))
    assert proc.returncode == 4
    assert f"{broken}:{line_of(broken.read_text(), '- name: Familiar', 2)}:5: error: duplicate rung" in proc.stderr
    assert "nothing was written to the CRM" in proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert events[-1]["event"] == "command.failed"
    assert events[-1]["exit_code"] == 4


def test_cli_config_error_exits_3_and_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "tl.toml"
    bad.write_text("[local]\ndatabse = 'x'\n")
    proc = run_cli("sync", cwd=tmp_path, env_config=bad)
    assert proc.returncode == 3
    assert "[local.databse] unknown key" in proc.stderr


def test_cli_sync_json_summary_and_explain(org: Org) -> None:
    cid = org.contact("Ada")
    org.call(cid, 30, "Product feedback call")
    config = write_config(org)
    proc = run_cli("sync", "--as-of", org.as_of.isoformat(), "--json", cwd=org.folder, env_config=config)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["per_rung"]["Friend"] == 1
    assert summary["flags"] == {"Missing thank-you": 1, "Missing listening": 0}
    events = [json.loads(line)["event"] for line in proc.stderr.splitlines()]
    assert events[0] == "sync.started"
    assert events[-1] == "sync.finished"

    proc = run_cli("explain", cid, "--as-of", org.as_of.isoformat(), cwd=org.folder, env_config=config)
    assert proc.returncode == 0, proc.stderr
    assert "Rung: Friend since 2026-05-16" in proc.stdout  # the day of the call, from its history
    assert (
        "conversations_180d >= 3 OR two_way_quarters_2 = 2   (conversations_180d = 1, two_way_quarters_2 = 1)"
        in proc.stdout
    )
    assert "Missing thank-you: OPEN" in proc.stdout
    assert "2026-05-16  Task" in proc.stdout and "Product feedback call  [feedback]" in proc.stdout

    # Copied from a case-insensitive report or lower-cased by a script: the 18-character suffix gives the case back.
    proc = run_cli("explain", cid.lower(), "--as-of", org.as_of.isoformat(), cwd=org.folder, env_config=config)
    assert proc.returncode == 0, proc.stderr
    assert "Rung: Friend since 2026-05-16" in proc.stdout

    proc = run_cli("explain", "003NOPE", cwd=org.folder, env_config=config)
    assert proc.returncode == 5
    assert "not a Salesforce Id" in proc.stderr


def test_explain_names_the_input_still_unthanked_and_why_the_flag_opened_a_week_after_it(org: Org) -> None:
    """Lea gave feedback on a call, then answered a survey; one thank-you followed. A new user saw "open since"
    one day and a next step citing another, and could not tell which input the thank-you had answered. The explain
    output and the Contact's next step name the open input by kind, day and subject; explain says why the flag
    opened eight days after it (an input counts once it is more than `older_than_days` unthanked) and which input
    the thank-you answered, and when."""
    cid = org.contact("Lea")
    call = org.call(cid, 30, "Product feedback call")
    survey = org.task(cid, 18, "Survey answered")
    org.email_out(cid, 15, "Thanks a lot")
    config = write_config(org)
    assert run_cli("sync", "--as-of", org.as_of.isoformat(), cwd=org.folder, env_config=config).returncode == 0
    next_step = 'Send Lea a thank-you for the feedback of 28 May 2026 ("Survey answered"): unthanked for over 7 days'
    f = org.fields(cid)
    assert f["next_step"] == next_step
    assert f["reason"].endswith(
        " Open: Missing thank-you, they gave us input, a referral or a win and nobody thanked them (still open: the "
        'feedback of 28 May 2026 ("Survey answered"), for over 7 days).'
    )

    proc = run_cli("explain", cid, "--as-of", org.as_of.isoformat(), cwd=org.folder, env_config=config)
    assert proc.returncode == 0, proc.stderr
    assert "Missing thank-you: OPEN for 10 days (since 2026-06-05)" in proc.stdout
    assert (
        f'        open: feedback of 2026-05-28 "Survey answered" ({survey}), 18 days without a thank-you or change '
        "made on their input\n"
        "        open since 2026-06-05, the first day it was more than 7 days without one (older_than_days: 7)\n"
        f'        answered: feedback of 2026-05-16 "Product feedback call" ({call}), on 2026-05-31\n'
    ) in proc.stdout
    assert f"Next step: {next_step}" in proc.stdout


def test_audit_mode_records_what_it_would_write_and_writes_nothing(org: Org) -> None:
    cid = org.contact("Ada")
    org.reply(cid, 5)
    config = org.folder / "trust-ladder.toml"
    config.write_text(
        f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n'
        f'[rules]\npath = "{DEFAULT_RULES}"\nmode = "audit"\n'
    )
    before = org.snapshot()
    proc = run_cli("sync", "--as-of", org.as_of.isoformat(), cwd=org.folder, env_config=config)
    assert proc.returncode == 0, proc.stderr
    assert "Audit mode: 1 records would change; nothing written" in proc.stdout
    assert org.snapshot() == before
    status = json.loads(run_cli("status", "--json", cwd=org.folder, env_config=config).stdout)
    assert status["rules_mode"] == "audit"
    assert status["runs"][0]["outcome"] == "audit"
    changes = {a["field"]: a["new_value"] for a in status["audit_sample"]}
    assert changes["Trust_Stage__c"] == "Friend"
    assert status["audit_changes"] == 5  # stage, since, next step, reason and the previous rung; no flags

    config.write_text(config.read_text().replace('mode = "audit"', 'mode = "enforce"'))
    proc = run_cli("sync", "--as-of", org.as_of.isoformat(), cwd=org.folder, env_config=config)
    assert proc.returncode == 0
    assert org.fields(cid)["stage"] == "Friend"


def test_audit_mode_runs_the_demotion_grace_as_enforcing_would(org: Org) -> None:
    cid = org.familiar_contact()
    org.sync()
    assert org.fields(cid)["stage"] == "Familiar"
    config = org.folder / "trust-ladder.toml"
    config.write_text(
        f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n'
        f'[rules]\npath = "{DEFAULT_RULES}"\nmode = "audit"\n'
    )
    later = (org.as_of + dt.timedelta(days=31)).isoformat()  # the discovery call has left the 90-day window
    assert run_cli("sync", "--as-of", later, cwd=org.folder, env_config=config).returncode == 0
    config.write_text(config.read_text().replace('mode = "audit"', 'mode = "enforce"'))
    at_grace_end = (org.as_of + dt.timedelta(days=61)).isoformat()
    assert run_cli("sync", "--as-of", at_grace_end, cwd=org.folder, env_config=config).returncode == 0
    assert org.fields(cid)["stage"] == "Friend"  # failing since day 31 (observed in audit): grace is over
