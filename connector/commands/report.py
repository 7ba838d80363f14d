"""The HTML report: one self-contained page (plotly.js inlined once, no network) that opens offline.

Two pages share one layout. The current state shows the CRM's trust fields as last synced beside the engine's
numbers today; a simulation shows the current rules beside a changed rule file. Both show the ladder as a
funnel, rungs by owner, open flags and the movement between the two placements, and the rung counts over past
runs when a run history is passed in.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import plotly.colors  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io as pio  # type: ignore[import-untyped]
import plotly.offline  # type: ignore[import-untyped]

from connector.commands import sync
from connector.commands.simulate import NEW_TABLE, FlagMove, Replay, Sample, Simulation
from connector.engine import sql
from connector.engine.relations import PLACE
from connector.ruleset.compiler import RuleSet

History = list[tuple[dt.date, dict[str, int]]]  # (run date, contacts per rung), oldest first
_NOT_SYNCED = "(not synced yet)"  # a contact the last sync did not place (new since, or never synced)
TOP_OWNERS = 25  # owners shown one by one; the rest are summed into one bar
_CHART_CONFIG = {"displaylogo": False, "responsive": True}
_SERIES_COLORS = ("#9fb3c8", "#2171b5")  # before / after: the earlier placement muted, the one under review strong


@dataclass
class Movement:
    rows_title: str
    cols_title: str
    rows: list[str]
    cols: list[str]
    matrix: list[list[int]]


@dataclass
class ReportData:
    title: str
    facts: list[tuple[str, str]]
    rungs: list[str]
    ladder: dict[str, list[int]]  # placement name -> contacts per rung, e.g. "CRM, as last synced"
    owners_title: str
    owners: list[tuple[str, list[int]]]  # owner name -> contacts per rung
    flags_before: str
    flags_after: str
    flags: list[FlagMove]
    movement: Movement | None
    movement_note: str = ""
    samples: list[Sample] = field(default_factory=list)
    replay: Replay | None = None
    notes: list[str] = field(default_factory=list)


# -- gathering ------------------------------------------------------------------------------------------------


def current(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, state_path: Path | None) -> ReportData:
    """The CRM's trust fields as last synced (`crm_contact`'s cur_* columns), and what the engine makes of the same
    data today. Nothing is written."""
    sync.compute(con, rules, as_of, state_path)
    place = PLACE.name
    crm_rungs = [r[0] for r in con.execute(
        f"SELECT DISTINCT cur_stage FROM {place} WHERE cur_stage IS NOT NULL ORDER BY 1").fetchall()]
    rungs = [r.name for r in rules.rungs] + [s for s in crm_rungs if rules.rung_index(s) is None]
    synced = bool(crm_rungs)
    row = con.execute(f"SELECT count(*), mode(cur_version) FROM {place}").fetchone()
    assert row is not None
    contacts, crm_version = int(row[0]), row[1]
    crm_counts = _per_rung(con, f"SELECT cur_stage AS stage FROM {place}", rungs)
    now_counts = _per_rung(con, f"SELECT new_stage AS stage FROM {place}", rungs)
    owners_from = "cur_stage" if synced else "new_stage"
    movement = None
    note = ""
    if synced:
        pairs = con.execute(f"SELECT COALESCE(cur_stage, '{_NOT_SYNCED}'), new_stage, count(*) FROM {place} "
                            "GROUP BY ALL").fetchall()
        rows = rungs + ([_NOT_SYNCED] if any(a == _NOT_SYNCED for a, _, _ in pairs) else [])
        movement = Movement("CRM, as last synced", f"engine today ({as_of.isoformat()})", rows, rungs,
                            _matrix(pairs, rows, rungs))
    else:
        note = ("No sync has written to this CRM yet, so there is no earlier placement to compare with: "
                "run `trust-ladder sync`, and this section shows who moved since.")
    return ReportData(
        title="Trust ladder: current state",
        facts=[("Contacts", f"{contacts:,}"), ("Evaluated as of", as_of.isoformat()),
               ("Engine rules", rules.version), ("Rules on the records", str(crm_version or "none yet"))],
        rungs=rungs,
        ladder={"CRM, as last synced": crm_counts, f"Engine today ({as_of.isoformat()})": now_counts},
        owners_title=("Rungs by owner, as the CRM shows them" if synced
                      else "Rungs by owner, as the engine places them today (the CRM holds none yet)"),
        owners=_owners(con, f"SELECT cid, {owners_from} AS stage FROM {place}", rungs),
        flags_before="CRM, as last synced", flags_after="engine today",
        flags=_flag_moves(con, place, [f.label for f in rules.flags]),
        movement=movement, movement_note=note,
    )


def simulated(con: duckdb.DuckDBPyConnection, sim: Simulation) -> ReportData:
    """A finished simulation (its temp tables still on `con`) as a page."""
    moved = f"{sim.moved:,} ({100 * sim.moved / sim.contacts:.1f}%)" if sim.contacts else "0"
    facts = [("Contacts", f"{sim.contacts:,}"), ("Evaluated as of", sim.as_of.isoformat()),
             ("Current rules", sim.current_version), ("New rules", sim.new_version), ("Moving", moved)]
    if sim.held_by_grace:
        facts.append(("Held by demotion grace at the next sync", f"{sim.held_by_grace:,}"))
    if sim.replay is not None:
        facts.append((f"Flapping over {sim.replay.weeks} weeks (new rules)", f"{sim.replay.flapping:,}"))
    names = " ".join(f"WHEN {i} THEN {_quote(n)}" for i, n in enumerate(sim.new_rungs))
    return ReportData(
        title="Trust ladder: simulation of a rule change",
        facts=facts, rungs=_union(sim.current_rungs, sim.new_rungs),
        ladder={"current rules": _align(sim.current_rungs, sim.per_rung_current, sim),
                "new rules": _align(sim.new_rungs, sim.per_rung_new, sim)},
        owners_title="Rungs by owner under the new rules",
        owners=_owners(con, f"SELECT cid, CASE qualified {names} END AS stage FROM {NEW_TABLE}",
                       _union(sim.current_rungs, sim.new_rungs)),
        flags_before="current rules", flags_after="new rules", flags=sim.flags,
        movement=Movement("current rules", "new rules", sim.current_rungs, sim.new_rungs, sim.matrix),
        samples=sim.samples, replay=sim.replay, notes=sim.notes,
    )


def _union(a: list[str], b: list[str]) -> list[str]:
    return list(dict.fromkeys(a + b))


def _align(names: list[str], counts: list[int], sim: Simulation) -> list[int]:
    got = dict(zip(names, counts, strict=True))
    return [got.get(n, 0) for n in _union(sim.current_rungs, sim.new_rungs)]


def _quote(text: str) -> str:
    return sql.render(sql.lit(text))


def _matrix(pairs: list[Any], rows: list[str], cols: list[str]) -> list[list[int]]:
    out = [[0] * len(cols) for _ in rows]
    for a, b, n in pairs:
        if a in rows and b in cols:
            out[rows.index(a)][cols.index(b)] = int(n)
    return out


def _per_rung(con: duckdb.DuckDBPyConnection, select: str, rungs: list[str]) -> list[int]:
    got = dict(con.execute(f"SELECT stage, count(*) FROM ({select}) GROUP BY 1").fetchall())
    return [int(got.get(r, 0)) for r in rungs]


def _owners(con: duckdb.DuckDBPyConnection, select: str, rungs: list[str]) -> list[tuple[str, list[int]]]:
    """Contacts per rung for each owner (User.Name), biggest books first; the long tail summed into one row."""
    rows = con.execute(
        f"""SELECT COALESCE(u.Name, c.OwnerId, '(no owner)') AS owner, p.stage, count(*)
            FROM ({select}) p JOIN crm_contact c ON c.Id = p.cid LEFT JOIN "User" u ON u.Id = c.OwnerId
            GROUP BY ALL"""
    ).fetchall()
    books: dict[str, list[int]] = {}
    for owner, stage, n in rows:
        counts = books.setdefault(str(owner), [0] * len(rungs))
        if stage in rungs:
            counts[rungs.index(stage)] += int(n)
    ranked = sorted(books.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    top, rest = ranked[:TOP_OWNERS], ranked[TOP_OWNERS:]
    if rest:
        top.append((f"{len(rest)} other owners", [sum(c) for c in zip(*(v for _, v in rest), strict=True)]))
    return top


def _flag_moves(con: duckdb.DuckDBPyConnection, table: str, labels: list[str]) -> list[FlagMove]:
    """Flags on the records (`cur_flags`) against the engine's (`new_flags`), per label."""
    out = []
    for label in labels:
        row = con.execute(
            f"""SELECT count(*) FILTER (WHERE list_contains(b, $1)), count(*) FILTER (WHERE list_contains(a, $1)),
                       count(*) FILTER (WHERE list_contains(a, $1) AND NOT list_contains(b, $1)),
                       count(*) FILTER (WHERE list_contains(b, $1) AND NOT list_contains(a, $1))
                FROM (SELECT string_split(COALESCE(cur_flags, ''), ';') AS b,
                             string_split(COALESCE(new_flags, ''), ';') AS a FROM {table})""", [label]).fetchone()
        assert row is not None
        out.append(FlagMove(label, *(int(v) for v in row)))
    return out


