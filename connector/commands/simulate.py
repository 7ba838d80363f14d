"""`simulate`: a changed rule set against current data, before anything reaches the CRM.

Both rule sets run the very passes of a sync over the same CRM data and the same state (the rung each contact
holds, the demotion watch). Only temp tables are written; the CRM and the state store are read, never changed.

Who moves where is judged on the rung each rule set *qualifies* a contact for: that is where the contact settles
once any demotion grace has run out, so a raised threshold shows its full effect. How many of those moves the
next sync would hold back during the grace period is reported beside it. A sync writes the rung a contact stands
on, held ones included, so the current rules' counts per rung differ from `sync`'s and the report's by the held
contacts: the output says so, with the counts a sync writes (`synced_current`). The replay (connector.commands.replay)
then runs each rule set at every weekly sync of the last N weeks, from an empty CRM, carrying each week's rung and
demotion watch forward exactly as real syncs do, and counts the contacts whose rung would change more than once
(flapping): the new rules' count beside the current rules' says whether the change calms the ladder or not.
"""

from __future__ import annotations

import datetime as dt
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb

from connector import log, progress, sql
from connector.commands import calibrate_text, sync
from connector.commands.calibration import Calibration
from connector.commands.explain import format_value, symbol_values
from connector.commands.replay import Replay, replay
from connector.engine import texts
from connector.engine.relations import PLACE, criterion_col
from connector.ruleset.compiler import CompiledCriterion, RuleSet

STEPS = 3  # placing under each rule set, comparing
REPLAY_STEPS = 2  # replaying each rule set week by week
CUR_TABLE = "tl_sim_cur"  # the current rules' placement, one row per contact (a copy of tl_place)
NEW_TABLE = "tl_sim_new"  # the new rules' placement

_log = log.get("trust_ladder.simulate")


@dataclass(frozen=True)
class FlagMove:
    label: str
    before: int
    after: int
    gained: int
    lost: int


@dataclass(frozen=True)
class Sample:
    contact_id: str
    name: str
    current: str
    new: str
    changes: list[str]  # the criteria and flags whose wording or verdict changed, with the numbers
    next_step: str


@dataclass
class Simulation:
    as_of: dt.date
    current_version: str
    new_version: str
    current_rungs: list[str]
    new_rungs: list[str]
    contacts: int
    matrix: list[list[int]]  # [current rung][new rung], rung each rule set qualifies the contact for
    synced_current: list[int]  # per current rung, contacts standing on it (held ones too): what a sync writes
    held_current: int  # contacts the current rules hold above the rung they qualify for
    held_by_grace: int  # moving contacts whose drop the next sync holds during the demotion grace
    grace_days: int
    flags: list[FlagMove]
    samples: list[Sample]
    replay: Replay | None = None  # the new rules replayed
    replay_current: Replay | None = None  # the current rules replayed, to compare flapping
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    calibration: tuple[Calibration, Calibration] | None = (
        None  # the current and the new rules, when either has outcomes
    )
    calibration_skipped: str | None = None  # why there is no calibration (neither rule file declares outcomes)

    @property
    def per_rung_current(self) -> list[int]:
        return [sum(row) for row in self.matrix]

    @property
    def per_rung_new(self) -> list[int]:
        return [sum(col) for col in zip(*self.matrix, strict=True)] if self.matrix else []

    def cells(self) -> list[tuple[str, str, int]]:
        """The moving cells (a different rung name under the new rules), largest first."""
        out = [
            (a, b, n)
            for i, a in enumerate(self.current_rungs)
            for j, b in enumerate(self.new_rungs)
            if a != b and (n := self.matrix[i][j])
        ]
        return sorted(out, key=lambda c: -c[2])

    @property
    def moved(self) -> int:
        return sum(n for _, _, n in self.cells())


