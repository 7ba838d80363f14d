"""The HTML report: one self-contained page (plotly.js inlined once, no network) that opens offline.

`current` and `simulated` gather what the page shows, for all owners and per owner (connector.commands.report_data);
`render` makes the page (connector.commands.report_page, its sections in connector.commands.report_sections).
"""

from __future__ import annotations

from connector.commands.report_data import Moved, Movement, ReportData, current, simulated
from connector.commands.report_page import History, render

__all__ = ["History", "Moved", "Movement", "ReportData", "current", "render", "simulated"]
