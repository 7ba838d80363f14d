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
    page = report.render(page_data(), history=[])
    assert "No contacts yet: the counts per month appear here" in page
    assert 'id="chart-history"' not in page
    assert "No sync has written to this CRM yet." in page


def test_a_run_history_becomes_a_chart_of_rung_counts() -> None:
    history = [(dt.date(2026, 6, 1), {"Fringe": 4, "Friend": 2}), (dt.date(2026, 6, 8), {"Fringe": 3, "Friend": 3})]
    page = report.render(page_data(), history=history)
    assert 'id="chart-history"' in page
    assert '"2026-06-08"' in page
    assert "No run history" not in page


def test_names_from_the_crm_are_escaped_and_nothing_is_loaded_from_the_network() -> None:
    page = report.render(page_data(owner="<script>alert(1)</script>"), history=[])
    assert "<script>alert(1)</script>" not in page
    assert page.count("<script") == page.count("</script>")
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)\s*=""", page)
    assert page.count("<script>") == 2  # plotly.js itself, inlined once, and the page's own script
    assert page.count('<script type="application/json"') == 3  # the views, the run history, the chart config


def test_each_owner_gets_a_view_of_its_own_behind_the_filter() -> None:
    d = page_data()
    d.by_owner = [("005A", "Maya Lindqvist", page_data()), ("005B", "Tom <b>Becker</b>", page_data(owner="Tom"))]
    page = report.render(d, history=[])
    assert '<option value="0">All owners</option>' in page
    assert '<option value="2">Tom &lt;b&gt;Becker&lt;/b&gt;</option>' in page
    views = page.split('<script type="application/json" id="tl-views">', 1)[1].split("</script>", 1)[0]
    assert "<" not in views  # nothing inside the data can close the script element
    assert '"key":"005B"' in views
