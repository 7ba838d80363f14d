"""The digest: one short page per owner, in plain words, for a scheduler to mail.

Three things a salesperson can act on: who moved on the ladder since a day, the open flags with the next step each
one asks for, and who is slipping (kept on a rung by the grace period, or losing one rung per period) with the day
it happens. Read-only: the engine places the contacts as of a day on the CRM's data (the local CRM, or the
Salesforce mirror as last pulled), the moves come from the state store.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from connector import log
from connector.commands import insights, moves, sync
from connector.engine.relations import PLACE
from connector.ruleset.compiler import RuleSet

_log = log.get("trust_ladder.digest")
DEFAULT_DAYS = 7  # without --since and without any recorded sync: the last week


@dataclass(frozen=True)
class Move:
    name: str
    cid: str
    from_stage: str | None
    to_stage: str | None
    up: bool


@dataclass
class Digest:
    owner: insights.Owner
    as_of: dt.date
    since: dt.date
    moves_known: bool  # False: no sync has recorded moves yet
    moved: list[Move]
    flagged: list[insights.Flagged]
    slipping: list[insights.Slipping]
    means: dict[str, str]  # rung -> what it means, from the rule file


def _day(d: dt.date) -> str:
    return f"{d.day} {d.strftime('%b %Y')}"


def gather(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    as_of: dt.date,
    state_path: Path | None,
    *,
    since: dt.date | None = None,
    owner: str | None = None,
) -> list[Digest]:
    """One digest per owner with contacts (or just `owner`); `since` defaults to the last sync day."""
    sync.compute(con, rules, as_of)
    books = [b for b in insights.owners(con) if owner is None or b.key == owner]
    since = since or moves.last_run_day(state_path) or as_of - dt.timedelta(days=DEFAULT_DAYS)
    found = moves.since(state_path, since)
    who = insights.contacts(con, [m.cid for m in found or []])
    rank = {r.name: r.index for r in rules.rungs}
    moved: dict[str, list[Move]] = {}
    for m in found or []:
        if m.cid in who:
            name, key = who[m.cid]
            up = rank.get(m.to_stage or "", -1) > rank.get(m.from_stage or "", -1)
            moved.setdefault(key, []).append(Move(name, m.cid, m.from_stage, m.to_stage, up))
    flagged = insights.flagged(con, PLACE.name)
    slipping = insights.slipping(con, PLACE.name, rules, as_of)
    means = {r.name: r.means or "" for r in rules.rungs}
    out = [
        Digest(
            b,
            as_of,
            since,
            found is not None,
            sorted(moved.get(b.key, []), key=lambda m: (not m.up, m.name, m.cid)),
            [f for f in flagged if f.owner == b.key],
            [s for s in slipping if s.owner == b.key],
            means,
        )
        for b in books
    ]
    _log.info(
        "digest.gathered",
        owners=len(out),
        since=since.isoformat(),
        moved=sum(len(d.moved) for d in out),
        flagged=sum(len(d.flagged) for d in out),
        slipping=sum(len(d.slipping) for d in out),
    )
    return out


# -- words --------------------------------------------------------------------------------------------------


def _move_line(m: Move, means: dict[str, str]) -> str:
    if m.from_stage is None:
        return f"{m.name} is now on the ladder as {m.to_stage}."
    if m.to_stage is None:
        return f"{m.name} no longer has a rung (was {m.from_stage})."
    why = f" ({means[m.to_stage].rstrip('.')})" if m.up and means.get(m.to_stage) else ""
    return f"{m.name} went {'up' if m.up else 'down'} from {m.from_stage} to {m.to_stage}{why}."


def _slip_line(s: insights.Slipping) -> str:
    if s.held:
        head = f"{s.name} stays on {s.stage} until {_day(s.until)}, then drops to {s.qualifies}"
    else:
        head = f"{s.name} is slipping from {s.stage} towards {s.qualifies} and drops one rung on {_day(s.until)}"
    return head + (f" unless this changes: {s.missing}." if s.missing else ".")


def _intro(d: Digest) -> str:
    n = d.owner.contacts
    return (
        f"Your {n:,} contact{'s' if n != 1 else ''} on the trust ladder, as of {_day(d.as_of)}: who moved since "
        f"{_day(d.since)}, the thank-yous and listening that are missing, and who needs a conversation soon."
    )


def _sections(d: Digest) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(heading, what to say when empty, [(line, detail)]) in page order."""
    moved_empty = (
        "Nobody moved." if d.moves_known else "Moves are recorded by each sync from now on; the next digest lists them."
    )
    return [
        (f"Who moved since {_day(d.since)}", moved_empty, [(_move_line(m, d.means), "") for m in d.moved]),
        (
            "Open flags: what to do next",
            "No open flags: every thank-you is said and every conversation heard.",
            [(f"{f.name} ({f.stage}): {', '.join(f.flags)}", f"Next step: {f.next_step}") for f in d.flagged],
        ),
        ("Slipping: who needs you before the date", "Nobody is slipping.", [(_slip_line(s), "") for s in d.slipping]),
    ]


def text(d: Digest) -> str:
    lines = [f"Trust ladder digest for {d.owner.name}, {_day(d.as_of)}", "", _intro(d)]
    for heading, empty, items in _sections(d):
        lines += ["", f"{heading} ({len(items)})" if items else heading, "-" * len(heading)]
        if not items:
            lines.append(empty)
        for line, detail in items:
            lines.append(f"- {line}")
            if detail:
                lines.append(f"  {detail}")
    return "\n".join(lines) + "\n"


def page(d: Digest) -> str:
    e = html.escape
    body = [f"<h1>Trust ladder digest for {e(d.owner.name)}</h1>", f'<p class="intro">{e(_intro(d))}</p>']
    for heading, empty, items in _sections(d):
        body.append(f"<section><h2>{e(heading)}</h2>")
        if not items:
            body.append(f'<p class="empty">{e(empty)}</p>')
        else:
            body.append(
                "<ul>"
                + "".join(
                    f"<li>{e(line)}" + (f'<div class="detail">{e(detail)}</div>' if detail else "") + "</li>"
                    for line, detail in items
                )
                + "</ul>"
            )
        body.append("</section>")
    return _PAGE.format(
        title=e(f"Trust ladder digest for {d.owner.name}, {_day(d.as_of)}"), css=_CSS, body="\n".join(body)
    )


def file_stem(owner: insights.Owner) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", owner.key) or "no-owner"


def write(digests: list[Digest], out: Path) -> list[Path]:
    """`<OwnerId>.html` and `<OwnerId>.txt` per owner, and `owners.tsv` (id, name, email, text file, html file)
    for the mailer. Returns the files written."""
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
    _log.info("digest.written", owners=len(digests), folder=str(out))
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
