"""What the HTML report shows, gathered once for all owners and once per owner (the page's owner filter).

Two pages share one layout, a manager's questions first (the trend month by month, what holds contacts back, who
is slipping, the oldest open flags by owner), then the admin's detail (rule versions, the ladder as synced against
the engine today, the movement matrix). The current state shows the CRM's trust fields as last synced beside the
engine's numbers today; a simulation shows the current rules beside a changed rule file, with the flapping of
both, and says where its counts differ from what a sync writes. Every count is grouped by owner in SQL, then summed
for "all owners", so the filter costs no extra pass over the contacts.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
from sqlglot import exp

from connector import sql
from connector.commands import flag_age, insights, moves, sync, trend
from connector.commands.replay import Replay
from connector.commands.simulate import CUR_TABLE, NEW_TABLE, FlagMove, Sample, Simulation, counts_note
from connector.engine.relations import PLACE
from connector.ruleset.compiler import RuleSet

NOT_SYNCED = "(not synced yet)"  # a contact the last sync did not place (new since, or never synced)
TOP_OWNERS = 25  # owners shown one by one in the chart of all owners; the rest are summed into one bar
FILTER_OWNERS = 200  # owners the filter offers, biggest books first (each adds a copy of the page's data)
ROWS_SHOWN = 100  # rows of a contact list (slipping, moved) shown per view

_PAIRS = """SELECT o.owner, COALESCE(p.cur_stage, $none), p.new_stage, count(*) FROM $place p
JOIN $owners o USING (cid) GROUP BY ALL"""
_SIM_PAIRS = """SELECT o.owner, c.qualified, n.qualified, c.final, count(*), count(*) FILTER (WHERE n.in_grace
AND c.qualified <> n.qualified) FROM $cur c JOIN $new n USING (cid) JOIN $owners o USING (cid) GROUP BY ALL"""
_FLAGS = """SELECT o.owner, count(*) FILTER (WHERE list_contains(b, $l)), count(*) FILTER (WHERE list_contains(a, $l)),
  count(*) FILTER (WHERE list_contains(a, $l) AND NOT list_contains(b, $l)),
  count(*) FILTER (WHERE list_contains(b, $l) AND NOT list_contains(a, $l))
