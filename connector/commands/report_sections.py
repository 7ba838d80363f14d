"""The sections of one view of the report, in page order: each adds its heading, charts and tables to a View.

A manager's questions come first (how the ladder moves month by month, what holds contacts back, who is slipping,
which flags have been open longest), the admin's detail after (rule versions, the ladder as synced against the
engine today, the movement matrix, who moved, flag counts, rungs by owner). Every table sits in a box that scrolls
sideways and every chart takes its container's width, so the page fits a 390 px phone.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import plotly.colors  # type: ignore[import-untyped]
import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io as pio  # type: ignore[import-untyped]

from connector.commands.contact_words import who
from connector.commands.flag_age import STALE_DAYS, by_owner
from connector.commands.report_data import ROWS_SHOWN, Movement, ReportData

if TYPE_CHECKING:
    from connector.commands.replay import Replay

LONG_CELL = 40  # characters: a cell longer than this is a text to read, given a wider column
_SERIES_COLORS = ("#9fb3c8", "#2171b5")  # before / after: the earlier placement muted, the one under review strong


class View:
    """One view's sections, with its charts kept aside as figures (drawn by the page's script)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.figs: dict[str, Any] = {}

    def add(self, text: str) -> None:
        self.parts.append(text)

    def chart(self, fig: Any, name: str, height: int, *, top: int = 10) -> None:
        """The figure, drawn at its container's width. Its title goes above it as HTML, which wraps on a phone
        where plotly's one-line title would run past the page."""
        title = fig.layout.title.text
        fig.update_layout(
            title=None,
            height=height,
            margin={"l": 10, "r": 10, "t": top, "b": 10},
            template="plotly_white",
            font={"family": "system-ui, sans-serif", "size": 13},
        )
        self.figs[name] = json.loads(pio.to_json(fig))
        caption = f'<p class="chart-title">{e(title)}</p>' if title else ""
        self.parts.append(f'<figure>{caption}<div class="chart" id="chart-{name}"></div></figure>')

    @property
    def html(self) -> str:
        return "\n".join(self.parts)


def colors(n: int) -> list[str]:
    """One colour per rung, light (lowest) to dark (highest), so the ladder reads the same on every chart."""
    if n == 1:
        return ["rgb(66, 146, 198)"]
    return list(plotly.colors.sample_colorscale("Blues", [0.3 + 0.7 * i / (n - 1) for i in range(n)]))


def e(text: object) -> str:
    return html.escape(str(text))


def table(head: list[str], rows: list[list[object]], *, cls: str = "") -> str:
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in rows)
    attr = f' class="{cls}"' if cls else ""
    return f'<div class="scroll"><table{attr}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _cell(value: object) -> str:
    """A cell; a long text gets room to wrap in a few lines rather than one word a line on a phone (its table then
    scrolls sideways in its box)."""
    text = f"{value:,}" if isinstance(value, int) else str(value)
    return f'<td class="long">{e(text)}</td>' if len(text) > LONG_CELL else f"<td>{e(text)}</td>"


def short(text: str, width: int = 30) -> str:
    """A chart label that leaves a phone's chart room for its bars; the whole text is in the hover and the table."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "\u2026"


def _month(day: Any, last: bool) -> str:
    return str(day.isoformat() if last else day.strftime("%b %Y"))


def trend(v: View, d: ReportData) -> None:
    """Contacts per rung on the first day of each month, from each contact's history: is the ladder climbing?"""
    v.add("<section><h2>The ladder, month by month</h2>")
    if not d.trend or not any(counts for _, counts in d.trend):
        v.add(
            '<p class="note">No contacts yet: the counts per month appear here once the CRM holds some.</p></section>'
        )
        return
    rungs = list(dict.fromkeys(d.rungs + [r for _, counts in d.trend for r in counts]))
    months = [_month(day, i == len(d.trend) - 1 and day.day != 1) for i, (day, _) in enumerate(d.trend)]
    days = [day.isoformat() for day, _ in d.trend]
    first, last = d.trend[0][1], d.trend[-1][1]
    change = ", ".join(f"{r} {last.get(r, 0) - first.get(r, 0):+,}" for r in rungs)
    v.add(
        '<p class="note">The rung each contact stood on, on the first day of each of the last months and on the '
        "evaluation day, read from its history (contacts created by then), whether or not a sync ran that day. "
        f"Since {e(months[0])}: {e(change)}.</p>"
    )
    fig = go.Figure()
    for rung, color in zip(rungs, colors(len(rungs)), strict=True):
        fig.add_trace(
            go.Scatter(
                name=rung,
                x=days,
                y=[counts.get(rung, 0) for _, counts in d.trend],
                line={"color": color, "width": 3},
                mode="lines+markers",
                hovertemplate="%{x|%d %b %Y}: %{y:,}<extra>" + e(rung) + "</extra>",
            )
        )
    # A date axis: plotly spaces its ticks to the width, so a phone gets fewer labels rather than cut ones.
    fig.update_layout(
        title="Contacts on each rung, month by month",
        legend={"orientation": "h"},
        xaxis={"type": "date", "tickformat": "%b %Y"},
    )
    v.chart(fig, "history", 360)
    v.add(
        table(
            ["Month", *rungs],
            [[m, *(counts.get(r, 0) for r in rungs)] for m, (_, counts) in zip(months, d.trend, strict=True)],
        )
        + "</section>"
    )


