"""Every number, list and text of a rule file has a range, so `rules check` refuses what a sync could not run
(issue 9): each refusal says what the limit is, at the line of the key to fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connector.errors import RuleError
from connector.ruleset import compiler, schema
from connector.ruleset.schema import Feature, Flag, LadderSettings, Rung

ROOT = Path(__file__).resolve().parents[2]
LADDER = (ROOT / "rules" / "ladder.yaml").read_text(encoding="utf-8")


def _line(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def _findings(text: str) -> list[str]:
    with pytest.raises(RuleError) as info:
        compiler.load_text(text, "r.yaml")
    return [str(f) for f in info.value.findings]


def _edit(old: str, new: str) -> str:
    assert old in LADDER, old
    return LADDER.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "at", "message"),
    [
        (
            "demotion_grace_days: 30",
            "demotion_grace_days: 3000000000",
            "demotion_grace_days",
            "3,000,000,000 is out of range: use 0 to 36,500 days",
        ),
        ("decay_every_days: 90", "decay_every_days: 0", "decay_every_days", "0 is out of range: use 1 to 36,500 days"),
        ("decay_every_days: 90", "decay_every_days: yes", "decay_every_days", "Input should be a valid integer"),
        (
            "    within_days: 180\n",
            "    within_days: 2147483648\n",
            "within_days: 2147483648",
            "2,147,483,648 is out of range: use 1 to 36,500 days",
        ),
        # Located by the edited line: the file's comments name `older_than_days` (a template field) before it.
        (
            "older_than_days: 7",
            "older_than_days: -1",
            "older_than_days: -1",
            "-1 is out of range: use 0 to 36,500 days",
        ),
        (
            "older_than_days: 7",
            "older_than_days: " + "9" * 40,
            "older_than_days: 999",
            "a number this large is out of range",
        ),
        ("periods: 3", "periods: 521", "periods: 521", "521 is out of range: use 1 to 520 periods"),
        (
            "period: quarter\n    periods: 6",
            "period: year\n    periods: 200",
            "two_way_quarters_6:",
            "200 periods of a year reach 73,000 days back; at most 36,500 (a hundred years)",
        ),
        ("count: [listening]", "count: []", "count: []", "name at least one activity kind here"),
        ("per: [inbound_email, connected_call, meeting]", "per: []", "per: []", "name at least one activity kind here"),
        (
            "label: Missing listening",
            "label: '" + "L" * 256 + "'",
            "label: 'LLL",
            "a flag label is 256 characters long; it becomes a Salesforce picklist value, which holds at most 255",
        ),
        (
            "label: Missing listening",
            "label: 'Missing listening '",
            "label: 'Missing",
            "a flag label must not start or end with a space",
        ),
        ("- name: Friend", '- name: "Fri\\nend"', '- name: "Fri', "a rung name must be one line of text"),
        ("- name: Friend", "- name: " + "R" * 300, "- name: RRR", "a rung name is 300 characters long"),
        ("says: no open flags", "says: " + "s" * 2001, "says: sss", "String should have at most 2000 characters"),
        (
            "when: open_flags = 0",
            "when: open_flags = 0" + " " * 2000 + "AND true",
            "when: open_flags",
            "String should have at most 2000 characters",
        ),
    ],
)
def test_out_of_range_values_are_located_rule_errors(old: str, new: str, at: str, message: str) -> None:
    text = _edit(old, new)
    findings = _findings(text)
    assert any(f.startswith(f"r.yaml:{_line(text, at)}:") and message in f for f in findings), findings


def _many(section: str, count: int, item: str) -> str:
    start = LADDER.index(f"\n{section}:\n") + len(section) + 3
    return LADDER[:start] + "".join(item.format(i=i) for i in range(count)) + LADDER[start:]


@pytest.mark.parametrize(
    ("section", "item", "count", "limit"),
    [
        ("kinds", "  k{i}: {{match: \"Subject = 'x'\"}}\n", 20_000, 200),
        ("features", "  f{i}: {{count: [meeting]}}\n", 600, 500),
        ("flags", "  - {{id: f{i}, label: F{i}, when: 'true', next_step: x}}\n", 60, 50),
        ("rungs", "  - {{name: R{i}, requires: [{{when: 'true'}}]}}\n", 10, 12),
    ],
)
def test_too_many_items_are_refused_before_any_is_checked(section: str, item: str, count: int, limit: int) -> None:
    """The 20,000-kind file that once grew `rules check` to 23 GB is now refused in well under a second or two."""
    text = _many(section, count, item)
    total = count + len(yaml.safe_load(LADDER)[section])
    message = f"{total:,} {section}: a rule file holds at most {limit}; merge or remove some"
    started = time.perf_counter()
    findings = _findings(text)
    elapsed = time.perf_counter() - started
    assert any(f.startswith(f"r.yaml:{_line(text, section + ':')}:1:") and message in f for f in findings), findings
    assert elapsed < 30  # a loose bound for a busy machine; it takes about half a second


def test_too_many_criteria_on_one_rung() -> None:
    criteria = "".join(f"      - when: conversations_180d >= {i}\n" for i in range(51))
    text = _edit("    requires:\n      - when: conversations_180d >= 1\n", "    requires:\n" + criteria)
    assert any("51 criteria on one rung: a rule file holds at most 50" in f for f in _findings(text))


def test_the_default_rules_are_within_every_limit() -> None:
    assert compiler.load_text(LADDER, "ladder.yaml").name == "default"


# -- properties ---------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(2**70), max_value=2**70) | st.booleans() | st.floats() | st.text(max_size=5))
def test_a_day_count_is_accepted_exactly_when_it_is_a_whole_number_of_days_in_range(value: object) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= schema.MAX_DAYS
    try:
        settings_ = LadderSettings.model_validate({"decay_every_days": value})
    except ValidationError:
        assert not ok
    else:
        assert ok and settings_.decay_every_days == value


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 600), st.sampled_from(list(schema.PERIOD_DAYS)))
def test_distinct_periods_never_look_back_more_than_a_hundred_years(periods: int, period: str) -> None:
    spec = {"distinct_periods": ["k"], "period": period, "periods": periods}
    ok = periods <= schema.MAX_PERIODS and periods * schema.PERIOD_DAYS[period] <= schema.MAX_DAYS
    try:
        Feature.model_validate(spec)
    except ValidationError:
        assert not ok
    else:
        assert ok


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_rung_names_and_flag_labels_are_valid_picklist_values(value: str) -> None:
    ok = 1 <= len(value) <= 255 and value == value.strip() and not any(c in value for c in "\r\n\t")
    outcomes = []
    for model, data in ((Rung, {"name": value}), (Flag, {"id": "f", "label": value, "when": "true", "next_step": "x"})):
        try:
            model.model_validate(data)
            outcomes.append(True)
        except ValidationError:
            outcomes.append(False)
    assert outcomes == [ok, ok]


@pytest.mark.parametrize("name", ["true", "false", "null"])
def test_a_feature_named_like_a_constant_is_refused_not_shadowed(name: str) -> None:
    """Issue 9: a feature `true` compiled, and `true IS NOT NULL` then read the constant: every contact flagged."""
    text = LADDER.replace("unthanked", name)
    with pytest.raises(RuleError) as info:
        compiler.load_text(text, "r.yaml")
    assert any(f"'{name}' is a built-in name" in str(f) and str(f).startswith("r.yaml:") for f in info.value.findings)
