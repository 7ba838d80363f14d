"""Which months calibrate measures, and how an outcome's words follow the horizon measured: the rules an admin reads
in the header and the outcome's heading, at their edges."""

from __future__ import annotations

import datetime as dt

import duckdb

from connector import sql
from connector.commands import calibrate_months
from connector.commands.calibration import says_within

JUNE_14 = dt.date(2026, 6, 14)


def test_a_month_counts_when_its_horizon_ends_on_the_last_day_covered_and_not_a_day_later() -> None:
    days = calibrate_months.month_days(dt.date(2026, 3, 15), dt.date(2026, 6, 15))
    assert days == [dt.date(2026, 4, 1), dt.date(2026, 5, 1), dt.date(2026, 6, 1)]
    assert calibrate_months.measured(days, 44, JUNE_14) == [0, 1]  # 1 May + 44 days is 14 June itself
    assert calibrate_months.measured(days, 45, JUNE_14) == [0]


def test_the_default_period_counts_three_years_back_from_the_last_day_covered() -> None:
    assert calibrate_months.default_since(JUNE_14) == dt.date(2023, 6, 1)
    assert calibrate_months.default_since(dt.date(2026, 1, 31)) == dt.date(2023, 1, 1)


def test_the_last_day_covered_is_the_data_s_newest_unless_the_evaluation_date_is_earlier() -> None:
    as_of = dt.date(2026, 12, 7)
    assert calibrate_months.covered(as_of, JUNE_14) == JUNE_14
    assert calibrate_months.covered(as_of, dt.datetime(2026, 6, 14, 9)) == JUNE_14
    assert calibrate_months.covered(JUNE_14, as_of) == JUNE_14
    assert calibrate_months.covered(as_of, None) == as_of  # data showing nothing: the evaluation date


def test_the_left_out_line_names_the_months_and_the_day_the_data_ends() -> None:
    as_of = dt.date(2026, 12, 7)
    days = calibrate_months.month_days(dt.date(2026, 4, 1), as_of)
    left = calibrate_months.left_out(days, 2, 30, JUNE_14, as_of)
    assert left is not None
    assert left.days[0] == dt.date(2026, 6, 1) and left.days[-1] == dt.date(2026, 12, 1)
    assert left.why.startswith(
        "left out: 2026-06-01 to 2026-12-01 (7 months): the shortest horizon, 30 days, runs past 2026-06-14, the last "
        "day the CRM data covers (its newest activity, won deal or bounce; the evaluation date is 2026-12-07)"
    )
    assert calibrate_months.left_out(days, len(days), 30, JUNE_14, as_of) is None
    one = calibrate_months.left_out(days[:3], 2, 30, JUNE_14, JUNE_14)
    assert one is not None and "left out: 2026-06-01 (1 month)" in one.why and "(the evaluation date)" in one.why


def test_a_meeting_scheduled_ahead_does_not_stretch_the_data_past_the_day_it_was_logged() -> None:
    """Calls up to 10 June; a meeting logged on 12 June for 20 July; a deal won on 11 June: the data covers up to
    12 June, whatever the evaluation date."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE crm_activity AS SELECT * FROM (VALUES (DATE '2026-06-10', DATE '2026-06-10'), "
        "(DATE '2026-07-20', DATE '2026-06-12'), (DATE '2026-05-02', NULL)) t(day, \"LoggedDate\")"
    )
    con.execute(
        "CREATE TABLE \"Opportunity\" AS SELECT * FROM (VALUES (true, false, DATE '2026-06-11'), "
        '(false, false, DATE \'2026-06-30\')) t("IsWon", "IsDeleted", "CloseDate")'
    )
    query = calibrate_months.last_day_query(logged=True, deals=True, bounces=False)
    assert sql.scalar(con, query, {"as_of": dt.date(2026, 12, 7)}) == dt.date(2026, 6, 12)
    assert sql.scalar(con, query, {"as_of": dt.date(2026, 6, 11)}) == dt.date(2026, 6, 11)
    by_day = calibrate_months.last_day_query(logged=False, deals=False, bounces=False)
    assert sql.scalar(con, by_day, {"as_of": dt.date(2026, 12, 7)}) == dt.date(2026, 7, 20)


def test_an_outcome_s_words_give_the_horizon_measured() -> None:
    assert says_within("an email they wrote to us within 30 days", 30, 90) == "an email they wrote to us within 90 days"
    assert says_within("a 180-day silence, not 1180 days", 180, 90) == "a 90-day silence, not 1180 days"
    assert says_within("a reply within 2 days", 2, 1) == "a reply within 1 day"
    assert says_within("no talk for six months", 180, 90) == "no talk for six months"  # the heading says 90
    assert says_within("within 30 days", 30, 30) == "within 30 days"


def test_with_nothing_measured_the_line_says_what_would_measure_something() -> None:
    """The values it suggests work: the --since it names has its first month measured, and so does the --horizon
    from the first month given."""
    late = calibrate_months.what_to_try(dt.date(2026, 11, 20), 30, JUNE_14)
    assert late == (
        "nothing measured: no first of a month from 2026-11-20 is 30 days or more before 2026-06-14, the last day "
        "the CRM data covers; try an earlier --since (on or before 2026-05-01)"
    )  # no shorter horizon helps a period that starts after the data ends
    assert calibrate_months.measured([dt.date(2026, 5, 1)], 30, JUNE_14) == [0]
    long = calibrate_months.what_to_try(dt.date(2023, 6, 1), 36_500, JUNE_14, since_given=False)
    assert long.endswith("; try a shorter --horizon (at most 1109 days from 2023-06-01)")
    assert calibrate_months.measured([dt.date(2023, 6, 1)], 1109, JUNE_14) == [0]
    assert calibrate_months.measured([dt.date(2023, 6, 1)], 1110, JUNE_14) == []
    both = calibrate_months.what_to_try(dt.date(2026, 5, 15), 60, JUNE_14)
    assert both.endswith(
        "try an earlier --since (on or before 2026-04-01) or a shorter --horizon (at most 13 days from 2026-06-01)"
    )
