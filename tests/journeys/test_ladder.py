"""A contact with this history, under the default rules, ends on this rung with these flags."""

from __future__ import annotations

import pytest

from tests.conftest import Org


def quarterly_conversations(org: Org, cid: str, quarters: int, *, first_met_days_ago: int = 0) -> None:
    """A reply in each of the last `quarters` rolling 91-day quarters, plus a listening call this month; and a first
    meeting that long ago, since a relationship is as old as its first conversation."""
    if first_met_days_ago:
        org.meeting(cid, first_met_days_ago, "First meeting")
    for q in range(quarters):
        org.reply(cid, 10 + 91 * q)
    org.meeting(cid, 40, "Discovery session")
    org.call(cid, 60, "Check-in")


def test_contact_with_no_activity_stands_on_the_lowest_rung_with_no_flags(org: Org) -> None:
    cid = org.contact("Ada")
    org.sync()
    f = org.fields(cid)
    assert f["stage"] == "Fringe"
    assert f["flags"] is None
    assert f["next_step"] == "Start a conversation: invite Ada to a short call"
    assert f["since"] == org.day(100)  # known to us since the contact was created, not since the first sync
    assert f["reason"].startswith("Fringe: Known to us")


def test_a_recent_reply_makes_a_friend(org: Org) -> None:
    cid = org.contact()
    org.reply(cid, 20)
    org.sync()
    assert org.fields(cid)["stage"] == "Friend"


@pytest.mark.parametrize(("days_ago", "held"), [(179, False), (180, True)], ids=["179-days-in", "180-days-out"])
def test_the_180_day_window_holds_179_days_back_and_not_180(org: Org, days_ago: int, held: bool) -> None:
    cid = org.contact()
    org.call(cid, days_ago, "Inbound call")
    org.sync()
    f = org.fields(cid)
    # 180 days back, the call left the window today: no longer a Friend, but a first sync holds the rung its
    # history shows it slipping from, for the grace period.
    assert f["stage"] == "Friend"
    assert f["reason"].startswith("Held at Friend during the demotion grace period") == held
    org.sync(days_later=30)
    assert org.fields(cid)["stage"] == ("Fringe" if held else "Friend")


def test_only_outbound_touches_stay_on_the_fringe(org: Org) -> None:
    cid = org.contact()
    org.email_out(cid, 5)
    org.call(cid, 8, "Call - left voicemail", inbound=False, seconds=40)
    org.sync()
    assert org.fields(cid)["stage"] == "Fringe"


def test_a_call_we_dialled_that_connected_is_a_conversation(org: Org) -> None:
    cid = org.contact()
    org.call(cid, 8, inbound=False, seconds=900)
    org.sync()
    assert org.fields(cid)["stage"] == "Friend"


def test_three_conversations_and_a_listening_one_make_familiar(org: Org) -> None:
    cid = org.contact()
    org.reply(cid, 10)
    org.meeting(cid, 50, "Quarterly business review")
    org.call(cid, 120, "Inbound call")
    org.sync()
    f = org.fields(cid)
    assert f["stage"] == "Familiar"
    assert "a listening conversation in the last 120 days" in f["reason"]


@pytest.mark.parametrize(("days_ago", "held"), [(119, False), (120, True)])
def test_the_listening_window_is_120_days(org: Org, days_ago: int, held: bool) -> None:
    cid = org.contact()
    org.reply(cid, 10)
    org.reply(cid, 20)
    org.meeting(cid, days_ago, "Discovery call")
    org.sync()
    f = org.fields(cid)
    assert f["stage"] == "Familiar"  # 120 days back: Familiar until yesterday, held by the grace period
    assert f["reason"].startswith("Held at Familiar during the demotion grace period") == held


def test_sustained_two_way_contact_for_a_year_makes_faithful(org: Org) -> None:
    cid = org.contact(known_for_days=400)
    quarterly_conversations(org, cid, 3, first_met_days_ago=380)
    org.sync()
    f = org.fields(cid)
    assert f["stage"] == "Faithful"
    assert f["flags"] is None
    assert f["next_step"] == "Ask Ada for a reference call, a referral or a testimonial"