def simulate(
    con: duckdb.DuckDBPyConnection,
    current: RuleSet,
    new: RuleSet,
    as_of: dt.date,
    *,
    weeks: int = 12,
    samples: int = 3,
    steps: progress.Steps | None = None,
) -> Simulation:
    """Both rule sets over the connection's `crm_contact`/`crm_activity`; leaves CUR_TABLE and NEW_TABLE behind.
    `steps` shows how far it got on a terminal: STEPS of them, and REPLAY_STEPS more with `weeks`."""
    steps = steps or progress.quiet()
    started = time.perf_counter()
    for rules, table, label in ((current, CUR_TABLE, "the current rules"), (new, NEW_TABLE, "the new rules")):
        with steps.step(f"placing contacts under {label}"):
            sync.compute(con, rules, as_of)
            sql.run(con, sql.create_temp(table, sql.q("SELECT * FROM $t", t=sql.table(PLACE.name))))
    with steps.step("comparing"):
        sim = _compared(con, current, new, as_of, samples, started)
    if weeks > 0:
        with steps.step(f"replaying the current rules over {weeks} weeks"):
            sim.replay_current = replay(con, current, as_of, weeks)
        with steps.step(f"replaying the new rules over {weeks} weeks"):
            sim.replay = replay(con, new, as_of, weeks)
    sim.seconds = time.perf_counter() - started
    return sim


def _compared(
    con: duckdb.DuckDBPyConnection,
    current: RuleSet,
    new: RuleSet,
    as_of: dt.date,
    samples: int,
    started: float,
) -> Simulation:
    pairs = con.execute(
        f"SELECT c.qualified, n.qualified, c.final, count(*) FROM {CUR_TABLE} c JOIN {NEW_TABLE} n USING (cid) "
        "GROUP BY ALL"
    ).fetchall()
    matrix = [[0] * len(new.rungs) for _ in current.rungs]
    synced = [0] * len(current.rungs)
    for i, j, f, n in pairs:
        matrix[i][j] += int(n)
        synced[f] += int(n)
    held = _one(
        con,
        f"SELECT count(*) FROM {CUR_TABLE} c JOIN {NEW_TABLE} n USING (cid) "
        "WHERE n.in_grace AND c.qualified <> n.qualified",
    )
    sim = Simulation(
        as_of=as_of,
        current_version=current.version,
        new_version=new.version,
        current_rungs=[r.name for r in current.rungs],
        new_rungs=[r.name for r in new.rungs],
        contacts=sum(n for *_, n in pairs),
        matrix=matrix,
        synced_current=synced,
        held_current=sum(int(n) for i, _, f, n in pairs if f != i),
        held_by_grace=held,
        grace_days=new.settings.demotion_grace_days,
        flags=_flags(con, current, new),
        samples=_samples(con, current, new, samples),
    )
    _log.info(
        "simulate.compared", contacts=sim.contacts, moved=sim.moved, seconds=round(time.perf_counter() - started, 2)
    )
    return sim


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    row = con.execute(sql, params or []).fetchone()
    assert row is not None
    return int(row[0])


def _flags(con: duckdb.DuckDBPyConnection, current: RuleSet, new: RuleSet) -> list[FlagMove]:
    labels = list(dict.fromkeys([f.label for f in current.flags] + [f.label for f in new.flags]))
    if not labels:
        return []
    aggs: list[str] = []
    params: list[str] = []
    for label in labels:
        aggs += [
            "count(*) FILTER (WHERE list_contains(b, ?))",
            "count(*) FILTER (WHERE list_contains(a, ?))",
            "count(*) FILTER (WHERE list_contains(a, ?) AND NOT list_contains(b, ?))",
            "count(*) FILTER (WHERE list_contains(b, ?) AND NOT list_contains(a, ?))",
        ]
        params += [label] * 6
    row = con.execute(
        f"SELECT {', '.join(aggs)} FROM (SELECT string_split(COALESCE(c.new_flags, ''), ';') AS b, "
        f"string_split(COALESCE(n.new_flags, ''), ';') AS a FROM {CUR_TABLE} c JOIN {NEW_TABLE} n USING (cid))",
        params,
    ).fetchone()
    assert row is not None
    return [FlagMove(label, *(int(v) for v in row[4 * k : 4 * k + 4])) for k, label in enumerate(labels)]