def heatmap_z(matrix: list[list[int]]) -> list[list[float]]:
    # Colour on a log scale, or the stayers on the diagonal would wash out every move.
    return [[0.0 if n == 0 else 1 + math.log10(n) for n in row] for row in matrix]


def ladder(v: View, d: ReportData) -> None:
    """One series: a funnel. Two (before and after): bars side by side per rung, widest rung on top, because a
    grouped funnel's connectors hide one series behind the other."""
    fig = go.Figure()
    hover = "%{y} or higher: %{x:,}<br>on %{y} itself: %{customdata:,}<extra>%{fullData.name}</extra>"
    for (series, counts), color in zip(d.ladder.items(), _SERIES_COLORS, strict=False):
        at_or_above = [sum(counts[i:]) for i in range(len(counts))]
        if len(d.ladder) == 1:
            fig.add_trace(
                go.Funnel(
                    name=series,
                    y=d.rungs,
                    x=at_or_above,
                    customdata=counts,
                    marker_color=color,
                    textinfo="value+percent initial",
                    textposition="inside",
                    connector={"fillcolor": "#eef2f6"},
                    hovertemplate=hover,
                )
            )
        else:
            fig.add_trace(
                go.Bar(
                    name=series,
                    y=d.rungs,
                    x=at_or_above,
                    customdata=counts,
                    orientation="h",
                    marker_color=color,
                    text=[f"{n:,}" for n in at_or_above],
                    textposition="auto",
                    hovertemplate=hover,
                )
            )
    fig.update_layout(
        barmode="group",
        title="Contacts on each rung or higher",
        legend={"orientation": "h"},
        yaxis={"autorange": "reversed"} if len(d.ladder) > 1 else {},
    )
    names = list(d.ladder)
    v.add("<section><h2>The ladder</h2>")
    if d.counts_note:
        v.add(f'<p class="note">{e(d.counts_note)}</p>')
    v.chart(fig, "ladder", 140 + 90 * len(d.rungs))
    v.add(
        table(
            ["Rung", *names, "Difference"],
            [
                [r, *(d.ladder[s][i] for s in names), f"{d.ladder[names[-1]][i] - d.ladder[names[0]][i]:+,}"]
                for i, r in enumerate(d.rungs)
            ],
        )
        + "</section>"
    )


