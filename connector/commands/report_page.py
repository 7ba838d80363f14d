"""The HTML report: one self-contained page (plotly.js inlined once, no network) that opens offline.

The page holds one view per owner beside the view of all owners, as embedded JSON (each view's sections as HTML,
its charts as plotly figures). The owner filter, or `#owner=<OwnerId>` in the address, swaps the view and draws its
charts; the run history, kept for the whole org only, stays below the filtered part.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.offline  # type: ignore[import-untyped]

from connector.commands import report_sections as sections
from connector.commands.report_data import ReportData
from connector.commands.report_sections import View, colors, e

History = list[tuple[Any, dict[str, int]]]  # (run date, contacts per rung), oldest first
_CHART_CONFIG = {"displaylogo": False, "responsive": True}
ALL_OWNERS = "All owners"


def _history_chart(history: History, rungs: list[str]) -> View:
    v = View()
    fig = go.Figure()
    names = list(dict.fromkeys(rungs + [r for _, counts in history for r in counts]))
    for rung, color in zip(names, colors(len(names)), strict=True):
        fig.add_trace(
            go.Scatter(
                name=rung,
                x=[d.isoformat() for d, _ in history],
                y=[counts.get(rung, 0) for _, counts in history],
                stackgroup="rungs",
                line={"color": color},
                mode="lines+markers",
            )
        )
    # One tick per evaluation date: a date axis would stretch a day or two of runs into hours.
    fig.update_layout(
        title="Contacts per rung on the first day of each month, from each contact's history",
        legend={"orientation": "h"},
        xaxis={"type": "category"},
    )
    v.chart(fig, "history", 360)
    return v


def view(d: ReportData) -> View:
    v = View()
    v.add(
        '<dl class="facts">' + "".join(f"<div><dt>{e(k)}</dt><dd>{e(val)}</dd></div>" for k, val in d.facts) + "</dl>"
    )
    v.add("".join(f'<p class="note warn">{e(n)}</p>' for n in d.notes))
    for section in sections.ALL:
        section(v, d)
    return v


def _json(value: object) -> str:
    """JSON safe inside a <script> element: no '<' can end it or open a comment."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def render(d: ReportData, history: History, calibration: str = "") -> str:
    """The page. `history` is the rung counts month by month, oldest first (connector.commands.trend);
    `calibration` the calibration section's HTML (connector.commands.calibrate_html), org-wide like the history."""
    first = view(d)
    views = [{"key": "", "label": ALL_OWNERS, "html": first.html, "figs": first.figs}]
    for key, name, data in d.by_owner:
        v = view(data)
        views.append({"key": key, "label": name, "html": v.html, "figs": v.figs})
    options = "".join(f'<option value="{i}">{e(v["label"])}</option>' for i, v in enumerate(views))
    picker = (
        ""
        if len(views) < 3
        # one owner: the filter would change nothing
        else f'<label class="filter">Owner <select id="owner-filter">{options}</select></label>'
    )
    hist = _history_chart(history, d.rungs) if history else None
    old = '<p class="note">No contacts yet: the counts per month appear here once the CRM holds some.</p>'
    body = (
        f'<header><h1>{e(d.title)}</h1>{picker}</header>\n<main id="tl-view">{first.html}</main>\n'
        '<section><h2>Rung counts by month</h2><p class="note">The rung each contact stood on, on the first day '
        "of each of the last 12 months, read from its history (contacts created by then), whether or not a sync "
        "ran that day. For all owners: the owner filter does not narrow this chart.</p>"
        f"{hist.html if hist else old}</section>{calibration}"
    )
    return _PAGE.format(
        title=e(d.title),
        css=_CSS,
        plotly=plotly.offline.get_plotlyjs(),
        body=body,
        views=_json(views),
        history=_json(hist.figs if hist else {}),
        config=_json(_CHART_CONFIG),
        script=_SCRIPT,
    )


_SCRIPT = """
(function () {
  var views = JSON.parse(document.getElementById("tl-views").textContent);
  var past = JSON.parse(document.getElementById("tl-history").textContent);
  var config = JSON.parse(document.getElementById("tl-config").textContent);
  var main = document.getElementById("tl-view");
  var pick = document.getElementById("owner-filter");
  function draw(figs) {
    Object.keys(figs).forEach(function (name) {
      Plotly.newPlot("chart-" + name, figs[name].data, figs[name].layout, config);
    });
  }
  function show(i) {
    Array.prototype.forEach.call(main.querySelectorAll(".chart"), function (el) { Plotly.purge(el); });
    main.innerHTML = views[i].html;
    draw(views[i].figs);
    document.body.dataset.owner = views[i].key;
    if (pick) { pick.value = String(i); }
  }
  function fromHash() {
    var m = /owner=([^&]*)/.exec(window.location.hash);
    var key = m ? decodeURIComponent(m[1]) : "";
    for (var i = 0; i < views.length; i++) { if (views[i].key === key) { return i; } }
    return 0;
  }
  if (pick) {
    pick.addEventListener("change", function () {
      var i = Number(pick.value);
      show(i);
      window.history.replaceState(null, "", i ? "#owner=" + encodeURIComponent(views[i].key) : "#");
    });
  }
  window.addEventListener("hashchange", function () { show(fromHash()); });
  show(fromHash());
  draw(past);
})();
"""

_CSS = """
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 24px; color: #1f2933; }
header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 12px; }
.filter select { font-size: 15px; padding: 4px 8px; margin-left: 6px; }
dl.facts { display: flex; flex-wrap: wrap; gap: 12px; margin: 0; }
dl.facts div { background: #f0f4f8; border-radius: 6px; padding: 8px 14px; }
dt { font-size: 12px; color: #52606d; } dd { margin: 0; font-size: 17px; font-weight: 600; }
section { margin-top: 36px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 14px; }
th, td { border-bottom: 1px solid #d9e2ec; padding: 4px 10px; text-align: left; vertical-align: top; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
.note { background: #f0f4f8; border-left: 4px solid #6baed6; padding: 8px 12px; }
.warn { border-left-color: #d94801; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{css}</style>
<script>{plotly}</script>
</head>
<body>
{body}
<script type="application/json" id="tl-views">{views}</script>
<script type="application/json" id="tl-history">{history}</script>
<script type="application/json" id="tl-config">{config}</script>
<script>{script}</script>
</body>
</html>
"""