FROM (SELECT cid, string_split(COALESCE($before, ''), ';') AS b, string_split(COALESCE($after, ''), ';') AS a
      FROM $place) JOIN $owners o USING (cid) GROUP BY 1"""
_FLAG_PAIRS = "tl_rep_flags"  # cid, flags before, flags after
_SIM_PLACE = "SELECT cid, c.new_flags AS before, n.new_flags AS after FROM $cur c JOIN $new n USING (cid)"


@dataclass
class Movement:
    rows_title: str
    cols_title: str
    rows: list[str]
    cols: list[str]
    matrix: list[list[int]]


@dataclass(frozen=True)
class Moved:
    cid: str
    name: str
    from_stage: str
    to_stage: str
    day: dt.date
    account: str = ""  # the account's name, '' when none or unknown
    account_id: str = ""


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
    replay_current: Replay | None = None  # the current rules replayed beside the new ones (simulation)
    criteria: list[insights.Criterion] = field(default_factory=list)  # what holds contacts back ...
    held_back: list[int] = field(default_factory=list)  # ... below / failing / only missing, per criterion
    held_back_note: str = ""
    slipping: list[insights.Slipping] | None = None
    moved: list[Moved] | None = None
    moved_note: str = ""
    by_owner: list[tuple[str, str, ReportData]] = field(default_factory=list)  # (OwnerId, name, narrowed data)
    trend: trend.Months = field(default_factory=list)  # contacts per rung on the first of each month
    open_flags: list[flag_age.OpenFlag] = field(default_factory=list)  # oldest first
    admin_facts: list[tuple[str, str]] = field(default_factory=list)  # rule versions and the like, for the admin
    counts_note: str = ""  # where the ladder's counts differ from what a sync writes, and why
    owner_names: dict[str, str] = field(default_factory=dict)  # OwnerId -> name, for the tables


def _sum(rows: list[list[int]], width: int) -> list[int]:
    return [sum(r[i] for r in rows) for i in range(width)]


def _sum_matrix(ms: list[list[list[int]]], rows: int, cols: int) -> list[list[int]]:
    return [[sum(m[i][j] for m in ms) for j in range(cols)] for i in range(rows)]


_NOBODY = insights.Who("", insights.NO_OWNER)  # a sample whose contact is gone


def _owner_chart(books: list[insights.Owner], counts: dict[str, list[int]], width: int) -> list[tuple[str, list[int]]]:
    top = [(b.name, counts.get(b.key, [0] * width)) for b in books[:TOP_OWNERS]]
    rest = books[TOP_OWNERS:]
    if rest:
        top.append((f"{len(rest)} other owners", _sum([counts.get(b.key, [0] * width) for b in rest], width)))
    return top


def _flag_moves(con: duckdb.DuckDBPyConnection, place: exp.Expr, labels: list[str]) -> dict[str, list[FlagMove]]:
    """Per owner, flags before (`before`) against after (`after`), per label."""
    out: dict[str, list[FlagMove]] = defaultdict(list)
    sql.run(con, sql.create_temp(_FLAG_PAIRS, place))
    for label in labels:
        tree = sql.q(
            _FLAGS,
            place=sql.table(_FLAG_PAIRS),
            owners=sql.table(insights.OWNERS),
            before=sql.col("before"),
            after=sql.col("after"),
            l=label,
        )
        for owner, *counts in sql.run(con, tree).fetchall():
            out[str(owner)].append(FlagMove(label, *(int(v) for v in counts)))
    return out


def _narrow(d: ReportData, books: list[insights.Owner], each: dict[str, ReportData]) -> ReportData:
    names = {b.key: b.name for b in books}
    for one in (d, *each.values()):
        one.owner_names = names
    d.by_owner = [(b.key, b.name, each[b.key]) for b in books[:FILTER_OWNERS] if b.key in each]
    if len(books) > FILTER_OWNERS:
        d.notes.append(f"The owner filter offers the {FILTER_OWNERS} biggest books of {len(books)} owners.")
    return d


def _moved(state_path: Path | None, con: duckdb.DuckDBPyConnection) -> tuple[list[Moved] | None, str, dict[str, str]]:
    """Who moved since the day of the last sync that wrote, with names; and each one's owner."""
    day = moves.last_run_day(state_path)
    found = moves.since(state_path, day) if day else None
    if found is None or day is None:
        return (
            None,
            ("No move is recorded yet: each sync from this version on records who moved, and this section lists them."),
            {},
        )
    who = insights.contacts(con, [m.cid for m in found])
    rows = [
        Moved(
            m.cid,
            who[m.cid].name,
            m.from_stage or NOT_SYNCED,
            m.to_stage or "(cleared)",
            m.day,
            who[m.cid].account,
            who[m.cid].account_id,
        )
        for m in found
        if m.cid in who
    ]
    return (
        rows,
        f"Moves written by the syncs evaluated on {day.isoformat()} (the last sync day).",
        {m.cid: who[m.cid].owner for m in rows},
    )


def _trend(months: dict[str, trend.Months], owner: str | None) -> trend.Months:
    if owner is None:
        return trend.org_wide(months)
    if owner in months:
        return months[owner]
    return [(d, {}) for d, _ in trend.org_wide(months)]