def _samples(con: duckdb.DuckDBPyConnection, current: RuleSet, new: RuleSet, k: int) -> list[Sample]:
    """Up to k contacts per moving cell, lowest Ids first, with what changed for them."""
    if k <= 0:
        return []
    chosen = [
        r[0]
        for r in con.execute(
            f"""SELECT cid FROM (
              SELECT cid, c.qualified AS a, n.qualified AS b,
                     row_number() OVER (PARTITION BY c.qualified, n.qualified ORDER BY cid) AS k
              FROM {CUR_TABLE} c JOIN {NEW_TABLE} n USING (cid)
              WHERE {_names(current, "c.qualified")} IS DISTINCT FROM {_names(new, "n.qualified")})
            WHERE k <= ? ORDER BY a, b, cid""",
            [k],
        ).fetchall()
    ]
    if not chosen:
        return []
    rows = {t: _rows(con, t, chosen) for t in (CUR_TABLE, NEW_TABLE)}
    names = dict(
        con.execute(
            """SELECT "Id", concat_ws(' ', "FirstName", "LastName") FROM crm_contact WHERE list_contains(?, "Id")""",
            [chosen],
        ).fetchall()
    )
    out = []
    for cid in chosen:
        before, after = rows[CUR_TABLE][cid], rows[NEW_TABLE][cid]
        out.append(
            Sample(
                cid,
                names.get(cid) or "",
                current.rungs[before["qualified"]].name,
                new.rungs[after["qualified"]].name,
                _changes(current, new, before, after),
                after["new_next"] or "",
            )
        )
    return out


def _names(rules: RuleSet, column: str) -> str:
    """The rung name for a rung index column, rendered by the SQL builder (names are literals there)."""
    table, _, name = column.partition(".")
    return sql.render(texts.rung_name(rules, sql.col(name, table)))


def _rows(con: duckdb.DuckDBPyConnection, table: str, cids: list[str]) -> dict[str, dict[str, Any]]:
    cur = con.execute(f"SELECT * FROM {table} WHERE list_contains(?, cid)", [cids])
    cols = [d[0] for d in cur.description]
    return {r["cid"]: r for r in (dict(zip(cols, row, strict=True)) for row in cur.fetchall())}


def _values(names: list[str], row: dict[str, Any]) -> str:
    found = symbol_values(row, list(dict.fromkeys(names)), row.get("new_since") or dt.date.min)
    shown = [f"{n} = {format_value(v)}" for n, v in found.items() if n != "as_of"]
    return f" ({', '.join(shown)})" if shown else ""


def _verdict(met: bool) -> str:
    return "met" if met else "not met"


def _pair(c: CompiledCriterion, j: int, old: dict[int, CompiledCriterion]) -> int | None:
    """The same criterion in the current rules: same condition, else same wording, else same place."""
    for i, o in old.items():
        if o.when == c.when:
            return i
    for i, o in old.items():
        if o.says == c.says:
            return i
    return j if j in old else None