# -- rendering ------------------------------------------------------------------------------------------------


def _colors(n: int) -> list[str]:
    """One colour per rung, light (lowest) to dark (highest), so the ladder reads the same on every chart."""
    if n == 1:
        return ["rgb(66, 146, 198)"]
    return list(plotly.colors.sample_colorscale("Blues", [0.3 + 0.7 * i / (n - 1) for i in range(n)]))


def _chart(fig: Any, name: str, height: int, *, top: int = 40) -> str:
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": top, "b": 10}, template="plotly_white",
                      font={"family": "system-ui, sans-serif", "size": 13})
    return str(pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{name}",
                           config=_CHART_CONFIG))


def _funnel(d: ReportData) -> str:
    """One series: a funnel. Two (before and after): bars side by side per rung, widest rung on top, because a
    grouped funnel's connectors hide one series behind the other."""
    fig = go.Figure()
    hover = "%{y} or higher: %{x:,}<br>on %{y} itself: %{customdata:,}<extra>%{fullData.name}</extra>"
    for (series, counts), color in zip(d.ladder.items(), _SERIES_COLORS, strict=False):
        at_or_above = [sum(counts[i:]) for i in range(len(counts))]
        if len(d.ladder) == 1:
            fig.add_trace(go.Funnel(name=series, y=d.rungs, x=at_or_above, customdata=counts, marker_color=color,
                                    textinfo="value+percent initial", textposition="inside",
                                    connector={"fillcolor": "#eef2f6"}, hovertemplate=hover))
        else:
            fig.add_trace(go.Bar(name=series, y=d.rungs, x=at_or_above, customdata=counts, orientation="h",
                                 marker_color=color, text=[f"{n:,}" for n in at_or_above], textposition="auto",
                                 hovertemplate=hover))
    fig.update_layout(barmode="group", title="Contacts on each rung or higher", legend={"orientation": "h"},
                      yaxis={"autorange": "reversed"} if len(d.ladder) > 1 else {})
    return _chart(fig, "ladder", 140 + 90 * len(d.rungs))


