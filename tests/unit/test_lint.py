"""The rule linter reports only what is certain: bounds that contradict, comparisons a type decides, names unused."""

from __future__ import annotations

import pytest

from connector.engine.texts import NEXT_STEP_MAX
from connector.errors import RuleError
from connector.ruleset import compiler, lint
from tests.conftest import DEFAULT_RULES

BASE = """\
name: t
ladder:
  top_next_step: "{{replies}} replies, {{calls}} calls, {{quarters}} quarters, {{talk}} per reply"
kinds:
  reply: {{match: "Subject LIKE 'Re:%'"}}
  call: {{match: "TaskSubtype = 'Call'"}}
  {extra_kind}
features:
  replies: {{count: [reply], within_days: 90}}
  calls: {{count: [call]}}
  talk: {{ratio: [call], per: [reply]}}
  quarters: {{distinct_periods: [reply], period: quarter, periods: 3}}
  {extra_feature}
rungs:
  - name: Low
  - name: Mid
    requires:
      - when: "{mid}"
  - name: High
    requires:
      - when: "{high}"
flags:
  - id: quiet
    label: Quiet
    when: "{flag}"
    next_step: "Call them"
"""


def messages(
    *,
    mid: str = "replies >= 1",
    high: str = "calls >= 1 AND quarters = 3",
    flag: str = "COALESCE(talk, 0) > 2",
    kind: str = "",
    feature: str = "",
) -> list[str]:
    text = BASE.format(mid=mid, high=high, flag=flag, extra_kind=kind, extra_feature=feature)
    return [f"{f.severity}: {f.message}" for f in lint.lint(compiler.load_text(text, "t.yaml"))]


def test_a_clean_rule_file_has_no_findings() -> None:
    assert messages() == []


@pytest.mark.parametrize(
    ("condition", "verdict"),
    [
        ("replies >= 0", "always true"),
        ("replies > -1", "always true"),
        ("quarters <= 3", "always true"),
        ("open_flags <= 1", "always true"),
        ("replies < 0", "never true"),
        ("quarters >= 4", "never true"),
        ("quarters = 2.5", "never true"),
        ("replies BETWEEN -5 AND -1", "never true"),
        ("replies IN (-1, -2)", "never true"),
        ("open_flags > 1", "never true"),
    ],
    ids=str,
)
def test_a_comparison_decided_by_the_features_type(condition: str, verdict: str) -> None:
    (msg,) = messages(mid=condition)
    assert f"'{condition}' is {verdict}" in msg
    assert msg.startswith("warning:" if verdict == "always true" else "error:")


def test_a_ratio_may_be_empty_so_ratio_at_least_zero_is_not_always_true() -> None:
    assert messages(flag="talk >= 0") == []


@pytest.mark.parametrize(
    "condition",
    [
        "replies > 5 AND replies < 3",
        "replies >= 3 AND replies <= 2",
        "replies > 2 AND replies < 3",
        "replies = 1 AND replies = 2",
        "(replies > 5) AND (calls >= 1 AND replies <= 5)",
    ],
)
def test_bounds_that_exclude_each_other_make_the_condition_always_false(condition: str) -> None:
    (msg,) = messages(mid=condition)
    assert msg.startswith("error: ")
    assert "in the same condition: it is always false" in msg


@pytest.mark.parametrize(
    "condition",
    [
        "talk > 2 AND talk < 3",
        "replies > 5 OR replies < 3",
        "NOT (replies > 5) AND replies > 6",
        "replies > 2 AND replies < 4",
        "replies * 2 > 5 AND replies < 2",
        "replies != 3 AND replies = 3",
    ],
)
def test_what_may_hold_is_never_reported(condition: str) -> None:
    # A decimal ratio between 2 and 3, an OR, a NOT, a calculation: the linter cannot be sure, so it is silent.
    assert [m for m in messages(mid=condition) if "always" in m or "never" in m] == []