def held_back(v: View, d: ReportData) -> None:
    """For each rung, how many contacts below it fail each of its criteria: what holds them back."""
    if not d.criteria:
        return
    counts = [d.held_back[3 * i : 3 * i + 3] for i in range(len(d.criteria))]
    fig = go.Figure()
    labels = [short(f"{c.rung}: {c.says}") for c in d.criteria]
    for name, k, color in (
        ("below the rung, failing it", 1, _SERIES_COLORS[0]),
        ("one rung below, missing only this", 2, _SERIES_COLORS[1]),
    ):
        fig.add_trace(
            go.Bar(
                name=name,
                y=labels,
                x=[c[k] for c in counts],
                orientation="h",
                marker_color=color,
                customdata=[f"{c.rung}: {c.says}" for c in d.criteria],
                hovertemplate="%{customdata}<br>%{x:,} contacts<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(
        barmode="group",
        title="Contacts held back by each criterion",
        legend={"orientation": "h"},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    v.add(
        f'<section><h2>What holds them back</h2><p class="note">{e(d.held_back_note)} "Only this" counts '
        "the contacts one rung below that meet every other criterion of the rung: one step from climbing.</p>"
    )
    v.chart(fig, "heldback", 140 + 46 * len(labels))
    v.add(
        table(
            ["Rung", "Criterion", "Contacts below it", "Failing it", "One rung below, missing only this"],
            [[c.rung, c.says, *n] for c, n in zip(d.criteria, counts, strict=True)],
        )
        + "</section>"
    )


def _movement_chart(v: View, m: Movement) -> None:
    fig = go.Figure(
        go.Heatmap(
            z=heatmap_z(m.matrix),
            x=m.cols,
            y=m.rows,
            text=[[f"{n:,}" if n else "" for n in r] for r in m.matrix],
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="%{y} -> %{x}: %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"From {m.rows_title} (rows) to {m.cols_title} (columns)",
        xaxis={"side": "top"},
        yaxis={"autorange": "reversed"},
    )
    v.chart(fig, "movement", 100 + 60 * len(m.rows), top=50)


def _replay(v: View, new: Replay, cur: Replay | None) -> None:
    v.add(
        f'<h3>Flapping</h3><p class="note">Replaying the rules at every weekly sync from {new.start.isoformat()} '
        f"to {new.end.isoformat()} (from an empty CRM, with demotion grace as in real syncs): under the new rules "
        f"<b>{new.flapping:,}</b> contacts would change rung more than once"
        + (f", against <b>{cur.flapping:,}</b> under the current rules" if cur else "")
        + ".</p>"
    )
    fig = go.Figure()
    for name, r, color in (("current rules", cur, _SERIES_COLORS[0]), ("new rules", new, _SERIES_COLORS[1])):
        if r is not None:
            fig.add_trace(
                go.Bar(
                    name=name,
                    x=[d.isoformat() for d, _ in r.changes],
                    y=[n for _, n in r.changes],
                    marker_color=color,
                    hovertemplate="%{x}: %{y:,} contacts change rung<extra>%{fullData.name}</extra>",
                )
            )
    fig.update_layout(
        barmode="group",
        title="Contacts changing rung at each weekly sync, rules replayed",
        xaxis={"type": "category"},
        legend={"orientation": "h"},
    )
    v.chart(fig, "replay", 340)
    both = [r for r in (cur, new) if r is not None]
    v.add(
        table(
            ["Over the replay", *(["current rules"] if cur else []), "new rules"],
            [
                ["changed rung at least once", *(r.changed for r in both)],
                ["changed more than once (flapping)", *(r.flapping for r in both)],
                ["went back (up then down, or down then up)", *(r.reversed for r in both)],
            ],
        )
    )


def movement(v: View, d: ReportData) -> None:
    v.add("<section><h2>Movement</h2>")
    if d.movement is not None:
        m = d.movement
        _movement_chart(v, m)
        v.add(
            table(
                [f"{m.rows_title} \u2193 / {m.cols_title} \u2192", *m.cols],
                [[r, *m.matrix[i]] for i, r in enumerate(m.rows)],
            )
        )
    else:
        v.add(f'<p class="note">{e(d.movement_note)}</p>')
    if d.samples:
        v.add(
            "<h3>Sample contacts per moving cell (lowest Ids)</h3>"
            + table(
                ["Contact", "Moves", "What changed", "Next step under the new rules"],
                [
                    [f"{s.name} ({s.contact_id})", f"{s.current} \u2192 {s.new}", "; ".join(s.changes), s.next_step]
                    for s in d.samples
                ],
            )
        )
    if d.replay is not None:
        _replay(v, d.replay, d.replay_current)
    v.add("</section>")


def _more(total: int) -> str:
    return f'<p class="note">And {total - ROWS_SHOWN:,} more.</p>' if total > ROWS_SHOWN else ""


def slipping(v: View, d: ReportData) -> None:
    if d.slipping is None:
        return
    v.add(
        '<section><h2>Who is slipping</h2><p class="note">Contacts held on a rung they no longer meet, by the '
        "demotion grace period or decaying one rung at a time: each drops on the day shown if nothing happens, "
        "soonest first.</p>"
    )
    if not d.slipping:
        v.add('<p class="note">Nobody is held above the rung they qualify for.</p></section>')
        return
    v.add(
        table(
            ["Drops on", "Contact", "Owner", "On rung", "Qualifies for", "Why"],
            [
                [
                    s.until.isoformat(),
                    who(s.name, s.account, s.account_id, s.cid),
                    d.owner_names.get(s.owner, s.owner),
                    s.stage,
                    s.qualifies,
                    ("held by the demotion grace period" if s.held else "decaying, one rung per period")
                    + (f"; slipping: {s.missing}" if s.missing else ""),
                ]
                for s in d.slipping[:ROWS_SHOWN]
            ],
        )
        + _more(len(d.slipping))
        + "</section>"
    )


def oldest_flags(v: View, d: ReportData) -> None:
    """Per owner, how many flags are open and the oldest one; then the oldest open flags themselves."""
    v.add("<section><h2>Oldest open flags by owner</h2>")
    if not d.open_flags:
        v.add('<p class="note">No open flag.</p></section>')
        return
    v.add(
        f'<p class="note">Days open: from the day the flag opened on the contact\'s history. "Over {STALE_DAYS} days" '
        "counts the flags open longer than that.</p>"
    )
    v.add(
        table(
            ["Owner", "Open flags", f"Over {STALE_DAYS} days", "Oldest: days open", "Contact", "Flag", "Open since"],
            [
                [
                    o.owner_name,
                    o.open,
                    o.stale,
                    o.oldest.days,
                    who(o.oldest.name, o.oldest.account, o.oldest.account_id, o.oldest.cid),
                    o.oldest.flag,
                    o.oldest.since.isoformat(),
                ]
                for o in by_owner(d.open_flags)
            ],
        )
    )
    v.add(
        "<h3>The oldest open flags</h3>"
        + table(
            ["Days open", "Contact", "Owner", "Flag", "Open since"],
            [
                [f.days, who(f.name, f.account, f.account_id, f.cid), f.owner_name, f.flag, f.since.isoformat()]
                for f in d.open_flags[:ROWS_SHOWN]
            ],
        )
        + _more(len(d.open_flags))
        + "</section>"
    )


def admin(v: View, d: ReportData) -> None:
    """Where the manager's part ends: the rule versions, then the detail an admin tunes the rules with."""
    v.add('<h2 class="part">For the admin: rules and movement</h2>')
    if d.admin_facts:
        v.add(
            '<dl class="facts">'
            + "".join(f"<div><dt>{e(k)}</dt><dd>{e(val)}</dd></div>" for k, val in d.admin_facts)
            + "</dl>"
        )


def moved(v: View, d: ReportData) -> None:
    if d.moved is None and not d.moved_note:
        return
    v.add("<section><h2>Who moved since the previous run</h2>")
    v.add(f'<p class="note">{e(d.moved_note)}</p>')
    if d.moved:
        v.add(
            table(
                ["Contact", "From", "To", "Run of"],
                [
                    [who(m.name, m.account, m.account_id, m.cid), m.from_stage, m.to_stage, m.day.isoformat()]
                    for m in d.moved[:ROWS_SHOWN]
                ],
            )
            + _more(len(d.moved))
        )
    elif d.moved is not None:
        v.add('<p class="note">Nobody moved.</p>')
    v.add("</section>")


def flags(v: View, d: ReportData) -> None:
    if not d.flags:
        return
    fig = go.Figure()
    labels = [f.label for f in d.flags]
    for name, counts, color in (
        (d.flags_before, [f.before for f in d.flags], _SERIES_COLORS[0]),
        (d.flags_after, [f.after for f in d.flags], _SERIES_COLORS[1]),
    ):
        fig.add_trace(go.Bar(name=name, x=labels, y=counts, marker_color=color, text=counts, textposition="auto"))
    fig.update_layout(barmode="group", title="Open flags", legend={"orientation": "h"})
    v.add("<section><h2>Open flags</h2>")
    v.chart(fig, "flags", 360)
    v.add(
        table(
            ["Flag", d.flags_before, d.flags_after, "Raised", "Cleared"],
            [[f.label, f.before, f.after, f.gained, f.lost] for f in d.flags],
        )
        + "</section>"
    )


def owners(v: View, d: ReportData) -> None:
    fig = go.Figure()
    names = [o for o, _ in reversed(d.owners)]
    for i, (rung, color) in enumerate(zip(d.rungs, colors(len(d.rungs)), strict=True)):
        fig.add_trace(
            go.Bar(name=rung, y=names, x=[c[i] for _, c in reversed(d.owners)], orientation="h", marker_color=color)
        )
    fig.update_layout(barmode="stack", title=d.owners_title, legend={"orientation": "h", "traceorder": "normal"})
    v.add("<section><h2>Rungs by owner</h2>")
    v.chart(fig, "owners", 140 + 24 * len(names))
    v.add("</section>")


ALL: tuple[Callable[[View, ReportData], None], ...] = (
    trend,
    held_back,
    slipping,
    oldest_flags,
    admin,
    ladder,
    movement,
    moved,
    flags,
    owners,
)
