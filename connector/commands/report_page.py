"""The HTML report: one self-contained page (plotly.js inlined once, no network) that opens offline.

The page holds one view per owner beside the view of all owners, as embedded JSON (each view's sections as HTML,
its charts as plotly figures). The owner filter, or `#owner=<OwnerId>` in the address, swaps the view and draws its
charts, the month-by-month trend included. It fits a phone: charts take their container's width and are redrawn
when the window changes, tables scroll sideways in their own box, and nothing is wider than the page.
"""

from __future__ import annotations

import json

import plotly.offline  # type: ignore[import-untyped]

from connector.commands import report_sections as sections
from connector.commands.report_data import ReportData
from connector.commands.report_sections import View, e
from connector.commands.trend import Months

History = Months  # (day, contacts per rung), oldest first: connector.commands.trend
_CHART_CONFIG = {"displaylogo": False, "responsive": True}
ALL_OWNERS = "All owners"


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


def render(d: ReportData, calibration: str = "") -> str:
    """The page: the view of all owners, and one per owner of `d.by_owner`; `calibration` the calibration
    section's HTML (connector.commands.calibrate_html), org-wide."""
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
    body = f'<header><h1>{e(d.title)}</h1>{picker}</header>\n<main id="tl-view">{first.html}</main>{calibration}'
    return _PAGE.format(
        title=e(d.title),
        css=_CSS,
        plotly=plotly.offline.get_plotlyjs(),
        body=body,
        views=_json(views),
        config=_json(_CHART_CONFIG),
        script=_SCRIPT,
    )


_SCRIPT = """
(function () {
  var views = JSON.parse(document.getElementById("tl-views").textContent);
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
})();
"""

_CSS = """
.side { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: 16px; }
.side > * { min-width: 0; }
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 24px; color: #1f2933; }
header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 12px; }
h1 { overflow-wrap: anywhere; }
.filter select { font-size: 15px; padding: 4px 8px; margin-left: 6px; max-width: 100%; }
dl.facts { display: flex; flex-wrap: wrap; gap: 12px; margin: 0; }
dl.facts div { background: #f0f4f8; border-radius: 6px; padding: 8px 14px; min-width: 0; }
dt { font-size: 12px; color: #52606d; } dd { margin: 0; font-size: 17px; font-weight: 600; overflow-wrap: anywhere; }
section { margin-top: 36px; }
h2.part { margin-top: 56px; padding-top: 16px; border-top: 3px solid #d9e2ec; }
figure { margin: 12px 0; }
.chart-title { font-weight: 600; margin: 0 0 4px; }
.chart { width: 100%; }
.scroll { overflow-x: auto; max-width: 100%; margin: 12px 0; }
table { border-collapse: collapse; font-size: 14px; }
td, th { min-width: 4.5em; } td.long { min-width: 16em; }
th, td { border-bottom: 1px solid #d9e2ec; padding: 4px 10px; text-align: left; vertical-align: top; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
.note { background: #f0f4f8; border-left: 4px solid #6baed6; padding: 8px 12px; overflow-wrap: anywhere; }
.warn { border-left-color: #d94801; }
@media (max-width: 600px) {
  body { padding: 12px; }
  h1 { font-size: 22px; }
  dl.facts { gap: 8px; }
  dl.facts div { padding: 6px 10px; }
  td, th { padding: 4px 6px; font-size: 13px; }
}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
<script>{plotly}</script>
</head>
<body>
{body}
<script type="application/json" id="tl-views">{views}</script>
<script type="application/json" id="tl-config">{config}</script>
<script>{script}</script>
</body>
</html>
"""