def current(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    as_of: dt.date,
    state_path: Path | None,
    months: dict[str, trend.Months] | None = None,
) -> ReportData:
    """The CRM's trust fields as last synced (`crm_contact`'s cur_* columns), and what the engine makes of the same
    data today; `months`, the trend per owner (connector.commands.trend.by_owner). Nothing is written."""
    sync.compute(con, rules, as_of)
    books = insights.owners(con)
    place = sql.table(PLACE.name)
    pairs = [
        (str(o), str(a), str(b), int(n))
        for o, a, b, n in sql.run(
            con, sql.q(_PAIRS, place=place, owners=sql.table(insights.OWNERS), none=NOT_SYNCED)
        ).fetchall()
    ]
    crm_rungs = sorted({a for _, a, _, _ in pairs if a != NOT_SYNCED})
    rungs = [r.name for r in rules.rungs] + [s for s in crm_rungs if rules.rung_index(s) is None]
    rows = rungs + ([NOT_SYNCED] if any(a == NOT_SYNCED for _, a, _, _ in pairs) else [])
    synced = bool(crm_rungs)
    version = sql.scalar(con, sql.q("SELECT mode(cur_version) FROM $p", p=place))
    flags = _flag_moves(
        con,
        sql.q("SELECT cid, cur_flags AS before, new_flags AS after FROM $p", p=place),
        [f.label for f in rules.flags],
    )
    held = insights.held_back(con, PLACE.name, rules, "final")
    slipping = insights.slipping(con, PLACE.name, rules, as_of)
    moved, moved_note, moved_owner = _moved(state_path, con)
    crits = insights.criteria(rules)
    aged = flag_age.open_flags(con, PLACE.name, rules, as_of)

    def one(owner: str | None) -> ReportData:
        mine = [p for p in pairs if owner is None or p[0] == owner]
        matrix = [[0] * len(rungs) for _ in rows]
        for _, a, b, n in mine:
            if a in rows and b in rungs:
                matrix[rows.index(a)][rungs.index(b)] += n
        crm_counts = [sum(n for _, a, _, n in mine if a == r) for r in rungs]
        now_counts = [sum(n for _, _, b, n in mine if b == r) for r in rungs]
        per_owner = {
            o: [sum(n for oo, a, b, n in pairs if oo == o and (a if synced else b) == r) for r in rungs]
            for o in {p[0] for p in mine}
        }
        facts = [("Contacts", f"{sum(n for *_, n in mine):,}"), ("Evaluated as of", as_of.isoformat())]
        return ReportData(
            title="Trust ladder: current state",
            facts=facts,
            admin_facts=[("Engine rules", rules.version), ("Rules on the records", str(version or "none yet"))],
            trend=_trend(months or {}, owner),
            open_flags=[f for f in aged if owner is None or f.owner == owner],
            rungs=rungs,
            ladder={"CRM, as last synced": crm_counts, f"Engine today ({as_of.isoformat()})": now_counts},
            owners_title=(
                "Rungs by owner, as the CRM shows them"
                if synced
                else "Rungs by owner, as the engine places them today (the CRM holds none yet)"
            ),
            owners=_owner_chart([b for b in books if owner is None or b.key == owner], per_owner, len(rungs)),
            flags_before="CRM, as last synced",
            flags_after="engine today",
            flags=_owner_flags(flags, owner, [f.label for f in rules.flags]),
            movement=Movement("CRM, as last synced", f"engine today ({as_of.isoformat()})", rows, rungs, matrix)
            if synced
            else None,
            movement_note=""
            if synced
            else (
                "No sync has written to this CRM yet, so there is no earlier placement to compare with: "
                "run `trust-ladder sync`, and this section shows who moved since."
            ),
            criteria=crits,
            held_back=_owner_counts(held, owner, 3 * len(crits)),
            held_back_note="Below a rung: placed under it by the engine today.",
            slipping=[s for s in slipping if owner is None or s.owner == owner],
            moved=None if moved is None else [m for m in moved if owner is None or moved_owner[m.cid] == owner],
            moved_note=moved_note,
        )

    return _narrow(one(None), books, {b.key: one(b.key) for b in books[:FILTER_OWNERS]})


def _owner_counts(counts: dict[str, list[int]], owner: str | None, width: int) -> list[int]:
    if owner is not None:
        return counts.get(owner, [0] * width)
    return _sum(list(counts.values()), width)


def _owner_flags(flags: dict[str, list[FlagMove]], owner: str | None, labels: list[str]) -> list[FlagMove]:
    chosen = [v for k, v in flags.items() if owner is None or k == owner]
    return [
        FlagMove(label, *(sum(getattr(f[i], a) for f in chosen) for a in ("before", "after", "gained", "lost")))
        for i, label in enumerate(labels)
    ]


