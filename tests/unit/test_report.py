"""The report page on its own: history, escaping, and nothing fetched from the network."""

from __future__ import annotations

import datetime as dt
import re

from connector.commands import report
from connector.commands.simulate import FlagMove


def page_data(owner: str = "Maya Lindqvist") -> report.ReportData:
    rungs = ["Fringe", "Friend", "Familiar"]
    return report.ReportData(
        title="Trust ladder: current state",
        facts=[("Contacts", "6")],
        rungs=rungs,
        ladder={"CRM, as last synced": [3, 2, 1], "engine today": [2, 3, 1]},
        owners_title="Rungs by owner",
        owners=[(owner, [3, 2, 1])],
        flags_before="CRM",
        flags_after="engine",
        flags=[FlagMove("Missing listening", 2, 1, 0, 1)],
        movement=None,
        movement_note="No sync has written to this CRM yet.",
    )


def test_without_a_trend_the_page_says_so() -> None:
    page = report.render(page_data())
    assert "No contacts yet: the counts per month appear here" in page
    assert 'id="chart-history"' not in page
    assert "No sync has written to this CRM yet." in page


def test_the_trend_is_a_chart_of_rung_counts_by_month_with_the_change_over_the_period() -> None:
    d = page_data()
    d.trend = [(dt.date(2026, 5, 1), {"Fringe": 4, "Friend": 2}), (dt.date(2026, 6, 8), {"Fringe": 3, "Friend": 3})]
    page = report.render(d)
    assert 'id="chart-history"' in page
    assert "<td>May 2026</td>" in page  # a month start by its month
    assert "<td>2026-06-08</td>" in page  # the evaluation day by its date
    assert "Since May 2026: Fringe -1, Friend +1, Familiar +0." in page
    assert "No contacts yet" not in page


def test_the_managers_questions_come_before_the_admins_detail() -> None:
    d = page_data()
    d.trend = [(dt.date(2026, 6, 1), {"Fringe": 4})]
    d.admin_facts = [("Engine rules", "default@0123456789ab")]
    d.slipping = []
    page = report.render(d)
    order = [
        "The ladder, month by month",
        "What holds them back" if d.criteria else "Who is slipping",
        "Who is slipping",
        "Oldest open flags by owner",
        "For the admin",
        "default@0123456789ab",
        "<h2>The ladder</h2>",
        "<h2>Movement</h2>",
    ]
    at = [page.index(s) for s in order]
    assert at == sorted(at), order


def test_names_from_the_crm_are_escaped_and_nothing_is_loaded_from_the_network() -> None:
    page = report.render(page_data(owner="<script>alert(1)</script>"))
    assert "<script>alert(1)</script>" not in page
    assert page.count("<script") == page.count("</script>")
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)\s*=""", page)
    assert page.count("<script>") == 2  # plotly.js itself, inlined once, and the page's own script
    assert page.count('<script type="application/json"') == 2  # the views, the chart config


def test_each_owner_gets_a_view_of_its_own_behind_the_filter() -> None:
    d = page_data()
    d.by_owner = [("005A", "Maya Lindqvist", page_data()), ("005B", "Tom <b>Becker</b>", page_data(owner="Tom"))]
    page = report.render(d)
    assert '<option value="0">All owners</option>' in page
    assert '<option value="2">Tom &lt;b&gt;Becker&lt;/b&gt;</option>' in page
    views = page.split('<script type="application/json" id="tl-views">', 1)[1].split("</script>", 1)[0]
    assert "<" not in views  # nothing inside the data can close the script element
    assert '"key":"005B"' in views