def _owners_chart(d: ReportData) -> str:
    fig = go.Figure()
    owners = [o for o, _ in reversed(d.owners)]
    for i, (rung, color) in enumerate(zip(d.rungs, _colors(len(d.rungs)), strict=True)):
        fig.add_trace(go.Bar(name=rung, y=owners, x=[c[i] for _, c in reversed(d.owners)], orientation="h",
                             marker_color=color))
    fig.update_layout(barmode="stack", title=d.owners_title, legend={"orientation": "h", "traceorder": "normal"})
    return _chart(fig, "owners", 140 + 24 * len(owners))


def _flags_chart(d: ReportData) -> str:
    fig = go.Figure()
    labels = [f.label for f in d.flags]
    for name, counts, color in ((d.flags_before, [f.before for f in d.flags], _SERIES_COLORS[0]),
                                (d.flags_after, [f.after for f in d.flags], _SERIES_COLORS[1])):
        fig.add_trace(go.Bar(name=name, x=labels, y=counts, marker_color=color, text=counts, textposition="auto"))
    fig.update_layout(barmode="group", title="Open flags", legend={"orientation": "h"})
    return _chart(fig, "flags", 360)


def _movement_chart(m: Movement) -> str:
    # Colour on a log scale, or the stayers on the diagonal would wash out every move.
    z = [[0.0 if n == 0 else 1 + math.log10(n) for n in row] for row in m.matrix]
    fig = go.Figure(go.Heatmap(z=z, x=m.cols, y=m.rows, text=[[f"{n:,}" if n else "" for n in r] for r in m.matrix],
                               texttemplate="%{text}", colorscale="Blues", showscale=False,
                               hovertemplate="%{y} -> %{x}: %{text}<extra></extra>"))
    fig.update_layout(title=f"From {m.rows_title} (rows) to {m.cols_title} (columns)",
                      xaxis={"side": "top"},
                      yaxis={"autorange": "reversed"})
    return _chart(fig, "movement", 140 + 60 * len(m.rows), top=80)