def test_an_open_flag_keeps_a_sustained_relationship_from_faithful(org: Org) -> None:
    cid = org.contact(known_for_days=400)
    quarterly_conversations(org, cid, 3, first_met_days_ago=380)
    org.call(cid, 30, "Product feedback call")  # input given, never thanked
    org.sync()
    f = org.fields(cid)
    assert f["stage"] == "Familiar"
    assert f["flags"] == "Missing thank-you"
    assert "For Faithful it still needs: no open flags." in f["reason"]


def test_an_advocate_of_years_is_forever(org: Org) -> None:
    cid = org.contact("Grace", known_for_days=900)
    quarterly_conversations(org, cid, 6, first_met_days_ago=800)
    org.call(cid, 70, "Reference call for a prospect")
    org.sync()
    f = org.fields(cid)
    assert f["stage"] == "Forever"
    assert f["next_step"] == "Keep listening and keep thanking: Grace is an advocate"


def test_forever_needs_six_quarters_not_five(org: Org) -> None:
    cid = org.contact(known_for_days=900)
    quarterly_conversations(org, cid, 5, first_met_days_ago=800)
    org.call(cid, 70, "Reference call for a prospect")
    org.sync()
    assert org.fields(cid)["stage"] == "Faithful"


def test_feedback_nobody_thanked_raises_missing_thank_you_with_a_next_step_citing_it(org: Org) -> None:
    cid = org.contact()
    org.call(cid, 30, "Product feedback call")
    org.sync()
    f = org.fields(cid)
    assert f["flags"] == "Missing thank-you"
    # The open input by its kind, day and subject, and why the flag opened a week after it.
    assert f["next_step"] == (
        'Send Ada a thank-you for the feedback of 16 May 2026 ("Product feedback call"): unthanked for over 7 days'
    )


def test_a_thank_you_after_the_feedback_clears_the_flag(org: Org) -> None:
    cid = org.contact()
    org.call(cid, 30, "Product feedback call")
    org.sync()
    org.email_out(cid, 0, "Thank you for your feedback")
    org.sync()
    assert org.fields(cid)["flags"] is None


def test_a_thank_you_before_the_feedback_does_not_count(org: Org) -> None:
    cid = org.contact()
    org.email_out(cid, 40, "Thank you for meeting us")
    org.call(cid, 30, "Product feedback call")
    org.sync()
    assert org.fields(cid)["flags"] == "Missing thank-you"


@pytest.mark.parametrize(("days_ago", "flagged"), [(7, False), (8, True)])
def test_a_trigger_is_flagged_once_it_is_more_than_a_week_old(org: Org, days_ago: int, flagged: bool) -> None:
    cid = org.contact()
    org.task(cid, days_ago, "Referral: introduced a colleague")
    org.sync()
    assert (org.fields(cid)["flags"] == "Missing thank-you") is flagged


def test_a_won_deal_on_an_opportunity_is_a_gratitude_trigger(org: Org) -> None:
    cid = org.contact()
    org.task(cid, 20, "Closed won: platform licence", what="0068d0000000001AAA")
    org.sync()
    assert org.fields(cid)["flags"] == "Missing thank-you"


def test_talking_at_a_contact_raises_missing_listening(org: Org) -> None:
    cid = org.contact()
    for d in (5, 20, 35, 50, 65):
        org.email_out(cid, d)
    org.sync()
    f = org.fields(cid)
    assert f["flags"] == "Missing listening"
    assert f["next_step"] == (
        "Book a listening conversation with Ada: we reach out (last on 10 Jun 2026) far more than they answer; "
        "last listened: never"
    )