def _changes(current: RuleSet, new: RuleSet, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The criteria and flags whose wording or verdict differ between the rule sets, for one contact."""
    lines: list[str] = []
    for rung in new.rungs[1:]:
        old_rung = next((r for r in current.rungs if r.name == rung.name), None)
        old = dict(enumerate(old_rung.criteria)) if old_rung else {}
        for j, c in enumerate(rung.criteria):
            met = bool(after[criterion_col(rung.index, j)])
            match = _pair(c, j, old)
            now = f"{_verdict(met)}{_values(c.compiled.names, after)}"
            if match is None:
                lines.append(f"{rung.name}: new criterion `{c.when}`: {now}")
                continue
            o = old.pop(match)
            assert old_rung is not None
            was = bool(before[criterion_col(old_rung.index, match)])
            if o.when != c.when:
                lines.append(f"{rung.name}: `{o.when}` became `{c.when}`: {_verdict(was)} -> {now}")
            elif was != met:
                lines.append(f"{rung.name}: `{c.when}`: {_verdict(was)}{_values(o.compiled.names, before)} -> {now}")
        for o in old.values():
            lines.append(f"{rung.name}: criterion `{o.when}` dropped")
    for name in (r.name for r in current.rungs[1:] if new.rung_index(r.name) is None):
        lines.append(f"{name}: rung dropped")
    flags_before = set((before["new_flags"] or "").split(";")) - {""}
    flags_after = set((after["new_flags"] or "").split(";")) - {""}
    for f in new.flags:
        if (f.label in flags_before) != (f.label in flags_after):
            state = "raised" if f.label in flags_after else "cleared"
            lines.append(f"flag {f.label} {state}{_values(f.compiled.names, after)}")
    if after["in_grace"]:
        lines.append(f"the next sync holds it at {after['new_stage']} during the demotion grace")
    return lines or ["the criteria read the same; the move comes from changed kinds, features or ladder settings"]


def counts_note(rungs: list[str], qualified: list[int], synced: list[int], held: int) -> str:
    """Where the current rules' counts (the rung each contact qualifies for) differ from what a sync writes (the
    rung it stands on, a held one included), rung by rung; empty when they agree."""
    differ = [f"{r} {s:,} (not {q:,})" for r, q, s in zip(rungs, qualified, synced, strict=True) if q != s]
    if not differ:
        return ""
    return (
        "The current rules' counts are the rung each contact qualifies for today, where it settles once any "
        "demotion grace runs out. A sync (and `status`, and the report of the current state) counts the rung a "
        f"contact stands on, held ones included: {', '.join(differ)}. The difference: {held:,} contact"
        f"{'' if held == 1 else 's'} held above the rung they qualify for (by the demotion grace period, or "
        "decaying one rung at a time)."
    )


def as_dict(sim: Simulation) -> dict[str, Any]:
    """The simulation as plain JSON-ready data (`--json`)."""
    replay_ = sim.replay
    return {
        "as_of": sim.as_of.isoformat(),
        "current_rules": sim.current_version,
        "new_rules": sim.new_version,
        "contacts": sim.contacts,
        "moved": sim.moved,
        "held_by_grace": sim.held_by_grace,
        "matrix": {
            a: {b: sim.matrix[i][j] for j, b in enumerate(sim.new_rungs)} for i, a in enumerate(sim.current_rungs)
        },
        "per_rung": {
            "current": dict(zip(sim.current_rungs, sim.per_rung_current, strict=True)),
            "new": dict(zip(sim.new_rungs, sim.per_rung_new, strict=True)),
            "synced_current": dict(zip(sim.current_rungs, sim.synced_current, strict=True)),
        },
        "counts_note": counts_note(sim.current_rungs, sim.per_rung_current, sim.synced_current, sim.held_current),
        "flags": [vars(f) for f in sim.flags],
        "samples": [vars(s) for s in sim.samples],
        "replay": None
        if replay_ is None
        else {
            "weeks": replay_.weeks,
            "start": replay_.start.isoformat(),
            "end": replay_.end.isoformat(),
            "changed": replay_.changed,
            "flapping": replay_.flapping,
            "reversed": replay_.reversed,
            "changes": {d.isoformat(): n for d, n in replay_.changes},
            "seconds": round(replay_.seconds, 3),
        },
        "replay_current": None
        if sim.replay_current is None
        else {k: getattr(sim.replay_current, k) for k in ("changed", "flapping", "reversed")},
        "notes": sim.notes,
        "seconds": round(sim.seconds, 3),
        "calibration": None
        if sim.calibration is None
        else {"current": calibrate_text.as_dict(sim.calibration[0]), "new": calibrate_text.as_dict(sim.calibration[1])},
        "calibration_skipped": sim.calibration_skipped,
    }


def render(sim: Simulation) -> str:
    """The simulation for a terminal: matrix, flags, samples, flapping."""
    total = sim.contacts
    lines = [
        f"Simulation as of {sim.as_of.isoformat()} over {total:,} contacts",
        f"  current rules: {sim.current_version}",
        f"  new rules:     {sim.new_version}",
        "",
    ]
    lines += [f"warning: {n}" for n in sim.notes]
    lines += [*([""] if sim.notes else []), "Rungs (rows: current rules, columns: new rules)"]
    width = max(8, *(len(n) for n in sim.new_rungs)) + 2
    first = max(10, *(len(n) for n in sim.current_rungs)) + 2
    lines.append(" " * first + "".join(f"{n:>{width}}" for n in sim.new_rungs) + f"{'total':>{width}}")
    for i, name in enumerate(sim.current_rungs):
        cells = "".join(f"{(f'{n:,}' if n else '.'):>{width}}" for n in sim.matrix[i])
        lines.append(f"  {name:<{first - 2}}{cells}{sim.per_rung_current[i]:>{width},}")
    lines.append(f"  {'total':<{first - 2}}" + "".join(f"{n:>{width},}" for n in sim.per_rung_new))
    note = counts_note(sim.current_rungs, sim.per_rung_current, sim.synced_current, sim.held_current)
    if note:
        lines += ["", *textwrap.wrap(note, 116)]
    pct = 100 * sim.moved / total if total else 0.0
    lines += [
        "",
        f"Moving: {sim.moved:,} contact{'' if sim.moved == 1 else 's'} ({pct:.1f}%)"
        + "".join(f"; {n:,} {a} -> {b}" for a, b, n in sim.cells()),
    ]
    if sim.held_by_grace:
        lines.append(
            f"  of which {sim.held_by_grace:,} the next sync holds on their rung during the "
            f"{sim.grace_days}-day demotion grace, then demotes"
        )
    if sim.flags:
        lines += ["", f"  {'Flags':<22}{'before':>9}{'after':>9}{'gained':>9}{'lost':>9}"]
        lines += [f"  {f.label:<22}{f.before:>9,}{f.after:>9,}{f.gained:>9,}{f.lost:>9,}" for f in sim.flags]
    if sim.samples:
        lines += ["", "Samples (lowest Ids of each moving cell), under the new rules:"]
        for s in sim.samples:
            lines.append(f"  {s.current} -> {s.new}  {s.contact_id}  {s.name}")
            lines += [f"      {c}" for c in s.changes]
            lines.append(f"      next step: {s.next_step}")
    r = sim.replay
    if r is not None:
        lines += [
            "",
            (
                f"Flapping: {r.flapping:,} contacts would change rung more than once had the new rules run "
                f"at every weekly sync from {r.start.isoformat()} to {r.end.isoformat()} ({r.weeks} weeks, "
                f"from an empty CRM); {r.changed:,} would change at least once, and {r.reversed:,} "
                "would go back (up then down, or down then up)."
            ),
        ]
        lines.append("  changes per weekly sync: " + ", ".join(f"{d.strftime('%d %b')} {n:,}" for d, n in r.changes))
        if sim.replay_current is not None:
            lines.append(
                f"  the current rules, replayed the same way: {sim.replay_current.flapping:,} flapping, "
                f"{sim.replay_current.changed:,} changing at least once"
            )
    if sim.calibration is not None:
        lines += ["", *calibrate_text.side_by_side(*sim.calibration)]
    elif sim.calibration_skipped:
        lines += ["", f"Calibration left out: {sim.calibration_skipped}"]
    lines += ["", f"Nothing was written to the CRM. ({sim.seconds:.1f} s)"]
    return "\n".join(lines)
