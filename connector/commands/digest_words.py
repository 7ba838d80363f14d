"""The digest in words: the plain-text page a mailer sends, and the same page as HTML.

Each line names one contact fully (name, account name and Id: connector.commands.contact_words; on Salesforce, a
link), because a book of hundreds holds people of the same name; and each flag says how long it has been open,
because a thank-you owed since July is not one owed since last week.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from connector.commands import insights
from connector.commands.contact_words import who

if TYPE_CHECKING:
    from connector.commands.digest import Digest, Move, ToDo


def day(d: dt.date) -> str:
    return f"{d.day} {d.strftime('%b %Y')}"


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def age(opened: dt.date, as_of: dt.date) -> str:
    """'open 143 days (since 14 Jul 2026)'."""
    return f"open {_days((as_of - opened).days)} (since {day(opened)})"


def slip_what(s: insights.Slipping, as_of: dt.date) -> str:
    left = (s.until - as_of).days
    when = f"on {day(s.until)}" + (f", in {_days(left)}" if left > 0 else ", today" if left == 0 else "")
    if s.held:
        return f"drops from {s.stage} to {s.qualifies} {when}"
    return f"slipping from {s.stage} towards {s.qualifies}: loses one rung {when}"


def slip_step(s: insights.Slipping) -> str:
    """What the contact record tells the rep to do (an open flag's step, or the keep step with its date); only a
    placement without one falls back on the criteria it no longer meets."""
    if s.next_step:
        return s.next_step
    return f"Keep the rung: {s.missing}." if s.missing else "A conversation before the date keeps the rung."


def flag_what(f: insights.Flagged, as_of: dt.date) -> str:
    parts = [f"{label} {age(d, as_of)}" if d else label for label, d in f.opened] or list(f.flags)
    return f"{f.stage}: " + "; ".join(parts)


def _move_line(m: Move, means: dict[str, str]) -> str:
    named = who(m.name, m.account, m.account_id, m.cid)
    if m.to_stage is None:
        return f"{named} no longer has a rung (was {m.from_stage})."
    why = f" ({means[m.to_stage].rstrip('.')})" if m.up and means.get(m.to_stage) else ""
    return f"{named} went {'up' if m.up else 'down'} from {m.from_stage} to {m.to_stage}{why}."


def _slip_line(s: insights.Slipping) -> str:
    named = who(s.name, s.account, s.account_id, s.cid)
    if s.held:
        head = f"{named} stays on {s.stage} until {day(s.until)}, then drops to {s.qualifies}"
    else:
        head = f"{named} is slipping from {s.stage} towards {s.qualifies} and drops one rung on {day(s.until)}"
    return head + (f" unless this changes: {s.missing}." if s.missing else ".")


def _intro(d: Digest) -> str:
    n = d.owner.contacts
    return (
        f"Your {n:,} contact{'s' if n != 1 else ''} on the trust ladder, as of {day(d.as_of)}: "
        "what to do today first, then the rest."
    )


def placed_lines(d: Digest) -> list[str]:
    """A first sync's placements, one line per rung, lowest first."""
    return [f"{rung}: {d.placed[rung]:,}" for rung in d.rungs if d.placed.get(rung)]


Item = tuple[str, list[str], str | None]  # (line, detail lines, link)


@dataclass(frozen=True)
class Section:
    heading: str
    empty: str  # what to say when there is nothing
    items: list[Item]
    numbered: bool = False  # a ranked list
    counted: bool = True  # the heading shows how many


def _todo_item(t: ToDo, d: Digest) -> Item:
    return (
        f"{who(t.name, t.account, t.account_id, t.cid)}: {t.what}",
        [f"Next step: {t.step}"] if t.step else [],
        d.link(t.cid),
    )


def sections(d: Digest) -> list[Section]:
    """In page order: today first, then the rest."""
    moved_empty = (
        "Nobody moved." if d.moves_known else "Moves are recorded by each sync from now on; the next digest lists them."
    )
    out = [
        Section(
            "To do today",
            "Nothing urgent: no hold ends soon and no flag is open.",
            [_todo_item(t, d) for t in d.today],
            numbered=True,
        )
    ]
    if d.placed:
        out.append(
            Section(
                f"Put on the ladder since {day(d.since)} ({sum(d.placed.values()):,} contacts)",
                "",
                [(line, [], None) for line in placed_lines(d)],
                counted=False,
            )
        )
    if d.moved or not d.placed:  # after a first sync everyone was placed and nobody moved: the line says nothing
        out.append(
            Section(
                f"Who moved since {day(d.since)}",
                moved_empty,
                [(_move_line(m, d.means), [], d.link(m.cid)) for m in d.moved],
            )
        )
    out += [
        Section(
            "Other open flags, oldest first",
            "No other open flags."
            if d.today
            else "No open flags: every thank-you is said and every conversation heard.",
            [
                (
                    f"{who(f.name, f.account, f.account_id, f.cid)}: {flag_what(f, d.as_of)}",
                    [f"Next step: {f.next_step}"],
                    d.link(f.cid),
                )
                for f in d.flagged
            ],
        ),
        Section(
            "Also slipping",
            "Nobody else is slipping." if d.today else "Nobody is slipping.",
            [(_slip_line(s), [], d.link(s.cid)) for s in d.slipping],
        ),
    ]
    return out


def text(d: Digest) -> str:
    lines = [f"Trust ladder digest for {d.owner.name}, {day(d.as_of)}", "", _intro(d)]
    for sec in sections(d):
        lines += ["", f"{sec.heading} ({len(sec.items)})" if sec.items and sec.counted else sec.heading]
        lines.append("-" * len(lines[-1]))
        if not sec.items:
            lines.append(sec.empty)
        for i, (line, details, link) in enumerate(sec.items, 1):
            lines.append(f"{i}. {line}" if sec.numbered else f"- {line}")
            lines += [f"   {x}" for x in details]
            if link:
                lines.append(f"   {link}")
    return "\n".join(lines) + "\n"


def page(d: Digest) -> str:
    e = html.escape
    body = [f"<h1>Trust ladder digest for {e(d.owner.name)}</h1>", f'<p class="intro">{e(_intro(d))}</p>']
    for sec in sections(d):
        body.append(f"<section><h2>{e(sec.heading)}</h2>")
        if not sec.items:
            body.append(f'<p class="empty">{e(sec.empty)}</p>')
        else:
            tag = "ol" if sec.numbered else "ul"
            lis = []
            for line, details, link in sec.items:
                shown = f'<a href="{e(link)}">{e(line)}</a>' if link else e(line)
                lis.append(f"<li>{shown}" + "".join(f'<div class="detail">{e(x)}</div>' for x in details) + "</li>")
            body.append(f"<{tag}>" + "".join(lis) + f"</{tag}>")
        body.append("</section>")
    return _PAGE.format(
        title=e(f"Trust ladder digest for {d.owner.name}, {day(d.as_of)}"), css=_CSS, body="\n".join(body)
    )


def file_stem(owner: insights.Owner) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", owner.key) or "no-owner"


def write(digests: list[Digest], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index = ["owner_id\tname\temail\ttext\thtml"]
    for d in digests:
        stem = file_stem(d.owner)
        txt, htm = out / f"{stem}.txt", out / f"{stem}.html"
        txt.write_text(text(d), encoding="utf-8")
        htm.write_text(page(d), encoding="utf-8")
        written += [txt, htm]
        clean = [re.sub(r"[\t\r\n]", " ", v) for v in (d.owner.key, d.owner.name, d.owner.email or "")]
        index.append("\t".join([*clean, txt.name, htm.name]))
    tsv = out / "owners.tsv"
    tsv.write_text("\n".join(index) + "\n", encoding="utf-8")
    return [*written, tsv]


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 720px; margin: 0 auto; padding: 24px; color: #1f2933;
       line-height: 1.45; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #d9e2ec; }
.intro, .empty { color: #52606d; } li { margin: 6px 0; } .detail { color: #2171b5; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}
</body>
</html>
"""
