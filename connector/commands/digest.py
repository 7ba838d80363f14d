"""The digest: one short page per owner, in plain words, for a scheduler to mail.

It opens on what to do today: the few contacts that need the owner first, ranked (holds that end soonest, then the
flags open longest), each with its account's name, its Id and a link to the record. The rest follows: who moved (a
first sync's placements said in one line per rung, not one per contact), every open flag with how long it has been
open, and everyone slipping with the day it happens; each line that names a contact names its account too. Account
names are read when the digest is made, as the local CRM or the Salesforce mirror holds them then: no placement
depends on them, so a renamed account shows its new name with no contact computed again. Read-only: the engine
places the contacts as of a day on the CRM's data (the local CRM, or the Salesforce mirror as last pulled), the
moves come from the state store.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb

from connector import log
from connector.commands import digest_words, insights, moves, sync
from connector.crm.salesforce import mirror
from connector.engine.relations import PLACE
from connector.ruleset.compiler import RuleSet

_log = log.get("trust_ladder.digest")
DEFAULT_DAYS = 7  # without --since and without any recorded sync: the last week
TODAY = 5  # things to do today, at most: more is a list, not a plan for the day
HOLDS_TODAY = 3  # at most this many of today's places go to holds, so the oldest flags are never crowded out
INSTANCE_KEY = mirror.INSTANCE_URL_KEY  # the org's address, kept in the mirror by each sync's sign-in


@dataclass(frozen=True)
class Move:
    name: str
    cid: str
    from_stage: str | None
    to_stage: str | None
    up: bool
    account: str = ""  # the account's name, '' when none or unknown
    account_id: str = ""


@dataclass(frozen=True)
class ToDo:
    """One thing to do today: a hold about to end, or a flag open long."""

    cid: str
    name: str
    account: str  # the account's name, '' when none or unknown
    account_id: str
    what: str  # what is at stake, with the date or the age
    step: str  # what to do about it


@dataclass
class Digest:
    owner: insights.Owner
    as_of: dt.date
    since: dt.date
    moves_known: bool  # False: no sync has recorded moves yet
    moved: list[Move]  # rung changes of contacts that had a rung on the record before
    placed: dict[str, int]  # rung -> contacts put on the ladder for the first time (a first sync puts everyone)
    today: list[ToDo]
    flagged: list[insights.Flagged]  # oldest flag first, today's left out
    slipping: list[insights.Slipping]  # soonest first, today's left out
    means: dict[str, str]  # rung -> what it means, from the rule file
    rungs: list[str]  # rung names, lowest first
    instance_url: str | None = None  # the org's address, for links to the records; None on the local CRM

    def link(self, cid: str) -> str | None:
        """The record's page in Lightning Experience."""
        return f"{self.instance_url}/lightning/r/Contact/{cid}/view" if self.instance_url else None


def default_as_of(state_path: Path | None) -> dt.date:
    """The evaluation day of the last sync that wrote: the digest describes what the CRM shows, not the day the
    machine happens to run it. Before any sync: today."""
    return moves.last_run_day(state_path) or dt.date.today()


def days_ago(day: dt.date, as_of: dt.date) -> int:
    return (as_of - day).days


def _ranked(
    flagged: list[insights.Flagged], slipping: list[insights.Slipping], as_of: dt.date
) -> tuple[list[ToDo], set[str], set[str]]:
    """Holds that end soonest (HOLDS_TODAY at most, more where flags leave room), then the oldest open flags,
    TODAY in all; and the Ids each list gave."""
    soon = sorted(slipping, key=lambda s: (s.until, s.name, s.cid))
    by_age = sorted(flagged, key=lambda f: (f.oldest or dt.date.max, f.name, f.cid))
    n_holds = min(len(soon), max(HOLDS_TODAY, TODAY - len(by_age)))
    out: list[ToDo] = []
    held, flags = set(), set()
    for s in soon[:n_holds]:
        out.append(
            ToDo(s.cid, s.name, s.account, s.account_id, digest_words.slip_what(s, as_of), digest_words.slip_step(s))
        )
        held.add(s.cid)
    room = TODAY - len(out)
    for f in by_age[: max(room, 0)]:
        out.append(ToDo(f.cid, f.name, f.account, f.account_id, digest_words.flag_what(f, as_of), f.next_step))
        flags.add(f.cid)
    return out, held, flags


def gather(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    as_of: dt.date,
    state_path: Path | None,
    *,
    since: dt.date | None = None,
    owner: str | None = None,
    instance_url: str | None = None,
) -> list[Digest]:
    """One digest per owner with contacts (or just `owner`); `since` defaults to the last sync day."""
    sync.compute(con, rules, as_of)
    books = [b for b in insights.owners(con) if owner is None or b.key == owner]
    since = since or moves.last_run_day(state_path) or as_of - dt.timedelta(days=DEFAULT_DAYS)
    found = moves.since(state_path, since)
    who = insights.contacts(con, [m.cid for m in found or []])
    rank = {r.name: r.index for r in rules.rungs}
    moved: dict[str, list[Move]] = {}
    placed: dict[str, Counter[str]] = {}
    for m in found or []:
        if m.cid not in who:
            continue
        w = who[m.cid]
        if m.from_stage is None and m.to_stage is not None:
            placed.setdefault(w.owner, Counter())[m.to_stage] += 1
            continue
        up = rank.get(m.to_stage or "", -1) > rank.get(m.from_stage or "", -1)
        moved.setdefault(w.owner, []).append(Move(w.name, m.cid, m.from_stage, m.to_stage, up, w.account, w.account_id))
    flagged = insights.flagged(con, PLACE.name, rules)
    slipping = insights.slipping(con, PLACE.name, rules, as_of)
    means = {r.name: r.means or "" for r in rules.rungs}
    out = []
    for b in books:
        mine_f = [f for f in flagged if f.owner == b.key]
        mine_s = [s for s in slipping if s.owner == b.key]
        today, held, flags = _ranked(mine_f, mine_s, as_of)
        out.append(
            Digest(
                b,
                as_of,
                since,
                found is not None,
                sorted(moved.get(b.key, []), key=lambda m: (not m.up, m.name, m.cid)),
                dict(placed.get(b.key, Counter())),
                today,
                sorted(
                    (f for f in mine_f if f.cid not in flags), key=lambda f: (f.oldest or dt.date.max, f.name, f.cid)
                ),
                [s for s in mine_s if s.cid not in held],
                means,
                [r.name for r in rules.rungs],
                instance_url.rstrip("/") if instance_url else None,
            )
        )
    _log.info(
        "digest.gathered",
        owners=len(out),
        as_of=as_of.isoformat(),
        since=since.isoformat(),
        moved=sum(len(d.moved) for d in out),
        placed=sum(sum(d.placed.values()) for d in out),
        today=sum(len(d.today) for d in out),
        flagged=sum(len(d.flagged) for d in out),
        slipping=sum(len(d.slipping) for d in out),
    )
    return out


def write(digests: list[Digest], out: Path) -> list[Path]:
    """`<OwnerId>.html` and `<OwnerId>.txt` per owner, and `owners.tsv` (id, name, email, text file, html file)
    for the mailer. Returns the files written."""
    written = digest_words.write(digests, out)
    _log.info("digest.written", owners=len(digests), folder=str(out))
    return written