def simulated(
    con: duckdb.DuckDBPyConnection,
    sim: Simulation,
    new_rules: RuleSet | None = None,
    months: dict[str, trend.Months] | None = None,
) -> ReportData:
    """A finished simulation (its temp tables still on `con`) as a page; with the new rule set, also what holds
    contacts back under it, who its grace period would hold and its open flags by age; `months`, the trend of the
    rules in force per owner."""
    books = insights.owners(con)
    union = list(dict.fromkeys(sim.current_rungs + sim.new_rungs))
    got = sql.run(
        con, sql.q(_SIM_PAIRS, cur=sql.table(CUR_TABLE), new=sql.table(NEW_TABLE), owners=sql.table(insights.OWNERS))
    ).fetchall()
    pairs = [(str(o), int(i), int(j), int(f), int(n), int(h)) for o, i, j, f, n, h in got]
    flags = _flag_moves(
        con, sql.q(_SIM_PLACE, cur=sql.table(CUR_TABLE), new=sql.table(NEW_TABLE)), [f.label for f in sim.flags]
    )
    crits = insights.criteria(new_rules) if new_rules else []
    held = insights.held_back(con, NEW_TABLE, new_rules, "qualified") if new_rules else {}
    slipping = insights.slipping(con, NEW_TABLE, new_rules, sim.as_of) if new_rules else None
    aged = flag_age.open_flags(con, NEW_TABLE, new_rules, sim.as_of) if new_rules else []
    owner_of = insights.contacts(con, [s.contact_id for s in sim.samples])

    def one(owner: str | None) -> ReportData:
        mine = [p for p in pairs if owner is None or p[0] == owner]
        matrix = [[0] * len(sim.new_rungs) for _ in sim.current_rungs]
        for _, i, j, _, n, _ in mine:
            matrix[i][j] += n
        part = replace(sim, matrix=matrix, held_by_grace=sum(p[5] for p in mine), notes=[])
        contacts = sum(p[4] for p in mine)
        moved = f"{part.moved:,} ({100 * part.moved / contacts:.1f}%)" if contacts else "0"
        facts = [("Contacts", f"{contacts:,}"), ("Evaluated as of", sim.as_of.isoformat()), ("Moving", moved)]
        admin = [("Current rules", sim.current_version), ("New rules", sim.new_version)]
        if part.held_by_grace:
            facts.append(("Held by demotion grace at the next sync", f"{part.held_by_grace:,}"))
        replay_new, replay_cur = (
            None if r is None else r if owner is None else r.for_owner(owner) for r in (sim.replay, sim.replay_current)
        )
        if replay_new is not None:
            admin.append((f"Flapping over {replay_new.weeks} weeks (new rules)", f"{replay_new.flapping:,}"))
        if replay_cur is not None:
            admin.append(("Flapping (current rules)", f"{replay_cur.flapping:,}"))
        synced = [sum(p[4] for p in mine if p[3] == r) for r in range(len(sim.current_rungs))]
        per_owner: dict[str, list[int]] = {}
        for o, _, j, _, n, _ in mine:
            counts = per_owner.setdefault(o, [0] * len(union))
            counts[union.index(sim.new_rungs[j])] += n
        return ReportData(
            title="Trust ladder: simulation of a rule change",
            facts=facts,
            admin_facts=admin,
            trend=_trend(months or {}, owner),
            open_flags=[f for f in aged if owner is None or f.owner == owner],
            counts_note=counts_note(
                sim.current_rungs, part.per_rung_current, synced, sum(p[4] for p in mine if p[3] != p[1])
            ),
            rungs=union,
            ladder={
                "current rules": _align(sim.current_rungs, part.per_rung_current, union),
                "new rules": _align(sim.new_rungs, part.per_rung_new, union),
            },
            owners_title="Rungs by owner under the new rules",
            owners=_owner_chart([b for b in books if owner is None or b.key == owner], per_owner, len(union)),
            flags_before="current rules",
            flags_after="new rules",
            flags=_owner_flags(flags, owner, [f.label for f in sim.flags]),
            movement=Movement("current rules", "new rules", sim.current_rungs, sim.new_rungs, matrix),
            samples=[s for s in sim.samples if owner is None or owner_of.get(s.contact_id, _NOBODY).owner == owner],
            replay=replay_new,
            replay_current=replay_cur,
            notes=list(sim.notes),
            criteria=crits,
            held_back=_owner_counts(held, owner, 3 * len(crits)),
            held_back_note="Below a rung: qualifying only for a lower rung under the new rules.",
            slipping=None if slipping is None else [s for s in slipping if owner is None or s.owner == owner],
        )

    return _narrow(one(None), books, {b.key: one(b.key) for b in books[:FILTER_OWNERS]})


def _align(names: list[str], counts: list[int], union: list[str]) -> list[int]:
    got = dict(zip(names, counts, strict=True))
    return [got.get(n, 0) for n in union]
