"""Outcomes in the rule file: an admin declares what counts as a good or bad outcome, and a mistake in one is named
at its line and column, as any other rule-file mistake."""

from __future__ import annotations

import pytest

from connector.errors import RuleError
from connector.ruleset import compiler, lint

HEAD = """\
name: t
kinds:
  reply: {match: "Subject LIKE 'Re:%'"}
  referral: {match: "Subject LIKE '%referral%'"}
features:
  replies: {count: [reply], within_days: 90}
rungs:
  - name: Low
  - name: High
    requires:
      - when: "replies >= 1"
outcomes:
"""


def load(outcomes: str) -> compiler.RuleSet:
    return compiler.load_text(HEAD + outcomes, "t.yaml")


def errors(outcomes: str) -> list[str]:
    with pytest.raises(RuleError) as caught:
        load(outcomes)
    return [f"{f.line}:{f.col}: {f.message}" for f in caught.value.findings]


def test_each_outcome_type_compiles_with_its_horizon() -> None:
    rules = load(
        "  won: {good: true, won_opportunity: true}\n"
        "  renewal: {good: true, won_opportunity: true, opportunity_types: [Renewal], horizon_days: 365}\n"
        "  gave_referral: {good: true, activity: [referral], says: they referred someone}\n"
        "  silent: {good: false, no_activity: [reply], horizon_days: 180}\n"
    )
    got = [(o.name, o.good, o.type, o.kinds, o.opportunity_types, o.horizon_days) for o in rules.outcomes]
    assert got == [
        ("won", True, "won_opportunity", (), None, 180),
        ("renewal", True, "won_opportunity", (), ("Renewal",), 365),
        ("gave_referral", True, "activity", ("referral",), None, 180),
        ("silent", False, "no_activity", ("reply",), None, 180),
    ]
    assert rules.needs().opportunities is True
    assert rules.outcomes[2].says == "they referred someone"
    assert rules.outcomes[0].says == "won"


def test_rules_without_opportunity_outcomes_ask_no_backend_for_opportunities() -> None:
    rules = load("  silent: {good: false, no_activity: [reply]}\n")
    assert rules.needs().opportunities is False


def test_an_unknown_kind_in_an_outcome_is_named_at_its_place_with_a_suggestion() -> None:
    assert errors("  silent:\n    good: false\n    no_activity: [reply, referal]\n") == [
        "15:26: unknown activity kind 'referal' (did you mean 'referral'?)"
    ]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("{good: true}", "an outcome needs exactly one of won_opportunity, activity, no_activity, contact_gone"),
        ("{good: true, activity: [reply], no_activity: [reply]}", "(this one has activity, no_activity)"),
        ("{good: true, activity: [reply], opportunity_types: [Renewal]}", "opportunity_types goes with"),
        ("{activity: [reply]}", "good"),
        ("{good: true, activity: []}", "name at least one activity kind"),
        ("{good: true, activity: [reply], horizon_days: 0}", "0 is out of range: use 1 to 36,500 days"),
        ("{good: false, contact_gone: {email_bounced: false}}", "needs email_bounced: true or an inactive_field"),
        ("{good: false, contact_gone: {inactive_since_field: Left__c}}", "inactive_since_field goes with"),
        ("{good: false, contact_gone: {inactive_field: 'Account.Name'}}", "not a Contact field's API name"),
        ("{good: false, contact_gone: {bounced: true}}", "unknown key 'bounced'"),
    ],
)
def test_a_malformed_outcome_is_refused_at_its_line(body: str, says: str) -> None:
    found = errors(f"  o: {body}\n")
    assert len(found) == 1
    assert found[0].startswith("13:") and says in found[0], found


def test_a_kind_only_an_outcome_reads_is_not_called_unused() -> None:
    rules = load("  gave_referral: {good: true, activity: [referral]}\n")
    assert [f.message for f in lint.lint(rules) if "referral" in f.message] == []
    bare = compiler.load_text(HEAD.replace("outcomes:\n", ""), "t.yaml")
    assert any("kind 'referral' is read by no feature" in f.message for f in lint.lint(bare))


def test_a_gone_outcome_asks_the_backend_for_the_contact_fields_it_reads() -> None:
    """A bounce reads IsEmailBounced and EmailBouncedDate; an inactive field and its date field are named by the
    rule file; the value is compared as text (a checkbox's true as 'true')."""
    rules = load(
        "  gone: {good: false, contact_gone: {inactive_field: Inactive__c, inactive_since_field: Left_On__c}}\n"
        "  left: {good: false, contact_gone: {email_bounced: false, inactive_field: Status__c, inactive_value: Left}}\n"
    )
    gone, left = rules.outcomes
    assert gone.type == "contact_gone" and gone.gone is not None and left.gone is not None
    assert gone.gone.inactive_value == "true" and left.gone.inactive_value == "Left"
    assert rules.needs().gone_fields == ("IsEmailBounced", "EmailBouncedDate", "Inactive__c", "Left_On__c", "Status__c")
    assert load("  silent: {good: false, no_activity: [reply]}\n").needs().gone_fields == ()