def test_comparisons_of_constants_are_reported_with_their_value() -> None:
    assert messages(mid="replies >= 1 AND 1 = 1") == [
        "warning: '1 = 1' compares constants: it is always true; compare a feature instead"
    ]
    assert messages(mid="replies >= 1 AND 2 > 3") == [
        "error: '2 > 3' compares constants: it is always false; compare a feature instead"
    ]
    assert messages(mid="replies >= 1 OR 2 > 3") == [
        "warning: '2 > 3' compares constants: it is always false; compare a feature instead"
    ]
    (msg,) = messages(kind='odd: {match: "1 = 1"}', feature="odd_n: {count: [odd]}\n  x: {expr: odd_n + 1}")[:1]
    assert "uses no names: it is always true" in msg


def test_a_rung_whose_criteria_contradict_a_lower_rung_cannot_be_reached() -> None:
    (msg,) = messages(mid="replies >= 5", high="replies < 3")
    assert msg == (
        "error: no contact can reach rung 'High': 'replies < 3' contradicts 'replies >= 5' of rung 'Mid' "
        "below it (line 18), and rungs are cumulative; change one of the two thresholds"
    )


def test_a_rung_every_contact_passes_through_is_never_where_one_stays() -> None:
    found = messages(mid="replies >= 3 AND calls >= 2", high="calls >= 1")
    assert (
        "error: no contact can stay on rung 'Mid': whoever meets it also meets every criterion of 'High' "
        "above it; give 'High' a criterion of its own"
    ) in found
    assert any(m.startswith("warning: thresholds out of order: rung 'High' needs 'calls >= 1'") for m in found)
    # When the higher rung asks for anything the analysis cannot see through, nothing is claimed.
    assert not any(
        "can stay" in m
        for m in messages(mid="replies >= 3 AND calls >= 2", high="calls >= 1 AND (replies > 4 OR calls > 4)")
    )


def test_thresholds_out_of_order_and_in_order() -> None:
    (msg,) = messages(mid="replies >= 3", high="replies >= 1 AND calls >= 1")
    assert msg == (
        "warning: thresholds out of order: rung 'High' needs 'replies >= 1', a lower bar than "
        "'replies >= 3' on rung 'Mid' below it; rungs are cumulative, so this criterion adds nothing: "
        "swap the thresholds or tighten this one"
    )
    assert messages(mid="replies >= 1", high="replies >= 3") == []
    assert len(messages(mid="replies <= 9", high="replies <= 20 AND calls >= 1")) == 1


def test_features_and_kinds_never_used_are_named() -> None:
    found = messages(kind="unused_kind: {match: \"Subject LIKE '%x%'\"}", feature="spare: {count: [call]}")
    assert (
        "warning: feature 'spare' is declared but never used by a rung, a flag, a next step or another "
        "feature: use it or remove it"
    ) in found
    assert (
        "warning: kind 'unused_kind' is read by no feature, so it changes nothing: count it in a feature or remove it"
    ) in found
    # A feature used by an expression that is used counts as used; one used only by an unused one does not.
    found = messages(feature="base: {count: [call]}\n  derived: {expr: base * 2}", mid="derived >= 1")
    assert found == []


def test_the_default_thank_you_step_names_its_input_whole_within_the_record() -> None:
    """The Missing thank-you step cites the open input by kind, day and subject and the wait that opened the flag:
    with the longest first name, kind label and cited subject it can show, it still fits the 255 characters of
    Trust_Next_Step__c, so the record never cuts the subject off."""
    rules = compiler.load(DEFAULT_RULES)
    (flag,) = [f for f in rules.flags if f.id == "missing_thank_you"]
    assert {attr for _, name, attr, _ in flag.next_step.parts if name == "unthanked"} == {"cited", "older_than_days"}
    assert lint.template_bound(flag.next_step, rules) <= NEXT_STEP_MAX


def test_the_wait_of_an_unanswered_feature_is_citable_and_nothing_else_has_one() -> None:
    text = BASE.format(
        mid="replies >= 1",
        high="calls >= 1",
        flag="owed IS NOT NULL",
        extra_kind="",
        extra_feature=("owed: {unanswered: [call], answered_by: [reply], older_than_days: 5}"),
    )
    fine = text.replace(
        'next_step: "Call them"', 'next_step: "Answer the {owed.cited}: open over {owed.older_than_days} days"'
    )
    compiler.load_text(fine, "t.yaml")
    wrong = text.replace('next_step: "Call them"', 'next_step: "{replies.older_than_days}"')
    with pytest.raises(RuleError, match="'replies' has no parts"):
        compiler.load_text(wrong, "t.yaml")