def test_a_flagged_contact_whose_history_does_not_change_gets_the_same_next_step_day_after_day(org: Org) -> None:
    cid = org.contact()
    for d in (5, 20, 35, 50, 65):
        org.email_out(cid, d)
    org.call(cid, 80, "Product feedback call")
    org.sync()
    first = org.fields(cid)
    assert first["flags"] == "Missing thank-you;Missing listening"
    planned: dict[int, tuple[object, object]] = {}
    for later in (1, 2, 10, 200):  # the windows slide and the year turns; only the flags' truth may change
        result = org.sync(days_later=later, dry_run=True)
        changes = {c.field: c.new for c in result.sample if c.contact_id == cid}
        planned[later] = (
            changes.get("Trust_Flags__c", first["flags"]),
            changes.get("Trust_Next_Step__c", first["next_step"]),
        )
    # While the flags hold, the next step that cites them is word for word the same ...
    for later in (1, 2, 10):
        assert planned[later] == (first["flags"], first["next_step"]), later
    # ... and once they change (the mail and the feedback age out of their windows), so does the next step.
    flags_200, next_200 = planned[200]
    assert flags_200 != first["flags"]
    assert next_200 != first["next_step"]
    assert org.fields(cid) == first, "a dry run wrote to the CRM"


def test_a_contact_without_a_first_name_is_addressed_as_them(org: Org) -> None:
    cid = org.contact(None)  # type: ignore[arg-type]
    org.sync()
    assert org.fields(cid)["next_step"] == "Start a conversation: invite them to a short call"


def test_both_flags_are_written_as_one_multi_select_value_and_the_thank_you_comes_first(org: Org) -> None:
    cid = org.contact()
    for d in (5, 20, 35):
        org.email_out(cid, d)
    org.task(cid, 25, "NPS survey answered")
    org.sync()
    f = org.fields(cid)
    assert sorted(f["flags"].split(";")) == ["Missing listening", "Missing thank-you"]
    assert f["next_step"] == (
        'Send Ada a thank-you for the feedback of 21 May 2026 ("NPS survey answered"): unthanked for over 7 days'
    )


def test_future_deleted_and_lead_activities_are_not_counted(org: Org) -> None:
    cid = org.contact()
    org.meeting(cid, -10, "Planned meeting")
    org.reply(cid, 10)
    org.task(cid, 12, "Re: deleted", subtype="Email", deleted=True)
    org.task("00Q8d0000000001AAA", 5, "Re: a lead")
    org.task(None, 5, "Re: nobody")
    result = org.sync()
    assert result.activities == 1
    assert org.fields(cid)["stage"] == "Friend"


def test_stage_since_keeps_its_date_while_the_rung_holds(org: Org) -> None:
    cid = org.contact()
    org.reply(cid, 20)
    org.sync()
    org.reply(cid, -5)  # a reply dated five days after the first sync
    org.sync(days_later=10)
    f = org.fields(cid)
    assert f["stage"] == "Friend"
    assert f["since"] == org.day(20)  # the first reply made the Friend; the first sync read that from history


def test_promotion_dates_stage_since_by_the_activity_that_completed_the_rung(org: Org) -> None:
    cid = org.contact()
    org.reply(cid, 20)
    org.sync()
    org.meeting(cid, -3, "Discovery call")
    org.reply(cid, -4)
    org.sync(days_later=5)
    f = org.fields(cid)
    assert f["stage"] == "Familiar"
    assert f["since"] == org.day(-4)  # the reply four days after the first sync was the third conversation


def test_a_voicemail_on_a_check_in_call_is_not_a_listening_conversation(org: Org) -> None:
    cid = org.contact()
    for d in (5, 20, 35):
        org.email_out(cid, d)
    org.call(cid, 10, "Check-in call", inbound=False, seconds=20)
    org.sync()
    assert org.fields(cid)["flags"] == "Missing listening"


def test_thanking_for_a_referral_is_neither_advocacy_nor_a_new_trigger(org: Org) -> None:
    cid = org.contact()
    org.email_out(cid, 20, "Thank you for the referral")
    org.sync()
    assert org.fields(cid)["flags"] is None