def _replay_chart(r: Replay) -> str:
    fig = go.Figure(go.Bar(x=[d.isoformat() for d, _ in r.changes], y=[n for _, n in r.changes],
                           marker_color="#6baed6", hovertemplate="%{x}: %{y:,} contacts change rung<extra></extra>"))
    fig.update_layout(title="Contacts changing rung at each weekly sync, new rules replayed",
                      xaxis={"type": "category"})
    return _chart(fig, "replay", 320)


def _history_chart(history: History, rungs: list[str]) -> str:
    fig = go.Figure()
    names = _union(rungs, [r for _, counts in history for r in counts])
    for rung, color in zip(names, _colors(len(names)), strict=True):
        fig.add_trace(go.Scatter(name=rung, x=[d.isoformat() for d, _ in history],
                                 y=[counts.get(rung, 0) for _, counts in history], stackgroup="rungs",
                                 line={"color": color}, mode="lines+markers"))
    # One tick per evaluation date: a date axis would stretch a day or two of runs into hours.
    fig.update_layout(title="Contacts per rung, by evaluation date of the last sync that day",
                      legend={"orientation": "h"}, xaxis={"type": "category"})
    return _chart(fig, "history", 360)


def _e(text: object) -> str:
    return html.escape(str(text))


def _table(head: list[str], rows: list[list[object]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(f'{c:,}' if isinstance(c, int) else c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def render(d: ReportData, history: History) -> str:
    """The page. `history` is the rung counts of past runs, oldest first (empty when none are recorded)."""
    series = list(d.ladder)
    parts = [f"<header><h1>{_e(d.title)}</h1><dl>"
             + "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in d.facts) + "</dl></header>"]
    parts += [f'<p class="note warn">{_e(n)}</p>' for n in d.notes]
    parts.append("<section><h2>The ladder</h2>" + _funnel(d) + _table(
        ["Rung", *series, "Difference"],
        [[r, *(d.ladder[s][i] for s in series), f"{d.ladder[series[-1]][i] - d.ladder[series[0]][i]:+,}"]
         for i, r in enumerate(d.rungs)]) + "</section>")
    parts.append("<section><h2>Movement</h2>")
    if d.movement is not None:
        m = d.movement
        parts.append(_movement_chart(m) + _table([f"{m.rows_title} \u2193 / {m.cols_title} \u2192", *m.cols],
                                                 [[r, *m.matrix[i]] for i, r in enumerate(m.rows)]))
    else:
        parts.append(f'<p class="note">{_e(d.movement_note)}</p>')
    if d.samples:
        parts.append("<h3>Sample contacts per moving cell (lowest Ids)</h3>" + _table(
            ["Contact", "Moves", "What changed", "Next step under the new rules"],
            [[f"{s.name} ({s.contact_id})", f"{s.current} \u2192 {s.new}", "; ".join(s.changes), s.next_step]
             for s in d.samples]))
    if d.replay is not None:
        r = d.replay
        parts.append(f'<p class="note">Replaying the new rules at every weekly sync from {r.start.isoformat()} to '
                     f"{r.end.isoformat()} (from an empty CRM, with demotion grace as in real syncs): "
                     f"<b>{r.flapping:,}</b> contacts would change rung more than once, {r.changed:,} at least "
                     f"once, and <b>{r.reversed:,}</b> would go back (up then down, or down then up).</p>")
        parts.append(_replay_chart(r))
    parts.append("</section>")
    if d.flags:
        parts.append("<section><h2>Open flags</h2>" + _flags_chart(d) + _table(
            ["Flag", d.flags_before, d.flags_after, "Raised", "Cleared"],
            [[f.label, f.before, f.after, f.gained, f.lost] for f in d.flags]) + "</section>")
    parts.append("<section><h2>Rungs by owner</h2>" + _owners_chart(d) + "</section>")
    parts.append("<section><h2>Rung counts over past runs</h2>" + (
        _history_chart(history, d.rungs) if history else
        '<p class="note">No run history is recorded yet: the counts of past runs appear here after the first '
        "syncs.</p>") + "</section>")
    return _PAGE.format(title=_e(d.title), css=_CSS, plotly=plotly.offline.get_plotlyjs(), body="\n".join(parts))


_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 24px; color: #1f2933; }
header dl { display: flex; flex-wrap: wrap; gap: 12px; margin: 0; }
header dl div { background: #f0f4f8; border-radius: 6px; padding: 8px 14px; }
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
</body>
</html>
"""
